//! What every command that runs a connector shares: host settings, credentials, the
//! sandboxed instance, connector settings and secrets, the outbound allow-list.

use crate::bindings::wit;
use crate::credentials::{base_from_env, CredentialProvider, CredentialSource, RoleSpec};
use crate::outbound::Outbound;
use crate::runtime::{Instance, Limits, Loaded, Runtime, Services, FUEL_PER_CPU_SECOND};
use crate::sync::explain_config_error;
use anyhow::{anyhow, bail, Context, Result};
use aws_connector_core::aws::endpoints::parse_endpoint_url;
use aws_connector_core::aws::Endpoints;
use aws_connector_core::sts::validate_role_arn;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(clap::Args)]
pub struct ConnectorArgs {
    /// The connector component (e.g. aws_connector.wasm).
    pub component: PathBuf,
    /// IAM role the host assumes for the connector (the seed's role ARN).
    #[arg(long, env = "BATON_ROLE_ARN")]
    pub role_arn: Option<String>,
    /// External ID for that AssumeRole.
    #[arg(long, env = "BATON_EXTERNAL_ID")]
    pub external_id: Option<String>,
    /// Send every AWS call (the host's STS calls included) to this URL, e.g. an emulator.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Lend the connector credentials in member accounts (cross-account IAM sync).
    #[arg(long, env = "BATON_GLOBAL_AWS_CROSS_ACCOUNT_IAM_ENABLED", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false, action = clap::ArgAction::Set)]
    pub cross_account_iam: bool,
    /// The role the host assumes in each member account.
    #[arg(
        long,
        env = "BATON_IAM_ASSUME_ROLE_NAME",
        default_value = "OrganizationAccountAccessRole"
    )]
    pub member_role_name: String,
    /// Region for STS.
    #[arg(long, env = "BATON_GLOBAL_REGION", default_value = "us-east-1")]
    pub region: String,
    /// A connector setting, `name=value` (see the component's settings); repeatable.
    /// Overrides the setting's environment variable.
    #[arg(short = 's', long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// Narrow the outbound allow-list to these hosts (`host` or `host:port`); repeatable.
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_host: Vec<String>,
    /// Where compiled components are cached.
    #[arg(long, env = "BATON_HOST_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Memory cap of the component, in MiB.
    #[arg(long, default_value_t = 512)]
    pub max_memory_mb: usize,
    /// Wall-clock limit of one connector call, in seconds.
    #[arg(long, default_value_t = 900)]
    pub call_timeout_secs: u64,
    /// CPU budget of one connector call, in seconds of guest computation (waiting on the
    /// network costs none).
    #[arg(long, default_value_t = 60)]
    pub cpu_seconds: u64,
    /// Show the connector's debug logs.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// Everything needed to run one connector, whether it came from command-line flags and
/// the environment (`host run`) or from a service configuration file (`host serve`).
// No Debug: it holds secrets.
#[derive(Clone)]
pub struct ConnectorSpec {
    /// Names the connector in logs, metrics and file names.
    pub name: String,
    pub component: PathBuf,
    /// Settings by name. With `settings_from_env`, each setting the component declares is
    /// first read from its environment variable, and these override it.
    pub settings: BTreeMap<String, String>,
    pub settings_from_env: bool,
    /// Secret settings by name, handed over through the `secret` import only.
    pub secrets: HashMap<String, String>,
    pub credentials: CredentialSource,
    pub role: Option<RoleSpec>,
    /// Send every AWS call (the host's STS calls included) to this URL.
    pub endpoint_url: Option<String>,
    pub region: String,
    /// The role assumed in member accounts; `None` when cross-account access is off.
    pub member_role: Option<String>,
    /// Narrows the outbound allow-list to these hosts; empty means no narrowing.
    pub allow_hosts: Vec<String>,
    pub cache_dir: Option<PathBuf>,
    pub limits: Limits,
    pub verbose: bool,
}

