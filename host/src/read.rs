//! Read commands over a `.c1z`: resources, entitlements, grants, stats.

use crate::encode::struct_json;
use crate::store::proto::{self as p, any_name};
use crate::store::reader::Reader;
use crate::{Format, ReadArgs};
use anyhow::Result;
use prost::Message;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for r in rows {
        line(r.clone());
    }
}

fn names(reader: &Reader) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for blob in reader.blobs("v1_resources", None)? {
        let r = p::Resource::decode(blob.as_slice())?;
        if let Some(id) = &r.id {
            out.insert(
                format!("{}:{}", id.resource_type, id.resource),
                r.display_name,
            );
        }
    }
    Ok(out)
}

fn resource_json(r: &p::Resource) -> serde_json::Value {
    let id = r.id.clone().unwrap_or_default();
    let traits: Vec<&str> = r
        .annotations
        .iter()
        .filter_map(any_name)
        .filter(|n| n.ends_with("Trait"))
        .collect();
    json!({
        "resource_type": id.resource_type,
        "id": id.resource,
        "display_name": r.display_name,
        "description": r.description,
        "parent": r.parent_resource_id.as_ref().map(|p| json!({"resource_type": p.resource_type, "id": p.resource})),
        "traits": traits,
        "status": match r.status.as_ref().map(|s| s.status) {
            Some(1) => "enabled",
            Some(2) => "disabled",
            Some(3) => "deleted",
            _ => "unspecified",
        },
        "emails": user_emails(r),
        "profile": r.profile.as_ref().map(struct_json),
    })
}

fn user_emails(r: &p::Resource) -> Vec<String> {
    r.annotations
        .iter()
        .filter(|a| any_name(a) == Some("UserTrait"))
        .filter_map(|a| p::UserTrait::decode(a.value.as_slice()).ok())
        .flat_map(|t| t.emails.into_iter().map(|e| e.address))
        .collect()
}

pub fn resources(args: &ReadArgs, resource_type: Option<&str>) -> Result<()> {
    let reader = Reader::open(&args.file)?;
    let names = names(&reader)?;
    let blobs = reader.blobs(
        "v1_resources",
        resource_type.map(|t| ("resource_type_id", t)),
    )?;
    let list: Vec<p::Resource> = blobs
        .iter()
        .map(|b| p::Resource::decode(b.as_slice()))
        .collect::<Result<_, _>>()?;
    match args.output {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&list.iter().map(resource_json).collect::<Vec<_>>())?
        ),
        Format::Table => {
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|r| {
                    let id = r.id.clone().unwrap_or_default();
                    let parent = match &r.parent_resource_id {
                        Some(p) => format!(
                            "{} ({})",
                            names
                                .get(&format!("{}:{}", p.resource_type, p.resource))
                                .cloned()
                                .unwrap_or(p.resource.clone()),
                            p.resource_type
                        ),
                        None => "-".into(),
                    };
                    vec![
                        id.resource,
                        r.display_name.clone(),
                        id.resource_type,
                        parent,
                    ]
                })
                .collect();
            print_table(
                &["ID", "Display Name", "Resource Type", "Parent Resource"],
                &rows,
            );
        }
    }
    Ok(())
}

