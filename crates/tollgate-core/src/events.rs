//! Authentication events: what the request path tells an operator ([`AuthEvent`]), and where
//! it goes ([`Events`], a set of [`EventSink`]s).
//!
//! The layers report one event per service-token exchange attempt (accepted or refused, the
//! client ID recognised or not) and one per refused application token; management tools report
//! one per change they make. An event never holds a secret or a token: a client ID only when it
//! has a client ID's shape, a refusal's reason as its machine-readable category.
//!
//! Sinks are called on the request path and must not wait: an authentication log queues the
//! event for a background writer (and counts what it has to drop), metrics bump a counter. With
//! no sink, [`Events::emit`] does not even build the event.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use tollgate_core::events::{AuthEvent, EventKind, EventSink, Events};
//!
//! #[derive(Default)]
//! struct Collect(Mutex<Vec<AuthEvent>>);
//! impl EventSink for Collect {
//!     fn record(&self, event: &AuthEvent) {
//!         self.0.lock().unwrap().push(event.clone());
//!     }
//! }
//!
//! let sink = Arc::new(Collect::default());
//! let events = Events::none().with(sink.clone());
//! events.emit(|| AuthEvent::new(EventKind::Exchange, 1_700_000_000_000).with_app("api"));
//! assert_eq!(sink.0.lock().unwrap()[0].app.as_deref(), Some("api"));
//! ```

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderMap;

use crate::RejectionKind;
use crate::request::is_client_id;

/// The header carrying a request's id, set by the server (tower-http's request-id layers in
/// `tollgate serve`) and returned to the client, so a refused bot can quote it.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest request id an event keeps; a longer one is not recorded.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// What an [`AuthEvent`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EventKind {
    /// A service-token exchange attempt: credentials were presented.
    Exchange,
    /// An application token (assertion header, `cf-access-token`, cookie) was refused.
    Token,
    /// A management change: a token, application, policy or key created, changed or removed.
    Admin,
}

impl EventKind {
    /// Every kind, in a stable order.
    pub const ALL: [EventKind; 3] = [EventKind::Exchange, EventKind::Token, EventKind::Admin];

    /// `exchange`, `token` or `admin`: the spelling stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Exchange => "exchange",
            EventKind::Token => "token",
            EventKind::Admin => "admin",
        }
    }

    /// The kind spelled by [`as_str`](Self::as_str).
    pub fn parse(spelling: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == spelling)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One authentication or management event. Every field but the kind, the time and the result
/// is optional; none is ever a secret or a token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthEvent {
    /// When it happened, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// What it is about.
    pub kind: EventKind,
    /// Whether the request was let through (or the change made).
    pub allowed: bool,
    /// Why it was refused: the rejection's category (`invalid_credentials`, `expired`, …).
    pub reason: Option<RejectionKind>,
    /// A precise, operator-facing explanation (`wrong secret`, `unknown client ID`, …). It may
    /// say more than the refused client was told; never a secret or a token.
    pub detail: Option<String>,
    /// The application's name.
    pub app: Option<String>,
    /// The service token's client ID (only ever one of a client ID's shape).
    pub client_id: Option<String>,
    /// The service token's id (a UUID, Cloudflare's `serviceTokenId`), when the token is known.
    pub token_id: Option<String>,
    /// The service token's name, when the token is known.
    pub token_name: Option<String>,
    /// A verified identity's name (a user's e-mail, a service token's client ID).
    pub identity: Option<String>,
    /// Where the credentials or token were found (`cf-access-client-id`, `cookie`, …).
    pub location: Option<String>,
    /// The client's address (the socket peer, or the forwarded address from a trusted proxy).
    pub source_ip: Option<IpAddr>,
    /// The request's id ([`REQUEST_ID_HEADER`]).
    pub request_id: Option<String>,
    /// For [`EventKind::Admin`]: what was done, e.g. `token.create`, `app.update`, `keys.rotate`.
    pub action: Option<String>,
    /// For [`EventKind::Admin`]: who did it (`cli`, or an API token's name).
    pub actor: Option<String>,
    /// How many identical events this one stands for (1 unless a log aggregated repeats).
    pub count: u32,
}

impl AuthEvent {
    /// An allowed event of `kind` at `at_ms` (milliseconds since the epoch), every optional
    /// field empty and a count of 1.
    pub fn new(kind: EventKind, at_ms: i64) -> Self {
        Self {
            at_ms,
            kind,
            allowed: true,
            reason: None,
            detail: None,
            app: None,
            client_id: None,
            token_id: None,
            token_name: None,
            identity: None,
            location: None,
            source_ip: None,
            request_id: None,
            action: None,
            actor: None,
            count: 1,
        }
    }

    /// Marks the event refused for `reason`.
    #[must_use]
    pub fn refused(mut self, reason: RejectionKind) -> Self {
        self.allowed = false;
        self.reason = Some(reason);
        self
    }

    /// Sets the operator-facing explanation.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets the application.
    #[must_use]
    pub fn with_app(mut self, app: impl Into<String>) -> Self {
        self.app = Some(app.into());
        self
    }

