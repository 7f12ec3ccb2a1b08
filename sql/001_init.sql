-- 001_init.sql: the mod_scaikey data model.
--
-- Applied once, inside one transaction, by the migration runner (see sql/README.md).
-- PostgreSQL 15 built-ins only: no extensions.
--
-- Conventions used throughout:
--   * ids are text "<prefix>_<16 chars of [a-z0-9]>" from sk_id(); link and log tables use bigint.
--   * every table has created_at / updated_at (kept current by sk_touch); audit_log is the
--     exception: it is append-only and has occurred_at instead.
--   * resources are soft-deleted (deleted_at); uniqueness holds among non-deleted rows only, so a
--     slug or an email can be reused after deletion.
--   * secrets are never stored in clear: *_hash = lowercase hex SHA-256 of the clear value,
--     password_hash = argon2id PHC string, *_sealed = AES-256-GCM sealed with the master key.
--   * JSON columns are jsonb, never NULL: '{}' for objects, '[]' for lists.
--   * foreign keys to soft-deleted resources are plain (NO ACTION); link tables cascade; rows that
--     only make sense with their session (tokens, codes) cascade when expired sessions are purged.


---------------------------------------------------------------------------------------------------
-- Helper functions
---------------------------------------------------------------------------------------------------

-- sk_id('usr') -> 'usr_k3v9x0q2m7a1b8cz'
-- The 16 characters come from gen_random_uuid() (a CSPRNG). Bytes 6 and 8 of a version-4 UUID
-- carry fixed version/variant bits and are skipped; bytes >= 252 (= 7 * 36) are rejected so that
-- byte % 36 is uniform over the alphabet.
CREATE FUNCTION sk_id(prefix text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    alphabet CONSTANT text := 'abcdefghijklmnopqrstuvwxyz0123456789';
    buf bytea;
    b   integer;
    acc text := '';
BEGIN
    IF prefix IS NULL OR prefix !~ '^[a-z]{1,8}$' THEN
        RAISE EXCEPTION 'sk_id: invalid prefix %', coalesce(quote_literal(prefix), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WHILE length(acc) < 16 LOOP
        buf := uuid_send(gen_random_uuid());
        FOR i IN 0..15 LOOP
            CONTINUE WHEN i = 6 OR i = 8;
            b := get_byte(buf, i);
            CONTINUE WHEN b >= 252;
            acc := acc || substr(alphabet, b % 36 + 1, 1);
            EXIT WHEN length(acc) = 16;
        END LOOP;
    END LOOP;
    RETURN prefix || '_' || acc;
END
$$;

-- BEFORE UPDATE trigger for every table that has updated_at.
CREATE FUNCTION sk_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;


---------------------------------------------------------------------------------------------------
-- Partners and tenants
---------------------------------------------------------------------------------------------------

CREATE TABLE partners (
    id                          text PRIMARY KEY DEFAULT sk_id('prt'),
    name                        text NOT NULL CHECK (btrim(name) <> ''),
    slug                        text NOT NULL
                                CHECK (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'),
    status                      text NOT NULL DEFAULT 'ACTIVE'
                                CHECK (status IN ('ACTIVE', 'SUSPENDED')),
    contact_email               text,
    -- resource limits; NULL = unlimited
    max_tenants                 integer CHECK (max_tenants >= 0),
    max_users_per_tenant        integer CHECK (max_users_per_tenant >= 0),
    max_applications_per_tenant integer CHECK (max_applications_per_tenant >= 0),
    settings                    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    -- white-label defaults inherited by the partner's tenants
    branding                    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(branding) = 'object'),
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    deleted_at                  timestamptz
);
CREATE UNIQUE INDEX partners_slug_key ON partners (slug) WHERE deleted_at IS NULL;
CREATE INDEX partners_status_idx ON partners (status);
CREATE INDEX partners_list_idx ON partners (created_at, id);
CREATE TRIGGER partners_touch BEFORE UPDATE ON partners FOR EACH ROW EXECUTE FUNCTION sk_touch();

CREATE TABLE tenants (
    id              text PRIMARY KEY DEFAULT sk_id('tnt'),
    partner_id      text REFERENCES partners (id),        -- NULL: owned by the platform
    name            text NOT NULL CHECK (btrim(name) <> ''),
    slug            text NOT NULL CHECK (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'),
    status          text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'SUSPENDED')),
    contact_email   text,
    -- host name serving this tenant's login pages (lowercase); NULL = none
    custom_domain   text CHECK (custom_domain = lower(custom_domain) AND custom_domain <> ''),
    -- MFA policy, password policy, session timeouts ...
    settings        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    -- logos, colours ...
    branding        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(branding) = 'object'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
CREATE UNIQUE INDEX tenants_slug_key ON tenants (slug) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX tenants_custom_domain_key ON tenants (custom_domain)
    WHERE deleted_at IS NULL AND custom_domain IS NOT NULL;
CREATE INDEX tenants_partner_idx ON tenants (partner_id, created_at, id);
CREATE INDEX tenants_status_idx ON tenants (status);
CREATE INDEX tenants_list_idx ON tenants (created_at, id);
CREATE TRIGGER tenants_touch BEFORE UPDATE ON tenants FOR EACH ROW EXECUTE FUNCTION sk_touch();


---------------------------------------------------------------------------------------------------
-- Organizational units, users, groups
---------------------------------------------------------------------------------------------------

CREATE TABLE organizational_units (
    id          text PRIMARY KEY DEFAULT sk_id('ou'),
    tenant_id   text NOT NULL REFERENCES tenants (id),
    parent_id   text,                                   -- NULL: a root of the tenant's tree
    name        text NOT NULL CHECK (btrim(name) <> ''),
    description text,
    external_id text,                                   -- e.g. the LDAP DN it was synced from
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    -- target of the composite foreign keys below that keep a tree inside one tenant
    CONSTRAINT organizational_units_id_tenant_key UNIQUE (id, tenant_id),
    CONSTRAINT organizational_units_parent_fkey FOREIGN KEY (parent_id, tenant_id)
        REFERENCES organizational_units (id, tenant_id),
    CONSTRAINT organizational_units_parent_not_self CHECK (parent_id <> id)
);
CREATE INDEX organizational_units_tenant_idx ON organizational_units (tenant_id, created_at, id);
CREATE INDEX organizational_units_parent_idx ON organizational_units (parent_id, tenant_id);
CREATE INDEX organizational_units_list_idx ON organizational_units (created_at, id);
CREATE TRIGGER organizational_units_touch BEFORE UPDATE ON organizational_units
    FOR EACH ROW EXECUTE FUNCTION sk_touch();

-- Refuses a parent_id that would make the OU its own ancestor.
-- The per-tenant advisory lock (two-key space, so it cannot meet the one-key locks) serialises
-- concurrent re-parenting inside a tenant so two moves cannot together form a cycle.
CREATE FUNCTION sk_ou_tree_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.parent_id IS NULL THEN
        RETURN NEW;
    END IF;
    PERFORM pg_advisory_xact_lock(1397441359, hashtext(NEW.tenant_id));   -- 'SKOU'
    IF EXISTS (
        WITH RECURSIVE up (id) AS (
            SELECT NEW.parent_id
            UNION
            SELECT o.parent_id FROM organizational_units o JOIN up ON o.id = up.id
            WHERE o.parent_id IS NOT NULL
        )
        SELECT 1 FROM up WHERE up.id = NEW.id
    ) THEN
        RAISE EXCEPTION 'organizational unit % cannot be placed under its own descendant %',
            NEW.id, NEW.parent_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'organizational_units_no_cycle';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER organizational_units_tree BEFORE INSERT OR UPDATE OF parent_id, tenant_id
    ON organizational_units FOR EACH ROW EXECUTE FUNCTION sk_ou_tree_check();

CREATE TABLE users (
    id                   text PRIMARY KEY DEFAULT sk_id('usr'),
    tenant_id            text REFERENCES tenants (id),
    partner_id           text REFERENCES partners (id),
    ou_id                text,
    email                text NOT NULL CHECK (strpos(email, '@') > 1 AND char_length(email) <= 320),
    password_hash        text CHECK (password_hash LIKE '$argon2id$%'),  -- NULL: no local password
    role                 text NOT NULL DEFAULT 'user'
                         CHECK (role IN ('user', 'tenant_admin', 'partner_admin', 'super_admin')),
    status               text NOT NULL DEFAULT 'ACTIVE'
                         CHECK (status IN ('ACTIVE', 'SUSPENDED', 'PENDING', 'LOCKED')),
    first_name           text,
    last_name            text,
    display_name         text,
    title                text,
    department           text,
    manager_id           text REFERENCES users (id),
    phone                text,
    locale               text,
    timezone             text,
    employee_id          text,
    -- where the account is mastered: LOCAL, or the provider_type of its identity provider
    identity_source      text NOT NULL DEFAULT 'LOCAL'
                         CHECK (identity_source IN ('LOCAL', 'OIDC', 'SAML', 'LDAP', 'ENTRA_ID',
                                                    'GOOGLE', 'SCIM')),
    external_id          text,
    custom_attributes    jsonb NOT NULL DEFAULT '{}'
                         CHECK (jsonb_typeof(custom_attributes) = 'object'),
    is_service_account   boolean NOT NULL DEFAULT false,
    email_verified       boolean NOT NULL DEFAULT false,
    mfa_enabled          boolean NOT NULL DEFAULT false,
    must_change_password boolean NOT NULL DEFAULT false,
    last_login_at        timestamptz,
    password_changed_at  timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz,
    -- an OU is always one of the user's own tenant
    CONSTRAINT users_ou_fkey FOREIGN KEY (ou_id, tenant_id)
        REFERENCES organizational_units (id, tenant_id),
    CONSTRAINT users_ou_needs_tenant CHECK (ou_id IS NULL OR tenant_id IS NOT NULL),
    CONSTRAINT users_manager_not_self CHECK (manager_id <> id),
    CONSTRAINT users_role_scope CHECK (
        role = 'super_admin'
        OR (role = 'partner_admin' AND partner_id IS NOT NULL)
        OR (role IN ('user', 'tenant_admin') AND tenant_id IS NOT NULL))
);
-- email: unique per tenant, and unique among the tenant-less (platform and partner) admins
CREATE UNIQUE INDEX users_tenant_email_key ON users (tenant_id, lower(email))
    WHERE deleted_at IS NULL AND tenant_id IS NOT NULL;
CREATE UNIQUE INDEX users_platform_email_key ON users (lower(email))
    WHERE deleted_at IS NULL AND tenant_id IS NULL;
-- prefix search (lower(email) LIKE 'abc%') and look-up by email across tenants (portal login)
CREATE INDEX users_email_prefix_idx ON users (lower(email) text_pattern_ops);
CREATE INDEX users_display_name_prefix_idx ON users (lower(display_name) text_pattern_ops);
CREATE INDEX users_tenant_idx ON users (tenant_id, created_at, id);
CREATE INDEX users_tenant_status_idx ON users (tenant_id, status);
CREATE INDEX users_partner_idx ON users (partner_id, created_at, id);
CREATE INDEX users_ou_idx ON users (ou_id, tenant_id);
CREATE INDEX users_manager_idx ON users (manager_id);
CREATE INDEX users_external_idx ON users (tenant_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX users_list_idx ON users (created_at, id);
CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION sk_touch();

CREATE TABLE groups (
    id          text PRIMARY KEY DEFAULT sk_id('grp'),
    tenant_id   text NOT NULL REFERENCES tenants (id),
    name        text NOT NULL CHECK (btrim(name) <> ''),
    description text,
    group_type  text NOT NULL DEFAULT 'SECURITY' CHECK (group_type IN ('SECURITY', 'DISTRIBUTION_LIST')),
    external_id text,                                   -- id at the directory it was synced from
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
CREATE INDEX groups_tenant_idx ON groups (tenant_id, created_at, id);
CREATE INDEX groups_name_prefix_idx ON groups (tenant_id, lower(name) text_pattern_ops);
CREATE INDEX groups_type_idx ON groups (tenant_id, group_type);
CREATE INDEX groups_external_idx ON groups (tenant_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX groups_list_idx ON groups (created_at, id);
CREATE TRIGGER groups_touch BEFORE UPDATE ON groups FOR EACH ROW EXECUTE FUNCTION sk_touch();

-- Direct membership of a user in a group (same tenant, enforced below).
CREATE TABLE group_members (
    group_id   text NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_idx ON group_members (user_id);
CREATE INDEX group_members_list_idx ON group_members (group_id, created_at, user_id);
CREATE TRIGGER group_members_touch BEFORE UPDATE ON group_members
    FOR EACH ROW EXECUTE FUNCTION sk_touch();

CREATE FUNCTION sk_group_members_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    g_tenant text;
    u_tenant text;
BEGIN
    SELECT tenant_id INTO g_tenant FROM groups WHERE id = NEW.group_id;
    SELECT tenant_id INTO u_tenant FROM users WHERE id = NEW.user_id;
    IF g_tenant IS NOT NULL AND u_tenant IS DISTINCT FROM g_tenant THEN
        RAISE EXCEPTION 'user % is not in the tenant of group %', NEW.user_id, NEW.group_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'group_members_same_tenant';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER group_members_tenant BEFORE INSERT OR UPDATE ON group_members
    FOR EACH ROW EXECUTE FUNCTION sk_group_members_check();

-- child_group_id is a member of parent_group_id: members of the child are (indirectly) members
-- of the parent. Same tenant, no cycles (enforced below).
CREATE TABLE group_nesting (
    parent_group_id text NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    child_group_id  text NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (parent_group_id, child_group_id),
    CONSTRAINT group_nesting_not_self CHECK (parent_group_id <> child_group_id)
);
CREATE INDEX group_nesting_child_idx ON group_nesting (child_group_id);
CREATE TRIGGER group_nesting_touch BEFORE UPDATE ON group_nesting
    FOR EACH ROW EXECUTE FUNCTION sk_touch();

CREATE FUNCTION sk_group_nesting_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    p_tenant text;
    c_tenant text;
BEGIN
    SELECT tenant_id INTO p_tenant FROM groups WHERE id = NEW.parent_group_id;
    SELECT tenant_id INTO c_tenant FROM groups WHERE id = NEW.child_group_id;
    IF p_tenant IS NULL OR c_tenant IS NULL THEN
        RETURN NEW;                                 -- the foreign keys report the missing group
    END IF;
    IF p_tenant <> c_tenant THEN
        RAISE EXCEPTION 'groups % and % belong to different tenants',
            NEW.parent_group_id, NEW.child_group_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'group_nesting_same_tenant';
    END IF;
    PERFORM pg_advisory_xact_lock(1397442386, hashtext(p_tenant));    -- 'SKGR'
    IF EXISTS (
        WITH RECURSIVE up (id) AS (
            SELECT NEW.parent_group_id
            UNION
            SELECT n.parent_group_id FROM group_nesting n JOIN up ON n.child_group_id = up.id
        )
        SELECT 1 FROM up WHERE up.id = NEW.child_group_id
    ) THEN
        RAISE EXCEPTION 'nesting group % in % would create a cycle',
            NEW.child_group_id, NEW.parent_group_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'group_nesting_no_cycle';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER group_nesting_tree BEFORE INSERT OR UPDATE ON group_nesting
    FOR EACH ROW EXECUTE FUNCTION sk_group_nesting_check();

-- Every group the user belongs to, directly or through nesting. Deleted groups neither count nor
-- pass membership on.
CREATE FUNCTION sk_user_groups(p_user_id text) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE g (id) AS (
        SELECT m.group_id FROM group_members m
        JOIN groups d ON d.id = m.group_id AND d.deleted_at IS NULL
        WHERE m.user_id = p_user_id
        UNION
        SELECT n.parent_group_id FROM group_nesting n
        JOIN g ON n.child_group_id = g.id
        JOIN groups p ON p.id = n.parent_group_id AND p.deleted_at IS NULL
    )
    SELECT g.id FROM g
$$;

-- Every user who is a member of the group, directly or through nested groups (same rules).
CREATE FUNCTION sk_group_effective_members(p_group_id text) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE g (id) AS (
        SELECT d.id FROM groups d WHERE d.id = p_group_id AND d.deleted_at IS NULL
        UNION
        SELECT n.child_group_id FROM group_nesting n
        JOIN g ON n.parent_group_id = g.id
        JOIN groups c ON c.id = n.child_group_id AND c.deleted_at IS NULL
    )
    SELECT DISTINCT m.user_id FROM group_members m JOIN g ON m.group_id = g.id
$$;


---------------------------------------------------------------------------------------------------
-- Identity providers (federation)
---------------------------------------------------------------------------------------------------

CREATE TABLE identity_providers (
    id                text PRIMARY KEY DEFAULT sk_id('idp'),
    tenant_id         text NOT NULL REFERENCES tenants (id),
    name              text NOT NULL CHECK (btrim(name) <> ''),
    provider_type     text NOT NULL CHECK (provider_type IN ('OIDC', 'SAML', 'LDAP', 'ENTRA_ID', 'GOOGLE')),
    enabled           boolean NOT NULL DEFAULT true,
    -- issuer / endpoints / metadata / LDAP URLs and base DNs ... (no secrets)
    config            jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    -- client secret or bind password, sealed
    secret_sealed     bytea,
    -- claim/attribute name -> user field
    attribute_mapping jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attribute_mapping) = 'object'),
    -- external group -> local group
    group_mapping     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(group_mapping) = 'object'),
    display_order     integer NOT NULL DEFAULT 0,
    last_sync_at      timestamptz,
    last_sync_status  text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz
);
CREATE INDEX identity_providers_tenant_idx ON identity_providers (tenant_id, created_at, id);
CREATE INDEX identity_providers_type_idx ON identity_providers (tenant_id, provider_type);
CREATE INDEX identity_providers_list_idx ON identity_providers (created_at, id);
CREATE TRIGGER identity_providers_touch BEFORE UPDATE ON identity_providers
    FOR EACH ROW EXECUTE FUNCTION sk_touch();

-- Links a local user to the subject an identity provider knows them by.
CREATE TABLE federated_identities (
    id               bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    user_id          text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    idp_id           text NOT NULL REFERENCES identity_providers (id) ON DELETE CASCADE,
    external_subject text NOT NULL CHECK (external_subject <> ''),
    external_email   text,
    claims           jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(claims) = 'object'),
    last_login_at    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT federated_identities_subject_key UNIQUE (idp_id, external_subject)
);
CREATE INDEX federated_identities_user_idx ON federated_identities (user_id);
CREATE TRIGGER federated_identities_touch BEFORE UPDATE ON federated_identities
    FOR EACH ROW EXECUTE FUNCTION sk_touch();


---------------------------------------------------------------------------------------------------
-- Applications (OAuth/OIDC clients) and their assignments
---------------------------------------------------------------------------------------------------

CREATE TABLE applications (
    id                        text PRIMARY KEY DEFAULT sk_id('app'),
    name                      text NOT NULL CHECK (btrim(name) <> ''),
    description               text,
    application_type          text NOT NULL CHECK (application_type IN ('WEB', 'SERVICE', 'SPA', 'NATIVE')),
    scope                     text NOT NULL CHECK (scope IN ('GLOBAL', 'PARTNER', 'TENANT')),
    partner_id                text REFERENCES partners (id),
    tenant_id                 text REFERENCES tenants (id),
    -- never reused, even after deletion: tokens, codes and consents refer to it
    client_id                 text NOT NULL DEFAULT sk_id('app'),
    client_secret_hash        text CHECK (client_secret_hash ~ '^[0-9a-f]{64}$'),
    allowed_scopes            jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(allowed_scopes) = 'array'),
    redirect_uris             jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(redirect_uris) = 'array'),
    allowed_origins           jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(allowed_origins) = 'array'),
    post_logout_redirect_uris jsonb NOT NULL DEFAULT '[]'
                              CHECK (jsonb_typeof(post_logout_redirect_uris) = 'array'),
    -- enabled grants; filled from application_type at creation
    grant_types               jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(grant_types) = 'array'),
    backchannel_logout_uri    text,
    token_lifetime            integer NOT NULL DEFAULT 3600 CHECK (token_lifetime > 0),
    refresh_token_lifetime    integer NOT NULL DEFAULT 2592000 CHECK (refresh_token_lifetime > 0),
    token_exchange_allowed    boolean NOT NULL DEFAULT false,
    require_consent           boolean NOT NULL DEFAULT false,
    status                    text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'SUSPENDED')),
    secret_rotated_at         timestamptz,
    created_by                text,                 -- principal id (user or client), informational
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    deleted_at                timestamptz,
    CONSTRAINT applications_client_id_key UNIQUE (client_id),
    -- the owner columns follow the scope: GLOBAL has none, PARTNER a partner, TENANT a tenant
    -- (a TENANT app's partner is the tenant's, looked up through tenants)
    CONSTRAINT applications_scope_owner CHECK (
        (scope = 'GLOBAL'  AND partner_id IS NULL     AND tenant_id IS NULL)
     OR (scope = 'PARTNER' AND partner_id IS NOT NULL AND tenant_id IS NULL)
     OR (scope = 'TENANT'  AND partner_id IS NULL     AND tenant_id IS NOT NULL)),
    -- public clients hold no secret
    CONSTRAINT applications_public_no_secret CHECK (
        application_type IN ('WEB', 'SERVICE') OR client_secret_hash IS NULL)
);
CREATE INDEX applications_tenant_idx ON applications (tenant_id, created_at, id);
CREATE INDEX applications_partner_idx ON applications (partner_id, created_at, id);
CREATE INDEX applications_scope_idx ON applications (scope, application_type);
CREATE INDEX applications_status_idx ON applications (status);
CREATE INDEX applications_list_idx ON applications (created_at, id);
CREATE TRIGGER applications_touch BEFORE UPDATE ON applications
    FOR EACH ROW EXECUTE FUNCTION sk_touch();

