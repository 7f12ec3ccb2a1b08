-- Fast lists on large tenants.
--
-- 1. Live-row indexes: lists read only rows with deleted_at IS NULL, in (created_at, id) order.
-- 2. Prefix search on first and last names (email and display name are indexed by 001).
-- 3. row_counts: the number of live rows per table and tenant, kept by statement-level triggers
--    (transition tables, so a bulk insert updates each tenant's count once). An unfiltered list
--    reads its total from here instead of counting a million rows.

CREATE INDEX users_tenant_live_idx ON users (tenant_id, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX users_live_idx ON users (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX users_first_name_prefix_idx ON users (lower(first_name) text_pattern_ops);
CREATE INDEX users_last_name_prefix_idx ON users (lower(last_name) text_pattern_ops);
CREATE INDEX groups_tenant_live_idx ON groups (tenant_id, created_at, id) WHERE deleted_at IS NULL;

CREATE TABLE row_counts (
    table_name text NOT NULL,
    tenant_id  text NOT NULL,            -- '' for rows that belong to no tenant
    n          bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (table_name, tenant_id)
);

CREATE FUNCTION sk_row_counts_apply(tbl text, deltas jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    k text;
    d bigint;
BEGIN
    FOR k, d IN SELECT key, value::bigint FROM jsonb_each_text(deltas) LOOP
        IF d <> 0 THEN
            INSERT INTO row_counts AS c (table_name, tenant_id, n) VALUES (tbl, k, d)
            ON CONFLICT (table_name, tenant_id) DO UPDATE SET n = c.n + EXCLUDED.n;
        END IF;
    END LOOP;
END
$$;

CREATE FUNCTION sk_row_counts_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sk_row_counts_apply(TG_TABLE_NAME, coalesce((
        SELECT jsonb_object_agg(k, c) FROM (
            SELECT coalesce(tenant_id, '') AS k, count(*) AS c FROM new_rows
            WHERE deleted_at IS NULL GROUP BY 1) x), '{}'));
    RETURN NULL;
END
$$;

CREATE FUNCTION sk_row_counts_del() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sk_row_counts_apply(TG_TABLE_NAME, coalesce((
        SELECT jsonb_object_agg(k, -c) FROM (
            SELECT coalesce(tenant_id, '') AS k, count(*) AS c FROM old_rows
            WHERE deleted_at IS NULL GROUP BY 1) x), '{}'));
    RETURN NULL;
END
$$;

CREATE FUNCTION sk_row_counts_upd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sk_row_counts_apply(TG_TABLE_NAME, coalesce((
        SELECT jsonb_object_agg(k, c) FROM (
            SELECT k, sum(c) AS c FROM (
                SELECT coalesce(tenant_id, '') AS k, count(*) AS c FROM new_rows
                WHERE deleted_at IS NULL GROUP BY 1
                UNION ALL
                SELECT coalesce(tenant_id, ''), -count(*) FROM old_rows
                WHERE deleted_at IS NULL GROUP BY 1) u
            GROUP BY k) x), '{}'));
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'groups', 'applications', 'identity_providers', 'mcp_agents'] LOOP
        EXECUTE format('CREATE TRIGGER %1$s_count_ins AFTER INSERT ON %1$I REFERENCING NEW TABLE AS new_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION sk_row_counts_ins()', t);
        EXECUTE format('CREATE TRIGGER %1$s_count_del AFTER DELETE ON %1$I REFERENCING OLD TABLE AS old_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION sk_row_counts_del()', t);
        EXECUTE format('CREATE TRIGGER %1$s_count_upd AFTER UPDATE ON %1$I REFERENCING OLD TABLE AS old_rows '
                       'NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sk_row_counts_upd()', t);
        EXECUTE format('INSERT INTO row_counts (table_name, tenant_id, n) '
                       'SELECT %1$L, coalesce(tenant_id, ''''), count(*) FROM %1$I WHERE deleted_at IS NULL '
                       'GROUP BY 2', t);
    END LOOP;
END
$$;
