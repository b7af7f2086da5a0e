//! Interrupted syncs: a host killed with SIGKILL mid-sync continues from the last page it
//! committed, the finished file equals a clean run's, and the previous file is never
//! damaged along the way.

mod support;

use rusqlite::{Connection, OpenFlags};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use support::proxy::{FaultProxy, Faults};
use support::*;

fn checkpoint_of(file: &Path) -> std::path::PathBuf {
    file.with_file_name(format!(
        ".{}.checkpoint.db",
        file.file_name().unwrap().to_str().unwrap()
    ))
}

/// The progress the running host saved with its last committed page, read as another
/// process would (the writer may hold the file for a moment: then there is no answer).
fn saved_progress(file: &Path) -> Option<(String, Value)> {
    let conn =
        Connection::open_with_flags(checkpoint_of(file), OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    let (sync_id, token): (String, String) = conn
        .query_row(
            "select sync_id, sync_token from v1_sync_runs where ended_at is null and sync_token != ''",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok()?;
    Some((sync_id, serde_json::from_str(&token).ok()?))
}

/// Starts `host run` and kills it with SIGKILL once its saved progress satisfies `when`.
fn kill_when(
    endpoint: &str,
    file: &Path,
    env: &[(&'static str, String)],
    when: impl Fn(&Value) -> bool,
) -> (String, Value) {
    let mut child: Child = sync_command(endpoint, file, env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("host starts");
    let started = Instant::now();
    loop {
        if let Some((sync_id, progress)) = saved_progress(file) {
            if when(&progress) {
                child.kill().expect("SIGKILL");
                child.wait().unwrap();
                return (sync_id, progress);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the sync ended ({status}) before it could be killed");
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn phase(p: &Value) -> &str {
    p["phase"].as_str().unwrap_or_default()
}

#[test]
fn a_sync_killed_twice_continues_from_its_checkpoint_and_equals_a_clean_run() {
    let emu = Emulator::start(&["--scenario", "org"]);
    let env = org_env(&emu);
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.c1z");
    let out = sync_json(emu.endpoint(), &clean, &env);
    assert!(out.status.success(), "{}", text(&out).1);
    let clean_calls: u64 = serde_json::from_slice::<Value>(&out.stdout).unwrap()["aws_calls"]
        .as_u64()
        .unwrap();

    // A finished sync in the file: the previous one the interrupted syncs must not touch.
    let file = dir.path().join("sync.c1z");
    let out = sync_json(emu.endpoint(), &file, &env);
    assert!(out.status.success(), "{}", text(&out).1);
    let previous = std::fs::read(&file).unwrap();

    // Slow answers, so the host can be caught in the middle of each phase.
    let slow = FaultProxy::start(
        emu.endpoint(),
        Faults {
            latency: Duration::from_millis(150),
            ..Default::default()
        },
    );
    let (first_id, at) = kill_when(&slow.url(), &file, &env, |p| {
        phase(p) == "Resources" && p["resources"].as_object().is_some_and(|m| !m.is_empty())
    });
    eprintln!("killed while listing resources: {at}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        previous,
        "previous file intact"
    );

    // The second run continues the same sync, and is killed among the grants.
    let (second_id, at) = kill_when(&slow.url(), &file, &env, |p| {
        phase(p) == "Grants" && p["grants"].as_u64() > Some(0)
    });
    eprintln!("killed while listing grants: {at}");
    assert_eq!(second_id, first_id, "the same sync continues");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        previous,
        "previous file intact"
    );

    // The third run finishes it, reading only what was not stored yet. (Same endpoint:
    // the checkpoint is only continued against the same AWS.)
    let before_third = slow.seen().len();
    let out = sync_json(&slow.url(), &file, &env);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("continuing an interrupted sync"),
        "{stderr}"
    );
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["sync_id"], first_id.as_str());
    assert_eq!(summary["resumed"], true);
    let resumed_calls = summary["aws_calls"].as_u64().unwrap();
    // Users and IAM were stored before the kill and grant nothing: not read again. (Groups
    // may be: the connector lists them to read the members of those not done yet.)
    let read_again: Vec<String> = slow.seen()[before_third..]
        .iter()
        .map(|s| s.operation.clone())
        .filter(|op| {
            [
                "identitystore:ListUsers",
                "iam:GetAccountAuthorizationDetails",
            ]
            .contains(&op.as_str())
        })
        .collect();
    eprintln!(
        "resumed run: {resumed_calls} AWS calls (a clean run makes {clean_calls}): {:?}",
        summary["aws_calls_by_operation"]
    );
    assert!(
        resumed_calls < clean_calls,
        "{resumed_calls} >= {clean_calls}"
    );
    assert!(read_again.is_empty(), "read again: {read_again:?}");

    // The file now holds the previous sync and the finished one, equal to a clean run.
    let (a, b) = (C1z::open(&clean), C1z::open(&file));
    assert_eq!(b.sync_id, first_id);
    assert_eq!(a.resources(), b.resources());
    assert_eq!(a.entitlements(), b.entitlements());
    assert_eq!(a.grants(), b.grants());
    assert!(!b.grants().is_empty());
    assert_eq!(b.count("select count(*) from v1_sync_runs"), 2);
    assert_eq!(
        b.count("select count(*) from v1_sync_runs where ended_at is null or sync_token != ''"),
        0,
        "no unfinished sync is left in the file"
    );
    // Stats count what was stored, once: the same as the clean run's.
    let stats = |c: &C1z| -> String {
        c.conn
            .query_row(
                "select stats from v1_sync_runs where sync_id = ?1",
                [&c.sync_id],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(stats(&a), stats(&b));
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["clean.c1z", "sync.c1z"], "the checkpoint is gone");
}

#[test]
fn a_checkpoint_of_other_settings_is_not_continued() {
    let emu = Emulator::start(&["--scenario", "org"]);
    let env = org_env(&emu);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let slow = FaultProxy::start(
        emu.endpoint(),
        Faults {
            latency: Duration::from_millis(150),
            ..Default::default()
        },
    );
    let (killed_id, _) = kill_when(&slow.url(), &file, &env, |p| phase(p) == "Grants");
    assert!(!file.exists(), "nothing is written before a sync finishes");

    // Identity Center off: another configuration, so a new sync.
    let iam_only: Vec<_> = env
        .iter()
        .filter(|(k, _)| !k.ends_with("SSO_ENABLED"))
        .cloned()
        .collect();
    let out = sync_json(emu.endpoint(), &file, &iam_only);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the checkpoint is not continued")
            && stderr.contains("another component or with other settings"),
        "{stderr}"
    );
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_ne!(summary["sync_id"], killed_id.as_str());
    assert_eq!(summary["resumed"], false);
    assert!(summary["resources"].get("sso_user").is_none());
    assert!(!checkpoint_of(&file).exists());
}

#[test]
fn a_damaged_checkpoint_is_discarded_and_the_sync_starts_over() {
    let emu = Emulator::shared();
    let (key, secret) = emu.keys("reader");
    let env = vec![
        ("BATON_GLOBAL_ACCESS_KEY_ID", key),
        ("BATON_GLOBAL_SECRET_ACCESS_KEY", secret),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    std::fs::write(checkpoint_of(&file), b"not a database, not even close").unwrap();
    let out = sync_json(emu.endpoint(), &file, &env);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the checkpoint is not continued"),
        "{stderr}"
    );
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["resumed"], false);
    assert!(!C1z::open(&file).resources().is_empty());
    assert!(!checkpoint_of(&file).exists());
}

#[test]
fn a_listing_killed_between_its_pages_continues_at_the_next_page() {
    let wasm = test_component("misbehave");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let args = [
        "run",
        wasm.to_str().unwrap(),
        "-f",
        file.to_str().unwrap(),
        "-o",
        "json",
        "-s",
        "mode=slow",
        "-s",
        "count=20",
        "-s",
        "delay_ms=100",
    ];
    // The test connector calls no AWS API; the host still wants credentials to lend.
    let env = [
        ("AWS_ACCESS_KEY_ID", "unused"),
        ("AWS_SECRET_ACCESS_KEY", "unused"),
    ];
    let mut child = host_command(&args, &env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let at = loop {
        if let Some((_, p)) = saved_progress(&file) {
            if p["token"]
                .as_str()
                .is_some_and(|t| t.parse::<u32>().unwrap() >= 5)
            {
                child.kill().unwrap();
                child.wait().unwrap();
                break p;
            }
        }
        assert!(child.try_wait().unwrap().is_none(), "ended before the kill");
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(10));
    };
    eprintln!("killed at {at}");
    let next: u64 = at["token"].as_str().unwrap().parse().unwrap();
    assert_eq!(at["resources"]["thing"].as_u64(), Some(next));

    let out = host(&args, &env);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["resumed"], true);
    assert_eq!(summary["resources"]["thing"], 20);
    let things = C1z::open(&file).resources();
    let expected = set((0..20).map(|i| format!("thing:page-{i}")));
    assert_eq!(things, expected);
}
