//! The store contract, run against every backend: SQLite on a temp file always, PostgreSQL
//! when `TOLLGATE_TEST_POSTGRES_URL` is set (each test in its own fresh database, dropped after).

#![allow(clippy::unwrap_used)]

/// Writes straight to the process's stderr, past the test harness's output capture, so a
/// skipped suite is visible in every run.
macro_rules! skipped {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

use std::future::Future;
use std::sync::Arc;

use tokio::sync::oneshot;
use tollgate_core::{Clock as _, ManualClock};
use tollgate_issue::{AppSettings, Applications, ServiceTokens};
use tollgate_issue::{
    AppStore, ApplicationRecord, KeyStore, Revision, ServiceAuthPolicy, ServiceTokenRecord,
    SigningKeyRecord, StoreError, StoreFuture, TokenDuration, TokenStore,
};
use tollgate_store::{Backend, ErrorKind, MasterKey, Store, StoreOptions, connect};

/// One test's database: its URL, and handles opened on it.
struct Db {
    url: String,
    backend: Backend,
}

impl Db {
    async fn open(&self) -> Store {
        self.open_with(StoreOptions::new()).await
    }

    async fn open_with(&self, options: StoreOptions) -> Store {
        let store = connect(&self.url, options).await.unwrap();
        assert_eq!(store.backend(), self.backend);
        store
    }
}

async fn on_sqlite<F, Fut>(test: F)
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
    use std::sync::atomic::{AtomicU32, Ordering};

    use sqlx::Connection as _;

    static NEXT: AtomicU32 = AtomicU32::new(0);
    let Ok(admin_url) = std::env::var("TOLLGATE_TEST_POSTGRES_URL") else {
        skipped!("SKIPPED: TOLLGATE_TEST_POSTGRES_URL not set (postgres::{name} did not run)");
        return;
    };
    let database = format!(
        "tollgate_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
        Ok(admin) => admin,
        Err(error) => {
            skipped!("SKIPPED: PostgreSQL unreachable ({error}); postgres::{name} did not run");
            return;
        }
    };
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut url = url_without_database(&admin_url);
    url.push('/');
    url.push_str(&database);
    if let Some(query) = admin_url.split_once('?').map(|(_, q)| q) {
        url.push('?');
        url.push_str(query);
    }
    let outcome = tokio::spawn(test(Db {
        url,
        backend: Backend::Postgres,
    }))
    .await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

#[cfg(feature = "postgres")]
fn url_without_database(url: &str) -> String {
    let base = url.split_once('?').map_or(url, |(base, _)| base);
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    match base[authority_start..].find('/') {
        Some(slash) => base[..authority_start + slash].to_owned(),
        None => base.to_owned(),
    }
}

/// Declares each test once per backend: `sqlite::name` and `postgres::name`.
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::on_sqlite(super::$name).await;
                }
            )*
        }

        #[cfg(feature = "postgres")]
        mod postgres {
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
            skipped!("SKIPPED: tollgate-store built without feature `postgres`; \
                       the PostgreSQL suite did not run");
        }
    };
}

store_tests!(
    token_crud,
    token_conflicts_and_not_found_change_nothing,
    revision_counts_writes_only,
    last_seen_batches_do_not_bump_and_never_go_backwards,
    swap_ring_is_compare_and_swap,
    concurrent_rotations_have_exactly_one_winner,
    keys_encrypted_at_rest_with_master_key,
    wrong_or_missing_master_key_is_a_clear_error,
    failed_write_rolls_back_everything,
    two_handles_see_each_others_writes,
    concurrent_writers_all_land,
    app_crud_and_policies,
    app_conflicts_and_not_found,
    deleting_a_token_removes_it_from_allow_lists,
    stale_updates_lose_and_change_nothing,
    interleaved_token_updates_from_two_instances_lose_nothing,
    interleaved_app_updates_from_two_instances_lose_nothing,
    reopening_keeps_data_and_schema,
);