impl ConnectorArgs {
    /// The spec of `host run`/`grant`/`revoke`/`policy`: flags, then the environment.
    pub fn spec(&self, need_credentials: bool) -> Result<ConnectorSpec> {
        let mut settings = BTreeMap::new();
        for kv in &self.set {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("-s {kv:?}: expected NAME=VALUE"))?;
            settings.insert(k.to_string(), v.to_string());
        }
        let credentials = if need_credentials
            || base_from_env(|k| std::env::var(k).ok()).is_ok()
            || std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE").is_some()
        {
            CredentialSource::Env
        } else {
            CredentialSource::None
        };
        Ok(ConnectorSpec {
            name: self
                .component
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("connector")
                .to_string(),
            component: self.component.clone(),
            settings,
            settings_from_env: true,
            secrets: HashMap::new(),
            credentials,
            role: self.role_arn.clone().map(|role_arn| RoleSpec {
                role_arn,
                external_id: self.external_id.clone(),
            }),
            endpoint_url: self.endpoint_url.clone(),
            region: self.region.clone(),
            member_role: self
                .cross_account_iam
                .then(|| self.member_role_name.clone()),
            allow_hosts: self.allow_host.clone(),
            cache_dir: self.cache_dir.clone(),
            limits: Limits {
                memory_bytes: self.max_memory_mb << 20,
                call_timeout: Duration::from_secs(self.call_timeout_secs),
                fuel_per_call: self.cpu_seconds.max(1).saturating_mul(FUEL_PER_CPU_SECOND),
            },
            verbose: self.verbose,
        })
    }
}

/// A configured connector instance, ready to validate, sync or provision.
pub struct Session {
    pub inst: Instance,
    pub outbound: Arc<Outbound>,
    pub metadata: wit::Metadata,
    pub configured: wit::Configured,
    pub settings: Vec<wit::Setting>,
    pub loaded: Arc<Loaded>,
    /// What a sync's checkpoint must match to be continued: the component, its settings
    /// and the AWS identity it is lent.
    pub resume_key: String,
    /// How long creating the instance took (the component was loaded before).
    pub instantiate_time: Duration,
}

impl Session {
    /// Outbound requests the allow-list refused, as an addition to an error message.
    pub fn denied_note(&self) -> String {
        let denied = self.outbound.denied.lock().expect("denied lock");
        if denied.is_empty() {
            String::new()
        } else {
            format!(
                "\ndenied outbound requests (not on the allow-list): {}",
                denied.join(", ")
            )
        }
    }

    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.outbound.calls.lock().expect("calls lock").clone()
    }
}

pub fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("baton-host"))
}

fn check_external_id(id: &str) -> Result<()> {
    let ok = (2..=1224).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
    if !ok {
        bail!("invalid setting BATON_EXTERNAL_ID: must be 2 to 1224 characters of letters, digits and _+=,.@:/-");
    }
    Ok(())
}

fn check_member_role(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if !ok {
        bail!("invalid setting BATON_IAM_ASSUME_ROLE_NAME: {name:?} is not an IAM role name (1 to 64 of letters, digits and +=,.@_-)");
    }
    Ok(())
}

/// Checks the host-side settings of a spec, before any component is loaded.
pub fn check_spec(spec: &ConnectorSpec) -> Result<()> {
    if let Some(role) = &spec.role {
        validate_role_arn(&role.role_arn)
            .map_err(|e| anyhow!("invalid setting BATON_ROLE_ARN: {e}"))?;
        if let Some(id) = &role.external_id {
            check_external_id(id)?;
        }
    }
    if let Some(name) = &spec.member_role {
        check_member_role(name)?;
    }
    if let Some(url) = &spec.endpoint_url {
        parse_endpoint_url(url).map_err(|e| anyhow!("invalid setting AWS_ENDPOINT_URL: {e}"))?;
    }
    Ok(())
}

