//! The service configuration: a TOML file listing connectors, or, for the single-connector
//! container of the product's Kubernetes guide, the `BATON_*` environment alone.

use crate::credentials::{CredentialProvider, CredentialSource, RoleSpec};
use crate::log::LogFormat;
use crate::runtime::{Limits, FUEL_PER_CPU_SECOND};
use crate::schedule::{parse_duration, Cron, Schedule};
use crate::session::{check_spec, ConnectorSpec};
use crate::upload::{check_url, Sink};
use anyhow::{anyhow, bail, Context, Result};
use aws_connector_core::aws::Endpoints;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    server: ServerFile,
    #[serde(default, rename = "connector")]
    connectors: Vec<ConnectorFile>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ServerFile {
    listen: Option<String>,
    log_format: Option<LogFormat>,
    state_dir: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    /// The environment variable holding the bearer token of the `/v1` API.
    api_token_env: Option<String>,
    api_token_file: Option<PathBuf>,
    shutdown_grace: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectorFile {
    name: String,
    component: PathBuf,
    #[serde(default)]
    settings: BTreeMap<String, toml::Value>,
    #[serde(default)]
    secrets: BTreeMap<String, SecretFile>,
    #[serde(default)]
    credentials: CredentialsFile,
    #[serde(default)]
    schedule: ScheduleFile,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    upload: Option<UploadFile>,
    #[serde(default)]
    provisioning: bool,
    #[serde(default)]
    verbose: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretFile {
    env: Option<String>,
    file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    /// `env` (default), `file`, `keys`, `web-identity` or `none`.
    source: Option<String>,
    path: Option<PathBuf>,
    profile: Option<String>,
    access_key_id_env: Option<String>,
    secret_access_key_env: Option<String>,
    session_token_env: Option<String>,
    web_identity_role_arn: Option<String>,
    token_file: Option<PathBuf>,
    /// The role the host assumes for the connector, and its external ID.
    role_arn: Option<String>,
    external_id: Option<String>,
    external_id_env: Option<String>,
    region: Option<String>,
    endpoint_url: Option<String>,
    /// The role to assume in member accounts (cross-account IAM); off when absent.
    member_role_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    every: Option<String>,
    jitter: Option<String>,
    cron: Option<String>,
    retry_backoff: Option<String>,
    run_at_start: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    memory_mb: Option<usize>,
    cpu_seconds: Option<u64>,
    call_timeout: Option<String>,
    concurrency: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadFile {
    /// `dir` (default), `http` or `s3`.
    sink: String,
    path: Option<PathBuf>,
    keep: Option<usize>,
    url: Option<String>,
    url_env: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    bucket: Option<String>,
    prefix: Option<String>,
    region: Option<String>,
    endpoint_url: Option<String>,
    credentials: Option<CredentialsFile>,
}

pub struct ServerConfig {
    pub listen: String,
    pub log_format: LogFormat,
    pub state_dir: PathBuf,
    pub api_token: Option<String>,
    pub shutdown_grace: Duration,
}

pub struct ConnectorPlan {
    pub spec: ConnectorSpec,
    pub schedule: Schedule,
    pub run_at_start: bool,
    pub retry_backoff: Duration,
    pub concurrency: usize,
    pub sink: Sink,
    pub provisioning: bool,
}

pub struct ServeConfig {
    pub server: ServerConfig,
    pub connectors: Vec<ConnectorPlan>,
}

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn env_value(env: Env, var: &str, what: &str) -> Result<String> {
    env(var)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| anyhow!("{what}: environment variable {var} is not set"))
}

/// Reads and checks a configuration file; `env` resolves `*_env` references.
pub fn from_file(path: &Path, env: Env) -> Result<ServeConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration {}", path.display()))?;
    let file: File = toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let relative = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let s = file.server;
    let state_dir = relative(&s.state_dir.unwrap_or_else(|| "baton-state".into()));
    let api_token = match (&s.api_token_env, &s.api_token_file) {
        (Some(_), Some(_)) => bail!("[server]: set api_token_env or api_token_file, not both"),
        (Some(var), None) => Some(env_value(env, var, "[server] api_token_env")?),
        (None, Some(f)) => Some(read_secret_file(&relative(f), "[server] api_token_file")?),
        (None, None) => None,
    };
    let server = ServerConfig {
        listen: s.listen.unwrap_or_else(|| "127.0.0.1:9090".into()),
        log_format: s.log_format.unwrap_or_default(),
        state_dir: state_dir.clone(),
        api_token,
        shutdown_grace: duration(
            s.shutdown_grace.as_deref(),
            "25s",
            "[server] shutdown_grace",
        )?,
    };
    let cache_dir = s
        .cache_dir
        .as_ref()
        .map(|d| relative(d))
        .or_else(|| env("BATON_HOST_CACHE_DIR").map(PathBuf::from));
    if file.connectors.is_empty() {
        bail!(
            "{}: no [[connector]] entries; add one per connector to run",
            path.display()
        );
    }
    let mut names = std::collections::HashSet::new();
    let mut connectors = Vec::new();
    for c in file.connectors {
        let what = format!("connector {:?}", c.name);
        check_name(&c.name)?;
        if !names.insert(c.name.clone()) {
            bail!("{what} is configured twice; names must be unique");
        }
        connectors
            .push(plan(c, &relative, cache_dir.clone(), &state_dir, env).with_context(|| what)?);
    }
    Ok(ServeConfig { server, connectors })
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        bail!("connector name {name:?}: use 1 to 64 of lowercase letters, digits and _ (it names files and metrics)");
    }
    Ok(())
}

