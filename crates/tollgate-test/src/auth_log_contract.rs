//! The authentication log's storage contract ([`AuthLogStore`]), one suite for every backend:
//! `MemoryStore`, SQLite and PostgreSQL (tollgate-store's `tests/auth_log.rs` runs all three)
//! with [`auth_log_contract!`](crate::auth_log_contract!). It reuses the store contract's
//! [`Database`], for stores that also implement [`AuthLogStore`].

use std::net::IpAddr;

use tollgate_core::RejectionKind;
use tollgate_core::events::{AuthEvent, EventKind};
use tollgate_issue::{AuthLogStore, LogQuery, LoggedEvent, Order, Revision};

use crate::store_contract::Database;

/// Declares the suite as `#[tokio::test]`s in the calling module, each calling
/// `$run(name, test).await` like [`store_contract!`](crate::store_contract!).
///
/// ```text
/// mod memory {
///     tollgate_test::auth_log_contract!(super::on_memory);
/// }
/// ```
#[macro_export]
macro_rules! auth_log_contract {
    ($run:path $(,)?) => {
        $crate::__auth_log_case!($run, log_round_trips_every_field);
        $crate::__auth_log_case!($run, log_queries_filter_order_limit_and_page);
        $crate::__auth_log_case!($run, log_writes_do_not_bump_the_revision);
        $crate::__auth_log_case!($run, log_prunes_only_older_events);
        $crate::__auth_log_case!($run, log_names_deleted_tokens_from_earlier_events);
        $crate::__auth_log_case!($run, log_handles_share_one_log);
    };
}

/// One test of [`auth_log_contract!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __auth_log_case {
    ($run:path, $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            $run(stringify!($name), $crate::auth_log_contract::$name).await;
        }
    };
}

/// A client ID of the right shape, from one hex digit.
pub fn client_id(digit: char) -> String {
    format!("{}.access", digit.to_string().repeat(32))
}

fn exchange(at_ms: i64, app: &str, client: char) -> AuthEvent {
    AuthEvent::new(EventKind::Exchange, at_ms)
        .with_app(app)
        .with_client_id(&client_id(client))
}

fn times(events: &[LoggedEvent]) -> Vec<i64> {
    events.iter().map(|e| e.event.at_ms).collect()
}

/// Every field is stored and read back as it was.
pub async fn log_round_trips_every_field<D: Database>(db: D)
where
    D::Store: AuthLogStore,
{
    let store = db.open().await;
    let ip: IpAddr = "2001:db8::1".parse().unwrap();
    let mut full = AuthEvent::new(EventKind::Token, 1_700_000_000_123)
        .refused(RejectionKind::Expired)
        .with_detail("token expired 3 s ago")
        .with_app("api")
        .with_client_id(&client_id('a'))
        .with_token("5f0c2a4e-0000-4000-8000-000000000001", "deploy-bot")
        .with_identity("bot@example.com")
        .with_location("cookie")
        .with_source_ip(Some(ip))
        .with_action("token.create", "cli");
    full.request_id = Some("req-1".into());
    full.count = 42;
    let bare = AuthEvent::new(EventKind::Admin, 1_700_000_000_124);
    store
        .append_events(&[full.clone(), bare.clone()])
        .await
        .unwrap();
    let read = store
        .query_events(&LogQuery::new().order(Order::OldestFirst))
        .await
        .unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(read[0].event, full);
    assert_eq!(read[1].event, bare);
    assert!(read[0].id < read[1].id);
    assert!(!read[0].token_deleted && !read[1].token_deleted);
}

/// Every filter, both orders, the limit and the `after_id` cursor.
pub async fn log_queries_filter_order_limit_and_page<D: Database>(db: D)
where
    D::Store: AuthLogStore,
{
    let store = db.open().await;
    let events = [
        exchange(1_000, "api", 'a'),
        exchange(2_000, "api", 'b').refused(RejectionKind::InvalidCredentials),
        exchange(3_000, "web", 'a'),
        AuthEvent::new(EventKind::Token, 4_000)
            .refused(RejectionKind::MissingCredentials)
            .with_app("web"),
        AuthEvent::new(EventKind::Admin, 5_000).with_action("app.create", "cli"),
    ];
    store.append_events(&events).await.unwrap();
    let query = |q: LogQuery| {
        let store = store.clone();
        async move { times(&store.query_events(&q).await.unwrap()) }
    };
    assert_eq!(
        query(LogQuery::new()).await,
        [5_000, 4_000, 3_000, 2_000, 1_000]
    );
    let oldest = LogQuery::new().order(Order::OldestFirst);
    assert_eq!(
        query(oldest.clone()).await,
        [1_000, 2_000, 3_000, 4_000, 5_000]
    );
    assert_eq!(
        query(LogQuery::new().since_ms(3_000)).await,
        [5_000, 4_000, 3_000]
    );
    assert_eq!(query(LogQuery::new().until_ms(3_000)).await, [2_000, 1_000]);
    assert_eq!(
        query(LogQuery::new().since_ms(2_000).until_ms(4_000)).await,
        [3_000, 2_000]
    );
    assert_eq!(query(LogQuery::new().app("api")).await, [2_000, 1_000]);
    assert_eq!(
        query(LogQuery::new().client_id(client_id('a'))).await,
        [3_000, 1_000]
    );
    assert_eq!(query(LogQuery::new().failed_only()).await, [4_000, 2_000]);
    assert_eq!(query(LogQuery::new().kind(EventKind::Token)).await, [4_000]);
    assert_eq!(
        query(LogQuery::new().app("web").failed_only()).await,
        [4_000]
    );
    assert_eq!(query(LogQuery::new().limit(2)).await, [5_000, 4_000]);
    assert_eq!(query(oldest.clone().limit(2)).await, [1_000, 2_000]);
    assert!(query(LogQuery::new().app("nope")).await.is_empty());

    // Paging by id, as `--follow` does: nothing is seen twice or skipped.
    let first = store.query_events(&oldest.clone().limit(2)).await.unwrap();
    let cursor = first.last().unwrap().id;
    let rest = store
        .query_events(&oldest.clone().after_id(cursor))
        .await
        .unwrap();
    assert_eq!(times(&rest), [3_000, 4_000, 5_000]);
    let last = rest.last().unwrap().id;
    assert!(
        store
            .query_events(&oldest.clone().after_id(last))
            .await
            .unwrap()
            .is_empty()
    );
    store
        .append_events(&[exchange(6_000, "api", 'c')])
        .await
        .unwrap();
    assert_eq!(
        times(&store.query_events(&oldest.after_id(last)).await.unwrap()),
        [6_000]
    );
}

