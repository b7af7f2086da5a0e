//! Where AWS credentials come from, and AssumeRole performed by the host so that
//! long-lived keys never enter the sandbox: the component only sees session credentials.

use crate::bindings::wit;
use crate::http_client;
use anyhow::{anyhow, bail, Result};
use aws_connector_core::aws::client::build_request;
use aws_connector_core::aws::{query, Endpoints, ErrorKind, Service};
use aws_connector_core::model::Credentials;
use aws_connector_core::platform::HttpRequest;
use aws_connector_core::sts::{self, validate_role_arn};
use aws_connector_core::xml::Element;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;

/// Refresh session credentials this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);
const SESSION_SECONDS: u32 = 3600;

#[derive(Clone)]
pub struct RoleSpec {
    pub role_arn: String,
    pub external_id: Option<String>,
}

/// Where the host's own (base) credentials come from.
// No Debug: it may hold keys.
#[derive(Clone)]
pub enum CredentialSource {
    /// `BATON_GLOBAL_*`, then `AWS_*` keys, then a web identity (`AWS_WEB_IDENTITY_TOKEN_FILE`
    /// with `AWS_ROLE_ARN`, as EKS and other OIDC setups provide).
    Env,
    /// Keys given directly (already read from where the operator keeps them).
    Keys {
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
    },
    /// A profile of an AWS shared credentials file.
    File { path: PathBuf, profile: String },
    /// AssumeRoleWithWebIdentity with the token in a file (re-read at every refresh).
    WebIdentity {
        role_arn: String,
        token_file: PathBuf,
    },
    /// No AWS credentials: for components that do not call AWS.
    None,
}

/// Resolved base credentials.
enum Base {
    Static(Credentials),
    WebIdentity {
        role_arn: String,
        token_file: PathBuf,
        session: Mutex<Option<Credentials>>,
    },
}

impl CredentialSource {
    /// Resolves the source into base credentials and a name for error messages; `None`
    /// for [`CredentialSource::None`].
    fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> Result<Option<(Base, String)>> {
        Ok(Some(match self {
            CredentialSource::None => return Ok(None),
            CredentialSource::Env => {
                let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
                if let (None, None, Some(token_file), Some(role_arn)) = (
                    get("BATON_GLOBAL_ACCESS_KEY_ID"),
                    get("AWS_ACCESS_KEY_ID"),
                    get("AWS_WEB_IDENTITY_TOKEN_FILE"),
                    get("AWS_ROLE_ARN"),
                ) {
                    return CredentialSource::WebIdentity {
                        role_arn,
                        token_file: token_file.into(),
                    }
                    .resolve(env);
                }
                let (c, name) = base_from_env(env)?;
                (Base::Static(c), name.to_string())
            }
            CredentialSource::Keys {
                access_key_id,
                secret_access_key,
                session_token,
            } => (
                Base::Static(Credentials {
                    access_key_id: access_key_id.clone(),
                    secret_access_key: secret_access_key.clone(),
                    session_token: session_token.clone(),
                    expires_at: None,
                }),
                "the configured keys".to_string(),
            ),
            CredentialSource::File { path, profile } => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow!("cannot read the credentials file {}: {e}", path.display())
                })?;
                let c = shared_credentials_profile(&text, profile)
                    .map_err(|why| anyhow!("credentials file {}: {why}", path.display()))?;
                (
                    Base::Static(c),
                    format!("profile {profile} of {}", path.display()),
                )
            }
            CredentialSource::WebIdentity {
                role_arn,
                token_file,
            } => {
                validate_role_arn(role_arn)
                    .map_err(|e| anyhow!("invalid web identity role ARN: {e}"))?;
                (
                    Base::WebIdentity {
                        role_arn: role_arn.clone(),
                        token_file: token_file.clone(),
                        session: Mutex::new(None),
                    },
                    format!("the web identity in {}", token_file.display()),
                )
            }
        }))
    }
}

/// One profile of an AWS shared credentials file (`~/.aws/credentials`, INI).
fn shared_credentials_profile(text: &str, profile: &str) -> Result<Credentials, String> {
    let mut current = None;
    let mut values: HashMap<String, String> = HashMap::new();
    let mut found = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            let name = name.strip_prefix("profile ").unwrap_or(name).trim();
            current = Some(name.to_string());
            found |= name == profile;
            continue;
        }
        if current.as_deref() == Some(profile) {
            if let Some((k, v)) = line.split_once('=') {
                values.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
    }
    if !found {
        return Err(format!("it has no [{profile}] profile"));
    }
    let get = |k: &str| values.get(k).filter(|v| !v.is_empty()).cloned();
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(id), Some(secret)) => Ok(Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: get("aws_session_token"),
            expires_at: None,
        }),
        _ => Err(format!(
            "profile [{profile}] needs aws_access_key_id and aws_secret_access_key"
        )),
    }
}

