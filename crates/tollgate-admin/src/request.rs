//! What the admin API reads from a request: a JSON body (empty = `{}`, size-capped, errors
//! naming the field), query parameters (each at most once), pages, Go durations, RFC 3339
//! times.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{FromRequest, Request};
use http::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use tollgate_core::clock::parse_rfc3339_ms;

use crate::envelope::{ApiError, Paged, code};

/// The largest request body read (1 MiB; an application document is a few KiB).
pub(crate) const MAX_BODY: usize = 1 << 20;
/// Items per page when the caller does not say.
pub(crate) const DEFAULT_PER_PAGE: u64 = 20;
/// The most items one page holds.
pub(crate) const MAX_PER_PAGE: u64 = 1000;

/// A JSON request body. An empty body is `{}` (the SDKs send none, or an empty one, on
/// body-less POSTs), no content type is required, and anything else must be one JSON object
/// that `T` accepts; a refusal names the field.
#[derive(Debug)]
pub(crate) struct Body<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    code::TOO_LARGE,
                    format!(
                        "access.api.error.request_too_large: the body exceeds {MAX_BODY} bytes"
                    ),
                )
            })?;
        parse_body(&bytes).map(Body)
    }
}

/// `bytes` as `T`, an empty (or all-whitespace) body read as `{}`.
pub(crate) fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let text = if bytes.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        bytes
    };
    let value: serde_json::Value = serde_json::from_slice(text).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            code::INVALID_REQUEST,
            format!("access.api.error.invalid_request: the body is not JSON ({e})"),
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            code::INVALID_REQUEST,
            "access.api.error.invalid_request: the body must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let mut why = e.into_inner().to_string();
        if why.len() > 200 {
            let mut end = 200;
            while !why.is_char_boundary(end) {
                end -= 1;
            }
            why.truncate(end);
        }
        ApiError::field(&path, why)
    })
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or a value.
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The query parameters, each allowed once: a repeated one is ambiguous and refused.
#[derive(Debug, Default)]
pub(crate) struct Query(HashMap<String, String>);

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut params = HashMap::new();
        for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            if params.insert(name.to_string(), value.to_string()).is_some() {
                return Err(ApiError::parameter(&name, "given more than once"));
            }
        }
        Ok(Self(params))
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// `page` (from 1) and `per_page` (1 to 1000, default 20).
    pub(crate) fn page(&self) -> Result<Page, ApiError> {
        let number = |name: &str, default: u64, max: u64| -> Result<u64, ApiError> {
            match self.get(name) {
                None => Ok(default),
                Some(text) => match text.parse::<u64>() {
                    Ok(n) if (1..=max).contains(&n) => Ok(n),
                    _ => Err(ApiError::parameter(
                        name,
                        format!("must be a whole number from 1 to {max}"),
                    )),
                },
            }
        };
        Ok(Page {
            page: number("page", 1, u64::from(u32::MAX))?,
            per_page: number("per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)?,
        })
    }
}

/// Which page of a collection was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) page: u64,
    pub(crate) per_page: u64,
}

impl Page {
    /// The items this page holds, as `(offset, limit)`.
    pub(crate) fn window(self) -> (u64, u64) {
        ((self.page - 1).saturating_mul(self.per_page), self.per_page)
    }

    /// Where a page of `count` items out of `total` sits.
    pub(crate) fn paged(self, count: u64, total: u64) -> Paged {
        Paged {
            page: self.page,
            per_page: self.per_page,
            count,
            total_count: total,
            total_pages: total.div_ceil(self.per_page),
        }
    }

    /// This page of `items` and where it sits; a page past the end is empty (the SDKs page
    /// until they get an empty one).
    pub(crate) fn of<T>(self, items: Vec<T>) -> (Vec<T>, Paged) {
        let total = items.len() as u64;
        let skip = (self.page - 1).saturating_mul(self.per_page);
        let page: Vec<T> = items
            .into_iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .take(usize::try_from(self.per_page).unwrap_or(usize::MAX))
            .collect();
        let paged = self.paged(page.len() as u64, total);
        (page, paged)
    }
}

