//! HTTP/1.1 connections to origins, pooled per origin and driven by the request that uses them.
//!
//! hyper-util's legacy client spawns every connection as a task of its own: a request then
//! crosses tasks twice (its head into the connection task's queue, the response back through a
//! oneshot) and its body streams through a third hop, each a wake-up of another task, plus the
//! pool's keyed lookups and a watch channel per captured connection. Profiled behind
//! `ExchangeLayer` on one core, that machinery was about a fifth of the gateway's user time.
//!
//! Here a connection ([`hyper::client::conn::http1`]) is polled by whoever holds it: the
//! request future until the response head arrives, then the response body
//! ([`PooledBody`]) while the client reads it. At the end of the body the connection goes
//! back to its origin's idle list; a body dropped before its end closes it (HTTP/1.1 cannot
//! cancel one exchange and keep the connection). What the legacy pool did that still matters
//! is kept:
//!
//! - an idle connection is checked before reuse: polled once (an origin's `FIN` while it was
//!   idle ends it) and asked whether it is ready for another request;
//! - idle connections older than the idle timeout are dropped when met, and a background
//!   reaper (on the runtime that pooled them, running only while something is idle) closes
//!   them when no request comes;
//! - at most `max_idle` idle connections per origin;
//! - the caller learns whether a request went out on a reused connection, for the one retry
//!   of hyper#2136's race.
//!
//! A `101 Switching Protocols` hands the connection to a task of its own, which completes the
//! upgrade; it never returns to the pool.

use std::collections::{HashMap, VecDeque};
use std::error::Error as StdError;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

use crate::body::LimitedBody;

/// The connector connections are made with (TCP, then TLS for `https://`).
pub(crate) type Connector = HttpsConnector<HttpConnector>;

type BoxError = Box<dyn StdError + Send + Sync>;

/// A connection's IO driver: hyper's connection future, upgrades enabled (its type cannot be
/// named).
type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// One HTTP/1.1 connection: the handle requests go through and the future that moves bytes.
struct Conn {
    send: SendRequest<LimitedBody>,
    driver: Driver,
}

impl Conn {
    /// Polls the driver; `true` when the connection has ended (closed, failed or upgraded).
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        self.driver.as_mut().poll(cx).is_ready()
    }

    /// Whether it can take another request now: still open and waiting for one. Polls it
    /// first, so what the origin sent while it sat (a `FIN`) is seen.
    fn is_reusable(&mut self, cx: &mut Context<'_>) -> bool {
        !self.drive(cx) && self.send.is_ready()
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// Why a request got no response head.
#[derive(Debug)]
pub(crate) enum SendError {
    /// Connecting failed (TCP, or TLS for `https://`).
    Connect(BoxError),
    /// The exchange failed: the connection closed, or the response could not be read.
    Http(hyper::Error),
}

impl SendError {
    /// The error, to walk its source chain.
    pub(crate) fn as_error(&self) -> &(dyn StdError + 'static) {
        match self {
            SendError::Connect(error) => &**error,
            SendError::Http(error) => error,
        }
    }
}

/// A [`SendError`] and whether the request went out on a reused connection.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) error: SendError,
    pub(crate) reused: bool,
}

/// The HTTP/1.1 pools of one [`OriginClient`](crate::OriginClient): one idle list per origin,
/// shared by every proxy to it.
pub(crate) struct Http1Pool {
    shared: Arc<Shared>,
}