-- An application granted to one user or to one group. tenant_id is the tenant of that user or
-- group (filled in when omitted, checked when given).
CREATE TABLE app_assignments (
    id             bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    application_id text NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    user_id        text REFERENCES users (id) ON DELETE CASCADE,
    group_id       text REFERENCES groups (id) ON DELETE CASCADE,
    tenant_id      text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_by     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT app_assignments_one_target CHECK (num_nonnulls(user_id, group_id) = 1)
);
CREATE UNIQUE INDEX app_assignments_user_key ON app_assignments (application_id, user_id)
    WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX app_assignments_group_key ON app_assignments (application_id, group_id)
    WHERE group_id IS NOT NULL;
CREATE INDEX app_assignments_user_idx ON app_assignments (user_id);
CREATE INDEX app_assignments_group_idx ON app_assignments (group_id);
CREATE INDEX app_assignments_tenant_idx ON app_assignments (tenant_id, application_id);
CREATE INDEX app_assignments_list_idx ON app_assignments (application_id, created_at, id);
CREATE TRIGGER app_assignments_touch BEFORE UPDATE ON app_assignments
    FOR EACH ROW EXECUTE FUNCTION sk_touch();

CREATE FUNCTION sk_app_assignments_tenant() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    IF NEW.user_id IS NOT NULL THEN
        SELECT tenant_id INTO t FROM users WHERE id = NEW.user_id;
    ELSE
        SELECT tenant_id INTO t FROM groups WHERE id = NEW.group_id;
    END IF;
    IF NEW.tenant_id IS NULL THEN
        NEW.tenant_id := t;
    ELSIF t IS NOT NULL AND t <> NEW.tenant_id THEN
        RAISE EXCEPTION 'assignment tenant % does not match the tenant of its user or group', NEW.tenant_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'app_assignments_same_tenant';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER app_assignments_tenant BEFORE INSERT OR UPDATE ON app_assignments
    FOR EACH ROW EXECUTE FUNCTION sk_app_assignments_tenant();


