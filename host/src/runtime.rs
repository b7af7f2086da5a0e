//! The sandbox: one wasmtime engine, components compiled once and cached on disk, and
//! per-instance stores with a memory cap, a CPU budget (fuel) per call and a wall-clock
//! timeout per call. An instance that trapped or timed out is never entered again.

use crate::bindings::{self, wit, Plugin, PluginPre, CONTRACT_EXPORT};
use crate::credentials::CredentialProvider;
use crate::log;
use crate::outbound::{Hooks, Outbound};
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store};
use wasmtime_wasi::p2::bindings::{cli, random};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

#[derive(Debug, Clone)]
pub struct Limits {
    pub memory_bytes: usize,
    /// Wasm instructions (roughly) one call may execute: a CPU budget that host I/O
    /// waits do not consume.
    pub fuel_per_call: u64,
    pub call_timeout: Duration,
}

/// Fuel per second of guest computation, roughly, on this class of machine.
pub const FUEL_PER_CPU_SECOND: u64 = 5_000_000_000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 512 << 20,
            // About a minute of pure compute.
            fuel_per_call: 60 * FUEL_PER_CPU_SECOND,
            call_timeout: Duration::from_secs(900),
        }
    }
}

/// What the host lends one connector, shared by all of its instances.
pub struct Services {
    pub name: String,
    /// `None` when the host runs without AWS credentials (`host policy`).
    pub credentials: Option<CredentialProvider>,
    pub outbound: Arc<Outbound>,
    pub cache: Mutex<HashMap<String, Vec<u8>>>,
    pub secrets: std::sync::RwLock<HashMap<String, String>>,
    pub verbose: bool,
}

/// Caps guest memory and remembers that it did, so a trap can be explained.
struct MemoryCap {
    limit: usize,
    hit: bool,
    /// The largest the guest's memory has been, in bytes.
    peak: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

pub struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: Hooks,
    memory: MemoryCap,
    services: Arc<Services>,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl bindings::baton::connector::types::Host for State {}

impl bindings::baton::connector::host::Host for State {
    async fn get_credentials(
        &mut self,
        scope: wit::CredentialScope,
        refresh: bool,
    ) -> Result<wit::Credentials, wit::ConnectorError> {
        let Some(provider) = &self.services.credentials else {
            return Err(wit::ConnectorError::Fatal(
                "this command runs without AWS credentials".into(),
            ));
        };
        let c = match scope {
            wit::CredentialScope::Base => provider.get(refresh).await?,
            wit::CredentialScope::Account(id) => provider.get_member(&id, refresh).await?,
        };
        Ok(wit::Credentials {
            access_key_id: c.access_key_id,
            secret_access_key: c.secret_access_key,
            session_token: c.session_token,
            expires_at: c.expires_at.map(|t| wit::Timestamp {
                seconds: t.seconds,
                nanos: t.nanos,
            }),
        })
    }

    async fn secret(&mut self, name: String) -> Option<String> {
        self.services
            .secrets
            .read()
            .expect("secrets lock")
            .get(&name)
            .cloned()
    }

    async fn log(&mut self, level: wit::LogLevel, message: String, fields: Vec<(String, String)>) {
        let level = match level {
            wit::LogLevel::Trace | wit::LogLevel::Debug if !self.services.verbose => return,
            wit::LogLevel::Trace | wit::LogLevel::Debug => log::Level::Debug,
            wit::LogLevel::Info => log::Level::Info,
            wit::LogLevel::Warn => log::Level::Warn,
            wit::LogLevel::Error => log::Level::Error,
        };
        // The component's own fields come after the host's, so they cannot pose as them.
        let mut all: Vec<(&str, &str)> = vec![("connector", self.services.name.as_str())];
        all.extend(
            fields
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "connector" | "ts" | "level" | "msg"))
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        log::emit(level, &message, &all);
    }

    async fn cache_get(&mut self, key: String) -> Option<Vec<u8>> {
        self.services
            .cache
            .lock()
            .expect("cache lock")
            .get(&key)
            .cloned()
    }

    async fn cache_set(&mut self, key: String, value: Vec<u8>) {
        self.services
            .cache
            .lock()
            .expect("cache lock")
            .insert(key, value);
    }
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<State>,
}

pub struct Loaded {
    pub pre: PluginPre<State>,
    pub sha256: String,
    pub from_cache: bool,
    pub load_time: Duration,
}

