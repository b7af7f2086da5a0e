//! End to end with Organizations and Identity Center on: accounts, permission sets,
//! Identity Store users, groups, memberships and assignments, read back from the `.c1z`.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use support::*;

fn run(
    emu: &Emulator,
    file: &std::path::Path,
    extra: &[(&'static str, String)],
) -> std::process::Output {
    let mut vars = org_env(emu);
    vars.extend(extra.iter().cloned());
    sync_json(emu.endpoint(), file, &vars)
}

/// The names of disabled SSO users in a sync, and every SSO user as `host resources` lists it.
fn sso_user_status(file: &std::path::Path) -> (BTreeSet<String>, Vec<Value>) {
    let out = host(
        &[
            "resources",
            "-f",
            file.to_str().unwrap(),
            "-t",
            "sso_user",
            "-o",
            "json",
        ],
        &[],
    );
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let disabled = listed
        .iter()
        .filter(|u| u["status"] == "disabled")
        .map(|u| u["display_name"].as_str().unwrap().to_string())
        .collect();
    (disabled, listed)
}

#[test]
fn organization_and_identity_center_sync_writes_exact_ids() {
    let emu = Emulator::shared_org();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let out = run(emu, &file, &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();

    let store = emu.str(&["identity_store_id"]);
    let region = emu.str(&["sso_region"]);
    let user = |n: &str| {
        format!(
            "arn:aws:identitystore:{region}::{store}/user/{}",
            emu.str(&["sso_users", n])
        )
    };
    let group = |n: &str| {
        format!(
            "arn:aws:identitystore:{region}::{store}/group/{}",
            emu.str(&["sso_groups", n])
        )
    };
    let account = |n: &str| emu.str(&["accounts", n]);
    let ps = |n: &str| emu.str(&["permission_sets", n]);
    let users = [
        "ann@example.com",
        "ben@example.com",
        "cat@example.com",
        "dan",
        "eve@example.com",
    ];
    let groups = ["Admins", "Developers", "Nobody"];
    let active = ["management", "prod", "staging", "dev", "sandbox", "audit"];
    let sets = ["AdministratorAccess", "ReadOnly", "Billing"];

    let mut resources = set([
        format!("iam_user:{}", emu.user_arn("baton-org-reader")),
        format!("iam_user:{}", emu.user_arn("emulator-admin")),
    ]);
    resources.extend(users.iter().map(|u| format!("sso_user:{}", user(u))));
    resources.extend(groups.iter().map(|g| format!("sso_group:{}", group(g))));
    // The closed account is not synced.
    resources.extend(active.iter().map(|a| format!("account:{}", account(a))));
    let mut entitlements = set(groups
        .iter()
        .map(|g| format!("sso_group:{}:member", group(g))));
    for a in active {
        // Every permission set, Billing (assigned nowhere) included, may be requested anywhere.
        entitlements.extend(sets.iter().map(|p| format!("{}|{}", account(a), ps(p))));
    }

    let membership = |g: &str, u: &str| emu.str(&["memberships", &format!("{g}/{u}")]);
    let direct_user =
        |a: &str, p: &str, u: &str| format!("grant:sso_user:{}:{}|{}", user(u), account(a), ps(p));
    let direct_group = |a: &str, p: &str, g: &str| {
        format!("grant:sso_group:{}:{}|{}", group(g), account(a), ps(p))
    };
    let expanded =
        |a: &str, p: &str, u: &str| format!("{}|{}:sso_user:{}", account(a), ps(p), user(u));
    let direct = set([
        membership("Admins", "ann@example.com"),
        membership("Admins", "ben@example.com"),
        membership("Developers", "ben@example.com"),
        membership("Developers", "cat@example.com"),
        membership("Developers", "dan"),
        direct_group("prod", "AdministratorAccess", "Admins"),
        direct_group("prod", "ReadOnly", "Developers"),
        direct_user("prod", "AdministratorAccess", "ben@example.com"),
        direct_group("staging", "AdministratorAccess", "Developers"),
        direct_user("dev", "ReadOnly", "dan"),
        direct_user("management", "ReadOnly", "ann@example.com"),
        direct_group("audit", "ReadOnly", "Nobody"),
    ]);
    // Members of assigned groups hold the account grant too; ben, also assigned directly,
    // keeps his direct grant (now with both sources) rather than getting a second one.
    let want_expanded = set([
        expanded("prod", "AdministratorAccess", "ann@example.com"),
        expanded("prod", "ReadOnly", "ben@example.com"),
        expanded("prod", "ReadOnly", "cat@example.com"),
        expanded("prod", "ReadOnly", "dan"),
        expanded("staging", "AdministratorAccess", "ben@example.com"),
        expanded("staging", "AdministratorAccess", "cat@example.com"),
        expanded("staging", "AdministratorAccess", "dan"),
    ]);

    let c1z = C1z::open(&file);
    assert_eq!(c1z.resources(), resources);
    assert_eq!(c1z.entitlements(), entitlements);
    assert_eq!(
        c1z.grants(),
        direct
            .union(&want_expanded)
            .cloned()
            .collect::<BTreeSet<_>>()
    );
    let synthesised = c1z.ids("select external_id from v1_grants where sync_id = ?1 and instr(data, cast('GrantImmutable' as blob)) > 0");
    assert_eq!(synthesised, want_expanded);
    assert_eq!(
        summary["expanded_grants_updated"], 1,
        "ben's direct grant gained the group as a source"
    );

    // No (account, permission set) call for pairs with nothing provisioned: six accounts,
    // six assigned pairs.
    let calls = &summary["aws_calls_by_operation"];
    assert_eq!(calls["sso:ListPermissionSetsProvisionedToAccount"], 6);
    assert_eq!(calls["sso:ListAccountAssignments"], 6);
    assert_eq!(calls["identitystore:ListGroupMemberships"], 3);
    assert_eq!(calls["sso:DescribePermissionSet"], 3);

    // Users' status comes from the Identity Store.
    let (disabled, listed) = sso_user_status(&file);
    assert_eq!(
        disabled,
        set(["cat@example.com".to_string(), "eve@example.com".to_string()])
    );
    assert!(listed
        .iter()
        .filter(|u| u["status"] != "disabled")
        .all(|u| u["status"] == "enabled"));

    // `host grants -t account` lists the account grants, expanded ones included.
    let out = host(
        &["grants", "-f", file.to_str().unwrap(), "-t", "account"],
        &[],
    );
    let (table, _) = text(&out);
    assert_eq!(table.lines().count(), 2 + 7 + 7, "{table}");
    assert!(
        table.contains("prod")
            && table.contains("ben@example.com (sso_user)")
            && table.contains("Admins (sso_group)"),
        "{table}"
    );
}

#[test]
fn identity_center_and_organizations_errors_say_what_to_fix() {
    let emu = Emulator::shared_org();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");

    // Identity Center lives in one region; another region has no instance.
    let out = run(
        emu,
        &file,
        &[("BATON_GLOBAL_AWS_SSO_REGION", "eu-west-1".into())],
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("invalid setting BATON_GLOBAL_AWS_SSO_REGION: no IAM Identity Center instance in eu-west-1"), "{stderr}");

    // Organizations enabled with a role in a member account.
    let member_role = emu.str(&["member_role_arn"]);
    let prod = emu.str(&["accounts", "prod"]);
    let out = run(emu, &file, &[("BATON_ROLE_ARN", member_role)]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("invalid setting BATON_GLOBAL_AWS_ORGS_ENABLED"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("member account {prod}"))
            && stderr.contains("create the role in account 123456789012"),
        "{stderr}"
    );
    assert!(!file.exists());
}

#[test]
fn scim_status_overrides_the_identity_store_and_a_wrong_token_is_named() {
    let emu = Emulator::shared_org();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let scim = [
        ("BATON_SCIM_ENABLED", "true".to_string()),
        ("BATON_SCIM_ENDPOINT", emu.str(&["scim_endpoint"])),
        ("BATON_SCIM_TOKEN", emu.str(&["scim_token"])),
    ];
    let out = run(emu, &file, &scim);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    // Five users, two per SCIM page (the test server's page size): three pages.
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    let endpoint = emu.str(&["scim_endpoint"]);
    let users_op = format!("GET {}/Users", endpoint.trim_start_matches("http://"));
    assert_eq!(
        summary["aws_calls_by_operation"][&users_op], 3,
        "{}",
        summary["aws_calls_by_operation"]
    );
    let (disabled, _) = sso_user_status(&file);
    // dan is enabled in the Identity Store but inactive in SCIM: SCIM wins.
    assert_eq!(
        disabled,
        set(["cat@example.com", "dan", "eve@example.com"].map(String::from))
    );

    let wrong_token = "not-the-scim-token-but-a-secret-all-the-same";
    let out = run(
        emu,
        &dir.path().join("other.c1z"),
        &[
            scim[0].clone(),
            scim[1].clone(),
            ("BATON_SCIM_TOKEN", wrong_token.to_string()),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("invalid setting BATON_SCIM_TOKEN") && stderr.contains("401"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(wrong_token) && !stdout.contains(wrong_token),
        "the token is never printed"
    );
    assert!(!dir.path().join("other.c1z").exists());

    // SCIM without a token, or with -s, is refused before any call.
    let out = run(emu, &dir.path().join("other.c1z"), &scim[..2]);
    assert!(
        text(&out).1.contains("BATON_SCIM_TOKEN"),
        "{}",
        text(&out).1
    );
}

#[test]
fn cross_account_iam_syncs_member_accounts_under_account_iam() {
    let emu = Emulator::shared_org();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let out = run(
        emu,
        &file,
        &[("BATON_GLOBAL_AWS_CROSS_ACCOUNT_IAM_ENABLED", "true".into())],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    let account = |n: &str| emu.str(&["accounts", n]);
    let arn = |n: &str, what: &str| format!("arn:aws:iam::{}:{what}", account(n));

    let c1z = C1z::open(&file);
    // Every account, the closed one included, as baton-aws lists them.
    let all = [
        "management",
        "prod",
        "staging",
        "dev",
        "sandbox",
        "audit",
        "retired",
    ];
    assert_eq!(
        c1z.ids("select external_id from v1_resources where sync_id = ?1 and resource_type_id = 'account_iam'"),
        set(all.iter().map(|a| format!("account_iam:{}", account(a))))
    );
    // Member IAM hangs under its account; the management account's stays at the top.
    let children = c1z.ids(
        "select external_id || ' < ' || parent_resource_id from v1_resources
         where sync_id = ?1 and parent_resource_type_id = 'account_iam'",
    );
    let mut want = set([
        format!(
            "iam_user:{} < {}",
            arn("prod", "user/prod-admin"),
            account("prod")
        ),
        format!(
            "iam_user:{} < {}",
            arn("prod", "user/prod-oncall"),
            account("prod")
        ),
        format!(
            "group:{} < {}",
            arn("prod", "group/prod-ops"),
            account("prod")
        ),
        format!(
            "role:{} < {}",
            arn("prod", "role/prod-deploy"),
            account("prod")
        ),
        format!(
            "iam_user:{} < {}",
            arn("staging", "user/dev/staging-dev"),
            account("staging")
        ),
    ]);
    // moto creates OrganizationAccountAccessRole in every new account.
    for a in ["prod", "staging", "dev", "audit"] {
        want.insert(format!(
            "role:{} < {}",
            arn(a, "role/OrganizationAccountAccessRole"),
            account(a)
        ));
    }
    assert_eq!(children, want);
    let top_iam = c1z.ids("select external_id from v1_resources where sync_id = ?1 and resource_type_id = 'iam_user' and parent_resource_id is null");
    assert_eq!(
        top_iam,
        set([
            format!("iam_user:{}", emu.user_arn("baton-org-reader")),
            format!("iam_user:{}", emu.user_arn("emulator-admin"))
        ])
    );

    let grants = c1z.grants();
    assert!(grants.contains(&format!(
        "group:{}:member:iam_user:{}",
        arn("prod", "group/prod-ops"),
        arn("prod", "user/prod-admin")
    )));
    assert!(grants.contains(&format!(
        "role:{}:assignment:iam_user:{}",
        arn("prod", "role/prod-deploy"),
        arn("prod", "user/prod-admin")
    )));

    // sandbox's role may not be assumed: one warning, the sync goes on.
    let warnings: Vec<String> = serde_json::from_value(summary["warnings"].clone()).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains(&format!("account {} (sandbox)", account("sandbox")))
            && warnings[0].contains("AccessDenied"),
        "{warnings:?}"
    );
}