/// A component loaded (compiled, or taken from the compiled cache) by a runtime.
pub fn load(runtime: &Runtime, spec: &ConnectorSpec) -> Result<Arc<Loaded>> {
    if !spec.component.is_file() {
        bail!(
            "{} is not a file; build the component with `cd guest && cargo build --release --target wasm32-wasip2` (or run scripts/demo.sh)",
            spec.component.display()
        );
    }
    let cache_dir = spec.cache_dir.clone().or_else(default_cache_dir);
    Ok(Arc::new(
        runtime.load(&spec.component, cache_dir.as_deref())?,
    ))
}

/// Loads, instantiates and configures the component of `host run` and friends. With
/// `need_credentials` false (the policy command), no AWS credentials are required.
pub async fn connect(args: &ConnectorArgs, need_credentials: bool) -> Result<Session> {
    if args.external_id.is_some() && args.role_arn.is_none() {
        bail!("BATON_EXTERNAL_ID is set but BATON_ROLE_ARN is not; the external ID is only used to assume that role");
    }
    let spec = args.spec(need_credentials)?;
    check_spec(&spec)?;
    let runtime = Runtime::new()?;
    if !spec.component.is_file() {
        // Before credentials, so that a missing build is the first thing reported.
        load(&runtime, &spec)?;
    }
    let credentials = provider(&spec, |k| std::env::var(k).ok())?;
    let loaded = load(&runtime, &spec)?;
    open(&runtime, loaded, &spec, credentials).await
}

