//! The connector's settings: their schema (published in metadata) and their parsing.

use crate::aws::endpoints::parse_endpoint_url;
use crate::model::{ConnectorError, SettingKind, SettingSpec};

/// Regions IAM Identity Center can live in (baton-aws's list).
pub const SSO_REGIONS: &[&str] = &[
    "us-east-2",
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "af-south-1",
    "ap-east-1",
    "ap-southeast-3",
    "ap-south-1",
    "ap-northeast-3",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ca-central-1",
    "eu-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-south-1",
    "eu-west-3",
    "eu-north-1",
    "me-south-1",
    "me-central-1",
    "sa-east-1",
];

pub fn specs() -> Vec<SettingSpec> {
    vec![
        SettingSpec {
            name: "global-region",
            env: "BATON_GLOBAL_REGION",
            kind: SettingKind::String,
            default_value: Some("us-east-1"),
            choices: vec![],
            description: "Region for STS calls (IAM and Organizations are global)",
        },
        SettingSpec {
            name: "endpoint-url",
            env: "AWS_ENDPOINT_URL",
            kind: SettingKind::String,
            default_value: None,
            choices: vec![],
            description:
                "Send every AWS call to this URL instead (an emulator or a private endpoint)",
        },
        SettingSpec {
            name: "global-aws-orgs-enabled",
            env: "BATON_GLOBAL_AWS_ORGS_ENABLED",
            kind: SettingKind::Boolean,
            default_value: Some("false"),
            choices: vec![],
            description:
                "Sync the AWS Organization's accounts (role must be in the management account)",
        },
        SettingSpec {
            name: "global-aws-sso-enabled",
            env: "BATON_GLOBAL_AWS_SSO_ENABLED",
            kind: SettingKind::Boolean,
            default_value: Some("false"),
            choices: vec![],
            description: "Sync IAM Identity Center users, groups and account assignments",
        },
        SettingSpec {
            name: "global-aws-sso-region",
            env: "BATON_GLOBAL_AWS_SSO_REGION",
            kind: SettingKind::Select,
            default_value: Some("us-east-1"),
            choices: SSO_REGIONS.to_vec(),
            description: "Region of the IAM Identity Center instance",
        },
        SettingSpec {
            name: "scim-enabled",
            env: "BATON_SCIM_ENABLED",
            kind: SettingKind::Boolean,
            default_value: Some("false"),
            choices: vec![],
            description: "Read SSO users' status (active) from the Identity Center SCIM API",
        },
        SettingSpec {
            name: "scim-endpoint",
            env: "BATON_SCIM_ENDPOINT",
            kind: SettingKind::String,
            default_value: None,
            choices: vec![],
            description: "The SCIM endpoint, https://scim.<region>.amazonaws.com/<tenant>/scim/v2",
        },
        SettingSpec {
            name: "scim-token",
            env: "BATON_SCIM_TOKEN",
            kind: SettingKind::Secret,
            default_value: None,
            choices: vec![],
            description: "The SCIM access token (a secret: handed over by the host, never logged)",
        },
        SettingSpec {
            name: "global-aws-cross-account-iam-enabled",
            env: "BATON_GLOBAL_AWS_CROSS_ACCOUNT_IAM_ENABLED",
            kind: SettingKind::Boolean,
            default_value: Some("false"),
            choices: vec![],
            description: "Sync each member account's IAM users, groups and roles (the host assumes a role in each)",
        },
    ]
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub region: String,
    pub endpoint_url: Option<String>,
    pub orgs_enabled: bool,
    pub sso_enabled: bool,
    pub sso_region: String,
    /// The SCIM endpoint when SCIM status is on (the token is a secret the host holds).
    pub scim_endpoint: Option<String>,
    pub cross_account: bool,
}