struct Shared {
    connector: Connector,
    idle_timeout: Duration,
    max_idle: usize,
    /// Each origin's connections, by `scheme://authority`, held weakly: the proxies own them.
    origins: Mutex<HashMap<String, Weak<OriginConns>>>,
    /// Whether a reaper task is running.
    reaping: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; a poisoned one still holds a sound list.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Http1Pool {
    pub(crate) fn new(connector: Connector, idle_timeout: Duration, max_idle: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                connector,
                idle_timeout,
                max_idle,
                origins: Mutex::new(HashMap::new()),
                reaping: AtomicBool::new(false),
            }),
        }
    }

    /// The connections to the origin at `target` (`scheme://authority/`), shared with every
    /// other proxy to it from this client.
    pub(crate) fn origin(&self, target: Uri) -> Arc<OriginConns> {
        let key = format!(
            "{}://{}",
            target.scheme_str().unwrap_or("http"),
            target.authority().map_or("", |a| a.as_str())
        );
        let mut origins = lock(&self.shared.origins);
        if let Some(conns) = origins.get(&key).and_then(Weak::upgrade) {
            return conns;
        }
        origins.retain(|_, conns| conns.strong_count() > 0);
        let conns = Arc::new(OriginConns {
            target,
            idle: Mutex::new(VecDeque::new()),
            shared: self.shared.clone(),
        });
        origins.insert(key, Arc::downgrade(&conns));
        conns
    }
}

/// The pooled connections to one origin.
pub(crate) struct OriginConns {
    /// `scheme://authority/`, what the connector connects to.
    target: Uri,
    /// Idle connections, the oldest first.
    idle: Mutex<VecDeque<Idle>>,
    shared: Arc<Shared>,
}

impl fmt::Debug for OriginConns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OriginConns")
            .field("target", &self.target)
            .field("idle", &lock(&self.idle).len())
            .finish()
    }
}

impl OriginConns {
    /// Sends `request` (an origin-form URI and a `Host` header) on an idle connection, or a
    /// new one when none is ready, and answers the response head once it arrives. The
    /// connection is driven here until then, and by the returned body after.
    pub(crate) async fn send(
        self: &Arc<Self>,
        request: Request<LimitedBody>,
    ) -> Result<Response<PooledBody>, Failed> {
        let checked_out = poll_fn(|cx| Poll::Ready(self.checkout(cx))).await;
        let reused = checked_out.is_some();
        let mut conn = match checked_out {
            Some(conn) => conn,
            None => self.connect().await.map_err(|error| Failed {
                error,
                reused: false,
            })?,
        };
        let failed = |error| Failed {
            error: SendError::Http(error),
            reused,
        };
        let mut sent = std::pin::pin!(conn.send.send_request(request));
        let mut ended = false;
        let response = poll_fn(|cx| {
            // The driver first: it writes the request and reads what answers it.
            if !ended {
                ended = conn.drive(cx);
            }
            // A connection that ended has answered the request, or failed it.
            sent.as_mut().poll(cx)
        })
        .await
        .map_err(failed)?;

        let (parts, body) = response.into_parts();
        let conn = if ended {
            None
        } else if parts.status == StatusCode::SWITCHING_PROTOCOLS {
            // The upgrade completes when the connection future does; then the origin's side
            // of the tunnel is handed to whoever awaits `hyper::upgrade::on(response)`.
            let Conn { send, driver } = conn;
            tokio::spawn(async move {
                let _ = driver.await;
                drop(send);
            });
            None
        } else {
            Some(conn)
        };
        Ok(Response::from_parts(
            parts,
            PooledBody {
                body,
                conn,
                pool: self.clone(),
            },
        ))
    }

    /// The most recently used idle connection that is still good, if any; expired and closed
    /// ones are dropped on the way.
    fn checkout(&self, cx: &mut Context<'_>) -> Option<Conn> {
        loop {
            let mut conn = {
                let mut idle = lock(&self.idle);
                let newest = idle.pop_back()?;
                if newest.since.elapsed() >= self.shared.idle_timeout {
                    idle.clear(); // all older still
                    return None;
                }
                newest.conn
            };
            if conn.is_reusable(cx) {
                return Some(conn);
            }
        }
    }

    /// Gives back a connection whose exchange is over, if it can take another request.
    fn checkin(&self, mut conn: Conn, cx: &mut Context<'_>) {
        if !conn.is_reusable(cx) {
            return;
        }
        let now = Instant::now();
        let timeout = self.shared.idle_timeout;
        {
            let mut idle = lock(&self.idle);
            while idle
                .front()
                .is_some_and(|oldest| now.duration_since(oldest.since) >= timeout)
            {
                idle.pop_front();
            }
            if idle.len() >= self.shared.max_idle {
                return;
            }
            idle.push_back(Idle { conn, since: now });
        }
        self.shared.start_reaper();
    }