/// The credential provider of a spec (`None` when it runs without AWS credentials).
pub fn provider(
    spec: &ConnectorSpec,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<CredentialProvider>> {
    // The host itself only calls STS; the Identity Center region is the connector's business.
    let endpoints = Endpoints::new(&spec.region, &spec.region, spec.endpoint_url.as_deref())
        .map_err(|e| anyhow!("invalid setting AWS_ENDPOINT_URL: {e}"))?;
    CredentialProvider::new(
        &spec.credentials,
        env,
        spec.role.clone(),
        spec.member_role.clone(),
        endpoints,
    )
}

/// Instantiates and configures a loaded component under the spec's limits and allow-list.
pub async fn open(
    runtime: &Runtime,
    loaded: Arc<Loaded>,
    spec: &ConnectorSpec,
    credentials: Option<CredentialProvider>,
) -> Result<Session> {
    let override_authority = match &spec.endpoint_url {
        Some(url) => Some(
            parse_endpoint_url(url)
                .map_err(|e| anyhow!("invalid setting AWS_ENDPOINT_URL: {e}"))?
                .1,
        ),
        None => None,
    };
    let outbound = Arc::new(Outbound::default());
    let services = Arc::new(Services {
        name: spec.name.clone(),
        credentials,
        outbound: outbound.clone(),
        cache: Mutex::new(HashMap::new()),
        secrets: Default::default(),
        verbose: spec.verbose,
    });
    let started = std::time::Instant::now();
    let mut inst = runtime
        .instantiate(&loaded, services.clone(), &spec.limits)
        .await?;
    let instantiate_time = started.elapsed();
    let metadata = inst
        .metadata()
        .await
        .map_err(|e| anyhow!("reading the component's metadata failed: {e}"))?;
    let settings = connector_settings(&metadata, spec)?;
    *services.secrets.write().expect("secrets lock") = connector_secrets(&metadata, spec)?;
    let configured = inst
        .configure(&settings)
        .await
        .map_err(|e| anyhow!("{}", explain_config_error(&e)))?;
    // Hosts the operator named (the endpoint override, a SCIM endpoint) may be called
    // even when the component's declared patterns do not cover them.
    let mut operator_hosts: Vec<String> = override_authority.into_iter().collect();
    operator_hosts.extend(settings.iter().filter_map(|s| url_authority(&s.value)));
    outbound.allow(allow_list(
        &metadata,
        &configured,
        &operator_hosts,
        &spec.allow_hosts,
    )?);
    let resume_key = resume_key(&loaded, &settings, spec);
    Ok(Session {
        inst,
        outbound,
        metadata,
        configured,
        settings,
        loaded,
        resume_key,
        instantiate_time,
    })
}

/// A digest of everything that decides what a sync reads (secrets are left out: a
/// rotated token reads the same organisation).
fn resume_key(loaded: &Loaded, settings: &[wit::Setting], spec: &ConnectorSpec) -> String {
    let mut h = Sha256::new();
    let mut put = |part: &str| {
        h.update(part.len().to_le_bytes());
        h.update(part.as_bytes());
    };
    put(&loaded.sha256);
    for s in settings {
        put(&s.name);
        put(&s.value);
    }
    let role = spec.role.as_ref();
    put(role.map_or("", |r| r.role_arn.as_str()));
    put(role.and_then(|r| r.external_id.as_deref()).unwrap_or(""));
    put(spec.endpoint_url.as_deref().unwrap_or(""));
    put(&spec.region);
    put(spec.member_role.as_deref().unwrap_or(""));
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Connector settings: from their environment variables (as the component's schema names
/// them) when the spec says so, then the host's region and endpoint, then the spec's own.
pub fn connector_settings(
    metadata: &wit::Metadata,
    spec: &ConnectorSpec,
) -> Result<Vec<wit::Setting>> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    if spec.settings_from_env {
        for s in &metadata.settings {
            if s.kind == wit::SettingKind::Secret {
                continue;
            }
            if let Ok(v) = std::env::var(&s.env) {
                values.insert(s.name.clone(), v);
            }
        }
    }
    let declared = |name: &str| metadata.settings.iter().any(|s| s.name == name);
    if declared("global-region") {
        values.insert("global-region".into(), spec.region.clone());
    }
    if let (Some(url), true) = (&spec.endpoint_url, declared("endpoint-url")) {
        values.insert("endpoint-url".into(), url.clone());
    }
    for (k, v) in &spec.settings {
        if metadata
            .settings
            .iter()
            .any(|s| &s.name == k && s.kind == wit::SettingKind::Secret)
        {
            bail!("setting {k} is a secret: it is read from its environment variable (or a `secrets` entry of the service configuration) only, so that it stays out of process listings, shell history and configuration files");
        }
        if !declared(k) {
            let known: Vec<_> = metadata.settings.iter().map(|s| s.name.as_str()).collect();
            bail!(
                "setting {k}: the component has no such setting; it has: {}",
                known.join(", ")
            );
        }
        values.insert(k.to_string(), v.to_string());
    }
    Ok(values
        .into_iter()
        .map(|(name, value)| wit::Setting { name, value })
        .collect())
}

/// Secret settings: handed to the component on request through the `secret` import,
/// never passed as settings and never logged.
fn connector_secrets(
    metadata: &wit::Metadata,
    spec: &ConnectorSpec,
) -> Result<HashMap<String, String>> {
    let mut secrets = HashMap::new();
    for s in &metadata.settings {
        if s.kind == wit::SettingKind::Secret && spec.settings_from_env {
            if let Ok(v) = std::env::var(&s.env) {
                secrets.insert(s.name.clone(), v);
            }
        }
    }
    for (k, v) in &spec.secrets {
        if !metadata
            .settings
            .iter()
            .any(|s| &s.name == k && s.kind == wit::SettingKind::Secret)
        {
            bail!("secret {k}: the component has no secret setting of that name");
        }
        secrets.insert(k.clone(), v.clone());
    }
    Ok(secrets)
}

/// The `host[:port]` of an http(s) URL.
fn url_authority(value: &str) -> Option<String> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))?;
    let authority = rest.split('/').next()?;
    parse_endpoint_url(&format!("{}://{authority}", value.split("://").next()?))
        .ok()
        .map(|(_, a)| a)
}

