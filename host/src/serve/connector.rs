//! One connector of a serving host: its own thread, tokio runtime and wasmtime engine, so
//! a connector that spins, hangs or runs out of memory cannot delay another.

use super::config::ConnectorPlan;
use crate::bindings::wit;
use crate::log;
use crate::metrics::ConnectorMetrics;
use crate::provision::{annotation_names, grant_request, revoke_request};
use crate::runtime::{Loaded, Runtime};
use crate::schedule::backoff;
use crate::session::{load, open, provider, Session};
use crate::sync::{self, Observer, Summary};
use crate::upload::{object_name, Outbox};
use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, watch, Notify, Semaphore};

/// Longest wait between retries of a failing connector.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

pub enum Action {
    Grant {
        entitlement: String,
        principal_type: String,
        principal: String,
    },
    Revoke {
        grant: String,
    },
}

/// Why a provisioning request did not succeed.
pub enum Failure {
    /// It names something the connector's latest sync does not hold.
    Unknown(String),
    /// The connector, AWS or the sandbox failed.
    Failed(String),
}

pub struct Job {
    pub action: Action,
    pub reply: oneshot::Sender<Result<Value, Failure>>,
}

/// What the HTTP side sees of a connector.
pub struct Handle {
    pub name: String,
    pub provisioning: bool,
    pub metrics: Mutex<ConnectorMetrics>,
    /// Ask for a sync now.
    pub trigger: Notify,
    pub jobs: mpsc::UnboundedSender<Job>,
    /// The connector's thread has ended.
    pub stopped: AtomicBool,
}

impl Handle {
    fn update(&self, f: impl FnOnce(&mut ConnectorMetrics)) {
        f(&mut self.metrics.lock().expect("metrics lock"));
    }
}

struct Worker {
    plan: ConnectorPlan,
    handle: Arc<Handle>,
    runtime: Runtime,
    loaded: Arc<Loaded>,
    output: PathBuf,
    outbox: Outbox,
    slots: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
}

pub fn start(
    plan: ConnectorPlan,
    state_dir: &Path,
    stop: watch::Receiver<bool>,
) -> Result<(Arc<Handle>, std::thread::JoinHandle<()>)> {
    let (jobs, job_rx) = mpsc::unbounded_channel();
    let handle = Arc::new(Handle {
        name: plan.spec.name.clone(),
        provisioning: plan.provisioning,
        metrics: Mutex::new(ConnectorMetrics {
            state: "starting",
            ..Default::default()
        }),
        trigger: Notify::new(),
        jobs,
        stopped: AtomicBool::new(false),
    });
    let dir = state_dir.join(&plan.spec.name);
    std::fs::create_dir_all(&dir).map_err(|e| anyhow!("cannot create {}: {e}", dir.display()))?;
    let h = handle.clone();
    let thread = std::thread::Builder::new()
        .name(format!("connector-{}", plan.spec.name))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    refuse(&h, &format!("cannot start its runtime: {e}"));
                    h.stopped.store(true, Ordering::SeqCst);
                    return;
                }
            };
            rt.block_on(run(plan, h.clone(), dir, job_rx, stop));
            h.stopped.store(true, Ordering::SeqCst);
        })?;
    Ok((handle, thread))
}

fn refuse(handle: &Handle, why: &str) {
    log::error(
        "connector refused; the others keep running",
        &[("connector", &handle.name), ("error", why)],
    );
    handle.update(|m| {
        m.state = "refused";
        m.last_error = Some(why.to_string());
        *m.errors.entry("host").or_default() += 1;
    });
}

