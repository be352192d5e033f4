//! [`AccountStore`] for [`Store`]: tables `account` and `api_tokens` (migration 0005), on both
//! backends.

use tollgate_issue::{AccountStore, ApiTokenRecord, StoreError, StoreFuture};

use crate::error::Failure;
use crate::rows::{ApiTokenRow, api_token_columns};
use crate::store::{BUMP, Begin as _, Pool, Store, finish, with_pool};

impl AccountStore for Store {
    fn account_id<'a>(&'a self, candidate: &'a str, now: i64) -> StoreFuture<'a, String> {
        Box::pin(async move {
            finish(with_pool!(self, |pool| async {
                // Insert-if-absent, then read: of instances starting together, the first insert
                // wins and every one reads the winner's ID. No bump: nothing cached changes.
                let mut tx = pool.begin_write().await?;
                sqlx::query(
                    "INSERT INTO account (id, account_id, created_at) VALUES (1, $1, $2) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(candidate)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let id: String = sqlx::query_scalar("SELECT account_id FROM account WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(id)
            }
            .await))
        })
    }

    fn insert_api_token<'a>(&'a self, token: &'a ApiTokenRecord) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            finish(with_pool!(self, |pool| async {
                let mut tx = pool.begin_write().await?;
                let _: (i64, i64) = sqlx::query_as(BUMP).fetch_one(&mut *tx).await?;
                let clash: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM api_tokens WHERE id = $1 OR token_hash = $2",
                )
                .bind(&token.id)
                .bind(&token.token_hash[..])
                .fetch_optional(&mut *tx)
                .await?;
                if clash.is_some() {
                    return Err(StoreError::Conflict(format!("API token {}", token.id)).into());
                }
                sqlx::query(concat!(
                    "INSERT INTO api_tokens (",
                    api_token_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6)"
                ))
                .bind(&token.id)
                .bind(&token.name)
                .bind(&token.token_hash[..])
                .bind(token.permission.as_str())
                .bind(token.created_at)
                .bind(token.last_used_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }
            .await))
        })
    }

    fn list_api_tokens(&self) -> StoreFuture<'_, Vec<ApiTokenRecord>> {
        Box::pin(async move {
            let rows: Vec<ApiTokenRow> = finish(with_pool!(self, |pool| {
                sqlx::query_as(concat!("SELECT ", api_token_columns!(), " FROM api_tokens"))
                    .fetch_all(pool)
                    .await
                    .map_err(Failure::from)
            }))?;
            let mut tokens = rows
                .into_iter()
                .map(ApiTokenRow::into_record)
                .collect::<Result<Vec<_>, _>>()?;
            // Sorted here, not in SQL, so both backends agree whatever PostgreSQL's collation.
            tokens.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
            Ok(tokens)
        })
    }

    fn delete_api_token<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            finish(with_pool!(self, |pool| async {
                let mut tx = pool.begin_write().await?;
                let _: (i64, i64) = sqlx::query_as(BUMP).fetch_one(&mut *tx).await?;
                let deleted = sqlx::query("DELETE FROM api_tokens WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if deleted == 0 {
                    // Nothing changed: roll back, so the revision does not move either.
                    tx.rollback().await?;
                    return Ok(false);
                }
                tx.commit().await?;
                Ok(true)
            }
            .await))
        })
    }

    fn record_api_token_use<'a>(&'a self, id: &'a str, at: i64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            finish(with_pool!(self, |pool| {
                sqlx::query(
                    "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1 \
                     AND (last_used_at IS NULL OR last_used_at < $2)",
                )
                .bind(id)
                .bind(at)
                .execute(pool)
                .await
                .map(drop)
                .map_err(Failure::from)
            }))
        })
    }
}
