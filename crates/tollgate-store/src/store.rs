//! [`Store`]: one handle over either backend, implementing the store traits (the account's are
//! in `account.rs`, the authentication log's in `auth_log.rs`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Transaction;
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, Postgres};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
};
use tollgate_issue::{
    AppPolicy, AppStore, ApplicationRecord, KeyStore, PolicyRecord, Revision, ServiceTokenRecord,
    SigningKeyRecord, StoreError, StoreFuture, TokenStore,
};

use crate::error::{Error, ErrorKind, Failure};
use crate::master_key::MasterKey;
use crate::rows::{
    AppRow, KeyRow, LinkRow, NewKeyRow, PolicyRow, TokenRow, app_columns, duration_seconds,
    key_columns, policy_columns, rules_json, to_i64, to_u64, token_columns,
};

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("tollgate-store needs at least one backend: enable feature `sqlite` or `postgres`");

#[cfg(feature = "sqlite")]
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
#[cfg(feature = "postgres")]
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Bumps the change counter and returns it with the ring generation. Every write transaction
/// runs it first: the row lock it takes (PostgreSQL) or the write lock already held (SQLite,
/// `BEGIN IMMEDIATE`) serialises writers, so the generation it returns is current until commit.
pub(crate) const BUMP: &str = "UPDATE tollgate_meta SET revision = revision + 1 WHERE id = 1 \
                    RETURNING revision, ring_generation";

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// One SQLite file (or memory), for a single instance.
    Sqlite,
    /// A PostgreSQL database shared by several instances.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        })
    }
}

/// How [`connect`](crate::connect) opens a store.
///
/// ```
/// use std::time::Duration;
/// use tollgate_store::{MasterKey, StoreOptions};
///
/// let options = StoreOptions::new()
///     .with_master_key(MasterKey::parse(&"42".repeat(32))?)
///     .with_max_connections(4)
///     .with_busy_timeout(Duration::from_secs(2));
/// # Ok::<(), tollgate_store::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct StoreOptions {
    master_key: Option<Arc<MasterKey>>,
    max_connections: Option<u32>,
    busy_timeout: Option<Duration>,
    acquire_timeout: Option<Duration>,
}

impl StoreOptions {
    /// Defaults: no master key (private keys stored plain), 8 pooled connections (1 for
    /// `sqlite::memory:`), SQLite busy timeout 5 s, connection acquire timeout 10 s.
    pub fn new() -> Self {
        Self::default()
    }

    /// Encrypts private signing keys at rest with `key`.
    pub fn with_master_key(mut self, key: MasterKey) -> Self {
        self.master_key = Some(Arc::new(key));
        self
    }

    /// Uses the master key in `TOLLGATE_MASTER_KEY` if it is set (keeps none otherwise).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidMasterKey`] if the variable is set but malformed.
    pub fn with_master_key_from_env(mut self) -> Result<Self, Error> {
        if let Some(key) = MasterKey::from_env()? {
            self.master_key = Some(Arc::new(key));
        }
        Ok(self)
    }

    /// The most connections the pool opens.
    pub fn with_max_connections(mut self, max: u32) -> Self {
        self.max_connections = Some(max.max(1));
        self
    }

    /// How long a SQLite statement waits for another writer's lock before failing.
    pub fn with_busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = Some(timeout);
        self
    }

    /// How long to wait for a pooled connection (and for the first connection at startup).
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = Some(timeout);
        self
    }

    fn acquire_timeout(&self) -> Duration {
        self.acquire_timeout.unwrap_or(Duration::from_secs(10))
    }
}

/// The concrete pool (`auth_log.rs` matches on it too).
pub(crate) enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool: the body is compiled once per backend,
/// so the same SQL text (`$1` placeholders work on both) and row types serve both.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store.pool() {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite($pool) => $body,
            #[cfg(feature = "postgres")]
            Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// How each backend opens its transactions.
pub(crate) trait Begin {
    type Db: sqlx::Database;

    /// A writing transaction that holds the write lock from its first statement.
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, sqlx::Error>> + Send;

    /// A reading transaction whose statements all see one snapshot.
    fn begin_read(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, sqlx::Error>> + Send;
}

#[cfg(feature = "sqlite")]
impl Begin for SqlitePool {
    type Db = Sqlite;

    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Sqlite>, sqlx::Error>> + Send {
        // A deferred transaction that reads and then writes can fail with SQLITE_BUSY at once in
        // WAL mode (no busy wait); taking the write lock up front makes writers queue instead.
        self.begin_with("BEGIN IMMEDIATE")
    }

    fn begin_read(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Sqlite>, sqlx::Error>> + Send {
        self.begin()
    }
}

#[cfg(feature = "postgres")]
impl Begin for PgPool {
    type Db = Postgres;

    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Postgres>, sqlx::Error>> + Send {
        self.begin()
    }