pub struct CredentialProvider {
    base: Base,
    /// Where the base credentials came from, for error messages.
    base_source: String,
    role: Option<RoleSpec>,
    /// The role to assume in member accounts; `None` when cross-account access is off.
    member_role_name: Option<String>,
    endpoints: Endpoints,
    session: Mutex<Option<Credentials>>,
    members: Mutex<HashMap<String, Credentials>>,
}

/// Reads base credentials: `BATON_GLOBAL_*` (the seed's names) first, then `AWS_*`.
pub fn base_from_env(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(Credentials, &'static str)> {
    let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
    match (
        get("BATON_GLOBAL_ACCESS_KEY_ID"),
        get("BATON_GLOBAL_SECRET_ACCESS_KEY"),
    ) {
        (Some(id), Some(secret)) => {
            return Ok((
                Credentials {
                    access_key_id: id,
                    secret_access_key: secret,
                    session_token: None,
                    expires_at: None,
                },
                "BATON_GLOBAL_ACCESS_KEY_ID",
            ))
        }
        (Some(_), None) => bail!(
            "BATON_GLOBAL_ACCESS_KEY_ID is set but BATON_GLOBAL_SECRET_ACCESS_KEY is not; set both"
        ),
        (None, Some(_)) => bail!(
            "BATON_GLOBAL_SECRET_ACCESS_KEY is set but BATON_GLOBAL_ACCESS_KEY_ID is not; set both"
        ),
        (None, None) => {}
    }
    match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Ok((
            Credentials { access_key_id: id, secret_access_key: secret, session_token: get("AWS_SESSION_TOKEN"), expires_at: None },
            "AWS_ACCESS_KEY_ID",
        )),
        (Some(_), None) => bail!("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both"),
        (None, Some(_)) => bail!("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not; set both"),
        (None, None) => bail!(
            "no AWS credentials: set BATON_GLOBAL_ACCESS_KEY_ID and BATON_GLOBAL_SECRET_ACCESS_KEY \
             (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), optionally with BATON_ROLE_ARN and BATON_EXTERNAL_ID"
        ),
    }
}

impl CredentialProvider {
    /// A provider for `source`, or `None` when the source is `None`.
    pub fn new(
        source: &CredentialSource,
        env: impl Fn(&str) -> Option<String>,
        role: Option<RoleSpec>,
        member_role_name: Option<String>,
        endpoints: Endpoints,
    ) -> Result<Option<Self>> {
        let Some((base, base_source)) = source.resolve(env)? else {
            return Ok(None);
        };
        Ok(Some(CredentialProvider {
            base,
            base_source,
            role,
            member_role_name,
            endpoints,
            session: Mutex::new(None),
            members: Mutex::new(HashMap::new()),
        }))
    }

    /// The base credentials: static keys, or a web-identity session refreshed before it
    /// expires.
    async fn base(&self, refresh: bool) -> Result<Credentials, wit::ConnectorError> {
        let (role_arn, token_file, session) = match &self.base {
            Base::Static(c) => return Ok(c.clone()),
            Base::WebIdentity {
                role_arn,
                token_file,
                session,
            } => (role_arn, token_file, session),
        };
        let mut session = session.lock().await;
        if let Some(c) = session.as_ref() {
            if !refresh && !expires_soon(c) {
                return Ok(c.clone());
            }
        }
        let fresh = self
            .assume_with_web_identity(role_arn, token_file)
            .await
            .map_err(|why| {
                wit::ConnectorError::Fatal(format!(
                    "cannot assume {role_arn} with the web identity token in {}: {why}",
                    token_file.display()
                ))
            })?;
        *session = Some(fresh.clone());
        Ok(fresh)
    }

    /// Credentials for the connector. With a role configured: session credentials from
    /// AssumeRole, cached until five minutes before they expire, or fetched anew when
    /// `refresh` says the connector saw them rejected.
    pub async fn get(&self, refresh: bool) -> Result<Credentials, wit::ConnectorError> {
        let Some(role) = &self.role else {
            return self.base(refresh).await;
        };
        let mut session = self.session.lock().await;
        if let Some(c) = session.as_ref() {
            if !refresh && !expires_soon(c) {
                return Ok(c.clone());
            }
        }
        let base = self.base(false).await?;
        let fresh = self
            .assume(&role.role_arn, role.external_id.as_deref(), &base)
            .await
            .map_err(|why| {
                wit::ConnectorError::Fatal(format!(
                    "cannot assume BATON_ROLE_ARN {} with the credentials from {}: {why}",
                    role.role_arn, self.base_source
                ))
            })?;
        *session = Some(fresh.clone());
        Ok(fresh)
    }

