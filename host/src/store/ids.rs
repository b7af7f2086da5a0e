//! Sync ids (KSUIDs) and the text timestamps baton stores.

use std::time::{SystemTime, UNIX_EPOCH};

const KSUID_EPOCH: u64 = 1_400_000_000;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A KSUID: 4 bytes of seconds since 2014-05-13, 16 random bytes, base62, 27 characters.
pub fn new_sync_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut bytes = [0u8; 20];
    bytes[..4].copy_from_slice(&((secs.saturating_sub(KSUID_EPOCH)) as u32).to_be_bytes());
    getrandom::fill(&mut bytes[4..]).expect("the OS random source is available");
    base62_27(bytes)
}

fn base62_27(mut n: [u8; 20]) -> String {
    let mut out = Vec::with_capacity(27);
    while n.iter().any(|&b| b != 0) {
        let mut rem = 0u32;
        for b in n.iter_mut() {
            let acc = (rem << 8) | *b as u32;
            *b = (acc / 62) as u8;
            rem = acc % 62;
        }
        out.push(BASE62[rem as usize]);
    }
    while out.len() < 27 {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8(out).expect("base62 is ASCII")
}

/// `2006-01-02 15:04:05.999999999` in UTC, trailing fraction zeros trimmed, as Go writes it.
pub fn db_time(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    let mut s = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    let nanos = dt.nanosecond();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s
}

/// `2006-01-02T15:04:05.000Z` in UTC, for logs and file names.
pub fn rfc3339(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ksuids_are_27_base62_chars_and_sort_by_time() {
        let id = new_sync_id();
        assert_eq!(id.len(), 27);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(base62_27([0; 20]), "000000000000000000000000000");
        assert_eq!(base62_27([255; 20]), "aWgEPTl1tmebfsQzFP4bxwgy80V");
    }

    #[test]
    fn times_use_gos_layout() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_824_683_500);
        assert_eq!(db_time(t), "2026-11-28 00:11:23.5");
        assert_eq!(
            db_time(UNIX_EPOCH + Duration::from_secs(1_795_824_683)),
            "2026-11-28 00:11:23"
        );
    }
}
