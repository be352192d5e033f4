//! tollgate-store's backends: the store contract (`tollgate_test::store_contract`, the same
//! suite `MemoryStore` runs in the facade's tests) and what only a SQL backend can show
//! (encryption at rest, reopening, connection errors), on SQLite on a temp file always and on
//! PostgreSQL when `TOLLGATE_TEST_POSTGRES_URL` is set (each test in its own fresh database,
//! dropped after).

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;

use tollgate_issue::{
    AccountStore as _, KeyStore as _, Revision as _, StoreError, TokenStore as _,
};
use tollgate_store::{Backend, ErrorKind, MasterKey, Store, StoreOptions, connect};
use tollgate_test::store_contract::{Database, key, token};

/// One test's database: its URL, and handles opened on it.
struct Db {
    url: String,
    backend: Backend,
}

impl Db {
    async fn store(&self) -> Store {
        self.store_with(StoreOptions::new()).await
    }

    async fn store_with(&self, options: StoreOptions) -> Store {
        let store = connect(&self.url, options).await.unwrap();
        assert_eq!(store.backend(), self.backend);
        store
    }
}

impl Database for Db {
    type Store = Store;

    /// A new pool on the database, as another instance would open.
    async fn open(&self) -> Arc<Store> {
        Arc::new(self.store().await)
    }
}

async fn on_sqlite<F, Fut>(_name: &str, test: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tollgate.db").display());
    test(Db {
        url,
        backend: Backend::Sqlite,
    })
    .await;
}

#[cfg(feature = "postgres")]
async fn on_postgres<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    tollgate_test::postgres::with_database(&format!("postgres::{name}"), |url| {
        test(Db {
            url,
            backend: Backend::Postgres,
        })
    })
    .await;
}

/// Declares the contract suite and each SQL-only test once per backend: `sqlite::name` and
/// `postgres::name`.
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            tollgate_test::store_contract!(super::on_sqlite);
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::on_sqlite(stringify!($name), super::$name).await;
                }
            )*
        }

        #[cfg(feature = "postgres")]
        mod postgres {
            tollgate_test::store_contract!(super::on_postgres);
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::on_postgres(stringify!($name), super::$name).await;
                }
            )*
        }

        #[cfg(not(feature = "postgres"))]
        #[test]
        fn postgres_suite_not_built() {
            tollgate_test::skipped(
                "tollgate-store built without feature `postgres`; the PostgreSQL suite did not run",
            );
        }
    };
}

store_tests!(
    keys_encrypted_at_rest_with_master_key,
    wrong_or_missing_master_key_is_a_clear_error,
    reopening_keeps_data_and_schema,
    a_previous_release_database_is_migrated_and_keeps_its_data,
    a_current_release_database_upgrades_to_the_admin_model,
    a_v5_database_gives_every_application_an_id,
    a_v6_database_turns_allow_lists_into_policies,
);

fn kind_of(error: &StoreError) -> Option<ErrorKind> {
    match error {
        StoreError::Backend(source) => source
            .downcast_ref::<tollgate_store::Error>()
            .map(tollgate_store::Error::kind),
        _ => None,
    }
}