async fn run(
    plan: ConnectorPlan,
    handle: Arc<Handle>,
    dir: PathBuf,
    mut job_rx: mpsc::UnboundedReceiver<Job>,
    mut stop: watch::Receiver<bool>,
) {
    // Load (compile or take from the cache), check the contract and the settings before
    // anything runs: a mistake there is refused once, not retried forever.
    let (runtime, loaded) = match prepare(&plan).await {
        Ok(v) => v,
        Err(e) => {
            refuse(&handle, &format!("{e:#}"));
            // Keep answering provisioning requests with the reason until shutdown.
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    job = job_rx.recv() => match job {
                        Some(job) => { let _ = job.reply.send(Err(Failure::Failed(format!("connector {} cannot run: {e:#}", handle.name)))); }
                        None => return,
                    },
                }
            }
        }
    };
    log::info(
        "component loaded",
        &[
            ("connector", &handle.name),
            ("sha256", &loaded.sha256),
            ("from_cache", &loaded.from_cache.to_string()),
            (
                "ms",
                &format!("{:.1}", loaded.load_time.as_secs_f64() * 1000.0),
            ),
        ],
    );
    handle.update(|m| m.state = "idle");
    let worker = Arc::new(Worker {
        slots: Arc::new(Semaphore::new(plan.concurrency)),
        output: dir.join("sync.c1z"),
        outbox: Outbox {
            dir: dir.join("outbox"),
        },
        plan,
        handle: handle.clone(),
        runtime,
        loaded,
        stop: stop.clone(),
    });
    // Provisioning requests run beside syncs, on this connector's thread.
    let w = worker.clone();
    let jobs = tokio::spawn(async move {
        while let Some(job) = job_rx.recv().await {
            let w = w.clone();
            tokio::spawn(async move {
                let _ = job.reply.send(w.provision(job.action).await);
            });
        }
    });
    let mut failures = 0u32;
    let mut next = if worker.plan.run_at_start {
        SystemTime::now()
    } else {
        worker.plan.schedule.next(SystemTime::now(), jitter())
    };
    loop {
        let wait = next.duration_since(SystemTime::now()).unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = handle.trigger.notified() => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
        let ok = worker.sync_and_deliver().await;
        failures = if ok { 0 } else { failures + 1 };
        let scheduled = worker.plan.schedule.next(SystemTime::now(), jitter());
        let retry = SystemTime::now() + backoff(worker.plan.retry_backoff, failures, MAX_BACKOFF);
        // After a failure: the next scheduled time, but no sooner than the backoff.
        next = if failures > 0 {
            scheduled.max(retry)
        } else {
            scheduled
        };
        handle.update(|m| m.state = if failures > 0 { "backoff" } else { "idle" });
    }
    jobs.abort();
    handle.update(|m| m.state = "stopped");
}

/// The runtime and the loaded component, once a configured instance proved the
/// component's contract and the connector's settings.
pub async fn prepare(plan: &ConnectorPlan) -> Result<(Runtime, Arc<Loaded>)> {
    let runtime = Runtime::new()?;
    let loaded = load(&runtime, &plan.spec)?;
    open(&runtime, loaded.clone(), &plan.spec, None).await?;
    Ok((runtime, loaded))
}

fn jitter() -> f64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Stops a sync between pages once the host is shutting down.
struct StopBetweenPages {
    stop: watch::Receiver<bool>,
    connector: String,
}

impl Observer for StopBetweenPages {
    fn page_done(&self, _: &Summary) -> Result<()> {
        if *self.stop.borrow() {
            bail!("interrupted: the host is shutting down");
        }
        Ok(())
    }

    fn log(&self, level: log::Level, message: &str, fields: &[(&str, &str)]) {
        let mut all = vec![("connector", self.connector.as_str())];
        all.extend_from_slice(fields);
        log::emit(level, message, &all);
    }
}

impl Worker {
    async fn session(&self) -> Result<Session> {
        let credentials = provider(&self.plan.spec, |k| std::env::var(k).ok())?;
        open(
            &self.runtime,
            self.loaded.clone(),
            &self.plan.spec,
            credentials,
        )
        .await
    }

    /// One sync, then delivery of it (and of anything still waiting in the outbox).
    /// Returns whether the sync succeeded.
    async fn sync_and_deliver(&self) -> bool {
        let name = &self.handle.name;
        let Ok(_slot) = self.slots.acquire().await else {
            return false;
        };
        self.handle.update(|m| m.state = "syncing");
        log::info("sync started", &[("connector", name)]);
        let started = Instant::now();
        let mut session = None;
        let result = self.sync(&mut session).await;
        let secs = started.elapsed().as_secs_f64();
        if let Some(s) = &session {
            let calls = s.calls();
            let denied = s.outbound.denied.lock().expect("denied lock").len() as u64;
            let throttled = s.outbound.throttled.load(Ordering::Relaxed);
            let server_errors = s.outbound.server_errors.load(Ordering::Relaxed);
            self.handle.update(|m| {
                for (op, n) in calls {
                    *m.calls.entry(op).or_default() += n;
                }
                m.denied_requests += denied;
                m.throttled += throttled;
                m.server_errors += server_errors;
            });
        }
        let ok = match result {
            Ok(summary) => {
                let grants = summary.grants + summary.expanded_created as u64;
                log::info(
                    "sync finished",
                    &[
                        ("connector", name),
                        ("seconds", &format!("{secs:.2}")),
                        (
                            "resources",
                            &summary.resources.values().sum::<u64>().to_string(),
                        ),
                        ("grants", &grants.to_string()),
                        ("warnings", &summary.warnings.len().to_string()),
                    ],
                );
                self.handle.update(|m| {
                    m.syncs_succeeded += 1;
                    m.consecutive_failures = 0;
                    m.last_success_unix = Some(unix_now());
                    m.last_error = None;
                    m.resources = summary.resources.clone();
                    m.entitlements = summary.entitlements;
                    m.grants = grants;
                });
                let upload = object_name(name, SystemTime::now(), &summary.sync_id);
                if let Err(e) = self.outbox.add(&self.output, &upload) {
                    log::error(
                        "cannot queue the sync for upload",
                        &[("connector", name), ("error", &format!("{e:#}"))],
                    );
                }
                true
            }
            Err((kind, why)) => {
                log::error(
                    "sync failed; the previous file is unchanged, retrying on schedule with backoff",
                    &[("connector", name), ("kind", kind), ("error", &why)],
                );
                self.handle.update(|m| {
                    m.syncs_failed += 1;
                    m.consecutive_failures += 1;
                    m.last_error = Some(why);
                    *m.errors.entry(kind).or_default() += 1;
                });
                false
            }
        };
        self.handle.update(|m| {
            m.duration_sum_secs += secs;
            m.last_duration_secs = secs;
        });
        self.deliver().await;
        ok
    }