fn token(name: &str, n: u8) -> ServiceTokenRecord {
    ServiceTokenRecord {
        id: format!("00000000-0000-4000-8000-0000000000{n:02x}"),
        name: name.to_owned(),
        client_id: format!("{}.access", format!("{n:02x}").repeat(16)),
        secret_hash: [n; 32],
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        duration: TokenDuration::Seconds(8760 * 3600),
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
        expires_at: Some(1_700_000_000 + 8760 * 3600),
        last_seen_at: None,
    }
}

fn key(n: u8) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: format!("{n:02x}").repeat(32),
        // The store treats the key as opaque bytes; a recognisable pattern makes leaks visible.
        private_key_pkcs8: format!("PRIVATE-KEY-{n:02}-").repeat(40).into_bytes(),
        created_at: 1_700_000_000 + i64::from(n),
        activates_at: 1_700_000_100 + i64::from(n),
        retires_at: None,
        expires_at: None,
    }
}

fn app(name: &str, n: u8) -> ApplicationRecord {
    ApplicationRecord {
        name: name.to_owned(),
        aud: format!("{n:02x}").repeat(32),
        session_duration: 24 * 3600,
        read_service_tokens_from_header: None,
        cookie_http_only: true,
        cookie_secure: None,
        policy: ServiceAuthPolicy::AnyValidServiceToken,
        created_at: 1_700_000_000,
    }
}

fn kind_of(error: &StoreError) -> Option<ErrorKind> {
    match error {
        StoreError::Backend(source) => source
            .downcast_ref::<tollgate_store::Error>()
            .map(tollgate_store::Error::kind),
        _ => None,
    }
}

async fn token_crud(db: Db) {
    let store = db.open().await;
    let bob = token("bob", 2);
    let alice = token("alice", 1);
    let mut forever = token("Zed", 3);
    forever.duration = TokenDuration::Forever;
    forever.expires_at = None;
    forever.previous_secret_hash = Some([7; 32]);
    forever.previous_secret_expires_at = Some(1_700_003_600);
    for t in [&bob, &alice, &forever] {
        store.insert_token(t).await.unwrap();
    }

    assert_eq!(
        store.get_token(&bob.client_id).await.unwrap(),
        Some(bob.clone())
    );
    assert_eq!(
        store.get_token(&forever.client_id).await.unwrap(),
        Some(forever.clone())
    );
    assert_eq!(store.get_token("ffff.access").await.unwrap(), None);
    let names: Vec<String> = store
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(
        names,
        ["Zed", "alice", "bob"],
        "byte order of names, on every backend"
    );

    let mut refreshed = bob.clone();
    refreshed.name = "robert".to_owned();
    refreshed.secret_hash = [9; 32];
    refreshed.previous_secret_hash = Some(bob.secret_hash);
    refreshed.previous_secret_expires_at = Some(1_700_010_000);
    refreshed.duration = TokenDuration::Seconds(3600);
    refreshed.updated_at = 1_700_005_000;
    refreshed.expires_at = Some(1_700_008_600);
    assert!(store.update_token(&bob, &refreshed).await.unwrap());
    assert_eq!(
        store.get_token(&bob.client_id).await.unwrap(),
        Some(refreshed)
    );

    assert!(store.delete_token(&bob.client_id).await.unwrap());
    assert_eq!(store.get_token(&bob.client_id).await.unwrap(), None);
    assert!(!store.delete_token(&bob.client_id).await.unwrap());
    assert_eq!(store.list_tokens().await.unwrap(), [forever, alice]);
}