async fn keys_encrypted_at_rest_with_master_key(db: Db) {
    let master = || MasterKey::from_bytes(&[0x5a; 32]).unwrap();
    let sealed = db
        .store_with(StoreOptions::new().with_master_key(master()))
        .await;
    assert!(sealed.encrypts_keys());
    let ring = vec![key(1), key(2)];
    assert!(sealed.swap_ring(0, &ring).await.unwrap());
    assert_eq!(sealed.load_ring().await.unwrap(), (1, ring.clone()));
    // Another instance with the same master key reads the same keys.
    let twin = db
        .store_with(StoreOptions::new().with_master_key(master()))
        .await;
    assert_eq!(twin.load_ring().await.unwrap(), (1, ring.clone()));

    // On disk: no trace of the private key, and the row says how it is sealed.
    let raw = raw_keys(&db).await;
    assert_eq!(raw.len(), 2);
    for ((kid, scheme, bytes), record) in raw.iter().zip(&ring) {
        assert_eq!(kid, &record.kid);
        assert_eq!(scheme, "aes-256-gcm");
        assert_eq!(bytes.len(), 12 + record.private_key_pkcs8.len() + 16);
        assert!(
            !contains(bytes, b"PRIVATE-KEY"),
            "plaintext key material at rest"
        );
    }

    // Without a master key keys are stored plain, and the store says so.
    let plain = db.store().await;
    assert!(!plain.encrypts_keys());
    assert!(plain.swap_ring(1, &[key(3)]).await.unwrap());
    let raw = raw_keys(&db).await;
    assert_eq!(raw[0].1, "none");
    assert_eq!(raw[0].2, key(3).private_key_pkcs8);
    // A handle with a master key still reads plain rows, and seals them on its next write.
    assert_eq!(sealed.load_ring().await.unwrap(), (2, vec![key(3)]));
    assert!(sealed.swap_ring(2, &[key(3)]).await.unwrap());
    assert_eq!(raw_keys(&db).await[0].1, "aes-256-gcm");
}

async fn wrong_or_missing_master_key_is_a_clear_error(db: Db) {
    let right = db
        .store_with(StoreOptions::new().with_master_key(MasterKey::from_bytes(&[1; 32]).unwrap()))
        .await;
    assert!(right.swap_ring(0, &[key(1)]).await.unwrap());

    let wrong = db
        .store_with(StoreOptions::new().with_master_key(MasterKey::from_bytes(&[2; 32]).unwrap()))
        .await;
    let error = wrong.load_ring().await.unwrap_err();
    assert_eq!(kind_of(&error), Some(ErrorKind::WrongMasterKey), "{error}");
    let message = error.to_string();
    assert!(message.contains("TOLLGATE_MASTER_KEY"), "{message}");
    assert!(message.contains(&key(1).kid), "{message}");

    let none = db.store().await;
    let error = none.load_ring().await.unwrap_err();
    assert_eq!(
        kind_of(&error),
        Some(ErrorKind::MasterKeyMissing),
        "{error}"
    );
    assert!(error.to_string().contains("TOLLGATE_MASTER_KEY"));

    // Nothing was damaged by the failed reads.
    assert_eq!(right.load_ring().await.unwrap(), (1, vec![key(1)]));
}

async fn reopening_keeps_data_and_schema(db: Db) {
    let store = db.store().await;
    store.insert_token(&token("alice", 1)).await.unwrap();
    assert!(store.swap_ring(0, &[key(1)]).await.unwrap());
    store.close().await;
    // Connecting again re-runs the migrator: nothing to apply, nothing lost.
    let again = db.store().await;
    assert_eq!(again.list_tokens().await.unwrap(), [token("alice", 1)]);
    assert_eq!(again.load_ring().await.unwrap(), (1, vec![key(1)]));
    assert_eq!(again.revision().await.unwrap(), 2);
}

/// The rows release 0.1 (schema v1, migration 0001 only) wrote: a token, an application with an
/// allow-list, the meta row at revision 4. `HASH` stands for a 32-byte literal, spelled per backend.
const V1_ROWS: [&str; 5] = [
    "INSERT INTO service_tokens (id, name, client_id, secret_hash, duration_seconds, \
     created_at, updated_at, expires_at) VALUES ('00000000-0000-4000-8000-000000000001', \
     'bot', '01010101010101010101010101010101.access', HASH, 31536000, \
     1700000000, 1700000000, 1731536000)",
    "INSERT INTO applications (name, aud, session_duration, read_service_tokens_from_header, \
     cookie_http_only, cookie_secure, policy, created_at) VALUES ('api', \
     'abababababababababababababababababababababababababababababababab', 3600, \
     'authorization', FALSE, TRUE, 'tokens', 1700000001)",
    "INSERT INTO application_allowed_tokens (application, position, client_id) \
     VALUES ('api', 0, '01010101010101010101010101010101.access')",
    "INSERT INTO applications (name, aud, session_duration, cookie_http_only, policy, \
     created_at) VALUES ('demo', \
     'cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd', 86400, TRUE, 'any', \
     1700000002)",
    "UPDATE tollgate_meta SET revision = 4 WHERE id = 1",
];

