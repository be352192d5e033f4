//! [`AuthLogStore`] for [`Store`]: table `auth_events` (migration 0003), on both backends.
//! Log writes never bump the store's revision.

use std::collections::HashMap;
use std::fmt::Write as _;

use tollgate_core::RejectionKind;
use tollgate_core::events::{AuthEvent, EventKind};
use tollgate_issue::{AuthLogStore, LogQuery, LoggedEvent, Order, StoreFuture};

use crate::error::{Error, ErrorKind, Failure};
use crate::store::{Begin as _, Pool, Store, finish, with_pool};

/// The columns after `id`, in [`EventRow`]'s order, as a literal for `concat!`.
macro_rules! event_columns {
    () => {
        "at_ms, kind, allowed, reason, detail, app, client_id, token_id, token_name, identity, \
         location, source_ip, request_id, action, actor, count"
    };
}

#[derive(Debug, sqlx::FromRow)]
struct EventRow {
    id: i64,
    at_ms: i64,
    kind: String,
    allowed: bool,
    reason: Option<String>,
    detail: Option<String>,
    app: Option<String>,
    client_id: Option<String>,
    token_id: Option<String>,
    token_name: Option<String>,
    identity: Option<String>,
    location: Option<String>,
    source_ip: Option<String>,
    request_id: Option<String>,
    action: Option<String>,
    actor: Option<String>,
    count: i64,
}

impl EventRow {
    fn into_logged(self) -> Result<LoggedEvent, Error> {
        let kind = EventKind::parse(&self.kind).ok_or_else(|| {
            Error::new(
                ErrorKind::CorruptData,
                format!("stored event kind {:?} is invalid", self.kind),
            )
        })?;
        let mut event = AuthEvent::new(kind, self.at_ms);
        event.allowed = self.allowed;
        // A reason a newer tollgate wrote and this one does not know reads as none; the
        // detail still says what happened.
        event.reason = self.reason.as_deref().and_then(RejectionKind::parse);
        event.detail = self.detail;
        event.app = self.app;
        event.client_id = self.client_id;
        event.token_id = self.token_id;
        event.token_name = self.token_name;
        event.identity = self.identity;
        event.location = self.location;
        event.source_ip = self.source_ip.and_then(|ip| ip.parse().ok());
        event.request_id = self.request_id;
        event.action = self.action;
        event.actor = self.actor;
        event.count = u32::try_from(self.count.max(1)).unwrap_or(u32::MAX);
        Ok(LoggedEvent::new(self.id, event))
    }
}

/// A value bound to a dynamically built query.
enum Bind {
    Int(i64),
    Text(String),
}

/// The `SELECT` for `query`, with `$n` placeholders (both backends read them), and its values.
fn select_sql(query: &LogQuery) -> (String, Vec<Bind>) {
    let mut sql = String::from(concat!(
        "SELECT id, ",
        event_columns!(),
        " FROM auth_events"
    ));
    let mut binds = Vec::new();
    let mut conditions: Vec<String> = Vec::new();
    let mut add = |condition: &str, bind: Bind| {
        binds.push(bind);
        conditions.push(format!("{condition} ${}", binds.len()));
    };
    if let Some(since) = query.since_ms {
        add("at_ms >=", Bind::Int(since));
    }
    if let Some(until) = query.until_ms {
        add("at_ms <", Bind::Int(until));
    }
    if let Some(after) = query.after_id {
        add("id >", Bind::Int(after));
    }
    if let Some(app) = &query.app {
        add("app =", Bind::Text(app.clone()));
    }
    if let Some(client_id) = &query.client_id {
        add("client_id =", Bind::Text(client_id.clone()));
    }
    if let Some(kind) = query.kind {
        add("kind =", Bind::Text(kind.as_str().to_owned()));
    }
    if query.failed_only {
        conditions.push("NOT allowed".to_owned());
    }
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(match query.order {
        Order::OldestFirst => " ORDER BY id ASC",
        _ => " ORDER BY id DESC",
    });
    if let Some(limit) = query.limit {
        let _ = write!(sql, " LIMIT {limit}");
    }
    (sql, binds)
}

impl AuthLogStore for Store {
    fn append_events<'a>(&'a self, events: &'a [AuthEvent]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(());
            }
            finish(with_pool!(self, |pool| async {
                // No BUMP: the log changing is not a change other instances reload for.
                let mut tx = pool.begin_write().await?;
                for event in events {
                    sqlx::query(concat!(
                        "INSERT INTO auth_events (",
                        event_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                         $15, $16)"
                    ))
                    .bind(event.at_ms)
                    .bind(event.kind.as_str())
                    .bind(event.allowed)
                    .bind(event.reason_str())
                    .bind(event.detail.as_deref())
                    .bind(event.app.as_deref())
                    .bind(event.client_id.as_deref())
                    .bind(event.token_id.as_deref())
                    .bind(event.token_name.as_deref())
                    .bind(event.identity.as_deref())
                    .bind(event.location.as_deref())
                    .bind(event.source_ip.map(|ip| ip.to_string()))
                    .bind(event.request_id.as_deref())
                    .bind(event.action.as_deref())
                    .bind(event.actor.as_deref())
                    .bind(i64::from(event.count.max(1)))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }
            .await))
        })
    }

    fn select_events<'a>(&'a self, query: &'a LogQuery) -> StoreFuture<'a, Vec<LoggedEvent>> {
        Box::pin(async move {
            let (sql, binds) = select_sql(query);
            let rows: Vec<EventRow> = finish(with_pool!(self, |pool| {
                let mut select = sqlx::query_as(sqlx::AssertSqlSafe(sql));
                for bind in binds {
                    select = match bind {
                        Bind::Int(value) => select.bind(value),
                        Bind::Text(value) => select.bind(value),
                    };
                }
                select.fetch_all(pool).await.map_err(Failure::from)
            }))?;
            Ok(rows
                .into_iter()
                .map(EventRow::into_logged)
                .collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn latest_token_names<'a>(
        &'a self,
        client_ids: &'a [String],
    ) -> StoreFuture<'a, HashMap<String, (Option<String>, String)>> {
        Box::pin(async move {
            finish(with_pool!(self, |pool| async {
                let mut names = HashMap::new();
                for client_id in client_ids {
                    let found: Option<(Option<String>, String)> = sqlx::query_as(
                        "SELECT token_id, token_name FROM auth_events \
                         WHERE client_id = $1 AND token_name IS NOT NULL \
                         ORDER BY id DESC LIMIT 1",
                    )
                    .bind(client_id)
                    .fetch_optional(pool)
                    .await?;
                    if let Some(found) = found {
                        names.insert(client_id.clone(), found);
                    }
                }
                Ok(names)
            }
            .await))
        })
    }

    fn prune_events(&self, before_ms: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            finish(with_pool!(self, |pool| {
                sqlx::query("DELETE FROM auth_events WHERE at_ms < $1")
                    .bind(before_ms)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected())
                    .map_err(Failure::from)
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_number_their_placeholders_in_bind_order() {
        let query = LogQuery::new()
            .since_ms(1)
            .app("api")
            .failed_only()
            .limit(5)
            .order(Order::OldestFirst);
        let (sql, binds) = select_sql(&query);
        assert!(
            sql.ends_with("WHERE at_ms >= $1 AND app = $2 AND NOT allowed ORDER BY id ASC LIMIT 5"),
            "{sql}"
        );
        assert_eq!(binds.len(), 2);
        let (all, none) = select_sql(&LogQuery::new());
        assert!(all.ends_with("FROM auth_events ORDER BY id DESC"), "{all}");
        assert!(none.is_empty());
    }
}
