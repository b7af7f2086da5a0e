//! Provisioning end to end: grant and revoke through the real host and component, with
//! AWS's state checked in the emulator itself, credentials limited to the policy that
//! `host policy` prints, and the refusals that must happen before any write.

mod support;

use serde_json::Value;
use std::path::Path;
use support::*;

fn wasm() -> &'static str {
    component().to_str().unwrap()
}

/// `host policy`'s permissions policy for these settings.
fn printed_policy(env: &[(&str, &str)]) -> Value {
    let out = host(&["policy", wasm(), "--provisioning"], env);
    assert!(out.status.success(), "{}", text(&out).1);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["permissions_policy"].clone()
}

/// A user of the emulator whose only permissions are `policy`.
fn user_with(emu: &Emulator, policy: &Value) -> (String, String) {
    let keys = control(emu, "POST", &policy.to_string());
    (
        keys["access_key_id"].as_str().unwrap().into(),
        keys["secret_access_key"].as_str().unwrap().into(),
    )
}

fn without(policy: &Value, action: &str) -> Value {
    let mut p = policy.clone();
    for s in p["Statement"].as_array_mut().unwrap() {
        if let Some(actions) = s["Action"].as_array_mut() {
            actions.retain(|a| a != action);
        }
    }
    p
}

fn sync(emu: &Emulator, file: &Path, env: &[(&str, &str)]) {
    let out = host(
        &[
            "run",
            wasm(),
            "-f",
            file.to_str().unwrap(),
            "--endpoint-url",
            emu.endpoint(),
        ],
        env,
    );
    assert!(out.status.success(), "{}", text(&out).1);
}

