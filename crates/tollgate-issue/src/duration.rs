//! Durations in Cloudflare's spelling: `8760h`, `30m`, `24h`, `forever`; also `7d` and

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::records::TokenDuration;

/// The default service-token lifetime, `8760h` (one year), as Cloudflare's.
pub const DEFAULT_TOKEN_DURATION: TokenDuration = TokenDuration::Seconds(8760 * 3600);

/// A duration string could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: expected e.g. `8760h`, `30m`, `7d`, `1h30m` or `forever`")]
pub struct DurationError {
    input: String,
}

impl DurationError {
    fn new(input: &str) -> Self {
        Self {
            input: input.chars().take(32).collect(),
        }
    }
}

/// Parses `<number><unit>` groups (`d`, `h`, `m`, `s`), e.g. `8760h`, `30m`, `1h30m`, `0s`.
/// A bare `0` is zero.
///
/// combinations such as `1h30m`.
///
/// ```
/// use std::time::Duration;
/// use tollgate_issue::TokenDuration;
/// use tollgate_issue::parse_duration;
///
/// assert_eq!("8760h".parse::<TokenDuration>()?, TokenDuration::Seconds(365 * 86_400));
/// assert_eq!("forever".parse::<TokenDuration>()?, TokenDuration::Forever);
/// assert_eq!(TokenDuration::Seconds(86_400 * 7).to_string(), "168h");
/// assert_eq!(parse_duration("1h30m")?, Duration::from_secs(5400));
/// assert!("soon".parse::<TokenDuration>().is_err());
/// # Ok::<(), tollgate_issue::DurationError>(())
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let text = input.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(DurationError::new(input));
    }
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in text.chars() {
        if let Some(digit) = c.to_digit(10) {
            let n = number.unwrap_or(0);
            number = Some(
                n.checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(digit)))
                    .ok_or_else(|| DurationError::new(input))?,
            );
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(DurationError::new(input)),
        };
        let n = number.take().ok_or_else(|| DurationError::new(input))?;
        total = n
            .checked_mul(unit)
            .and_then(|secs| total.checked_add(secs))
            .ok_or_else(|| DurationError::new(input))?;
    }
    if number.is_some() {
        // Trailing digits without a unit.
        return Err(DurationError::new(input));
    }
    Ok(Duration::from_secs(total))
}

/// Formats a duration the way Cloudflare does: whole hours as `<n>h`, else minutes, else seconds.
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs != 0 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs != 0 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

impl FromStr for TokenDuration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("forever") {
            return Ok(TokenDuration::Forever);
        }
        let duration = parse_duration(s)?;
        if duration.is_zero() {
            return Err(DurationError::new(s));
        }
        Ok(TokenDuration::Seconds(duration.as_secs()))
    }
}

impl fmt::Display for TokenDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenDuration::Forever => f.write_str("forever"),
            TokenDuration::Seconds(secs) => {
                f.write_str(&format_duration(Duration::from_secs(*secs)))
            }
        }
    }
}

impl Default for TokenDuration {
    fn default() -> Self {
        DEFAULT_TOKEN_DURATION
    }
}

impl TokenDuration {
    /// The expiry of a token created or refreshed at `now` (`None` for `Forever`).
    pub fn expiry_from(self, now: i64) -> Option<i64> {
        match self {
            TokenDuration::Forever => None,
            TokenDuration::Seconds(secs) => {
                Some(now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudflare_spellings() {
        for (text, secs) in [
            ("8760h", 31_536_000),
            ("24h", 86_400),
            ("30m", 1_800),
            ("45s", 45),
            ("7d", 604_800),
            ("1h30m", 5_400),
            (" 2h ", 7_200),
        ] {
            assert_eq!(
                text.parse::<TokenDuration>(),
                Ok(TokenDuration::Seconds(secs)),
                "{text}"
            );
        }
        assert_eq!("Forever".parse(), Ok(TokenDuration::Forever));
    }

    #[test]
    fn nonsense_is_refused() {
        for text in ["", "h", "10", "10x", "-5h", "0s", "99999999999999999999h"] {
            assert!(text.parse::<TokenDuration>().is_err(), "{text}");
        }
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn display_round_trips() {
        for text in ["8760h", "30m", "45s", "forever"] {
            let parsed: TokenDuration = text.parse().expect("valid");
            assert_eq!(parsed.to_string(), text);
        }
        assert_eq!(TokenDuration::default().to_string(), "8760h");
        assert_eq!(TokenDuration::Seconds(10).expiry_from(5), Some(15));
        assert_eq!(TokenDuration::Forever.expiry_from(5), None);
    }
}