async fn token_conflicts_and_not_found_change_nothing(db: Db) {
    let store = db.open().await;
    let alice = token("alice", 1);
    let bob = token("bob", 2);
    store.insert_token(&alice).await.unwrap();
    store.insert_token(&bob).await.unwrap();
    let revision = store.revision().await.unwrap();

    let mut same_client_id = token("carol", 1);
    same_client_id.id = "other-id".to_owned();
    let mut same_name = token("alice", 3);
    same_name.name = alice.name.clone();
    let mut same_id = token("dave", 4);
    same_id.id = alice.id.clone();
    for clash in [&same_client_id, &same_name, &same_id] {
        let error = store.insert_token(clash).await.unwrap_err();
        assert!(matches!(error, StoreError::Conflict(_)), "{error}");
    }
    assert!(
        store
            .insert_token(&same_client_id)
            .await
            .unwrap_err()
            .to_string()
            .contains(&alice.client_id)
    );

    let mut renamed = bob.clone();
    renamed.name = "alice".to_owned();
    let error = store.update_token(&bob, &renamed).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error}");

    let ghost = token("ghost", 9);
    let error = store.update_token(&ghost, &ghost).await.unwrap_err();
    assert!(matches!(error, StoreError::NotFound(_)), "{error}");
    assert!(error.to_string().contains(&ghost.client_id));

    assert_eq!(
        store.revision().await.unwrap(),
        revision,
        "failed writes leave no trace"
    );
    assert_eq!(store.list_tokens().await.unwrap(), [alice, bob]);
}

async fn revision_counts_writes_only(db: Db) {
    let store = db.open().await;
    assert_eq!(store.revision().await.unwrap(), 0);
    let alice = token("alice", 1);
    store.insert_token(&alice).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), 1);
    assert!(store.update_token(&alice, &alice).await.unwrap());
    assert_eq!(store.revision().await.unwrap(), 2);
    store.insert_app(&app("demo", 1)).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), 3);
    assert!(
        store
            .update_app(&app("demo", 1), &app("demo", 1))
            .await
            .unwrap()
    );
    assert!(store.swap_ring(0, &[key(1)]).await.unwrap());
    assert_eq!(store.revision().await.unwrap(), 5);

    // Reads, no-op deletes and lost races do not count.
    store.list_tokens().await.unwrap();
    store.get_app("demo").await.unwrap();
    store.load_ring().await.unwrap();
    assert!(!store.delete_token("nobody.access").await.unwrap());
    assert!(!store.delete_app("nothing").await.unwrap());
    assert!(!store.swap_ring(0, &[]).await.unwrap());
    assert_eq!(store.revision().await.unwrap(), 5);

    assert!(store.delete_app("demo").await.unwrap());
    assert!(store.delete_token(&alice.client_id).await.unwrap());
    assert_eq!(store.revision().await.unwrap(), 7);
}

async fn last_seen_batches_do_not_bump_and_never_go_backwards(db: Db) {
    let store = db.open().await;
    let alice = token("alice", 1);
    let bob = token("bob", 2);
    store.insert_token(&alice).await.unwrap();
    store.insert_token(&bob).await.unwrap();
    let revision = store.revision().await.unwrap();

    store
        .record_last_seen(&[
            (alice.client_id.clone(), 1_700_000_500),
            (bob.client_id.clone(), 1_700_000_300),
            (alice.client_id.clone(), 1_700_000_400), // older, same batch: the newest wins
            ("unknown.access".to_owned(), 1_700_000_900),
        ])
        .await
        .unwrap();
    store.record_last_seen(&[]).await.unwrap();
    let seen = |t: Option<ServiceTokenRecord>| t.unwrap().last_seen_at;
    assert_eq!(
        seen(store.get_token(&alice.client_id).await.unwrap()),
        Some(1_700_000_500)
    );
    assert_eq!(
        seen(store.get_token(&bob.client_id).await.unwrap()),
        Some(1_700_000_300)
    );

    // A late flush from another instance carries older times: they never overwrite newer ones.
    store
        .record_last_seen(&[
            (alice.client_id.clone(), 1_700_000_100),
            (bob.client_id.clone(), 1_700_000_800),
        ])
        .await
        .unwrap();
    assert_eq!(
        seen(store.get_token(&alice.client_id).await.unwrap()),
        Some(1_700_000_500)
    );
    assert_eq!(
        seen(store.get_token(&bob.client_id).await.unwrap()),
        Some(1_700_000_800)
    );
    assert_eq!(
        store.revision().await.unwrap(),
        revision,
        "last-seen is not a change"
    );

    // update_token leaves last_seen_at alone, whatever the record says.
    let mut stale = alice.clone();
    stale.last_seen_at = None;
    stale.updated_at += 1;
    assert!(
        store.update_token(&alice, &stale).await.unwrap(),
        "last_seen_at is not compared either"
    );
    assert_eq!(
        seen(store.get_token(&alice.client_id).await.unwrap()),
        Some(1_700_000_500)
    );
}