/// Appending and pruning leave the revision where it was: instances do not reload for the log.
pub async fn log_writes_do_not_bump_the_revision<D: Database>(db: D)
where
    D::Store: AuthLogStore,
{
    let store = db.open().await;
    let before = store.revision().await.unwrap();
    store
        .append_events(&[exchange(1_000, "api", 'a'), exchange(2_000, "api", 'b')])
        .await
        .unwrap();
    store.append_events(&[]).await.unwrap();
    assert_eq!(store.prune_events(1_500).await.unwrap(), 1);
    assert_eq!(store.revision().await.unwrap(), before);
}

/// Pruning deletes events older than the cut-off, and says how many.
pub async fn log_prunes_only_older_events<D: Database>(db: D)
where
    D::Store: AuthLogStore,
{
    let store = db.open().await;
    let batch: Vec<AuthEvent> = (0..10).map(|i| exchange(i * 100, "api", 'a')).collect();
    store.append_events(&batch).await.unwrap();
    assert_eq!(store.prune_events(0).await.unwrap(), 0);
    assert_eq!(store.prune_events(450).await.unwrap(), 5);
    assert_eq!(store.prune_events(450).await.unwrap(), 0);
    let left = store.query_events(&LogQuery::new()).await.unwrap();
    assert_eq!(times(&left), [900, 800, 700, 600, 500]);
}

/// An event of a client ID the issuer no longer knew (a deleted token's cookie, its later
/// exchanges) is shown with the name the most recent earlier event gave it, marked.
pub async fn log_names_deleted_tokens_from_earlier_events<D: Database>(db: D)
where
    D::Store: AuthLogStore,
{
    let store = db.open().await;
    let deleted = client_id('d');
    let token_id = "5f0c2a4e-0000-4000-8000-00000000000d";
    store
        .append_events(&[
            exchange(1_000, "api", 'd').with_token(token_id, "old-name"),
            AuthEvent::new(EventKind::Admin, 2_000)
                .with_action("token.delete", "cli")
                .with_client_id(&deleted)
                .with_token(token_id, "nightly-bot"),
            AuthEvent::new(EventKind::Token, 3_000)
                .refused(RejectionKind::Revoked)
                .with_app("api")
                .with_client_id(&deleted),
            exchange(4_000, "api", 'e').refused(RejectionKind::InvalidCredentials),
        ])
        .await
        .unwrap();
    let events = store
        .query_events(&LogQuery::new().failed_only().order(Order::OldestFirst))
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
    let revoked = &events[0];
    assert_eq!(revoked.event.token_name.as_deref(), Some("nightly-bot"));
    assert_eq!(revoked.event.token_id.as_deref(), Some(token_id));
    assert!(revoked.token_deleted);
    let never_known = &events[1];
    assert_eq!(never_known.event.token_name, None, "no event ever named it");
    assert!(!never_known.token_deleted);
    // Events that named the token themselves are not marked.
    let all = store.query_events(&LogQuery::new()).await.unwrap();
    assert_eq!(all.iter().filter(|e| e.token_deleted).count(), 1);
    assert_eq!(
        store
            .select_events(&LogQuery::new().failed_only())
            .await
            .unwrap()[1]
            .event
            .token_name,
        None,
        "select_events returns rows as stored"
    );
}

/// Two handles (two instances) append to and read one log; ids keep increasing.
pub async fn log_handles_share_one_log<D: Database>(db: D)
where
    D::Store: AuthLogStore,
{
    let one = db.open().await;
    let two = db.open().await;
    one.append_events(&[exchange(1, "api", 'a')]).await.unwrap();
    two.append_events(&[exchange(2, "api", 'b')]).await.unwrap();
    one.append_events(&[exchange(3, "api", 'c')]).await.unwrap();
    let seen = two
        .query_events(&LogQuery::new().order(Order::OldestFirst))
        .await
        .unwrap();
    assert_eq!(times(&seen), [1, 2, 3]);
    assert!(seen.windows(2).all(|w| w[0].id < w[1].id));
}