    fn begin_read(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Postgres>, sqlx::Error>> + Send {
        self.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    }
}

struct Inner {
    pool: Pool,
    master_key: Option<Arc<MasterKey>>,
}

/// A SQL store: service tokens, the signing-key ring and applications in one database.
///
/// Cheap to clone (one shared pool). Implements [`TokenStore`], [`KeyStore`] and [`AppStore`],
/// so it can be handed to the issuer as `Arc<dyn TokenStore>` and so on.
///
/// Every method runs in one transaction. Every write also bumps [`Revision::revision`] in that
/// transaction (recording last-seen times does not). Writers are serialised on the store's
/// single meta row: SQLite transactions begin `IMMEDIATE`, PostgreSQL ones lock the row with
/// their first statement, which is also what makes [`KeyStore::swap_ring`],
/// [`TokenStore::update_token`] and [`AppStore::update_app`] true compare-and-swaps across
/// instances.
///
/// ```
/// use tollgate_issue::{KeyStore, Revision};
/// use tollgate_store::{StoreOptions, connect};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let store = connect("sqlite::memory:", StoreOptions::new()).await?;
/// assert!(!store.encrypts_keys());
/// assert_eq!(store.revision().await?, 0);
/// assert_eq!(store.load_ring().await?, (0, vec![]));
/// assert!(store.swap_ring(0, &[]).await?);
/// assert!(!store.swap_ring(0, &[]).await?, "generation moved on: the stale writer loses");
/// assert_eq!(store.revision().await?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("encrypts_keys", &self.encrypts_keys())
            .finish()
    }
}

enum Scheme {
    Sqlite,
    Postgres,
}

fn scheme(url: &str) -> Result<Scheme, Error> {
    let lower = url
        .get(..url.find(':').unwrap_or(0))
        .unwrap_or("")
        .to_ascii_lowercase();
    match lower.as_str() {
        "sqlite" => Ok(Scheme::Sqlite),
        "postgres" | "postgresql" => Ok(Scheme::Postgres),
        _ => Err(Error::new(
            ErrorKind::UnsupportedUrl,
            "database URL must start with sqlite: (e.g. sqlite://tollgate.db, sqlite::memory:) \
             or postgres://",
        )),
    }
}

impl Store {
    /// Opens the store at `url`, creating the database file (SQLite) and the schema on first
    /// use and applying any newer migrations.
    ///
    /// - `sqlite://path/to/file.db` (relative paths are relative to the working directory),
    ///   `sqlite:///absolute/path.db`, or `sqlite::memory:`. Files use WAL, a busy timeout and
    ///   foreign keys.
    /// - `postgres://user:password@host:port/database` (or `postgresql://`).
    ///
    /// # Errors
    /// [`ErrorKind::UnsupportedUrl`] for another scheme or a backend this build lacks,
    /// [`ErrorKind::Connect`] if the database cannot be opened, [`ErrorKind::Migrate`] if the
    /// schema cannot be brought up to date (including a schema newer than this build).
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Self, Error> {
        let pool = match scheme(url)? {
            Scheme::Sqlite => connect_sqlite(url, &options).await?,
            Scheme::Postgres => connect_postgres(url, &options).await?,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                master_key: options.master_key,
            }),
        })
    }

    /// Which database this store talks to.
    #[must_use]
    pub fn backend(&self) -> Backend {
        match &self.inner.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Whether private signing keys written by this handle are encrypted at rest (a master key
    /// is configured). When `false` they are stored as plain PKCS#8 DER.
    #[must_use]
    pub fn encrypts_keys(&self) -> bool {
        self.inner.master_key.is_some()
    }

    /// Closes the pool, waiting for checked-out connections to come back.
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await);
    }

    /// The pool, for the other tables' files (`auth_log.rs`).
    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    fn master_key(&self) -> Option<&MasterKey> {
        self.inner.master_key.as_deref()
    }
}

#[cfg(feature = "sqlite")]
async fn connect_sqlite(url: &str, options: &StoreOptions) -> Result<Pool, Error> {
    use std::str::FromStr as _;

    let connect_options = SqliteConnectOptions::from_str(url)
        .map_err(|e| Error::with_source(ErrorKind::UnsupportedUrl, "invalid SQLite URL", e))?
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(options.busy_timeout.unwrap_or(Duration::from_secs(5)));
    let lower = url.to_ascii_lowercase();
    let in_memory = lower.starts_with("sqlite::memory:") || lower.contains("mode=memory");
    let pool_options = SqlitePoolOptions::new().acquire_timeout(options.acquire_timeout());
    let (connect_options, pool_options) = if in_memory {
        // One connection that never closes: the database lives exactly as long as the pool.
        let pool_options = pool_options
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
        (connect_options, pool_options)
    } else {
        let pool_options = pool_options.max_connections(options.max_connections.unwrap_or(8));
        (
            connect_options.journal_mode(SqliteJournalMode::Wal),
            pool_options,
        )
    };
    let filename = connect_options.get_filename().display().to_string();
    // Switching a fresh file to WAL takes a lock SQLite's busy handler does not wait for, so
    // processes opening one file at once can see SQLITE_BUSY here: retry a few times.
    let mut attempt = 0;
    let pool = loop {
        match pool_options
            .clone()
            .connect_with(connect_options.clone())
            .await
        {
            Ok(pool) => break pool,
            Err(e) if attempt < 20 && is_busy(&e) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
            }
            Err(e) => {
                return Err(Error::with_source(
                    ErrorKind::Connect,
                    format!("cannot open SQLite database {filename}"),
                    e,
                ));
            }
        }
    };
    // Two processes opening a fresh file at once would race to apply the same migration (sqlx
    // locks only PostgreSQL): they take turns under an exclusive lock on a file beside the
    // database, held until the schema is current.
    let _turn = if in_memory {
        None
    } else {
        migration_lock(connect_options.get_filename()).await?
    };
    SQLITE_MIGRATIONS.run(&pool).await.map_err(migrate_error)?;
    Ok(Pool::Sqlite(pool))
}