/// A Go duration (`8760h`, `1h30m`, `300ms`, `1.5h`; units ns, us, µs, ms, s, m, h), as
/// Cloudflare's `duration` and `session_duration` fields spell them. Negative durations are
/// refused.
pub(crate) fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration such as 8760h, 30m or 1h30m");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let (number, after) = rest.split_at(digits);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(bad());
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let mut part = whole.checked_mul(nanos).ok_or_else(bad)?;
        let mut scale = nanos;
        for digit in fraction.bytes().take(30) {
            scale /= 10;
            part = part
                .checked_add(u128::from(digit - b'0') * scale)
                .ok_or_else(bad)?;
        }
        total = total.checked_add(part).ok_or_else(bad)?;
        rest = next;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| bad())?;
    // Below a nanosecond is gone; the rest fits.
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// An RFC 3339 time (fractions and offsets accepted) as unix seconds, rounded down.
pub(crate) fn parse_time(field: &str, text: &str) -> Result<i64, ApiError> {
    parse_rfc3339_ms(text)
        .map(|ms| ms.div_euclid(1000))
        .ok_or_else(|| {
            ApiError::field(
                field,
                "expected an RFC 3339 time such as 2026-12-01T22:18:51Z",
            )
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn go_durations_parse_as_go_does() {
        let secs = |s: &str| parse_go_duration(s).unwrap();
        assert_eq!(secs("8760h"), Duration::from_secs(8760 * 3600));
        assert_eq!(secs("2h45m"), Duration::from_secs(2 * 3600 + 45 * 60));
        assert_eq!(secs("1.5h"), Duration::from_secs(5400));
        assert_eq!(secs("300ms"), Duration::from_millis(300));
        assert_eq!(secs("1µs"), Duration::from_micros(1));
        assert_eq!(secs(".5s"), Duration::from_millis(500));
        assert_eq!(secs("0"), Duration::ZERO);
        assert_eq!(secs("0s"), Duration::ZERO);
        assert_eq!(secs("1h0m0s"), Duration::from_secs(3600));
        for bad in [
            "",
            "h",
            "1",
            "1d",
            "-1h",
            "1..5h",
            "1h 30m",
            "forever",
            "1e3s",
            ".h",
            "99999999999999999999999h",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pages_past_the_end_are_empty_with_a_true_result_info() {
        let page = |page, per_page| Page { page, per_page };
        let (items, info) = page(2, 2).of(vec![1, 2, 3]);
        assert_eq!(items, [3]);
        assert_eq!((info.count, info.total_count, info.total_pages), (1, 3, 2));
        let (items, info) = page(3, 2).of(vec![1, 2, 3]);
        assert!(items.is_empty());
        assert_eq!((info.page, info.total_pages), (3, 2));
        let (items, info) = page(u64::from(u32::MAX), 1000).of(vec![1]);
        assert!(items.is_empty());
        assert_eq!(info.total_pages, 1);
        let (_, info) = page(1, 20).of(Vec::<u8>::new());
        assert_eq!(info.total_pages, 0);
    }

    #[test]
    fn queries_refuse_repeats_and_bad_pages() {
        assert_eq!(
            Query::parse(Some("page=2&per_page=50"))
                .unwrap()
                .page()
                .unwrap(),
            Page {
                page: 2,
                per_page: 50
            }
        );
        assert_eq!(Query::parse(None).unwrap().page().unwrap().per_page, 20);
        assert!(Query::parse(Some("page=1&page=2")).is_err());
        for bad in ["page=0", "page=-1", "per_page=1001", "per_page=x", "page="] {
            let error = Query::parse(Some(bad)).unwrap().page().unwrap_err();
            assert_eq!(error.code, code::INVALID_PARAMETER, "{bad}");
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Sample {
        name: Option<String>,
        #[serde(default, deserialize_with = "nullable")]
        at: Option<Option<String>>,
    }

    #[test]
    fn bodies_empty_is_an_object_and_errors_name_the_field() {
        let empty: Sample = parse_body(b"").unwrap();
        assert!(empty.name.is_none() && empty.at.is_none());
        let null: Sample = parse_body(br#"{"at": null}"#).unwrap();
        assert_eq!(null.at, Some(None));
        let error = parse_body::<Sample>(br#"{"name": 5}"#).unwrap_err();
        assert!(error.message.contains("name:"), "{}", error.message);
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        for bad in [&b"[]"[..], b"nul", b"{\"name\":\"a\"} x", b"\"x\""] {
            assert!(parse_body::<Sample>(bad).is_err());
        }
    }

    #[test]
    fn times_take_fractions_and_offsets() {
        assert_eq!(
            parse_time("t", "2026-12-01T22:18:51.380971+00:00").unwrap(),
            parse_time("t", "2026-12-01T22:18:51Z").unwrap()
        );
        assert!(
            parse_time("t", "tomorrow")
                .unwrap_err()
                .message
                .contains("t:")
        );
    }
}
