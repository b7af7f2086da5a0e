//! Structured logs on stderr: one JSON object per line for log collectors, or a readable
//! console line. Callers pass fields, never secrets.

use std::io::Write;
use std::sync::OnceLock;
use std::time::SystemTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Console,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Chooses the format once, at start-up; console until then.
pub fn init(format: LogFormat) {
    let _ = FORMAT.set(format);
}

pub fn format() -> LogFormat {
    FORMAT.get().copied().unwrap_or_default()
}

/// Emits one log line.
pub fn emit(level: Level, message: &str, fields: &[(&str, &str)]) {
    let line = render(format(), SystemTime::now(), level, message, fields);
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

fn render(
    format: LogFormat,
    now: SystemTime,
    level: Level,
    message: &str,
    fields: &[(&str, &str)],
) -> String {
    let ts = crate::store::ids::rfc3339(now);
    match format {
        LogFormat::Json => {
            let mut map = serde_json::Map::new();
            map.insert("ts".into(), ts.into());
            map.insert("level".into(), level.name().into());
            map.insert("msg".into(), message.into());
            for (k, v) in fields {
                map.insert((*k).to_string(), (*v).into());
            }
            serde_json::Value::Object(map).to_string()
        }
        LogFormat::Console => {
            let mut line = format!("{ts} {:5} {message}", level.name().to_uppercase());
            for (k, v) in fields {
                if v.contains(' ') || v.is_empty() {
                    line.push_str(&format!(" {k}={v:?}"));
                } else {
                    line.push_str(&format!(" {k}={v}"));
                }
            }
            line
        }
    }
}

pub fn info(message: &str, fields: &[(&str, &str)]) {
    emit(Level::Info, message, fields);
}

pub fn warn(message: &str, fields: &[(&str, &str)]) {
    emit(Level::Warn, message, fields);
}

pub fn error(message: &str, fields: &[(&str, &str)]) {
    emit(Level::Error, message, fields);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn json_lines_carry_every_field() {
        let t = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let line = render(
            LogFormat::Json,
            t,
            Level::Warn,
            "sync failed",
            &[("connector", "aws"), ("error", "a \"quoted\" reason")],
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "warn");
        assert_eq!(v["msg"], "sync failed");
        assert_eq!(v["connector"], "aws");
        assert_eq!(v["error"], "a \"quoted\" reason");
        assert_eq!(v["ts"], "2027-01-15T08:00:00.000Z");
    }

    #[test]
    fn console_lines_quote_values_with_spaces() {
        let t = UNIX_EPOCH;
        let line = render(
            LogFormat::Console,
            t,
            Level::Info,
            "synced",
            &[("connector", "aws"), ("note", "two words")],
        );
        assert_eq!(
            line,
            "1970-01-01T00:00:00.000Z INFO  synced connector=aws note=\"two words\""
        );
    }
}
