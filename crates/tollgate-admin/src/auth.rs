//! Who is calling: an API token sent as `Authorization: Bearer …`, or as `X-Auth-Key` (with or
//! without `X-Auth-Email`), as Cloudflare's SDKs send their credentials; the account in the
//! path; read or edit permission by method.

use axum::extract::{RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, header};
use tollgate_issue::{ApiPermission, ApiTokenRecord};

use crate::AdminState;
use crate::envelope::{ApiError, code};

/// The authenticated caller, in the request's extensions for the handlers (audit entries
/// name it).
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) id: String,
    pub(crate) name: String,
}

impl Caller {
    /// The `actor` of the caller's audit entries.
    pub(crate) fn actor(&self) -> String {
        format!("api-token:{} ({})", self.name, self.id)
    }
}

/// The one credential a request presents, or why it presents none that can be checked.
fn presented(headers: &HeaderMap) -> Result<String, ApiError> {
    let invalid = |why: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            code::INVALID_HEADERS,
            format!("Invalid request headers: {why}"),
        )
    };
    let one = |name: &str| -> Result<Option<&str>, ApiError> {
        let mut values = headers.get_all(name).iter();
        let first = values.next();
        if values.next().is_some() {
            return Err(invalid(&format!("{name} given more than once")));
        }
        first
            .map(|v| {
                v.to_str()
                    .map_err(|_| invalid(&format!("{name} is not visible ASCII")))
            })
            .transpose()
    };
    let bearer = one(header::AUTHORIZATION.as_str())?
        .map(|value| {
            let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
            let token = token.trim();
            if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
                return Err(invalid("Authorization must be `Bearer <API token>`"));
            }
            Ok(token)
        })
        .transpose()?;
    let key = one("x-auth-key")?.map(str::trim);
    let email = one("x-auth-email")?;
    match (bearer, key) {
        (Some(a), Some(b)) if a != b => Err(invalid(
            "Authorization and X-Auth-Key name different credentials",
        )),
        (Some(token), _) | (None, Some(token)) => Ok(token.to_owned()),
        (None, None) => {
            let mut message =
                "Missing X-Auth-Key, X-Auth-Email or Authorization headers".to_owned();
            if email.is_some() {
                // Python's SDK, given a token and an e-mail (e.g. CLOUDFLARE_EMAIL left set),
                // sends only the e-mail.
                message.push_str(
                    ": X-Auth-Email alone is no credential; send the API token as \
                     `Authorization: Bearer` (unset CLOUDFLARE_EMAIL for the Python SDK)",
                );
            }
            Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                code::MISSING_CREDENTIALS,
                message,
            ))
        }
    }
}

/// Whether `method` changes something (and so needs edit permission).
fn changes(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The middleware in front of every `/accounts/{account_id}/…` route.
pub(crate) async fn authenticate(
    State(state): State<AdminState>,
    params: RawPathParams,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let checked = check(&state, &params, &parts).await;
    let mut request = Request::from_parts(parts, body);
    match checked {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

async fn check(
    state: &AdminState,
    params: &RawPathParams,
    request: &http::request::Parts,
) -> Result<Caller, ApiError> {
    let token = presented(&request.headers)?;
    let record: ApiTokenRecord = match state.api_tokens.authenticate(&token).await {
        Ok(Some(record)) => record,
        Ok(None) => {
            tracing::warn!(path = %request.uri.path(), "admin API: unknown API token");
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                code::AUTHENTICATION,
                "Authentication error",
            ));
        }
        Err(error) => return Err(ApiError::from_manage(&error)),
    };
    let account = state.account_id().await?;
    let asked = params
        .iter()
        .find(|(name, _)| *name == "account_id")
        .map(|(_, value)| value);
    if asked != Some(account.as_str()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            code::WRONG_ACCOUNT,
            format!(
                "Unauthorized to access requested resource: this server's account is {account}"
            ),
        ));
    }
    if changes(&request.method) && record.permission != ApiPermission::Edit {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            code::AUTHENTICATION,
            format!(
                "Authentication error: API token {:?} may only read",
                record.name
            ),
        ));
    }
    Ok(Caller {
        id: record.id,
        name: record.name,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn one_credential_is_read_from_either_spelling() {
        let token = |pairs| presented(&headers(pairs));
        assert_eq!(
            token(&[("authorization", "Bearer tga_x")]).unwrap(),
            "tga_x"
        );
        assert_eq!(
            token(&[("authorization", "bearer  tga_x ")]).unwrap(),
            "tga_x"
        );
        assert_eq!(
            token(&[("x-auth-email", "a@b.c"), ("x-auth-key", "tga_x")]).unwrap(),
            "tga_x"
        );
        assert_eq!(
            token(&[("authorization", "Bearer tga_x"), ("x-auth-key", "tga_x")]).unwrap(),
            "tga_x"
        );
    }

    #[test]
    fn missing_malformed_and_ambiguous_credentials_are_refused() {
        let code_of = |pairs| presented(&headers(pairs)).unwrap_err().code;
        assert_eq!(code_of(&[]), code::MISSING_CREDENTIALS);
        let email_only = presented(&headers(&[("x-auth-email", "a@b.c")])).unwrap_err();
        assert!(email_only.message.contains("CLOUDFLARE_EMAIL"));
        for bad in [
            &[("authorization", "Basic eDp5")][..],
            &[("authorization", "Bearer")],
            &[("authorization", "Bearer a"), ("authorization", "Bearer a")],
            &[("authorization", "Bearer a"), ("x-auth-key", "b")],
            &[("x-auth-key", "a"), ("x-auth-key", "b")],
        ] {
            assert_eq!(code_of(bad), code::INVALID_HEADERS, "{bad:?}");
        }
    }
}
