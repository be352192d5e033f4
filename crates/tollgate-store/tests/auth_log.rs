//! The operations tables' storage contracts — the authentication log
//! (`tollgate_test::auth_log_contract`) and the notification outbox
//! (`tollgate_test::outbox_contract`) — on
//! `MemoryStore`, SQLite (a temp file) and PostgreSQL (a fresh database per test when
//! `TOLLGATE_TEST_POSTGRES_URL` is set), and the migration of a release-0.2 database (schema
//! up to 0002, with rows) to the log's schema.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;

use tollgate_core::events::{AuthEvent, EventKind};
use tollgate_issue::{
    AppStore as _, AuthLogStore as _, LogQuery, MemoryStore, Revision as _, TokenStore as _,
};
use tollgate_store::{Backend, Store, StoreOptions, connect};
use tollgate_test::store_contract::Database;

struct Db {
    url: String,
    backend: Backend,
}

impl Db {
    async fn store(&self) -> Store {
        let store = connect(&self.url, StoreOptions::new()).await.unwrap();
        assert_eq!(store.backend(), self.backend);
        store
    }
}

impl Database for Db {
    type Store = Store;

    async fn open(&self) -> Arc<Store> {
        Arc::new(self.store().await)
    }
}

struct Memory(Arc<MemoryStore>);

impl Database for Memory {
    type Store = MemoryStore;

    fn open(&self) -> impl Future<Output = Arc<MemoryStore>> + Send {
        let store = self.0.clone();
        async move { store }
    }
}

async fn on_memory<F, Fut>(_name: &str, test: F)
where
    F: FnOnce(Memory) -> Fut,
    Fut: Future<Output = ()>,
{
    test(Memory(Arc::new(MemoryStore::new()))).await;
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

mod memory {
    tollgate_test::auth_log_contract!(super::on_memory);
    tollgate_test::outbox_contract!(super::on_memory);
}

mod sqlite {
    tollgate_test::auth_log_contract!(super::on_sqlite);
    tollgate_test::outbox_contract!(super::on_sqlite);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_release_0_2_database_is_migrated_and_keeps_its_data() {
        super::on_sqlite("migration", super::a_release_0_2_database_is_migrated).await;
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    tollgate_test::auth_log_contract!(super::on_postgres);
    tollgate_test::outbox_contract!(super::on_postgres);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_release_0_2_database_is_migrated_and_keeps_its_data() {
        super::on_postgres("migration", super::a_release_0_2_database_is_migrated).await;
    }
}

#[cfg(not(feature = "postgres"))]
#[test]
fn postgres_suite_not_built() {
    tollgate_test::skipped(
        "tollgate-store built without feature `postgres`; the PostgreSQL log suite did not run",
    );
}

/// The rows a release with schema 0002 wrote: a token, a routed application, the meta row.
/// `HASH` stands for a 32-byte literal, spelled per backend.
const V2_ROWS: [&str; 3] = [
    "INSERT INTO service_tokens (id, name, client_id, secret_hash, duration_seconds, \
     created_at, updated_at, expires_at, last_seen_at) VALUES \
     ('00000000-0000-4000-8000-000000000001', 'bot', \
     '01010101010101010101010101010101.access', HASH, 31536000, \
     1700000000, 1700000000, 1731536000, 1700000500)",
    "INSERT INTO applications (name, aud, session_duration, cookie_http_only, policy, \
     created_at, domain, origin) VALUES ('api', \
     'abababababababababababababababababababababababababababababababab', 3600, TRUE, 'any', \
     1700000001, 'example.com/api', 'http://127.0.0.1:5000')",
    "UPDATE tollgate_meta SET revision = 7 WHERE id = 1",
];

async fn make_v2_database(db: &Db) {
    let dir = match db.backend {
        Backend::Postgres => "postgres",
        _ => "sqlite",
    };
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dir);
    let v2 = sqlx::migrate::Migrator::new(migrations).await.unwrap();
    match db.backend {
        Backend::Postgres => {
            #[cfg(feature = "postgres")]
            {
                let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
                v2.run_to(2, &pool).await.unwrap();
                let hash = format!("decode('{}', 'hex')", "01".repeat(32));
                for sql in V2_ROWS {
                    let sql = sqlx::AssertSqlSafe(sql.replace("HASH", &hash));
                    sqlx::query(sql).execute(&pool).await.unwrap();
                }
                pool.close().await;
            }
        }
        _ => {
            let options: sqlx::sqlite::SqliteConnectOptions = db.url.parse().unwrap();
            let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
                .await
                .unwrap();
            v2.run_to(2, &pool).await.unwrap();
            let hash = format!("X'{}'", "01".repeat(32));
            for sql in V2_ROWS {
                let sql = sqlx::AssertSqlSafe(sql.replace("HASH", &hash));
                sqlx::query(sql).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
    }
}

async fn a_release_0_2_database_is_migrated(db: Db) {
    make_v2_database(&db).await;
    let store = db.store().await;
    let tokens = store.list_tokens().await.unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].name, "bot");
    assert_eq!(tokens[0].last_seen_at, Some(1_700_000_500));
    let api = store.get_app("api").await.unwrap().unwrap();
    assert_eq!(api.domain.as_deref(), Some("example.com/api"));
    assert_eq!(api.origin.as_deref(), Some("http://127.0.0.1:5000"));
    assert_eq!(
        store.revision().await.unwrap(),
        7,
        "migrating is not a write"
    );
    // The log starts empty and works.
    assert!(
        store
            .query_events(&LogQuery::new())
            .await
            .unwrap()
            .is_empty()
    );
    let event = AuthEvent::new(EventKind::Exchange, 1_700_000_600_000)
        .with_app("api")
        .with_client_id(&tokens[0].client_id)
        .with_token(&tokens[0].id, &tokens[0].name);
    store
        .append_events(std::slice::from_ref(&event))
        .await
        .unwrap();
    let logged = store.query_events(&LogQuery::new()).await.unwrap();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].event, event);
    assert_eq!(store.revision().await.unwrap(), 7);
    store.close().await;
    // Reopening applies nothing more and keeps the log.
    let again = db.store().await;
    assert_eq!(again.query_events(&LogQuery::new()).await.unwrap().len(), 1);
}