---------------------------------------------------------------------------------------------------
-- MCP agents and API keys
---------------------------------------------------------------------------------------------------

CREATE TABLE mcp_agents (
    id                 text PRIMARY KEY DEFAULT sk_id('agt'),
    tenant_id          text NOT NULL REFERENCES tenants (id),
    name               text NOT NULL CHECK (btrim(name) <> ''),
    description        text,
    agent_type         text NOT NULL DEFAULT 'GENERIC',
    status             text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'SUSPENDED')),
    client_id          text NOT NULL DEFAULT sk_id('agt'),
    client_secret_hash text CHECK (client_secret_hash ~ '^[0-9a-f]{64}$'),
    allowed_tools      jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(allowed_tools) = 'array'),
    allowed_scopes     jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(allowed_scopes) = 'array'),
    rate_limit_rpm     integer CHECK (rate_limit_rpm > 0),       -- NULL: no agent-specific limit
    owner_user_id      text REFERENCES users (id),
    metadata           jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    secret_rotated_at  timestamptz,
    last_used_at       timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz,
    CONSTRAINT mcp_agents_client_id_key UNIQUE (client_id)
);
CREATE INDEX mcp_agents_tenant_idx ON mcp_agents (tenant_id, created_at, id);
CREATE INDEX mcp_agents_tenant_status_idx ON mcp_agents (tenant_id, status, agent_type);
CREATE INDEX mcp_agents_owner_idx ON mcp_agents (owner_user_id);
CREATE INDEX mcp_agents_list_idx ON mcp_agents (created_at, id);
CREATE TRIGGER mcp_agents_touch BEFORE UPDATE ON mcp_agents FOR EACH ROW EXECUTE FUNCTION sk_touch();

