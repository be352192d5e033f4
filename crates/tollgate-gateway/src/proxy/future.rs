//! [`ResponseFuture`]: what [`Proxy`](super::Proxy) answers with.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::response::Response;

pin_project_lite::pin_project! {
    /// The response future of [`Proxy`](super::Proxy): a refusal answered at once, or the
    /// exchange with the origin.
    pub struct ResponseFuture {
        #[pin]
        state: State,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State {
        /// Refused before the origin was asked.
        Refused { response: Option<Response> },
        /// Waiting for the origin.
        Forwarding { future: Pin<Box<dyn Future<Output = Response> + Send>> },
    }
}

impl ResponseFuture {
    pub(crate) fn refused(response: Response) -> Self {
        Self {
            state: State::Refused {
                response: Some(response),
            },
        }
    }

    pub(crate) fn forwarding(future: impl Future<Output = Response> + Send + 'static) -> Self {
        Self {
            state: State::Forwarding {
                future: Box::pin(future),
            },
        }
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Refused { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled again after completion: answer something rather than panic.
                None => Poll::Ready(Ok(Response::default())),
            },
            StateProj::Forwarding { future } => future.as_mut().poll(cx).map(Ok),
        }
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