fn provision(
    emu: &Emulator,
    file: &Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> (bool, String, String) {
    let mut all = vec![
        args[0],
        wasm(),
        "-f",
        file.to_str().unwrap(),
        "--endpoint-url",
        emu.endpoint(),
    ];
    all.extend(&args[1..]);
    let out = host(&all, env);
    let (stdout, stderr) = text(&out);
    (out.status.success(), stdout, stderr)
}

#[test]
fn iam_group_membership_with_the_printed_policy() {
    let emu = Emulator::start(&["--scenario", "iam"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let policy = printed_policy(&[]);
    let (key, secret) = user_with(&emu, &policy);
    let env = [
        ("BATON_GLOBAL_ACCESS_KEY_ID", key.as_str()),
        ("BATON_GLOBAL_SECRET_ACCESS_KEY", secret.as_str()),
    ];
    // The printed policy is enough for a full sync...
    sync(&emu, &file, &env);

    let group = "arn:aws:iam::123456789012:group/empty";
    let entitlement = format!("group:{group}:member");
    let dave = emu.user_arn("dave");
    let grant = [
        "grant",
        "--entitlement",
        entitlement.as_str(),
        "--principal-type",
        "iam_user",
        "--principal",
        dave.as_str(),
    ];
    let members = || control(&emu, "GET", "")["iam_groups"]["empty"].clone();

    // Provisioning off: refused, nothing written.
    let (ok, _, stderr) = provision(&emu, &file, &env, &grant);
    assert!(
        !ok && stderr.contains("provisioning is off") && stderr.contains("BATON_PROVISIONING"),
        "{stderr}"
    );
    assert_eq!(members(), serde_json::json!([]));

    // ...and for every grant and revoke, each twice.
    let with_switch = [env[0], env[1], ("BATON_PROVISIONING", "true")];
    let (ok, stdout, stderr) = provision(&emu, &file, &with_switch, &grant);
    assert!(ok, "{stderr}");
    assert!(
        stdout.starts_with("granted:")
            && stdout.contains(&format!("{entitlement}:iam_user:{dave}")),
        "{stdout}"
    );
    assert_eq!(members(), serde_json::json!(["dave"]));
    let (ok, stdout, _) = provision(&emu, &file, &with_switch, &grant);
    assert!(ok && stdout.starts_with("already exists:"), "{stdout}");
    assert_eq!(members(), serde_json::json!(["dave"]));

    sync(&emu, &file, &env);
    let grant_id = format!("{entitlement}:iam_user:{dave}");
    let revoke = ["revoke", "--grant", grant_id.as_str()];
    let (ok, stdout, stderr) = provision(&emu, &file, &with_switch, &revoke);
    assert!(ok && stdout.starts_with("revoked:"), "{stdout}{stderr}");
    assert_eq!(members(), serde_json::json!([]));
    let (ok, stdout, _) = provision(&emu, &file, &with_switch, &revoke);
    assert!(ok && stdout.starts_with("already revoked:"), "{stdout}");

    // A principal of the wrong type is refused before any AWS write.
    let wrong = [
        "grant",
        "--entitlement",
        entitlement.as_str(),
        "--principal-type",
        "role",
        "--principal",
        "arn:aws:iam::123456789012:role/ops-admin",
    ];
    let (ok, _, stderr) = provision(&emu, &file, &with_switch, &wrong);
    assert!(
        !ok && stderr.contains("can be granted to iam_user only, not to role"),
        "{stderr}"
    );
    // So is an entitlement that cannot be provisioned.
    let role_ent = "role:arn:aws:iam::123456789012:role/ops-admin:assignment";
    let (ok, _, stderr) = provision(
        &emu,
        &file,
        &with_switch,
        &[
            "grant",
            "--entitlement",
            role_ent,
            "--principal-type",
            "iam_user",
            "--principal",
            dave.as_str(),
        ],
    );
    assert!(
        !ok && stderr.contains("cannot be granted or revoked"),
        "{stderr}"
    );
    assert_eq!(members(), serde_json::json!([]));

    // The same policy without iam:AddUserToGroup: the grant fails and names it.
    let (key, secret) = user_with(&emu, &without(&policy, "iam:AddUserToGroup"));
    let short = [
        ("BATON_GLOBAL_ACCESS_KEY_ID", key.as_str()),
        ("BATON_GLOBAL_SECRET_ACCESS_KEY", secret.as_str()),
        ("BATON_PROVISIONING", "true"),
    ];
    let (ok, _, stderr) = provision(&emu, &file, &short, &grant);
    assert!(
        !ok && stderr.contains("Allow iam:AddUserToGroup"),
        "{stderr}"
    );
    assert_eq!(members(), serde_json::json!([]));
}

#[test]
fn identity_center_provisioning_is_idempotent_and_checked_in_aws() {
    let emu = Emulator::start(&["--scenario", "org"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let features = [
        ("BATON_GLOBAL_AWS_ORGS_ENABLED", "true"),
        ("BATON_GLOBAL_AWS_SSO_ENABLED", "true"),
        ("BATON_GLOBAL_AWS_CROSS_ACCOUNT_IAM_ENABLED", "true"),
    ];
    let policy = printed_policy(&features);
    let (key, secret) = user_with(&emu, &policy);
    let env = [
        features[0],
        features[1],
        features[2],
        ("BATON_GLOBAL_ACCESS_KEY_ID", key.as_str()),
        ("BATON_GLOBAL_SECRET_ACCESS_KEY", secret.as_str()),
        ("BATON_PROVISIONING", "true"),
    ];
    sync(&emu, &file, &env);

    let store = emu.str(&["identity_store_id"]);
    let group_id = emu.str(&["sso_groups", "Nobody"]);
    let user_id = emu.str(&["sso_users", "dan"]);
    let group = format!("arn:aws:identitystore:us-east-1::{store}/group/{group_id}");
    let user = format!("arn:aws:identitystore:us-east-1::{store}/user/{user_id}");
    let memberships = || {
        control(&emu, "GET", "")["sso_memberships"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["GroupId"] == group_id.as_str())
            .map(|m| m["UserId"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };

    // Add an SSO user to a group, twice: one membership in AWS.
    let member_ent = format!("sso_group:{group}:member");
    let add = [
        "grant",
        "--entitlement",
        member_ent.as_str(),
        "--principal-type",
        "sso_user",
        "--principal",
        user.as_str(),
    ];
    let (ok, stdout, stderr) = provision(&emu, &file, &env, &add);
    assert!(ok && stdout.starts_with("granted:"), "{stdout}{stderr}");
    assert_eq!(memberships(), std::slice::from_ref(&user_id));
    let (ok, stdout, _) = provision(&emu, &file, &env, &add);
    assert!(ok && stdout.starts_with("already exists:"), "{stdout}");
    assert_eq!(memberships(), std::slice::from_ref(&user_id));

    // Give the group a permission set on an account, twice: one assignment.
    let account = emu.str(&["accounts", "sandbox"]);
    let ps = emu.str(&["permission_sets", "Billing"]);
    let assignments = || {
        control(&emu, "GET", "")["assignments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["AccountId"] == account.as_str() && a["PermissionSetArn"] == ps.as_str())
            .map(|a| {
                format!(
                    "{}:{}",
                    a["PrincipalType"].as_str().unwrap(),
                    a["PrincipalId"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    let account_ent = format!("{account}|{ps}");
    let assign = [
        "grant",
        "--entitlement",
        account_ent.as_str(),
        "--principal-type",
        "sso_group",
        "--principal",
        group.as_str(),
    ];
    let (ok, stdout, stderr) = provision(&emu, &file, &env, &assign);
    assert!(ok && stdout.starts_with("granted:"), "{stdout}{stderr}");
    assert_eq!(assignments(), [format!("GROUP:{group_id}")]);
    let (ok, stdout, _) = provision(&emu, &file, &env, &assign);
    assert!(ok && stdout.starts_with("already exists:"), "{stdout}");
    assert_eq!(assignments(), [format!("GROUP:{group_id}")]);
    // An IAM user cannot be assigned a permission set.
    let (ok, _, stderr) = provision(
        &emu,
        &file,
        &env,
        &[
            "grant",
            "--entitlement",
            account_ent.as_str(),
            "--principal-type",
            "iam_user",
            "--principal",
            emu.user_arn("baton-org-reader").as_str(),
        ],
    );
    assert!(
        !ok && stderr.contains("sso_user or sso_group only"),
        "{stderr}"
    );

    // The next sync sees both; revoke each twice.
    sync(&emu, &file, &env);
    let c1z = C1z::open(&file);
    let membership_grant: String = c1z
        .conn
        .query_row(
            "select external_id from v1_grants where sync_id = ?1 and entitlement_id = ?2 and principal_resource_id = ?3",
            [c1z.sync_id.as_str(), member_ent.as_str(), user.as_str()],
            |r| r.get(0),
        )
        .expect("the membership was synced");
    let assignment_grant = format!("grant:sso_group:{group}:{account_ent}");
    assert!(c1z.grants().contains(&assignment_grant));
    for (grant, check) in [
        (membership_grant.as_str(), 0),
        (assignment_grant.as_str(), 1),
    ] {
        let revoke = ["revoke", "--grant", grant];
        let (ok, stdout, stderr) = provision(&emu, &file, &env, &revoke);
        assert!(ok && stdout.starts_with("revoked:"), "{stdout}{stderr}");
        if check == 0 {
            assert!(memberships().is_empty());
        } else {
            assert!(assignments().is_empty());
        }
        let (ok, stdout, _) = provision(&emu, &file, &env, &revoke);
        assert!(ok && stdout.starts_with("already revoked:"), "{stdout}");
    }

    // An IAM group in a member account, through the host's member-account credentials.
    let prod = emu.str(&["accounts", "prod"]);
    let prod_ops = format!("group:arn:aws:iam::{prod}:group/prod-ops:member");
    let oncall = format!("arn:aws:iam::{prod}:user/prod-oncall");
    let members =
        || control(&emu, "GET", "")["member_iam_groups"][prod.as_str()]["prod-ops"].clone();
    let add = [
        "grant",
        "--entitlement",
        prod_ops.as_str(),
        "--principal-type",
        "iam_user",
        "--principal",
        oncall.as_str(),
    ];
    let (ok, stdout, stderr) = provision(&emu, &file, &env, &add);
    assert!(ok && stdout.starts_with("granted:"), "{stdout}{stderr}");
    assert_eq!(members(), serde_json::json!(["prod-admin", "prod-oncall"]));
    let (ok, stdout, _) = provision(&emu, &file, &env, &add);
    assert!(ok && stdout.starts_with("already exists:"), "{stdout}");
    sync(&emu, &file, &env);
    let grant_id = format!("{prod_ops}:iam_user:{oncall}");
    let (ok, stdout, stderr) =
        provision(&emu, &file, &env, &["revoke", "--grant", grant_id.as_str()]);
    assert!(ok && stdout.starts_with("revoked:"), "{stdout}{stderr}");
    assert_eq!(members(), serde_json::json!(["prod-admin"]));

    // The printed policy without sso:CreateAccountAssignment: the grant names what is missing.
    let (key, secret) = user_with(&emu, &without(&policy, "sso:CreateAccountAssignment"));
    let short = [
        env[0],
        env[1],
        env[2],
        ("BATON_GLOBAL_ACCESS_KEY_ID", key.as_str()),
        ("BATON_GLOBAL_SECRET_ACCESS_KEY", secret.as_str()),
        env[5],
    ];
    let (ok, _, stderr) = provision(&emu, &file, &short, &assign);
    assert!(
        !ok && stderr.contains("Allow sso:CreateAccountAssignment"),
        "{stderr}"
    );
    assert!(assignments().is_empty());
}