    /// Sets the client ID, if `client_id` has a client ID's shape (anything else a client sent
    /// is not worth keeping, and might be a pasted secret).
    #[must_use]
    pub fn with_client_id(mut self, client_id: &str) -> Self {
        self.client_id = is_client_id(client_id).then(|| client_id.to_owned());
        self
    }

    /// Sets the service token's id and name.
    #[must_use]
    pub fn with_token(mut self, id: impl Into<String>, name: impl Into<String>) -> Self {
        self.token_id = Some(id.into());
        self.token_name = Some(name.into());
        self
    }

    /// Sets the verified identity's name.
    #[must_use]
    pub fn with_identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = Some(identity.into());
        self
    }

    /// Sets where the credentials or token were found.
    #[must_use]
    pub fn with_location(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    /// Sets the client's address.
    #[must_use]
    pub fn with_source_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.source_ip = ip;
        self
    }

    /// Sets the request id from `headers` ([`request_id`]).
    #[must_use]
    pub fn with_request_id_from(mut self, headers: &HeaderMap) -> Self {
        self.request_id = request_id(headers);
        self
    }

    /// Sets what a management change did and who did it.
    #[must_use]
    pub fn with_action(mut self, action: impl Into<String>, actor: impl Into<String>) -> Self {
        self.action = Some(action.into());
        self.actor = Some(actor.into());
        self
    }

    /// The refusal's reason as its wire spelling (`invalid_credentials`, …), if refused.
    pub fn reason_str(&self) -> Option<&'static str> {
        self.reason.map(RejectionKind::as_str)
    }
}

/// The request's id from [`REQUEST_ID_HEADER`]: one value of at most [`MAX_REQUEST_ID_LEN`]
/// visible ASCII characters, else none.
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    let mut values = headers.get_all(REQUEST_ID_HEADER).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let bytes = value.as_bytes();
    (!bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes.iter().all(|b| b.is_ascii_graphic()))
    .then(|| String::from_utf8_lossy(bytes).into_owned())
}

/// Where events go. A sink is called on the request path: it must return at once (queue the
/// event, bump a counter), never wait on I/O.
pub trait EventSink: Send + Sync + 'static {
    /// Takes one event.
    fn record(&self, event: &AuthEvent);
}

/// A set of [`EventSink`]s, cheap to clone. The default has none, and then
/// [`emit`](Self::emit) costs one length check.
#[derive(Clone)]
pub struct Events {
    sinks: Arc<[Arc<dyn EventSink>]>,
}

impl Default for Events {
    fn default() -> Self {
        Self::none()
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("sinks", &self.sinks.len())
            .finish()
    }
}

impl Events {
    /// No sinks: events are not built.
    pub fn none() -> Self {
        Self {
            sinks: Arc::from(Vec::new()),
        }
    }

    /// These sinks and `sink`.
    #[must_use]
    pub fn with(&self, sink: Arc<dyn EventSink>) -> Self {
        let mut sinks = self.sinks.to_vec();
        sinks.push(sink);
        Self {
            sinks: Arc::from(sinks),
        }
    }

    /// Whether any sink listens.
    pub fn is_enabled(&self) -> bool {
        !self.sinks.is_empty()
    }

    /// Builds the event with `make` (only if a sink listens) and hands it to every sink.
    pub fn emit(&self, make: impl FnOnce() -> AuthEvent) {
        if self.sinks.is_empty() {
            return;
        }
        let event = make();
        for sink in self.sinks.iter() {
            sink.record(&event);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http::HeaderValue;

    use super::*;

    struct Count(AtomicUsize);
    impl EventSink for Count {
        fn record(&self, _: &AuthEvent) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn without_sinks_nothing_is_built() {
        Events::none().emit(|| unreachable!("no sink listens"));
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let events = Events::none().with(count.clone()).with(count.clone());
        assert!(events.is_enabled());
        events.emit(|| AuthEvent::new(EventKind::Token, 0));
        assert_eq!(count.0.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn client_ids_are_kept_only_with_their_shape() {
        let id = format!("{}.access", "a".repeat(32));
        let event = AuthEvent::new(EventKind::Exchange, 0).with_client_id(&id);
        assert_eq!(event.client_id.as_deref(), Some(id.as_str()));
        let pasted = AuthEvent::new(EventKind::Exchange, 0).with_client_id("s3cr3t-value");
        assert_eq!(pasted.client_id, None);
    }

    #[test]
    fn request_ids_are_bounded_single_visible_values() {
        let mut headers = HeaderMap::new();
        assert_eq!(request_id(&headers), None);
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&headers).as_deref(), Some("abc-123"));
        headers.append(REQUEST_ID_HEADER, HeaderValue::from_static("other"));
        assert_eq!(request_id(&headers), None, "two values are ambiguous");
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("has space"));
        assert_eq!(request_id(&headers), None);
        let long = "x".repeat(MAX_REQUEST_ID_LEN + 1);
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_str(&long).unwrap());
        assert_eq!(request_id(&headers), None);
    }

    #[test]
    fn kinds_round_trip() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("login"), None);
    }
}