/// A database exactly as release 0.1 left it: its migrations (0001) and its rows.
async fn make_v1_database(db: &Db) {
    make_database_at(db, 1, &V1_ROWS).await;
}

/// A database at schema `version` (its migrations only, as the release that stopped there ran
/// them) holding `rows`; `HASH` in them stands for 32 bytes of 0x01, `HASH2` for 0x02, `KEY`
/// for the private key of `key(1)`, each spelled per backend.
async fn make_database_at(db: &Db, version: i64, rows: &[&str]) {
    let dir = match db.backend {
        Backend::Postgres => "postgres",
        _ => "sqlite",
    };
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dir);
    let migrator = sqlx::migrate::Migrator::new(migrations).await.unwrap();
    let key_hex = hex_of(&key(1).private_key_pkcs8);
    let spell = |sql: &str, literal: &dyn Fn(&str) -> String| {
        sql.replace("HASH2", &literal(&"02".repeat(32)))
            .replace("HASH", &literal(&"01".repeat(32)))
            .replace("KEY", &literal(&key_hex))
    };
    match db.backend {
        Backend::Postgres => {
            #[cfg(feature = "postgres")]
            {
                let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
                migrator.run_to(version, &pool).await.unwrap();
                for sql in rows {
                    let sql = spell(sql, &|hex| format!("decode('{hex}', 'hex')"));
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&pool)
                        .await
                        .unwrap();
                }
                pool.close().await;
            }
        }
        _ => {
            let options: sqlx::sqlite::SqliteConnectOptions = db.url.parse().unwrap();
            let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
                .await
                .unwrap();
            migrator.run_to(version, &pool).await.unwrap();
            for sql in rows {
                let sql = spell(sql, &|hex| format!("X'{hex}'"));
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            pool.close().await;
        }
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The rows the current release (schema v3, migrations 0001–0003) writes: two tokens (one
/// with a rotated secret in its grace period, last seen, forever), a routed application with an
/// allow-list, a signing key, a logged event, the meta row at revision 6.
const V3_ROWS: [&str; 7] = [
    "INSERT INTO service_tokens (id, name, client_id, secret_hash, duration_seconds, \
     created_at, updated_at, expires_at) VALUES ('00000000-0000-4000-8000-000000000001', \
     'bot', '01010101010101010101010101010101.access', HASH, 31536000, \
     1700000000, 1700000000, 1731536000)",
    "INSERT INTO service_tokens (id, name, client_id, secret_hash, previous_secret_hash, \
     previous_secret_expires_at, duration_seconds, created_at, updated_at, expires_at, \
     last_seen_at) VALUES ('00000000-0000-4000-8000-000000000002', 'rotated', \
     '02020202020202020202020202020202.access', HASH2, HASH, 1700090000, NULL, \
     1700000010, 1700000020, NULL, 1700000030)",
    "INSERT INTO applications (name, aud, session_duration, read_service_tokens_from_header, \
     cookie_http_only, cookie_secure, policy, created_at, domain, origin) VALUES ('api', \
     'abababababababababababababababababababababababababababababababab', 3600, \
     'authorization', FALSE, TRUE, 'tokens', 1700000001, 'example.com/api', \
     'http://127.0.0.1:5000')",
    "INSERT INTO application_allowed_tokens (application, position, client_id) \
     VALUES ('api', 0, '01010101010101010101010101010101.access')",
    "INSERT INTO signing_keys (kid, position, key_encryption, private_key, created_at, \
     activates_at) VALUES ('0101010101010101010101010101010101010101010101010101010101010101', \
     0, 'none', KEY, 1700000001, 1700000101)",
    "INSERT INTO auth_events (at_ms, kind, allowed, action, actor, client_id) VALUES \
     (1700000000000, 'admin', TRUE, 'token.create', 'cli', \
     '01010101010101010101010101010101.access')",
    "UPDATE tollgate_meta SET revision = 6, ring_generation = 1 WHERE id = 1",
];

/// A database made by the current release (0001–0003) upgrades to 0005 with every token
/// field, application, key and log row intact; the new columns take their defaults, names stop
/// being unique, and the account and API tokens work.
async fn a_current_release_database_upgrades_to_the_admin_model(db: Db) {
    use tollgate_issue::{
        ApiPermission, AppStore as _, AuthLogStore as _, LogQuery, TokenDuration,
    };
    make_database_at(&db, 3, &V3_ROWS).await;
    let store = db.store().await;
    let tokens = store.list_tokens().await.unwrap();
    assert_eq!(tokens.len(), 2);
    let bot = &tokens[0];
    assert_eq!(
        (bot.id.as_str(), bot.name.as_str(), bot.client_id.as_str()),
        (
            "00000000-0000-4000-8000-000000000001",
            "bot",
            "01010101010101010101010101010101.access"
        )
    );
    assert_eq!(bot.secret_hash, [1; 32]);
    assert_eq!(bot.duration, TokenDuration::Seconds(31_536_000));
    assert_eq!(bot.expires_at, Some(1_731_536_000));
    assert!(bot.enabled, "existing tokens stay enabled");
    assert_eq!(bot.client_secret_version, 1);
    let rotated = &tokens[1];
    assert_eq!(rotated.secret_hash, [2; 32]);
    assert_eq!(rotated.previous_secret_hash, Some([1; 32]));
    assert_eq!(rotated.previous_secret_expires_at, Some(1_700_090_000));
    assert_eq!(rotated.duration, TokenDuration::Forever);
    assert_eq!(
        (rotated.created_at, rotated.updated_at, rotated.expires_at),
        (1_700_000_010, 1_700_000_020, None)
    );
    assert_eq!(rotated.last_seen_at, Some(1_700_000_030));
    assert!(rotated.enabled);

    let api = store.get_app("api").await.unwrap().unwrap();
    assert_eq!(api.domain.as_deref(), Some("example.com/api"));
    assert_eq!(api.origin.as_deref(), Some("http://127.0.0.1:5000"));
    assert_eq!(
        migrated_allow_list(&api),
        Some(vec!["00000000-0000-4000-8000-000000000001".into()])
    );
    assert_eq!(store.load_ring().await.unwrap(), (1, vec![key(1)]));
    let events = store.select_events(&LogQuery::default()).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        store.revision().await.unwrap(),
        6,
        "migrating is not a write"
    );

    // Names are no longer unique; the new columns work on migrated rows.
    let mut twin = token("bot", 3);
    twin.enabled = false;
    store.insert_token(&twin).await.unwrap();
    let mut disabled = bot.clone();
    disabled.enabled = false;
    disabled.client_secret_version = 2;
    assert!(store.update_token(bot, &disabled).await.unwrap());
    assert_eq!(
        store.get_token(&bot.client_id).await.unwrap(),
        Some(disabled.clone())
    );
    let account = store
        .account_id(&"ab".repeat(16), 1_700_000_000)
        .await
        .unwrap();
    assert_eq!(account, "ab".repeat(16));
    let api_token = tollgate_test::store_contract::api_token("ci", 1, ApiPermission::Read);
    store.insert_api_token(&api_token).await.unwrap();
    store.close().await;

    // Reopening applies nothing more and loses nothing.
    let again = db.store().await;
    assert_eq!(again.list_tokens().await.unwrap().len(), 3);
    assert_eq!(
        again.get_token(&bot.client_id).await.unwrap(),
        Some(disabled)
    );
    assert_eq!(
        again.account_id(&"cd".repeat(16), 0).await.unwrap(),
        account
    );
    assert_eq!(again.list_api_tokens().await.unwrap(), [api_token]);
}

async fn a_previous_release_database_is_migrated_and_keeps_its_data(db: Db) {
    use tollgate_issue::AppStore as _;
    make_v1_database(&db).await;
    let store = db.store().await;
    // Everything v1 wrote is there, unchanged; the new columns are empty.
    let tokens = store.list_tokens().await.unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].name, "bot");
    assert_eq!(tokens[0].secret_hash, [1; 32]);
    assert_eq!(tokens[0].expires_at, Some(1_731_536_000));
    let api = store.get_app("api").await.unwrap().unwrap();
    assert_eq!(api.aud, "ab".repeat(32));
    assert_eq!(api.session_duration, 3600);
    assert_eq!(
        api.read_service_tokens_from_header.as_deref(),
        Some("authorization")
    );
    assert!(!api.cookie_http_only);
    assert_eq!(api.cookie_secure, Some(true));
    assert_eq!(migrated_allow_list(&api), Some(vec![tokens[0].id.clone()]));
    assert_eq!((api.domain.as_deref(), api.origin.as_deref()), (None, None));
    assert_eq!(store.list_apps().await.unwrap().len(), 2);
    assert_eq!(
        store.revision().await.unwrap(),
        4,
        "migrating is not a write"
    );

    // The new columns work on migrated rows, and stay unique.
    let mut routed = api.clone();
    routed.domain = Some("example.com/api".into());
    routed.origin = Some("http://127.0.0.1:5000".into());
    assert!(store.update_app(&api, &routed).await.unwrap());
    assert_eq!(store.get_app("api").await.unwrap(), Some(routed.clone()));
    let demo = store.get_app("demo").await.unwrap().unwrap();
    let mut clash = demo.clone();
    clash.domain = routed.domain.clone();
    let error = store.update_app(&demo, &clash).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
    assert!(error.to_string().contains("example.com/api"), "{error}");
    assert_eq!(store.get_app("demo").await.unwrap(), Some(demo));
    store.close().await;

    // Reopening applies nothing more.
    let again = db.store().await;
    assert_eq!(again.get_app("api").await.unwrap(), Some(routed));
}

