//! Where AWS credentials come from, and AssumeRole performed by the host so that
//! long-lived keys never enter the sandbox: the component only sees session credentials.

use crate::bindings::wit;
use crate::http_client;
use anyhow::{bail, Result};
use aws_connector_core::aws::client::build_request;
use aws_connector_core::aws::{query, Endpoints, Service};
use aws_connector_core::model::Credentials;
use aws_connector_core::sts;
use std::collections::HashMap;
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

pub struct CredentialProvider {
    base: Credentials,
    /// Where the base credentials came from, for error messages.
    base_source: &'static str,
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
    pub fn new(
        base: Credentials,
        base_source: &'static str,
        role: Option<RoleSpec>,
        member_role_name: Option<String>,
        endpoints: Endpoints,
    ) -> Self {
        CredentialProvider {
            base,
            base_source,
            role,
            member_role_name,
            endpoints,
            session: Mutex::new(None),
            members: Mutex::new(HashMap::new()),
        }
    }

    /// Credentials for the connector. With a role configured: session credentials from
    /// AssumeRole, cached until five minutes before they expire, or fetched anew when
    /// `refresh` says the connector saw them rejected.
    pub async fn get(&self, refresh: bool) -> Result<Credentials, wit::ConnectorError> {
        let Some(role) = &self.role else {
            return Ok(self.base.clone());
        };
        let mut session = self.session.lock().await;
        if let Some(c) = session.as_ref() {
            if !refresh && !expires_soon(c) {
                return Ok(c.clone());
            }
        }
        let fresh = self
            .assume(&role.role_arn, role.external_id.as_deref(), &self.base)
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
        let session_name = format!(
            "baton-host-{}",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        );
        let params = sts::assume_role_params(role_arn, &session_name, external_id, SESSION_SECONDS);
        let body =
            query::encode_body("AssumeRole", Service::Sts.api_version(), &params).into_bytes();
        let request = build_request(
            &self.endpoints,
            Service::Sts,
            "AssumeRole",
            operation,
            &body,
            source,
            SystemTime::now(),
        )
        .map_err(|e| e.to_string())?;
        let response = http_client::send(&request)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let result = query::parse_response(operation, "AssumeRole", response.status, &response.body).map_err(|e| {
            let mut why = e.to_string();
            if e.kind == aws_connector_core::aws::ErrorKind::AccessDenied && external_id.is_some() {
                why.push_str(". Check that the role's trust policy allows this caller and BATON_EXTERNAL_ID matches its sts:ExternalId condition");
            }
            why
        })?;
        sts::parse_assumed_credentials(&result)
    }
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
