//! The sync engine: resource types, resources, entitlements, grants, in baton's order,
//! one page at a time, each page committed in one transaction; grant expansion at the end.

use crate::bindings::wit;
use crate::encode;
use crate::expand;
use crate::runtime::{describe_error, CallFailure, Instance};
use crate::store::proto as p;
use crate::store::writer::Writer;
use anyhow::{anyhow, bail, Result};
use prost::Message;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Attempts per page when the connector reports throttling or a transient failure
/// (it has already retried each AWS call itself).
const PAGE_ATTEMPTS: u32 = 4;
/// A connector returning more pages than this for one listing is looping.
const MAX_PAGES: usize = 100_000;
/// The largest resource, entitlement or grant the host stores.
const MAX_RECORD_BYTES: usize = 1 << 20;

#[derive(Debug, Default)]
pub struct Summary {
    pub output: PathBuf,
    pub sync_id: String,
    pub resources: BTreeMap<String, u64>,
    pub entitlements: u64,
    pub grants: u64,
    pub expansion_edges: usize,
    pub expanded_created: usize,
    pub expanded_updated: usize,
    pub warnings: Vec<String>,
    /// Milliseconds per phase, as baton's `step_durations_ms`.
    pub phases_ms: BTreeMap<String, u64>,
    pub elapsed: Duration,
}

impl Summary {
    pub fn stats_json(&self, resource_types: usize, grants_total: u64) -> String {
        let mut stats = serde_json::Map::new();
        let mut put = |k: &str, v: serde_json::Value| {
            stats.insert(k.to_string(), v);
        };
        put("resource_types", resource_types.into());
        put("resources", self.resources.values().sum::<u64>().into());
        put("entitlements", self.entitlements.into());
        put("grants", grants_total.into());
        put(
            "resources_by_resource_type",
            serde_json::to_value(&self.resources).unwrap_or_default(),
        );
        serde_json::Value::Object(stats).to_string()
    }
}

/// Calls one connector page with bounded retries on throttling and transient errors.
macro_rules! page {
    ($inst:expr, $what:expr, $call:ident ( $($arg:expr),* )) => {{
        let mut attempt = 1;
        loop {
            match $inst.$call($($arg),*).await {
                Ok(page) => break Ok(page),
                Err(CallFailure::Connector(e)) if attempt < PAGE_ATTEMPTS && retryable(&e) => {
                    tokio::time::sleep(backoff(&e, attempt)).await;
                    attempt += 1;
                }
                Err(e) => break Err(e),
            }
        }
    }};
}

fn retryable(e: &wit::ConnectorError) -> bool {
    matches!(
        e,
        wit::ConnectorError::Throttled(_)
            | wit::ConnectorError::Transient(_)
            | wit::ConnectorError::CredentialsExpired(_)
    )
}

fn backoff(e: &wit::ConnectorError, attempt: u32) -> Duration {
    let base = Duration::from_secs(2u64.pow(attempt));
    match e {
        wit::ConnectorError::Throttled(t) => {
            base.max(Duration::from_millis(t.retry_after_ms.unwrap_or(0)))
        }
        _ => base,
    }
}

fn fail(what: &str, e: CallFailure) -> anyhow::Error {
    anyhow!("{what}: {e}")
}

/// A per-resource failure that should not stop the sync: recorded as a warning.
fn is_warning(e: &CallFailure) -> bool {
    matches!(
        e,
        CallFailure::Connector(
            wit::ConnectorError::AccessDenied(_) | wit::ConnectorError::NotFound(_)
        )
    )
}

fn skips(
    resource: &wit::Resource,
    types: &HashMap<String, wit::ResourceType>,
    entitlements: bool,
) -> bool {
    let hit = |anns: &[wit::Annotation]| {
        anns.iter().any(|a| match a {
            wit::Annotation::SkipEntitlementsAndGrants => true,
            wit::Annotation::SkipEntitlements => entitlements,
            wit::Annotation::SkipGrants => !entitlements,
            _ => false,
        })
    };
    hit(&resource.annotations)
        || types
            .get(&resource.id.resource_type)
            .is_some_and(|t| hit(&t.annotations))
}

