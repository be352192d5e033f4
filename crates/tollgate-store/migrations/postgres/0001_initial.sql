-- tollgate schema v1 (PostgreSQL). Keep in step with ../sqlite/0001_initial.sql: same tables,
-- same columns, same meaning; only the type names differ.

-- One row: the change counter every write bumps, and the signing-key ring's generation.
CREATE TABLE tollgate_meta (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    revision        BIGINT  NOT NULL,
    ring_generation BIGINT  NOT NULL
);
INSERT INTO tollgate_meta (id, revision, ring_generation) VALUES (1, 0, 0);

CREATE TABLE service_tokens (
    id                         TEXT    NOT NULL PRIMARY KEY,
    name                       TEXT    NOT NULL UNIQUE,
    client_id                  TEXT    NOT NULL UNIQUE,
    secret_hash                BYTEA   NOT NULL CHECK (length(secret_hash) = 32),
    previous_secret_hash       BYTEA            CHECK (length(previous_secret_hash) = 32),
    previous_secret_expires_at BIGINT,
    -- NULL = forever
    duration_seconds           BIGINT           CHECK (duration_seconds >= 0),
    created_at                 BIGINT  NOT NULL,
    updated_at                 BIGINT  NOT NULL,
    expires_at                 BIGINT,
    last_seen_at               BIGINT
);

CREATE TABLE signing_keys (
    kid               TEXT    NOT NULL PRIMARY KEY,
    -- order of the key in the ring
    position          BIGINT  NOT NULL UNIQUE,
    -- 'none': PKCS#8 DER; 'aes-256-gcm': 12-byte nonce || ciphertext || 16-byte tag, kid as AAD
    key_encryption    TEXT    NOT NULL CHECK (key_encryption IN ('none', 'aes-256-gcm')),
    private_key       BYTEA   NOT NULL,
    created_at        BIGINT  NOT NULL,
    activates_at      BIGINT  NOT NULL,
    retires_at        BIGINT,
    expires_at        BIGINT
);

CREATE TABLE applications (
    name                            TEXT    NOT NULL PRIMARY KEY,
    aud                             TEXT    NOT NULL UNIQUE,
    session_duration                BIGINT  NOT NULL CHECK (session_duration >= 0),
    read_service_tokens_from_header TEXT,
    cookie_http_only                BOOLEAN NOT NULL,
    cookie_secure                   BOOLEAN,
    -- 'any': any valid service token; 'tokens': only those in application_allowed_tokens
    policy                          TEXT    NOT NULL CHECK (policy IN ('any', 'tokens')),
    created_at                      BIGINT  NOT NULL
);

CREATE TABLE application_allowed_tokens (
    application TEXT    NOT NULL REFERENCES applications (name) ON DELETE CASCADE ON UPDATE CASCADE,
    position    BIGINT  NOT NULL,
    client_id   TEXT    NOT NULL,
    PRIMARY KEY (application, position)
);
