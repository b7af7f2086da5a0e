//! The sync engine: resource types, resources, entitlements, grants, in baton's order,
//! one page at a time, each page committed in one transaction; grant expansion at the end.

use crate::bindings::wit;
use crate::decode;
use crate::encode;
use crate::expand;
use crate::log;
use crate::runtime::{describe_error, CallFailure, Instance};
use crate::store::proto as p;
use crate::store::writer::Writer;
use anyhow::{anyhow, bail, Result};
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
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
    /// It continued an interrupted sync.
    pub resumed: bool,
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

    /// A log line about the sync (the service adds the connector's name).
    fn log(&self, level: log::Level, message: &str, fields: &[(&str, &str)]) {
        log::emit(level, message, fields);
    }
}

/// A sync that started longer ago than this is not continued: its first pages would
/// describe the organisation as it was hours before its last ones.
const MAX_RESUME_AGE: Duration = Duration::from_secs(2 * 3600);
/// Resources read back from the store at a time for their entitlements and grants.
const RESOURCES_PER_READ: usize = 256;
const CHECKPOINT_VERSION: u32 = 1;
/// Progress over pages without items is saved at most this often.
const SAVE_EMPTY_EVERY: Duration = Duration::from_secs(1);

/// One listing of resources: a type, under a parent or at the top level.
type Listing = (String, Option<(String, String)>);

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
enum Phase {
    Resources,
    Entitlements,
    Grants,
    Expanded,
}

/// What a sync has done so far, saved with every page (in the same transaction), so a
/// killed host continues from the last committed page.
#[derive(Serialize, Deserialize)]
struct Saved {
    host_checkpoint: u32,
    /// The component and settings that made it: another configuration starts over.
    key: String,
    started_unix: u64,
    phase: Phase,
    /// Resources phase: listings still to do, done, and the one in progress.
    queue: VecDeque<Listing>,
    listed: BTreeSet<Listing>,
    current: Option<Listing>,
    /// Entitlements and grants phases: the last stored resource row finished, and the
    /// row in progress.
    after: i64,
    row: Option<i64>,
    /// The next page of the listing or row in progress.
    token: Option<String>,
    resources: BTreeMap<String, u64>,
    entitlements: u64,
    grants: u64,
    warnings: Vec<String>,
    expansion: (usize, usize, usize),
}

impl Saved {
    fn new(key: &str, resource_types: &[wit::ResourceType]) -> Saved {
        Saved {
            host_checkpoint: CHECKPOINT_VERSION,
            key: key.to_string(),
            started_unix: unix_now(),
            phase: Phase::Resources,
            queue: resource_types
                .iter()
                .map(|t| (t.id.clone(), None))
                .collect(),
            listed: BTreeSet::new(),
            current: None,
            after: 0,
            row: None,
            token: None,
            resources: BTreeMap::new(),
            entitlements: 0,
            grants: 0,
            warnings: Vec::new(),
            expansion: (0, 0, 0),
        }
    }

    /// The saved state of an unfinished sync, if this run may continue it.
    fn continued(text: &str, key: &str) -> std::result::Result<Saved, String> {
        let saved: Saved = serde_json::from_str(text)
            .map_err(|_| "its saved progress was not written by this host version".to_string())?;
        if saved.host_checkpoint != CHECKPOINT_VERSION {
            return Err("its saved progress was written by another host version".into());
        }
        if saved.key != key {
            return Err("it was made by another component or with other settings".into());
        }
        let age = unix_now().saturating_sub(saved.started_unix);
        if age > MAX_RESUME_AGE.as_secs() {
            return Err(format!(
                "it started {} min ago; a sync older than {} min is not continued",
                age / 60,
                MAX_RESUME_AGE.as_secs() / 60
            ));
        }
        Ok(saved)
    }

    fn json(&self) -> String {
        serde_json::to_string(self).expect("the saved state is plain data")
    }

    fn fill(&self, summary: &mut Summary) {
        summary.resources.clone_from(&self.resources);
        summary.entitlements = self.entitlements;
        summary.grants = self.grants;
        summary.warnings.clone_from(&self.warnings);
    }

