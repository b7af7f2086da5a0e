//! End to end: the real component in the real host against the AWS emulator, with request
//! signatures checked, read back from the `.c1z` by an independent reader.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use support::*;

const ACCOUNT: &str = "123456789012";

fn role(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

fn group(path_name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:group/{path_name}")
}

struct Expected {
    resources: BTreeSet<String>,
    entitlements: BTreeSet<String>,
    direct: BTreeSet<String>,
    expanded: BTreeSet<String>,
}

/// What the seeded account must sync to, written out by hand from the seed.
fn expected(emu: &Emulator) -> Expected {
    let user = |n: &str| emu.user_arn(n);
    let users = [
        "alice@example.com",
        "bob",
        "carol+ops=1,x.y@z-w_v",
        "dave",
        "baton-reader",
        "baton-assumer",
        // The emulator's own administrator, which its control endpoint acts as.
        "emulator-admin",
    ];
    let groups = [group("admins"), group("eng/engineers"), group("empty")];
    let roles: Vec<String> = [
        "ops-admin",
        "read-only",
        "ci-deployer",
        "cycle-a",
        "cycle-b",
        "denied-role",
        "mfa-role",
        "wildcard-role",
        "service-role/lambda-exec",
        "by-id-role",
        "ghost-trust",
        "ConnectorRole",
    ]
    .iter()
    .map(|r| role(r))
    .collect();

    let mut resources = set(users.iter().map(|u| format!("iam_user:{}", user(u))));
    resources.extend(groups.iter().map(|g| format!("group:{g}")));
    resources.extend(roles.iter().map(|r| format!("role:{r}")));
    let mut entitlements = set(groups.iter().map(|g| format!("group:{g}:member")));
    entitlements.extend(roles.iter().map(|r| format!("role:{r}:assignment")));

    let member = |g: &str, u: &str| format!("group:{}:member:iam_user:{}", group(g), user(u));
    let assume_user =
        |r: &str, u: &str| format!("role:{}:assignment:iam_user:{}", role(r), user(u));
    let assume_role = |r: &str, by: &str| format!("role:{}:assignment:role:{}", role(r), role(by));
    let direct = set([
        member("admins", "alice@example.com"),
        member("admins", "bob"),
        member("eng/engineers", "bob"),
        member("eng/engineers", "carol+ops=1,x.y@z-w_v"),
        assume_user("ops-admin", "bob"),
        assume_user("ops-admin", "carol+ops=1,x.y@z-w_v"),
        // read-only trusts only the account root and a service: no grant.
        assume_role("ci-deployer", "ops-admin"),
        assume_user("cycle-a", "dave"),
        assume_role("cycle-a", "cycle-b"),
        assume_role("cycle-b", "cycle-a"),
        // bob is allowed, then denied without condition: the deny wins.
        assume_user("denied-role", "alice@example.com"),
        // a conditional allow still grants.
        assume_user("mfa-role", "alice@example.com"),
        // sts:* covers sts:AssumeRole; sts:AssumeRoleWithSAML does not.
        assume_user("wildcard-role", "bob"),
        // trusted by unique id, reported by ARN.
        assume_user("by-id-role", "alice@example.com"),
        assume_user("ConnectorRole", "baton-assumer"),
    ]);
    // Whoever can assume ops-admin can assume ci-deployer; the cycle closes completely.
    let expanded = set([
        assume_user("ci-deployer", "bob"),
        assume_user("ci-deployer", "carol+ops=1,x.y@z-w_v"),
        assume_user("cycle-b", "dave"),
        assume_role("cycle-a", "cycle-a"),
        assume_role("cycle-b", "cycle-b"),
    ]);
    Expected {
        resources,
        entitlements,
        direct,
        expanded,
    }
}

fn run_sync(emu: &Emulator, file: &std::path::Path, env: &[(&str, &str)]) -> (Value, String) {
    let wasm = component().to_str().unwrap().to_string();
    let args = [
        "run",
        &wasm,
        "-f",
        file.to_str().unwrap(),
        "--endpoint-url",
        emu.endpoint(),
        "-o",
        "json",
    ];
    let out = host(&args, env);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "host run failed:\n{stderr}");
    (serde_json::from_str(&stdout).expect("json summary"), stderr)
}

