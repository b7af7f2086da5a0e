//! Shared parts of the end-to-end tests: the freshly built component, the AWS emulator,
//! the `host` binary, and an independent reader of `.c1z` files.

#![allow(dead_code)]

pub mod proxy;

use rusqlite::Connection;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// `cargo build --release --target wasm32-wasip2` in `dir`; a build failure fails the tests.
fn build_wasm(dir: &Path, what: &str) {
    let out = Command::new(env!("CARGO"))
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "building {what} failed (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds `aws_connector.wasm` once per test binary.
pub fn component() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        let guest = repo().join("guest");
        build_wasm(&guest, "the component");
        let wasm = guest.join("target/wasm32-wasip2/release/aws_connector.wasm");
        assert!(
            wasm.exists(),
            "the build did not produce {}",
            wasm.display()
        );
        wasm
    })
}

/// The test components of `tests/components` (misbehave.wasm, old_contract.wasm), built
/// once per test binary.
pub fn test_component(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let root = repo().join("tests/components");
        build_wasm(&root, "the test components");
        root.join("target/wasm32-wasip2/release")
    });
    let wasm = dir.join(format!("{name}.wasm"));
    assert!(
        wasm.exists(),
        "the build did not produce {}",
        wasm.display()
    );
    wasm
}

/// moto on a free loopback port, seeded over its HTTP API, signature checks on.
pub struct Emulator {
    pub info: Value,
    child: Mutex<Child>,
    _stdin: Mutex<ChildStdin>,
}

impl Emulator {
    pub fn start(args: &[&str]) -> Emulator {
        let mut child = Command::new("python3")
            .arg(repo().join("tests/emulator/emulator.py"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs (install the emulator with `pip install -r tests/emulator/requirements.txt`)");
        let stdin = child.stdin.take().expect("piped stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("the emulator prints its details");
        let info: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            let _ = child.kill();
            panic!("the emulator did not start ({e}); run tests/emulator/emulator.py by hand to see why: {line:?}")
        });
        Emulator {
            info,
            child: Mutex::new(child),
            _stdin: Mutex::new(stdin),
        }
    }

    /// One emulator shared by the read-only tests of this binary.
    pub fn shared() -> &'static Emulator {
        static EMU: OnceLock<Emulator> = OnceLock::new();
        EMU.get_or_init(|| Emulator::start(&["--scenario", "iam"]))
    }

