//! When a connector syncs next: every interval with random jitter, or at the times of a
//! five-field cron expression (UTC); after failures, no sooner than an exponential backoff.

use anyhow::{bail, Context, Result};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    Every {
        interval: Duration,
        jitter: Duration,
    },
    Cron(Cron),
}

impl Schedule {
    /// The next start after `now`; `unit` in [0, 1) picks the jitter.
    pub fn next(&self, now: SystemTime, unit: f64) -> SystemTime {
        match self {
            Schedule::Every { interval, jitter } => now + *interval + jitter.mul_f64(unit),
            Schedule::Cron(c) => c.next_after(now),
        }
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Every { interval, jitter } if jitter.is_zero() => {
                write!(f, "every {}s", interval.as_secs())
            }
            Schedule::Every { interval, jitter } => write!(
                f,
                "every {}s + up to {}s jitter",
                interval.as_secs(),
                jitter.as_secs()
            ),
            Schedule::Cron(c) => write!(f, "cron \"{}\" (UTC)", c.expr),
        }
    }
}

/// Delay before retrying after `failures` consecutive failures: `base`, doubling, capped.
pub fn backoff(base: Duration, failures: u32, cap: Duration) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    base.saturating_mul(1u32 << (failures - 1).min(16)).min(cap)
}

/// `90s`, `15m`, `6h`, `1d`, `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let t = text.trim();
    if t.is_empty() {
        bail!("empty duration; write e.g. 30s, 15m, 6h or 1d");
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => bail!(
                "{text:?} is not a duration: unknown unit {c:?}; write e.g. 30s, 15m, 6h or 1d"
            ),
        };
        let n: u64 = number.parse().map_err(|_| {
            anyhow::anyhow!(
                "{text:?} is not a duration: a number must precede {c:?}; write e.g. 30s, 15m, 6h or 1d"
            )
        })?;
        total = total.saturating_add(n.saturating_mul(unit));
        number.clear();
    }
    if !number.is_empty() {
        bail!("{text:?} is not a duration: {number} needs a unit (s, m, h or d)");
    }
    Ok(Duration::from_secs(total))
}

/// A standard five-field cron expression: minute, hour, day of month, month, day of week.
#[derive(Clone, Debug, PartialEq)]
pub struct Cron {
    expr: String,
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    /// Cron's rule: when both day fields are restricted, either may match.
    days_restricted: bool,
    weekdays_restricted: bool,
}

fn field(text: &str, name: &str, min: u32, max: u32) -> Result<Vec<bool>> {
    let mut set = vec![false; max as usize + 1];
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().ok().filter(|s| *s > 0).with_context(|| {
                    format!("cron {name} field {text:?}: step {s:?} must be a positive number")
                })?;
                (r, step)
            }
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (number(a, name, text)?, number(b, name, text)?)
        } else {
            let n = number(range, name, text)?;
            (n, if part.contains('/') { max } else { n })
        };
        if lo < min || hi > max || lo > hi {
            bail!("cron {name} field {text:?}: values must lie in {min}-{max}");
        }
        let mut v = lo;
        while v <= hi {
            set[v as usize] = true;
            v += step;
        }
    }
    Ok(set)
}

fn number(text: &str, name: &str, field: &str) -> Result<u32> {
    text.parse()
        .with_context(|| format!("cron {name} field {field:?}: {text:?} is not a number"))
}