CREATE TABLE api_keys (
    id             text PRIMARY KEY DEFAULT sk_id('key'),
    tenant_id      text REFERENCES tenants (id),
    user_id        text REFERENCES users (id),
    agent_id       text REFERENCES mcp_agents (id),
    name           text NOT NULL CHECK (btrim(name) <> ''),
    key_prefix     text NOT NULL CHECK (char_length(key_prefix) BETWEEN 1 AND 16),  -- shown in lists
    key_hash       text NOT NULL CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    key_type       text NOT NULL DEFAULT 'server' CHECK (key_type IN ('server', 'client')),
    scopes         jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(scopes) = 'array'),
    expires_at     timestamptz,
    last_used_at   timestamptz,
    deactivated_at timestamptz,
    created_by     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz,
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash),
    CONSTRAINT api_keys_one_owner CHECK (num_nonnulls(user_id, agent_id) <= 1)
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, created_at, id);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);
CREATE INDEX api_keys_agent_idx ON api_keys (agent_id);
CREATE INDEX api_keys_list_idx ON api_keys (created_at, id);
CREATE TRIGGER api_keys_touch BEFORE UPDATE ON api_keys FOR EACH ROW EXECUTE FUNCTION sk_touch();


---------------------------------------------------------------------------------------------------
-- Sessions, refresh tokens, authorization codes, consents
---------------------------------------------------------------------------------------------------

