//! `host grant` and `host revoke`: one provisioning request, behind an explicit switch.

use crate::bindings::wit;
use crate::session::{connect, ConnectorArgs};
use crate::store::proto as p;
use crate::store::reader::Reader;
use crate::Format;
use anyhow::{anyhow, bail, Context, Result};
use prost::Message;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Switch {
    /// Allow this host to write to AWS. Without it nothing is changed.
    #[arg(long, env = "BATON_PROVISIONING", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub provisioning: bool,
    /// A .c1z of a recent sync, where entitlements, principals and grants are looked up.
    #[arg(short = 'f', long = "file", default_value = "sync.c1z")]
    pub file: PathBuf,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

#[derive(clap::Args)]
pub struct GrantArgs {
    #[command(flatten)]
    pub connector: ConnectorArgs,
    #[command(flatten)]
    pub switch: Switch,
    /// The entitlement id, e.g. `sso_group:<group ARN>:member` or `<account>|<permission set ARN>`.
    #[arg(long)]
    pub entitlement: String,
    /// The principal's resource type, e.g. `sso_user`.
    #[arg(long = "principal-type")]
    pub principal_type: String,
    /// The principal's resource id, e.g. its ARN.
    #[arg(long)]
    pub principal: String,
}

#[derive(clap::Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub connector: ConnectorArgs,
    #[command(flatten)]
    pub switch: Switch,
    /// The grant id, as `host grants` lists it.
    #[arg(long)]
    pub grant: String,
}

fn require_switch(switch: &Switch) -> Result<()> {
    if !switch.provisioning {
        bail!("provisioning is off, so nothing was changed: pass --provisioning or set BATON_PROVISIONING=true to let this host write to AWS");
    }
    Ok(())
}

fn wit_id(id: Option<&p::ResourceId>) -> wit::ResourceId {
    let id = id.cloned().unwrap_or_default();
    wit::ResourceId {
        resource_type: id.resource_type,
        resource: id.resource,
    }
}

fn minimal_resource(
    id: wit::ResourceId,
    parent: Option<wit::ResourceId>,
    name: String,
) -> wit::Resource {
    wit::Resource {
        id,
        parent,
        display_name: name,
        description: None,
        traits: vec![],
        profile: None,
        status: wit::Status::Unspecified,
        created_at: None,
        annotations: vec![],
    }
}

fn one_blob(reader: &Reader, table: &str, external_id: &str) -> Result<Option<Vec<u8>>> {
    Ok(reader
        .blobs(table, Some(("external_id", external_id)))?
        .into_iter()
        .next())
}

fn open(file: &Path) -> Result<Reader> {
    Reader::open(file)
        .with_context(|| "provisioning looks entitlements and grants up in a recent sync (-f)")
}

pub fn annotation_names(anns: &[wit::Annotation]) -> Vec<String> {
    anns.iter()
        .map(|a| match a {
            wit::Annotation::GrantAlreadyExists => "already exists".to_string(),
            wit::Annotation::GrantAlreadyRevoked => "already revoked".to_string(),
            wit::Annotation::RequestId(id) => format!("request {id}"),
            other => format!("{other:?}"),
        })
        .collect()
}

/// The entitlement and principal of a grant request, looked up in a recent sync. A
/// principal created since that sync is not in the file; its id is enough.
pub fn grant_request(
    file: &Path,
    entitlement_id: &str,
    principal_type: &str,
    principal_id: &str,
) -> Result<(wit::Entitlement, wit::Resource)> {
    let reader = open(file)?;
    let blob = one_blob(&reader, "v1_entitlements", entitlement_id)?.ok_or_else(|| {
        anyhow!(
            "entitlement {entitlement_id} is not in {}; sync first, or check the id with `host entitlements`",
            file.display()
        )
    })?;
    let e = p::Entitlement::decode(blob.as_slice())?;
    let entitlement = wit::Entitlement {
        id: e.id.clone(),
        resource: wit_id(e.resource.as_ref().and_then(|r| r.id.as_ref())),
        slug: e.slug.clone(),
        display_name: e.display_name.clone(),
        description: e.description.clone(),
        purpose: wit::Purpose::Assignment,
        grantable_to: e.grantable_to.iter().map(|t| t.id.clone()).collect(),
        annotations: vec![],
    };
    let id = wit::ResourceId {
        resource_type: principal_type.to_string(),
        resource: principal_id.to_string(),
    };
    let key = format!("{principal_type}:{principal_id}");
    let principal = match one_blob(&reader, "v1_resources", &key)? {
        Some(b) => {
            let r = p::Resource::decode(b.as_slice())?;
            minimal_resource(
                id,
                r.parent_resource_id.as_ref().map(|p| wit_id(Some(p))),
                r.display_name,
            )
        }
        None => minimal_resource(id, None, principal_id.to_string()),
    };
    Ok((entitlement, principal))
}