    /// Credentials in a member account: the host assumes the operator's member-account
    /// role there, from the connector's own session (one more hop, one-hour sessions).
    pub async fn get_member(
        &self,
        account: &str,
        refresh: bool,
    ) -> Result<Credentials, wit::ConnectorError> {
        let Some(role_name) = &self.member_role_name else {
            return Err(wit::ConnectorError::Unsupported(format!(
                "credentials for member account {account}: cross-account access is off (BATON_GLOBAL_AWS_CROSS_ACCOUNT_IAM_ENABLED)"
            )));
        };
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(wit::ConnectorError::Fatal(format!(
                "{account:?} is not an AWS account id"
            )));
        }
        let mut members = self.members.lock().await;
        if let Some(c) = members.get(account) {
            if !refresh && !expires_soon(c) {
                return Ok(c.clone());
            }
        }
        let source = self.get(false).await?;
        let role_arn = format!("arn:aws:iam::{account}:role/{role_name}");
        let fresh = self.assume(&role_arn, None, &source).await.map_err(|why| {
            wit::ConnectorError::AccessDenied(format!(
                "cannot assume {role_arn} (BATON_IAM_ASSUME_ROLE_NAME): {why}"
            ))
        })?;
        members.insert(account.to_string(), fresh.clone());
        Ok(fresh)
    }

    async fn assume(
        &self,
        role_arn: &str,
        external_id: Option<&str>,
        source: &Credentials,
    ) -> Result<Credentials, String> {
        let operation = "sts:AssumeRole";
        let session_name = session_name();
        let params = sts::assume_role_params(role_arn, &session_name, external_id, SESSION_SECONDS);
        let body =
            query::encode_body("AssumeRole", Service::Sts.api_version(), &params).into_bytes();
        // Signed anew for every attempt: a signature carries its time.
        let request = || {
            build_request(
                &self.endpoints,
                Service::Sts,
                "AssumeRole",
                operation,
                &body,
                source,
                SystemTime::now(),
            )
            .map_err(|e| e.to_string())
        };
        let result = sts_call(operation, "AssumeRole", request).await.map_err(|e| {
            let mut why = e.text;
            if e.kind == Some(ErrorKind::AccessDenied) && external_id.is_some() {
                why.push_str(". Check that the role's trust policy allows this caller and BATON_EXTERNAL_ID matches its sts:ExternalId condition");
            }
            why
        })?;
        sts::parse_assumed_credentials(&result)
    }
}

impl CredentialProvider {
    /// STS AssumeRoleWithWebIdentity: unsigned, the token is the proof.
    async fn assume_with_web_identity(
        &self,
        role_arn: &str,
        token_file: &Path,
    ) -> Result<Credentials, String> {
        let token = std::fs::read_to_string(token_file)
            .map_err(|e| format!("cannot read the token file: {e}"))?;
        let params = vec![
            ("RoleArn".to_string(), role_arn.to_string()),
            ("RoleSessionName".to_string(), session_name()),
            ("WebIdentityToken".to_string(), token.trim().to_string()),
            ("DurationSeconds".to_string(), SESSION_SECONDS.to_string()),
        ];
        let action = "AssumeRoleWithWebIdentity";
        let body = query::encode_body(action, Service::Sts.api_version(), &params).into_bytes();
        let target = self.endpoints.target(Service::Sts);
        let request = HttpRequest {
            method: "POST",
            scheme: target.scheme,
            authority: target.authority,
            path: "/".into(),
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            )],
            body,
        };
        let result = sts_call("sts:AssumeRoleWithWebIdentity", action, || {
            Ok(request.clone())
        })
        .await
        .map_err(|e| e.text)?;
        sts::parse_assumed_credentials(&result)
    }
}

/// Why an STS call failed: the text, and AWS's error kind when AWS answered.
struct StsFailure {
    text: String,
    kind: Option<ErrorKind>,
}

/// Attempts of one STS call by the host.
const STS_ATTEMPTS: u32 = 4;

