//! The storage contract every backend keeps (see the rules in `tollgate_issue`'s store
//! traits), as one suite generic over [`Database`]: run it against SQLite and PostgreSQL
//! (tollgate-store's tests) and against `MemoryStore` (the facade's tests) with
//! [`store_contract!`](crate::store_contract!).
//!
//! What only a SQL backend can show (encryption at rest, reopening, migrations) stays in
//! tollgate-store's tests; they share the record builders [`token`], [`key`] and [`app`].

use std::future::Future;
use std::sync::Arc;

use tokio::sync::oneshot;
use tollgate_core::{Clock as _, ManualClock};
use tollgate_issue::{
    AccountStore, ApiPermission, ApiTokenRecord, AppPolicy, AppSettings, AppStore,
    ApplicationRecord, Applications, KeyStore, PolicyDecision, PolicyRecord, PolicyRule,
    PolicyRules, Revision, ServiceAuthPolicy, ServiceTokenRecord, ServiceTokens, SigningKeyRecord,
    StoreError, StoreFuture, TokenDuration, TokenStore,
};

/// One test's storage: every [`open`](Database::open) is another handle on the same data (for a
/// SQL backend a new pool, as another instance would open; for an in-memory store the same
/// store again).
pub trait Database: Send + Sync + 'static {
    /// The store type.
    type Store: TokenStore + KeyStore + AppStore + AccountStore;
    /// Another handle on this test's storage.
    fn open(&self) -> impl Future<Output = Arc<Self::Store>> + Send;
}

/// Declares the whole suite as `#[tokio::test]`s in the calling module, each calling
/// `$run(name, test).await` where `test` is the suite's `async fn(D)` for the runner's
/// [`Database`] `D`. Tests named in `ignore { name: "reason", … }` are declared
/// `#[ignore = "reason"]`. The calling crate needs tokio with `macros` and `rt-multi-thread`.
///
/// ```text
/// mod memory {
///     tollgate_test::store_contract!(super::on_memory);
/// }
/// ```
#[macro_export]
macro_rules! store_contract {
    ($run:path $(, ignore { $($ignored:ident : $reason:literal),* $(,)? })? $(,)?) => {
        $crate::__store_contract_cases! { ($) $run; [$($($ignored : $reason),*)?] }
    };
}

/// The expansion of [`store_contract!`]: a local macro with one arm per ignored test and a
/// catch-all arm, applied to every test of the suite.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_contract_cases {
    (($d:tt) $run:path; [$($ignored:ident : $reason:literal),*]) => {
        macro_rules! __store_contract_case {
            $(
                ($ignored) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    #[ignore = $reason]
                    async fn $ignored() {
                        $run(stringify!($ignored), $crate::store_contract::$ignored).await;
                    }
                };
            )*
            ($d name:ident) => {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $d name() {
                    $run(stringify!($d name), $crate::store_contract::$d name).await;
                }
            };
        }
        __store_contract_case!(token_crud);
        __store_contract_case!(token_conflicts_and_not_found_change_nothing);
        __store_contract_case!(token_names_need_not_be_unique);
        __store_contract_case!(token_pages_are_ordered_counted_and_filtered);
        __store_contract_case!(name_free_inserts_have_one_winner);
        __store_contract_case!(account_id_is_made_once);
        __store_contract_case!(api_token_crud);
        __store_contract_case!(revision_counts_writes_only);
        __store_contract_case!(last_seen_batches_do_not_bump_and_never_go_backwards);
        __store_contract_case!(swap_ring_is_compare_and_swap);
        __store_contract_case!(concurrent_rotations_have_exactly_one_winner);
        __store_contract_case!(the_rotation_period_is_shared_and_counts_as_a_write);
        __store_contract_case!(failed_write_rolls_back_everything);
        __store_contract_case!(two_handles_see_each_others_writes);
        __store_contract_case!(concurrent_writers_all_land);
        __store_contract_case!(app_crud_and_policies);
        __store_contract_case!(app_conflicts_and_not_found);
        __store_contract_case!(app_domains_are_unique);
        __store_contract_case!(apps_are_found_by_id_and_keep_it);
        __store_contract_case!(tokens_are_found_by_id);
        __store_contract_case!(a_token_a_policy_names_is_deleted_only_detached);
        __store_contract_case!(reusable_policies_crud_and_links);
        __store_contract_case!(stale_updates_lose_and_change_nothing);
        __store_contract_case!(interleaved_token_updates_from_two_instances_lose_nothing);
        __store_contract_case!(interleaved_app_updates_from_two_instances_lose_nothing);
    };
}

/// A service token record: `n` makes its id, client ID and secret hash unique.
pub fn token(name: &str, n: u8) -> ServiceTokenRecord {
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
        enabled: true,
        client_secret_version: 1,
    }
}

