//! The response future of tollgate's layers: [`Verify`](super::Verify) here, and the issuer's
//! `Exchange` (which re-exports it).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum_core::response::Response;
use pin_project_lite::pin_project;

pin_project! {
    /// The response future of [`Verify`](super::Verify) (and of tollgate-issue's `Exchange`):
    /// the inner service's future (a token verified without waiting, no allocation), a
    /// rejection answered before the inner service ran, or — only on paths that must wait, such
    /// as a key fetch for an unknown `kid` or signing a freshly exchanged token — a boxed
    /// "wait, then call" future.
    pub struct ResponseFuture<F>
    where
        F: Future,
    {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F>
    where
        F: Future,
    {
        Called {
            #[pin]
            future: F,
        },
        Waiting {
            future: Pin<Box<dyn Future<Output = F::Output> + Send>>,
        },
        Rejected {
            response: Option<Response>,
        },
    }
}

// The constructors are for tollgate's own layers (this crate's `Verify`, tollgate-issue's
// `Exchange`), which live in two crates and so cannot share a `pub(crate)`; they are not part
// of the public API.
impl<F: Future> ResponseFuture<F> {
    /// The inner service was called: its future.
    #[doc(hidden)]
    pub fn called(future: F) -> Self {
        Self {
            state: State::Called { future },
        }
    }

    /// Work had to wait before the inner service could be called (or the request refused).
    #[doc(hidden)]
    pub fn waiting(future: Pin<Box<dyn Future<Output = F::Output> + Send>>) -> Self {
        Self {
            state: State::Waiting { future },
        }
    }

    /// Refused before the inner service ran.
    #[doc(hidden)]
    pub fn rejected(response: Response) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Called { future } => future.poll(cx),
            StateProj::Waiting { future } => future.as_mut().poll(cx),
            StateProj::Rejected { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => panic!("ResponseFuture polled after completion"),
            },
        }
    }
}

impl<F: Future> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Called { .. } => "called",
            State::Waiting { .. } => "waiting",
            State::Rejected { .. } => "rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