fn assert_synced(emu: &Emulator, file: &std::path::Path) {
    let want = expected(emu);
    let c1z = C1z::open(file);
    assert_eq!(c1z.resources(), want.resources);
    assert_eq!(c1z.entitlements(), want.entitlements);
    let all: BTreeSet<String> = want.direct.union(&want.expanded).cloned().collect();
    assert_eq!(c1z.grants(), all);
    // Expansion wrote exactly the expected new grants, and only connector grants carry edges.
    let synthesised = c1z.ids("select external_id from v1_grants where sync_id = ?1 and expansion is null and instr(data, cast('GrantImmutable' as blob)) > 0");
    assert_eq!(synthesised, want.expanded);
    let with_edges =
        c1z.ids("select external_id from v1_grants where sync_id = ?1 and expansion is not null");
    let role_principals: BTreeSet<String> = want
        .direct
        .iter()
        .filter(|g| g.contains(":assignment:role:"))
        .cloned()
        .collect();
    assert_eq!(with_edges, role_principals);
    // baton keeps GrantExpandable out of the blob; the blob embeds the entitlement id.
    assert_eq!(
        c1z.count(
            "select count(*) from v1_grants where instr(data, cast(entitlement_id as blob)) = 0"
        ),
        0
    );
    assert_eq!(
        c1z.count(
            "select count(*) from v1_grants where instr(data, cast('GrantExpandable' as blob)) > 0"
        ),
        0
    );
    // Denormalised columns agree with the ids.
    assert_eq!(
        c1z.count("select count(*) from v1_grants where external_id <> entitlement_id || ':' || principal_resource_type_id || ':' || principal_resource_id"),
        0
    );
}

#[test]
fn iam_sync_with_static_keys_writes_exact_ids() {
    let emu = Emulator::shared();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let (key, secret) = emu.keys("reader");
    let (summary, stderr) = run_sync(
        emu,
        &file,
        &[
            ("BATON_GLOBAL_ACCESS_KEY_ID", &key),
            ("BATON_GLOBAL_SECRET_ACCESS_KEY", &secret),
        ],
    );
    assert!(
        stderr.contains(&format!("as {}", emu.user_arn("baton-reader"))),
        "{stderr}"
    );
    assert_synced(emu, &file);
    // Bulk IAM reads: one GAAD page, one ListUsers, one ListRoles, one identity check.
    assert_eq!(
        summary["aws_calls_by_operation"],
        serde_json::json!({"iam:GetAccountAuthorizationDetails": 1, "iam:ListRoles": 1, "iam:ListUsers": 1, "sts:GetCallerIdentity": 1})
    );
    assert_eq!(summary["warnings"], serde_json::json!([]));
    // No temporary files are left beside the output.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["sync.c1z"]);
}