    /// The sync itself; errors come with their kind: `host`, `connector` or `sandbox`.
    async fn sync(&self, slot: &mut Option<Session>) -> Result<Summary, (&'static str, String)> {
        let session = self
            .session()
            .await
            .map_err(|e| ("host", format!("{e:#}")))?;
        let session = slot.insert(session);
        let kind = |s: &Session| {
            if s.inst.discarded() {
                "sandbox"
            } else {
                "connector"
            }
        };
        match session.inst.validate().await {
            Ok(identity) => log::info(
                "connected",
                &[("connector", &self.handle.name), ("identity", &identity)],
            ),
            Err(e) => {
                return Err((
                    kind(session),
                    format!(
                        "validating the connection failed: {e}{}",
                        session.denied_note()
                    ),
                ))
            }
        }
        let observer = StopBetweenPages {
            stop: self.stop.clone(),
            connector: self.handle.name.clone(),
        };
        let types = session.configured.resource_types.clone();
        let key = session.resume_key.clone();
        sync::run(&mut session.inst, &types, &self.output, &key, &observer)
            .await
            .map_err(|e| (kind(session), format!("{e:#}{}", session.denied_note())))
    }

    async fn deliver(&self) {
        let name = &self.handle.name;
        match self.outbox.flush(&self.plan.sink).await {
            Ok(d) => {
                for to in &d.to {
                    log::info(
                        "uploaded",
                        &[
                            ("connector", name),
                            ("sink", self.plan.sink.kind()),
                            ("to", to),
                        ],
                    );
                }
                for why in &d.failures {
                    log::error(
                        "upload failed; the file stays in the outbox for the next attempt",
                        &[
                            ("connector", name),
                            ("sink", self.plan.sink.kind()),
                            ("error", why),
                        ],
                    );
                }
                self.handle.update(|m| {
                    m.uploads_succeeded += d.to.len() as u64;
                    m.uploads_failed += d.failures.len() as u64;
                    m.pending_uploads = d.pending;
                });
            }
            Err(e) => log::error(
                "cannot read the outbox",
                &[("connector", name), ("error", &format!("{e:#}"))],
            ),
        }
    }

    /// One grant or revoke, looked up in the connector's latest sync first, so that a
    /// wrong id costs no instance.
    async fn provision(&self, action: Action) -> Result<Value, Failure> {
        let unknown = |e: anyhow::Error| Failure::Unknown(format!("{e:#}"));
        let failed = |e: anyhow::Error| Failure::Failed(format!("{e:#}"));
        match action {
            Action::Grant {
                entitlement,
                principal_type,
                principal,
            } => {
                let (e, p) = grant_request(&self.output, &entitlement, &principal_type, &principal)
                    .map_err(unknown)?;
                let _slot = self.slots.acquire().await.map_err(|e| failed(e.into()))?;
                let mut session = self.session().await.map_err(failed)?;
                let result = session.inst.grant(&e, &p).await.map_err(|err| {
                    Failure::Failed(format!(
                        "granting {entitlement} to {principal_type}:{principal} failed: {err}{}",
                        session.denied_note()
                    ))
                })?;
                Ok(json!({
                    "granted": result.grants.iter().map(|g: &wit::Grant| g.id.clone()).collect::<Vec<_>>(),
                    "status": annotation_names(&result.annotations),
                    "aws_calls": session.calls(),
                }))
            }
            Action::Revoke { grant } => {
                let g = revoke_request(&self.output, &grant).map_err(unknown)?;
                let _slot = self.slots.acquire().await.map_err(|e| failed(e.into()))?;
                let mut session = self.session().await.map_err(failed)?;
                let annotations = session.inst.revoke(&g).await.map_err(|err| {
                    Failure::Failed(format!(
                        "revoking {grant} failed: {err}{}",
                        session.denied_note()
                    ))
                })?;
                Ok(json!({
                    "revoked": grant,
                    "status": annotation_names(&annotations),
                    "aws_calls": session.calls(),
                }))
            }
        }
    }
}
