//! Cloudflare's v4 envelope: `{success, errors, messages, result, result_info}` on every
//! answer, errors as `{code, message}` with an HTTP status of 400 or more (the SDKs read only
//! the status to tell a failure), never a 204, always JSON.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::json;
use tollgate_issue::{ManageError, ManageErrorKind};

/// Error codes, in Cloudflare's numbering where Cloudflare is known to use the code for the
/// same failure, else tollgate's own in Access's range. Listed in the OpenAPI document.
pub(crate) mod code {
    /// `No route for the URI` (unknown path).
    pub(crate) const NO_ROUTE: u32 = 7003;
    /// `Method not allowed for this endpoint`.
    pub(crate) const METHOD_NOT_ALLOWED: u32 = 7001;
    /// `Invalid request headers` (a malformed or ambiguous credential header).
    pub(crate) const INVALID_HEADERS: u32 = 6003;
    /// `Missing X-Auth-Key, X-Auth-Email or Authorization headers`.
    pub(crate) const MISSING_CREDENTIALS: u32 = 9106;
    /// `Unauthorized to access requested resource` (another account's path).
    pub(crate) const WRONG_ACCOUNT: u32 = 9109;
    /// `Authentication error` (unknown token, or one without the permission).
    pub(crate) const AUTHENTICATION: u32 = 10000;
    /// `Internal server error` (the store failed).
    pub(crate) const INTERNAL: u32 = 10001;
    /// `access.api.error.invalid_request`: a body that is not JSON, or a bad field.
    pub(crate) const INVALID_REQUEST: u32 = 12002;
    /// `access.api.error.invalid_url_parameter_value`: a bad query parameter.
    pub(crate) const INVALID_PARAMETER: u32 = 12091;
    /// `access.api.error.not_found`.
    pub(crate) const NOT_FOUND: u32 = 12130;
    /// `access.api.error.unknown_application`.
    pub(crate) const UNKNOWN_APPLICATION: u32 = 11021;
    /// `access.api.error.application_already_exists` (a name or a domain in use).
    pub(crate) const ALREADY_EXISTS: u32 = 11010;
    /// `access.api.error.conflict`: the record kept changing under concurrent writers.
    pub(crate) const CONFLICT: u32 = 12409;
    /// `access.api.error.request_too_large`.
    pub(crate) const TOO_LARGE: u32 = 12413;
    /// `access.api.error.not_supported`: valid for Cloudflare, not done by tollgate.
    pub(crate) const NOT_SUPPORTED: u32 = 12501;
    /// A service token a policy names, or a reusable policy an application links, cannot be
    /// deleted (Cloudflare's `service_token_in_use`; tollgate answers policies in use with it
    /// too).
    pub(crate) const IN_USE: u32 = 12139;
}

/// A refused admin call: its status, code and message, answered in the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: u32,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `invalid_request` about `field`.
    pub(crate) fn field(field: &str, why: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            code::INVALID_REQUEST,
            format!("access.api.error.invalid_request: {field}: {why}"),
        )
    }

    /// 400 `invalid_url_parameter_value` about the query parameter `name`.
    pub(crate) fn parameter(name: &str, why: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            code::INVALID_PARAMETER,
            format!("access.api.error.invalid_url_parameter_value: {name}: {why}"),
        )
    }

    /// 404 for an unknown path.
    pub(crate) fn no_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            code::NO_ROUTE,
            "No route for the URI",
        )
    }

    /// The answer to a manager's error. Store failures are logged here and answered without
    /// their detail (which may name hosts or files).
    /// The managers' messages of bad arguments name the field (`name must be …`).
    pub(crate) fn from_manage(error: &ManageError) -> Self {
        match error.kind() {
            ManageErrorKind::NotFound => Self::new(
                StatusCode::NOT_FOUND,
                code::NOT_FOUND,
                format!("access.api.error.not_found: {error}"),
            ),
            ManageErrorKind::InvalidArgument => Self::new(
                StatusCode::BAD_REQUEST,
                code::INVALID_REQUEST,
                format!("access.api.error.invalid_request: {error}"),
            ),
            // Cloudflare answers 409 for "already exists", which its SDKs retry three times;
            // a name or domain in use stays in use, so 400.
            ManageErrorKind::Conflict if !error.to_string().contains("kept changing") => Self::new(
                StatusCode::BAD_REQUEST,
                code::ALREADY_EXISTS,
                format!("access.api.error.application_already_exists: {error}"),
            ),
            ManageErrorKind::InUse => Self::new(
                StatusCode::BAD_REQUEST,
                code::IN_USE,
                if error.to_string().starts_with("service token") {
                    format!(
                        "access.api.error.service_token_in_use: cannot delete service token \
                         because it is used by a policy: {error}"
                    )
                } else {
                    format!(
                        "access.api.error.policy_in_use: cannot delete policy because it is \
                         used by an application: {error}"
                    )
                },
            ),
            ManageErrorKind::Conflict => Self::new(
                StatusCode::CONFLICT,
                code::CONFLICT,
                format!("access.api.error.conflict: {error}"),
            ),
            _ => {
                tracing::error!(%error, "admin API: the store failed");
                Self::internal()
            }
        }
    }

    pub(crate) fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::INTERNAL,
            "Internal server error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "success": false,
            "errors": [{"code": self.code, "message": self.message}],
            "messages": [],
            "result": null,
        });
        let mut response = (self.status, Json(body)).into_response();
        // A refusal stays a refusal: the SDKs retry 409 and 5xx unless told not to.
        if self.status == StatusCode::CONFLICT {
            response
                .headers_mut()
                .insert("x-should-retry", HeaderValue::from_static("true"));
        } else if self.status.is_client_error() {
            response
                .headers_mut()
                .insert("x-should-retry", HeaderValue::from_static("false"));
        }
        // The rest of an oversized body was never read: the connection cannot carry another
        // request, so say so, or a pooling client sends its next one into a closing socket.
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            response
                .headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// What a handler answers.
pub(crate) type ApiResult = Result<Response, ApiError>;

/// The envelope of a success.
#[derive(Serialize)]
struct Success<'a, T> {
    success: bool,
    errors: [(); 0],
    messages: [(); 0],
    result: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    result_info: Option<&'a Paged>,
}

/// 200 with `result`.
pub(crate) fn ok<T: Serialize>(result: T) -> ApiResult {
    Ok(Json(Success {
        success: true,
        errors: [],
        messages: [],
        result,
        result_info: None,
    })
    .into_response())
}

/// 200 with one page of a collection and its `result_info`.
pub(crate) fn ok_page<T: Serialize>(items: &[T], page: &Paged) -> ApiResult {
    Ok(Json(Success {
        success: true,
        errors: [],
        messages: [],
        result: items,
        result_info: Some(page),
    })
    .into_response())
}

/// Where a page sits in its collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Paged {
    pub(crate) page: u64,
    pub(crate) per_page: u64,
    pub(crate) count: u64,
    pub(crate) total_count: u64,
    pub(crate) total_pages: u64,
}