/// One STS call, retried with exponential backoff (0.5, 1, 2 s) when AWS throttles, fails
/// with a 5xx, or the connection drops: a sync should not fail for want of a session.
async fn sts_call(
    operation: &str,
    action: &str,
    request: impl Fn() -> Result<HttpRequest, String>,
) -> Result<Element, StsFailure> {
    let mut attempt = 1;
    loop {
        let request = request().map_err(|text| StsFailure { text, kind: None })?;
        let failure = match http_client::send(&request).await {
            Ok(r) => match query::parse_response(operation, action, r.status, &r.body) {
                Ok(result) => return Ok(result),
                Err(e) => StsFailure {
                    kind: Some(e.kind),
                    text: e.to_string(),
                },
            },
            Err(e) => StsFailure {
                text: format!("{e:#}"),
                kind: Some(ErrorKind::Transient),
            },
        };
        let retry = matches!(
            failure.kind,
            Some(ErrorKind::Throttle | ErrorKind::Transient)
        );
        if !retry || attempt >= STS_ATTEMPTS {
            return Err(failure);
        }
        tokio::time::sleep(Duration::from_millis(500 << (attempt - 1))).await;
        attempt += 1;
    }
}

fn session_name() -> String {
    format!(
        "baton-host-{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    )
}

fn expires_soon(c: &Credentials) -> bool {
    match c.expires_at {
        Some(t) => {
            let expiry = UNIX_EPOCH + Duration::from_secs(t.seconds.max(0) as u64);
            SystemTime::now() + REFRESH_BEFORE_EXPIRY >= expiry
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn baton_names_win_over_aws_names() {
        let (c, src) = base_from_env(env(&[
            ("BATON_GLOBAL_ACCESS_KEY_ID", "AKIA1"),
            ("BATON_GLOBAL_SECRET_ACCESS_KEY", "s1"),
            ("AWS_ACCESS_KEY_ID", "AKIA2"),
            ("AWS_SECRET_ACCESS_KEY", "s2"),
        ]))
        .unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), src),
            ("AKIA1", "BATON_GLOBAL_ACCESS_KEY_ID")
        );
        let (c, _) = base_from_env(env(&[
            ("AWS_ACCESS_KEY_ID", "AKIA2"),
            ("AWS_SECRET_ACCESS_KEY", "s2"),
            ("AWS_SESSION_TOKEN", "t"),
        ]))
        .unwrap();
        assert_eq!(c.session_token.as_deref(), Some("t"));
    }

    #[test]
    fn half_set_or_missing_credentials_say_what_to_set() {
        let e = base_from_env(env(&[("BATON_GLOBAL_ACCESS_KEY_ID", "AKIA1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("BATON_GLOBAL_SECRET_ACCESS_KEY"), "{e}");
        let e = base_from_env(env(&[])).unwrap_err().to_string();
        assert!(e.contains("no AWS credentials"), "{e}");
    }

    #[test]
    fn shared_credentials_files_are_read_by_profile() {
        let text = "# comment\n[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n\n[profile ci]\naws_access_key_id=AKIA2\naws_secret_access_key=s2\naws_session_token=t2\n[half]\naws_access_key_id=AKIA3\n";
        let c = shared_credentials_profile(text, "default").unwrap();
        assert_eq!((c.access_key_id.as_str(), c.session_token), ("AKIA1", None));
        let c = shared_credentials_profile(text, "ci").unwrap();
        assert_eq!(c.session_token.as_deref(), Some("t2"));
        let e = shared_credentials_profile(text, "prod").unwrap_err();
        assert!(e.contains("no [prod] profile"), "{e}");
        let e = shared_credentials_profile(text, "half").unwrap_err();
        assert!(e.contains("aws_secret_access_key"), "{e}");
    }

    #[test]
    fn environment_web_identity_is_used_when_no_keys_are_set() {
        let source = CredentialSource::Env;
        let (base, name) = source
            .resolve(env(&[
                ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
                ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa"),
            ]))
            .unwrap()
            .unwrap();
        assert!(matches!(base, Base::WebIdentity { .. }));
        assert!(name.contains("/var/run/token"), "{name}");
        let (base, _) = source
            .resolve(env(&[
                ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
                ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa"),
                ("AWS_ACCESS_KEY_ID", "AKIA"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
            ]))
            .unwrap()
            .unwrap();
        assert!(matches!(base, Base::Static(_)));
        assert!(CredentialSource::None.resolve(env(&[])).unwrap().is_none());
    }

    #[test]
    fn session_expiry_is_anticipated() {
        let soon = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 60;
        let c = Credentials {
            access_key_id: "a".into(),
            secret_access_key: "b".into(),
            session_token: None,
            expires_at: Some(aws_connector_core::model::Timestamp {
                seconds: soon,
                nanos: 0,
            }),
        };
        assert!(expires_soon(&c));
        let later = Credentials {
            expires_at: Some(aws_connector_core::model::Timestamp {
                seconds: soon + 3600,
                nanos: 0,
            }),
            ..c
        };
        assert!(!expires_soon(&later));
    }
}