async fn swap_ring_is_compare_and_swap(db: Db) {
    let store = db.open().await;
    assert_eq!(store.load_ring().await.unwrap(), (0, vec![]));

    let mut first = key(1);
    let second = key(2);
    assert!(
        store
            .swap_ring(0, &[first.clone(), second.clone()])
            .await
            .unwrap()
    );
    assert_eq!(
        store.load_ring().await.unwrap(),
        (1, vec![first.clone(), second.clone()])
    );

    // Rotation: the old key retires, a new one joins; order is kept as given.
    first.retires_at = Some(1_700_100_000);
    first.expires_at = Some(1_700_700_000);
    let third = key(3);
    let ring = vec![third.clone(), second.clone(), first.clone()];
    assert!(
        !store.swap_ring(0, &ring).await.unwrap(),
        "stale generation"
    );
    assert!(
        !store.swap_ring(2, &ring).await.unwrap(),
        "future generation"
    );
    assert!(!store.swap_ring(u64::MAX, &ring).await.unwrap());
    assert!(store.swap_ring(1, &ring).await.unwrap());
    assert_eq!(store.load_ring().await.unwrap(), (2, ring));
}

async fn concurrent_rotations_have_exactly_one_winner(db: Db) {
    // Two instances (two pools) race to rotate from the same generation, many times over.
    let a = db.open().await;
    let b = db.open().await;
    for round in 0..12_u8 {
        let (generation, _) = a.load_ring().await.unwrap();
        let ring_a = vec![key(2 * round)];
        let ring_b = vec![key(2 * round + 1)];
        let (won_a, won_b) = tokio::join!(
            {
                let a = a.clone();
                let ring_a = ring_a.clone();
                tokio::spawn(async move { a.swap_ring(generation, &ring_a).await.unwrap() })
            },
            {
                let b = b.clone();
                let ring_b = ring_b.clone();
                tokio::spawn(async move { b.swap_ring(generation, &ring_b).await.unwrap() })
            }
        );
        let (won_a, won_b) = (won_a.unwrap(), won_b.unwrap());
        assert!(won_a ^ won_b, "round {round}: a won {won_a}, b won {won_b}");
        let winner = if won_a { ring_a } else { ring_b };
        assert_eq!(b.load_ring().await.unwrap(), (generation + 1, winner));
    }
}

