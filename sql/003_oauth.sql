-- 003_oauth.sql: what the OAuth 2.0 / OpenID Connect provider keeps besides 001's tables.
--
-- revoked_jtis: access tokens of clients (client_credentials and token-exchange results without
-- a session) revoked through RFC 7009 before they expire. Such tokens are self-contained JWTs, so
-- their jti stays here until the token's own expiry; introspection and the bearer check refuse a
-- listed jti. (Tokens of people are ended through their session instead.) Expired entries are
-- purged in small batches whenever a new one is added.

CREATE TABLE revoked_jtis (
    jti        text PRIMARY KEY CHECK (jti <> ''),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revoked_jtis_expires_idx ON revoked_jtis (expires_at);
CREATE TRIGGER revoked_jtis_touch BEFORE UPDATE ON revoked_jtis
    FOR EACH ROW EXECUTE FUNCTION sk_touch();
