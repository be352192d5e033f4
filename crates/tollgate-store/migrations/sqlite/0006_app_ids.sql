-- tollgate schema v6: what Cloudflare's v4 API keys applications on (DESIGN.md §6). Keep in
-- step with ../postgres/0006_app_ids.sql.
--
-- Applications gain:
-- - `id`: a UUID (lowercase, hyphenated, version 4), unique, never changed; the admin API's
--   paths key on it. Every existing row gets a fresh one here, built from randomblob (version
--   nibble 4, variant nibble one of 8, 9, a, b).
-- - `updated_at`: the last change of any field; existing rows take their `created_at`.
-- - `tokens_revoked_before`: Cloudflare's `revoke_tokens`; application tokens minted for the
--   application with an `iat` before it (unix seconds) are refused. NULL: never revoked.
--
-- SQLite cannot add a NOT NULL UNIQUE column without a default, so the table is rebuilt, every
-- row and column copied (this migration runs in one transaction). Foreign keys are on and
-- cannot be switched off inside a transaction, and dropping a parent table deletes its rows
-- first, which would cascade to the allow-lists: so the allow-lists are parked in a plain
-- table, their table dropped before the parent and re-created after it, rows unchanged.
CREATE TABLE application_allowed_tokens_v5 AS
    SELECT application, position, client_id FROM application_allowed_tokens;
DROP TABLE application_allowed_tokens;

CREATE TABLE applications_v6 (
    name                            TEXT    NOT NULL PRIMARY KEY,
    aud                             TEXT    NOT NULL UNIQUE,
    session_duration                INTEGER NOT NULL CHECK (session_duration >= 0),
    read_service_tokens_from_header TEXT,
    cookie_http_only                BOOLEAN NOT NULL,
    cookie_secure                   BOOLEAN,
    -- 'any': any valid service token; 'tokens': only those in application_allowed_tokens
    policy                          TEXT    NOT NULL CHECK (policy IN ('any', 'tokens')),
    created_at                      INTEGER NOT NULL,
    domain                          TEXT,
    origin                          TEXT,
    id                              TEXT    NOT NULL UNIQUE,
    updated_at                      INTEGER NOT NULL,
    -- NULL = never revoked
    tokens_revoked_before           INTEGER
);
INSERT INTO applications_v6 (name, aud, session_duration, read_service_tokens_from_header,
    cookie_http_only, cookie_secure, policy, created_at, domain, origin, id, updated_at,
    tokens_revoked_before)
SELECT name, aud, session_duration, read_service_tokens_from_header, cookie_http_only,
    cookie_secure, policy, created_at, domain, origin,
    lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' ||
        substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (random() & 3), 1) ||
        substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))),
    created_at, NULL
FROM applications;
DROP TABLE applications;
ALTER TABLE applications_v6 RENAME TO applications;
CREATE UNIQUE INDEX applications_domain ON applications (domain);

CREATE TABLE application_allowed_tokens (
    application TEXT    NOT NULL REFERENCES applications (name) ON DELETE CASCADE ON UPDATE CASCADE,
    position    INTEGER NOT NULL,
    client_id   TEXT    NOT NULL,
    PRIMARY KEY (application, position)
);
INSERT INTO application_allowed_tokens (application, position, client_id)
SELECT application, position, client_id FROM application_allowed_tokens_v5;
DROP TABLE application_allowed_tokens_v5;
