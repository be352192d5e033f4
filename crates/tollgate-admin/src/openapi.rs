//! The OpenAPI 3 document of what the admin API implements, served at
//! `/client/v4/openapi.json`.

use axum::response::{IntoResponse, Response};
use http::header;

/// The document, JSON: the implemented paths, their bodies and results, the error codes.
const DOCUMENT: &str = include_str!("openapi.json");

/// The OpenAPI 3 document of the admin API (JSON), as served at `/client/v4/openapi.json`.
pub fn openapi_json() -> &'static str {
    DOCUMENT
}

pub(crate) async fn serve() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT).into_response()
}