    async fn connect(&self) -> Result<Conn, SendError> {
        let mut connector = self.shared.connector.clone();
        poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(SendError::Connect)?;
        let io = connector
            .call(self.target.clone())
            .await
            .map_err(SendError::Connect)?;
        let (send, driver) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(SendError::Http)?;
        Ok(Conn {
            send,
            driver: Box::pin(driver.with_upgrades()),
        })
    }

    /// Drops the idle connections past the idle timeout; answers how many are left.
    fn reap(&self, now: Instant) -> usize {
        let timeout = self.shared.idle_timeout;
        let mut idle = lock(&self.idle);
        idle.retain(|entry| now.duration_since(entry.since) < timeout);
        idle.len()
    }
}

impl Shared {
    /// Starts the reaper on the current runtime unless one runs (or there is no runtime: then
    /// connections are reaped when met).
    fn start_reaper(self: &Arc<Self>) {
        if self.reaping.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.reaping.store(false, Ordering::Release);
            return;
        };
        let period = (self.idle_timeout / 2).max(Duration::from_millis(10));
        let shared = Arc::downgrade(self);
        runtime.spawn(async move {
            // Cleared however the task ends, its runtime shutting down included.
            let mut running = Reaping {
                shared: shared.clone(),
                armed: true,
            };
            loop {
                tokio::time::sleep(period).await;
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                if shared.reap_all() == 0 {
                    // Nothing idle: stop, unless a connection came back meanwhile.
                    shared.reaping.store(false, Ordering::Release);
                    if shared.reap_all() == 0 || shared.reaping.swap(true, Ordering::AcqRel) {
                        running.armed = false; // cleared already, or another reaper's now
                        return;
                    }
                }
            }
        });
    }

    fn reap_all(&self) -> usize {
        let now = Instant::now();
        let origins: Vec<Arc<OriginConns>> = lock(&self.origins)
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        origins.iter().map(|conns| conns.reap(now)).sum()
    }
}

/// Clears [`Shared::reaping`] when the reaper task goes, unless disarmed.
struct Reaping {
    shared: Weak<Shared>,
    armed: bool,
}

impl Drop for Reaping {
    fn drop(&mut self) {
        if let Some(shared) = self.armed.then(|| self.shared.upgrade()).flatten() {
            shared.reaping.store(false, Ordering::Release);
        }
    }
}

/// The origin's response body, driving its connection while it is read and giving the
/// connection back to the pool at its end.
pub(crate) struct PooledBody {
    body: Incoming,
    /// `None` once the connection ended or went back to the pool.
    conn: Option<Conn>,
    pool: Arc<OriginConns>,
}

impl PooledBody {
    /// The body is over: the connection goes back if it can take another request.
    fn finish(&mut self, cx: &mut Context<'_>) {
        if let Some(conn) = self.conn.take() {
            self.pool.checkin(conn, cx);
        }
    }
}

impl fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledBody")
            .field("driving", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let mut drove = false;
        loop {
            if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
                if frame.is_none() || this.body.is_end_stream() {
                    this.finish(cx);
                } else if matches!(frame, Some(Err(_))) {
                    this.conn = None;
                }
                return Poll::Ready(frame);
            }
            // Nothing buffered: move the connection on, and look once more.
            match this.conn.as_mut() {
                Some(conn) if !drove => {
                    if conn.drive(cx) {
                        this.conn = None;
                    }
                    drove = true;
                }
                _ => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // A body that was over before anyone read it (a `HEAD`, a `204`, an exact length
        // read whole): the connection can still serve. One read short of its end: it cannot.
        if self.conn.is_some() && self.body.is_end_stream() {
            self.finish(&mut Context::from_waker(Waker::noop()));
        }
    }
}
