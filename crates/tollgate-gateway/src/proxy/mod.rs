//! [`Proxy`]: hands authenticated requests to an origin, as Cloudflare's edge does. Its
//! documentation says exactly what the origin sees.

mod forward;
mod future;
mod service;

pub use future::ResponseFuture;
pub use service::{HostHeader, Proxy};
