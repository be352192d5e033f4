//! Clocks: where "now" comes from.
//!
//! Everything in tollgate that compares a time against "now" (token expiry, `nbf`, key
//! rotation, service-token expiry) asks a [`Clock`]. Production uses [`SystemClock`]; tests and
//! `tollgate verify --at` use a [`ManualClock`] they can set and advance.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// The current time as whole seconds since the Unix epoch (a JWT `NumericDate`).
    fn unix_now(&self) -> i64 {
        unix_seconds(self.now())
    }
}

/// A shared, type-erased clock.
pub type SharedClock = Arc<dyn Clock>;

/// Whole seconds since the Unix epoch; times before it are negative.
pub fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let secs = before.duration().as_secs_f64().ceil();
            -(secs as i64)
        }
    }
}

/// Milliseconds since the Unix epoch; times before it are negative.
pub fn unix_millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// The [`SystemTime`] of a number of seconds since the Unix epoch.
pub fn from_unix_seconds(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// The UTC calendar date of a Unix time: `(year, month 1–12, day 1–31)`, proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
///
/// ```
/// assert_eq!(tollgate_core::clock::utc_date(951_782_400), (2000, 2, 29));
/// ```
pub fn utc_date(unix: i64) -> (i64, u8, u8) {
    let days = unix.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // day is 1..=31 and month 1..=12 by construction.
    (year, month as u8, day as u8)
}

/// A Unix time as RFC 3339 UTC, e.g. `2026-11-23T15:45:00Z`.
///
/// ```
/// assert_eq!(tollgate_core::clock::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
/// ```
pub fn rfc3339(unix: i64) -> String {
    let (year, month, day) = utc_date(unix);
    let secs = unix.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (RFC 3339: a `t` or space for `T` and `z` for `Z`
/// accepted, fractions beyond milliseconds truncated) as milliseconds since the epoch; `None` if
/// it is not such a time.
///
/// ```
/// use tollgate_core::clock::parse_rfc3339_ms;
/// assert_eq!(parse_rfc3339_ms("2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
/// assert_eq!(parse_rfc3339_ms("2023-11-15T00:13:20.380971+02:00"), Some(1_700_000_000_380));
/// assert_eq!(parse_rfc3339_ms("2023-11-14"), None);
/// ```
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse().ok())
            .flatten()
    };
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if end == 0 {
            return None;
        }
        let first3 = format!("{:0<3}", &fraction[..end.min(3)]);
        millis = first3.parse::<i64>().ok()?;
        rest = &fraction[end..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let number = |part: Option<&str>| -> Option<i64> {
                let part = part?;
                part.bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| part.parse().ok())?
            };
            let (h, m) = (number(rest.get(1..3))?, number(rest.get(4..6))?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 60 + m)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `at_ms` (milliseconds since the epoch) as RFC 3339 UTC with milliseconds.
///
/// ```
/// assert_eq!(tollgate_core::clock::rfc3339_ms(1_700_000_000_005), "2023-11-14T22:13:20.005Z");
/// ```
pub fn rfc3339_ms(at_ms: i64) -> String {
    let text = rfc3339(at_ms.div_euclid(1000));
    let millis = at_ms.rem_euclid(1000);
    match text.strip_suffix('Z') {
        Some(base) => format!("{base}.{millis:03}Z"),
        None => text,
    }
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that stands still until told otherwise. Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use tollgate_core::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::at_unix(1_700_000_000);
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(clock.unix_now(), 1_700_000_060);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    millis: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock reading `time`.
    pub fn new(time: SystemTime) -> Self {
        let clock = Self {
            millis: Arc::new(AtomicI64::new(0)),
        };
        clock.set(time);
        clock
    }

    /// A clock reading `secs` seconds after the Unix epoch.
    pub fn at_unix(secs: i64) -> Self {
        Self::new(from_unix_seconds(secs))
    }

    /// Sets the time.
    pub fn set(&self, time: SystemTime) {
        let millis = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
        };
        self.millis.store(millis, Ordering::SeqCst);
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.millis
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| {
                Some(m.saturating_add(by))
            })
            .ok();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        let millis = self.millis.load(Ordering::SeqCst);
        if millis >= 0 {
            UNIX_EPOCH + Duration::from_millis(millis.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_millis(millis.unsigned_abs())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_parse_back() {
        for secs in [0, 951_782_400, 1_700_000_000, 4_107_542_399, -1] {
            assert_eq!(parse_rfc3339_ms(&rfc3339(secs)), Some(secs * 1000));
        }
        assert_eq!(
            parse_rfc3339_ms("2023-11-14T22:13:20.5Z"),
            Some(1_700_000_000_500)
        );
        assert_eq!(
            parse_rfc3339_ms("2023-11-15T00:13:20.123+02:00"),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            parse_rfc3339_ms("2023-11-14T21:13:20-01:00"),
            Some(1_700_000_000_000)
        );
        for bad in [
            "2023-11-14",
            "2023-13-14T22:13:20Z",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20+2",
            "2023-11-14T22:13:20.Z",
            "1h",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
        assert_eq!(rfc3339_ms(1_700_000_000_005), "2023-11-14T22:13:20.005Z");
    }

    #[test]
    fn unix_seconds_round_trip() {
        for secs in [-5, 0, 1, 1_700_000_000] {
            assert_eq!(unix_seconds(from_unix_seconds(secs)), secs);
        }
    }

    #[test]
    fn calendar_dates() {
        assert_eq!(utc_date(0), (1970, 1, 1));
        assert_eq!(utc_date(-1), (1969, 12, 31));
        assert_eq!(utc_date(1_700_000_000), (2023, 11, 14));
        assert_eq!(utc_date(4_102_444_800), (2100, 1, 1));
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn manual_clock_clones_share_time() {
        let a = ManualClock::at_unix(10);
        let b = a.clone();
        a.advance(Duration::from_secs(5));
        assert_eq!(b.unix_now(), 15);
        b.set(from_unix_seconds(100));
        assert_eq!(a.unix_now(), 100);
    }

    #[test]
    fn system_clock_is_after_2024() {
        assert!(SystemClock.unix_now() > 1_704_067_200);
    }
}