CREATE TABLE sessions (
    id              text PRIMARY KEY DEFAULT sk_id('ses'),
    user_id         text NOT NULL REFERENCES users (id),
    tenant_id       text REFERENCES tenants (id),
    partner_id      text REFERENCES partners (id),
    kind            text NOT NULL CHECK (kind IN ('admin', 'user', 'sso', 'portal')),
    client_id       text,                              -- client the session was opened for, if any
    -- hash of the secret the session cookie carries besides the id, when it carries one
    secret_hash     text CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
    ip_address      text,
    user_agent      text,
    -- upstream session at a federated identity provider (for back-channel logout by sid)
    idp_id          text REFERENCES identity_providers (id),
    idp_sid         text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    idle_expires_at timestamptz,
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoked_reason  text,
    mfa_verified    boolean NOT NULL DEFAULT false,
    auth_methods    jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(auth_methods) = 'array')
);
CREATE UNIQUE INDEX sessions_secret_hash_key ON sessions (secret_hash) WHERE secret_hash IS NOT NULL;
CREATE INDEX sessions_user_idx ON sessions (user_id, created_at, id);
CREATE INDEX sessions_tenant_idx ON sessions (tenant_id, created_at, id);
CREATE INDEX sessions_partner_idx ON sessions (partner_id, created_at, id);
CREATE INDEX sessions_idp_idx ON sessions (idp_id, idp_sid);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
CREATE INDEX sessions_list_idx ON sessions (created_at, id);
CREATE TRIGGER sessions_touch BEFORE UPDATE ON sessions FOR EACH ROW EXECUTE FUNCTION sk_touch();

-- Opaque, one-time refresh tokens. A family is one chain of rotations; re-use of a used token
-- revokes its whole family.
CREATE TABLE refresh_tokens (
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    token_hash  text NOT NULL CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    session_id  text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    family_id   uuid NOT NULL,
    user_id     text REFERENCES users (id),
    client_id   text,
    scope       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    replaced_by bigint REFERENCES refresh_tokens (id) ON DELETE SET NULL,
    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_client_idx ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_replaced_by_idx ON refresh_tokens (replaced_by);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);
CREATE TRIGGER refresh_tokens_touch BEFORE UPDATE ON refresh_tokens
    FOR EACH ROW EXECUTE FUNCTION sk_touch();