impl Cron {
    pub fn parse(expr: &str) -> Result<Cron> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        if fields.len() != 5 {
            bail!("cron expression {expr:?} must have five fields: minute hour day-of-month month day-of-week (UTC)");
        }
        let mut weekdays = field(fields[4], "day-of-week", 0, 7)?;
        // 7 is Sunday too.
        if weekdays[7] {
            weekdays[0] = true;
        }
        weekdays.truncate(7);
        Ok(Cron {
            expr: fields.join(" "),
            minutes: field(fields[0], "minute", 0, 59)?,
            hours: field(fields[1], "hour", 0, 23)?,
            days: field(fields[2], "day-of-month", 1, 31)?,
            months: field(fields[3], "month", 1, 12)?,
            weekdays,
            days_restricted: fields[2] != "*",
            weekdays_restricted: fields[4] != "*",
        })
    }

    fn day_matches(&self, t: &OffsetDateTime) -> bool {
        let dom = self.days[t.day() as usize];
        let dow = self.weekdays[t.weekday().number_days_from_sunday() as usize];
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => dom || dow,
            _ => dom && dow,
        }
    }

    /// The first matching minute strictly after `now`.
    pub fn next_after(&self, now: SystemTime) -> SystemTime {
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut t = OffsetDateTime::from_unix_timestamp((secs / 60 * 60 + 60) as i64)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        // Five years covers every satisfiable expression (29 February included).
        let limit = t + time::Duration::days(5 * 366);
        while t < limit {
            if !self.months[u8::from(t.month()) as usize] || !self.day_matches(&t) {
                let next_day = t.date().next_day().unwrap_or(t.date());
                t = next_day.midnight().assume_utc();
                continue;
            }
            if !self.hours[t.hour() as usize] {
                t = t.replace_minute(0).unwrap_or(t) + time::Duration::hours(1);
                continue;
            }
            if !self.minutes[t.minute() as usize] {
                t += time::Duration::minutes(1);
                continue;
            }
            return UNIX_EPOCH + Duration::from_secs(t.unix_timestamp() as u64);
        }
        // Unsatisfiable (e.g. 30 February): never.
        UNIX_EPOCH + Duration::from_secs(limit.unix_timestamp() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> SystemTime {
        let t =
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
        UNIX_EPOCH + Duration::from_secs(t.unix_timestamp() as u64)
    }

    #[test]
    fn cron_finds_the_next_matching_minute() {
        let c = Cron::parse("*/15 * * * *").unwrap();
        assert_eq!(
            c.next_after(at("2026-11-28T10:07:30Z")),
            at("2026-11-28T10:15:00Z")
        );
        assert_eq!(
            c.next_after(at("2026-11-28T10:15:00Z")),
            at("2026-11-28T10:30:00Z")
        );
        let c = Cron::parse("0 2 * * 1-5").unwrap();
        // Saturday 28 November 2026 → Monday 30 November, 02:00.
        assert_eq!(
            c.next_after(at("2026-11-28T10:00:00Z")),
            at("2026-11-30T02:00:00Z")
        );
        let c = Cron::parse("30 6 1 1,7 *").unwrap();
        assert_eq!(
            c.next_after(at("2026-11-28T10:00:00Z")),
            at("2027-01-01T06:30:00Z")
        );
        let c = Cron::parse("0 0 29 2 *").unwrap();
        assert_eq!(
            c.next_after(at("2026-11-28T10:00:00Z")),
            at("2028-02-29T00:00:00Z")
        );
    }

    #[test]
    fn cron_day_fields_combine_like_cron() {
        // The 1st of the month or any Sunday (7 is Sunday too).
        let c = Cron::parse("0 0 1 * 7").unwrap();
        assert_eq!(
            c.next_after(at("2026-11-28T10:00:00Z")),
            at("2026-11-29T00:00:00Z")
        );
        assert_eq!(
            c.next_after(at("2026-11-29T10:00:00Z")),
            at("2026-12-01T00:00:00Z")
        );
    }

    #[test]
    fn bad_cron_expressions_say_what_is_wrong() {
        for (expr, says) in [
            ("* * * *", "five fields"),
            ("60 * * * *", "minute field"),
            ("*/0 * * * *", "positive"),
            ("x * * * *", "not a number"),
            ("* * * 13 *", "1-12"),
        ] {
            let e = format!("{:#}", Cron::parse(expr).unwrap_err());
            assert!(e.contains(says), "{expr}: {e}");
        }
    }

    #[test]
    fn intervals_add_bounded_jitter() {
        let s = Schedule::Every {
            interval: Duration::from_secs(3600),
            jitter: Duration::from_secs(600),
        };
        let now = at("2026-11-28T10:00:00Z");
        assert_eq!(s.next(now, 0.0), at("2026-11-28T11:00:00Z"));
        assert_eq!(s.next(now, 0.5), at("2026-11-28T11:05:00Z"));
    }

    #[test]
    fn durations_and_backoff() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert!(format!("{:#}", parse_duration("10").unwrap_err()).contains("needs a unit"));
        assert!(format!("{:#}", parse_duration("5w").unwrap_err()).contains("unknown unit"));
        let base = Duration::from_secs(60);
        let cap = Duration::from_secs(3600);
        assert_eq!(backoff(base, 0, cap), Duration::ZERO);
        assert_eq!(backoff(base, 1, cap), base);
        assert_eq!(backoff(base, 3, cap), Duration::from_secs(240));
        assert_eq!(backoff(base, 40, cap), cap);
    }
}
