-- tollgate schema v2: where an application lives and where the gateway sends it.
-- domain: AppDomain's canonical spelling (host, host/path, *.host; lowercase), NULL = not routed
--         by domain. Unique: two applications never claim the same requests.
-- origin: the canonical http(s) URL the gateway proxies to, NULL = tollgate answers itself.
-- Rows of the previous release keep every value and get NULL in both.
ALTER TABLE applications ADD COLUMN domain TEXT;
ALTER TABLE applications ADD COLUMN origin TEXT;
CREATE UNIQUE INDEX applications_domain ON applications (domain);
