//! `tollgate logs`: the authentication log, filtered, as a table or JSON lines, optionally
//! followed; the `serve` flags of the log ([`LogArgs`]); and the admin events every changing
//! command appends ([`admin`], [`record_admin`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Args;
use tollgate_core::clock::{parse_rfc3339_ms, rfc3339_ms as time_ms, unix_millis};
use tollgate_core::events::{AuthEvent, EventKind};
use tollgate_issue::{
    AuthLog, AuthLogStore as _, DEFAULT_LOG_CAPACITY, LogQuery, LoggedEvent, Order, bound_event,
    parse_duration,
};
use tollgate_store::Store;

use crate::output::print_table;
use crate::{CliResult, clock, open_store};

/// The `actor` of events the command line records.
const CLI_ACTOR: &str = "cli";

/// How often `--follow` looks for new events.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// The authentication log's settings of `tollgate serve`.
#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// How long the authentication log keeps events, e.g. 30d or 720h; older ones are pruned
    /// hourly.
    #[arg(
        long,
        value_name = "DURATION",
        env = "TOLLGATE_LOG_RETENTION",
        value_parser = parse_duration,
        default_value = "30d"
    )]
    log_retention: Duration,
    /// How many events the log's queue holds; beyond it events are dropped, counted and
    /// reported (the request path never waits for the log).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LOG_CAPACITY)]
    log_queue: usize,
}

impl LogArgs {
    /// Starts the log's writer on `store` (inside the runtime).
    pub(crate) fn start(&self, store: Arc<Store>) -> AuthLog {
        AuthLog::builder(store)
            .clock(clock())
            .retention(self.log_retention)
            .capacity(self.log_queue)
            .start()
    }
}

/// `tollgate logs`.
#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// Only events since then: a duration back from now (90d, 1h, 30m) or an RFC 3339 time
    /// (2026-01-02T03:04:05Z).
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    since: Option<When>,
    /// Only events before then: a duration back from now or an RFC 3339 time.
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    until: Option<When>,
    /// Only events of this application.
    #[arg(long, value_name = "NAME")]
    app: Option<String>,
    /// Only events of this service token's client ID.
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// Only refusals (and reports of dropped events).
    #[arg(long)]
    failed: bool,
    /// Only events of this kind: exchange, token or admin.
    #[arg(long, value_parser = parse_kind)]
    kind: Option<EventKind>,
    /// The newest N events (printed oldest first).
    #[arg(long, value_name = "N", default_value_t = 100)]
    limit: u32,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Keep printing new events as they are written, until Ctrl-C.
    #[arg(long)]
    follow: bool,
}

/// A point in time given on the command line.
#[derive(Debug, Clone, Copy)]
pub(crate) enum When {
    /// This long before now.
    Ago(Duration),
    /// Milliseconds since the epoch.
    At(i64),
}

impl When {
    fn to_ms(self, now_ms: i64) -> i64 {
        match self {
            When::Ago(ago) => {
                now_ms.saturating_sub(i64::try_from(ago.as_millis()).unwrap_or(i64::MAX))
            }
            When::At(ms) => ms,
        }
    }
}

fn parse_when(text: &str) -> Result<When, String> {
    if let Some(ms) = parse_rfc3339_ms(text) {
        return Ok(When::At(ms));
    }
    parse_duration(text).map(When::Ago).map_err(|e| {
        format!("{e}; expected a duration back from now (90d, 1h, 30m) or an RFC 3339 time")
    })
}

fn parse_kind(text: &str) -> Result<EventKind, String> {
    EventKind::parse(text).ok_or_else(|| "expected exchange, token or admin".to_owned())
}

fn now_ms() -> i64 {
    unix_millis(clock().now())
}

pub(crate) async fn run(database: &str, args: LogsArgs) -> CliResult {
    let store = open_store(database).await?;
    let now = now_ms();
    let mut query = LogQuery::new().limit(args.limit);
    query.since_ms = args.since.map(|w| w.to_ms(now));
    query.until_ms = args.until.map(|w| w.to_ms(now));
    query.app.clone_from(&args.app);
    query.client_id.clone_from(&args.client_id);
    query.failed_only = args.failed;
    query.kind = args.kind;
    // The newest `limit`, printed oldest first.
    let mut events = store.query_events(&query).await?;
    events.reverse();
    let mut cursor = events.iter().map(|e| e.id).max();
    print_events(&events, args.json, true);
    if !args.follow {
        return Ok(());
    }
    if cursor.is_none() {
        // Nothing matched yet: follow from the newest event of any kind.
        let newest = store.query_events(&LogQuery::new().limit(1)).await?;
        cursor = newest.first().map(|e| e.id);
    }
    let mut page = query.clone().order(Order::OldestFirst).limit(1000);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            () = tokio::time::sleep(FOLLOW_EVERY) => {}
        }
        page.after_id = cursor;
        let events = store.query_events(&page).await?;
        if let Some(last) = events.last() {
            cursor = Some(last.id);
        }
        print_events(&events, args.json, false);
    }
}

