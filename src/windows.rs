//! Maintenance windows: is a moment inside one, and when does the next one
//! open. Windows are wall-clock times in the inventory's time zone (jiff,
//! with the tz database): a window keeps its local hours across daylight
//! saving. Pure: the clock is passed in (tests and `--now` set it).

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

use crate::inventory::{Maintenance, Weekday, Window};

/// A restart asked for outside every maintenance window (exit 5).
#[derive(Debug, thiserror::Error)]
#[error("{now} is outside every maintenance window; {}. Use --force to restart anyway.", match .next {
    Some(t) => format!("the next window opens {t}"),
    None => "the inventory declares no maintenance window".to_string(),
})]
pub struct OutsideWindow {
    pub now: String,
    pub next: Option<String>,
}

/// `YYYY-MM-DDTHH:MM` in UTC (a trailing `Z` or seconds are accepted), or
/// an RFC 3339 time with its offset. An impossible date is an error.
pub fn parse_moment(s: &str) -> Result<Timestamp, String> {
    let bad = |e: jiff::Error| {
        format!("`{s}` is not a time ({e}): write YYYY-MM-DDTHH:MM (UTC), like 2026-11-29T02:30")
    };
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let local: DateTime = s.trim_end_matches('Z').parse().map_err(bad)?;
    local
        .to_zoned_datetime(TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(bad)
}

/// The inventory's time zone; UTC when it names none.
pub fn time_zone(m: &Maintenance) -> TimeZone {
    TimeZone::get(m.time_zone.as_str()).unwrap_or(TimeZone::UTC)
}

/// `Sun 2026-11-29 02:00 CET`: a moment in the windows' zone.
pub fn show(m: &Maintenance, t: Timestamp) -> String {
    t.to_zoned_datetime(time_zone(m))
        .strftime("%a %Y-%m-%d %H:%M %Z")
        .to_string()
}

fn weekday(d: Date) -> Weekday {
    match d.weekday() {
        jiff::civil::Weekday::Monday => Weekday::Mon,
        jiff::civil::Weekday::Tuesday => Weekday::Tue,
        jiff::civil::Weekday::Wednesday => Weekday::Wed,
        jiff::civil::Weekday::Thursday => Weekday::Thu,
        jiff::civil::Weekday::Friday => Weekday::Fri,
        jiff::civil::Weekday::Saturday => Weekday::Sat,
        jiff::civil::Weekday::Sunday => Weekday::Sun,
    }
}

fn clock(hhmm: &str) -> Time {
    let (h, m) = hhmm.split_once(':').unwrap_or(("0", "0"));
    Time::constant(h.parse().unwrap_or(0), m.parse().unwrap_or(0), 0, 0)
}

/// The opening of `w` that starts on local date `day`, as (start, end): a
/// window whose end is not after its start runs into the next day.
fn opening(w: &Window, day: Date, tz: &TimeZone) -> Option<(ZonedDateTime, ZonedDateTime)> {
    if !w.days.contains(&weekday(day)) {
        return None;
    }
    let (s, e) = (clock(w.start.as_str()), clock(w.end.as_str()));
    let end_day = if e > s { day } else { day.tomorrow().ok()? };
    // A wall time skipped or repeated by daylight saving resolves the way
    // RFC 5545 and Temporal do ("compatible").
    let start = day.to_datetime(s).to_zoned_datetime(tz.clone()).ok()?;
    let end = end_day.to_datetime(e).to_zoned_datetime(tz.clone()).ok()?;
    Some((start, end))
}

/// True when `now` falls inside a window.
pub fn inside(m: &Maintenance, now: Timestamp) -> bool {
    let tz = time_zone(m);
    let today = now.to_zoned_datetime(tz.clone()).date();
    let days = [today.yesterday().ok(), Some(today)];
    m.windows.iter().any(|w| {
        days.iter()
            .flatten()
            .filter_map(|d| opening(w, *d, &tz))
            .any(|(s, e)| s.timestamp() <= now && now < e.timestamp())
    })
}

/// When the next window opens after `now`, within two weeks.
pub fn next_opening(m: &Maintenance, now: Timestamp) -> Option<Timestamp> {
    let tz = time_zone(m);
    let today = now.to_zoned_datetime(tz.clone()).date();
    (0..15)
        .filter_map(|n| today.checked_add(jiff::Span::new().days(n)).ok())
        .flat_map(|d| {
            let tz = tz.clone();
            m.windows.iter().filter_map(move |w| opening(w, d, &tz))
        })
        .map(|(s, _)| s.timestamp())
        .filter(|s| *s > now)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maintenance(yaml: &str) -> Maintenance {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn at(s: &str) -> Timestamp {
        parse_moment(s).unwrap()
    }

    #[test]
    fn parses_and_prints_moments() {
        let m = maintenance("windows: []\n");
        let t = at("2026-11-29T02:30");
        assert_eq!(show(&m, t), "Sun 2026-11-29 02:30 UTC");
        assert_eq!(at("2026-11-29T02:30:00Z"), t);
        assert_eq!(at("2026-11-29T03:30:00+01:00"), t);
        assert!(parse_moment("2026-13-01T00:00").is_err());
        assert!(parse_moment("tomorrow").is_err());
    }

    #[test]
    fn the_31st_of_february_is_refused() {
        let e = parse_moment("2026-02-31T00:00").unwrap_err();
        assert!(e.contains("2026-02-31"), "{e}");
        assert!(
            parse_moment("2026-02-29T00:00").is_err(),
            "2026 is no leap year"
        );
        assert!(parse_moment("2028-02-29T00:00").is_ok());
    }

    #[test]
    fn inside_and_next_window() {
        let m =
            maintenance("windows:\n  - days: [sun]\n    start: \"02:00\"\n    end: \"04:00\"\n");
        let wed = at("2026-11-25T20:00");
        assert!(!inside(&m, wed));
        assert_eq!(
            show(&m, next_opening(&m, wed).unwrap()),
            "Sun 2026-11-29 02:00 UTC"
        );
        assert!(inside(&m, at("2026-11-29T02:00")));
        assert!(inside(&m, at("2026-11-29T03:59")));
        assert!(!inside(&m, at("2026-11-29T04:00")));
        let after = at("2026-11-29T05:00");
        assert_eq!(
            show(&m, next_opening(&m, after).unwrap()),
            "Sun 2026-12-06 02:00 UTC"
        );
    }

    #[test]
    fn windows_past_midnight() {
        let m =
            maintenance("windows:\n  - days: [sat]\n    start: \"23:00\"\n    end: \"01:00\"\n");
        assert!(inside(&m, at("2026-11-28T23:30")));
        assert!(
            inside(&m, at("2026-11-29T00:30")),
            "Sunday 00:30 is still Saturday's window"
        );
        assert!(!inside(&m, at("2026-11-29T01:00")));
    }

    #[test]
    fn windows_keep_local_hours_in_their_time_zone() {
        let m = maintenance(
            "time_zone: Europe/Berlin\nwindows:\n  - days: [sun]\n    start: \"02:00\"\n    end: \"04:00\"\n",
        );
        // Winter: Berlin is UTC+1, so 02:00 local is 01:00 UTC.
        assert!(inside(&m, at("2026-11-29T01:00")));
        assert!(!inside(&m, at("2026-11-29T03:00")));
        assert_eq!(
            show(&m, next_opening(&m, at("2026-11-25T12:00")).unwrap()),
            "Sun 2026-11-29 02:00 CET"
        );
        // Summer: UTC+2, 02:00 local is 00:00 UTC.
        assert!(inside(&m, at("2026-07-05T00:30")));
        assert!(!inside(&m, at("2026-07-05T02:30")));
    }

    #[test]
    fn daylight_saving_edges() {
        let m = maintenance(
            "time_zone: Europe/Berlin\nwindows:\n  - days: [sun]\n    start: \"02:00\"\n    end: \"04:00\"\n",
        );
        // 2026-03-29: clocks jump from 02:00 to 03:00 local (01:00 UTC).
        // The skipped 02:00 opens at 03:00 CEST; the window is one hour.
        let spring = next_opening(&m, at("2026-03-28T12:00")).unwrap();
        assert_eq!(spring, at("2026-03-29T01:00"));
        assert!(inside(&m, at("2026-03-29T01:30")));
        assert!(
            !inside(&m, at("2026-03-29T02:00")),
            "04:00 CEST is 02:00 UTC"
        );
        // 2026-10-25: clocks fall back from 03:00 to 02:00 local; 02:00
        // happens twice and the window opens at the first (00:00 UTC) and
        // lasts three hours, to 04:00 CET (03:00 UTC).
        let autumn = next_opening(&m, at("2026-10-24T12:00")).unwrap();
        assert_eq!(autumn, at("2026-10-25T00:00"));
        assert!(inside(&m, at("2026-10-25T02:30")));
        assert!(!inside(&m, at("2026-10-25T03:00")));
    }

    #[test]
    fn no_windows_means_never() {
        let m = maintenance("windows: []\n");
        assert!(!inside(&m, Timestamp::now()));
        assert_eq!(next_opening(&m, Timestamp::now()), None);
    }
}