impl Runtime {
    pub fn new() -> Result<Runtime> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.consume_fuel(true);
        // The guest's stack runs on the host's async fiber: the fiber must be larger than
        // the most the guest may use, or a runaway recursion overflows the fiber itself
        // and aborts the whole host instead of trapping the guest.
        config.max_wasm_stack(2 << 20);
        config.async_stack_size(6 << 20);
        let engine = Engine::new(&config).map_err(|e| anyhow!("cannot start wasmtime: {e:#}"))?;
        let mut linker: Linker<State> = Linker::new(&engine);
        add_wasi(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| anyhow!("{e:#}"))?;
        Plugin::add_to_linker::<_, HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| anyhow!("{e:#}"))?;
        Ok(Runtime { engine, linker })
    }

    /// Loads a component, from the compiled cache when this exact file was seen before
    /// by this exact engine build.
    pub fn load(&self, path: &Path, cache_dir: Option<&Path>) -> Result<Loaded> {
        let started = Instant::now();
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read component {}", path.display()))?;
        let sha256 = hex(&Sha256::digest(&bytes));
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let cached =
            cache_dir.map(|d| d.join(format!("{sha256}-{:016x}.cwasm", engine_hash.finish())));
        let (component, from_cache) = match cached.as_ref().filter(|p| p.exists()) {
            // SAFETY: only files this host wrote, keyed by content and engine, are loaded.
            Some(p) => match unsafe { Component::deserialize_file(&self.engine, p) } {
                Ok(c) => (c, true),
                Err(_) => (self.compile(path, &bytes)?, false),
            },
            None => (self.compile(path, &bytes)?, false),
        };
        if let (Some(p), false) = (&cached, from_cache) {
            store_compiled(&component, p);
        }
        check_contract(&self.engine, &component, path)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| anyhow!("{} cannot run in this host: {e:#}", path.display()))?;
        let pre = PluginPre::new(pre).map_err(|e| {
            anyhow!(
                "{} does not implement the connector contract: {e:#}",
                path.display()
            )
        })?;
        Ok(Loaded {
            pre,
            sha256,
            from_cache,
            load_time: started.elapsed(),
        })
    }

    fn compile(&self, path: &Path, bytes: &[u8]) -> Result<Component> {
        Component::new(&self.engine, bytes).map_err(|e| {
            anyhow!(
                "{} is not a valid WebAssembly component: {e:#}",
                path.display()
            )
        })
    }

    pub async fn instantiate(
        &self,
        loaded: &Loaded,
        services: Arc<Services>,
        limits: &Limits,
    ) -> Result<Instance> {
        // No preopened directories, no environment, no arguments: the guest sees nothing
        // of the host. Sockets and filesystems are not even linked (see add_wasi).
        let wasi = WasiCtx::builder().build();
        let state = State {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: Hooks {
                outbound: services.outbound.clone(),
            },
            memory: MemoryCap {
                limit: limits.memory_bytes,
                hit: false,
                peak: 0,
            },
            services,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        // Yield to the executor regularly so that the wall-clock timeout can fire.
        store
            .fuel_async_yield_interval(Some(50_000_000))
            .map_err(|e| anyhow!("{e:#}"))?;
        store
            .set_fuel(limits.fuel_per_call)
            .map_err(|e| anyhow!("{e:#}"))?;
        let plugin = loaded
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| anyhow!("cannot instantiate the component: {e:#}"))?;
        Ok(Instance {
            store,
            plugin,
            limits: limits.clone(),
            poisoned: None,
        })
    }
}