-- Authorization codes, stored by hash, single use.
CREATE TABLE oauth_codes (
    code_hash             text PRIMARY KEY CHECK (code_hash ~ '^[0-9a-f]{64}$'),
    client_id             text NOT NULL,
    application_id        text NOT NULL REFERENCES applications (id),
    user_id               text NOT NULL REFERENCES users (id),
    session_id            text REFERENCES sessions (id) ON DELETE CASCADE,
    tenant_id             text REFERENCES tenants (id),
    redirect_uri          text NOT NULL,
    scope                 text,
    nonce                 text,
    code_challenge        text,
    code_challenge_method text CHECK (code_challenge_method IN ('S256', 'plain')),
    resource              text,
    auth_time             timestamptz,
    -- family of the refresh tokens issued from this code: revoked if the code is replayed
    refresh_family_id     uuid,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    expires_at            timestamptz NOT NULL,
    used_at               timestamptz,
    CONSTRAINT oauth_codes_pkce_pair CHECK ((code_challenge IS NULL) = (code_challenge_method IS NULL))
);
CREATE INDEX oauth_codes_application_idx ON oauth_codes (application_id);
CREATE INDEX oauth_codes_user_idx ON oauth_codes (user_id);
CREATE INDEX oauth_codes_session_idx ON oauth_codes (session_id);
CREATE INDEX oauth_codes_tenant_idx ON oauth_codes (tenant_id);
CREATE INDEX oauth_codes_expires_idx ON oauth_codes (expires_at);
CREATE TRIGGER oauth_codes_touch BEFORE UPDATE ON oauth_codes FOR EACH ROW EXECUTE FUNCTION sk_touch();

-- What a user let an application do ("authorized apps"). Revoking keeps the row.
CREATE TABLE oauth_consents (
    id             bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    user_id        text NOT NULL REFERENCES users (id),
    application_id text NOT NULL REFERENCES applications (id),
    scopes         jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(scopes) = 'array'),
    granted_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT oauth_consents_user_application_key UNIQUE (user_id, application_id)
);
CREATE INDEX oauth_consents_application_idx ON oauth_consents (application_id);
CREATE TRIGGER oauth_consents_touch BEFORE UPDATE ON oauth_consents
    FOR EACH ROW EXECUTE FUNCTION sk_touch();


---------------------------------------------------------------------------------------------------
-- Signing keys
---------------------------------------------------------------------------------------------------