#[test]
fn iam_sync_follows_page_markers() {
    // IAM may return fewer items than MaxItems; here every list page holds at most five.
    let emu = Emulator::start(&["--scenario", "iam", "--max-page", "5"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let (key, secret) = emu.keys("reader");
    let (summary, _) = run_sync(
        &emu,
        &file,
        &[
            ("BATON_GLOBAL_ACCESS_KEY_ID", &key),
            ("BATON_GLOBAL_SECRET_ACCESS_KEY", &secret),
        ],
    );
    assert_synced(&emu, &file);
    // 21 users, groups and roles in pages of 5; 6 users; 12 roles.
    assert_eq!(
        summary["aws_calls_by_operation"],
        serde_json::json!({"iam:GetAccountAuthorizationDetails": 5, "iam:ListRoles": 3, "iam:ListUsers": 2, "sts:GetCallerIdentity": 1})
    );
}

#[test]
fn iam_sync_through_assume_role_with_external_id() {
    let emu = Emulator::shared();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    // This user may only call sts:AssumeRole: every IAM read must use the role's session.
    let (key, secret) = emu.keys("assumer");
    let role_arn = emu.info["connector_role_arn"].as_str().unwrap().to_string();
    let external_id = emu.info["external_id"].as_str().unwrap().to_string();
    let env = [
        ("BATON_GLOBAL_ACCESS_KEY_ID", key.as_str()),
        ("BATON_GLOBAL_SECRET_ACCESS_KEY", secret.as_str()),
        ("BATON_ROLE_ARN", role_arn.as_str()),
        ("BATON_EXTERNAL_ID", external_id.as_str()),
    ];
    let (_, stderr) = run_sync(emu, &file, &env);
    assert!(
        stderr.contains(&format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/ConnectorRole/"
        )),
        "{stderr}"
    );
    assert_synced(emu, &file);

    // The same with a wrong external ID: the role refuses, and the error says what to check.
    let wrong = [
        env[0],
        env[1],
        env[2],
        ("BATON_EXTERNAL_ID", "not-the-external-id"),
    ];
    let out = host(
        &[
            "run",
            component().to_str().unwrap(),
            "-f",
            dir.path().join("other.c1z").to_str().unwrap(),
            "--endpoint-url",
            emu.endpoint(),
        ],
        &wrong,
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot assume BATON_ROLE_ARN") && stderr.contains("BATON_EXTERNAL_ID"),
        "{stderr}"
    );
    assert!(!dir.path().join("other.c1z").exists());
}

#[test]
fn wrong_secret_fails_clearly_and_leaves_files_alone() {
    let emu = Emulator::shared();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let (key, secret) = emu.keys("reader");
    run_sync(
        emu,
        &file,
        &[
            ("BATON_GLOBAL_ACCESS_KEY_ID", &key),
            ("BATON_GLOBAL_SECRET_ACCESS_KEY", &secret),
        ],
    );
    let before = std::fs::read(&file).unwrap();

    let bad = [
        ("BATON_GLOBAL_ACCESS_KEY_ID", key.as_str()),
        ("BATON_GLOBAL_SECRET_ACCESS_KEY", "wrong-secret"),
    ];
    for target in [file.clone(), dir.path().join("new.c1z")] {
        let out = host(
            &[
                "run",
                component().to_str().unwrap(),
                "-f",
                target.to_str().unwrap(),
                "--endpoint-url",
                emu.endpoint(),
            ],
            &bad,
        );
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("SignatureDoesNotMatch"), "{stderr}");
        assert!(
            stderr.contains("BATON_GLOBAL_SECRET_ACCESS_KEY"),
            "the error names the setting to fix: {stderr}"
        );
        assert!(stderr.contains("unchanged"), "{stderr}");
    }
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "the previous sync is untouched"
    );
    assert!(
        !dir.path().join("new.c1z").exists(),
        "no output for a failed sync"
    );
    let names: BTreeSet<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        set(["sync.c1z".to_string()]),
        "no temporary files left behind"
    );
}

#[test]
fn bad_setting_values_are_named() {
    let emu = Emulator::shared();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let (key, secret) = emu.keys("reader");
    let creds = [
        ("BATON_GLOBAL_ACCESS_KEY_ID", key.as_str()),
        ("BATON_GLOBAL_SECRET_ACCESS_KEY", secret.as_str()),
    ];
    let wasm = component().to_str().unwrap();
    let cases: [(&str, &str, &str); 4] = [
        ("BATON_GLOBAL_AWS_SSO_REGION", "mars-north-1", "us-east-1"),
        ("BATON_GLOBAL_AWS_ORGS_ENABLED", "maybe", "true or false"),
        (
            "BATON_ROLE_ARN",
            "ConductorOneIntegration",
            "arn:aws:iam::<12-digit account>:role/<name>",
        ),
        ("AWS_ENDPOINT_URL", "localhost:5000", "http://"),
    ];
    for (name, value, hint) in cases {
        let mut env = creds.to_vec();
        env.push((name, value));
        let mut args = vec!["run", wasm, "-f", file.to_str().unwrap()];
        if name != "AWS_ENDPOINT_URL" {
            args.extend(["--endpoint-url", emu.endpoint()]);
        }
        let out = host(&args, &env);
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{name}={value} was accepted");
        assert!(stderr.contains(name), "the error names {name}: {stderr}");
        assert!(
            stderr.contains(hint),
            "the error shows accepted values ({hint}): {stderr}"
        );
    }
    let out = host(
        &[
            "run",
            wasm,
            "-f",
            file.to_str().unwrap(),
            "--endpoint-url",
            emu.endpoint(),
            "-s",
            "no-such-setting=1",
        ],
        &creds,
    );
    let (_, stderr) = text(&out);
    assert!(
        !out.status.success()
            && stderr.contains("no-such-setting")
            && stderr.contains("global-aws-sso-region"),
        "{stderr}"
    );
    assert!(!file.exists());
}