/// SQLITE_BUSY (5) or SQLITE_LOCKED (6), in any of their extended forms.
#[cfg(feature = "sqlite")]
fn is_busy(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .and_then(|code| code.parse::<u32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

#[cfg(not(feature = "sqlite"))]
async fn connect_sqlite(_url: &str, _options: &StoreOptions) -> Result<Pool, Error> {
    Err(Error::new(
        ErrorKind::UnsupportedUrl,
        "this build has no SQLite support (cargo feature `sqlite` of tollgate-store)",
    ))
}

#[cfg(feature = "postgres")]
async fn connect_postgres(url: &str, options: &StoreOptions) -> Result<Pool, Error> {
    use std::str::FromStr as _;

    // Errors here never echo the URL: it may hold a password.
    let connect_options = PgConnectOptions::from_str(url)
        .map_err(|e| Error::with_source(ErrorKind::UnsupportedUrl, "invalid PostgreSQL URL", e))?;
    let target = format!(
        "{}:{}/{}",
        connect_options.get_host(),
        connect_options.get_port(),
        connect_options.get_database().unwrap_or("")
    );
    let unreachable = |e: sqlx::Error| {
        Error::with_source(
            ErrorKind::Connect,
            format!("cannot connect to PostgreSQL at {target}"),
            e,
        )
    };
    // One direct connection first: the pool would retry a refused or failed login until its
    // acquire timeout and then report only the timeout; this fails at once, with the reason.
    {
        use sqlx::Connection as _;
        sqlx::PgConnection::connect_with(&connect_options)
            .await
            .map_err(unreachable)?
            .close()
            .await
            .map_err(unreachable)?;
    }
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections.unwrap_or(8))
        .acquire_timeout(options.acquire_timeout())
        .connect_with(connect_options)
        .await
        .map_err(unreachable)?;
    // sqlx serialises concurrent migrators with an advisory lock on PostgreSQL.
    POSTGRES_MIGRATIONS
        .run(&pool)
        .await
        .map_err(migrate_error)?;
    Ok(Pool::Postgres(pool))
}

#[cfg(not(feature = "postgres"))]
async fn connect_postgres(_url: &str, _options: &StoreOptions) -> Result<Pool, Error> {
    Err(Error::new(
        ErrorKind::UnsupportedUrl,
        "this build has no PostgreSQL support (cargo feature `postgres` of tollgate-store)",
    ))
}

/// An exclusive lock on `<database>-migrate.lock`, released when dropped (the caller takes
/// none for an in-memory database, which no other process can open). Waits up to 60 s for
/// another process's migrations.
#[cfg(feature = "sqlite")]
async fn migration_lock(database: &std::path::Path) -> Result<Option<std::fs::File>, Error> {
    let name = database.as_os_str();
    if name.is_empty() || name == ":memory:" {
        return Ok(None);
    }
    let mut path = name.to_owned();
    path.push("-migrate.lock");
    let locked = |e: std::io::Error| {
        Error::with_source(
            ErrorKind::Connect,
            "cannot lock the SQLite database for its migrations".to_owned(),
            e,
        )
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(locked)?;
    for _ in 0..3000 {
        match file.try_lock() {
            Ok(()) => return Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(locked(e)),
        }
    }
    Err(locked(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "another process held the migration lock for 60 s",
    )))
}

fn migrate_error(error: sqlx::migrate::MigrateError) -> Error {
    let message = match &error {
        sqlx::migrate::MigrateError::VersionMissing(_) => {
            "the database schema is newer than this build of tollgate; upgrade tollgate"
        }
        _ => "cannot create or update the database schema",
    };
    Error::with_source(ErrorKind::Migrate, message, error)
}

pub(crate) fn finish<T>(result: Result<T, Failure>) -> Result<T, StoreError> {
    result.map_err(StoreError::from)
}

impl Revision for Store {
    fn revision(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let revision: i64 = finish(with_pool!(self, |pool| {
                sqlx::query_scalar("SELECT revision FROM tollgate_meta WHERE id = 1")
                    .fetch_one(pool)
                    .await
                    .map_err(Failure::from)
            }))?;
            Ok(to_u64(revision, "revision")?)
        })
    }
}

impl Store {
    /// Inserts `token`; with `name_free`, only if no token has its name (`false` otherwise),
    /// decided under the writer lock so two instances cannot both pass the check.
    async fn insert_token_checked(
        &self,
        token: &ServiceTokenRecord,
        name_free: bool,
    ) -> Result<bool, StoreError> {
        let duration = duration_seconds(token.duration)?;
        let version = to_i64(token.client_secret_version, "client secret version")?;
        finish(with_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            // The bump serialises writers, so the checks below stay true until commit.
            let _: (i64, i64) = sqlx::query_as(BUMP).fetch_one(&mut *tx).await?;
            let clash: Option<(String, String)> = sqlx::query_as(
                "SELECT id, client_id FROM service_tokens WHERE client_id = $1 OR id = $2",
            )
            .bind(&token.client_id)
            .bind(&token.id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((_, client_id)) = clash {
                return Err(StoreError::Conflict(if client_id == token.client_id {
                    format!("service token {client_id}")
                } else {
                    format!("a service token with id {}", token.id)
                })
                .into());
            }
            if name_free {
                let taken: Option<String> =
                    sqlx::query_scalar("SELECT id FROM service_tokens WHERE name = $1 LIMIT 1")
                        .bind(&token.name)
                        .fetch_optional(&mut *tx)
                        .await?;
                if taken.is_some() {
                    // Nothing written: roll back, so the revision does not move either.
                    tx.rollback().await?;
                    return Ok(false);
                }
            }
            sqlx::query(concat!(
                "INSERT INTO service_tokens (",
                token_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ))
            .bind(&token.id)
            .bind(&token.name)
            .bind(&token.client_id)
            .bind(&token.secret_hash[..])
            .bind(token.previous_secret_hash.as_ref().map(|hash| &hash[..]))
            .bind(token.previous_secret_expires_at)
            .bind(duration)
            .bind(token.created_at)
            .bind(token.updated_at)
            .bind(token.expires_at)
            .bind(token.last_seen_at)
            .bind(token.enabled)
            .bind(version)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        }
        .await))
    }
}

/// A page of service tokens: `$where` (binding `$3`) and `$order`, `$1` the limit, `$2` the
/// offset.
macro_rules! page_select {
    ($where:literal, $order:literal) => {
        concat!(
            "SELECT ",
            token_columns!(),
            " FROM service_tokens",
            $where,
            " ORDER BY ",
            $order,
            " LIMIT $1 OFFSET $2"
        )
    };
}

