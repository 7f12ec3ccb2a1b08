-- 006_guard_feed.sql: indexes for the guard's revocation feed (mod_scaikey/guard/feed.c), which
-- every Apache process polls once a second for what changed since its last poll: range scans
-- on the time of the change instead of reading whole tables.

CREATE INDEX revoked_jtis_created_idx ON revoked_jtis (created_at);
CREATE INDEX sessions_revoked_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX users_updated_idx ON users (updated_at);
CREATE INDEX tenants_updated_idx ON tenants (updated_at);
CREATE INDEX partners_updated_idx ON partners (updated_at);
CREATE INDEX applications_updated_idx ON applications (updated_at);
CREATE INDEX mcp_agents_updated_idx ON mcp_agents (updated_at);