/// Watches a sync: shown progress, and a way to stop it between pages.
pub trait Observer {
    /// Called after every committed page. An error stops the sync there; the previous
    /// file stays as it was.
    fn page_done(&self, summary: &Summary) -> Result<()>;
}

pub async fn run(
    inst: &mut Instance,
    resource_types: &[wit::ResourceType],
    out: &Path,
    observer: &dyn Observer,
) -> Result<Summary> {
    let started = Instant::now();
    let mut summary = Summary {
        output: out.to_path_buf(),
        ..Default::default()
    };
    let mut writer = Writer::begin(out)?;
    summary.sync_id = writer.sync_id.clone();

    let types: HashMap<String, wit::ResourceType> = resource_types
        .iter()
        .map(|t| (t.id.clone(), t.clone()))
        .collect();
    let proto_types: HashMap<String, p::ResourceType> = resource_types
        .iter()
        .map(|t| (t.id.clone(), encode::resource_type(t)))
        .collect();
    writer.put_resource_types(
        &resource_types
            .iter()
            .map(encode::resource_type)
            .collect::<Vec<_>>(),
    )?;

    let mut phase = Instant::now();
    let mut lap = |summary: &mut Summary, name: &str| {
        summary
            .phases_ms
            .insert(name.to_string(), phase.elapsed().as_millis() as u64);
        phase = Instant::now();
    };

    // Resources: every type at the top level, then children announced by their parents.
    let mut resources: Vec<(wit::Resource, p::Resource)> = Vec::new();
    let mut queue: VecDeque<(String, Option<wit::ResourceId>)> = resource_types
        .iter()
        .map(|t| (t.id.clone(), None))
        .collect();
    let mut listed: HashSet<(String, Option<(String, String)>)> = HashSet::new();
    while let Some((rtype, parent)) = queue.pop_front() {
        if !listed.insert((
            rtype.clone(),
            parent
                .as_ref()
                .map(|p| (p.resource_type.clone(), p.resource.clone())),
        )) {
            continue;
        }
        let mut token: Option<String> = None;
        for pages in 0.. {
            if pages >= MAX_PAGES {
                bail!("listing {rtype} resources did not end after {MAX_PAGES} pages");
            }
            let page = match page!(
                inst,
                "list-resources",
                list_resources(&rtype, parent.as_ref(), token.as_deref())
            ) {
                Ok(p) => p,
                // Children of one parent (a member account) that cannot be read are a
                // warning; the top-level listing of a type is not optional.
                Err(e) if parent.is_some() && is_warning(&e) => {
                    let p = parent.as_ref().expect("checked");
                    summary.warnings.push(format!(
                        "{rtype} resources of {}:{}: {e}",
                        p.resource_type, p.resource
                    ));
                    break;
                }
                Err(e) => return Err(fail(&format!("listing {rtype} resources failed"), e)),
            };
            summary.warnings.extend(page.warnings.iter().cloned());
            let mut batch = Vec::with_capacity(page.items.len());
            for r in page.items {
                if r.id.resource.is_empty() || r.id.resource_type.is_empty() {
                    summary
                        .warnings
                        .push(format!("a {rtype} resource without an id was dropped"));
                    continue;
                }
                for a in &r.annotations {
                    if let wit::Annotation::ChildResourceType(child) = a {
                        queue.push_back((child.clone(), Some(r.id.clone())));
                    }
                }
                let proto = encode::resource(&r)
                    .map_err(|e| anyhow!("the connector returned a malformed resource: {e:#}"))?;
                check_size("resource", &r.id.resource, proto.encoded_len())?;
                *summary
                    .resources
                    .entry(r.id.resource_type.clone())
                    .or_default() += 1;
                batch.push(proto.clone());
                resources.push((r, proto));
            }
            writer.put_resources(&batch)?;
            observer.page_done(&summary)?;
            match next_token(&rtype, token.as_deref(), page.next_page_token)? {
                Some(t) => token = Some(t),
                None => break,
            }
        }
    }

    lap(&mut summary, "resources");

    // Entitlements of every resource.
    let mut entitlements: HashMap<String, p::Entitlement> = HashMap::new();
    for (r, proto) in &resources {
        if skips(r, &types, true) {
            continue;
        }
        let mut token: Option<String> = None;
        loop {
            let page = match page!(
                inst,
                "list-entitlements",
                list_entitlements(r, token.as_deref())
            ) {
                Ok(p) => p,
                Err(e) if is_warning(&e) => {
                    summary.warnings.push(format!(
                        "entitlements of {}:{}: {e}",
                        r.id.resource_type, r.id.resource
                    ));
                    break;
                }
                Err(e) => {
                    return Err(fail(
                        &format!(
                            "listing entitlements of {}:{} failed",
                            r.id.resource_type, r.id.resource
                        ),
                        e,
                    ))
                }
            };
            summary.warnings.extend(page.warnings.iter().cloned());
            let batch: Vec<p::Entitlement> = page
                .items
                .iter()
                .map(|e| encode::entitlement(e, proto, &proto_types))
                .collect();
            for e in &batch {
                check_size("entitlement", &e.id, e.encoded_len())?;
            }
            summary.entitlements += batch.len() as u64;
            writer.put_entitlements(&batch)?;
            observer.page_done(&summary)?;
            for e in batch {
                entitlements.insert(e.id.clone(), e);
            }
            match next_token("entitlements", token.as_deref(), page.next_page_token)? {
                Some(t) => token = Some(t),
                None => break,
            }
        }
    }

    lap(&mut summary, "entitlements");

    // Grants of every resource.
    for (r, proto) in &resources {
        if skips(r, &types, false) {
            continue;
        }
        let mut token: Option<String> = None;
        loop {
            let page = match page!(inst, "list-grants", list_grants(r, token.as_deref())) {
                Ok(p) => p,
                Err(e) if is_warning(&e) => {
                    summary.warnings.push(format!(
                        "grants of {}:{}: {e}",
                        r.id.resource_type, r.id.resource
                    ));
                    break;
                }
                Err(e) => {
                    return Err(fail(
                        &format!(
                            "listing grants of {}:{} failed",
                            r.id.resource_type, r.id.resource
                        ),
                        e,
                    ))
                }
            };
            summary.warnings.extend(page.warnings.iter().cloned());
            let batch: Vec<_> = page
                .items
                .iter()
                .map(|g| encode::grant(g, entitlements.get(&g.entitlement_id), proto))
                .collect();
            for (g, _) in &batch {
                check_size("grant", &g.id, g.encoded_len())?;
            }
            summary.grants += batch.len() as u64;
            writer.put_grants(&batch)?;
            observer.page_done(&summary)?;
            match next_token("grants", token.as_deref(), page.next_page_token)? {
                Some(t) => token = Some(t),
                None => break,
            }
        }
    }

    lap(&mut summary, "grants");
    let outcome = expand::expand(writer.conn(), &writer.sync_id)?;
    lap(&mut summary, "expansion");
    summary.expansion_edges = outcome.edges;
    summary.expanded_created = outcome.created;
    summary.expanded_updated = outcome.updated;
    summary.warnings.extend(outcome.warnings);

    let grants_total = summary.grants + outcome.created as u64;
    let stats = summary.stats_json(resource_types.len(), grants_total);
    writer.finish(&stats)?;
    lap(&mut summary, "write");
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Refuses a record larger than baton's records ever are: a connector bug or a hostile
/// component, not data.
fn check_size(kind: &str, id: &str, bytes: usize) -> Result<()> {
    if bytes > MAX_RECORD_BYTES {
        let id: String = id.chars().take(80).collect();
        bail!(
            "the connector returned a {kind} of {} KiB ({id:?}); the host accepts at most {} KiB per record",
            bytes >> 10,
            MAX_RECORD_BYTES >> 10
        );
    }
    Ok(())
}

/// The next page token, refusing one that repeats the current token (a connector bug
/// that would loop forever).
fn next_token(what: &str, current: Option<&str>, next: Option<String>) -> Result<Option<String>> {
    match next.filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) if Some(t.as_str()) == current => {
            bail!("the connector returned the same page token twice while listing {what}")
        }
        Some(t) => Ok(Some(t)),
    }
}

pub fn explain_config_error(e: &CallFailure) -> String {
    match e {
        CallFailure::Connector(wit::ConnectorError::InvalidConfig(c)) => {
            format!("invalid setting {}: {}", c.setting, c.reason)
        }
        CallFailure::Connector(other) => describe_error(other),
        CallFailure::Sandbox(why) => why.clone(),
    }
}