impl TokenStore for Store {
    fn insert_token<'a>(&'a self, token: &'a ServiceTokenRecord) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.insert_token_checked(token, false).await.map(drop) })
    }

    fn insert_token_if_name_free<'a>(
        &'a self,
        token: &'a ServiceTokenRecord,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.insert_token_checked(token, true))
    }

    fn get_token<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, Option<ServiceTokenRecord>> {
        Box::pin(async move {
            let row: Option<TokenRow> = finish(with_pool!(self, |pool| {
                sqlx::query_as(concat!(
                    "SELECT ",
                    token_columns!(),
                    " FROM service_tokens WHERE client_id = $1"
                ))
                .bind(client_id)
                .fetch_optional(pool)
                .await
                .map_err(Failure::from)
            }))?;
            Ok(row.map(TokenRow::into_record).transpose()?)
        })
    }

    fn get_token_by_id<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ServiceTokenRecord>> {
        Box::pin(async move {
            // `id` is the table's primary key: an index lookup.
            let row: Option<TokenRow> = finish(with_pool!(self, |pool| {
                sqlx::query_as(concat!(
                    "SELECT ",
                    token_columns!(),
                    " FROM service_tokens WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(Failure::from)
            }))?;
            Ok(row.map(TokenRow::into_record).transpose()?)
        })
    }

    fn list_tokens(&self) -> StoreFuture<'_, Vec<ServiceTokenRecord>> {
        Box::pin(async move {
            let rows: Vec<TokenRow> = finish(with_pool!(self, |pool| {
                sqlx::query_as(concat!("SELECT ", token_columns!(), " FROM service_tokens"))
                    .fetch_all(pool)
                    .await
                    .map_err(Failure::from)
            }))?;
            let mut tokens = rows
                .into_iter()
                .map(TokenRow::into_record)
                .collect::<Result<Vec<_>, _>>()?;
            // Sorted here, not in SQL, so both backends agree whatever PostgreSQL's collation.
            tokens.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(tokens)
        })
    }

    fn list_tokens_page<'a>(
        &'a self,
        name: Option<&'a str>,
        offset: u64,
        limit: u64,
    ) -> StoreFuture<'a, (u64, Vec<ServiceTokenRecord>)> {
        Box::pin(async move {
            // Bytewise order on both backends: PostgreSQL's "C" collation, SQLite's default.
            let postgres = self.backend() == Backend::Postgres;
            let select = match (name.is_some(), postgres) {
                (false, false) => page_select!("", "name, id"),
                (false, true) => page_select!("", r#"name COLLATE "C", id COLLATE "C""#),
                (true, false) => page_select!(" WHERE name = $3", "name, id"),
                (true, true) => {
                    page_select!(" WHERE name = $3", r#"name COLLATE "C", id COLLATE "C""#)
                }
            };
            let count = if name.is_some() {
                "SELECT COUNT(*) FROM service_tokens WHERE name = $1"
            } else {
                "SELECT COUNT(*) FROM service_tokens"
            };
            let offset = i64::try_from(offset).unwrap_or(i64::MAX);
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let (total, rows): (i64, Vec<TokenRow>) = finish(with_pool!(self, |pool| async {
                let mut tx = pool.begin_read().await?;
                // `name` is bound only where the statement has a placeholder for it.
                let mut total = sqlx::query_scalar(count);
                let mut page = sqlx::query_as(select).bind(limit).bind(offset);
                if let Some(name) = name {
                    total = total.bind(name);
                    page = page.bind(name);
                }
                let total: i64 = total.fetch_one(&mut *tx).await?;
                let rows: Vec<TokenRow> = page.fetch_all(&mut *tx).await?;
                tx.commit().await?;
                Ok((total, rows))
            }
            .await))?;
            let tokens = rows
                .into_iter()
                .map(TokenRow::into_record)
                .collect::<Result<Vec<_>, _>>()?;
            Ok((to_u64(total, "token count")?, tokens))
        })
    }

    fn update_token<'a>(
        &'a self,
        expected: &'a ServiceTokenRecord,
        token: &'a ServiceTokenRecord,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            if token.client_id != expected.client_id {
                return Err(StoreError::Conflict(format!(
                    "service token {}: the client ID cannot change",
                    expected.client_id
                )));
            }
            let duration = duration_seconds(token.duration)?;
            let version = to_i64(token.client_secret_version, "client secret version")?;
            finish(with_pool!(self, |pool| async {
                let mut tx = pool.begin_write().await?;
                // The bump serialises writers, so what we read next stays current until commit.
                let _: (i64, i64) = sqlx::query_as(BUMP).fetch_one(&mut *tx).await?;
                let stored: Option<TokenRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    token_columns!(),
                    " FROM service_tokens WHERE client_id = $1"
                ))
                .bind(&expected.client_id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(stored) = stored else {
                    return Err(StoreError::NotFound(format!(
                        "service token {}",
                        expected.client_id
                    ))
                    .into());
                };
                let mut stored = stored.into_record()?;
                stored.last_seen_at = expected.last_seen_at;
                if stored != *expected {
                    // Changed since the caller read it: roll back, the revision stays put.
                    tx.rollback().await?;
                    return Ok(false);
                }
                let clash: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM service_tokens WHERE id = $1 AND client_id <> $2",
                )
                .bind(&token.id)
                .bind(&token.client_id)
                .fetch_optional(&mut *tx)
                .await?;
                if clash.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "a service token with id {}",
                        token.id
                    ))
                    .into());
                }
                sqlx::query(
                    "UPDATE service_tokens SET id = $2, name = $3, secret_hash = $4, \
                     previous_secret_hash = $5, previous_secret_expires_at = $6, \
                     duration_seconds = $7, created_at = $8, updated_at = $9, expires_at = $10, \
                     enabled = $11, client_secret_version = $12 WHERE client_id = $1",
                )
                .bind(&token.client_id)
                .bind(&token.id)
                .bind(&token.name)
                .bind(&token.secret_hash[..])
                .bind(token.previous_secret_hash.as_ref().map(|hash| &hash[..]))
                .bind(token.previous_secret_expires_at)
                .bind(duration)
                .bind(token.created_at)
                .bind(token.updated_at)
                .bind(token.expires_at)
                .bind(token.enabled)
                .bind(version)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }
            .await))
        })
    }

    fn delete_token<'a>(&'a self, client_id: &'a str, detach: bool) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            finish(with_pool!(self, |pool| async {
                let mut tx = pool.begin_write().await?;
                let _: (i64, i64) = sqlx::query_as(BUMP).fetch_one(&mut *tx).await?;
                let token_id: Option<String> =
                    sqlx::query_scalar("SELECT id FROM service_tokens WHERE client_id = $1")
                        .bind(client_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some(token_id) = token_id else {
                    // Nothing changed: roll back, so the revision does not move either.
                    tx.rollback().await?;
                    return Ok(false);
                };
                let candidates: Vec<PolicyRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    policy_columns!(),
                    " FROM access_policies p WHERE p.rules LIKE $1 ORDER BY p.name, p.id"
                ))
                .bind(naming_pattern(&token_id))
                .fetch_all(&mut *tx)
                .await?;
                let mut users = Vec::new();
                for row in candidates {
                    let mut policy = row.into_record()?;
                    if policy.rules.token_ids().any(|id| id == token_id) {
                        users.push(policy.name.clone());
                        policy.rules.forget_token(&token_id);
                        sqlx::query("UPDATE access_policies SET rules = $2 WHERE id = $1")
                            .bind(&policy.id)
                            .bind(rules_json(&policy.rules))
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                if !users.is_empty() && !detach {
                    tx.rollback().await?;
                    return Err(StoreError::token_in_use(client_id, &users).into());
                }
                sqlx::query("DELETE FROM service_tokens WHERE client_id = $1")
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }
            .await))
        })
    }

    fn record_last_seen<'a>(&'a self, seen: &'a [(String, i64)]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            // Latest time per token, in client-ID order: a fixed lock order, so two instances
            // flushing overlapping batches on PostgreSQL cannot deadlock.
            let mut latest: BTreeMap<&str, i64> = BTreeMap::new();
            for (client_id, at) in seen {
                let entry = latest.entry(client_id.as_str()).or_insert(*at);
                *entry = (*entry).max(*at);
            }
            if latest.is_empty() {
                return Ok(());
            }
            let result = match &self.inner.pool {
                #[cfg(feature = "sqlite")]
                Pool::Sqlite(pool) => {
                    async {
                        let mut tx = pool.begin_write().await?;
                        for (client_id, at) in &latest {
                            sqlx::query(
                                "UPDATE service_tokens SET last_seen_at = $2 WHERE client_id = $1 \
                             AND (last_seen_at IS NULL OR last_seen_at < $2)",
                            )
                            .bind(*client_id)
                            .bind(*at)
                            .execute(&mut *tx)
                            .await?;
                        }
                        tx.commit().await
                    }
                    .await
                }
                // One statement instead of one round trip per token; the rows are locked in
                // client-ID order first (the same fixed order as above).
                #[cfg(feature = "postgres")]
                Pool::Postgres(pool) => {
                    let (client_ids, times): (Vec<&str>, Vec<i64>) = latest.into_iter().unzip();
                    sqlx::query(
                        "WITH seen AS ( \
                             SELECT * FROM UNNEST($1::text[], $2::bigint[]) AS s (client_id, at) \
                         ), locked AS ( \
                             SELECT t.client_id FROM service_tokens t JOIN seen USING (client_id) \
                             ORDER BY t.client_id FOR UPDATE OF t \
                         ) \
                         UPDATE service_tokens t SET last_seen_at = seen.at FROM seen \
                         WHERE t.client_id = seen.client_id \
                           AND t.client_id IN (SELECT client_id FROM locked) \
                           AND (t.last_seen_at IS NULL OR t.last_seen_at < seen.at)",
                    )
                    .bind(client_ids)
                    .bind(times)
                    .execute(pool)
                    .await
                    .map(drop)
                }
            };
            finish(result.map_err(Failure::from))
        })
    }
}