fn read_secret_file(path: &Path, what: &str) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{what}: cannot read {}", path.display()))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

fn duration(text: Option<&str>, default: &str, what: &str) -> Result<Duration> {
    parse_duration(text.unwrap_or(default)).with_context(|| what.to_string())
}

fn setting_text(name: &str, v: &toml::Value) -> Result<String> {
    Ok(match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Integer(i) => i.to_string(),
        other => bail!(
            "setting {name}: {} is not a string, boolean or number",
            other.type_str()
        ),
    })
}

fn plan(
    c: ConnectorFile,
    relative: &dyn Fn(&Path) -> PathBuf,
    cache_dir: Option<PathBuf>,
    state_dir: &Path,
    env: Env,
) -> Result<ConnectorPlan> {
    let mut settings = BTreeMap::new();
    for (k, v) in &c.settings {
        settings.insert(k.clone(), setting_text(k, v)?);
    }
    let mut secrets = HashMap::new();
    for (k, s) in &c.secrets {
        let value = match (&s.env, &s.file) {
            (Some(var), None) => env_value(env, var, &format!("secret {k}"))?,
            (None, Some(f)) => read_secret_file(&relative(f), &format!("secret {k}"))?,
            _ => bail!("secret {k}: give exactly one of env = \"VAR\" or file = \"path\""),
        };
        secrets.insert(k.clone(), value);
    }
    let creds = &c.credentials;
    let external_id = match (&creds.external_id, &creds.external_id_env) {
        (Some(_), Some(_)) => bail!("credentials: set external_id or external_id_env, not both"),
        (Some(id), None) => Some(id.clone()),
        (None, Some(var)) => Some(env_value(env, var, "credentials.external_id_env")?),
        (None, None) => None,
    };
    if creds.role_arn.is_some() && creds.source.as_deref() == Some("none") {
        bail!("credentials: role_arn is set with source \"none\"; the host needs credentials to assume the role");
    }
    if external_id.is_some() && creds.role_arn.is_none() {
        bail!("credentials: an external ID is set without role_arn; it is only used to assume that role");
    }
    let spec = ConnectorSpec {
        name: c.name.clone(),
        component: relative(&c.component),
        settings,
        settings_from_env: false,
        secrets,
        credentials: source(creds, relative, env)?,
        role: creds.role_arn.clone().map(|role_arn| RoleSpec {
            role_arn,
            external_id,
        }),
        // Like the AWS SDKs, AWS_ENDPOINT_URL redirects every AWS call (e.g. to an emulator).
        endpoint_url: creds
            .endpoint_url
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL").filter(|v| !v.is_empty())),
        region: creds.region.clone().unwrap_or_else(|| "us-east-1".into()),
        member_role: creds.member_role_name.clone(),
        allow_hosts: c.allowed_hosts.clone(),
        cache_dir,
        limits: limits(&c.limits)?,
        verbose: c.verbose,
    };
    check_spec(&spec)?;
    let schedule = schedule(&c.schedule)?;
    let concurrency = c.limits.concurrency.unwrap_or(2);
    if concurrency == 0 {
        bail!("limits.concurrency must be at least 1");
    }
    let sink = match &c.upload {
        None => Sink::Dir {
            path: state_dir.join(&c.name).join("uploads"),
            keep: 5,
        },
        Some(u) => sink(u, relative, env)?,
    };
    Ok(ConnectorPlan {
        spec,
        schedule,
        run_at_start: c.schedule.run_at_start.unwrap_or(true),
        retry_backoff: duration(
            c.schedule.retry_backoff.as_deref(),
            "1m",
            "schedule.retry_backoff",
        )?,
        concurrency,
        sink,
        provisioning: c.provisioning,
    })
}

