//! Cron schedules of base backups (`spec.backup.schedule`): the five standard fields (minute,
//! hour, day of month, month, day of week; UTC) with `*`, lists, ranges and steps, and the
//! next time a schedule fires. Pure.
//!
//! Why not a crate: the cron crates of crates.io bring chrono for their calendar; the project
//! uses jiff, and five fields of sets are a few dozen lines.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schedule {schedule:?}: {reason}")]
pub struct ScheduleError {
    pub schedule: String,
    pub reason: String,
}

/// A parsed schedule: for each field, the set of values it matches (bit i = value i).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// Day of month and day of week both restricted: cron fires when either matches.
    day_or_weekday: bool,
}

const FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

fn parse_field(text: &str, name: &str, min: u32, max: u32) -> Result<u64, String> {
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{name}: bad step {s:?}"))?;
                (r, step)
            }
            None => (part, 1),
        };
        let num = |v: &str| -> Result<u32, String> {
            v.parse::<u32>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| format!("{name}: {v:?} is not a number from {min} to {max}"))
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (num(a)?, num(b)?);
            if a > b {
                return Err(format!("{name}: range {range:?} goes backwards"));
            }
            (a, b)
        } else {
            let a = num(range)?;
            // `5/15` means from 5 to the end, every 15.
            (a, if step > 1 { max } else { a })
        };
        let mut v = lo;
        while v <= hi {
            set |= 1 << v;
            v += step;
        }
    }
    Ok(set)
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let err = |reason: String| ScheduleError {
            schedule: text.to_string(),
            reason,
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), got {}",
                fields.len()
            )));
        }
        let mut sets = [0u64; 5];
        for (i, (name, min, max)) in FIELDS.iter().enumerate() {
            sets[i] = parse_field(fields[i], name, *min, *max).map_err(err)?;
        }
        // Sunday is 0 or 7.
        let weekdays = (sets[4] | (sets[4] >> 7)) & 0x7f;
        Ok(Schedule {
            minutes: sets[0],
            hours: sets[1],
            days: sets[2],
            months: sets[3],
            weekdays,
            day_or_weekday: fields[2] != "*" && fields[4] != "*",
        })
    }

    fn matches(&self, t: DateTime) -> bool {
        let bit = |set: u64, v: i8| set & (1 << v) != 0;
        self.matches_day(t) && bit(self.minutes, t.minute()) && bit(self.hours, t.hour())
    }

    /// The first minute strictly after `after_ms` (ms since the epoch) the schedule fires at,
    /// in ms; None when it never does within eight years (`0 0 30 2 *`).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let start = Timestamp::from_millisecond(after_ms).ok()?;
        let civil = start.to_zoned(TimeZone::UTC).datetime();
        // The next whole minute.
        let mut t = civil
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(jiff::Span::new().minutes(1))
            .ok()?;
        let limit = civil.checked_add(jiff::Span::new().years(8)).ok()?;
        while t < limit {
            if !self.matches_day(t) {
                // Skip to the next day's midnight.
                t = t
                    .date()
                    .checked_add(jiff::Span::new().days(1))
                    .ok()?
                    .to_datetime(jiff::civil::Time::midnight());
                continue;
            }
            if self.matches(t) {
                return Some(t.to_zoned(TimeZone::UTC).ok()?.timestamp().as_millisecond());
            }
            t = t.checked_add(jiff::Span::new().minutes(1)).ok()?;
        }
        None
    }

    fn matches_day(&self, t: DateTime) -> bool {
        let bit = |set: u64, v: i8| set & (1 << v) != 0;
        let day = bit(self.days, t.day());
        let weekday = bit(self.weekdays, t.weekday().to_sunday_zero_offset());
        let day_ok = if self.day_or_weekday {
            day || weekday
        } else {
            day && weekday
        };
        bit(self.months, t.month()) && day_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn next(schedule: &str, after: &str) -> String {
        let s = Schedule::parse(schedule).unwrap();
        Timestamp::from_millisecond(s.next_after(ms(after)).unwrap())
            .unwrap()
            .to_string()
    }

    #[test]
    fn next_fire_times() {
        assert_eq!(
            next("0 3 * * *", "2026-12-06T10:00:00Z"),
            "2026-12-07T03:00:00Z"
        );
        assert_eq!(
            next("0 3 * * *", "2026-12-06T02:59:59Z"),
            "2026-12-06T03:00:00Z"
        );
        // Strictly after: a schedule that fired at 03:00 fires next the following day.
        assert_eq!(
            next("0 3 * * *", "2026-12-06T03:00:00Z"),
            "2026-12-07T03:00:00Z"
        );
        assert_eq!(
            next("*/15 * * * *", "2026-12-06T10:07:00Z"),
            "2026-12-06T10:15:00Z"
        );
        assert_eq!(
            next("* * * * *", "2026-12-06T10:07:30Z"),
            "2026-12-06T10:08:00Z"
        );
        assert_eq!(
            next("30 1 1,15 * *", "2026-12-02T00:00:00Z"),
            "2026-12-15T01:30:00Z"
        );
        // 2026-12-06 is a Sunday: 0 and 7 both name it.
        assert_eq!(
            next("0 0 * * 0", "2026-12-01T00:00:00Z"),
            "2026-12-06T00:00:00Z"
        );
        assert_eq!(
            next("0 0 * * 7", "2026-12-01T00:00:00Z"),
            "2026-12-06T00:00:00Z"
        );
        assert_eq!(
            next("0 9 * * 1-5", "2026-12-05T10:00:00Z"),
            "2026-12-07T09:00:00Z"
        );
        // Day of month and day of week both set: either fires (cron's rule).
        assert_eq!(
            next("0 0 13 * 5", "2026-12-01T00:00:00Z"),
            "2026-12-04T00:00:00Z"
        );
        assert_eq!(
            next("0 0 1 1 *", "2026-12-06T00:00:00Z"),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(
            next("5/20 * * * *", "2026-12-06T10:06:00Z"),
            "2026-12-06T10:25:00Z"
        );
        assert_eq!(
            next("0 0 29 2 *", "2026-12-06T00:00:00Z"),
            "2028-02-29T00:00:00Z"
        );
        let never = Schedule::parse("0 0 31 2 *").unwrap();
        assert_eq!(never.next_after(ms("2026-12-06T00:00:00Z")), None);
    }

    #[test]
    fn bad_schedules_are_rejected_with_a_reason() {
        for (bad, why) in [
            ("0 3 * *", "expected 5 fields"),
            ("60 * * * *", "minute"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day of month"),
            ("* * * 13 *", "month"),
            ("* * * * 8", "day of week"),
            ("*/0 * * * *", "bad step"),
            ("5-1 * * * *", "backwards"),
            ("@daily", "expected 5 fields"),
            ("a * * * *", "minute"),
        ] {
            let e = Schedule::parse(bad).unwrap_err();
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
    }
}
