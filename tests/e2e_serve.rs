//! `host serve` end to end: several connectors side by side — the AWS component against the
//! emulator, test components that misbehave, one built against an older contract — with
//! schedules, every upload sink, metrics, the authenticated API, and SIGTERM.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

const TOKEN: &str = "test-token-0123456789";

/// A running `host serve`, its log lines (JSON) and its address.
struct Serve {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    address: String,
}

impl Serve {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Serve {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_host"));
        cmd.arg("serve")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("host runs");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let stderr = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut serve = Serve {
            child,
            lines,
            address: String::new(),
        };
        let started = serve.wait_log(|v| v["msg"] == "serving", 30);
        serve.address = started["address"].as_str().unwrap().to_string();
        serve
    }

    fn log(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
            })
            .collect()
    }

    fn wait_log(&mut self, want: impl Fn(&Value) -> bool, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = self.log().into_iter().find(|v| want(v)) {
                return v;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "host serve exited ({status}):\n{}",
                    self.lines.lock().unwrap().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "the log did not show what the test waits for within {secs}s:\n{}",
                self.lines.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn request(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
        http(&self.address, method, path, token, body)
    }

    /// `name{labels}` → value, from `/metrics`.
    fn metrics(&self) -> BTreeMap<String, f64> {
        let (status, text) = self.request("GET", "/metrics", None, "");
        assert_eq!(status, 200);
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').expect("name value");
                (k.to_string(), v.parse().expect("a number"))
            })
            .collect()
    }

    fn metric(&self, key: &str) -> f64 {
        self.metrics().get(key).copied().unwrap_or(0.0)
    }

    /// Waits until `key` reaches at least `at_least`.
    fn wait_metric(&mut self, key: &str, at_least: f64, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.metric(key) < at_least {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "host serve exited ({status}):\n{}",
                    self.lines.lock().unwrap().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "{key} did not reach {at_least} within {secs}s; metrics:\n{:#?}\nlog:\n{}",
                self.metrics(),
                self.lines.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM, then the exit status within `secs`.
    fn terminate(&mut self, secs: u64) -> std::process::ExitStatus {
        // SAFETY: signalling our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "host serve did not stop within {secs}s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http(address: &str, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("host serve listens");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().expect("a status code");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A PUT the upstream received: path and body.
type Put = (String, Vec<u8>);

/// A small HTTP server of the test's own: answers GETs with `lines`, records PUT bodies,
/// and can be killed (its port then refuses connections).
struct Upstream {
    address: String,
    puts: Arc<Mutex<Vec<Put>>>,
    alive: Arc<AtomicBool>,
}

impl Upstream {
    fn start(lines: &'static str) -> Upstream {
        Upstream::start_at("127.0.0.1:0", lines)
    }

    fn start_at(address: &str, lines: &'static str) -> Upstream {
        let listener = TcpListener::bind(address).unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let puts = Arc::new(Mutex::new(Vec::new()));
        let alive = Arc::new(AtomicBool::new(true));
        let (p, a) = (puts.clone(), alive.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if !a.load(Ordering::SeqCst) {
                    break; // dropping the listener closes the port
                }
                let Ok(mut s) = stream else { continue };
                let mut reader = BufReader::new(s.try_clone().unwrap());
                let mut head = String::new();
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if head.is_empty() {
                        head = line;
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let reply = if head.starts_with("PUT ") {
                    let path = head.split(' ').nth(1).unwrap_or("").to_string();
                    p.lock().unwrap().push((path, body));
                    String::new()
                } else {
                    lines.to_string()
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            }
        });
        Upstream {
            address,
            puts,
            alive,
        }
    }

    fn kill(&self) {
        self.alive.store(false, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag and drops the listener.
        let _ = TcpStream::connect(&self.address);
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(&self.address).is_ok() {
            assert!(Instant::now() < deadline, "the upstream did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "c1z"));
    files.sort();
    files
}

#[test]
fn connectors_run_side_by_side_isolated_scheduled_and_delivered() {
    let emu = Emulator::start(&["--scenario", "iam"]);
    let (reader_key, reader_secret) = emu.keys("reader");
    let (admin_key, admin_secret) = emu.keys("admin");
    let misbehave = test_component("misbehave");
    let old = test_component("old_contract");
    let upstream = Upstream::start("alpha\nbeta\n");
    let put_sink = Upstream::start("");
    // A port nothing listens on yet: the "undelivered" connector's sink comes up later.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("host.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
log_format = "json"
api_token_env = "API_TOKEN"
shutdown_grace = "10s"
state_dir = "state"

[[connector]]
name = "aws"
component = "{aws}"
schedule = {{ every = "2s" }}
credentials = {{ source = "keys", access_key_id_env = "READER_KEY", secret_access_key_env = "READER_SECRET", endpoint_url = "{endpoint}" }}
upload = {{ sink = "s3", bucket = "{bucket}", prefix = "syncs", endpoint_url = "{endpoint}", credentials = {{ source = "keys", access_key_id_env = "ADMIN_KEY", secret_access_key_env = "ADMIN_SECRET" }} }}

[[connector]]
name = "things"
component = "{misbehave}"
credentials = {{ source = "none" }}
settings = {{ mode = "ok", upstream = "http://{upstream}/things" }}
schedule = {{ every = "1s", retry_backoff = "1s" }}
upload = {{ sink = "http", url = "http://{put}/upload/things.c1z?signature=secret", headers = {{ x-test = "1" }} }}

[[connector]]
name = "counted"
component = "{misbehave}"
credentials = {{ source = "none" }}
settings = {{ mode = "ok", count = 2 }}
schedule = {{ every = "1s" }}
upload = {{ sink = "dir", path = "out", keep = 2 }}

[[connector]]
name = "spinner"
component = "{misbehave}"
credentials = {{ source = "none" }}
settings = {{ mode = "spin" }}
schedule = {{ every = "1s", retry_backoff = "1s" }}
limits = {{ cpu_seconds = 1 }}

[[connector]]
name = "hoarder"
component = "{misbehave}"
credentials = {{ source = "none" }}
settings = {{ mode = "oom" }}
schedule = {{ every = "1s", retry_backoff = "1s" }}
limits = {{ memory_mb = 64 }}

[[connector]]
name = "stacker"
component = "{misbehave}"
credentials = {{ source = "none" }}
settings = {{ mode = "stack" }}
schedule = {{ every = "1s", retry_backoff = "1s" }}

[[connector]]
name = "old"
component = "{old}"
credentials = {{ source = "none" }}

[[connector]]
name = "narrowed"
component = "{misbehave}"
credentials = {{ source = "none" }}
settings = {{ mode = "ok", upstream = "http://{upstream}/things" }}
schedule = {{ every = "1h" }}
allowed_hosts = ["127.0.0.1:9"]

[[connector]]
name = "undelivered"
component = "{misbehave}"
credentials = {{ source = "none" }}
settings = {{ mode = "ok", count = 1 }}
schedule = {{ every = "2s" }}
upload = {{ sink = "http", url = "http://{closed}/late.c1z" }}
"#,
            aws = component().display(),
            endpoint = emu.endpoint(),
            bucket = emu.str(&["upload_bucket"]),
            misbehave = misbehave.display(),
            old = old.display(),
            upstream = upstream.address,
            put = put_sink.address,
            closed = closed,
        ),
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let env = [
        ("API_TOKEN", TOKEN),
        ("READER_KEY", reader_key.as_str()),
        ("READER_SECRET", reader_secret.as_str()),
        ("ADMIN_KEY", admin_key.as_str()),
        ("ADMIN_SECRET", admin_secret.as_str()),
        ("BATON_HOST_CACHE_DIR", cache.to_str().unwrap()),
    ];
    let mut serve = Serve::start(&["--config", config.to_str().unwrap()], &env);

    // Every connector that can run syncs on its schedule, again and again; the misbehaving
    // ones fail within their limits, are told apart, and are retried.
    for (key, at_least, secs) in [
        (
            r#"baton_syncs_total{connector="aws",result="success"}"#,
            2.0,
            120,
        ),
        (
            r#"baton_syncs_total{connector="things",result="success"}"#,
            2.0,
            60,
        ),
        (
            r#"baton_syncs_total{connector="counted",result="success"}"#,
            3.0,
            60,
        ),
        (
            r#"baton_errors_total{connector="spinner",kind="sandbox"}"#,
            2.0,
            60,
        ),
        (
            r#"baton_errors_total{connector="hoarder",kind="sandbox"}"#,
            2.0,
            60,
        ),
        (
            r#"baton_errors_total{connector="stacker",kind="sandbox"}"#,
            2.0,
            60,
        ),
    ] {
        serve.wait_metric(key, at_least, secs);
    }
    let log = serve.log();
    let failure = |name: &str| {
        log.iter()
            .find(|v| {
                v["msg"].as_str().unwrap_or("").starts_with("sync failed") && v["connector"] == name
            })
            .unwrap_or_else(|| panic!("no failure logged for {name}"))["error"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        failure("spinner").contains("exceeded its CPU budget"),
        "{}",
        failure("spinner")
    );
    assert!(
        failure("stacker").contains("overflowed its stack"),
        "{}",
        failure("stacker")
    );
    assert!(
        failure("hoarder").contains("exceeded the memory limit of 64 MiB"),
        "{}",
        failure("hoarder")
    );

    // The operator narrowed one connector's hosts: its upstream call is denied and counted.
    serve.wait_metric(
        r#"baton_denied_requests_total{connector="narrowed"}"#,
        1.0,
        30,
    );
    assert_eq!(
        serve.metric(r#"baton_syncs_total{connector="narrowed",result="success"}"#),
        0.0
    );

    // A sink that is down: uploads fail, the files wait in the outbox, and are delivered
    // once it is back.
    serve.wait_metric(
        r#"baton_uploads_total{connector="undelivered",result="failure"}"#,
        1.0,
        60,
    );
    assert!(serve.metric(r#"baton_pending_uploads{connector="undelivered"}"#) >= 1.0);
    assert_eq!(
        serve.metric(r#"baton_syncs_total{connector="undelivered",result="failure"}"#),
        0.0
    );
    let late_sink = Upstream::start_at(&closed, "");
    serve.wait_metric(
        r#"baton_uploads_total{connector="undelivered",result="success"}"#,
        2.0,
        60,
    );
    assert!(
        late_sink.puts.lock().unwrap().len() >= 2,
        "the waiting files were delivered"
    );

    // The component of another contract version is refused by name; the rest run on.
    let (status, ready) = serve.request("GET", "/readyz", None, "");
    assert_eq!(status, 200, "{ready}");
    let ready: Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["connectors"]["old"]["state"], "refused");
    let why = ready["connectors"]["old"]["last_error"].as_str().unwrap();
    assert!(
        why.contains("baton:connector/connector@0.0.9")
            && why.contains("baton:connector/connector@0.1.0"),
        "{why}"
    );
    assert_eq!(
        serve.metric(r#"baton_errors_total{connector="old",kind="host"}"#),
        1.0
    );
    assert_eq!(serve.request("GET", "/healthz", None, "").0, 200);

    // Killing one connector's upstream breaks that connector only.
    upstream.kill();
    let things_failed = serve.metric(r#"baton_syncs_total{connector="things",result="failure"}"#);
    let aws_ok = serve.metric(r#"baton_syncs_total{connector="aws",result="success"}"#);
    serve.wait_metric(
        r#"baton_syncs_total{connector="things",result="failure"}"#,
        things_failed + 1.0,
        30,
    );
    serve.wait_metric(
        r#"baton_syncs_total{connector="aws",result="success"}"#,
        aws_ok + 2.0,
        60,
    );
    assert_eq!(
        serve.metric(r#"baton_syncs_total{connector="aws",result="failure"}"#),
        0.0
    );
    assert_eq!(serve.metric(r#"baton_connector_up{connector="aws"}"#), 1.0);
    assert_eq!(
        serve.metric(r#"baton_connector_up{connector="things"}"#),
        0.0
    );

    // Metrics carry AWS calls per operation and the last sync's counts.
    let m = serve.metrics();
    assert!(
        m[r#"baton_aws_calls_total{connector="aws",operation="iam:GetAccountAuthorizationDetails"}"#]
            >= 3.0
    );
    assert!(m[r#"baton_resources{connector="aws",resource_type="iam_user"}"#] >= 1.0);
    assert_eq!(
        m[r#"baton_resources{connector="counted",resource_type="thing"}"#],
        2.0
    );
    assert_eq!(m[r#"baton_pending_uploads{connector="aws"}"#], 0.0);

    // Uploads: S3 (signed by the host, checked by the emulator), HTTP PUT, a directory.
    let uploads = control(&emu, "GET", "")["uploads"].clone();
    let keys: Vec<&String> = uploads.as_object().unwrap().keys().collect();
    assert!(keys.len() >= 3, "{uploads}");
    assert!(
        keys.iter()
            .all(|k| k.starts_with("syncs/aws-") && k.ends_with(".c1z")),
        "{uploads}"
    );
    assert!(m[r#"baton_uploads_total{connector="aws",result="success"}"#] >= 3.0);
    let puts = put_sink.puts.lock().unwrap().clone();
    assert!(puts.len() >= 2, "{} PUTs", puts.len());
    assert_eq!(puts[0].0, "/upload/things.c1z?signature=secret");
    assert_eq!(&puts[0].1[..5], b"C1ZF\0");
    let out = files_in(&dir.path().join("out"));
    assert_eq!(
        out.len(),
        2,
        "the directory sink keeps the newest 2: {out:?}"
    );
    let newest = C1z::open(out.last().unwrap());
    assert_eq!(
        newest.resources(),
        set(["thing:thing-0".to_string(), "thing:thing-1".to_string()])
    );

    // The API: a token is required; sync-now works; provisioning is refused where it is off.
    assert_eq!(
        serve
            .request("POST", "/v1/connectors/counted/sync", None, "")
            .0,
        401
    );
    assert_eq!(
        serve
            .request("POST", "/v1/connectors/counted/sync", Some("wrong"), "")
            .0,
        401
    );
    assert_eq!(
        serve
            .request("POST", "/v1/connectors/counted/sync", Some(TOKEN), "")
            .0,
        202
    );
    let (status, body) = serve.request(
        "POST",
        "/v1/connectors/aws/grant",
        Some(TOKEN),
        r#"{"entitlement":"group:arn:aws:iam::123456789012:group/admins:member","principal_type":"iam_user","principal":"x"}"#,
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("provisioning is off"), "{body}");
    assert_eq!(
        serve
            .request("POST", "/v1/connectors/nope/sync", Some(TOKEN), "")
            .0,
        404
    );
    let log = serve.log();
    let audits: Vec<&Value> = log.iter().filter(|v| v["msg"] == "audit").collect();
    assert!(audits
        .iter()
        .any(|v| v["outcome"] == "unauthorised" && v["connector"] == "counted"));
    assert!(audits
        .iter()
        .any(|v| v["connector"] == "aws" && v["outcome"].as_str().unwrap().starts_with("refused")));
    // Secrets never reach the log: not the API token, the keys, nor the pre-signed query.
    let all = serve.lines.lock().unwrap().join("\n");
    for secret in [
        TOKEN,
        reader_secret.as_str(),
        admin_secret.as_str(),
        "signature=secret",
    ] {
        assert!(!all.contains(secret), "the log shows a secret");
    }

    // SIGTERM: a clean, prompt stop.
    let status = serve.terminate(20);
    assert!(status.success(), "{status}");
    let log = serve.log();
    assert!(
        log.iter().any(|v| v["msg"] == "stopped"),
        "{:?}",
        log.last()
    );
}

/// A configuration file with one connector, written to `dir/host.toml`.
fn one_connector(dir: &Path, connector: &str) -> String {
    let config = dir.join("host.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nlog_format = \"json\"\napi_token_env = \"API_TOKEN\"\nstate_dir = \"state\"\n\n[[connector]]\n{connector}\n"
        ),
    )
    .unwrap();
    config.to_str().unwrap().to_string()
}

#[test]
fn sigterm_stops_a_sync_between_pages_and_keeps_the_previous_file() {
    let misbehave = test_component("misbehave");
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let env = [
        ("API_TOKEN", TOKEN),
        ("BATON_HOST_CACHE_DIR", cache.to_str().unwrap()),
    ];
    let connector = |pages: u32| {
        format!(
            "name = \"slow\"\ncomponent = \"{}\"\ncredentials = {{ source = \"none\" }}\nsettings = {{ mode = \"slow\", count = {pages}, delay_ms = 200 }}\nschedule = {{ every = \"1h\" }}\n",
            misbehave.display()
        )
    };
    // A first, short sync leaves a file.
    let config = one_connector(dir.path(), &connector(2));
    let mut serve = Serve::start(&["--config", &config], &env);
    serve.wait_metric(
        r#"baton_syncs_total{connector="slow",result="success"}"#,
        1.0,
        30,
    );
    assert!(serve.terminate(10).success());
    let file = dir.path().join("state/slow/sync.c1z");
    let before = std::fs::read(&file).expect("the first sync's file");
    assert_eq!(C1z::open(&file).resources().len(), 2);

    // A long one (50 pages of 200 ms) is interrupted by SIGTERM after a few pages.
    let config = one_connector(dir.path(), &connector(50));
    let mut serve = Serve::start(&["--config", &config], &env);
    serve.wait_log(|v| v["msg"] == "sync started", 30);
    std::thread::sleep(Duration::from_millis(1500));
    let asked = Instant::now();
    assert!(serve.terminate(10).success());
    // It stopped after the page in flight, not after the whole sync (10 s).
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    let log = serve.log();
    let failed = log
        .iter()
        .find(|v| v["msg"].as_str().unwrap_or("").starts_with("sync failed"))
        .expect("the interrupted sync is logged");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("interrupted: the host is shutting down"),
        "{failed}"
    );
    assert!(log.iter().any(|v| v["msg"] == "stopped"));
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "the previous file is unchanged"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("state/slow"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !["sync.c1z", "outbox", "uploads"].contains(&n.as_str()))
        .collect();
    assert_eq!(
        leftovers,
        [".sync.c1z.checkpoint.db"],
        "only the checkpoint is left"
    );

    // Started again, the host continues that sync where it stopped.
    let mut serve = Serve::start(&["--config", &config], &env);
    serve.wait_metric(
        r#"baton_syncs_total{connector="slow",result="success"}"#,
        1.0,
        30,
    );
    assert!(serve.terminate(10).success());
    let log = serve.log();
    let resumed = log
        .iter()
        .find(|v| v["msg"] == "continuing an interrupted sync")
        .expect("the sync is continued");
    assert_eq!(resumed["connector"], "slow");
    assert_eq!(C1z::open(&file).resources().len(), 50);
    assert!(!dir
        .path()
        .join("state/slow/.sync.c1z.checkpoint.db")
        .exists());
}

#[test]
fn the_guides_secret_alone_runs_the_aws_connector() {
    let emu = Emulator::start(&["--scenario", "iam"]);
    let (key, secret) = emu.keys("assumer");
    let role_arn = emu.str(&["connector_role_arn"]);
    let external_id = emu.str(&["external_id"]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let uploads = dir.path().join("uploads");
    let cache = dir.path().join("cache");
    // The Secret's keys (as in deploy/kubernetes), plus where the emulator and the
    // component are; nothing else.
    let env = [
        ("BATON_CLIENT_ID", "client-id"),
        ("BATON_CLIENT_SECRET", "client-secret-value"),
        ("BATON_ROLE_ARN", role_arn.as_str()),
        ("BATON_EXTERNAL_ID", external_id.as_str()),
        ("BATON_PROVISIONING", "true"),
        ("BATON_GLOBAL_AWS_ORGS_ENABLED", "false"),
        ("BATON_HOST_API_TOKEN", TOKEN),
        ("BATON_SYNC_INTERVAL", "1h"),
        ("BATON_GLOBAL_ACCESS_KEY_ID", key.as_str()),
        ("BATON_GLOBAL_SECRET_ACCESS_KEY", secret.as_str()),
        ("AWS_ENDPOINT_URL", emu.endpoint()),
        ("BATON_COMPONENT", component().to_str().unwrap()),
        ("BATON_STATE_DIR", state.to_str().unwrap()),
        ("BATON_UPLOAD_DIR", uploads.to_str().unwrap()),
        ("BATON_HOST_CACHE_DIR", cache.to_str().unwrap()),
        ("BATON_HOST_LISTEN", "127.0.0.1:0"),
    ];
    let mut serve = Serve::start(&[], &env);
    serve.wait_log(|v| v["msg"] == "uploaded", 120);
    let log = serve.log();
    assert!(
        log.iter().any(|v| v["level"] == "warn" && v["msg"].as_str().unwrap().contains("BATON_CLIENT_ID")),
        "the log says ConductorOne is not contacted"
    );
    let files = files_in(&uploads);
    assert_eq!(files.len(), 1);
    let c1z = C1z::open(&files[0]);
    assert!(c1z
        .resources()
        .contains(&format!("iam_user:{}", emu.user_arn("dave"))));

    // Sync now, through the API: a second upload follows.
    assert_eq!(
        serve
            .request("POST", "/v1/connectors/aws/sync", Some(TOKEN), "")
            .0,
        202
    );
    serve.wait_metric(
        r#"baton_uploads_total{connector="aws",result="success"}"#,
        2.0,
        60,
    );

    // Provisioning is on, but the role may only read: AWS refuses, and the answer and the
    // audit line say so.
    let entitlement = "group:arn:aws:iam::123456789012:group/empty:member";
    let body = format!(
        r#"{{"entitlement":"{entitlement}","principal_type":"iam_user","principal":"{}"}}"#,
        emu.user_arn("dave")
    );
    let (status, answer) = serve.request("POST", "/v1/connectors/aws/grant", Some(TOKEN), &body);
    assert_eq!(status, 502, "{answer}");
    assert!(
        answer.contains("access denied") && answer.contains("assumed-role/ConnectorRole/"),
        "{answer}"
    );
    assert_eq!(
        control(&emu, "GET", "")["iam_groups"]["empty"],
        serde_json::json!([])
    );
    let audit = serve
        .log()
        .into_iter()
        .find(|v| v["msg"] == "audit" && v["path"] == "/v1/connectors/aws/grant")
        .expect("an audit line");
    assert_eq!(audit["entitlement"], entitlement);
    assert!(
        audit["outcome"].as_str().unwrap().starts_with("failed"),
        "{audit}"
    );
    assert_eq!(
        serve.metric(
            r#"baton_provisioning_requests_total{connector="aws",action="grant",result="failure"}"#
        ),
        1.0
    );
    let all = serve.lines.lock().unwrap().join("\n");
    for s in [secret.as_str(), "client-secret-value", TOKEN] {
        assert!(!all.contains(s), "the log shows a secret");
    }
    assert!(serve.terminate(20).success());
}

#[test]
fn grants_and_revokes_through_the_api() {
    let emu = Emulator::start(&["--scenario", "iam"]);
    let (key, secret) = emu.keys("admin");
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let config = one_connector(
        dir.path(),
        &format!(
            "name = \"aws\"\ncomponent = \"{}\"\nprovisioning = true\nschedule = {{ every = \"1h\" }}\ncredentials = {{ source = \"keys\", access_key_id_env = \"KEY\", secret_access_key_env = \"SECRET\", endpoint_url = \"{}\" }}\n",
            component().display(),
            emu.endpoint()
        ),
    );
    let env = [
        ("API_TOKEN", TOKEN),
        ("KEY", key.as_str()),
        ("SECRET", secret.as_str()),
        ("BATON_HOST_CACHE_DIR", cache.to_str().unwrap()),
    ];
    let mut serve = Serve::start(&["--config", &config], &env);
    serve.wait_metric(
        r#"baton_syncs_total{connector="aws",result="success"}"#,
        1.0,
        120,
    );
    let members = || control(&emu, "GET", "")["iam_groups"]["empty"].clone();
    let dave = emu.user_arn("dave");
    let entitlement = "group:arn:aws:iam::123456789012:group/empty:member";
    let body = format!(
        r#"{{"entitlement":"{entitlement}","principal_type":"iam_user","principal":"{dave}"}}"#
    );

    // Bad requests are refused before anything runs.
    let (status, answer) = serve.request("POST", "/v1/connectors/aws/grant", Some(TOKEN), "{}");
    assert_eq!(status, 400, "{answer}");
    let (status, answer) =
        serve.request("POST", "/v1/connectors/aws/grant", Some(TOKEN), "not json");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        serve
            .request("POST", "/v1/connectors/aws/grant", None, &body)
            .0,
        401
    );
    assert_eq!(members(), serde_json::json!([]));

    let (status, answer) = serve.request("POST", "/v1/connectors/aws/grant", Some(TOKEN), &body);
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let grant_id = format!("{entitlement}:iam_user:{dave}");
    assert_eq!(answer["granted"], serde_json::json!([grant_id]));
    assert_eq!(members(), serde_json::json!(["dave"]));

    // The next sync sees the grant; revoking it by id removes the membership.
    assert_eq!(
        serve
            .request("POST", "/v1/connectors/aws/sync", Some(TOKEN), "")
            .0,
        202
    );
    serve.wait_metric(
        r#"baton_syncs_total{connector="aws",result="success"}"#,
        2.0,
        60,
    );
    let (status, answer) = serve.request(
        "POST",
        "/v1/connectors/aws/revoke",
        Some(TOKEN),
        &format!(r#"{{"grant":"{grant_id}"}}"#),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(members(), serde_json::json!([]));
    let (status, answer) = serve.request(
        "POST",
        "/v1/connectors/aws/revoke",
        Some(TOKEN),
        r#"{"grant":"no-such-grant"}"#,
    );
    assert_eq!(status, 404, "{answer}");
    assert!(answer.contains("not in"), "{answer}");

    let m = serve.metrics();
    assert_eq!(
        m[r#"baton_provisioning_requests_total{connector="aws",action="grant",result="success"}"#],
        1.0
    );
    assert_eq!(
        m[r#"baton_provisioning_requests_total{connector="aws",action="revoke",result="success"}"#],
        1.0
    );
    let audits: Vec<Value> = serve
        .log()
        .into_iter()
        .filter(|v| v["msg"] == "audit")
        .collect();
    assert!(audits
        .iter()
        .any(|v| v["principal"] == dave.as_str() && v["outcome"] == "success"));
    assert!(audits
        .iter()
        .any(|v| v["grant"] == grant_id.as_str() && v["outcome"] == "success"));
    assert!(serve.terminate(20).success());
}

#[test]
fn web_identity_credentials_are_exchanged_by_the_host() {
    let emu = Emulator::start(&["--scenario", "iam"]);
    let role_arn = emu.str(&["connector_role_arn"]);
    let dir = tempfile::tempdir().unwrap();
    // An OIDC token as Kubernetes projects it into the pod (the emulator does not check it).
    std::fs::write(dir.path().join("token"), "eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n").unwrap();
    let cache = dir.path().join("cache");
    let config = one_connector(
        dir.path(),
        &format!(
            "name = \"aws\"\ncomponent = \"{}\"\nschedule = {{ every = \"1h\" }}\ncredentials = {{ source = \"web-identity\", web_identity_role_arn = \"{role_arn}\", token_file = \"token\", endpoint_url = \"{}\" }}\n",
            component().display(),
            emu.endpoint()
        ),
    );
    let env = [
        ("API_TOKEN", TOKEN),
        ("BATON_HOST_CACHE_DIR", cache.to_str().unwrap()),
    ];
    let mut serve = Serve::start(&["--config", &config], &env);
    serve.wait_metric(
        r#"baton_syncs_total{connector="aws",result="success"}"#,
        1.0,
        120,
    );
    let c1z = C1z::open(&dir.path().join("state/aws/sync.c1z"));
    assert!(c1z
        .resources()
        .contains(&format!("iam_user:{}", emu.user_arn("dave"))));
    // The connector ran as the web identity's role session.
    let connected = serve.wait_log(|v| v["msg"] == "connected", 5);
    assert!(
        connected["identity"]
            .as_str()
            .unwrap()
            .contains("assumed-role/ConnectorRole/"),
        "{connected}"
    );
    assert!(serve.terminate(20).success());
}
