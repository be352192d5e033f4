//! A fresh PostgreSQL database per test, on the server named by `TOLLGATE_TEST_POSTGRES_URL`,
//! dropped when the test ends (passed or failed). Without the variable, or with the server
//! unreachable, the test prints a loud `SKIPPED:` line and passes.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection as _;

use crate::skipped;

/// The environment variable naming the server (an admin URL: it must be allowed to create
/// databases), e.g. `postgres://postgres@127.0.0.1:5432/test`.
pub const URL_VAR: &str = "TOLLGATE_TEST_POSTGRES_URL";

/// Runs `test` with the URL of a database of its own, then drops the database (also when
/// `test` panics; the panic is passed on). `name` says in the `SKIPPED:` line what did not run.
pub async fn with_database<F, Fut>(name: &str, test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let Ok(admin_url) = std::env::var(URL_VAR) else {
        skipped(&format!("{URL_VAR} not set ({name} did not run)"));
        return;
    };
    let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
        Ok(admin) => admin,
        Err(error) => {
            skipped(&format!(
                "PostgreSQL unreachable ({error}); {name} did not run"
            ));
            return;
        }
    };
    let database = format!(
        "tollgate_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let outcome = tokio::spawn(test(database_url(&admin_url, &database))).await;
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

/// `admin_url` with its database replaced by `database`, its query string kept.
pub fn database_url(admin_url: &str, database: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{root}/{database}?{query}"),
        None => format!("{root}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn database_url_replaces_only_the_database() {
        assert_eq!(
            database_url("postgres://u:p@h:5432/test", "x"),
            "postgres://u:p@h:5432/x"
        );
        assert_eq!(database_url("postgres://h", "x"), "postgres://h/x");
        assert_eq!(
            database_url("postgres://h/db?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
    }
}