#[test]
fn requests_to_hosts_off_the_allow_list_are_denied_and_reported() {
    let emu = Emulator::shared();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let (key, secret) = emu.keys("reader");
    // The operator narrows the allow-list to real IAM: the emulator endpoint is off it.
    let out = host(
        &[
            "run",
            component().to_str().unwrap(),
            "-f",
            file.to_str().unwrap(),
            "--endpoint-url",
            emu.endpoint(),
            "--allow-host",
            "iam.amazonaws.com",
        ],
        &[
            ("BATON_GLOBAL_ACCESS_KEY_ID", &key),
            ("BATON_GLOBAL_SECRET_ACCESS_KEY", &secret),
        ],
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("refused the request"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "denied outbound requests (not on the allow-list): POST {}/",
            emu.endpoint()
        )),
        "{stderr}"
    );
    assert!(!file.exists());
}

#[test]
fn read_commands_list_what_was_synced_and_files_keep_two_syncs() {
    let emu = Emulator::shared();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let f = file.to_str().unwrap();
    let (key, secret) = emu.keys("reader");
    let env = [
        ("BATON_GLOBAL_ACCESS_KEY_ID", key.as_str()),
        ("BATON_GLOBAL_SECRET_ACCESS_KEY", secret.as_str()),
    ];
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (summary, _) = run_sync(emu, &file, &env);
        ids.push(summary["sync_id"].as_str().unwrap().to_string());
    }
    let c1z = C1z::open(&file);
    assert_eq!(c1z.sync_id, ids[2], "readers see the newest sync");
    let kept = c1z.ids("select sync_id from v1_sync_runs where ?1 <> ''");
    assert_eq!(
        kept,
        set([ids[1].clone(), ids[2].clone()]),
        "the oldest sync was cleaned up"
    );

    let out = host(&["resources", "-f", f, "-t", "iam_user", "-o", "json"], &[]);
    assert!(out.status.success());
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let names: BTreeSet<String> = listed
        .iter()
        .map(|r| r["display_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        set([
            "alice@example.com",
            "bob",
            "carol+ops=1,x.y@z-w_v",
            "dave",
            "baton-reader",
            "baton-assumer",
            "emulator-admin"
        ]
        .map(String::from))
    );
    let alice = listed
        .iter()
        .find(|r| r["display_name"] == "alice@example.com")
        .unwrap();
    assert_eq!(
        alice["emails"],
        serde_json::json!(["alice@example.com", "alice.work@example.com"])
    );
    assert_eq!(alice["profile"]["aws_user_type"], "iam");

    let out = host(
        &[
            "grants",
            "-f",
            f,
            "-e",
            &format!("role:{}:assignment", role("ci-deployer")),
            "-o",
            "json",
        ],
        &[],
    );
    let grants: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let principals: BTreeSet<String> = grants
        .iter()
        .map(|g| g["principal"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        principals,
        set([
            role("ops-admin"),
            emu.user_arn("bob"),
            emu.user_arn("carol+ops=1,x.y@z-w_v")
        ])
    );

    let out = host(&["stats", "-f", f], &[]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("iam_user") && stdout.contains(&ids[2]),
        "{stdout}"
    );
    let out = host(
        &[
            "resources",
            "-f",
            dir.path().join("missing.c1z").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!out.status.success() && text(&out).1.contains("does not exist"));
}