impl KeyStore for Store {
    fn load_ring(&self) -> StoreFuture<'_, (u64, Vec<SigningKeyRecord>)> {
        Box::pin(async move {
            let (generation, rows): (i64, Vec<KeyRow>) = finish(with_pool!(self, |pool| async {
                let mut tx = pool.begin_read().await?;
                let generation: i64 =
                    sqlx::query_scalar("SELECT ring_generation FROM tollgate_meta WHERE id = 1")
                        .fetch_one(&mut *tx)
                        .await?;
                let rows: Vec<KeyRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    key_columns!(),
                    " FROM signing_keys ORDER BY position"
                ))
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok((generation, rows))
            }
            .await))?;
            let ring = rows
                .into_iter()
                .map(|row| row.into_record(self.master_key()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((to_u64(generation, "ring generation")?, ring))
        })
    }

    fn swap_ring<'a>(
        &'a self,
        expected: u64,
        ring: &'a [SigningKeyRecord],
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let Ok(expected) = i64::try_from(expected) else {
                return Ok(false); // no stored generation can be that large
            };
            // Encrypt before taking the lock: the critical section stays short.
            let rows = ring
                .iter()
                .map(|record| NewKeyRow::seal(record, self.master_key()))
                .collect::<Result<Vec<_>, _>>()?;
            finish(with_pool!(self, |pool| async {
                let mut tx = pool.begin_write().await?;
                let (_, generation): (i64, i64) = sqlx::query_as(BUMP).fetch_one(&mut *tx).await?;
                if generation != expected {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query("DELETE FROM signing_keys")
                    .execute(&mut *tx)
                    .await?;
                for (position, row) in (0_i64..).zip(&rows) {
                    sqlx::query(concat!(
                        "INSERT INTO signing_keys (position, ",
                        key_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                    ))
                    .bind(position)
                    .bind(&row.record.kid)
                    .bind(row.key_encryption)
                    .bind(&row.private_key[..])
                    .bind(row.record.created_at)
                    .bind(row.record.activates_at)
                    .bind(row.record.retires_at)
                    .bind(row.record.expires_at)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "UPDATE tollgate_meta SET ring_generation = ring_generation + 1 WHERE id = 1",
                )
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }
            .await))
        })
    }

    fn rotation_period(&self) -> StoreFuture<'_, Option<u64>> {
        Box::pin(async move {
            let secs: Option<i64> = finish(with_pool!(self, |pool| async {
                Ok(
                    sqlx::query_scalar("SELECT key_rotation_secs FROM tollgate_meta WHERE id = 1")
                        .fetch_one(pool)
                        .await?,
                )
            }
            .await))?;
            Ok(secs.map(|s| to_u64(s, "key rotation period")).transpose()?)
        })
    }

    fn set_rotation_period(&self, seconds: Option<u64>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let secs = seconds
                .map(|s| to_i64(s, "key rotation period"))
                .transpose()?;
            finish(with_pool!(self, |pool| async {
                let mut tx = pool.begin_write().await?;
                let _: (i64, i64) = sqlx::query_as(BUMP).fetch_one(&mut *tx).await?;
                sqlx::query("UPDATE tollgate_meta SET key_rotation_secs = $1 WHERE id = 1")
                    .bind(secs)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }
            .await))
        })
    }
}

