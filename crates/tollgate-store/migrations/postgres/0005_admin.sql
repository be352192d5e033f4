-- tollgate schema v5: the admin model (DESIGN.md §6). Keep in step with
-- ../sqlite/0005_admin.sql. 0004 is left to the notifications change; this file depends on
-- nothing after 0003, so it applies whichever of the two a database received first.
--
-- Service tokens: `name` is no longer unique (Cloudflare allows duplicates; the CLI addresses
-- tokens by client ID); `enabled` (false refuses the current and the previous secret and the
-- token's cookies, the record is kept) and `client_secret_version` (Cloudflare's rotation
-- counter) are new. `previous_secret_expires_at` already is Cloudflare's
-- `previous_client_secret_expires_at`.
ALTER TABLE service_tokens DROP CONSTRAINT service_tokens_name_key;
CREATE INDEX service_tokens_name ON service_tokens (name);
ALTER TABLE service_tokens ADD COLUMN enabled BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE service_tokens ADD COLUMN client_secret_version BIGINT NOT NULL DEFAULT 1
    CHECK (client_secret_version >= 1);

-- The account: one row, one 32-lowercase-hex account_id, made on first use by whichever
-- instance gets there first (INSERT … ON CONFLICT DO NOTHING, then read).
CREATE TABLE account (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    account_id TEXT    NOT NULL CHECK (account_id ~ '^[0-9a-f]{32}$'),
    created_at BIGINT  NOT NULL
);

-- API tokens for the admin API: only the SHA-256 of the token is kept.
CREATE TABLE api_tokens (
    id           TEXT    NOT NULL PRIMARY KEY,
    name         TEXT    NOT NULL,
    token_hash   BYTEA   NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    -- 'read': read-only; 'edit': read and change
    permission   TEXT    NOT NULL CHECK (permission IN ('read', 'edit')),
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT
);
