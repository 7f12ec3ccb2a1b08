-- 004_authorize.sql: browser sign-in for the authorization endpoint.
--
-- Redeeming an authorization code opens a session of its own for the tokens it yields (kind
-- 'user', the client's id in client_id). The code keeps a link to that session so that a code
-- presented a second time can end it, together with the refresh tokens of its family, at once.

ALTER TABLE oauth_codes
    ADD COLUMN grant_session_id text REFERENCES sessions (id) ON DELETE SET NULL;
CREATE INDEX oauth_codes_grant_session_idx ON oauth_codes (grant_session_id);