async fn keys_encrypted_at_rest_with_master_key(db: Db) {
    let master = || MasterKey::from_bytes(&[0x5a; 32]).unwrap();
    let sealed = db
        .open_with(StoreOptions::new().with_master_key(master()))
        .await;
    assert!(sealed.encrypts_keys());
    let ring = vec![key(1), key(2)];
    assert!(sealed.swap_ring(0, &ring).await.unwrap());
    assert_eq!(sealed.load_ring().await.unwrap(), (1, ring.clone()));
    // Another instance with the same master key reads the same keys.
    let twin = db
        .open_with(StoreOptions::new().with_master_key(master()))
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
    let plain = db.open().await;
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
        .open_with(StoreOptions::new().with_master_key(MasterKey::from_bytes(&[1; 32]).unwrap()))
        .await;
    assert!(right.swap_ring(0, &[key(1)]).await.unwrap());

    let wrong = db
        .open_with(StoreOptions::new().with_master_key(MasterKey::from_bytes(&[2; 32]).unwrap()))
        .await;
    let error = wrong.load_ring().await.unwrap_err();
    assert_eq!(kind_of(&error), Some(ErrorKind::WrongMasterKey), "{error}");
    let message = error.to_string();
    assert!(message.contains("TOLLGATE_MASTER_KEY"), "{message}");
    assert!(message.contains(&key(1).kid), "{message}");

    let none = db.open().await;
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

async fn failed_write_rolls_back_everything(db: Db) {
    let store = db.open().await;
    assert!(store.swap_ring(0, &[key(1)]).await.unwrap());
    store.insert_app(&app("demo", 1)).await.unwrap();
    let revision = store.revision().await.unwrap();

    // The duplicate kid fails on the second insert, after the old ring was already deleted
    // and the counters bumped inside the transaction: all of it must roll back.
    let error = store.swap_ring(1, &[key(2), key(2)]).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error}");
    assert_eq!(store.load_ring().await.unwrap(), (1, vec![key(1)]));

    assert_eq!(store.get_app("demo").await.unwrap(), Some(app("demo", 1)));

    assert_eq!(store.revision().await.unwrap(), revision);
    // The store still works after the failures (no connection left mid-transaction).
    assert!(store.swap_ring(1, &[key(3)]).await.unwrap());
    assert_eq!(store.revision().await.unwrap(), revision + 1);
}

async fn two_handles_see_each_others_writes(db: Db) {
    let a = db.open().await;
    let b = db.open().await;
    a.insert_token(&token("alice", 1)).await.unwrap();
    assert_eq!(b.revision().await.unwrap(), 1);
    assert_eq!(b.list_tokens().await.unwrap(), [token("alice", 1)]);
    b.insert_app(&app("demo", 1)).await.unwrap();
    assert_eq!(a.get_app("demo").await.unwrap(), Some(app("demo", 1)));
    assert!(b.delete_token(&token("alice", 1).client_id).await.unwrap());
    assert_eq!(
        a.get_token(&token("alice", 1).client_id).await.unwrap(),
        None
    );
    assert_eq!(a.revision().await.unwrap(), 3);
}