/// The rows a schema-v5 release (migrations 0001–0005) writes: three applications (one routed
/// with a two-entry allow-list, one with an empty one), a token, the meta row at revision 9.
const V5_ROWS: [&str; 7] = [
    "INSERT INTO service_tokens (id, name, client_id, secret_hash, duration_seconds, \
     created_at, updated_at, expires_at, enabled, client_secret_version) VALUES \
     ('00000000-0000-4000-8000-000000000001', 'bot', \
     '01010101010101010101010101010101.access', HASH, 31536000, 1700000000, 1700000000, \
     1731536000, FALSE, 3)",
    "INSERT INTO applications (name, aud, session_duration, read_service_tokens_from_header, \
     cookie_http_only, cookie_secure, policy, created_at, domain, origin) VALUES ('api', \
     'abababababababababababababababababababababababababababababababab', 3600, \
     'authorization', FALSE, TRUE, 'tokens', 1700000001, 'example.com/api', \
     'http://127.0.0.1:5000')",
    "INSERT INTO application_allowed_tokens (application, position, client_id) VALUES \
     ('api', 0, '01010101010101010101010101010101.access'), \
     ('api', 1, '02020202020202020202020202020202.access')",
    "INSERT INTO applications (name, aud, session_duration, cookie_http_only, policy, \
     created_at) VALUES ('demo', \
     'cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd', 86400, TRUE, 'any', \
     1700000002)",
    "INSERT INTO applications (name, aud, session_duration, cookie_http_only, policy, \
     created_at) VALUES ('nobody', \
     'efefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefef', 0, TRUE, 'tokens', \
     1700000003)",
    "INSERT INTO account (id, account_id, created_at) VALUES \
     (1, 'abababababababababababababababab', 1700000000)",
    "UPDATE tollgate_meta SET revision = 9 WHERE id = 1",
];