/// WASI without filesystem or sockets: I/O streams, clocks, randomness, and the CLI
/// interfaces Rust's standard library imports (with an empty environment).
fn add_wasi(l: &mut Linker<State>) -> Result<()> {
    use wasmtime_wasi::cli::WasiCli;
    use wasmtime_wasi::random::WasiRandom;
    let e = |e: wasmtime::Error| anyhow!("{e:#}");
    wasmtime_wasi::p2::add_to_linker_proxy_interfaces_async(l).map_err(e)?;
    cli::exit::add_to_linker::<State, WasiCli>(l, <State as wasmtime_wasi::cli::WasiCliView>::cli)
        .map_err(e)?;
    cli::environment::add_to_linker::<State, WasiCli>(
        l,
        <State as wasmtime_wasi::cli::WasiCliView>::cli,
    )
    .map_err(e)?;
    cli::terminal_input::add_to_linker::<State, WasiCli>(
        l,
        <State as wasmtime_wasi::cli::WasiCliView>::cli,
    )
    .map_err(e)?;
    cli::terminal_output::add_to_linker::<State, WasiCli>(
        l,
        <State as wasmtime_wasi::cli::WasiCliView>::cli,
    )
    .map_err(e)?;
    cli::terminal_stdin::add_to_linker::<State, WasiCli>(
        l,
        <State as wasmtime_wasi::cli::WasiCliView>::cli,
    )
    .map_err(e)?;
    cli::terminal_stdout::add_to_linker::<State, WasiCli>(
        l,
        <State as wasmtime_wasi::cli::WasiCliView>::cli,
    )
    .map_err(e)?;
    cli::terminal_stderr::add_to_linker::<State, WasiCli>(
        l,
        <State as wasmtime_wasi::cli::WasiCliView>::cli,
    )
    .map_err(e)?;
    random::insecure::add_to_linker::<State, WasiRandom>(l, |s| s.wasi.random()).map_err(e)?;
    random::insecure_seed::add_to_linker::<State, WasiRandom>(l, |s| s.wasi.random()).map_err(e)?;
    Ok(())
}

/// Refuses a component built against another version of the contract, naming both.
fn check_contract(engine: &Engine, component: &Component, path: &Path) -> Result<()> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    if exports.iter().any(|n| n == CONTRACT_EXPORT) {
        return Ok(());
    }
    match exports.iter().find(|n| n.starts_with("baton:connector/connector@")) {
        Some(other) => bail!(
            "{} implements contract {other}, but this host implements {CONTRACT_EXPORT}; rebuild the component against wit/ of this host or use a matching host",
            path.display()
        ),
        None => bail!(
            "{} is not a baton connector: it does not export {CONTRACT_EXPORT} (exports: {})",
            path.display(),
            if exports.is_empty() { "none".into() } else { exports.join(", ") }
        ),
    }
}

fn store_compiled(component: &Component, path: &Path) {
    let Ok(bytes) = component.serialize() else {
        return;
    };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let tmp = PathBuf::from(format!("{}.{}.tmp", path.display(), std::process::id()));
    if std::fs::write(&tmp, bytes).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a guest call did not return.
#[derive(Debug)]
pub enum CallFailure {
    /// The connector answered with an error.
    Connector(wit::ConnectorError),
    /// The instance trapped, ran out of a limit, or timed out; it is discarded.
    Sandbox(String),
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallFailure::Connector(e) => write!(f, "{}", describe_error(e)),
            CallFailure::Sandbox(why) => write!(f, "{why}"),
        }
    }
}

pub fn describe_error(e: &wit::ConnectorError) -> String {
    match e {
        wit::ConnectorError::Throttled(t) => format!("throttled: {}", t.message),
        wit::ConnectorError::AccessDenied(m) => format!("access denied: {m}"),
        wit::ConnectorError::NotFound(m) => format!("not found: {m}"),
        wit::ConnectorError::InvalidConfig(c) => {
            format!("invalid setting {}: {}", c.setting, c.reason)
        }
        wit::ConnectorError::Transient(m) => format!("transient failure: {m}"),
        wit::ConnectorError::CredentialsExpired(m) => format!("credentials rejected: {m}"),
        wit::ConnectorError::Unsupported(m) => format!("unsupported: {m}"),
        wit::ConnectorError::InvalidArgument(m) => format!("invalid request: {m}"),
        wit::ConnectorError::Fatal(m) => m.clone(),
    }
}

pub struct Instance {
    store: Store<State>,
    plugin: Plugin,
    limits: Limits,
    poisoned: Option<String>,
}