impl Config {
    pub fn parse(settings: &[(String, String)]) -> Result<Config, ConnectorError> {
        let specs = specs();
        for (name, _) in settings {
            if !specs.iter().any(|s| s.name == name) {
                let known: Vec<_> = specs.iter().map(|s| s.name).collect();
                return Err(ConnectorError::invalid_config(
                    name,
                    format!("unknown setting; known settings: {}", known.join(", ")),
                ));
            }
        }
        let get = |name: &str| -> (&'static str, Option<String>) {
            let spec = specs
                .iter()
                .find(|s| s.name == name)
                .expect("declared setting");
            let value = settings
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .or(spec.default_value.map(str::to_string));
            (spec.env, value)
        };
        let region = match get("global-region") {
            (env, Some(r)) => {
                check_region(env, &r)?;
                r
            }
            (_, None) => "us-east-1".into(),
        };
        let endpoint_url = match get("endpoint-url") {
            (env, Some(url)) => {
                parse_endpoint_url(&url).map_err(|e| ConnectorError::invalid_config(env, e))?;
                Some(url)
            }
            (_, None) => None,
        };
        let orgs_enabled = boolean(get("global-aws-orgs-enabled"))?;
        let sso_enabled = boolean(get("global-aws-sso-enabled"))?;
        let (env, sso_region) = get("global-aws-sso-region");
        let sso_region = sso_region.unwrap_or_else(|| "us-east-1".into());
        if !SSO_REGIONS.contains(&sso_region.as_str()) {
            return Err(ConnectorError::invalid_config(
                env,
                format!(
                    "{sso_region:?} is not an IAM Identity Center region; use one of {}",
                    SSO_REGIONS.join(", ")
                ),
            ));
        }
        let scim_enabled = boolean(get("scim-enabled"))?;
        let scim_endpoint = match (scim_enabled, get("scim-endpoint")) {
            (false, _) => None,
            (true, (env, None)) => {
                return Err(ConnectorError::invalid_config(
                    env,
                    "BATON_SCIM_ENABLED is true but no SCIM endpoint is set; copy it from the IAM Identity Center console (Settings, Automatic provisioning)",
                ))
            }
            (true, (env, Some(url))) => {
                let url = url.trim_end_matches('/').to_string();
                crate::scim::parse_endpoint(&url).map_err(|e| ConnectorError::invalid_config(env, e))?;
                if !sso_enabled {
                    return Err(ConnectorError::invalid_config(
                        "BATON_SCIM_ENABLED",
                        "SCIM status applies to Identity Center users: also set BATON_GLOBAL_AWS_SSO_ENABLED=true",
                    ));
                }
                Some(url)
            }
        };
        let cross_account = boolean(get("global-aws-cross-account-iam-enabled"))?;
        if cross_account && !orgs_enabled {
            return Err(ConnectorError::invalid_config(
                "BATON_GLOBAL_AWS_CROSS_ACCOUNT_IAM_ENABLED",
                "member accounts come from AWS Organizations: also set BATON_GLOBAL_AWS_ORGS_ENABLED=true",
            ));
        }
        Ok(Config {
            scim_endpoint,
            cross_account,
            region,
            endpoint_url,
            orgs_enabled,
            sso_enabled,
            sso_region,
        })
    }
}

fn boolean((env, value): (&str, Option<String>)) -> Result<bool, ConnectorError> {
    match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") | Some("0") | Some("no") => Ok(false),
        Some("true") | Some("1") | Some("yes") => Ok(true),
        Some(other) => Err(ConnectorError::invalid_config(
            env,
            format!("{other:?} is not a boolean; use true or false"),
        )),
    }
}