-- Life cycle: next -> current -> previous -> retired. JWKS publishes next, current and previous.
CREATE TABLE signing_keys (
    kid            text PRIMARY KEY CHECK (kid <> ''),
    alg            text NOT NULL DEFAULT 'RS256' CHECK (alg IN ('RS256', 'ES256')),
    status         text NOT NULL DEFAULT 'next' CHECK (status IN ('next', 'current', 'previous', 'retired')),
    private_sealed bytea NOT NULL,                     -- AES-256-GCM sealed private JWK
    public_jwk     jsonb NOT NULL CHECK (jsonb_typeof(public_jwk) = 'object'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    activated_at   timestamptz,
    retired_at     timestamptz
);
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (alg) WHERE status = 'current';
CREATE INDEX signing_keys_status_idx ON signing_keys (status, alg);
CREATE TRIGGER signing_keys_touch BEFORE UPDATE ON signing_keys FOR EACH ROW EXECUTE FUNCTION sk_touch();


---------------------------------------------------------------------------------------------------
-- MFA, one-time codes, passwords, throttling
---------------------------------------------------------------------------------------------------

CREATE TABLE mfa_methods (
    id              text PRIMARY KEY DEFAULT sk_id('mfa'),
    user_id         text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    method_type     text NOT NULL CHECK (method_type IN ('totp', 'email', 'backup_codes', 'webauthn')),
    name            text,                               -- user's label, e.g. for a security key
    secret_sealed   bytea,                              -- TOTP seed, sealed
    data            jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object'), -- WebAuthn credential
    confirmed_at    timestamptz,                        -- NULL: enrolment not finished
    last_used_at    timestamptz,
    last_used_step  bigint,                             -- TOTP replay guard: highest accepted step
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mfa_methods_user_idx ON mfa_methods (user_id, method_type);
CREATE TRIGGER mfa_methods_touch BEFORE UPDATE ON mfa_methods FOR EACH ROW EXECUTE FUNCTION sk_touch();

CREATE TABLE mfa_backup_codes (
    id         bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  text NOT NULL CHECK (code_hash ~ '^[0-9a-f]{64}$'),
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mfa_backup_codes_user_code_key UNIQUE (user_id, code_hash)
);
CREATE TRIGGER mfa_backup_codes_touch BEFORE UPDATE ON mfa_backup_codes
    FOR EACH ROW EXECUTE FUNCTION sk_touch();

-- Short-lived codes and tokens: emailed login / MFA codes, password-reset and verification links,
-- MFA login challenges (mfa_token) and multi-step login flow state (purpose 'flow', state in data).
CREATE TABLE one_time_codes (
    id           text PRIMARY KEY DEFAULT sk_id('otc'),
    purpose      text NOT NULL CHECK (purpose IN ('email_login', 'mfa_email', 'password_reset',
                                                  'email_verify', 'mfa_login', 'flow')),
    tenant_id    text REFERENCES tenants (id),
    user_id      text REFERENCES users (id),
    email        text,
    code_hash    text NOT NULL CHECK (code_hash ~ '^[0-9a-f]{64}$'),
    data         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object'),
    attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts integer NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    ip_address   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX one_time_codes_lookup_idx ON one_time_codes (purpose, code_hash);
CREATE INDEX one_time_codes_user_idx ON one_time_codes (user_id, purpose);
CREATE INDEX one_time_codes_tenant_idx ON one_time_codes (tenant_id);
CREATE INDEX one_time_codes_expires_idx ON one_time_codes (expires_at);
CREATE TRIGGER one_time_codes_touch BEFORE UPDATE ON one_time_codes
    FOR EACH ROW EXECUTE FUNCTION sk_touch();

CREATE TABLE password_history (
    id            bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    user_id       text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX password_history_user_idx ON password_history (user_id, created_at);
CREATE TRIGGER password_history_touch BEFORE UPDATE ON password_history
    FOR EACH ROW EXECUTE FUNCTION sk_touch();

-- Login failure counters, keyed per account and per client address (e.g. 'acct:<tenant>:<email>',
-- 'ip:<address>').
CREATE TABLE auth_throttle (
    key               text PRIMARY KEY,
    failures          integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    window_started_at timestamptz NOT NULL DEFAULT now(),
    locked_until      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX auth_throttle_window_idx ON auth_throttle (window_started_at);
CREATE TRIGGER auth_throttle_touch BEFORE UPDATE ON auth_throttle FOR EACH ROW EXECUTE FUNCTION sk_touch();


---------------------------------------------------------------------------------------------------
-- Outbound webhooks
---------------------------------------------------------------------------------------------------

-- Owner: a tenant, a partner, or neither (platform-wide).
CREATE TABLE webhooks (
    id                   text PRIMARY KEY DEFAULT sk_id('whk'),
    tenant_id            text REFERENCES tenants (id),
    partner_id           text REFERENCES partners (id),
    name                 text,
    description          text,
    url                  text NOT NULL CHECK (url ~* '^https?://'),
    events               jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(events) = 'array'),
    secret_sealed        bytea NOT NULL,               -- HMAC signing secret, sealed
    enabled              boolean NOT NULL DEFAULT true,
    consecutive_failures integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    last_delivery_at     timestamptz,
    disabled_reason      text,
    secret_rotated_at    timestamptz,
    created_by           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz,
    CONSTRAINT webhooks_one_owner CHECK (num_nonnulls(tenant_id, partner_id) <= 1)
);
CREATE INDEX webhooks_tenant_idx ON webhooks (tenant_id, created_at, id);
CREATE INDEX webhooks_partner_idx ON webhooks (partner_id, created_at, id);
CREATE INDEX webhooks_list_idx ON webhooks (created_at, id);
CREATE TRIGGER webhooks_touch BEFORE UPDATE ON webhooks FOR EACH ROW EXECUTE FUNCTION sk_touch();

-- One row per (event, webhook). id is sent as X-ScaiKey-Webhook-ID.
-- pending: waiting for next_attempt_at (first try or retry); delivered: 2xx received;
-- failed: retries exhausted or webhook gone.
CREATE TABLE webhook_deliveries (
    id               bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    webhook_id       text NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         text NOT NULL,                    -- evt_...
    event_type       text NOT NULL,
    payload          jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz,
    last_status_code integer,
    last_error       text,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_deliveries_event_key UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_list_idx ON webhook_deliveries (webhook_id, created_at, id);
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);
CREATE TRIGGER webhook_deliveries_touch BEFORE UPDATE ON webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION sk_touch();


---------------------------------------------------------------------------------------------------
-- Application registration requests
---------------------------------------------------------------------------------------------------

CREATE TABLE registration_requests (
    id                       text PRIMARY KEY DEFAULT sk_id('reg'),
    status                   text NOT NULL DEFAULT 'PENDING'
                             CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED', 'CANCELLED', 'EXPIRED')),
    scope                    text NOT NULL CHECK (scope IN ('GLOBAL', 'PARTNER', 'TENANT')),
    partner_id               text REFERENCES partners (id),
    tenant_id                text REFERENCES tenants (id),
    application_name         text NOT NULL CHECK (btrim(application_name) <> ''),
    application_type         text NOT NULL CHECK (application_type IN ('WEB', 'SERVICE', 'SPA', 'NATIVE')),
    description              text,
    redirect_uris            jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(redirect_uris) = 'array'),
    allowed_origins          jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(allowed_origins) = 'array'),
    requested_scopes         jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(requested_scopes) = 'array'),
    contact_email            text,
    contact_name             text,
    requested_by             text,                     -- admin principal for admin-initiated requests
    ip_address               text,
    status_token_hash        text NOT NULL CHECK (status_token_hash ~ '^[0-9a-f]{64}$'),
    application_id           text REFERENCES applications (id),
    decided_by               text,
    decided_at               timestamptz,
    decision_reason          text,
    -- approved credentials kept sealed until the requester retrieves them once, then cleared
    credentials_sealed       bytea,
    credentials_retrieved_at timestamptz,
    expires_at               timestamptz NOT NULL DEFAULT now() + interval '7 days',
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT registration_requests_status_token_key UNIQUE (status_token_hash),
    CONSTRAINT registration_requests_scope_owner CHECK (
        (scope = 'GLOBAL'  AND partner_id IS NULL     AND tenant_id IS NULL)
     OR (scope = 'PARTNER' AND partner_id IS NOT NULL AND tenant_id IS NULL)
     OR (scope = 'TENANT'  AND partner_id IS NULL     AND tenant_id IS NOT NULL))
);
CREATE INDEX registration_requests_status_idx ON registration_requests (status, scope);
CREATE INDEX registration_requests_partner_idx ON registration_requests (partner_id, created_at, id);
CREATE INDEX registration_requests_tenant_idx ON registration_requests (tenant_id, created_at, id);
CREATE INDEX registration_requests_application_idx ON registration_requests (application_id);
CREATE INDEX registration_requests_expires_idx ON registration_requests (expires_at)
    WHERE status = 'PENDING';
CREATE INDEX registration_requests_list_idx ON registration_requests (created_at, id);
CREATE TRIGGER registration_requests_touch BEFORE UPDATE ON registration_requests
    FOR EACH ROW EXECUTE FUNCTION sk_touch();


---------------------------------------------------------------------------------------------------
-- Audit log (append-only, hash-chained)
---------------------------------------------------------------------------------------------------
--
-- Each row carries prev_hash (the row_hash of the row before it, 64 zeros for the first row) and
-- row_hash = hex(sha256(sk_audit_canonical(row))). Changing, removing or reordering any row but
-- the last breaks the chain at that row; sk_audit_verify() finds the first break.
--
-- Ordering: the chain order must be the id order. Ids are therefore not given by a column
-- default (a default is evaluated before BEFORE triggers run, i.e. before the lock below, so two
-- concurrent inserts could take ids in one order and chain in the other). Instead the insert
-- trigger first takes a transaction-level advisory lock, then draws the id from audit_log_id_seq,
-- then reads the newest row's hash. The lock is held until commit, so the next writer sees this
-- row (READ COMMITTED takes a fresh snapshot for each statement inside the trigger) and chains
-- after it. A rolled-back insert leaves only a gap in the ids, which the chain does not care
-- about. Because the lock is held to the end of the transaction, write the audit row last.
--
-- Lock key 8314596442290611316 = the bytes 'scaiaudt' read as a big-endian bigint.

CREATE TABLE audit_log (
    id            bigint PRIMARY KEY,                  -- assigned by sk_audit_chain(), see above
    occurred_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    tenant_id     text,
    partner_id    text,
    actor_id      text,
    actor_email   text,
    actor_type    text CHECK (actor_type IN ('admin', 'user', 'service', 'agent', 'system', 'anonymous')),
    action        text NOT NULL CHECK (action <> ''),  -- e.g. 'admin.login', 'user.created'
    resource_type text,
    resource_id   text,
    result        text NOT NULL CHECK (result IN ('success', 'failure', 'denied', 'error')),
    ip_address    text,
    user_agent    text,
    request_id    text,
    details       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
    prev_hash     text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    row_hash      text NOT NULL CHECK (row_hash ~ '^[0-9a-f]{64}$')
);
CREATE SEQUENCE audit_log_id_seq AS bigint OWNED BY audit_log.id;

-- tenant/partner/actor ids are deliberately not foreign keys: the log outlives what it describes.
CREATE INDEX audit_log_occurred_idx ON audit_log (occurred_at);
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, id);
CREATE INDEX audit_log_partner_idx ON audit_log (partner_id, id);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, id);
CREATE INDEX audit_log_actor_email_idx ON audit_log (lower(actor_email));
CREATE INDEX audit_log_action_idx ON audit_log (action, id);
CREATE INDEX audit_log_resource_idx ON audit_log (resource_type, resource_id);
CREATE INDEX audit_log_ip_idx ON audit_log (ip_address);