/// A database made by a schema-v5 release upgrades to 0006: every application keeps every
/// field and its allow-list, and gains a distinct UUID id, `updated_at` = `created_at` and no
/// revocation; the ids are found, kept across reopening, and the allow-lists still cascade.
async fn a_v5_database_gives_every_application_an_id(db: Db) {
    use tollgate_issue::AppStore as _;
    make_database_at(&db, 5, &V5_ROWS).await;
    let store = db.store().await;
    let apps = store.list_apps().await.unwrap();
    let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["api", "demo", "nobody"]);
    let api = &apps[0];
    assert_eq!(api.aud, "ab".repeat(32));
    assert_eq!(api.session_duration, 3600);
    assert_eq!(
        api.read_service_tokens_from_header.as_deref(),
        Some("authorization")
    );
    assert!(!api.cookie_http_only);
    assert_eq!(api.cookie_secure, Some(true));
    assert_eq!(
        migrated_allow_list(api),
        Some(vec!["00000000-0000-4000-8000-000000000001".into()]),
        "the listed client ID with no token is dropped"
    );
    assert_eq!(api.domain.as_deref(), Some("example.com/api"));
    assert_eq!(api.origin.as_deref(), Some("http://127.0.0.1:5000"));
    assert_eq!(migrated_allow_list(&apps[1]), None, "any valid token");
    assert_eq!(migrated_allow_list(&apps[2]), Some(vec![]));
    for app in &apps {
        assert!(
            is_v4_uuid(&app.id),
            "{:?} is not a lowercase v4 UUID",
            app.id
        );
        assert_eq!(app.updated_at, app.created_at);
        assert_eq!(app.tokens_revoked_before, None);
        assert_eq!(
            store.get_app_by_id(&app.id).await.unwrap().as_ref(),
            Some(app)
        );
    }
    let mut ids: Vec<&str> = apps.iter().map(|a| a.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "distinct ids");
    let token = store
        .get_token("01010101010101010101010101010101.access")
        .await
        .unwrap()
        .unwrap();
    assert!(!token.enabled);
    assert_eq!(token.client_secret_version, 3);
    assert_eq!(
        store.revision().await.unwrap(),
        9,
        "migrating is not a write"
    );

    // The rebuilt tables keep their rules: ids and domains unique, allow-lists follow their
    // application and a deleted token leaves them.
    let mut clash = tollgate_test::store_contract::app("clash", 7);
    clash.id = api.id.clone();
    let error = store.insert_app(&clash).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
    let error = store
        .delete_token("01010101010101010101010101010101.access", false)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::InUse(_)), "{error:?}");
    assert!(
        store
            .delete_token("01010101010101010101010101010101.access", true)
            .await
            .unwrap()
    );
    let api_now = store.get_app_by_id(&api.id).await.unwrap().unwrap();
    assert_eq!(migrated_allow_list(&api_now), Some(vec![]));
    assert!(store.delete_app("api").await.unwrap());
    store
        .insert_app(&tollgate_test::store_contract::app("api", 8))
        .await
        .unwrap();
    assert_eq!(
        store.get_app("api").await.unwrap().unwrap().policies,
        [],
        "the scoped policy left with its application"
    );
    store.close().await;

    // Reopening applies nothing more: the ids stay.
    let again = db.store().await;
    let demo = again.get_app_by_id(&apps[1].id).await.unwrap().unwrap();
    assert_eq!(demo, apps[1]);
}