fn check_region(env: &str, region: &str) -> Result<(), ConnectorError> {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(ConnectorError::invalid_config(
            env,
            format!("{region:?} is not an AWS region name (example: us-east-1)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn setting_of(e: ConnectorError) -> (String, String) {
        match e {
            ConnectorError::InvalidConfig { setting, reason } => (setting, reason),
            other => panic!("expected invalid-config, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = Config::parse(&[]).unwrap();
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.sso_region, "us-east-1");
        assert!(!c.orgs_enabled && c.endpoint_url.is_none());
    }

    /// Every setting the connector declares has a bad value here, and each is refused with
    /// an error that names the setting's variable and says what it accepts. A new setting
    /// without a row fails this test.
    #[test]
    fn every_setting_refuses_a_bad_value_by_name() {
        let sso = ("global-aws-sso-enabled", "true");
        let orgs = ("global-aws-orgs-enabled", "true");
        let scim_on = ("scim-enabled", "true");
        // (setting, the settings given, what the error must say)
        type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
        let cases: Vec<Case> = vec![
            (
                "global-region",
                vec![("global-region", "Virginia")],
                "example: us-east-1",
            ),
            (
                "endpoint-url",
                vec![("endpoint-url", "localhost:5000")],
                "http",
            ),
            (
                "global-aws-orgs-enabled",
                vec![("global-aws-orgs-enabled", "maybe")],
                "true or false",
            ),
            (
                "global-aws-sso-enabled",
                vec![("global-aws-sso-enabled", "yes please")],
                "true or false",
            ),
            (
                "global-aws-sso-region",
                vec![sso, ("global-aws-sso-region", "mars-1")],
                "use one of",
            ),
            (
                "scim-enabled",
                vec![("scim-enabled", "on")],
                "true or false",
            ),
            (
                "scim-endpoint",
                vec![sso, scim_on, ("scim-endpoint", "ftp://scim")],
                "https",
            ),
            (
                "global-aws-cross-account-iam-enabled",
                vec![orgs, ("global-aws-cross-account-iam-enabled", "2")],
                "true or false",
            ),
        ];
        // The secret SCIM token is checked when it is used: SCIM's 401 names it (scim.rs).
        let untestable_here = ["scim-token"];
        for spec in specs() {
            assert!(
                untestable_here.contains(&spec.name)
                    || cases.iter().any(|(n, _, _)| *n == spec.name),
                "no bad-value case for setting {}",
                spec.name
            );
        }
        for (name, pairs, says) in cases {
            let env = specs().into_iter().find(|s| s.name == name).unwrap().env;
            let (setting, why) = setting_of(Config::parse(&set(&pairs)).unwrap_err());
            assert_eq!(setting, env, "{name}");
            assert!(why.contains(says), "{name}: {why}");
        }
    }

    #[test]
    fn bad_values_name_the_setting_and_the_accepted_values() {
        let (s, why) =
            setting_of(Config::parse(&set(&[("global-aws-orgs-enabled", "maybe")])).unwrap_err());
        assert_eq!(s, "BATON_GLOBAL_AWS_ORGS_ENABLED");
        assert!(why.contains("true or false"), "{why}");
        let (s, why) =
            setting_of(Config::parse(&set(&[("global-aws-sso-region", "mars-1")])).unwrap_err());
        assert_eq!(s, "BATON_GLOBAL_AWS_SSO_REGION");
        assert!(why.contains("eu-west-1"), "{why}");
        let (s, _) = setting_of(Config::parse(&set(&[("global-region", "Virginia")])).unwrap_err());
        assert_eq!(s, "BATON_GLOBAL_REGION");
        let (s, _) =
            setting_of(Config::parse(&set(&[("endpoint-url", "localhost:5000")])).unwrap_err());
        assert_eq!(s, "AWS_ENDPOINT_URL");
        let (s, why) = setting_of(Config::parse(&set(&[("scim-enabled", "true")])).unwrap_err());
        assert_eq!(s, "BATON_SCIM_ENDPOINT");
        assert!(why.contains("no SCIM endpoint"), "{why}");
        let scim_without_sso = set(&[
            ("scim-enabled", "true"),
            (
                "scim-endpoint",
                "https://scim.us-east-1.amazonaws.com/t/scim/v2",
            ),
        ]);
        let (s, why) = setting_of(Config::parse(&scim_without_sso).unwrap_err());
        assert_eq!(s, "BATON_SCIM_ENABLED");
        assert!(why.contains("BATON_GLOBAL_AWS_SSO_ENABLED=true"), "{why}");
        let (s, why) = setting_of(
            Config::parse(&set(&[("global-aws-cross-account-iam-enabled", "true")])).unwrap_err(),
        );
        assert_eq!(s, "BATON_GLOBAL_AWS_CROSS_ACCOUNT_IAM_ENABLED");
        assert!(why.contains("BATON_GLOBAL_AWS_ORGS_ENABLED=true"), "{why}");
        let (s, why) = setting_of(Config::parse(&set(&[("no-such", "x")])).unwrap_err());
        assert_eq!(s, "no-such");
        assert!(why.contains("global-region"), "{why}");
    }
}