-- One field of the canonical text: NULL is '\N'; '\' and '|' inside values are escaped so that
-- no two different rows produce the same text.
CREATE FUNCTION sk_audit_field(v text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(replace(replace(v, '\', '\\'), '|', '\|'), '\N')
$$;

-- The text a row's hash is computed over: prev_hash and then every column but id and row_hash,
-- in a fixed order, separated by '|'. Timestamps in UTC with microseconds; details as jsonb text
-- (jsonb output is normalised, so equal documents give equal text).
CREATE FUNCTION sk_audit_canonical(a audit_log) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT concat_ws('|',
        sk_audit_field(a.prev_hash),
        sk_audit_field(to_char(a.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
        sk_audit_field(a.tenant_id),
        sk_audit_field(a.partner_id),
        sk_audit_field(a.actor_id),
        sk_audit_field(a.actor_email),
        sk_audit_field(a.actor_type),
        sk_audit_field(a.action),
        sk_audit_field(a.resource_type),
        sk_audit_field(a.resource_id),
        sk_audit_field(a.result),
        sk_audit_field(a.ip_address),
        sk_audit_field(a.user_agent),
        sk_audit_field(a.request_id),
        sk_audit_field(a.details::text))
$$;

CREATE FUNCTION sk_audit_row_hash(a audit_log) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT encode(sha256(convert_to(sk_audit_canonical(a), 'UTF8')), 'hex')
$$;

CREATE FUNCTION sk_audit_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    prev text;
BEGIN
    -- under REPEATABLE READ or SERIALIZABLE the snapshot predates the lock and could miss the
    -- newest row, forking the chain: refuse rather than fork
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'audit_log rows must be written at READ COMMITTED isolation'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM pg_advisory_xact_lock(8314596442290611316);
    NEW.id := nextval(pg_get_serial_sequence('audit_log', 'id'));
    SELECT a.row_hash INTO prev FROM audit_log a ORDER BY a.id DESC LIMIT 1;
    NEW.prev_hash := coalesce(prev, repeat('0', 64));
    NEW.row_hash := sk_audit_row_hash(NEW);
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION sk_audit_chain();

-- Append-only. The session setting scaikey.audit_maintenance = 'on' lifts the ban (retention
-- jobs, tests that simulate tampering). Any session can set it: this guards against mistakes;
-- the hash chain, and granting the application role only INSERT and SELECT, guard against intent.
CREATE FUNCTION sk_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('scaikey.audit_maintenance', true), '') = 'on' THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION sk_audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION sk_audit_append_only();

-- Walks the log in id order. ok = true: every row links to its predecessor and its hash
-- recomputes; checked = number of rows verified. ok = false: first_broken_id is the first row that
-- fails, reason says which test failed, checked = number of intact rows before it.
CREATE FUNCTION sk_audit_verify()
RETURNS TABLE (ok boolean, checked bigint, first_broken_id bigint, reason text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r        audit_log;
    expected text := repeat('0', 64);
    n        bigint := 0;
BEGIN
    FOR r IN SELECT * FROM audit_log ORDER BY audit_log.id LOOP
        IF r.prev_hash IS DISTINCT FROM expected THEN
            ok := false; checked := n; first_broken_id := r.id;
            reason := 'prev_hash does not match the row_hash of the previous row';
            RETURN NEXT;
            RETURN;
        END IF;
        IF r.row_hash IS DISTINCT FROM sk_audit_row_hash(r) THEN
            ok := false; checked := n; first_broken_id := r.id;
            reason := 'row_hash does not match the row content';
            RETURN NEXT;
            RETURN;
        END IF;
        expected := r.row_hash;
        n := n + 1;
    END LOOP;
    ok := true; checked := n; first_broken_id := NULL; reason := NULL;
    RETURN NEXT;
END
$$;


---------------------------------------------------------------------------------------------------
-- Platform settings (singleton)
---------------------------------------------------------------------------------------------------

CREATE TABLE platform_settings (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    settings   jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER platform_settings_touch BEFORE UPDATE ON platform_settings
    FOR EACH ROW EXECUTE FUNCTION sk_touch();
INSERT INTO platform_settings (id) VALUES (true);