fn source(
    c: &CredentialsFile,
    relative: &dyn Fn(&Path) -> PathBuf,
    env: Env,
) -> Result<CredentialSource> {
    Ok(match c.source.as_deref().unwrap_or("env") {
        "env" => CredentialSource::Env,
        "none" => CredentialSource::None,
        "file" => CredentialSource::File {
            path: relative(
                c.path
                    .as_deref()
                    .context("credentials: source \"file\" needs path")?,
            ),
            profile: c.profile.clone().unwrap_or_else(|| "default".into()),
        },
        "keys" => {
            let var = |v: &Option<String>, what: &str| -> Result<String> {
                let var = v
                    .as_deref()
                    .with_context(|| format!("credentials: source \"keys\" needs {what}"))?;
                env_value(env, var, &format!("credentials.{what}"))
            };
            CredentialSource::Keys {
                access_key_id: var(&c.access_key_id_env, "access_key_id_env")?,
                secret_access_key: var(&c.secret_access_key_env, "secret_access_key_env")?,
                session_token: match &c.session_token_env {
                    Some(v) => Some(env_value(env, v, "credentials.session_token_env")?),
                    None => None,
                },
            }
        }
        "web-identity" => CredentialSource::WebIdentity {
            role_arn: c
                .web_identity_role_arn
                .clone()
                .context("credentials: source \"web-identity\" needs web_identity_role_arn")?,
            token_file: relative(
                c.token_file
                    .as_deref()
                    .context("credentials: source \"web-identity\" needs token_file")?,
            ),
        },
        other => {
            bail!("credentials: source {other:?} is not one of env, file, keys, web-identity, none")
        }
    })
}

fn limits(l: &LimitsFile) -> Result<Limits> {
    let d = Limits::default();
    let memory_mb = l.memory_mb.unwrap_or(d.memory_bytes >> 20);
    if !(16..=16384).contains(&memory_mb) {
        bail!("limits.memory_mb = {memory_mb}: must be between 16 and 16384");
    }
    let cpu = l
        .cpu_seconds
        .unwrap_or(d.fuel_per_call / FUEL_PER_CPU_SECOND);
    if cpu == 0 {
        bail!("limits.cpu_seconds must be at least 1");
    }
    let call_timeout = duration(l.call_timeout.as_deref(), "15m", "limits.call_timeout")?;
    if call_timeout.is_zero() {
        bail!("limits.call_timeout must be longer than 0s");
    }
    Ok(Limits {
        memory_bytes: memory_mb << 20,
        fuel_per_call: cpu.saturating_mul(FUEL_PER_CPU_SECOND),
        call_timeout,
    })
}