/// A signing-key record: `n` makes its kid and key bytes unique.
pub fn key(n: u8) -> SigningKeyRecord {
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

/// An application record: `n` makes its id and AUD tag unique.
pub fn app(name: &str, n: u8) -> ApplicationRecord {
    ApplicationRecord {
        id: format!("00000000-0000-4000-a000-0000000000{n:02x}"),
        name: name.to_owned(),
        aud: format!("{n:02x}").repeat(32),
        session_duration: 24 * 3600,
        read_service_tokens_from_header: None,
        cookie_http_only: true,
        cookie_secure: None,
        policies: Vec::new(),
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
        tokens_revoked_before: None,
        domain: None,
        origin: None,
    }
}

/// A policy: `n` makes its id unique; `reusable` or scoped.
pub fn policy(name: &str, n: u8, reusable: bool, include: Vec<PolicyRule>) -> PolicyRecord {
    PolicyRecord {
        id: format!("00000000-0000-4000-b000-0000000000{n:02x}"),
        name: name.to_owned(),
        decision: PolicyDecision::NonIdentity,
        rules: PolicyRules::including(include),
        reusable,
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
    }
}

/// A Service Auth policy scoped to an application, at `precedence`, admitting `tokens`.
pub fn scoped(n: u8, precedence: u32, tokens: &[&ServiceTokenRecord]) -> AppPolicy {
    AppPolicy {
        precedence,
        policy: policy("Service Auth", n, false, naming(tokens)),
    }
}

/// One `service_token` rule per token.
pub fn naming(tokens: &[&ServiceTokenRecord]) -> Vec<PolicyRule> {
    tokens
        .iter()
        .map(|t| PolicyRule::ServiceToken {
            token_id: t.id.clone(),
        })
        .collect()
}

/// Domains and origins round-trip; a domain another application has is a conflict on insert
/// and on update, and changes nothing; no domain at all is never a clash.
pub async fn app_domains_are_unique<D: Database>(db: D) {
    let store: Arc<dyn AppStore> = db.open().await;
    let mut bots = app("bots", 1);
    bots.domain = Some("example.com/service-token".to_owned());
    bots.origin = Some("http://127.0.0.1:5000/app".to_owned());
    store.insert_app(&bots).await.unwrap();
    store.insert_app(&app("plain-1", 2)).await.unwrap();
    store.insert_app(&app("plain-2", 3)).await.unwrap();
    assert_eq!(store.get_app("bots").await.unwrap(), Some(bots.clone()));
    let revision = store.revision().await.unwrap();

    let mut twin = app("twin", 4);
    twin.domain = bots.domain.clone();
    let error = store.insert_app(&twin).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
    assert!(
        error.to_string().contains("example.com/service-token"),
        "{error}"
    );
    assert_eq!(store.get_app("twin").await.unwrap(), None);

    let plain = store.get_app("plain-1").await.unwrap().unwrap();
    let mut moved = plain.clone();
    moved.domain = bots.domain.clone();
    let error = store.update_app(&plain, &moved).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
    assert_eq!(store.get_app("plain-1").await.unwrap(), Some(plain.clone()));
    assert_eq!(
        store.revision().await.unwrap(),
        revision,
        "refusals write nothing"
    );

    // Another domain is fine; so is keeping one's own.
    moved.domain = Some("*.example.com".to_owned());
    assert!(store.update_app(&plain, &moved).await.unwrap());
    let mut same = bots.clone();
    same.origin = None;
    assert!(store.update_app(&bots, &same).await.unwrap());
    assert_eq!(store.get_app("bots").await.unwrap(), Some(same));
}

/// Applications are found by id (policies included); an id another application has is a
/// conflict on insert, an update may not change the id, and refusals change nothing;
/// `updated_at` and `tokens_revoked_before` round-trip.
pub async fn apps_are_found_by_id_and_keep_it<D: Database>(db: D) {
    let store: Arc<dyn AppStore> = db.open().await;
    let mut api = app("api", 1);
    api.policies = vec![scoped(1, 1, &[&token("bb", 0xbb), &token("aa", 0xaa)])];
    let demo = app("demo", 2);
    store.insert_app(&api).await.unwrap();
    store.insert_app(&demo).await.unwrap();
    assert_eq!(
        store.get_app_by_id(&api.id).await.unwrap(),
        Some(api.clone())
    );
    assert_eq!(
        store.get_app_by_id(&demo.id).await.unwrap(),
        Some(demo.clone())
    );
    assert_eq!(
        store.get_app_by_id("api").await.unwrap(),
        None,
        "a name is not an id"
    );
    assert_eq!(
        store
            .get_app_by_id("00000000-0000-4000-8000-00000000ffff")
            .await
            .unwrap(),
        None
    );
    let revision = store.revision().await.unwrap();

    // Another application with api's id: a conflict, nothing inserted.
    let mut twin = app("twin", 3);
    twin.id = api.id.clone();
    let error = store.insert_app(&twin).await.unwrap_err();
    assert!(
        matches!(&error, StoreError::Conflict(m) if m.contains(&api.id)),
        "{error}"
    );
    assert_eq!(store.get_app("twin").await.unwrap(), None);
    // The id cannot change, not even to a free one.
    let mut renumbered = demo.clone();
    renumbered.id = "00000000-0000-4000-8000-00000000eeee".to_owned();
    let error = store.update_app(&demo, &renumbered).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error}");
    assert_eq!(
        store.get_app_by_id(&renumbered.id).await.unwrap(),
        None,
        "refused: not found under the new id"
    );
    assert_eq!(
        store.revision().await.unwrap(),
        revision,
        "refusals write nothing"
    );

    let mut revoked = api.clone();
    revoked.updated_at = 1_700_000_500;
    revoked.tokens_revoked_before = Some(1_700_000_501);
    assert!(store.update_app(&api, &revoked).await.unwrap());
    assert_eq!(
        store.get_app_by_id(&api.id).await.unwrap(),
        Some(revoked.clone())
    );
    assert_eq!(store.get_app("api").await.unwrap(), Some(revoked.clone()));
    assert!(
        !store.update_app(&api, &api).await.unwrap(),
        "the revocation is part of the compare-and-swap"
    );

    assert!(store.delete_app("api").await.unwrap());
    assert_eq!(store.get_app_by_id(&api.id).await.unwrap(), None);
    // A deleted application's id is free again.
    let mut reborn = app("reborn", 4);
    reborn.id = api.id.clone();
    store.insert_app(&reborn).await.unwrap();
    assert_eq!(store.get_app_by_id(&api.id).await.unwrap(), Some(reborn));
}

