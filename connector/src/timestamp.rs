//! ISO 8601 timestamps as AWS writes them (`2015-01-25T08:00:00Z`, fractions optional).

use crate::model::Timestamp;

pub fn parse_iso8601(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-');
    let (y, m, day): (i64, u32, u32) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (clock, offset_secs) = split_zone(time)?;
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut t = hms.split(':');
    let (h, mi, sec): (i64, i64, i64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(9).collect();
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32)
    };
    let days = days_from_civil(y, m, day);
    Some(Timestamp {
        seconds: days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs,
        nanos,
    })
}

fn split_zone(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix('Z') {
        return Some((clock, 0));
    }
    let idx = time.rfind(['+', '-'])?;
    let (clock, zone) = time.split_at(idx);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let (zh, zm) = zone[1..]
        .split_once(':')
        .unwrap_or((&zone[1..3.min(zone.len())], "00"));
    Some((
        clock,
        sign * (zh.parse::<i64>().ok()? * 3600 + zm.parse::<i64>().ok()? * 60),
    ))
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_aws_shapes() {
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z").unwrap().seconds, 0);
        let t = parse_iso8601("2015-08-30T12:36:00Z").unwrap();
        assert_eq!(t.seconds, 1_440_938_160);
        let f = parse_iso8601("2015-08-30T12:36:00.250Z").unwrap();
        assert_eq!((f.seconds, f.nanos), (1_440_938_160, 250_000_000));
        assert_eq!(
            parse_iso8601("2015-08-30T14:36:00+02:00").unwrap().seconds,
            1_440_938_160
        );
        assert!(parse_iso8601("yesterday").is_none());
        assert!(parse_iso8601("2015-13-30T12:36:00Z").is_none());
    }
}