fn schedule(s: &ScheduleFile) -> Result<Schedule> {
    match (&s.every, &s.cron) {
        (Some(_), Some(_)) => bail!("schedule: set every or cron, not both"),
        (None, Some(expr)) => {
            if s.jitter.is_some() {
                bail!("schedule: jitter applies to every, not to cron");
            }
            Ok(Schedule::Cron(Cron::parse(expr)?))
        }
        (every, None) => {
            let interval = duration(every.as_deref(), "1h", "schedule.every")?;
            if interval.is_zero() {
                bail!("schedule.every must be longer than 0s");
            }
            Ok(Schedule::Every {
                interval,
                jitter: duration(s.jitter.as_deref(), "0s", "schedule.jitter")?,
            })
        }
    }
}

fn sink(u: &UploadFile, relative: &dyn Fn(&Path) -> PathBuf, env: Env) -> Result<Sink> {
    Ok(match u.sink.as_str() {
        "dir" => Sink::Dir {
            path: relative(
                u.path
                    .as_deref()
                    .context("upload: sink \"dir\" needs path")?,
            ),
            keep: u.keep.unwrap_or(5).max(1),
        },
        "http" => Sink::Http {
            url: {
                let url = match (&u.url, &u.url_env) {
                    (Some(url), None) => url.clone(),
                    (None, Some(var)) => env_value(env, var, "upload.url_env")?,
                    _ => bail!("upload: sink \"http\" needs exactly one of url or url_env"),
                };
                check_url(&url).context("upload: the PUT URL")?;
                url
            },
            headers: u
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
        },
        "s3" => {
            let region = u.region.clone().unwrap_or_else(|| "us-east-1".into());
            let creds = u.credentials.as_ref();
            let source = match creds {
                Some(c) => source(c, relative, env)?,
                None => CredentialSource::Env,
            };
            let endpoints = Endpoints::new(&region, &region, u.endpoint_url.as_deref())
                .map_err(|e| anyhow!("upload.endpoint_url: {e}"))?;
            let role = creds
                .and_then(|c| c.role_arn.clone())
                .map(|role_arn| RoleSpec {
                    role_arn,
                    external_id: creds.and_then(|c| c.external_id.clone()),
                });
            let credentials = CredentialProvider::new(&source, env, role, None, endpoints)?
                .context("upload: sink \"s3\" needs credentials (source \"none\" has none)")?;
            let mut prefix = u.prefix.clone().unwrap_or_default();
            if !prefix.is_empty() && !prefix.ends_with('/') {
                prefix.push('/');
            }
            Sink::S3 {
                bucket: u
                    .bucket
                    .clone()
                    .context("upload: sink \"s3\" needs bucket")?,
                prefix,
                region,
                endpoint_url: u.endpoint_url.clone(),
                credentials: Box::new(credentials),
            }
        }
        other => bail!("upload: sink {other:?} is not one of dir, http, s3"),
    })
}

