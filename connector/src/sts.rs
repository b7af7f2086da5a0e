//! STS requests and responses shared by the connector (caller identity) and the host
//! (AssumeRole, so that long-lived keys never enter the sandbox).

use crate::model::{Credentials, Timestamp};
use crate::timestamp::parse_iso8601;
use crate::xml::Element;

pub struct CallerIdentity {
    pub account: String,
    pub arn: String,
}

pub fn parse_caller_identity(result: &Element) -> Result<CallerIdentity, String> {
    let account = result.child_text("Account").filter(|a| !a.is_empty());
    let arn = result.child_text("Arn").filter(|a| !a.is_empty());
    match (account, arn) {
        (Some(account), Some(arn)) => Ok(CallerIdentity {
            account: account.to_string(),
            arn: arn.to_string(),
        }),
        _ => Err("sts:GetCallerIdentity answered without Account or Arn".into()),
    }
}

pub fn assume_role_params(
    role_arn: &str,
    session_name: &str,
    external_id: Option<&str>,
    duration_seconds: u32,
) -> Vec<(String, String)> {
    let mut params = vec![
        ("RoleArn".to_string(), role_arn.to_string()),
        ("RoleSessionName".to_string(), session_name.to_string()),
        ("DurationSeconds".to_string(), duration_seconds.to_string()),
    ];
    if let Some(id) = external_id {
        params.push(("ExternalId".to_string(), id.to_string()));
    }
    params
}

/// The session credentials in an `AssumeRoleResult`.
pub fn parse_assumed_credentials(result: &Element) -> Result<Credentials, String> {
    let c = result
        .child("Credentials")
        .ok_or("sts:AssumeRole answered without Credentials")?;
    let field = |name: &str| {
        c.child_text(name)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("sts:AssumeRole answered without Credentials/{name}"))
    };
    let access_key_id = field("AccessKeyId")?;
    let secret_access_key = field("SecretAccessKey")?;
    let session_token = field("SessionToken")?;
    let expiration = field("Expiration")?;
    let expires_at: Timestamp = parse_iso8601(&expiration).ok_or_else(|| {
        format!("sts:AssumeRole answered with an unreadable Expiration {expiration:?}")
    })?;
    Ok(Credentials {
        access_key_id,
        secret_access_key,
        session_token: Some(session_token),
        expires_at: Some(expires_at),
    })
}

/// Checks an IAM role ARN's shape: `arn:<partition>:iam::<12 digits>:role/<path/>name`.
pub fn validate_role_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && matches!(parts[1], "aws" | "aws-us-gov" | "aws-cn")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].strip_prefix("role/").is_some_and(|n| {
            !n.is_empty()
                && !n.ends_with('/')
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{arn:?} is not an IAM role ARN; expected arn:aws:iam::<12-digit account>:role/<name>"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml;

    #[test]
    fn reads_assumed_credentials() {
        let doc = r#"<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIA1</AccessKeyId>
<SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration>
</Credentials></AssumeRoleResult></AssumeRoleResponse>"#;
        let root = xml::parse(doc).unwrap();
        let c = parse_assumed_credentials(root.child("AssumeRoleResult").unwrap()).unwrap();
        assert_eq!(c.access_key_id, "ASIA1");
        assert_eq!(c.session_token.as_deref(), Some("t"));
        assert_eq!(c.expires_at.unwrap().seconds, 1_893_456_000);
        let missing = xml::parse("<AssumeRoleResult><Credentials/></AssumeRoleResult>").unwrap();
        assert!(parse_assumed_credentials(&missing)
            .unwrap_err()
            .contains("AccessKeyId"));
    }

    #[test]
    fn role_arns_are_checked() {
        assert!(
            validate_role_arn("arn:aws:iam::123456789012:role/ConductorOneIntegration").is_ok()
        );
        assert!(validate_role_arn("arn:aws:iam::123456789012:role/path/to/Name").is_ok());
        for bad in [
            "ConductorOneIntegration",
            "arn:aws:iam::12345:role/x",
            "arn:aws:iam::123456789012:user/x",
            "arn:aws:sts::123456789012:role/x",
            "arn:aws:iam::123456789012:role/",
        ] {
            assert!(
                validate_role_arn(bad)
                    .unwrap_err()
                    .contains("not an IAM role ARN"),
                "{bad}"
            );
        }
    }
}