/// The hosts the configured connector needs, within what it declared it may ever call or
/// the operator named, optionally narrowed by `--allow-host`.
fn allow_list(
    metadata: &wit::Metadata,
    configured: &wit::Configured,
    operator_hosts: &[String],
    narrow: &[String],
) -> Result<Vec<String>> {
    let mut allowed: Vec<String> = Vec::new();
    for host in &configured.outbound_hosts {
        let host = host.to_ascii_lowercase();
        let declared = metadata
            .outbound_hosts
            .iter()
            .any(|p| pattern_matches(p, &host));
        if declared || operator_hosts.contains(&host) {
            allowed.push(host);
        } else {
            bail!("the connector asked to call {host}, which its metadata does not declare; refusing to run it");
        }
    }
    if !narrow.is_empty() {
        let narrow: Vec<String> = narrow.iter().map(|h| h.to_ascii_lowercase()).collect();
        allowed.retain(|h| narrow.contains(h));
    }
    allowed.sort();
    allowed.dedup();
    Ok(allowed)
}

/// `*` matches exactly one DNS label.
fn pattern_matches(pattern: &str, host: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let h: Vec<&str> = host.split('.').collect();
    p.len() == h.len()
        && p.iter()
            .zip(&h)
            .all(|(a, b)| *a == "*" || a.eq_ignore_ascii_case(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_one_label() {
        assert!(pattern_matches(
            "sts.*.amazonaws.com",
            "sts.eu-west-1.amazonaws.com"
        ));
        assert!(!pattern_matches(
            "sts.*.amazonaws.com",
            "sts.a.b.amazonaws.com"
        ));
        assert!(!pattern_matches(
            "iam.amazonaws.com",
            "iam.amazonaws.com.evil.net"
        ));
        assert!(pattern_matches("iam.amazonaws.com", "IAM.amazonaws.com"));
    }

    #[test]
    fn external_ids_are_checked() {
        assert!(check_external_id("abc-123_XYZ=").is_ok());
        let e = check_external_id("x").unwrap_err().to_string();
        assert!(e.contains("BATON_EXTERNAL_ID"), "{e}");
        assert!(check_external_id("has space").is_err());
    }

    /// Every host-side setting refuses a bad value by its variable's name.
    #[test]
    fn host_settings_refuse_bad_values_by_name() {
        let base = || ConnectorSpec {
            name: "aws".into(),
            component: "c.wasm".into(),
            settings: BTreeMap::new(),
            settings_from_env: false,
            secrets: HashMap::new(),
            credentials: CredentialSource::None,
            role: None,
            endpoint_url: None,
            region: "us-east-1".into(),
            member_role: None,
            allow_hosts: vec![],
            cache_dir: None,
            limits: Limits::default(),
            verbose: false,
        };
        let role = |arn: &str, id: Option<&str>| {
            Some(RoleSpec {
                role_arn: arn.into(),
                external_id: id.map(str::to_string),
            })
        };
        let cases: Vec<(ConnectorSpec, &str, &str)> = vec![
            (
                ConnectorSpec {
                    role: role("arn:aws:iam::12:role/x", None),
                    ..base()
                },
                "BATON_ROLE_ARN",
                "arn:aws:iam::",
            ),
            (
                ConnectorSpec {
                    role: role("arn:aws:iam::123456789012:role/x", Some("a b")),
                    ..base()
                },
                "BATON_EXTERNAL_ID",
                "2 to 1224 characters",
            ),
            (
                ConnectorSpec {
                    member_role: Some("no/slashes".into()),
                    ..base()
                },
                "BATON_IAM_ASSUME_ROLE_NAME",
                "1 to 64",
            ),
            (
                ConnectorSpec {
                    endpoint_url: Some("127.0.0.1:5000".into()),
                    ..base()
                },
                "AWS_ENDPOINT_URL",
                "http:// or https://",
            ),
        ];
        for (spec, name, says) in cases {
            let e = format!("{:#}", check_spec(&spec).unwrap_err());
            assert!(e.contains(name) && e.contains(says), "{name}: {e}");
        }
        assert!(check_spec(&base()).is_ok());
    }
}