/// Tokens are found by id; unknown ids, and deleted tokens' ids, find nothing.
pub async fn tokens_are_found_by_id<D: Database>(db: D) {
    let store = db.open().await;
    let alice = token("alice", 1);
    let bob = token("bob", 2);
    store.insert_token(&alice).await.unwrap();
    store.insert_token(&bob).await.unwrap();
    assert_eq!(
        store.get_token_by_id(&alice.id).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store.get_token_by_id(&bob.id).await.unwrap(),
        Some(bob.clone())
    );
    assert_eq!(store.get_token_by_id(&alice.client_id).await.unwrap(), None);
    assert_eq!(store.get_token_by_id("nope").await.unwrap(), None);

    let mut disabled = alice.clone();
    disabled.enabled = false;
    disabled.updated_at += 1;
    assert!(store.update_token(&alice, &disabled).await.unwrap());
    assert_eq!(
        store.get_token_by_id(&alice.id).await.unwrap(),
        Some(disabled)
    );
    assert!(store.delete_token(&alice.client_id, false).await.unwrap());
    assert_eq!(store.get_token_by_id(&alice.id).await.unwrap(), None);
    assert_eq!(store.get_token_by_id(&bob.id).await.unwrap(), Some(bob));
}

/// Insert, get, list (byte order of names), update and delete tokens.
pub async fn token_crud<D: Database>(db: D) {
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

    assert!(store.delete_token(&bob.client_id, false).await.unwrap());
    assert_eq!(store.get_token(&bob.client_id).await.unwrap(), None);
    assert!(!store.delete_token(&bob.client_id, false).await.unwrap());
    assert_eq!(store.list_tokens().await.unwrap(), [forever, alice]);
}

