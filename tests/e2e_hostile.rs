//! Hostile components: our test connector told to loop forever, allocate without bound,
//! overflow its stack, trap, call a host it may not, return a huge or a malformed record,
//! or wait on an upstream that answers one byte at a time. The host must stop or refuse
//! each within its limits, say which limit was hit, and write nothing.
//! (That the other connectors of a serving host are unaffected: tests/e2e_serve.rs.)

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};
use support::*;

/// `host run` of the test connector in `mode`, with extra flags; returns (ok, stderr).
fn run(mode: &str, flags: &[&str]) -> (bool, String, Duration) {
    let wasm = test_component("misbehave");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let setting = format!("mode={mode}");
    let mut args = vec![
        "run",
        wasm.to_str().unwrap(),
        "-f",
        file.to_str().unwrap(),
        "-s",
        setting.as_str(),
    ];
    args.extend(flags);
    let started = Instant::now();
    // The test connector calls no AWS API; the host still wants credentials to lend.
    let out = host(
        &args,
        &[
            ("AWS_ACCESS_KEY_ID", "unused"),
            ("AWS_SECRET_ACCESS_KEY", "unused"),
        ],
    );
    let elapsed = started.elapsed();
    assert!(
        out.status.success() || !file.exists(),
        "a failed sync wrote {}",
        file.display()
    );
    (out.status.success(), text(&out).1, elapsed)
}

fn refused(mode: &str, flags: &[&str], says: &str) -> Duration {
    let (ok, stderr, elapsed) = run(mode, flags);
    assert!(!ok, "{mode}: the host accepted it");
    assert!(stderr.contains(says), "{mode}: {stderr}");
    assert!(stderr.contains("is unchanged"), "{mode}: {stderr}");
    elapsed
}

#[test]
fn a_well_behaved_test_connector_syncs() {
    let (ok, stderr, _) = run("ok", &["-s", "count=3"]);
    assert!(ok, "{stderr}");
}

#[test]
fn a_busy_loop_is_stopped_by_the_cpu_budget() {
    let t = refused(
        "spin",
        &["--cpu-seconds", "1"],
        "list-resources exceeded its CPU budget",
    );
    assert!(t < Duration::from_secs(30), "{t:?}");
}

#[test]
fn unbounded_allocation_is_stopped_by_the_memory_cap() {
    refused(
        "oom",
        &["--max-memory-mb", "64"],
        "list-resources exceeded the memory limit of 64 MiB",
    );
}

#[test]
fn unbounded_recursion_is_stopped_by_the_stack_limit() {
    let t = refused("stack", &[], "list-resources overflowed its stack");
    assert!(t < Duration::from_secs(30), "{t:?}");
}

#[test]
fn a_trap_discards_the_instance_and_says_so() {
    refused("trap", &[], "list-resources trapped");
}

#[test]
fn a_call_to_a_host_not_on_the_allow_list_is_denied() {
    refused(
        "forbidden",
        &[],
        "denied outbound requests (not on the allow-list): GET http://forbidden.example.com/",
    );
}

#[test]
fn a_huge_record_is_refused() {
    refused(
        "huge",
        &["-s", "count=4194304"],
        "the host accepts at most 1024 KiB per record",
    );
}

#[test]
fn a_malformed_record_is_refused_by_name() {
    refused(
        "malformed",
        &[],
        "the connector returned a malformed resource: resource thing:bad has a bad profile: profile is not JSON",
    );
}

#[test]
fn an_upstream_trickling_one_byte_at_a_time_is_cut_off_by_the_call_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
                for _ in 0..1000 {
                    if s.write_all(b"a").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        }
    });
    let upstream = format!("upstream=http://{address}/slow");
    let t = refused(
        "ok",
        &["-s", &upstream, "--call-timeout-secs", "2"],
        "list-resources exceeded the wall-clock limit of 2s",
    );
    assert!(t < Duration::from_secs(20), "{t:?}");
}
