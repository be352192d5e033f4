-- tollgate schema v7: Access policies (DESIGN.md §6) replace the service-auth allow-lists. Keep
-- in step with ../postgres/0007_access_policies.sql.
--
-- - `access_policies`: every policy, reusable (`application` NULL) or scoped to the one
--   application it belongs to (deleted with it). `rules` is Cloudflare's rule lists as JSON,
--   `{"include":[…],"require":[…],"exclude":[…]}`, each rule `{"service_token":{"token_id":…}}`,
--   `{"any_valid_service_token":{}}`, `{"ip":{"ip":…}}`, `{"everyone":{}}`, `{"email":{…}}` or
--   `{"email_domain":{…}}`.
-- - `application_policies`: an application's policies, by precedence (unique per application).
--   A linked policy cannot be deleted while linked (no cascade from the policy side).
--
-- Every application gets one scoped `non_identity` policy named "Service Auth" standing for its
-- allow-list: `any` becomes `any_valid_service_token`, `tokens` one `service_token` rule per
-- listed client ID (by the token's id, in list order; entries naming no token are dropped, as a
-- token's deletion used to drop them). The allow-list table and the `policy` column go.
CREATE TABLE access_policies (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    decision    TEXT    NOT NULL CHECK (decision IN ('allow', 'deny', 'non_identity', 'bypass')),
    rules       TEXT    NOT NULL,
    -- NULL: reusable; else the id of the application it is scoped to
    application TEXT    REFERENCES applications (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX access_policies_application ON access_policies (application);

CREATE TABLE application_policies (
    application TEXT    NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    precedence  INTEGER NOT NULL CHECK (precedence >= 1),
    policy      TEXT    NOT NULL REFERENCES access_policies (id),
    PRIMARY KEY (application, precedence),
    UNIQUE (application, policy)
);
CREATE INDEX application_policies_policy ON application_policies (policy);

INSERT INTO access_policies (id, name, decision, rules, application, created_at, updated_at)
SELECT
    lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' ||
        substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (random() & 3), 1) ||
        substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))),
    'Service Auth',
    'non_identity',
    CASE a.policy
        WHEN 'any' THEN '{"include":[{"any_valid_service_token":{}}],"require":[],"exclude":[]}'
        ELSE '{"include":[' || coalesce((
            SELECT group_concat('{"service_token":{"token_id":"' || t.id || '"}}', ',')
            FROM (
                SELECT s.id
                FROM application_allowed_tokens l
                JOIN service_tokens s ON s.client_id = l.client_id
                WHERE l.application = a.name
                ORDER BY l.position
            ) t
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
ALTER TABLE tollgate_meta ADD COLUMN key_rotation_secs INTEGER CHECK (key_rotation_secs > 0);
