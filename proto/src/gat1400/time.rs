//! GA/T 1400 times: `yyyyMMddHHmmss` (the standard's form) or `yyyy-MM-dd HH:mm:ss` (seen in
//! the wild), optionally with milliseconds (`.SSS`) and an explicit offset (`Z`, `+08:00`,
//! `+0800`). A time without an offset is local time of the zone the device is configured
//! with; with neither, it cannot be placed and is refused rather than guessed.

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Why a time could not be read (the text itself is not personal data, but is not echoed
/// either: it may be arbitrary bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeError {
    /// Not one of the accepted layouts, or not a real calendar time.
    Malformed,
    /// No offset in the text and no zone configured for the device.
    NoZone,
    /// A local time that the zone skips (daylight-saving gap).
    Skipped,
}

impl TimeError {
    /// A lower-case sentence for the status answer.
    pub fn message(self, field: &str) -> String {
        match self {
            Self::Malformed => {
                format!("{field} is not a time of the form yyyyMMddHHmmss or yyyy-MM-dd HH:mm:ss")
            }
            Self::NoZone => {
                format!("{field} carries no zone and the device has no configured time_zone")
            }
            Self::Skipped => format!("{field} names a local time the zone skips"),
        }
    }
}

/// Unix milliseconds of a GA/T 1400 time; `zone` places times without an offset.
pub fn parse(text: &str, zone: Option<Tz>) -> Result<i64, TimeError> {
    let text = text.trim();
    let (local, offset) = split_offset(text)?;
    let naive = parse_local(local)?;
    let utc = match (offset, zone) {
        (Some(offset), _) => offset
            .from_local_datetime(&naive)
            .single()
            .ok_or(TimeError::Malformed)?
            .with_timezone(&Utc),
        (None, Some(zone)) => match zone.from_local_datetime(&naive) {
            LocalResult::Single(time) => time.with_timezone(&Utc),
            // An hour that happens twice: the first one, as most cameras' clocks would.
            LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
            LocalResult::None => return Err(TimeError::Skipped),
        },
        (None, None) => return Err(TimeError::NoZone),
    };
    Ok(utc.timestamp_millis())
}

/// `yyyyMMddHHmmss` of `unix_ms` in `zone` (the standard's form, as in `LocalTime`).
pub fn format(unix_ms: i64, zone: Tz) -> String {
    DateTime::<Utc>::from_timestamp_millis(unix_ms)
        .unwrap_or_default()
        .with_timezone(&zone)
        .format("%Y%m%d%H%M%S")
        .to_string()
}

/// The local part and the offset, if one is written.
fn split_offset(text: &str) -> Result<(&str, Option<FixedOffset>), TimeError> {
    if let Some(local) = text.strip_suffix(['Z', 'z']) {
        return Ok((
            local,
            Some(FixedOffset::east_opt(0).ok_or(TimeError::Malformed)?),
        ));
    }
    // An offset starts with the last '+' or a '-' after the date (dates hold '-' too).
    let sign_at = text
        .char_indices()
        .rev()
        .find(|&(at, c)| c == '+' || (c == '-' && at >= 10))
        .map(|(at, _)| at);
    let Some(at) = sign_at else {
        return Ok((text, None));
    };
    let (local, offset) = text.split_at(at);
    let digits: String = offset[1..].chars().filter(|&c| c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TimeError::Malformed);
    }
    let hours: i32 = digits[..2].parse().map_err(|_| TimeError::Malformed)?;
    let minutes: i32 = digits[2..].parse().map_err(|_| TimeError::Malformed)?;
    let seconds = (hours * 3600 + minutes * 60) * if offset.starts_with('-') { -1 } else { 1 };
    let offset = FixedOffset::east_opt(seconds).ok_or(TimeError::Malformed)?;
    Ok((local.trim_end(), Some(offset)))
}

