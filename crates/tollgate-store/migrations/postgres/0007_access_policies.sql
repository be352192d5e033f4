-- tollgate schema v7: Access policies (DESIGN.md §6) replace the service-auth allow-lists. Keep
-- in step with ../sqlite/0007_access_policies.sql, which explains the tables.
CREATE TABLE access_policies (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    decision    TEXT    NOT NULL CHECK (decision IN ('allow', 'deny', 'non_identity', 'bypass')),
    rules       TEXT    NOT NULL,
    -- NULL: reusable; else the id of the application it is scoped to
    application TEXT    REFERENCES applications (id) ON DELETE CASCADE,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX access_policies_application ON access_policies (application);

CREATE TABLE application_policies (
    application TEXT    NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    precedence  BIGINT  NOT NULL CHECK (precedence >= 1),
    policy      TEXT    NOT NULL REFERENCES access_policies (id),
    PRIMARY KEY (application, precedence),
    UNIQUE (application, policy)
);
CREATE INDEX application_policies_policy ON application_policies (policy);

INSERT INTO access_policies (id, name, decision, rules, application, created_at, updated_at)
SELECT
    gen_random_uuid()::text,
    'Service Auth',
    'non_identity',
    CASE a.policy
        WHEN 'any' THEN '{"include":[{"any_valid_service_token":{}}],"require":[],"exclude":[]}'
        ELSE '{"include":[' || coalesce((
            SELECT string_agg('{"service_token":{"token_id":"' || s.id || '"}}', ','
                ORDER BY l.position)
            FROM application_allowed_tokens l
            JOIN service_tokens s ON s.client_id = l.client_id
            WHERE l.application = a.name
        ), '') || '],"require":[],"exclude":[]}'
    END,
    a.id,
    a.created_at,
    a.updated_at
FROM applications a;

INSERT INTO application_policies (application, precedence, policy)
SELECT application, 1, id FROM access_policies;

DROP TABLE application_allowed_tokens;
ALTER TABLE applications DROP COLUMN policy;

-- The signing-key rotation period set through the admin API (`key_rotation_interval_days`),
-- in seconds, for every instance sharing the store; NULL: each issuer's own.
ALTER TABLE tollgate_meta ADD COLUMN key_rotation_secs BIGINT CHECK (key_rotation_secs > 0);
