//! The bodies a proxy streams: [`LimitedBody`], a request body cut off past the body limit,
//! and [`IdleTimeoutBody`], a response body cut off when the origin stalls.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

pin_project_lite::pin_project! {
    /// The client's body, streamed frame by frame: past `remaining` bytes it fails (the
    /// origin connection is then dropped) and raises `exceeded`, which the proxy answers 413.
    pub(crate) struct LimitedBody {
        #[pin]
        inner: Body,
        remaining: u64,
        exceeded: Arc<AtomicBool>,
    }
}

impl LimitedBody {
    /// `body`, allowed `limit` bytes; the flag says whether it went over.
    pub(crate) fn new(body: Body, limit: u64) -> (Self, Arc<AtomicBool>) {
        let exceeded = Arc::new(AtomicBool::new(false));
        let body = Self {
            inner: body,
            remaining: limit,
            exceeded: exceeded.clone(),
        };
        (body, exceeded)
    }

    /// An empty body (a retried request's).
    pub(crate) fn empty() -> Self {
        Self::new(Body::empty(), 0).0
    }
}

impl fmt::Debug for LimitedBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimitedBody")
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

/// The error a [`LimitedBody`] fails with.
#[derive(Debug)]
pub(crate) struct BodyTooLarge;

impl fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request body is over the gateway's limit")
    }
}

impl std::error::Error for BodyTooLarge {}

impl http_body::Body for LimitedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.project();
        let frame = match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if let Some(data) = frame.data_ref() {
            let len = data.len() as u64;
            if len > *this.remaining {
                *this.remaining = 0;
                this.exceeded.store(true, Ordering::Relaxed);
                return Poll::Ready(Some(Err(axum::Error::new(BodyTooLarge))));
            }
            *this.remaining -= len;
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// The origin's response body, failing when the origin lets the proxy wait for a frame
    /// longer than `timeout` (it stalled): the client's connection is then cut rather than
    /// held open for ever. The clock starts only when a frame is not ready at once, so a body
    /// that arrives with its headers (most do) costs no timer and no clock read; time the
    /// client takes to read what it was sent never counts against the origin.
    pub(crate) struct IdleTimeoutBody<B> {
        #[pin]
        inner: B,
        // Armed while the proxy waits for a frame; `None` until it first has to.
        sleep: Option<Pin<Box<tokio::time::Sleep>>>,
        waiting: bool,
        timeout: Duration,
    }
}

impl<B> IdleTimeoutBody<B> {
    /// `body`, allowed `timeout` of waiting for each frame.
    pub(crate) fn new(body: B, timeout: Duration) -> Self {
        Self {
            inner: body,
            sleep: None,
            waiting: false,
            timeout,
        }
    }
}

impl<B> fmt::Debug for IdleTimeoutBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdleTimeoutBody")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The error an [`IdleTimeoutBody`] fails with.
#[derive(Debug)]
pub(crate) struct OriginStalled;

impl fmt::Display for OriginStalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the origin sent nothing within the response body idle timeout")
    }
}

impl std::error::Error for OriginStalled {}

impl<B> http_body::Body for IdleTimeoutBody<B>
where
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = B::Data;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, Self::Error>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            *this.waiting = false;
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let timeout = *this.timeout;
        if !*this.waiting {
            // Waiting starts now: (re)arm the timer.
            *this.waiting = true;
            let deadline = tokio::time::Instant::now() + timeout;
            match this.sleep {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => *this.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        match this.sleep.as_mut().map(|sleep| sleep.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Some(Err(Box::new(OriginStalled)))),
            _ => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn fails_past_the_limit_and_says_so() {
        let chunks = futures_util::stream::iter(
            [&b"12345"[..], b"67890", b"x"].map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c))),
        );
        let (body, exceeded) = LimitedBody::new(Body::from_stream(chunks), 10);
        let mut body = std::pin::pin!(body);
        let mut seen = 0;
        let error = loop {
            match body.frame().await {
                Some(Ok(frame)) => seen += frame.into_data().unwrap().len(),
                Some(Err(error)) => break error,
                None => panic!("the limit was not enforced"),
            }
        };
        assert_eq!(seen, 10, "exactly the limit goes through");
        assert!(exceeded.load(Ordering::Relaxed));
        assert!(error.to_string().contains("over the gateway's limit"));

        let (body, exceeded) = LimitedBody::new(Body::from("1234567890"), 10);
        assert_eq!(body.collect().await.unwrap().to_bytes().len(), 10);
        assert!(!exceeded.load(Ordering::Relaxed));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_after_the_idle_timeout() {
        let chunks = futures_util::stream::unfold(0, |sent| async move {
            match sent {
                0 => Some((Ok::<_, std::io::Error>(Bytes::from_static(b"first")), 1)),
                1 => {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    Some((Ok(Bytes::from_static(b"second")), 2))
                }
                _ => {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    None
                }
            }
        });
        let body = IdleTimeoutBody::new(Body::from_stream(chunks), Duration::from_millis(200));
        let mut body = std::pin::pin!(body);
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"first");
        let second = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(
            &second[..],
            b"second",
            "150 ms between frames is within the timeout"
        );
        let started = tokio::time::Instant::now();
        let error = body.frame().await.unwrap().unwrap_err();
        assert!(error.is::<OriginStalled>(), "{error}");
        assert_eq!(started.elapsed(), Duration::from_millis(200));
    }
}