/// What migration 0007 made of an application's allow-list: its one policy must be a scoped
/// Service Auth policy with include rules only; `None` for `any_valid_service_token`, else the
/// token ids it names, in order.
fn migrated_allow_list(app: &tollgate_issue::ApplicationRecord) -> Option<Vec<String>> {
    use tollgate_issue::{PolicyDecision, PolicyRule};
    let [only] = app.policies.as_slice() else {
        panic!("{}: one migrated policy, not {:?}", app.name, app.policies);
    };
    let policy = &only.policy;
    assert_eq!(only.precedence, 1);
    assert!(!policy.reusable);
    assert!(is_v4_uuid(&policy.id), "{:?}", policy.id);
    assert_eq!(policy.name, "Service Auth");
    assert_eq!(policy.decision, PolicyDecision::NonIdentity);
    assert_eq!(
        (policy.created_at, policy.updated_at),
        (app.created_at, app.updated_at)
    );
    assert!(policy.rules.require.is_empty() && policy.rules.exclude.is_empty());
    if policy.rules.include == [PolicyRule::AnyValidServiceToken {}] {
        return None;
    }
    Some(
        policy
            .rules
            .include
            .iter()
            .map(|rule| rule.token_id().expect("service_token rules").to_owned())
            .collect(),
    )
}

