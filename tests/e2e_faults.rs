//! Faults between the connector and AWS: throttling in each protocol's shape, server
//! errors, dropped connections, truncated bodies, latency, expired session credentials,
//! and a service that stays down. The result must not change, or the sync must stop
//! cleanly and leave the previous file as it was.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};
use support::proxy::{FaultProxy, Faults};
use support::*;

fn same_sync(a: &Path, b: &Path) {
    let (a, b) = (C1z::open(a), C1z::open(b));
    assert_eq!(a.resources(), b.resources());
    assert_eq!(a.entitlements(), b.entitlements());
    assert_eq!(a.grants(), b.grants());
    assert!(!a.grants().is_empty());
}

/// A clean sync, then one through a proxy with `faults`: both must hold the same data.
fn same_as_clean_through(
    emu: &Emulator,
    env: &[(&'static str, String)],
    faults: Faults,
) -> FaultProxy {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.c1z");
    let out = sync_json(emu.endpoint(), &clean, env);
    assert!(out.status.success(), "{}", text(&out).1);
    let proxy = FaultProxy::start(emu.endpoint(), faults);
    let file = dir.path().join("faulty.c1z");
    let out = sync_json(&proxy.url(), &file, env);
    assert!(out.status.success(), "{}", text(&out).1);
    same_sync(&clean, &file);
    proxy
}

#[test]
fn throttling_errors_drops_and_truncation_do_not_change_the_sync() {
    let emu = Emulator::start(&["--scenario", "org"]);
    let dir = tempfile::tempdir().unwrap();
    let env = org_env(&emu);
    let clean = dir.path().join("clean.c1z");
    let out = sync_json(emu.endpoint(), &clean, &env);
    assert!(out.status.success(), "{}", text(&out).1);

    // Two seeds: between them every kind of fault happens at least once.
    let mut proxies = Vec::new();
    for seed in [2, 4] {
        let proxy = FaultProxy::start(
            emu.endpoint(),
            Faults {
                seed,
                throttle: 0.20,
                server_error: 0.05,
                drop: 0.02,
                truncate: 0.02,
                latency: Duration::from_millis(5),
                throttle_first_of_each: true,
                retry_after_secs: 1,
                ..Default::default()
            },
        );
        let faulty = dir.path().join(format!("faulty-{seed}.c1z"));
        let out = sync_json(&proxy.url(), &faulty, &env);
        assert!(out.status.success(), "seed {seed}: {}", text(&out).1);
        same_sync(&clean, &faulty);
        eprintln!(
            "seed {seed}: {} throttled, {} 500, {} 503, {} dropped, {} truncated, {} passed",
            proxy.count("throttle"),
            proxy.count("500"),
            proxy.count("503"),
            proxy.count("drop"),
            proxy.count("truncate"),
            proxy.count("none")
        );
        proxies.push(proxy);
    }
    for fault in ["throttle", "500", "503", "drop", "truncate"] {
        assert!(
            proxies.iter().map(|p| p.count(fault)).sum::<usize>() > 0,
            "no {fault} was injected"
        );
    }
    let seen: Vec<_> = proxies.iter().flat_map(|p| p.seen()).collect();
    // Every protocol's throttling shape was answered, and retried.
    for service in ["sts:", "iam:", "identitystore:", "sso:", "organizations:"] {
        assert!(
            seen.iter()
                .any(|s| s.operation.starts_with(service) && s.fault == "throttle"),
            "no throttled {service} call"
        );
    }
}

#[test]
fn a_service_that_stays_down_stops_the_sync_and_keeps_the_previous_file() {
    let emu = Emulator::start(&["--scenario", "iam"]);
    let (key, secret) = emu.keys("reader");
    let env = vec![
        ("BATON_GLOBAL_ACCESS_KEY_ID", key),
        ("BATON_GLOBAL_SECRET_ACCESS_KEY", secret),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let out = sync_json(emu.endpoint(), &file, &env);
    assert!(out.status.success(), "{}", text(&out).1);
    let before = std::fs::read(&file).unwrap();

    // The connection check passes; from then on every call answers 503.
    let proxy = FaultProxy::start(
        emu.endpoint(),
        Faults {
            fail_after: Some(1),
            ..Default::default()
        },
    );
    let started = Instant::now();
    let out = sync_json(&proxy.url(), &file, &env);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("iam:GetAccountAuthorizationDetails") && stderr.contains("503"),
        "{stderr}"
    );
    assert!(stderr.contains("is unchanged"), "{stderr}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "the previous file is untouched"
    );
    // Beside it only the checkpoint, which the next run continues.
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, [".sync.c1z.checkpoint.db", "sync.c1z"]);
    assert!(
        stderr.contains(".sync.c1z.checkpoint.db") && stderr.contains("continues"),
        "{stderr}"
    );
    // Bounded: the connector's attempts per call times the host's attempts per page.
    let tries = proxy.count("503");
    eprintln!(
        "stopped after {tries} answers of 503 in {:?}: {stderr}",
        started.elapsed()
    );
    assert!((6..=24).contains(&tries), "{tries} attempts");
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "{:?}",
        started.elapsed()
    );

    // The service is back: the next run continues the stopped sync and finishes it.
    proxy.set_faults(Faults::default());
    let out = sync_json(&proxy.url(), &file, &env);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["resumed"], true, "{stderr}");
    let (old, new) = (C1z::open_nth(&file, 1), C1z::open(&file));
    assert_ne!(old.sync_id, new.sync_id);
    assert_eq!(old.resources(), new.resources());
    assert_eq!(old.grants(), new.grants());
}