/// The single-connector service of the product's Kubernetes guide: everything from
/// `BATON_*` variables, so its Secret and Deployment work unchanged.
pub fn from_env(env: Env) -> Result<ServeConfig> {
    let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let flag = |k: &str| -> Result<bool> {
        match get(k).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
            Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
            Some(v) => bail!("{k}={v:?}: expected true or false"),
        }
    };
    let state_dir = PathBuf::from(get("BATON_STATE_DIR").unwrap_or_else(|| "baton-state".into()));
    let name = get("BATON_CONNECTOR_NAME").unwrap_or_else(|| "aws".into());
    check_name(&name).context("BATON_CONNECTOR_NAME")?;
    if let (Some(_), None) = (get("BATON_EXTERNAL_ID"), get("BATON_ROLE_ARN")) {
        bail!("BATON_EXTERNAL_ID is set but BATON_ROLE_ARN is not; the external ID is only used to assume that role");
    }
    let spec = ConnectorSpec {
        name: name.clone(),
        component: get("BATON_COMPONENT")
            .unwrap_or_else(|| "aws_connector.wasm".into())
            .into(),
        settings: BTreeMap::new(),
        settings_from_env: true,
        secrets: HashMap::new(),
        credentials: CredentialSource::Env,
        role: get("BATON_ROLE_ARN").map(|role_arn| RoleSpec {
            role_arn,
            external_id: get("BATON_EXTERNAL_ID"),
        }),
        endpoint_url: get("AWS_ENDPOINT_URL"),
        region: get("BATON_GLOBAL_REGION").unwrap_or_else(|| "us-east-1".into()),
        member_role: flag("BATON_GLOBAL_AWS_CROSS_ACCOUNT_IAM_ENABLED")?.then(|| {
            get("BATON_IAM_ASSUME_ROLE_NAME")
                .unwrap_or_else(|| "OrganizationAccountAccessRole".into())
        }),
        allow_hosts: vec![],
        cache_dir: get("BATON_HOST_CACHE_DIR").map(PathBuf::from),
        limits: Limits::default(),
        verbose: false,
    };
    check_spec(&spec)?;
    let schedule = schedule(&ScheduleFile {
        every: get("BATON_SYNC_INTERVAL"),
        jitter: get("BATON_SYNC_JITTER"),
        cron: get("BATON_SYNC_CRON"),
        ..Default::default()
    })
    .context("BATON_SYNC_INTERVAL / BATON_SYNC_JITTER / BATON_SYNC_CRON")?;
    let upload = match (
        get("BATON_UPLOAD_URL"),
        get("BATON_UPLOAD_S3_BUCKET"),
        get("BATON_UPLOAD_DIR"),
    ) {
        (Some(_), Some(_), _) => bail!("set BATON_UPLOAD_URL or BATON_UPLOAD_S3_BUCKET, not both"),
        (Some(url), None, _) => UploadFile {
            sink: "http".into(),
            url: Some(url),
            ..upload_defaults()
        },
        (None, Some(bucket), _) => UploadFile {
            sink: "s3".into(),
            bucket: Some(bucket),
            prefix: get("BATON_UPLOAD_S3_PREFIX"),
            region: get("BATON_UPLOAD_S3_REGION"),
            endpoint_url: get("AWS_ENDPOINT_URL"),
            ..upload_defaults()
        },
        (None, None, dir) => UploadFile {
            sink: "dir".into(),
            path: Some(
                dir.map(PathBuf::from)
                    .unwrap_or_else(|| state_dir.join(&name).join("uploads")),
            ),
            ..upload_defaults()
        },
    };
    let api_token = get("BATON_HOST_API_TOKEN");
    Ok(ServeConfig {
        server: ServerConfig {
            listen: get("BATON_HOST_LISTEN").unwrap_or_else(|| "0.0.0.0:9090".into()),
            log_format: match get("BATON_LOG_FORMAT").as_deref() {
                None | Some("json") => LogFormat::Json,
                Some("console") => LogFormat::Console,
                Some(other) => bail!("BATON_LOG_FORMAT={other:?}: expected json or console"),
            },
            state_dir,
            api_token,
            shutdown_grace: duration(
                get("BATON_SHUTDOWN_GRACE").as_deref(),
                "25s",
                "BATON_SHUTDOWN_GRACE",
            )?,
        },
        connectors: vec![ConnectorPlan {
            spec,
            schedule,
            run_at_start: true,
            retry_backoff: Duration::from_secs(60),
            concurrency: 2,
            sink: sink(&upload, &|p| p.to_path_buf(), env)
                .context("BATON_UPLOAD_URL / BATON_UPLOAD_S3_BUCKET / BATON_UPLOAD_DIR")?,
            provisioning: flag("BATON_PROVISIONING")?,
        }],
    })
}