    /// An Organization with Identity Center, shared by the read-only tests of this binary.
    pub fn shared_org() -> &'static Emulator {
        static EMU: OnceLock<Emulator> = OnceLock::new();
        EMU.get_or_init(|| Emulator::start(&["--scenario", "org"]))
    }

    pub fn str(&self, path: &[&str]) -> String {
        let mut v = &self.info;
        for p in path {
            v = &v[*p];
        }
        v.as_str()
            .unwrap_or_else(|| panic!("no {path:?} in the emulator's details"))
            .to_string()
    }

    pub fn endpoint(&self) -> &str {
        self.info["endpoint"].as_str().expect("endpoint")
    }

    pub fn keys(&self, who: &str) -> (String, String) {
        let k = &self.info[who];
        (
            k["access_key_id"].as_str().expect("key id").to_string(),
            k["secret_access_key"].as_str().expect("secret").to_string(),
        )
    }

    pub fn user_arn(&self, name: &str) -> String {
        self.info["users"][name]
            .as_str()
            .unwrap_or_else(|| panic!("no user {name}"))
            .to_string()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The reader's keys with Organizations and Identity Center on.
pub fn org_env(emu: &Emulator) -> Vec<(&'static str, String)> {
    let (key, secret) = emu.keys("reader");
    vec![
        ("BATON_GLOBAL_ACCESS_KEY_ID", key),
        ("BATON_GLOBAL_SECRET_ACCESS_KEY", secret),
        ("BATON_GLOBAL_AWS_ORGS_ENABLED", "true".into()),
        ("BATON_GLOBAL_AWS_SSO_ENABLED", "true".into()),
    ]
}

/// Runs the real `host` binary with a clean environment plus `env`.
pub fn host(args: &[&str], env: &[(&str, &str)]) -> Output {
    host_command(args, env).output().expect("host runs")
}

/// The real `host` binary with a clean environment plus `env`, not started yet.
pub fn host_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    let cache = CACHE.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BATON_HOST_CACHE_DIR", cache.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// `host run` of the AWS component against `endpoint` into `file`, summary as JSON.
pub fn sync_json(endpoint: &str, file: &Path, env: &[(&str, String)]) -> Output {
    sync_command(endpoint, file, env)
        .output()
        .expect("host runs")
}

/// The `host run` of [`sync_json`], not started yet.
pub fn sync_command(endpoint: &str, file: &Path, env: &[(&str, String)]) -> Command {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    host_command(
        &[
            "run",
            component().to_str().unwrap(),
            "-f",
            file.to_str().unwrap(),
            "--endpoint-url",
            endpoint,
            "-o",
            "json",
        ],
        &env,
    )
}

pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Reads a `.c1z` without the host's code: magic, zstd, SQLite.
pub struct C1z {
    pub conn: Connection,
    pub sync_id: String,
    _dir: tempfile::TempDir,
}

impl C1z {
    /// The newest finished sync of the file.
    pub fn open(path: &Path) -> C1z {
        C1z::open_nth(path, 0)
    }

    /// The `nth` newest finished sync of the file (0 is the newest).
    pub fn open_nth(path: &Path, nth: usize) -> C1z {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .expect("c1z exists")
            .read_to_end(&mut bytes)
            .expect("readable");
        assert_eq!(&bytes[..5], b"C1ZF\0", "c1z v1 magic");
        let declared = zstd::zstd_safe::get_frame_content_size(&bytes[5..]).expect("a zstd frame");
        assert!(
            declared.is_some(),
            "the zstd frame declares its content size"
        );
        let db = zstd::decode_all(&bytes[5..]).expect("zstd decodes");
        assert_eq!(Some(db.len() as u64), declared);
        assert_eq!(&db[..16], b"SQLite format 3\0");
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("c1z.db");
        std::fs::write(&file, db).expect("write db");
        let conn = Connection::open(&file).expect("sqlite opens");
        let sync_id: String = conn
            .query_row(
                "select sync_id from v1_sync_runs where sync_type = 'full' and ended_at is not null and grants_backfilled = 1
                 order by ended_at desc, sync_id desc limit 1 offset ?1",
                [nth as i64],
                |r| r.get(0),
            )
            .expect("a finished full sync");
        C1z {
            conn,
            sync_id,
            _dir: dir,
        }
    }

    pub fn ids(&self, sql: &str) -> BTreeSet<String> {
        let mut stmt = self.conn.prepare(sql).expect("query");
        stmt.query_map([&self.sync_id], |r| r.get::<_, String>(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("strings")
    }

    pub fn resources(&self) -> BTreeSet<String> {
        self.ids("select external_id from v1_resources where sync_id = ?1")
    }

    pub fn entitlements(&self) -> BTreeSet<String> {
        self.ids("select external_id from v1_entitlements where sync_id = ?1")
    }

    pub fn grants(&self) -> BTreeSet<String> {
        self.ids("select external_id from v1_grants where sync_id = ?1")
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.conn.query_row(sql, [], |r| r.get(0)).expect("count")
    }
}

pub fn set(items: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    items.into_iter().collect()
}

/// A bare HTTP/1.1 exchange with the emulator's control endpoint (loopback only).
pub fn control(emu: &Emulator, method: &str, body: &str) -> Value {
    use std::io::Write;
    let url = emu.info["control"].as_str().expect("control endpoint");
    let authority = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(authority).expect("control endpoint reachable");
    write!(
        stream,
        "{method} / HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("request written");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    let (_, json) = response.split_once("\r\n\r\n").expect("an HTTP response");
    serde_json::from_str(json).expect("JSON from the control endpoint")
}
