//! SigV4 signing of AWS requests with `aws-sigv4`.

use crate::model::Credentials;
use crate::platform::HttpRequest;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4::SigningParams;
use std::time::SystemTime;

/// Signs `request` in place: adds `x-amz-date`, `authorization` and, for temporary
/// credentials, `x-amz-security-token`. Every header already on the request is signed,
/// and so is `host`, derived from the authority (which the HTTP layer sends verbatim).
pub fn sign_request(
    request: &mut HttpRequest,
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), String> {
    let identity = aws_credential_types::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.clone(),
        credentials.session_token.clone(),
        None,
        "baton-host",
    )
    .into();
    let params: aws_sigv4::http_request::SigningParams = SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("cannot build signing parameters: {e}"))?
        .into();
    let url = request.url();
    let signable = SignableRequest::new(
        request.method,
        url.as_str(),
        request
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&request.body),
    )
    .map_err(|e| format!("cannot sign request to {url}: {e}"))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| format!("cannot sign request to {url}: {e}"))?
        .into_parts();
    let added: Vec<(String, String)> = instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    request.headers.extend(added);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Scheme;
    use std::time::{Duration, UNIX_EPOCH};

    fn example_credentials(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: token.map(str::to_string),
            expires_at: None,
        }
    }

    fn header<'a>(r: &'a HttpRequest, name: &str) -> &'a str {
        r.header(name).unwrap_or_else(|| panic!("missing {name}"))
    }

    // The AWS SigV4 test suite's `post-x-www-form-urlencoded` case: same credentials, time,
    // region, service, headers and body; the expected signature is the suite's.
    #[test]
    fn matches_the_aws_test_suite_form_post() {
        let mut req = HttpRequest {
            method: "POST",
            scheme: Scheme::Https,
            authority: "example.amazonaws.com".into(),
            path: "/".into(),
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: b"Param1=value1".to_vec(),
        };
        let time = UNIX_EPOCH + Duration::from_secs(1_440_938_160); // 20150830T123600Z
        sign_request(
            &mut req,
            &example_credentials(None),
            "us-east-1",
            "service",
            time,
        )
        .unwrap();
        assert_eq!(header(&req, "x-amz-date"), "20150830T123600Z");
        assert_eq!(
            header(&req, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        );
    }

    #[test]
    fn signs_the_port_and_adds_the_session_token() {
        let mut req = HttpRequest {
            method: "POST",
            scheme: Scheme::Http,
            authority: "127.0.0.1:5000".into(),
            path: "/".into(),
            headers: vec![],
            body: b"Action=GetCallerIdentity&Version=2011-06-15".to_vec(),
        };
        sign_request(
            &mut req,
            &example_credentials(Some("TOKEN")),
            "us-east-1",
            "sts",
            UNIX_EPOCH + Duration::from_secs(1_440_938_160),
        )
        .unwrap();
        assert_eq!(header(&req, "x-amz-security-token"), "TOKEN");
        let auth = header(&req, "authorization");
        assert!(auth.contains("/us-east-1/sts/aws4_request"), "{auth}");
        assert!(
            auth.contains("SignedHeaders=host;x-amz-date;x-amz-security-token"),
            "{auth}"
        );
        assert!(
            req.header("host").is_none(),
            "host is set by the HTTP layer, not by us"
        );
    }
}