/// The grant a revoke request names, looked up in a recent sync.
pub fn revoke_request(file: &Path, grant_id: &str) -> Result<wit::Grant> {
    let reader = open(file)?;
    let blob = one_blob(&reader, "v1_grants", grant_id)?.ok_or_else(|| {
        anyhow!(
            "grant {grant_id} is not in {}; check the id with `host grants`",
            file.display()
        )
    })?;
    let g = p::Grant::decode(blob.as_slice())?;
    let entitlement = g.entitlement.clone().unwrap_or_default();
    Ok(wit::Grant {
        id: g.id.clone(),
        entitlement_id: entitlement.id.clone(),
        resource: wit_id(entitlement.resource.as_ref().and_then(|r| r.id.as_ref())),
        principal: wit_id(g.principal.as_ref().and_then(|r| r.id.as_ref())),
        annotations: vec![],
    })
}

pub fn grant(args: GrantArgs) -> Result<()> {
    require_switch(&args.switch)?;
    let (entitlement, principal) = grant_request(
        &args.switch.file,
        &args.entitlement,
        &args.principal_type,
        &args.principal,
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut session = connect(&args.connector, true).await?;
        let result = session.inst.grant(&entitlement, &principal).await.map_err(|e| anyhow!("granting {} to {}:{} failed: {e}{}", entitlement.id, args.principal_type, args.principal, session.denied_note()))?;
        let status = annotation_names(&result.annotations);
        match args.switch.output {
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "granted": result.grants.iter().map(|g| serde_json::json!({
                        "id": g.id, "entitlement": g.entitlement_id,
                        "principal": {"resource_type": g.principal.resource_type, "id": g.principal.resource},
                    })).collect::<Vec<_>>(),
                    "status": status,
                    "aws_calls": session.calls(),
                }))?
            ),
            Format::Table => {
                let outcome = if status.iter().any(|s| s == "already exists") { "already exists" } else { "granted" };
                println!("{outcome}: {} to {} ({})", entitlement.id, principal.display_name, args.principal_type);
                for g in &result.grants {
                    println!("  grant {}", g.id);
                }
                let rest: Vec<&String> = status.iter().filter(|s| !s.starts_with("already")).collect();
                if !rest.is_empty() {
                    println!("  {}", rest.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "));
                }
            }
        }
        Ok(())
    })
}

pub fn revoke(args: RevokeArgs) -> Result<()> {
    require_switch(&args.switch)?;
    let grant = revoke_request(&args.switch.file, &args.grant)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut session = connect(&args.connector, true).await?;
        let annotations =
            session.inst.revoke(&grant).await.map_err(|e| {
                anyhow!("revoking {} failed: {e}{}", grant.id, session.denied_note())
            })?;
        let status = annotation_names(&annotations);
        match args.switch.output {
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "revoked": grant.id, "status": status, "aws_calls": session.calls(),
                }))?
            ),
            Format::Table => {
                let outcome = if status.iter().any(|s| s == "already revoked") {
                    "already revoked"
                } else {
                    "revoked"
                };
                println!("{outcome}: {}", grant.id);
                let rest: Vec<&String> = status
                    .iter()
                    .filter(|s| !s.starts_with("already"))
                    .collect();
                if !rest.is_empty() {
                    println!(
                        "  {}",
                        rest.iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
        }
        Ok(())
    })
}