/// Every application's policies: link rows joined to their policies (add a `WHERE` on
/// `l.application` and an `ORDER BY`).
macro_rules! links_select {
    () => {
        concat!(
            "SELECT l.application AS link_application, l.precedence, ",
            policy_columns!(),
            " FROM application_policies l JOIN access_policies p ON p.id = l.policy"
        )
    };
}

/// Groups link rows, already in precedence order, by application id.
fn group_links(rows: Vec<LinkRow>) -> Result<HashMap<String, Vec<AppPolicy>>, Error> {
    let mut grouped: HashMap<String, Vec<AppPolicy>> = HashMap::new();
    for row in rows {
        let app = row.link_application.clone();
        grouped.entry(app).or_default().push(row.into_policy()?);
    }
    Ok(grouped)
}

/// The conflict message for a domain `holder` already has.
fn domain_taken(app: &ApplicationRecord, holder: &str) -> String {
    format!(
        "the domain {} (application {holder:?} has it)",
        app.domain.as_deref().unwrap_or_default()
    )
}

/// The `LIKE` pattern that finds the policy rows whose rules may name `token_id` (confirmed by
/// parsing them).
fn naming_pattern(token_id: &str) -> String {
    format!(r#"%"token_id":"{token_id}"%"#)
}

/// Inserts the policy row `$policy` in transaction `$tx`, owned by the application id `$owner`
/// (`None`: reusable). Expands inside a [`with_pool!`] body.
macro_rules! insert_policy_row {
    ($tx:ident, $policy:expr, $owner:expr) => {{
        let policy: &PolicyRecord = $policy;
        let owner: Option<&str> = $owner;
        sqlx::query(
            "INSERT INTO access_policies \
             (id, name, decision, rules, application, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&policy.id)
        .bind(&policy.name)
        .bind(policy.decision.as_str())
        .bind(rules_json(&policy.rules))
        .bind(owner)
        .bind(policy.created_at)
        .bind(policy.updated_at)
        .execute(&mut *$tx)
        .await?;
    }};
}

/// The link rows of the application with id `$app_id`, in precedence order, read in
/// transaction `$tx` (decode them with [`policies_of`]). Expands inside a [`with_pool!`] body.
macro_rules! links_of {
    ($tx:ident, $app_id:expr) => {{
        let links: Vec<LinkRow> = sqlx::query_as(concat!(
            links_select!(),
            " WHERE l.application = $1 ORDER BY l.precedence"
        ))
        .bind($app_id)
        .fetch_all(&mut *$tx)
        .await?;
        links
    }};
}

/// An application's policies from its link rows.
fn policies_of(links: Vec<LinkRow>) -> Result<Vec<AppPolicy>, Error> {
    links.into_iter().map(LinkRow::into_policy).collect()
}

/// Writes `$app`'s policies in transaction `$tx`: checks that linked reusable policies exist and
/// that scoped ids are nobody else's, then replaces the application's links and scoped policies.
/// Expands inside a [`with_pool!`] body, compiled once per backend.
macro_rules! write_policies {
    ($tx:ident, $app:expr) => {{
        let app: &ApplicationRecord = $app;
        for linked in &app.policies {
            let policy = &linked.policy;
            let owner: Option<(Option<String>,)> =
                sqlx::query_as("SELECT application FROM access_policies WHERE id = $1")
                    .bind(&policy.id)
                    .fetch_optional(&mut *$tx)
                    .await?;
            match (policy.reusable, owner) {
                (true, Some((None,))) | (false, None) => {}
                (false, Some((Some(owner),))) if owner == app.id => {}
                (true, _) => {
                    return Err(
                        StoreError::NotFound(format!("reusable policy {}", policy.id)).into(),
                    );
                }
                (false, Some(_)) => {
                    return Err(
                        StoreError::Conflict(format!("a policy with id {}", policy.id)).into(),
                    );
                }
            }
        }
        sqlx::query("DELETE FROM application_policies WHERE application = $1")
            .bind(&app.id)
            .execute(&mut *$tx)
            .await?;
        sqlx::query("DELETE FROM access_policies WHERE application = $1")
            .bind(&app.id)
            .execute(&mut *$tx)
            .await?;
        for linked in &app.policies {
            let policy = &linked.policy;
            if !policy.reusable {
                insert_policy_row!($tx, policy, Some(app.id.as_str()));
            }
            sqlx::query(
                "INSERT INTO application_policies (application, precedence, policy) \
                 VALUES ($1, $2, $3)",
            )
            .bind(&app.id)
            .bind(i64::from(linked.precedence))
            .bind(&policy.id)
            .execute(&mut *$tx)
            .await?;
        }
    }};
}

/// The unique column an application is looked up by (each has an index).
#[derive(Debug, Clone, Copy)]
enum AppKey {
    Name,
    Id,
}

impl Store {
    /// The application whose `key` column is `value`, with its policies, in one snapshot.
    async fn get_app_where(
        &self,
        key: AppKey,
        value: &str,
    ) -> Result<Option<ApplicationRecord>, StoreError> {
        let select = match key {
            AppKey::Name => concat!(
                "SELECT ",
                app_columns!(),
                " FROM applications WHERE name = $1"
            ),
            AppKey::Id => concat!(
                "SELECT ",
                app_columns!(),
                " FROM applications WHERE id = $1"
            ),
        };
        let found: Option<(AppRow, Vec<LinkRow>)> = finish(with_pool!(self, |pool| async {
            let mut tx = pool.begin_read().await?;
            let row: Option<AppRow> = sqlx::query_as(select)
                .bind(value)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            let links = links_of!(tx, row.id());
            tx.commit().await?;
            Ok(Some((row, links)))
        }
        .await))?;
        let Some((row, links)) = found else {
            return Ok(None);
        };
        Ok(Some(row.into_record(policies_of(links)?)?))
    }
}

impl AppStore for Store {
    fn insert_app<'a>(&'a self, app: &'a ApplicationRecord) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let session_duration = to_i64(app.session_duration, "session duration")?;
            finish(with_pool!(self, |pool| async {
                let mut tx = pool.begin_write().await?;
                let _: (i64, i64) = sqlx::query_as(BUMP).fetch_one(&mut *tx).await?;
                // Every clash, so the one reported does not depend on row order: the name
                // first, then the AUD tag, the domain and the id.
                // (name, aud, domain) of every application that clashes.
                type Clash = (String, String, Option<String>);
                let clashes: Vec<Clash> = sqlx::query_as(
                    "SELECT name, aud, domain FROM applications \
                     WHERE name = $1 OR aud = $2 OR domain = $3 OR id = $4",
                )
                .bind(&app.name)
                .bind(&app.aud)
                .bind(app.domain.as_deref())
                .bind(&app.id)
                .fetch_all(&mut *tx)
                .await?;
                let holder = |test: &dyn Fn(&Clash) -> bool| {
                    clashes.iter().find(|c| test(c)).map(|c| c.0.clone())
                };
                let conflict = if let Some(name) = holder(&|c| c.0 == app.name) {
                    Some(format!("application {name:?}"))
                } else if holder(&|c| c.1 == app.aud).is_some() {
                    Some(format!("an application with AUD tag {}", app.aud))
                } else if let Some(name) =
                    holder(&|c| c.2.is_some() && c.2.as_deref() == app.domain.as_deref())
                {
                    Some(domain_taken(app, &name))
                } else if clashes.is_empty() {
                    None
                } else {
                    Some(format!("an application with id {}", app.id))
                };
                if let Some(conflict) = conflict {
                    return Err(StoreError::Conflict(conflict).into());
                }
                sqlx::query(concat!(
                    "INSERT INTO applications (",
                    app_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                ))
                .bind(&app.name)
                .bind(&app.aud)
                .bind(session_duration)
                .bind(app.read_service_tokens_from_header.as_deref())
                .bind(app.cookie_http_only)
                .bind(app.cookie_secure)
                .bind(app.created_at)
                .bind(app.domain.as_deref())
                .bind(app.origin.as_deref())
                .bind(&app.id)
                .bind(app.updated_at)
                .bind(app.tokens_revoked_before)
                .execute(&mut *tx)
                .await?;
                write_policies!(tx, app);
                tx.commit().await?;
                Ok(())
            }
            .await))
        })
    }

    fn get_app<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<ApplicationRecord>> {
        Box::pin(self.get_app_where(AppKey::Name, name))
    }

    fn get_app_by_id<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ApplicationRecord>> {
        Box::pin(self.get_app_where(AppKey::Id, id))
    }

    fn list_apps(&self) -> StoreFuture<'_, Vec<ApplicationRecord>> {
        Box::pin(async move {
            let (rows, links): (Vec<AppRow>, Vec<LinkRow>) =
                finish(with_pool!(self, |pool| async {
                    let mut tx = pool.begin_read().await?;
                    let rows: Vec<AppRow> =
                        sqlx::query_as(concat!("SELECT ", app_columns!(), " FROM applications"))
                            .fetch_all(&mut *tx)
                            .await?;
                    let links: Vec<LinkRow> = sqlx::query_as(concat!(
                        links_select!(),
                        " ORDER BY l.application, l.precedence"
                    ))
                    .fetch_all(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok((rows, links))
                }
                .await))?;
            let mut links = group_links(links)?;
            let mut apps = rows
                .into_iter()
                .map(|row| {
                    let policies = links.remove(row.id()).unwrap_or_default();
                    row.into_record(policies)
                })
                .collect::<Result<Vec<_>, _>>()?;
            apps.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(apps)
        })
    }

    fn update_app<'a>(
        &'a self,
        expected: &'a ApplicationRecord,
        app: &'a ApplicationRecord,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            if app.name != expected.name {
                return Err(StoreError::Conflict(format!(
                    "application {:?}: the name cannot change",
                    expected.name
                )));
            }
            if app.id != expected.id {
                return Err(StoreError::Conflict(format!(
                    "application {:?}: the id cannot change",
                    expected.name
                )));
            }
            let session_duration = to_i64(app.session_duration, "session duration")?;
            finish(with_pool!(self, |pool| async {
                let mut tx = pool.begin_write().await?;
                // The bump serialises writers, so what we read next stays current until commit.
                let _: (i64, i64) = sqlx::query_as(BUMP).fetch_one(&mut *tx).await?;
                let stored: Option<AppRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    app_columns!(),
                    " FROM applications WHERE name = $1"
                ))
                .bind(&expected.name)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(stored) = stored else {
                    return Err(
                        StoreError::NotFound(format!("application {:?}", expected.name)).into(),
                    );
                };
                let policies = policies_of(links_of!(tx, stored.id()))?;
                if stored.into_record(policies)? != *expected {
                    // Changed since the caller read it: roll back, the revision stays put.
                    tx.rollback().await?;
                    return Ok(false);
                }
                let clash: Option<(String,)> =
                    sqlx::query_as("SELECT name FROM applications WHERE aud = $1 AND name <> $2")
                        .bind(&app.aud)
                        .bind(&app.name)
                        .fetch_optional(&mut *tx)
                        .await?;
                if clash.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "an application with AUD tag {}",
                        app.aud
                    ))
                    .into());
                }
                let holder: Option<String> = sqlx::query_scalar(
                    "SELECT name FROM applications WHERE domain = $1 AND name <> $2",
                )
                .bind(app.domain.as_deref())
                .bind(&app.name)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(holder) = holder {
                    return Err(StoreError::Conflict(domain_taken(app, &holder)).into());
                }
                sqlx::query(
                    "UPDATE applications SET aud = $2, session_duration = $3, \
                     read_service_tokens_from_header = $4, cookie_http_only = $5, \
                     cookie_secure = $6, created_at = $7, domain = $8, \
                     origin = $9, id = $10, updated_at = $11, tokens_revoked_before = $12 \
                     WHERE name = $1",
                )
                .bind(&app.name)
                .bind(&app.aud)
                .bind(session_duration)
                .bind(app.read_service_tokens_from_header.as_deref())
                .bind(app.cookie_http_only)
                .bind(app.cookie_secure)
                .bind(app.created_at)
                .bind(app.domain.as_deref())
                .bind(app.origin.as_deref())
                .bind(&app.id)
                .bind(app.updated_at)
                .bind(app.tokens_revoked_before)
                .execute(&mut *tx)
                .await?;
                write_policies!(tx, app);
                tx.commit().await?;
                Ok(true)
            }
            .await))
        })
    }

    fn delete_app<'a>(&'a self, name: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            finish(with_pool!(self, |pool| async {
                let mut tx = pool.begin_write().await?;
                let _: (i64, i64) = sqlx::query_as(BUMP).fetch_one(&mut *tx).await?;
                let id: Option<String> =
                    sqlx::query_scalar("SELECT id FROM applications WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some(id) = id else {
                    tx.rollback().await?;
                    return Ok(false);
                };
                // Links first, then the scoped policies they point at, then the application.
                sqlx::query("DELETE FROM application_policies WHERE application = $1")
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM access_policies WHERE application = $1")
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM applications WHERE id = $1")
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }
            .await))
        })
    }

    fn insert_policy<'a>(&'a self, policy: &'a PolicyRecord) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if !policy.reusable {
                return Err(StoreError::Conflict(format!(
                    "policy {}: only reusable policies stand alone",
                    policy.id
                )));
            }
            finish(with_pool!(self, |pool| async {
                let mut tx = pool.begin_write().await?;
                let _: (i64, i64) = sqlx::query_as(BUMP).fetch_one(&mut *tx).await?;
                let taken: Option<String> =
                    sqlx::query_scalar("SELECT id FROM access_policies WHERE id = $1")
                        .bind(&policy.id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if taken.is_some() {
                    return Err(
                        StoreError::Conflict(format!("a policy with id {}", policy.id)).into(),
                    );
                }
                insert_policy_row!(tx, policy, None);
                tx.commit().await?;
                Ok(())
            }
            .await))
        })
    }

    fn get_policy<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<PolicyRecord>> {
        Box::pin(async move {
            let row: Option<PolicyRow> = finish(with_pool!(self, |pool| async {
                Ok(sqlx::query_as(concat!(
                    "SELECT ",
                    policy_columns!(),
                    " FROM access_policies p WHERE p.id = $1"
                ))
                .bind(id)
                .fetch_optional(pool)
                .await?)
            }
            .await))?;
            Ok(row.map(PolicyRow::into_record).transpose()?)
        })
    }

    fn list_policies(&self) -> StoreFuture<'_, Vec<PolicyRecord>> {
        Box::pin(async move {
            let rows: Vec<PolicyRow> = finish(with_pool!(self, |pool| async {
                Ok(sqlx::query_as(concat!(
                    "SELECT ",
                    policy_columns!(),
                    " FROM access_policies p WHERE p.application IS NULL ORDER BY p.name, p.id"
                ))
                .fetch_all(pool)
                .await?)
            }
            .await))?;
            Ok(rows
                .into_iter()
                .map(PolicyRow::into_record)
                .collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn update_policy<'a>(
        &'a self,
        expected: &'a PolicyRecord,
        policy: &'a PolicyRecord,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            if policy.id != expected.id || !policy.reusable {
                return Err(StoreError::Conflict(format!(
                    "policy {}: the id and reusability cannot change",
                    expected.id
                )));
            }
            finish(with_pool!(self, |pool| async {
                let mut tx = pool.begin_write().await?;
                let _: (i64, i64) = sqlx::query_as(BUMP).fetch_one(&mut *tx).await?;
                let stored: Option<PolicyRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    policy_columns!(),
                    " FROM access_policies p WHERE p.id = $1 AND p.application IS NULL"
                ))
                .bind(&expected.id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(stored) = stored else {
                    return Err(
                        StoreError::NotFound(format!("reusable policy {}", expected.id)).into(),
                    );
                };
                if stored.into_record()? != *expected {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE access_policies SET name = $2, decision = $3, rules = $4, \
                     created_at = $5, updated_at = $6 WHERE id = $1",
                )
                .bind(&policy.id)
                .bind(&policy.name)
                .bind(policy.decision.as_str())
                .bind(rules_json(&policy.rules))
                .bind(policy.created_at)
                .bind(policy.updated_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }
            .await))
        })
    }

    fn delete_policy<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            finish(with_pool!(self, |pool| async {
                let mut tx = pool.begin_write().await?;
                let _: (i64, i64) = sqlx::query_as(BUMP).fetch_one(&mut *tx).await?;
                let users: Vec<String> = sqlx::query_scalar(
                    "SELECT a.name FROM application_policies l \
                     JOIN applications a ON a.id = l.application \
                     WHERE l.policy = $1 ORDER BY a.name",
                )
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
                if !users.is_empty() {
                    tx.rollback().await?;
                    return Err(StoreError::policy_in_use(id, &users).into());
                }
                let deleted = sqlx::query(
                    "DELETE FROM access_policies WHERE id = $1 AND application IS NULL",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if deleted == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                tx.commit().await?;
                Ok(true)
            }
            .await))
        })
    }
}