/// The rows a schema-v6 release (migrations 0001–0006) writes: two tokens, an application
/// listing both (in the order 02, 01) and a client ID with no token, one open to any token.
const V6_ROWS: [&str; 6] = [
    "INSERT INTO service_tokens (id, name, client_id, secret_hash, duration_seconds, \
     created_at, updated_at, expires_at, enabled, client_secret_version) VALUES \
     ('00000000-0000-4000-8000-000000000001', 'one', \
     '01010101010101010101010101010101.access', HASH, NULL, 1700000000, 1700000000, NULL, \
     TRUE, 1)",
    "INSERT INTO service_tokens (id, name, client_id, secret_hash, duration_seconds, \
     created_at, updated_at, expires_at, enabled, client_secret_version) VALUES \
     ('00000000-0000-4000-8000-000000000002', 'two', \
     '02020202020202020202020202020202.access', HASH, NULL, 1700000000, 1700000000, NULL, \
     TRUE, 1)",
    "INSERT INTO applications (name, aud, session_duration, cookie_http_only, policy, \
     created_at, id, updated_at) VALUES ('api', \
     'abababababababababababababababababababababababababababababababab', 3600, TRUE, 'tokens', \
     1700000001, '00000000-0000-4000-a000-000000000001', 1700000005)",
    "INSERT INTO application_allowed_tokens (application, position, client_id) VALUES \
     ('api', 0, '02020202020202020202020202020202.access'), \
     ('api', 1, '03030303030303030303030303030303.access'), \
     ('api', 2, '01010101010101010101010101010101.access')",
    "INSERT INTO applications (name, aud, session_duration, cookie_http_only, policy, \
     created_at, id, updated_at) VALUES ('open', \
     'cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd', 86400, TRUE, 'any', \
     1700000002, '00000000-0000-4000-a000-000000000002', 1700000002)",
    "UPDATE tollgate_meta SET revision = 11 WHERE id = 1",
];

/// A database made by the previous release (schema v6) upgrades to 0007: each allow-list
/// becomes one scoped Service Auth policy naming its tokens by id in list order (a client ID
/// with no token dropped), `any` becomes `any_valid_service_token`; the policies work like any
/// other (a token they name cannot be deleted undetached), and nothing else moved.
async fn a_v6_database_turns_allow_lists_into_policies(db: Db) {
    use tollgate_issue::{AppStore as _, PolicyRule};
    make_database_at(&db, 6, &V6_ROWS).await;
    let store = db.store().await;
    let apps = store.list_apps().await.unwrap();
    assert_eq!(apps.len(), 2);
    let (api, open) = (&apps[0], &apps[1]);
    assert_eq!(api.id, "00000000-0000-4000-a000-000000000001");
    assert_eq!(api.updated_at, 1_700_000_005);
    assert_eq!(
        migrated_allow_list(api),
        Some(vec![
            "00000000-0000-4000-8000-000000000002".into(),
            "00000000-0000-4000-8000-000000000001".into(),
        ])
    );
    assert_eq!(migrated_allow_list(open), None);
    assert_ne!(api.policies[0].policy.id, open.policies[0].policy.id);
    assert_eq!(store.list_policies().await.unwrap(), [], "none is reusable");
    assert_eq!(
        store
            .get_policy(&api.policies[0].policy.id)
            .await
            .unwrap()
            .as_ref(),
        Some(&api.policies[0].policy)
    );
    assert_eq!(
        store.revision().await.unwrap(),
        11,
        "migrating is not a write"
    );

    let error = store
        .delete_token("02020202020202020202020202020202.access", false)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::InUse(_)), "{error:?}");
    assert!(
        store
            .delete_token("02020202020202020202020202020202.access", true)
            .await
            .unwrap()
    );
    let api_now = store.get_app("api").await.unwrap().unwrap();
    assert_eq!(
        api_now.policies[0].policy.rules.include,
        [PolicyRule::ServiceToken {
            token_id: "00000000-0000-4000-8000-000000000001".into()
        }]
    );
    store.close().await;
    let again = db.store().await;
    assert_eq!(again.get_app("api").await.unwrap(), Some(api_now));
}