#[test]
fn expired_session_credentials_are_refreshed_once_and_assume_role_is_retried() {
    let emu = Emulator::start(&["--scenario", "iam"]);
    let (key, secret) = emu.keys("assumer");
    let env = vec![
        ("BATON_GLOBAL_ACCESS_KEY_ID", key),
        ("BATON_GLOBAL_SECRET_ACCESS_KEY", secret),
        ("BATON_ROLE_ARN", emu.str(&["connector_role_arn"])),
        ("BATON_EXTERNAL_ID", emu.str(&["external_id"])),
    ];
    let proxy = same_as_clean_through(
        &emu,
        &env,
        Faults {
            expire_first_token: true,
            // The host's own AssumeRole is throttled too, and must retry.
            throttle_first: vec![("AssumeRole", 2)],
            ..Default::default()
        },
    );
    let assume = |fault: &str| {
        proxy
            .seen()
            .iter()
            .filter(|s| s.operation == "sts:AssumeRole" && s.fault == fault)
            .count()
    };
    assert_eq!(
        assume("throttle"),
        2,
        "the host retried its throttled AssumeRole"
    );
    assert_eq!(
        assume("none"),
        2,
        "the session was assumed again after AWS called it expired"
    );
    assert!(proxy.count("expired") >= 1);
}

#[test]
fn sessions_running_out_during_a_long_sync_are_renewed_before_they_expire() {
    // Sessions of 303 s: the host renews a session 300 s before it ends, so each one is
    // used for about 3 s here; slow answers make the sync outlast several of them. The
    // proxy refuses a token once its session is over. (IAM pages of two items: many calls.)
    let emu = Emulator::start(&["--scenario", "iam", "--max-page", "2"]);
    let (key, secret) = emu.keys("assumer");
    let env = vec![
        ("BATON_GLOBAL_ACCESS_KEY_ID", key),
        ("BATON_GLOBAL_SECRET_ACCESS_KEY", secret),
        ("BATON_ROLE_ARN", emu.str(&["connector_role_arn"])),
        ("BATON_EXTERNAL_ID", emu.str(&["external_id"])),
    ];
    let latency = Duration::from_millis(600);
    let proxy = same_as_clean_through(
        &emu,
        &env,
        Faults {
            session_seconds: Some(303),
            latency,
            ..Default::default()
        },
    );
    let seen = proxy.seen();
    let sessions = seen
        .iter()
        .filter(|s| s.operation == "sts:AssumeRole")
        .count();
    let mut used: std::collections::HashMap<&str, (Instant, Instant)> = Default::default();
    for s in seen.iter().filter(|s| s.operation != "sts:AssumeRole") {
        let token = s.token.as_deref().expect("session credentials");
        let span = used.entry(token).or_insert((s.arrived, s.arrived));
        span.1 = s.arrived;
    }
    let longest = used.values().map(|(a, b)| *b - *a).max().unwrap();
    eprintln!(
        "{} calls, {sessions} sessions, longest use of one session {longest:?}",
        seen.len()
    );
    assert_eq!(
        proxy.count("expired"),
        0,
        "no call carried a finished session"
    );
    assert!(sessions >= 3, "{sessions} sessions");
    assert_eq!(used.len(), sessions, "every session was used");
    // Renewed when 300 s were left: 3 s after it began, plus one call in flight.
    assert!(
        longest <= Duration::from_secs(3) + latency * 2,
        "{longest:?}"
    );
}

#[test]
fn a_call_throttled_through_all_its_attempts_is_read_again_on_the_page_retry() {
    // Every group's membership call is throttled six times: the connector gives up on all
    // three, reports the first, and the host's page retry must read the group again rather
    // than be handed the same failure (or, worse, no members).
    let emu = Emulator::start(&["--scenario", "org"]);
    let env = org_env(&emu);
    let proxy = same_as_clean_through(
        &emu,
        &env,
        Faults {
            throttle_first: vec![("ListGroupMemberships", 18)],
            ..Default::default()
        },
    );
    let calls = proxy
        .seen()
        .iter()
        .filter(|s| s.operation == "identitystore:ListGroupMemberships")
        .count();
    assert_eq!(calls, 18 + 3, "each group read again once, and only it");
}

#[test]
fn a_throttled_batch_waits_together() {
    let emu = Emulator::start(&["--scenario", "org"]);
    let env = org_env(&emu);
    let proxy = FaultProxy::start(
        emu.endpoint(),
        Faults {
            throttle_first: vec![("ListAccountAssignments", 2)],
            retry_after_secs: 1,
            ..Default::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let out = sync_json(&proxy.url(), &dir.path().join("sync.c1z"), &env);
    assert!(out.status.success(), "{}", text(&out).1);
    let calls: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.operation == "sso:ListAccountAssignments")
        .collect();
    let first_throttle = calls
        .iter()
        .filter(|s| s.fault == "throttle")
        .map(|s| s.answered)
        .min()
        .expect("a throttled call");
    // Nothing of the batch is sent again until the second AWS asked for has passed...
    let hammering: Vec<_> = calls
        .iter()
        .filter(|s| {
            s.arrived > first_throttle + Duration::from_millis(100)
                && s.arrived < first_throttle + Duration::from_millis(950)
        })
        .collect();
    assert!(hammering.is_empty(), "{hammering:?}");
    // ...and then the throttled requests are retried and succeed.
    let retried = calls
        .iter()
        .filter(|s| s.arrived >= first_throttle + Duration::from_millis(950))
        .count();
    assert!(retried >= 2, "{calls:?}");
}