    fn describe(&self) -> String {
        let stored = format!(
            "{} resources, {} entitlements and {} grants already stored",
            self.resources.values().sum::<u64>(),
            self.entitlements,
            self.grants
        );
        let at = match self.phase {
            Phase::Resources => "listing resources",
            Phase::Entitlements => "listing entitlements",
            Phase::Grants => "listing grants",
            Phase::Expanded => "writing the file",
        };
        format!("{stored}; continuing with {at}")
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Opens the sync's store: the interrupted sync of this configuration if there is one,
/// else a new one.
fn open(
    out: &Path,
    key: &str,
    resource_types: &[wit::ResourceType],
    observer: &dyn Observer,
) -> Result<(Writer, Saved, bool)> {
    let mut writer = Writer::begin(out)?;
    let mut saved = None;
    if let Some(text) = writer.saved_state.take() {
        match Saved::continued(&text, key) {
            Ok(s) => saved = Some(s),
            Err(why) => writer = writer.start_over(why)?,
        }
    }
    let checkpoint = writer.checkpoint().display().to_string();
    if let Some(why) = &writer.discarded {
        observer.log(
            log::Level::Warn,
            "starting a new sync: the checkpoint is not continued",
            &[("checkpoint", &checkpoint), ("reason", why)],
        );
    }
    let resumed = saved.is_some();
    let saved = match saved {
        Some(s) => {
            observer.log(
                log::Level::Info,
                "continuing an interrupted sync",
                &[
                    ("sync_id", &writer.sync_id),
                    ("checkpoint", &checkpoint),
                    ("progress", &s.describe()),
                ],
            );
            s
        }
        None => {
            let s = Saved::new(key, resource_types);
            let protos: Vec<_> = resource_types.iter().map(encode::resource_type).collect();
            writer.put_resource_types(&protos, &s.json())?;
            s
        }
    };
    Ok((writer, saved, resumed))
}

/// Runs a full sync into `out`, or continues the one a killed or failed run left in its
/// checkpoint. `key` names the component and settings: a checkpoint made with another
/// key is not continued.
pub async fn run(
    inst: &mut Instance,
    resource_types: &[wit::ResourceType],
    out: &Path,
    key: &str,
    observer: &dyn Observer,
) -> Result<Summary> {
    let started = Instant::now();
    let mut summary = Summary {
        output: out.to_path_buf(),
        ..Default::default()
    };
    let (mut writer, mut saved, resumed) = open(out, key, resource_types, observer)?;
    summary.sync_id = writer.sync_id.clone();
    summary.resumed = resumed;
    saved.fill(&mut summary);

    let types: HashMap<String, wit::ResourceType> = resource_types
        .iter()
        .map(|t| (t.id.clone(), t.clone()))
        .collect();
    let proto_types: HashMap<String, p::ResourceType> = resource_types
        .iter()
        .map(|t| (t.id.clone(), encode::resource_type(t)))
        .collect();

    let mut phase = Instant::now();
    let mut lap = |summary: &mut Summary, name: &str| {
        summary
            .phases_ms
            .insert(name.to_string(), phase.elapsed().as_millis() as u64);
        phase = Instant::now();
    };

    if saved.phase == Phase::Resources {
        list_resources(inst, &mut writer, &mut saved, &mut summary, observer).await?;
        saved.phase = Phase::Entitlements;
        saved.after = 0;
        writer.save(&saved.json())?;
    }
    lap(&mut summary, "resources");
    let ctx = Context {
        types: &types,
        proto_types: &proto_types,
        observer,
    };
    if saved.phase == Phase::Entitlements {
        per_resource(inst, &mut writer, &mut saved, &mut summary, &ctx).await?;
        saved.phase = Phase::Grants;
        saved.after = 0;
        writer.save(&saved.json())?;
    }
    lap(&mut summary, "entitlements");
    if saved.phase == Phase::Grants {
        per_resource(inst, &mut writer, &mut saved, &mut summary, &ctx).await?;
    }
    lap(&mut summary, "grants");
    if saved.phase == Phase::Grants {
        let saved = &mut saved;
        writer.transaction(|tx, sync_id| {
            let outcome = expand::expand(tx, sync_id)?;
            saved.phase = Phase::Expanded;
            saved.expansion = (outcome.edges, outcome.created, outcome.updated);
            saved.warnings.extend(outcome.warnings);
            Ok(((), saved.json()))
        })?;
    }
    lap(&mut summary, "expansion");
    saved.fill(&mut summary);
    (
        summary.expansion_edges,
        summary.expanded_created,
        summary.expanded_updated,
    ) = saved.expansion;

    let grants_total = summary.grants + summary.expanded_created as u64;
    let stats = summary.stats_json(resource_types.len(), grants_total);
    writer.finish(&stats)?;
    lap(&mut summary, "write");
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Resources: every type at the top level, then children announced by their parents.
async fn list_resources(
    inst: &mut Instance,
    writer: &mut Writer,
    saved: &mut Saved,
    summary: &mut Summary,
    observer: &dyn Observer,
) -> Result<()> {
    loop {
        let (listing, mut token) = match saved.current.take() {
            Some(l) => (l, saved.token.take()),
            None => match saved.queue.pop_front() {
                Some(l) if saved.listed.contains(&l) => continue,
                Some(l) => (l, None),
                None => return Ok(()),
            },
        };
        saved.listed.insert(listing.clone());
        let (rtype, parent) = &listing;
        let parent_id = parent.as_ref().map(|(t, r)| wit::ResourceId {
            resource_type: t.clone(),
            resource: r.clone(),
        });
        for pages in 0.. {
            if pages >= MAX_PAGES {
                bail!("listing {rtype} resources did not end after {MAX_PAGES} pages");
            }
            let page = match page!(
                inst,
                "list-resources",
                list_resources(rtype, parent_id.as_ref(), token.as_deref())
            ) {
                Ok(p) => p,
                // Children of one parent (a member account) that cannot be read are a
                // warning; the top-level listing of a type is not optional.
                Err(e) if parent.is_some() && is_warning(&e) => {
                    let (pt, pr) = parent.as_ref().expect("checked");
                    saved
                        .warnings
                        .push(format!("{rtype} resources of {pt}:{pr}: {e}"));
                    break;
                }
                Err(e) => return Err(fail(&format!("listing {rtype} resources failed"), e)),
            };
            saved.warnings.extend(page.warnings.iter().cloned());
            let mut batch = Vec::with_capacity(page.items.len());
            for r in page.items {
                if r.id.resource.is_empty() || r.id.resource_type.is_empty() {
                    saved
                        .warnings
                        .push(format!("a {rtype} resource without an id was dropped"));
                    continue;
                }
                for a in &r.annotations {
                    if let wit::Annotation::ChildResourceType(child) = a {
                        saved.queue.push_back((
                            child.clone(),
                            Some((r.id.resource_type.clone(), r.id.resource.clone())),
                        ));
                    }
                }
                let proto = encode::resource(&r)
                    .map_err(|e| anyhow!("the connector returned a malformed resource: {e:#}"))?;
                check_size("resource", &r.id.resource, proto.encoded_len())?;
                *saved
                    .resources
                    .entry(r.id.resource_type.clone())
                    .or_default() += 1;
                batch.push(proto);
            }
            token = next_token(rtype, token.as_deref(), page.next_page_token)?;
            if token.is_some() {
                saved.current = Some(listing.clone());
                saved.token.clone_from(&token);
            }
            writer.put_resources(&batch, &saved.json())?;
            saved.current = None;
            saved.token = None;
            saved.fill(summary);
            observer.page_done(summary)?;
            if token.is_none() {
                break;
            }
        }
    }
}

struct Context<'a> {
    types: &'a HashMap<String, wit::ResourceType>,
    proto_types: &'a HashMap<String, p::ResourceType>,
    observer: &'a dyn Observer,
}

/// The entitlements phase or the grants phase: every stored resource, in the order it
/// was stored, read back from the store a few hundred at a time.
async fn per_resource(
    inst: &mut Instance,
    writer: &mut Writer,
    saved: &mut Saved,
    summary: &mut Summary,
    ctx: &Context<'_>,
) -> Result<()> {
    let entitlements_phase = saved.phase == Phase::Entitlements;
    let mut last_save = Instant::now();
    let what = if entitlements_phase {
        "entitlements"
    } else {
        "grants"
    };
    loop {
        let rows = writer.resources_after(saved.after, RESOURCES_PER_READ)?;
        if rows.is_empty() {
            return Ok(());
        }
        for (row, proto) in rows {
            let r = decode::resource(&proto)?;
            if skips(&r, ctx.types, entitlements_phase) {
                saved.after = row;
                continue;
            }
            let mut token = match saved.row.take() {
                Some(r) if r == row => saved.token.take(),
                _ => None,
            };
            // The grants of one resource mostly name its own entitlements.
            let own = if entitlements_phase {
                HashMap::new()
            } else {
                writer.entitlements_of(&r.id.resource_type, &r.id.resource)?
            };
            let failed = |e: CallFailure| {
                fail(
                    &format!(
                        "listing {what} of {}:{} failed",
                        r.id.resource_type, r.id.resource
                    ),
                    e,
                )
            };
            loop {
                let listed = if entitlements_phase {
                    page!(
                        inst,
                        "list-entitlements",
                        list_entitlements(&r, token.as_deref())
                    )
                    .map(|p| (p.next_page_token, p.warnings, Items::Entitlements(p.items)))
                } else {
                    page!(inst, "list-grants", list_grants(&r, token.as_deref()))
                        .map(|p| (p.next_page_token, p.warnings, Items::Grants(p.items)))
                };
                let (next, warnings, items) = match listed {
                    Ok(page) => page,
                    Err(e) if is_warning(&e) => {
                        saved.warnings.push(format!(
                            "{what} of {}:{}: {e}",
                            r.id.resource_type, r.id.resource
                        ));
                        break;
                    }
                    Err(e) => return Err(failed(e)),
                };
                saved.warnings.extend(warnings);
                token = next_token(what, token.as_deref(), next)?;
                match &token {
                    Some(t) => {
                        saved.row = Some(row);
                        saved.token = Some(t.clone());
                    }
                    None => saved.after = row,
                }
                match items {
                    Items::Entitlements(items) => {
                        let batch: Vec<p::Entitlement> = items
                            .iter()
                            .map(|e| encode::entitlement(e, &proto, ctx.proto_types))
                            .collect();
                        for e in &batch {
                            check_size("entitlement", &e.id, e.encoded_len())?;
                        }
                        saved.entitlements += batch.len() as u64;
                        if due(&batch, &mut last_save) {
                            writer.put_entitlements(&batch, &saved.json())?;
                        }
                    }
                    Items::Grants(items) => {
                        let mut batch = Vec::with_capacity(items.len());
                        for g in &items {
                            let found = match own.get(&g.entitlement_id) {
                                Some(e) => Some(e.clone()),
                                None => writer.entitlement(&g.entitlement_id)?,
                            };
                            let encoded = encode::grant(g, found.as_ref(), &proto);
                            check_size("grant", &encoded.0.id, encoded.0.encoded_len())?;
                            batch.push(encoded);
                        }
                        saved.grants += batch.len() as u64;
                        if due(&batch, &mut last_save) {
                            writer.put_grants(&batch, &saved.json())?;
                        }
                    }
                }
                saved.row = None;
                saved.token = None;
                saved.fill(summary);
                ctx.observer.page_done(summary)?;
                if token.is_none() {
                    break;
                }
            }
            saved.after = row;
        }
    }
}

/// Whether a page is worth a commit: it has items, or the progress saved last is a
/// second old. (Most resources have no grants: a commit for each empty page would cost
/// more than the listing.)
fn due<T>(batch: &[T], last_save: &mut Instant) -> bool {
    if batch.is_empty() && last_save.elapsed() < SAVE_EMPTY_EVERY {
        return false;
    }
    *last_save = Instant::now();
    true
}

enum Items {
    Entitlements(Vec<wit::Entitlement>),
    Grants(Vec<wit::Grant>),
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