fn upload_defaults() -> UploadFile {
    UploadFile {
        sink: String::new(),
        path: None,
        keep: None,
        url: None,
        url_env: None,
        headers: BTreeMap::new(),
        bucket: None,
        prefix: None,
        region: None,
        endpoint_url: None,
        credentials: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn parse(text: &str, vars: &'static [(&'static str, &'static str)]) -> Result<ServeConfig> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.toml");
        std::fs::write(&path, text).unwrap();
        from_file(&path, &env(vars))
    }

    #[test]
    fn a_full_configuration_is_read() {
        let c = parse(
            r#"
[server]
listen = "127.0.0.1:0"
log_format = "json"
api_token_env = "TOKEN"

[[connector]]
name = "aws"
component = "aws_connector.wasm"
settings = { orgs = true, sso-region = "eu-west-1" }
secrets = { scim-token = { env = "SCIM" } }
schedule = { every = "6h", jitter = "10m" }
limits = { memory_mb = 256, cpu_seconds = 30, call_timeout = "5m", concurrency = 1 }
allowed_hosts = ["iam.amazonaws.com"]
provisioning = true
credentials = { role_arn = "arn:aws:iam::123456789012:role/c1", external_id_env = "EXT" }
upload = { sink = "http", url_env = "PUT_URL" }

[[connector]]
name = "other"
component = "/opt/other.wasm"
credentials = { source = "none" }
schedule = { cron = "0 */4 * * *" }
"#,
            &[
                ("TOKEN", "t0k"),
                ("SCIM", "s3cret"),
                ("EXT", "ext-1"),
                ("PUT_URL", "https://x/y?sig=1"),
            ],
        )
        .unwrap();
        assert_eq!(c.server.api_token.as_deref(), Some("t0k"));
        assert_eq!(c.server.log_format, LogFormat::Json);
        let aws = &c.connectors[0];
        assert_eq!(aws.spec.settings["orgs"], "true");
        assert_eq!(aws.spec.secrets["scim-token"], "s3cret");
        assert_eq!(
            aws.spec.role.as_ref().unwrap().external_id.as_deref(),
            Some("ext-1")
        );
        assert_eq!(aws.spec.limits.memory_bytes, 256 << 20);
        assert_eq!(aws.spec.limits.call_timeout, Duration::from_secs(300));
        assert_eq!(aws.concurrency, 1);
        assert!(aws.provisioning);
        assert!(matches!(aws.sink, Sink::Http { .. }));
        assert!(
            aws.spec.component.ends_with("aws_connector.wasm") && aws.spec.component.is_absolute()
        );
        let other = &c.connectors[1];
        assert!(matches!(other.schedule, Schedule::Cron(_)));
        assert!(matches!(other.spec.credentials, CredentialSource::None));
        assert!(matches!(other.sink, Sink::Dir { .. }));
    }

    #[test]
    fn mistakes_are_named() {
        let one = |body: &str| {
            let text = format!("[[connector]]\nname = \"aws\"\ncomponent = \"c.wasm\"\n{body}\n");
            format!("{:#}", parse(&text, &[]).err().expect(body))
        };
        for (body, says) in [
            ("colour = 1", "unknown field `colour`"),
            ("schedule = { every = \"5\" }", "needs a unit"),
            (
                "schedule = { every = \"1h\", cron = \"* * * * *\" }",
                "not both",
            ),
            ("schedule = { cron = \"* * *\" }", "five fields"),
            ("limits = { memory_mb = 1 }", "between 16 and 16384"),
            ("upload = { sink = \"ftp\" }", "not one of dir, http, s3"),
            (
                "upload = { sink = \"s3\", credentials = { source = \"none\" } }",
                "needs credentials",
            ),
            ("secrets = { t = { env = \"NOPE\" } }", "NOPE is not set"),
            ("credentials = { source = \"magic\" }", "not one of env"),
            (
                "credentials = { role_arn = \"arn:aws:iam::1:role/x\" }",
                "BATON_ROLE_ARN",
            ),
            (
                "credentials = { external_id = \"abc\" }",
                "without role_arn",
            ),
            (
                "credentials = { source = \"none\", role_arn = \"arn:aws:iam::123456789012:role/x\" }",
                "needs credentials to assume",
            ),
        ] {
            let e = one(body);
            assert!(e.contains(says), "{body}: {e}");
            assert!(
                e.contains("connector \"aws\"") || e.contains("unknown field"),
                "{body}: {e}"
            );
        }
        let e = format!("{:#}", parse("[server]\n", &[]).err().unwrap());
        assert!(e.contains("no [[connector]] entries"), "{e}");
        let twice = "[[connector]]\nname = \"a\"\ncomponent = \"c\"\n[[connector]]\nname = \"a\"\ncomponent = \"c\"\n";
        assert!(format!("{:#}", parse(twice, &[]).err().unwrap()).contains("configured twice"));
        let bad = "[[connector]]\nname = \"A B\"\ncomponent = \"c\"\n";
        assert!(format!("{:#}", parse(bad, &[]).err().unwrap()).contains("lowercase"));
    }

    #[test]
    fn the_seed_secret_alone_configures_one_connector() {
        let c = from_env(&env(&[
            (
                "BATON_ROLE_ARN",
                "arn:aws:iam::123456789012:role/ConductorOneIntegration",
            ),
            ("BATON_EXTERNAL_ID", "ext-123"),
            ("BATON_PROVISIONING", "true"),
            ("BATON_GLOBAL_AWS_ORGS_ENABLED", "true"),
            ("BATON_CLIENT_ID", "id"),
        ]))
        .unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:9090");
        assert_eq!(c.server.log_format, LogFormat::Json);
        let p = &c.connectors[0];
        assert!(p.provisioning && p.spec.settings_from_env);
        assert_eq!(
            p.spec.role.as_ref().unwrap().external_id.as_deref(),
            Some("ext-123")
        );
        assert!(matches!(p.sink, Sink::Dir { .. }));
        let e = format!(
            "{:#}",
            from_env(&env(&[("BATON_PROVISIONING", "maybe")]))
                .err()
                .unwrap()
        );
        assert!(
            e.contains("BATON_PROVISIONING") && e.contains("true or false"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            from_env(&env(&[("BATON_EXTERNAL_ID", "x1")]))
                .err()
                .unwrap()
        );
        assert!(e.contains("BATON_ROLE_ARN"), "{e}");
    }

    /// Every variable of the environment-only mode refuses a bad value by its name.
    #[test]
    fn every_service_variable_refuses_a_bad_value_by_name() {
        for (var, value, says) in [
            ("BATON_PROVISIONING", "perhaps", "true or false"),
            (
                "BATON_GLOBAL_AWS_CROSS_ACCOUNT_IAM_ENABLED",
                "2",
                "true or false",
            ),
            ("BATON_CONNECTOR_NAME", "My Connector", "lowercase"),
            ("BATON_SYNC_INTERVAL", "often", "write e.g. 30s"),
            ("BATON_SYNC_JITTER", "5", "needs a unit"),
            ("BATON_SYNC_CRON", "every day", "five fields"),
            ("BATON_SHUTDOWN_GRACE", "soon", "write e.g. 30s"),
            ("BATON_LOG_FORMAT", "xml", "json or console"),
            ("BATON_ROLE_ARN", "role/x", "BATON_ROLE_ARN"),
            ("AWS_ENDPOINT_URL", "localhost", "http:// or https://"),
            ("BATON_UPLOAD_URL", "ftp://x", "http"),
        ] {
            let pairs: Vec<(String, String)> = vec![(var.to_string(), value.to_string())];
            let lookup = move |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let e = format!(
                "{:#}",
                from_env(&lookup)
                    .err()
                    .unwrap_or_else(|| panic!("{var}={value} accepted"))
            );
            assert!(e.contains(var), "{var}: {e}");
            assert!(e.contains(says), "{var}: {e}");
        }
    }
}