/// `yyyyMMddHHmmss[.SSS]` or `yyyy-MM-dd[ T]HH:mm:ss[.SSS]`.
fn parse_local(text: &str) -> Result<NaiveDateTime, TimeError> {
    let (main, millis) = match text.split_once('.') {
        Some((main, fraction)) => (main, parse_millis(fraction)?),
        None => (text, 0),
    };
    let digits: String = main
        .chars()
        .filter(|c| !matches!(c, '-' | ':' | ' ' | 'T' | 't'))
        .collect();
    let separated = digits.len() != main.len();
    if separated && !is_separated_layout(main) {
        return Err(TimeError::Malformed);
    }
    if digits.len() != 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TimeError::Malformed);
    }
    let field = |range: std::ops::Range<usize>| digits[range].parse::<u32>().ok();
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        field(0..4),
        field(4..6),
        field(6..8),
        field(8..10),
        field(10..12),
        field(12..14),
    ) else {
        return Err(TimeError::Malformed);
    };
    NaiveDate::from_ymd_opt(year as i32, month, day)
        .and_then(|date| date.and_hms_milli_opt(hour, minute, second, millis))
        .ok_or(TimeError::Malformed)
}

/// `yyyy-MM-dd HH:mm:ss` exactly (or with `T`), so `2026-1202 08:1500` is not taken.
fn is_separated_layout(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 19
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && matches!(bytes[10], b' ' | b'T' | b't')
        && bytes[13] == b':'
        && bytes[16] == b':'
}

fn parse_millis(fraction: &str) -> Result<u32, TimeError> {
    if fraction.is_empty() || fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TimeError::Malformed);
    }
    let value: u32 = fraction.parse().map_err(|_| TimeError::Malformed)?;
    Ok(value * 10u32.pow(3 - fraction.len() as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;
    /// 2026-12-02 08:15:30 in Shanghai (UTC+8).
    const AT_MS: i64 = 1_796_170_530_000;

    #[test]
    fn both_layouts_seen_in_the_wild_read_alike() {
        for text in [
            "20261202081530",
            "2026-12-02 08:15:30",
            "2026-12-02T08:15:30",
            " 20261202081530 ",
        ] {
            assert_eq!(parse(text, Some(SHANGHAI)), Ok(AT_MS), "{text}");
        }
        assert_eq!(parse("20261202081530.250", Some(SHANGHAI)), Ok(AT_MS + 250));
        assert_eq!(
            parse("2026-12-02 08:15:30.5", Some(SHANGHAI)),
            Ok(AT_MS + 500)
        );
    }

    #[test]
    fn an_explicit_offset_wins_over_the_zone() {
        assert_eq!(parse("2026-12-02T00:15:30Z", None), Ok(AT_MS));
        assert_eq!(parse("2026-12-02 08:15:30+08:00", None), Ok(AT_MS));
        assert_eq!(
            parse("20261202081530+0800", Some(chrono_tz::UTC)),
            Ok(AT_MS)
        );
        assert_eq!(parse("2026-12-01T19:15:30-05:00", None), Ok(AT_MS));
    }

    #[test]
    fn times_that_cannot_be_placed_are_refused() {
        assert_eq!(parse("20261202081530", None), Err(TimeError::NoZone));
        for bad in [
            "",
            "2026120208153",
            "202612020815300",
            "20261302081530",
            "20261232081530",
            "20261202246030",
            "2026-1202 08:15:30",
            "yesterday",
            "2026-12-02 08:15:30+8",
            "20261202081530.1234",
            "２０２６１２０２０８１５３０",
        ] {
            assert_eq!(
                parse(bad, Some(SHANGHAI)),
                Err(TimeError::Malformed),
                "{bad:?}"
            );
        }
        // 02:30 on the day New York springs forward does not exist there.
        assert_eq!(
            parse("20260308023000", Some(chrono_tz::America::New_York)),
            Err(TimeError::Skipped)
        );
    }

    #[test]
    fn format_is_the_standard_layout() {
        assert_eq!(format(AT_MS, SHANGHAI), "20261202081530");
    }

    proptest! {
        #[test]
        fn format_then_parse_is_the_second(seconds in 0i64..4_102_444_800) {
            let ms = seconds * 1000;
            prop_assert_eq!(parse(&format(ms, SHANGHAI), Some(SHANGHAI)), Ok(ms));
        }

        #[test]
        fn any_text_is_read_or_refused_never_a_panic(text in "\\PC{0,40}") {
            let _ = parse(&text, Some(SHANGHAI));
        }
    }
}
