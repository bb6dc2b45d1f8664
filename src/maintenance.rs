//! Maintenance windows: is a moment inside one, and when does the next one
//! open. Pure: the clock is passed in (tests and `--now` set it).

use std::fmt;

use crate::inventory::{Maintenance, Weekday, Window};

/// A moment in UTC, to the minute: days since 1970-01-01 and minute of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Moment {
    pub day: i64,
    pub minute: u32,
}

impl Moment {
    pub fn now() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Self {
            day: secs.div_euclid(86_400),
            minute: (secs.rem_euclid(86_400) / 60) as u32,
        }
    }

    /// `YYYY-MM-DDTHH:MM` (UTC; a trailing `Z` or seconds are accepted).
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad =
            || format!("`{s}` is not a time: write YYYY-MM-DDTHH:MM (UTC), like 2026-11-29T02:30");
        let s2 = s.trim_end_matches('Z');
        let (date, time) = s2.split_once('T').ok_or_else(bad)?;
        let d: Vec<&str> = date.split('-').collect();
        let t: Vec<&str> = time.split(':').collect();
        if d.len() != 3 || !(2..=3).contains(&t.len()) {
            return Err(bad());
        }
        let num = |x: &str| x.parse::<i64>().map_err(|_| bad());
        let (y, m, dd, hh, mm) = (num(d[0])?, num(d[1])?, num(d[2])?, num(t[0])?, num(t[1])?);
        if !(1..=12).contains(&m)
            || !(1..=31).contains(&dd)
            || !(0..24).contains(&hh)
            || !(0..60).contains(&mm)
        {
            return Err(bad());
        }
        Ok(Self {
            day: days_from_civil(y, m as u32, dd as u32),
            minute: (hh * 60 + mm) as u32,
        })
    }

    pub fn weekday(self) -> Weekday {
        // 1970-01-01 was a Thursday.
        const DAYS: [Weekday; 7] = [
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
        ];
        DAYS[self.day.rem_euclid(7) as usize]
    }
}

impl fmt::Display for Moment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = crate::plan::civil_from_days(self.day);
        write!(
            f,
            "{:?} {y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
            self.weekday(),
            self.minute / 60,
            self.minute % 60
        )
    }
}

fn minutes(hhmm: &str) -> u32 {
    let (h, m) = hhmm.split_once(':').unwrap_or(("0", "0"));
    h.parse::<u32>().unwrap_or(0) * 60 + m.parse::<u32>().unwrap_or(0)
}

/// The openings of `w` as (start, end) around `day`: a window whose end is
/// not after its start runs past midnight into the next day.
fn openings(w: &Window, day: i64) -> Option<(Moment, Moment)> {
    let start_day = Moment { day, minute: 0 };
    if !w.days.contains(&start_day.weekday()) {
        return None;
    }
    let (s, e) = (minutes(w.start.as_str()), minutes(w.end.as_str()));
    let end = if e > s {
        Moment { day, minute: e }
    } else {
        Moment {
            day: day + 1,
            minute: e,
        }
    };
    Some((Moment { day, minute: s }, end))
}

/// True when `now` falls inside a window.
pub fn inside(m: &Maintenance, now: Moment) -> bool {
    m.windows.iter().any(|w| {
        [now.day - 1, now.day]
            .into_iter()
            .filter_map(|d| openings(w, d))
            .any(|(s, e)| s <= now && now < e)
    })
}

/// When the next window opens after `now`, within two weeks.
pub fn next_opening(m: &Maintenance, now: Moment) -> Option<Moment> {
    (now.day..now.day + 15)
        .flat_map(|d| m.windows.iter().filter_map(move |w| openings(w, d)))
        .map(|(s, _)| s)
        .filter(|s| *s > now)
        .min()
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp as i64 + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maintenance(yaml: &str) -> Maintenance {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn parses_and_prints_moments() {
        let m = Moment::parse("2026-11-29T02:30").unwrap();
        assert_eq!(m.weekday(), Weekday::Sun);
        assert_eq!(m.to_string(), "Sun 2026-11-29 02:30 UTC");
        assert_eq!(Moment::parse("2026-11-29T02:30:00Z").unwrap(), m);
        assert!(Moment::parse("2026-13-01T00:00").is_err());
        assert!(Moment::parse("tomorrow").is_err());
    }

    #[test]
    fn inside_and_next_window() {
        let m =
            maintenance("windows:\n  - days: [sun]\n    start: \"02:00\"\n    end: \"04:00\"\n");
        let wed = Moment::parse("2026-11-25T20:00").unwrap();
        assert!(!inside(&m, wed));
        assert_eq!(
            next_opening(&m, wed).unwrap().to_string(),
            "Sun 2026-11-29 02:00 UTC"
        );
        assert!(inside(&m, Moment::parse("2026-11-29T02:00").unwrap()));
        assert!(inside(&m, Moment::parse("2026-11-29T03:59").unwrap()));
        assert!(!inside(&m, Moment::parse("2026-11-29T04:00").unwrap()));
        let after = Moment::parse("2026-11-29T05:00").unwrap();
        assert_eq!(
            next_opening(&m, after).unwrap().to_string(),
            "Sun 2026-12-06 02:00 UTC"
        );
    }

    #[test]
    fn windows_past_midnight() {
        let m =
            maintenance("windows:\n  - days: [sat]\n    start: \"23:00\"\n    end: \"01:00\"\n");
        assert!(inside(&m, Moment::parse("2026-11-28T23:30").unwrap()));
        assert!(
            inside(&m, Moment::parse("2026-11-29T00:30").unwrap()),
            "Sunday 00:30 is still Saturday's window"
        );
        assert!(!inside(&m, Moment::parse("2026-11-29T01:00").unwrap()));
    }

    #[test]
    fn no_windows_means_never() {
        let m = maintenance("windows: []\n");
        assert!(!inside(&m, Moment::now()));
        assert_eq!(next_opening(&m, Moment::now()), None);
    }
}
