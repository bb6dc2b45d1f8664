//! systemd's calendar expressions (`OnCalendar=`, systemd.time(7)),
//! checked here so that a mistake in `app.schedule` is bad input before
//! any connection. The check follows the grammar systemd documents; the
//! server's own `systemd-analyze calendar` checks again before a timer is
//! written, for what this one lets through.

use super::values::printable;

/// The words systemd takes for the usual intervals.
const SHORTHANDS: [&str; 9] = [
    "minutely",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "quarterly",
    "semiannually",
    "yearly",
    "annually",
];

const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// `[WEEKDAYS] [[YEAR-]MONTH-DAY] [HOUR:MINUTE[:SECOND]] [TIME ZONE]`, or
/// one of the shorthands (`daily`).
pub(super) fn check(s: &str) -> Result<(), String> {
    let mut words: Vec<&str> = s.split_whitespace().collect();
    if words.len() > 1 && jiff::tz::TimeZone::get(words[words.len() - 1]).is_ok() {
        words.pop();
    }
    let fits = match words.as_slice() {
        [one] if SHORTHANDS.contains(&one.to_ascii_lowercase().as_str()) => true,
        [] => false,
        _ => fields(&words),
    };
    if fits && s.len() <= 200 {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a calendar expression systemd takes: write it like `*-*-* 03:00:00` (every day at 03:00), `Mon..Fri 09:00`, `*:0/15` (every 15 minutes) or `daily`",
            printable(s)
        ))
    }
}

/// The weekday, date and time words, each optional but in this order.
fn fields(words: &[&str]) -> bool {
    let mut rest = words;
    if let Some((first, more)) = rest.split_first() {
        if first.starts_with(|c: char| c.is_ascii_alphabetic()) {
            if !weekdays(first) {
                return false;
            }
            rest = more;
        }
    }
    if let Some((first, more)) = rest.split_first() {
        if !first.contains(':') {
            if !date(first) {
                return false;
            }
            rest = more;
        }
    }
    match rest {
        [] => true,
        [time_word] => time(time_word),
        _ => false,
    }
}

/// `Mon`, `Mon,Wed`, `Mon..Fri`: names or their first three letters.
fn weekdays(word: &str) -> bool {
    let day = |d: &str| {
        let d = d.to_ascii_lowercase();
        WEEKDAYS
            .iter()
            .any(|w| d == *w || (d.len() == 3 && w.starts_with(&d)))
    };
    word.split(',').all(|part| match part.split_once("..") {
        Some((from, to)) => day(from) && day(to),
        None => day(part),
    })
}

/// `MONTH-DAY` or `YEAR-MONTH-DAY`, the last `-` a `~` to count days
/// from the month's end.
fn date(word: &str) -> bool {
    let Some((head, day)) = word.rsplit_once('~').or_else(|| word.rsplit_once('-')) else {
        return false;
    };
    let day_ok = values(day, 1, 31, false);
    let head_ok = match head.split_once('-') {
        Some((year, month)) => values(year, 1970, 2199, false) && values(month, 1, 12, false),
        None => values(head, 1, 12, false),
    };
    day_ok && head_ok
}

/// `HOUR:MINUTE` or `HOUR:MINUTE:SECOND` (seconds may have a fraction).
fn time(word: &str) -> bool {
    let parts: Vec<&str> = word.split(':').collect();
    match parts.as_slice() {
        [hour, minute] => values(hour, 0, 23, false) && values(minute, 0, 59, false),
        [hour, minute, second] => {
            values(hour, 0, 23, false)
                && values(minute, 0, 59, false)
                && values(second, 0, 59, true)
        }
        _ => false,
    }
}

/// A comma-separated list of `*`, `N`, `N..M`, each with an optional
/// `/REPEAT`, every number in `min..=max`.
fn values(field: &str, min: u32, max: u32, fraction: bool) -> bool {
    let number = |n: &str| {
        let whole = match n.split_once('.') {
            Some((whole, frac)) if fraction => {
                (!frac.is_empty() && frac.len() <= 6 && frac.bytes().all(|b| b.is_ascii_digit()))
                    .then_some(whole)
            }
            Some(_) => None,
            None => Some(n),
        };
        whole
            .filter(|w| !w.is_empty() && w.len() <= 4 && w.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|w| w.parse::<u32>().ok())
            .filter(|v| (min..=max).contains(v))
    };
    !field.is_empty()
        && field.split(',').all(|part| {
            let (base, repeat) = match part.split_once('/') {
                Some((base, repeat)) => (base, Some(repeat)),
                None => (part, None),
            };
            let repeat_ok = repeat.is_none_or(|r| {
                r.bytes()
                    .all(|b| b.is_ascii_digit() || (fraction && b == b'.'))
                    && !r.trim_matches('0').trim_matches('.').is_empty()
                    && r.split('.').count() <= 2
                    && r.len() <= 8
            });
            let base_ok = base == "*"
                || match base.split_once("..") {
                    Some((from, to)) => {
                        matches!((number(from), number(to)), (Some(a), Some(b)) if a <= b)
                    }
                    None => number(base).is_some(),
                };
            repeat_ok && base_ok
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_systemd_takes_passes() {
        for good in [
            "daily",
            "hourly",
            "*-*-* 03:00:00",
            "*-*-* 03:00",
            "03:00",
            "*:*:0/10",
            "*:0/15",
            "Mon..Fri 09:00",
            "Mon,Wed,Fri *-*-* 12:30:00",
            "Sat",
            "2026-01-01",
            "*-02~03",
            "*-*-1,15 04:00 UTC",
            "*-*-* 03:00 Europe/Berlin",
            "monday 08:00",
            "*-*-* *:*:0/2.5",
        ] {
            assert!(check(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn what_it_would_refuse_is_bad_input() {
        for bad in [
            "",
            "sometimes",
            "every 5 minutes",
            "25:00",
            "*:60",
            "*-13-01",
            "*-*-32",
            "Funday 09:00",
            "03:00 Mon",
            "*:*:0/0",
            "9..1:00",
            "*-*-* 03:00 Nowhere/Atlantis",
            "0 3 * * *",
            "$(reboot)",
        ] {
            let e = check(bad).unwrap_err();
            assert!(e.contains("calendar expression"), "{bad}: {e}");
        }
    }
}