/// Runs one export call under the instance's limits.
macro_rules! guarded {
    ($self:ident, $what:expr, |$conn:ident, $store:ident| $call:expr) => {{
        if let Some(why) = &$self.poisoned {
            return Err(CallFailure::Sandbox(format!(
                "the instance was discarded earlier: {why}"
            )));
        }
        $self
            .store
            .set_fuel($self.limits.fuel_per_call)
            .map_err(|e| CallFailure::Sandbox(format!("{e:#}")))?;
        let $conn = $self.plugin.baton_connector_connector();
        let $store = &mut $self.store;
        match tokio::time::timeout($self.limits.call_timeout, $call).await {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(CallFailure::Connector(e)),
            Ok(Err(trap)) => {
                let why = $self.explain_trap($what, &trap);
                $self.poisoned = Some(why.clone());
                Err(CallFailure::Sandbox(why))
            }
            Err(_) => {
                let why = format!(
                    "{} exceeded the wall-clock limit of {}s",
                    $what,
                    $self.limits.call_timeout.as_secs()
                );
                $self.poisoned = Some(why.clone());
                Err(CallFailure::Sandbox(why))
            }
        }
    }};
}

impl Instance {
    fn explain_trap(&self, what: &str, trap: &wasmtime::Error) -> String {
        if self.store.data().memory.hit {
            return format!(
                "{what} exceeded the memory limit of {} MiB",
                self.limits.memory_bytes >> 20
            );
        }
        match trap.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::OutOfFuel) => format!(
                "{what} exceeded its CPU budget ({} fuel)",
                self.limits.fuel_per_call
            ),
            Some(wasmtime::Trap::StackOverflow) => format!("{what} overflowed its stack"),
            Some(t) => format!("{what} trapped: {t}"),
            None => format!("{what} failed: {trap:#}"),
        }
    }

    /// The most memory the guest has had, in bytes (WebAssembly memory never shrinks).
    pub fn memory_peak(&self) -> usize {
        self.store.data().memory.peak
    }

    /// Whether a trap or a limit has discarded this instance.
    pub fn discarded(&self) -> bool {
        self.poisoned.is_some()
    }

    pub async fn metadata(&mut self) -> Result<wit::Metadata, CallFailure> {
        if let Some(why) = &self.poisoned {
            return Err(CallFailure::Sandbox(why.clone()));
        }
        let conn = self.plugin.baton_connector_connector();
        match tokio::time::timeout(
            self.limits.call_timeout,
            conn.call_get_metadata(&mut self.store),
        )
        .await
        {
            Ok(Ok(m)) => Ok(m),
            Ok(Err(trap)) => {
                let why = self.explain_trap("get-metadata", &trap);
                self.poisoned = Some(why.clone());
                Err(CallFailure::Sandbox(why))
            }
            Err(_) => Err(CallFailure::Sandbox(
                "get-metadata exceeded the wall-clock limit".into(),
            )),
        }
    }

    pub async fn configure(
        &mut self,
        settings: &[wit::Setting],
    ) -> Result<wit::Configured, CallFailure> {
        guarded!(self, "configure", |c, s| c.call_configure(s, settings))
    }

    pub async fn validate(&mut self) -> Result<String, CallFailure> {
        guarded!(self, "validate", |c, s| c.call_validate(s))
    }

    pub async fn list_resources(
        &mut self,
        resource_type: &str,
        parent: Option<&wit::ResourceId>,
        token: Option<&str>,
    ) -> Result<wit::ResourcePage, CallFailure> {
        guarded!(self, "list-resources", |c, s| c.call_list_resources(
            s,
            resource_type,
            parent,
            token
        ))
    }

    pub async fn list_entitlements(
        &mut self,
        resource: &wit::Resource,
        token: Option<&str>,
    ) -> Result<wit::EntitlementPage, CallFailure> {
        guarded!(self, "list-entitlements", |c, s| c
            .call_list_entitlements(s, resource, token))
    }

    pub async fn grant(
        &mut self,
        entitlement: &wit::Entitlement,
        principal: &wit::Resource,
    ) -> Result<wit::ProvisionResult, CallFailure> {
        guarded!(self, "grant-entitlement", |c, s| c.call_grant_entitlement(
            s,
            entitlement,
            principal
        ))
    }

    pub async fn revoke(
        &mut self,
        grant: &wit::Grant,
    ) -> Result<Vec<wit::Annotation>, CallFailure> {
        guarded!(self, "revoke-grant", |c, s| c.call_revoke_grant(s, grant))
    }

    pub async fn list_grants(
        &mut self,
        resource: &wit::Resource,
        token: Option<&str>,
    ) -> Result<wit::GrantPage, CallFailure> {
        guarded!(self, "list-grants", |c, s| c
            .call_list_grants(s, resource, token))
    }
}