/// Clashing client ID, name or id, and updates of missing tokens, are refused and leave no trace.
pub async fn token_conflicts_and_not_found_change_nothing<D: Database>(db: D) {
    let store = db.open().await;
    let alice = token("alice", 1);
    let bob = token("bob", 2);
    store.insert_token(&alice).await.unwrap();
    store.insert_token(&bob).await.unwrap();
    let revision = store.revision().await.unwrap();

    let mut same_client_id = token("carol", 1);
    same_client_id.id = "other-id".to_owned();
    let mut same_id = token("dave", 4);
    same_id.id = alice.id.clone();
    for clash in [&same_client_id, &same_id] {
        let error = store.insert_token(clash).await.unwrap_err();
        assert!(matches!(error, StoreError::Conflict(_)), "{error}");
        let error = store.insert_token_if_name_free(clash).await.unwrap_err();
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

    let mut takes_an_id = bob.clone();
    takes_an_id.id = alice.id.clone();
    let error = store.update_token(&bob, &takes_an_id).await.unwrap_err();
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

/// Names are not unique (as at Cloudflare): a second token, or a rename, may take a name in
/// use; `enabled` and `client_secret_version` round-trip through insert and update.
pub async fn token_names_need_not_be_unique<D: Database>(db: D) {
    let store = db.open().await;
    let alice = token("alice", 1);
    let mut twin = token("alice", 2);
    twin.enabled = false;
    twin.client_secret_version = 7;
    store.insert_token(&alice).await.unwrap();
    store.insert_token(&twin).await.unwrap();
    assert_eq!(
        store.get_token(&twin.client_id).await.unwrap(),
        Some(twin.clone())
    );
    let bob = token("bob", 3);
    store.insert_token(&bob).await.unwrap();
    let mut renamed = bob.clone();
    renamed.name = "alice".to_owned();
    renamed.enabled = false;
    renamed.client_secret_version = 2;
    assert!(store.update_token(&bob, &renamed).await.unwrap());
    assert_eq!(
        store.get_token(&bob.client_id).await.unwrap(),
        Some(renamed.clone())
    );
    let mut enabled = renamed.clone();
    enabled.enabled = true;
    assert!(store.update_token(&renamed, &enabled).await.unwrap());
    assert!(
        !store.update_token(&renamed, &enabled).await.unwrap(),
        "a change of `enabled` alone is seen by compare-and-swap"
    );
    let tokens = store.list_tokens().await.unwrap();
    assert_eq!(tokens.len(), 3);
    assert!(tokens.iter().all(|t| t.name == "alice"));

    // A name-free insert refuses a name in use, writing nothing, and takes a free one.
    let revision = store.revision().await.unwrap();
    assert!(
        !store
            .insert_token_if_name_free(&token("alice", 4))
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_token(&token("", 4).client_id).await.unwrap(),
        None
    );
    assert_eq!(store.revision().await.unwrap(), revision, "nothing written");
    assert!(
        store
            .insert_token_if_name_free(&token("carol", 4))
            .await
            .unwrap()
    );
    assert_eq!(store.revision().await.unwrap(), revision + 1);
}

/// Instances creating one name at once with `insert_token_if_name_free` (replicas making the
/// first-run demo token together): exactly one wins, every round.
pub async fn name_free_inserts_have_one_winner<D: Database>(db: D) {
    let handles = [db.open().await, db.open().await, db.open().await];
    for round in 0..6_u8 {
        let name = format!("demo-{round}");
        let tasks: Vec<_> = handles
            .iter()
            .zip(0_u8..)
            .map(|(store, i)| {
                let store = store.clone();
                let record = token(&name, round * 3 + i + 1);
                tokio::spawn(async move { store.insert_token_if_name_free(&record).await.unwrap() })
            })
            .collect();
        let mut won = 0;
        for task in tasks {
            won += usize::from(task.await.unwrap());
        }
        assert_eq!(won, 1, "round {round}");
        let named = handles[0]
            .list_tokens()
            .await
            .unwrap()
            .into_iter()
            .filter(|t| t.name == name)
            .count();
        assert_eq!(named, 1, "round {round}");
    }
}

/// The account ID: the first candidate is kept, for every handle, however many ask at once;
/// asking writes nothing another instance reloads for.
pub async fn account_id_is_made_once<D: Database>(db: D) {
    let a = db.open().await;
    let b = db.open().await;
    let revision = a.revision().await.unwrap();
    let candidates = [
        "a".repeat(32),
        "b".repeat(32),
        "c".repeat(32),
        "d".repeat(32),
    ];
    let tasks: Vec<_> = candidates
        .iter()
        .enumerate()
        .map(|(i, candidate)| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let candidate = candidate.clone();
            tokio::spawn(async move { store.account_id(&candidate, 1_700_000_000).await.unwrap() })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    assert!(candidates.contains(&ids[0]), "{ids:?}");
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(
        b.account_id(&"e".repeat(32), 1_700_000_001).await.unwrap(),
        ids[0]
    );
    assert_eq!(
        db.open()
            .await
            .account_id("f".repeat(32).as_str(), 0)
            .await
            .unwrap(),
        ids[0]
    );
    assert_eq!(a.revision().await.unwrap(), revision);
}

/// An API token record: `n` makes its id and hash unique.
pub fn api_token(name: &str, n: u8, permission: ApiPermission) -> ApiTokenRecord {
    ApiTokenRecord {
        id: format!("00000000-0000-4000-9000-0000000000{n:02x}"),
        name: name.to_owned(),
        token_hash: [n; 32],
        permission,
        created_at: 1_700_000_000 + i64::from(n),
        last_used_at: None,
    }
}

/// Insert, list (by name, then id), record use (never backwards, no bump) and delete API
/// tokens; a clashing id or hash is refused and leaves no trace.
pub async fn api_token_crud<D: Database>(db: D) {
    let store = db.open().await;
    let writer = api_token("writer", 1, ApiPermission::Edit);
    let reader = api_token("reader", 2, ApiPermission::Read);
    let twin = api_token("reader", 3, ApiPermission::Edit);
    for t in [&writer, &twin, &reader] {
        store.insert_api_token(t).await.unwrap();
    }
    assert_eq!(store.revision().await.unwrap(), 3);
    assert_eq!(
        store.list_api_tokens().await.unwrap(),
        [reader.clone(), twin.clone(), writer.clone()]
    );

    let mut same_id = api_token("x", 9, ApiPermission::Read);
    same_id.id = writer.id.clone();
    let mut same_hash = api_token("y", 10, ApiPermission::Read);
    same_hash.token_hash = writer.token_hash;
    for clash in [&same_id, &same_hash] {
        let error = store.insert_api_token(clash).await.unwrap_err();
        assert!(matches!(error, StoreError::Conflict(_)), "{error}");
    }
    assert_eq!(store.revision().await.unwrap(), 3, "refusals write nothing");

    store
        .record_api_token_use(&reader.id, 1_700_000_500)
        .await
        .unwrap();
    store
        .record_api_token_use(&reader.id, 1_700_000_400)
        .await
        .unwrap();
    store
        .record_api_token_use("unknown", 1_700_000_900)
        .await
        .unwrap();
    let listed = store.list_api_tokens().await.unwrap();
    assert_eq!(
        listed[0].last_used_at,
        Some(1_700_000_500),
        "never backwards"
    );
    assert_eq!(listed[1].last_used_at, None);
    assert_eq!(store.revision().await.unwrap(), 3, "use is not a change");

    assert!(store.delete_api_token(&twin.id).await.unwrap());
    assert!(!store.delete_api_token(&twin.id).await.unwrap());
    assert_eq!(store.revision().await.unwrap(), 4);
    let ids: Vec<String> = store
        .list_api_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, [reader.id, writer.id]);
}

/// Every write bumps the revision once; reads, no-op deletes and lost races do not.
pub async fn revision_counts_writes_only<D: Database>(db: D) {
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
    assert!(!store.delete_token("nobody.access", false).await.unwrap());
    assert!(!store.delete_app("nothing").await.unwrap());
    assert!(!store.swap_ring(0, &[]).await.unwrap());
    assert_eq!(store.revision().await.unwrap(), 5);

    assert!(store.delete_app("demo").await.unwrap());
    assert!(store.delete_token(&alice.client_id, false).await.unwrap());
    assert_eq!(store.revision().await.unwrap(), 7);
}

/// Last-seen batches: the newest time wins, no revision bump, untouched by `update_token`.
pub async fn last_seen_batches_do_not_bump_and_never_go_backwards<D: Database>(db: D) {
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

/// `swap_ring` replaces the ring only from the current generation, keeping its order.
pub async fn swap_ring_is_compare_and_swap<D: Database>(db: D) {
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

/// Two handles racing to swap the ring from one generation: exactly one wins, every round.
pub async fn concurrent_rotations_have_exactly_one_winner<D: Database>(db: D) {
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

/// A failed ring swap (duplicate kid) changes nothing, and the store works on afterwards.
pub async fn failed_write_rolls_back_everything<D: Database>(db: D) {
    let store = db.open().await;
    assert!(store.swap_ring(0, &[key(1)]).await.unwrap());
    store.insert_app(&app("demo", 1)).await.unwrap();
    let revision = store.revision().await.unwrap();

    // The duplicate kid fails the swap (in SQL on the second insert, after the old ring was
    // already deleted and the counters bumped inside the transaction): all of it must roll back.
    let error = store.swap_ring(1, &[key(2), key(2)]).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error}");
    assert_eq!(store.load_ring().await.unwrap(), (1, vec![key(1)]));

    assert_eq!(store.get_app("demo").await.unwrap(), Some(app("demo", 1)));

    assert_eq!(store.revision().await.unwrap(), revision);
    // The store still works after the failures (no connection left mid-transaction).
    assert!(store.swap_ring(1, &[key(3)]).await.unwrap());
    assert_eq!(store.revision().await.unwrap(), revision + 1);
}

/// Two handles on one store see each other's writes and share one revision.
pub async fn two_handles_see_each_others_writes<D: Database>(db: D) {
    let a = db.open().await;
    let b = db.open().await;
    a.insert_token(&token("alice", 1)).await.unwrap();
    assert_eq!(b.revision().await.unwrap(), 1);
    assert_eq!(b.list_tokens().await.unwrap(), [token("alice", 1)]);
    b.insert_app(&app("demo", 1)).await.unwrap();
    assert_eq!(a.get_app("demo").await.unwrap(), Some(app("demo", 1)));
    assert!(
        b.delete_token(&token("alice", 1).client_id, false)
            .await
            .unwrap()
    );
    assert_eq!(
        a.get_token(&token("alice", 1).client_id).await.unwrap(),
        None
    );
    assert_eq!(a.revision().await.unwrap(), 3);
}

/// Four handles writing at once: every write lands and is counted once.
pub async fn concurrent_writers_all_land<D: Database>(db: D) {
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

/// Insert, get, list, update and delete applications, scoped policies included (in precedence
/// order, gaps kept, every decision and rule kind round-tripping).
pub async fn app_crud_and_policies<D: Database>(db: D) {
    let store: Arc<dyn AppStore> = db.open().await;
    let demo = app("demo", 1);
    let mut api = app("api", 2);
    api.session_duration = 0;
    api.read_service_tokens_from_header = Some("Authorization".to_owned());
    api.cookie_http_only = false;
    api.cookie_secure = Some(false);
    let mut deny = policy(
        "office only",
        2,
        false,
        vec![PolicyRule::Everyone {}, PolicyRule::AnyValidServiceToken {}],
    );
    deny.decision = PolicyDecision::Deny;
    deny.rules.require = vec![PolicyRule::Email {
        email: "a@example.com".into(),
    }];
    deny.rules.exclude = vec![
        PolicyRule::Ip {
            ip: "10.0.0.0/8".parse().unwrap(),
        },
        PolicyRule::EmailDomain {
            domain: "example.com".into(),
        },
    ];
    api.policies = vec![
        scoped(
            1,
            1,
            &[&token("bb", 0xbb), &token("aa", 0xaa), &token("cc", 0xcc)],
        ),
        AppPolicy {
            precedence: 5,
            policy: deny,
        },
    ];
    store.insert_app(&demo).await.unwrap();
    store.insert_app(&api).await.unwrap();
    assert_eq!(store.get_app("api").await.unwrap(), Some(api.clone()));
    assert_eq!(store.get_app("nope").await.unwrap(), None);
    assert_eq!(
        store.list_apps().await.unwrap(),
        [api.clone(), demo.clone()]
    );

    let mut changed = api.clone();
    changed.policies = vec![scoped(3, 1, &[&token("dd", 0xdd)])];
    changed.session_duration = 3600;
    changed.read_service_tokens_from_header = None;
    changed.cookie_secure = Some(true);
    assert!(store.update_app(&api, &changed).await.unwrap());
    assert_eq!(store.get_app("api").await.unwrap(), Some(changed.clone()));
    assert_eq!(
        store.get_policy(&api.policies[0].policy.id).await.unwrap(),
        None,
        "a scoped policy left out is deleted"
    );
    let mut open = changed.clone();
    open.policies[0].policy.rules =
        PolicyRules::including(vec![PolicyRule::AnyValidServiceToken {}]);
    assert!(store.update_app(&changed, &open).await.unwrap());
    assert_eq!(
        store.list_apps().await.unwrap(),
        [open.clone(), demo.clone()]
    );
    assert_eq!(
        store.get_policy(&open.policies[0].policy.id).await.unwrap(),
        Some(open.policies[0].policy.clone())
    );
    assert_eq!(
        store.list_policies().await.unwrap(),
        [],
        "scoped ones are not listed"
    );

    assert!(store.delete_app("api").await.unwrap());
    assert!(!store.delete_app("api").await.unwrap());
    assert_eq!(
        store.get_policy(&open.policies[0].policy.id).await.unwrap(),
        None,
        "scoped policies go with their application"
    );
    // A re-created application does not inherit the old policies.
    store.insert_app(&app("api", 2)).await.unwrap();
    assert_eq!(store.list_apps().await.unwrap(), [app("api", 2), demo]);
}

/// Clashing names or AUD tags, and updates of missing applications, are refused and leave no trace.
pub async fn app_conflicts_and_not_found<D: Database>(db: D) {
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

/// Deleting a token a policy names is refused ([`StoreError::InUse`], nothing changed) unless
/// detached: then it leaves every policy, reusable and scoped, in the same step, and a
/// re-import under the same client ID inherits no access.
pub async fn a_token_a_policy_names_is_deleted_only_detached<D: Database>(db: D) {
    let store = db.open().await;
    let alice = token("alice", 1);
    let bob = token("bob", 2);
    store.insert_token(&alice).await.unwrap();
    store.insert_token(&bob).await.unwrap();
    let shared = policy("bots", 9, true, naming(&[&bob, &alice]));
    store.insert_policy(&shared).await.unwrap();
    let mut strict = app("strict", 1);
    strict.policies = vec![
        scoped(1, 1, &[&alice, &bob]),
        AppPolicy {
            precedence: 2,
            policy: shared.clone(),
        },
    ];
    let mut only_alice = app("only-alice", 2);
    only_alice.policies = vec![scoped(2, 1, &[&alice])];
    store.insert_app(&strict).await.unwrap();
    store.insert_app(&only_alice).await.unwrap();
    let revision = store.revision().await.unwrap();

    let error = store
        .delete_token(&alice.client_id, false)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::InUse(_)), "{error:?}");
    for name in ["bots", "Service Auth"] {
        assert!(error.to_string().contains(name), "{error}");
    }
    assert_eq!(store.revision().await.unwrap(), revision, "nothing changed");
    assert_eq!(
        store.get_token(&alice.client_id).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.get_app("strict").await.unwrap(), Some(strict.clone()));

    assert!(store.delete_token(&alice.client_id, true).await.unwrap());
    // A token imported later under the same client ID is a new token: no inherited access.
    store.insert_token(&alice).await.unwrap();
    let apps = store.list_apps().await.unwrap();
    assert_eq!(apps[0].name, "only-alice");
    assert_eq!(
        apps[0].policies[0].policy.rules.include,
        [],
        "still restricted, now to nobody"
    );
    let strict_now = &apps[1];
    assert_eq!(strict_now.policies[0].policy.rules.include, naming(&[&bob]));
    assert_eq!(strict_now.policies[1].policy.rules.include, naming(&[&bob]));
    assert_eq!(
        store
            .get_policy(&shared.id)
            .await
            .unwrap()
            .unwrap()
            .rules
            .include,
        naming(&[&bob])
    );
    // A token no policy names goes at once.
    store.insert_token(&token("carol", 3)).await.unwrap();
    assert!(
        store
            .delete_token(&token("carol", 3).client_id, false)
            .await
            .unwrap()
    );
}

/// Reusable policies: insert, get, list (by name, then id), compare-and-swap update seen by
/// every application linking them, links to unknown policies refused, scoped ids kept apart,
/// and deletion refused while linked; refusals change nothing.
pub async fn reusable_policies_crud_and_links<D: Database>(db: D) {
    let store = db.open().await;
    let bot = token("bot", 1);
    store.insert_token(&bot).await.unwrap();
    let b = policy("b", 2, true, vec![PolicyRule::AnyValidServiceToken {}]);
    let a = policy("a", 3, true, naming(&[&bot]));
    store.insert_policy(&b).await.unwrap();
    store.insert_policy(&a).await.unwrap();
    assert_eq!(store.list_policies().await.unwrap(), [a.clone(), b.clone()]);
    assert_eq!(store.get_policy(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.get_policy("nope").await.unwrap(), None);
    let error = store.insert_policy(&a).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
    let error = store
        .insert_policy(&policy("scoped", 4, false, vec![]))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");

    let mut api = app("api", 1);
    let link = |precedence, policy: &PolicyRecord| AppPolicy {
        precedence,
        policy: policy.clone(),
    };
    api.policies = vec![link(1, &a), link(2, &b)];
    store.insert_app(&api).await.unwrap();
    let mut web = app("web", 2);
    web.policies = vec![link(7, &a)];
    store.insert_app(&web).await.unwrap();
    assert_eq!(store.get_app("api").await.unwrap(), Some(api.clone()));
    let revision = store.revision().await.unwrap();

    // Refused, changing nothing: a link to no policy, a scoped id that is a reusable one's,
    // deleting a linked policy, an update that would make it scoped.
    let mut ghost = app("ghost", 3);
    ghost.policies = vec![link(1, &policy("ghost", 5, true, vec![]))];
    let error = store.insert_app(&ghost).await.unwrap_err();
    assert!(matches!(error, StoreError::NotFound(_)), "{error:?}");
    let mut thief = app("thief", 4);
    let mut stolen = a.clone();
    stolen.reusable = false;
    thief.policies = vec![link(1, &stolen)];
    let error = store.insert_app(&thief).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
    let error = store.delete_policy(&a.id).await.unwrap_err();
    assert!(matches!(error, StoreError::InUse(_)), "{error:?}");
    assert!(error.to_string().contains("\"api\", \"web\""), "{error}");
    let mut renamed = a.clone();
    renamed.name = "a2".into();
    renamed.decision = PolicyDecision::Bypass;
    renamed.updated_at += 1;
    let error = store.update_policy(&a, &stolen).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
    assert_eq!(
        store.revision().await.unwrap(),
        revision,
        "refusals write nothing"
    );
    assert_eq!(store.get_app("ghost").await.unwrap(), None);

    assert!(store.update_policy(&a, &renamed).await.unwrap());
    assert!(
        !store.update_policy(&a, &renamed).await.unwrap(),
        "stale now"
    );
    let api_now = store.get_app("api").await.unwrap().unwrap();
    assert_eq!(
        api_now.policies[0].policy, renamed,
        "the link shows the change"
    );
    assert_eq!(
        store.list_apps().await.unwrap()[1].policies[0].policy,
        renamed
    );
    assert!(
        !store.update_app(&api, &api).await.unwrap(),
        "an application read before its policy changed is stale"
    );

    // Unlinked, it can go.
    let mut unlinked = api_now.clone();
    unlinked.policies.remove(0);
    assert!(store.update_app(&api_now, &unlinked).await.unwrap());
    let web_now = store.get_app("web").await.unwrap().unwrap();
    assert!(store.delete_app(&web_now.name).await.unwrap());
    assert!(store.delete_policy(&a.id).await.unwrap());
    assert!(!store.delete_policy(&a.id).await.unwrap());
    assert_eq!(store.list_policies().await.unwrap(), [b]);
}

/// A page of tokens: ordered by name then id, bytewise (`B` before `a`, as on every backend),
/// counted in all, filtered by exact name, empty past the end.
pub async fn token_pages_are_ordered_counted_and_filtered<D: Database>(db: D) {
    let store = db.open().await;
    let names = ["b", "a", "B", "a", "c"];
    let mut all: Vec<ServiceTokenRecord> = Vec::new();
    for (n, name) in (1_u8..).zip(names) {
        let t = token(name, n);
        store.insert_token(&t).await.unwrap();
        all.push(t);
    }
    all.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    let ids =
        |tokens: &[ServiceTokenRecord]| tokens.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
    let (total, page) = store.list_tokens_page(None, 0, 2).await.unwrap();
    assert_eq!((total, ids(&page)), (5, ids(&all[..2])));
    assert_eq!(page[0].name, "B", "bytewise: upper case first");
    let (_, page) = store.list_tokens_page(None, 2, 2).await.unwrap();
    assert_eq!(ids(&page), ids(&all[2..4]));
    let (total, page) = store.list_tokens_page(None, 10, 2).await.unwrap();
    assert_eq!(
        (total, page.len()),
        (5, 0),
        "past the end: empty, still counted"
    );
    let (total, page) = store.list_tokens_page(Some("a"), 0, 10).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(ids(&page), ids(&all[1..3]), "the two named a, by id");
    let (total, page) = store.list_tokens_page(Some("nobody"), 0, 10).await.unwrap();
    assert_eq!((total, page.len()), (0, 0));
    assert_eq!(
        store.list_tokens_page(None, 0, 100).await.unwrap().1,
        all,
        "a page is the records, whole"
    );
}

/// The rotation period set for every instance: none at first, seen by another handle once
/// set, cleared again; each change bumps the revision, reading does not.
pub async fn the_rotation_period_is_shared_and_counts_as_a_write<D: Database>(db: D) {
    let a = db.open().await;
    let b = db.open().await;
    assert_eq!(a.rotation_period().await.unwrap(), None);
    let revision = a.revision().await.unwrap();
    a.set_rotation_period(Some(30 * 86_400)).await.unwrap();
    assert_eq!(b.rotation_period().await.unwrap(), Some(30 * 86_400));
    assert_eq!(b.revision().await.unwrap(), revision + 1);
    assert_eq!(
        b.load_ring().await.unwrap(),
        (0, vec![]),
        "the ring is untouched"
    );
    b.set_rotation_period(None).await.unwrap();
    assert_eq!(a.rotation_period().await.unwrap(), None);
    assert_eq!(a.revision().await.unwrap(), revision + 2);
}

/// Compare-and-swap updates from a stale read lose, changing nothing.
pub async fn stale_updates_lose_and_change_nothing<D: Database>(db: D) {
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
    strict.policies = vec![scoped(1, 1, &[&alice])];
    assert!(store.update_app(&demo, &strict).await.unwrap());
    let revision_after_apps = store.revision().await.unwrap();
    assert_eq!(revision_after_apps, revision + 2);
    let mut stale = demo.clone();
    stale.session_duration = 60;
    assert!(
        !store.update_app(&demo, &stale).await.unwrap(),
        "the policies changed since `demo` was read"
    );
    assert_eq!(store.get_app("demo").await.unwrap(), Some(strict));
    assert_eq!(
        store.revision().await.unwrap(),
        revision_after_apps,
        "lost compare-and-swaps leave no trace"
    );
}

/// A token refresh stalled between read and write while another instance rotates the secret: both changes survive.
pub async fn interleaved_token_updates_from_two_instances_lose_nothing<D: Database>(db: D) {
    let clock = ManualClock::at_unix(1_700_000_000);
    // Two instances: separate handles (pools) on one database.
    let (paused, read_done, go) = PausedAfterFirstRead::new(db.open().await);
    let instance_a = ServiceTokens::new(paused, Arc::new(clock.clone()));
    let instance_b = ServiceTokens::new(db.open().await, Arc::new(clock.clone()));
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

/// An application update stalled between read and write while another instance changes its policies: both changes survive.
pub async fn interleaved_app_updates_from_two_instances_lose_nothing<D: Database>(db: D) {
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let (paused, read_done, go) = PausedAfterFirstRead::new(db.open().await);
    let instance_a = Applications::new(paused, clock.clone());
    let store_b = db.open().await;
    store_b.insert_token(&token("bot", 1)).await.unwrap();
    let instance_b = Applications::new(store_b.clone(), clock).with_tokens(store_b);
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
        .update("api", AppSettings::new().policy(allowed))
        .await
        .unwrap();
    go.send(()).unwrap();
    let updated = update.await.unwrap().unwrap();

    let stored = instance_b.get("api").await.unwrap();
    assert_eq!(stored, updated);
    assert_eq!(stored.session_duration, 600, "A's change landed");
    assert_eq!(
        stored.policies[0].policy.rules.include,
        naming(&[&token("bot", 1)]),
        "B's policy was not overwritten"
    );
}

/// A store that parks the first record read until the test lets it go on: it holds one
/// manager between its read and its write while another instance updates the same record.
struct PausedAfterFirstRead<S> {
    inner: Arc<S>,
    pause: std::sync::Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

impl<S> PausedAfterFirstRead<S> {
    /// The store, a receiver told when the first read is done, and a sender that resumes it.
    fn new(inner: Arc<S>) -> (Arc<Self>, oneshot::Receiver<()>, oneshot::Sender<()>) {
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

impl<S: TokenStore + AppStore> Revision for PausedAfterFirstRead<S> {
    fn revision(&self) -> StoreFuture<'_, u64> {
        self.inner.revision()
    }
}

impl<S: TokenStore + AppStore> TokenStore for PausedAfterFirstRead<S> {
    fn insert_token<'a>(&'a self, token: &'a ServiceTokenRecord) -> StoreFuture<'a, ()> {
        self.inner.insert_token(token)
    }
    fn insert_token_if_name_free<'a>(
        &'a self,
        token: &'a ServiceTokenRecord,
    ) -> StoreFuture<'a, bool> {
        self.inner.insert_token_if_name_free(token)
    }
    fn get_token<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, Option<ServiceTokenRecord>> {
        Box::pin(async move {
            let token = self.inner.get_token(client_id).await;
            self.after_read().await;
            token
        })
    }
    fn get_token_by_id<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ServiceTokenRecord>> {
        self.inner.get_token_by_id(id)
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
    fn delete_token<'a>(&'a self, client_id: &'a str, detach: bool) -> StoreFuture<'a, bool> {
        self.inner.delete_token(client_id, detach)
    }
    fn record_last_seen<'a>(&'a self, seen: &'a [(String, i64)]) -> StoreFuture<'a, ()> {
        self.inner.record_last_seen(seen)
    }
}

impl<S: TokenStore + AppStore> AppStore for PausedAfterFirstRead<S> {
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
    fn get_app_by_id<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ApplicationRecord>> {
        self.inner.get_app_by_id(id)
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
    fn insert_policy<'a>(&'a self, policy: &'a PolicyRecord) -> StoreFuture<'a, ()> {
        self.inner.insert_policy(policy)
    }
    fn get_policy<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<PolicyRecord>> {
        self.inner.get_policy(id)
    }
    fn list_policies(&self) -> StoreFuture<'_, Vec<PolicyRecord>> {
        self.inner.list_policies()
    }
    fn update_policy<'a>(
        &'a self,
        expected: &'a PolicyRecord,
        policy: &'a PolicyRecord,
    ) -> StoreFuture<'a, bool> {
        self.inner.update_policy(expected, policy)
    }
    fn delete_policy<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        self.inner.delete_policy(id)
    }
}
