-- tollgate schema v1 (SQLite). Keep in step with ../postgres/0001_initial.sql: same tables,
-- same columns, same meaning; only the type names differ.

-- One row: the change counter every write bumps, and the signing-key ring's generation.
CREATE TABLE tollgate_meta (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    revision        INTEGER NOT NULL,
    ring_generation INTEGER NOT NULL
);
INSERT INTO tollgate_meta (id, revision, ring_generation) VALUES (1, 0, 0);

CREATE TABLE service_tokens (
    id                         TEXT    NOT NULL PRIMARY KEY,
    name                       TEXT    NOT NULL UNIQUE,
    client_id                  TEXT    NOT NULL UNIQUE,
    secret_hash                BLOB    NOT NULL CHECK (length(secret_hash) = 32),
    previous_secret_hash       BLOB             CHECK (length(previous_secret_hash) = 32),
    previous_secret_expires_at INTEGER,
    -- NULL = forever
    duration_seconds           INTEGER          CHECK (duration_seconds >= 0),
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL,
    expires_at                 INTEGER,
    last_seen_at               INTEGER
);

CREATE TABLE signing_keys (
    kid               TEXT    NOT NULL PRIMARY KEY,
    -- order of the key in the ring
    position          INTEGER NOT NULL UNIQUE,
    -- 'none': PKCS#8 DER; 'aes-256-gcm': 12-byte nonce || ciphertext || 16-byte tag, kid as AAD
    key_encryption    TEXT    NOT NULL CHECK (key_encryption IN ('none', 'aes-256-gcm')),
    private_key       BLOB    NOT NULL,
    created_at        INTEGER NOT NULL,
    activates_at      INTEGER NOT NULL,
    retires_at        INTEGER,
    expires_at        INTEGER
);

CREATE TABLE applications (
    name                            TEXT    NOT NULL PRIMARY KEY,
    aud                             TEXT    NOT NULL UNIQUE,
    session_duration                INTEGER NOT NULL CHECK (session_duration >= 0),
    read_service_tokens_from_header TEXT,
    cookie_http_only                BOOLEAN NOT NULL,
    cookie_secure                   BOOLEAN,
    -- 'any': any valid service token; 'tokens': only those in application_allowed_tokens
    policy                          TEXT    NOT NULL CHECK (policy IN ('any', 'tokens')),
    created_at                      INTEGER NOT NULL
);

CREATE TABLE application_allowed_tokens (
    application TEXT    NOT NULL REFERENCES applications (name) ON DELETE CASCADE ON UPDATE CASCADE,
    position    INTEGER NOT NULL,
    client_id   TEXT    NOT NULL,
    PRIMARY KEY (application, position)
);
