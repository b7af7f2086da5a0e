//! Identity Center's SCIM API, read for one fact: whether each user is `active`. It is
//! plain REST with a bearer token (no SigV4), paged by `startIndex`/`count`.

use crate::aws::endpoints::parse_endpoint_url;
use crate::aws::errors::ErrorKind;
use crate::aws::retry::RetryPolicy;
use crate::model::{ConnectorError, LogLevel};
#[cfg(test)]
use crate::platform::HttpResponse;
use crate::platform::{HttpRequest, Platform, Scheme, TransportError};
use serde_json::Value;
use std::collections::HashMap;

const PAGE: usize = 100;
const TOKEN_SETTING: &str = "BATON_SCIM_TOKEN";

/// Splits `https://host[:port]/<tenant>/scim/v2` into scheme, authority and base path.
pub fn parse_endpoint(url: &str) -> Result<(Scheme, String, String), String> {
    let (scheme_end, rest) = url.split_once("://").ok_or_else(|| {
        format!(
            "{url:?} is not a URL (example: https://scim.us-east-1.amazonaws.com/<tenant>/scim/v2)"
        )
    })?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (scheme, authority) = parse_endpoint_url(&format!("{scheme_end}://{authority}"))?;
    Ok((scheme, authority, format!("/{}", path.trim_matches('/'))))
}

/// `active` per SCIM user id (which is the Identity Store user id) and per user name.
#[derive(Debug)]
pub struct ScimStatus {
    pub by_id: HashMap<String, bool>,
    pub by_user_name: HashMap<String, bool>,
}

impl ScimStatus {
    pub fn active(&self, user_id: &str, user_name: &str) -> Option<bool> {
        self.by_id
            .get(user_id)
            .or_else(|| self.by_user_name.get(user_name))
            .copied()
    }
}

pub fn statuses<P: Platform>(
    platform: &P,
    endpoint: &str,
    token: &str,
) -> Result<ScimStatus, ConnectorError> {
    let (scheme, authority, base) = parse_endpoint(endpoint)
        .map_err(|e| ConnectorError::invalid_config("BATON_SCIM_ENDPOINT", e))?;
    let mut out = ScimStatus {
        by_id: HashMap::new(),
        by_user_name: HashMap::new(),
    };
    let mut start = 1usize;
    loop {
        let request = HttpRequest {
            method: "GET",
            scheme,
            authority: authority.clone(),
            path: format!("{base}/Users?startIndex={start}&count={PAGE}"),
            headers: vec![
                ("authorization".into(), format!("Bearer {token}")),
                ("accept".into(), "application/scim+json".into()),
            ],
            body: vec![],
        };
        let page = get(platform, &request)?;
        let users = page
            .get("Resources")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for u in &users {
            let active = u.get("active").and_then(Value::as_bool).unwrap_or(true);
            if let Some(id) = u.get("id").and_then(Value::as_str) {
                out.by_id.insert(id.to_string(), active);
            }
            if let Some(name) = u.get("userName").and_then(Value::as_str) {
                out.by_user_name.insert(name.to_string(), active);
            }
        }
        let total = page
            .get("totalResults")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        start += users.len();
        if users.is_empty() || start > total {
            return Ok(out);
        }
    }
}