/// Whether `id` is a UUID in the lowercase, hyphenated version-4 form.
fn is_v4_uuid(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    lengths == [8, 4, 4, 4, 12]
        && groups.iter().all(|g| {
            g.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        && groups[2].starts_with('4')
        && groups[3].starts_with(['8', '9', 'a', 'b'])
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// The signing-key rows exactly as stored, bypassing the store.
async fn raw_keys(db: &Db) -> Vec<(String, String, Vec<u8>)> {
    const SQL: &str = "SELECT kid, key_encryption, private_key FROM signing_keys ORDER BY position";
    match db.backend {
        Backend::Postgres => {
            #[cfg(feature = "postgres")]
            {
                let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
                return sqlx::query_as(SQL).fetch_all(&pool).await.unwrap();
            }
            #[cfg(not(feature = "postgres"))]
            unreachable!("no PostgreSQL in this build")
        }
        _ => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            sqlx::query_as(SQL).fetch_all(&pool).await.unwrap()
        }
    }
}

#[tokio::test]
async fn in_memory_sqlite_works_and_is_private() {
    let locks = || -> Vec<String> {
        std::fs::read_dir(".")
            .unwrap()
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with("-migrate.lock"))
            .collect()
    };
    let before = locks();
    let a = connect("sqlite::memory:", StoreOptions::new())
        .await
        .unwrap();
    let b = connect("sqlite::memory:", StoreOptions::new())
        .await
        .unwrap();
    a.insert_token(&token("alice", 1)).await.unwrap();
    // The one connection of an in-memory store never closes, so data survives idle time.
    assert_eq!(a.list_tokens().await.unwrap().len(), 1);
    assert!(
        b.list_tokens().await.unwrap().is_empty(),
        "each memory store is its own"
    );
    // No file appears for it: no migration lock beside a database that has no file.
    let strays: Vec<String> = locks()
        .into_iter()
        .filter(|l| !before.contains(l))
        .collect();
    assert!(strays.is_empty(), "{strays:?}");
}

#[tokio::test]
async fn connect_errors_are_clear() {
    let error = connect("mysql://localhost/db", StoreOptions::new())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnsupportedUrl);
    assert!(error.to_string().contains("sqlite:"), "{error}");
    let error = connect("tollgate.db", StoreOptions::new())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnsupportedUrl);

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/tollgate.db");
    let error = connect(
        &format!("sqlite://{}", missing.display()),
        StoreOptions::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connect);
    assert!(error.to_string().contains("no/such/dir"), "{error}");
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_connect_error_hides_the_password() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let error = connect(
        "postgres://tollgate:hunter2-secret@127.0.0.1:1/tollgate",
        StoreOptions::new().with_acquire_timeout(std::time::Duration::from_secs(2)),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connect);
    let message = format!("{error} {error:?}");
    assert!(message.contains("127.0.0.1:1/tollgate"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}