async fn concurrent_writers_all_land(db: Db) {
    // Four instances, ten inserts each, all at once: writers queue (busy timeout / row lock),
    // none fails, and each bump is counted exactly once.
    let mut tasks = Vec::new();
    for instance in 0..4_u8 {
        let store = db.open().await;
        tasks.push(tokio::spawn(async move {
            for i in 0..10_u8 {
                let n = instance * 10 + i;
                store
                    .insert_token(&token(&format!("t{n:02}"), n))
                    .await
                    .unwrap();
                store
                    .record_last_seen(&[(token("", n).client_id, i64::from(n))])
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let store = db.open().await;
    let tokens = store.list_tokens().await.unwrap();
    assert_eq!(tokens.len(), 40);
    assert!(tokens.iter().all(|t| t.last_seen_at.is_some()));
    assert_eq!(store.revision().await.unwrap(), 40);
}

async fn app_crud_and_policies(db: Db) {
    let store: Arc<dyn AppStore> = Arc::new(db.open().await);
    let demo = app("demo", 1);
    let mut api = app("api", 2);
    api.session_duration = 0;
    api.read_service_tokens_from_header = Some("Authorization".to_owned());
    api.cookie_http_only = false;
    api.cookie_secure = Some(false);
    api.policy = ServiceAuthPolicy::Tokens(vec![
        "bb.access".to_owned(),
        "aa.access".to_owned(),
        "cc.access".to_owned(),
    ]);
    store.insert_app(&demo).await.unwrap();
    store.insert_app(&api).await.unwrap();
    assert_eq!(store.get_app("api").await.unwrap(), Some(api.clone()));
    assert_eq!(store.get_app("nope").await.unwrap(), None);
    assert_eq!(
        store.list_apps().await.unwrap(),
        [api.clone(), demo.clone()]
    );

    let mut changed = api.clone();
    changed.policy = ServiceAuthPolicy::Tokens(vec!["dd.access".to_owned()]);
    changed.session_duration = 3600;
    changed.read_service_tokens_from_header = None;
    changed.cookie_secure = Some(true);
    assert!(store.update_app(&api, &changed).await.unwrap());
    assert_eq!(store.get_app("api").await.unwrap(), Some(changed.clone()));
    let mut open = changed.clone();
    open.policy = ServiceAuthPolicy::AnyValidServiceToken;
    assert!(store.update_app(&changed, &open).await.unwrap());
    assert_eq!(store.list_apps().await.unwrap(), [open, demo.clone()]);

    assert!(store.delete_app("api").await.unwrap());
    assert!(!store.delete_app("api").await.unwrap());
    // A re-created application does not inherit the old allow-list.
    store.insert_app(&app("api", 2)).await.unwrap();
    assert_eq!(store.list_apps().await.unwrap(), [app("api", 2), demo]);
}

async fn app_conflicts_and_not_found(db: Db) {
    let store = db.open().await;
    store.insert_app(&app("demo", 1)).await.unwrap();
    store.insert_app(&app("other", 2)).await.unwrap();
    let revision = store.revision().await.unwrap();

    let error = store.insert_app(&app("demo", 3)).await.unwrap_err();
    assert!(
        matches!(&error, StoreError::Conflict(m) if m.contains("demo")),
        "{error}"
    );
    let error = store.insert_app(&app("third", 1)).await.unwrap_err();
    assert!(
        matches!(&error, StoreError::Conflict(m) if m.contains("AUD")),
        "{error}"
    );
    let error = store
        .update_app(&app("other", 2), &app("other", 1))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error}");
    let error = store
        .update_app(&app("ghost", 9), &app("ghost", 9))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound(_)), "{error}");

    assert_eq!(store.revision().await.unwrap(), revision);
    assert_eq!(
        store.list_apps().await.unwrap(),
        [app("demo", 1), app("other", 2)]
    );
}

async fn reopening_keeps_data_and_schema(db: Db) {
    let store = db.open().await;
    store.insert_token(&token("alice", 1)).await.unwrap();
    assert!(store.swap_ring(0, &[key(1)]).await.unwrap());
    store.close().await;
    // Connecting again re-runs the migrator: nothing to apply, nothing lost.
    let again = db.open().await;
    assert_eq!(again.list_tokens().await.unwrap(), [token("alice", 1)]);
    assert_eq!(again.load_ring().await.unwrap(), (1, vec![key(1)]));
    assert_eq!(again.revision().await.unwrap(), 2);
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

async fn deleting_a_token_removes_it_from_allow_lists(db: Db) {
    let store = db.open().await;
    let alice = token("alice", 1);
    let bob = token("bob", 2);
    store.insert_token(&alice).await.unwrap();
    store.insert_token(&bob).await.unwrap();
    let mut strict = app("strict", 1);
    strict.policy = ServiceAuthPolicy::Tokens(vec![alice.client_id.clone(), bob.client_id.clone()]);
    let mut only_alice = app("only-alice", 2);
    only_alice.policy = ServiceAuthPolicy::Tokens(vec![alice.client_id.clone()]);
    store.insert_app(&strict).await.unwrap();
    store.insert_app(&only_alice).await.unwrap();

    assert!(store.delete_token(&alice.client_id).await.unwrap());
    // A token imported later under the same client ID is a new token: no inherited access.
    store.insert_token(&alice).await.unwrap();
    let apps = store.list_apps().await.unwrap();
    assert_eq!(apps[0].name, "only-alice");
    assert_eq!(
        apps[0].policy,
        ServiceAuthPolicy::Tokens(vec![]),
        "still restricted, now to nobody"
    );
    assert_eq!(
        apps[1].policy,
        ServiceAuthPolicy::Tokens(vec![bob.client_id.clone()])
    );
    assert_eq!(
        store.get_app("strict").await.unwrap().unwrap().policy,
        apps[1].policy
    );
}

async fn stale_updates_lose_and_change_nothing(db: Db) {
    let store = db.open().await;
    let alice = token("alice", 1);
    store.insert_token(&alice).await.unwrap();
    let mut rotated = alice.clone();
    rotated.secret_hash = [0xee; 32];
    rotated.updated_at += 1;
    assert!(store.update_token(&alice, &rotated).await.unwrap());
    let revision = store.revision().await.unwrap();

    // A writer that read `alice` before the rotation must not write its old secret hash back.
    let mut stale = alice.clone();
    stale.expires_at = Some(1_800_000_000);
    assert!(!store.update_token(&alice, &stale).await.unwrap());
    assert_eq!(
        store.get_token(&alice.client_id).await.unwrap(),
        Some(rotated)
    );
    let error = store
        .update_token(&alice, &token("bob", 2))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error}");

    let demo = app("demo", 1);
    store.insert_app(&demo).await.unwrap();
    let mut strict = demo.clone();
    strict.policy = ServiceAuthPolicy::Tokens(vec![alice.client_id.clone()]);
    assert!(store.update_app(&demo, &strict).await.unwrap());
    let revision_after_apps = store.revision().await.unwrap();
    assert_eq!(revision_after_apps, revision + 2);
    let mut stale = demo.clone();
    stale.session_duration = 60;
    assert!(
        !store.update_app(&demo, &stale).await.unwrap(),
        "the allow-list changed since `demo` was read"
    );
    assert_eq!(store.get_app("demo").await.unwrap(), Some(strict));
    assert_eq!(
        store.revision().await.unwrap(),
        revision_after_apps,
        "lost compare-and-swaps leave no trace"
    );
}

/// A store that parks the first record read until the test lets it go on: it holds one
/// manager between its read and its write while another instance updates the same record.
struct PausedAfterFirstRead {
    inner: Store,
    pause: std::sync::Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

impl PausedAfterFirstRead {
    /// The store, a receiver told when the first read is done, and a sender that resumes it.
    fn new(inner: Store) -> (Arc<Self>, oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (read_tx, read_rx) = oneshot::channel();
        let (go_tx, go_rx) = oneshot::channel();
        let store = Arc::new(Self {
            inner,
            pause: std::sync::Mutex::new(Some((read_tx, go_rx))),
        });
        (store, read_rx, go_tx)
    }

    async fn after_read(&self) {
        let pause = self.pause.lock().unwrap().take();
        if let Some((read, go)) = pause {
            read.send(()).unwrap();
            go.await.unwrap();
        }
    }
}

impl Revision for PausedAfterFirstRead {
    fn revision(&self) -> StoreFuture<'_, u64> {
        self.inner.revision()
    }
}

impl TokenStore for PausedAfterFirstRead {
    fn insert_token<'a>(&'a self, token: &'a ServiceTokenRecord) -> StoreFuture<'a, ()> {
        self.inner.insert_token(token)
    }
    fn get_token<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, Option<ServiceTokenRecord>> {
        Box::pin(async move {
            let token = self.inner.get_token(client_id).await;
            self.after_read().await;
            token
        })
    }
    fn list_tokens(&self) -> StoreFuture<'_, Vec<ServiceTokenRecord>> {
        self.inner.list_tokens()
    }
    fn update_token<'a>(
        &'a self,
        expected: &'a ServiceTokenRecord,
        token: &'a ServiceTokenRecord,
    ) -> StoreFuture<'a, bool> {
        self.inner.update_token(expected, token)
    }
    fn delete_token<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, bool> {
        self.inner.delete_token(client_id)
    }
    fn record_last_seen<'a>(&'a self, seen: &'a [(String, i64)]) -> StoreFuture<'a, ()> {
        self.inner.record_last_seen(seen)
    }
}