fn get<P: Platform>(platform: &P, request: &HttpRequest) -> Result<Value, ConnectorError> {
    let retry = RetryPolicy::default();
    let what = format!(
        "SCIM GET {}",
        request.url().split('?').next().unwrap_or_default()
    );
    let mut attempt = 1;
    loop {
        let kind = match platform.send(request) {
            Ok(r) if (200..300).contains(&r.status) => {
                return serde_json::from_slice(&r.body)
                    .map_err(|e| ConnectorError::Fatal(format!("{what}: the answer is not SCIM JSON: {e}")))
            }
            Ok(r) if r.status == 401 => {
                return Err(ConnectorError::invalid_config(
                    TOKEN_SETTING,
                    format!("{what} answered 401: the SCIM access token was rejected; generate a new one in the IAM Identity Center console (Settings, Automatic provisioning)"),
                ))
            }
            Ok(r) if r.status == 403 => {
                return Err(ConnectorError::AccessDenied(format!("{what} answered 403: {}", String::from_utf8_lossy(&r.body))))
            }
            Ok(r) if r.status == 429 => ErrorKind::Throttle,
            Ok(r) if r.status >= 500 => ErrorKind::Transient,
            Ok(r) => return Err(ConnectorError::Fatal(format!("{what} answered HTTP {}: {}", r.status, String::from_utf8_lossy(&r.body)))),
            Err(TransportError::Denied(why)) => return Err(ConnectorError::Fatal(format!("{what}: the host refused the request: {why}"))),
            Err(_) => ErrorKind::Transient,
        };
        if attempt >= retry.max_attempts {
            return Err(ConnectorError::Transient(format!(
                "{what} kept failing ({kind:?}) after {attempt} attempts"
            )));
        }
        let wait = retry.delay(kind, attempt, None, platform.random());
        platform.log(
            LogLevel::Debug,
            &format!("{what}: {kind:?}, retry in {} ms", wait.as_millis()),
        );
        platform.sleep(wait);
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fake;

    fn page(start: usize, total: usize, users: &[(&str, &str, bool)]) -> HttpResponse {
        let resources: Vec<Value> = users
            .iter()
            .map(|(id, name, active)| serde_json::json!({"id": id, "userName": name, "active": active}))
            .collect();
        let body = serde_json::json!({"totalResults": total, "startIndex": start, "itemsPerPage": users.len(), "Resources": resources});
        crate::testing::resp(200, &[], &body.to_string())
    }

    #[test]
    fn pages_by_start_index_until_the_total() {
        // The fake matches on the body; GETs have none, so answers are taken in order.
        let fake = Fake::new(vec![
            (
                String::new(),
                page(1, 3, &[("u1", "ann", true), ("u2", "ben", false)]),
            ),
            (String::new(), page(3, 3, &[("u3", "cat", true)])),
        ]);
        let s = statuses(
            &fake,
            "https://scim.us-east-1.amazonaws.com/t-1/scim/v2",
            "tok",
        )
        .unwrap();
        assert_eq!(s.active("u2", "whatever"), Some(false));
        assert_eq!(
            s.active("unknown", "cat"),
            Some(true),
            "falls back to the user name"
        );
        assert_eq!(s.active("nobody", "nobody"), None);
        assert!(fake.script.borrow().is_empty(), "both pages were read");
    }

    #[test]
    fn a_rejected_token_names_the_setting_without_the_token() {
        let fake = Fake::new(vec![(
            String::new(),
            crate::testing::resp(401, &[], r#"{"status":"401"}"#),
        )]);
        let e = statuses(
            &fake,
            "https://scim.us-east-1.amazonaws.com/t-1/scim/v2",
            "very-secret",
        )
        .unwrap_err();
        let ConnectorError::InvalidConfig { setting, reason } = e else {
            panic!("{e:?}")
        };
        assert_eq!(setting, "BATON_SCIM_TOKEN");
        assert!(
            reason.contains("401") && !reason.contains("very-secret"),
            "{reason}"
        );
    }

    #[test]
    fn endpoints_split_into_authority_and_path() {
        let (scheme, authority, path) =
            parse_endpoint("https://scim.us-east-1.amazonaws.com/abc-123/scim/v2").unwrap();
        assert_eq!(
            (scheme, authority.as_str(), path.as_str()),
            (
                Scheme::Https,
                "scim.us-east-1.amazonaws.com",
                "/abc-123/scim/v2"
            )
        );
        assert!(parse_endpoint("scim.example.com/x").is_err());
    }
}