fn print_events(events: &[LoggedEvent], json: bool, header: bool) {
    if json {
        for logged in events {
            println!("{}", event_json(logged));
        }
        return;
    }
    let rows: Vec<Vec<String>> = events.iter().map(event_row).collect();
    if header {
        print_table(
            &[
                "TIME",
                "KIND",
                "RESULT",
                "APP",
                "TOKEN",
                "CLIENT ID",
                "SOURCE",
                "COUNT",
                "DETAIL",
            ],
            &rows,
        );
    } else {
        for row in rows {
            println!("{}", row.join("  "));
        }
    }
}

fn event_row(logged: &LoggedEvent) -> Vec<String> {
    let event = &logged.event;
    let dash = |value: Option<&str>| value.unwrap_or("-").to_owned();
    let result = match (event.allowed, event.reason_str()) {
        (true, _) => "ok".to_owned(),
        (false, Some(reason)) => reason.to_owned(),
        (false, None) => "failed".to_owned(),
    };
    let token = match (&event.token_name, logged.token_deleted) {
        (Some(name), true) => format!("{name} (deleted)"),
        (Some(name), false) => name.clone(),
        (None, _) => "-".to_owned(),
    };
    let detail = match (&event.action, &event.detail) {
        (Some(action), Some(detail)) => format!("{action}: {detail}"),
        (Some(action), None) => action.clone(),
        (None, detail) => dash(detail.as_deref()),
    };
    vec![
        time_ms(event.at_ms),
        event.kind.to_string(),
        result,
        dash(event.app.as_deref()),
        token,
        dash(event.client_id.as_deref()),
        event
            .source_ip
            .map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
        event.count.to_string(),
        detail,
    ]
}

/// One event as `--json` prints it (one object per line).
fn event_json(logged: &LoggedEvent) -> serde_json::Value {
    let event = &logged.event;
    serde_json::json!({
        "id": logged.id,
        "time": time_ms(event.at_ms),
        "at_ms": event.at_ms,
        "kind": event.kind.as_str(),
        "allowed": event.allowed,
        "reason": event.reason_str(),
        "detail": event.detail,
        "app": event.app,
        "client_id": event.client_id,
        "token_id": event.token_id,
        "token_name": event.token_name,
        "token_deleted": logged.token_deleted,
        "identity": event.identity,
        "location": event.location,
        "source_ip": event.source_ip.map(|ip| ip.to_string()),
        "request_id": event.request_id,
        "action": event.action,
        "actor": event.actor,
        "count": event.count,
    })
}

/// An admin event of `action` (`token.create`, `app.update`, `keys.rotate`, …) by the CLI, now.
pub(crate) fn admin(action: &str) -> AuthEvent {
    AuthEvent::new(EventKind::Admin, unix_millis(SystemTime::now())).with_action(action, CLI_ACTOR)
}

/// Appends `event` to the log after the change it reports succeeded. A log that cannot be
/// written does not undo the change: it is said on stderr.
pub(crate) async fn record_admin(store: &Store, event: AuthEvent) {
    if let Err(error) = store.append_events(&[bound_event(event)]).await {
        eprintln!("tollgate: warning: the change was made but not logged: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_is_a_duration_or_a_time() {
        assert!(matches!(parse_when("90d"), Ok(When::Ago(d)) if d.as_secs() == 90 * 86_400));
        assert!(matches!(parse_when("30m"), Ok(When::Ago(d)) if d.as_secs() == 1800));
        assert!(matches!(
            parse_when("2023-11-14T22:13:20Z"),
            Ok(When::At(1_700_000_000_000))
        ));
        assert!(parse_when("yesterday").is_err());
        assert_eq!(When::Ago(Duration::from_secs(1)).to_ms(5_000), 4_000);
    }
}
