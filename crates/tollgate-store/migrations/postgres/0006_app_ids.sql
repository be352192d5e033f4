-- tollgate schema v6: what Cloudflare's v4 API keys applications on (DESIGN.md §6). Keep in
-- step with ../sqlite/0006_app_ids.sql.
--
-- Applications gain:
-- - `id`: a UUID (lowercase, hyphenated, version 4), unique, never changed; the admin API's
--   paths key on it. Every existing row gets a fresh one here (gen_random_uuid, PostgreSQL 13+).
-- - `updated_at`: the last change of any field; existing rows take their `created_at`.
-- - `tokens_revoked_before`: Cloudflare's `revoke_tokens`; application tokens minted for the
--   application with an `iat` before it (unix seconds) are refused. NULL: never revoked.
ALTER TABLE applications ADD COLUMN id TEXT;
UPDATE applications SET id = gen_random_uuid()::text;
ALTER TABLE applications ALTER COLUMN id SET NOT NULL;
ALTER TABLE applications ADD CONSTRAINT applications_id_key UNIQUE (id);

ALTER TABLE applications ADD COLUMN updated_at BIGINT;
UPDATE applications SET updated_at = created_at;
ALTER TABLE applications ALTER COLUMN updated_at SET NOT NULL;

-- NULL = never revoked
ALTER TABLE applications ADD COLUMN tokens_revoked_before BIGINT;