impl AppStore for PausedAfterFirstRead {
    fn insert_app<'a>(&'a self, app: &'a ApplicationRecord) -> StoreFuture<'a, ()> {
        self.inner.insert_app(app)
    }
    fn get_app<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<ApplicationRecord>> {
        Box::pin(async move {
            let app = self.inner.get_app(name).await;
            self.after_read().await;
            app
        })
    }
    fn list_apps(&self) -> StoreFuture<'_, Vec<ApplicationRecord>> {
        self.inner.list_apps()
    }
    fn update_app<'a>(
        &'a self,
        expected: &'a ApplicationRecord,
        app: &'a ApplicationRecord,
    ) -> StoreFuture<'a, bool> {
        self.inner.update_app(expected, app)
    }
    fn delete_app<'a>(&'a self, name: &'a str) -> StoreFuture<'a, bool> {
        self.inner.delete_app(name)
    }
}

async fn interleaved_token_updates_from_two_instances_lose_nothing(db: Db) {
    let clock = ManualClock::at_unix(1_700_000_000);
    // Two instances: separate handles (pools) on one database.
    let (paused, read_done, go) = PausedAfterFirstRead::new(db.open().await);
    let instance_a = ServiceTokens::new(paused, Arc::new(clock.clone()));
    let instance_b = ServiceTokens::new(Arc::new(db.open().await), Arc::new(clock.clone()));
    let (token, old_secret) = instance_b
        .create("bot", "1h".parse().unwrap())
        .await
        .unwrap();
    clock.advance(std::time::Duration::from_secs(600));

    // A reads the token to refresh it, and stalls before writing...
    let refresh = tokio::spawn({
        let client_id = token.client_id.clone();
        async move { instance_a.refresh(&client_id).await }
    });
    read_done.await.unwrap();
    // ...while B rotates the secret with no grace period.
    let new_secret = instance_b
        .rotate_secret(&token.client_id, None)
        .await
        .unwrap();
    go.send(()).unwrap();
    let refreshed = refresh.await.unwrap().unwrap();

    let stored = instance_b.get(&token.client_id).await.unwrap();
    assert_eq!(
        stored, refreshed,
        "A re-applied its refresh on B's rotation"
    );
    let now = clock.unix_now();
    assert!(
        stored.accepts_secret(new_secret.expose_secret(), now),
        "the rotation survived the refresh"
    );
    assert!(
        !stored.accepts_secret(old_secret.expose_secret(), now),
        "the rotated-out secret was not written back"
    );
    assert_eq!(
        stored.expires_at,
        Some(now + 3600),
        "the refresh survived too"
    );
}

async fn interleaved_app_updates_from_two_instances_lose_nothing(db: Db) {
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let (paused, read_done, go) = PausedAfterFirstRead::new(db.open().await);
    let instance_a = Applications::new(paused, clock.clone());
    let instance_b = Applications::new(Arc::new(db.open().await), clock);
    instance_b.create("api", AppSettings::new()).await.unwrap();

    let update = tokio::spawn(async move {
        instance_a
            .update(
                "api",
                AppSettings::new().session_duration(std::time::Duration::from_secs(600)),
            )
            .await
    });
    read_done.await.unwrap();
    let allowed = ServiceAuthPolicy::Tokens(vec![token("bot", 1).client_id]);
    instance_b
        .update("api", AppSettings::new().policy(allowed.clone()))
        .await
        .unwrap();
    go.send(()).unwrap();
    let updated = update.await.unwrap().unwrap();

    let stored = instance_b.get("api").await.unwrap();
    assert_eq!(stored, updated);
    assert_eq!(stored.session_duration, 600, "A's change landed");
    assert_eq!(stored.policy, allowed, "B's allow-list was not overwritten");
}
