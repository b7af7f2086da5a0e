//! `host policy`: the least-privilege IAM policy for exactly the enabled features, derived
//! from the actions the component declares per capability, and the role's trust policy.

use crate::session::{connect, ConnectorArgs};
use anyhow::Result;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// ConductorOne's service role, which the product page's trust policy names.
const CONDUCTORONE: &str = "arn:aws:iam::765656841499:role/ConductorOneService";

#[derive(clap::Args)]
pub struct PolicyArgs {
    #[command(flatten)]
    pub connector: ConnectorArgs,
    /// Include what provisioning (grant and revoke) needs.
    #[arg(long, env = "BATON_PROVISIONING", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub provisioning: bool,
    /// The principal the role's trust policy lets assume it.
    #[arg(long, default_value = CONDUCTORONE)]
    pub trusted_principal: String,
}

pub fn main(args: PolicyArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let session = rt.block_on(connect(&args.connector, false))?;
    let on = |name: &str| {
        session
            .settings
            .iter()
            .find(|s| s.name == name)
            .is_some_and(|s| {
                matches!(
                    s.value.trim().to_ascii_lowercase().as_str(),
                    "true" | "1" | "yes"
                )
            })
    };
    let mut sync = BTreeSet::new();
    let mut provision = BTreeSet::new();
    let mut assume = false;
    for c in &session.metadata.capabilities {
        if !c.enabled_by.as_deref().is_none_or(on) {
            continue;
        }
        let into = if c.name.starts_with("provision") {
            if !args.provisioning {
                continue;
            }
            &mut provision
        } else {
            &mut sync
        };
        for action in &c.permissions {
            // Assuming member-account roles is scoped to that role, not to "*".
            if action == "sts:AssumeRole" {
                assume = true;
            } else {
                into.insert(action.clone());
            }
        }
    }
    provision.retain(|a| !sync.contains(a));
    let mut statements =
        vec![json!({"Sid": "ConnectorSync", "Effect": "Allow", "Action": sync, "Resource": "*"})];
    if !provision.is_empty() {
        statements.push(json!({"Sid": "ConnectorProvision", "Effect": "Allow", "Action": provision, "Resource": "*"}));
    }
    if assume && args.connector.cross_account_iam {
        statements.push(json!({
            "Sid": "ConnectorMemberAccounts", "Effect": "Allow", "Action": "sts:AssumeRole",
            "Resource": format!("arn:aws:iam::*:role/{}", args.connector.member_role_name),
        }));
    }
    let mut trust = json!({"Effect": "Allow", "Principal": {"AWS": args.trusted_principal}, "Action": "sts:AssumeRole"});
    if let Some(id) = &args.connector.external_id {
        trust["Condition"] = json!({"StringEquals": {"sts:ExternalId": id}});
    }
    let out: Value = json!({
        "permissions_policy": {"Version": "2012-10-17", "Statement": statements},
        "trust_policy": {"Version": "2012-10-17", "Statement": [trust]},
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