pub fn entitlements(args: &ReadArgs, resource_type: Option<&str>) -> Result<()> {
    let reader = Reader::open(&args.file)?;
    let blobs = reader.blobs(
        "v1_entitlements",
        resource_type.map(|t| ("resource_type_id", t)),
    )?;
    let list: Vec<p::Entitlement> = blobs
        .iter()
        .map(|b| p::Entitlement::decode(b.as_slice()))
        .collect::<Result<_, _>>()?;
    match args.output {
        Format::Json => {
            let out: Vec<_> = list
                .iter()
                .map(|e| {
                    let r = e.resource.clone().unwrap_or_default();
                    let rid = r.id.unwrap_or_default();
                    json!({
                        "id": e.id, "display_name": e.display_name, "description": e.description, "slug": e.slug,
                        "resource": {"resource_type": rid.resource_type, "id": rid.resource, "display_name": r.display_name},
                        "grantable_to": e.grantable_to.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|e| {
                    let r = e.resource.clone().unwrap_or_default();
                    let rid = r.id.unwrap_or_default();
                    vec![
                        e.id.clone(),
                        e.display_name.clone(),
                        rid.resource_type,
                        r.display_name,
                        e.slug.clone(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "ID",
                    "Display Name",
                    "Resource Type",
                    "Resource",
                    "Permission",
                ],
                &rows,
            );
        }
    }
    Ok(())
}

pub fn grants(
    args: &ReadArgs,
    resource_type: Option<&str>,
    entitlement: Option<&str>,
    principal_type: Option<&str>,
) -> Result<()> {
    let reader = Reader::open(&args.file)?;
    let names = names(&reader)?;
    let filter = match (entitlement, resource_type) {
        (Some(e), _) => Some(("entitlement_id", e)),
        (None, Some(t)) => Some(("resource_type_id", t)),
        (None, None) => None,
    };
    let mut list: Vec<p::Grant> = reader
        .blobs("v1_grants", filter)?
        .iter()
        .map(|b| p::Grant::decode(b.as_slice()))
        .collect::<Result<_, _>>()?;
    let principal_of = |g: &p::Grant| {
        g.principal
            .as_ref()
            .and_then(|p| p.id.clone())
            .unwrap_or_default()
    };
    let resource_of = |g: &p::Grant| {
        g.entitlement
            .as_ref()
            .and_then(|e| e.resource.as_ref())
            .and_then(|r| r.id.clone())
            .unwrap_or_default()
    };
    list.retain(|g| resource_type.is_none_or(|t| resource_of(g).resource_type == t));
    list.retain(|g| principal_type.is_none_or(|t| principal_of(g).resource_type == t));
    match args.output {
        Format::Json => {
            let out: Vec<_> = list
                .iter()
                .map(|g| {
                    let pr = principal_of(g);
                    let rs = resource_of(g);
                    let sources: BTreeMap<String, bool> = g
                        .sources
                        .as_ref()
                        .map(|s| s.sources.iter().map(|(k, v)| (k.clone(), v.is_direct)).collect())
                        .unwrap_or_default();
                    json!({
                        "id": g.id,
                        "entitlement": g.entitlement.as_ref().map(|e| e.id.clone()),
                        "resource": {"resource_type": rs.resource_type, "id": rs.resource},
                        "principal": {"resource_type": pr.resource_type, "id": pr.resource},
                        "sources": sources,
                        "expanded": g.annotations.iter().any(|a| any_name(a) == Some("GrantImmutable")),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|g| {
                    let pr = principal_of(g);
                    let rs = resource_of(g);
                    let name = |t: &str, id: &str| {
                        names
                            .get(&format!("{t}:{id}"))
                            .cloned()
                            .unwrap_or_else(|| id.to_string())
                    };
                    vec![
                        g.id.clone(),
                        rs.resource_type.clone(),
                        name(&rs.resource_type, &rs.resource),
                        g.entitlement
                            .as_ref()
                            .map(|e| e.id.clone())
                            .unwrap_or_default(),
                        format!(
                            "{} ({})",
                            name(&pr.resource_type, &pr.resource),
                            pr.resource_type
                        ),
                    ]
                })
                .collect();
            print_table(
                &[
                    "ID",
                    "Resource Type",
                    "Resource",
                    "Entitlement",
                    "Principal",
                ],
                &rows,
            );
        }
    }
    Ok(())
}

pub fn stats(args: &ReadArgs) -> Result<()> {
    let reader = Reader::open(&args.file)?;
    let count = |sql: &str| -> Result<BTreeMap<String, i64>> {
        let mut stmt = reader.conn.prepare(sql)?;
        let rows = stmt.query_map([&reader.sync_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    let resources =
        count("select resource_type_id, count(*) from v1_resources where sync_id = ?1 group by 1")?;
    let entitlements = count(
        "select resource_type_id, count(*) from v1_entitlements where sync_id = ?1 group by 1",
    )?;
    let grants =
        count("select resource_type_id, count(*) from v1_grants where sync_id = ?1 group by 1")?;
    match args.output {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "sync_id": reader.sync_id, "started_at": reader.started_at, "ended_at": reader.ended_at,
                "resources": resources, "entitlements": entitlements, "grants": grants,
            }))?
        ),
        Format::Table => {
            println!(
                "sync {} ({} to {})",
                reader.sync_id, reader.started_at, reader.ended_at
            );
            let mut rows = Vec::new();
            let mut types: Vec<&String> = resources
                .keys()
                .chain(entitlements.keys())
                .chain(grants.keys())
                .collect();
            types.sort();
            types.dedup();
            for t in types {
                let n = |m: &BTreeMap<String, i64>| m.get(t).copied().unwrap_or(0).to_string();
                rows.push(vec![t.clone(), n(&resources), n(&entitlements), n(&grants)]);
            }
            print_table(
                &["Resource Type", "Resources", "Entitlements", "Grants"],
                &rows,
            );
        }
    }
    Ok(())
}
