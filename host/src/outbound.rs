//! The sandbox's only door to the network: every `wasi:http` request passes through
//! [`Outbound::send_request`], which checks the allow-list, counts the call per AWS
//! operation, and bounds how long it may take.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);
/// Covers TLS handshakes too, which `connect_timeout` does not.
pub const OVERALL_TIMEOUT: Duration = Duration::from_secs(300);

/// Per-connector outbound state, shared by all its instances.
#[derive(Default)]
pub struct Outbound {
    /// Exact `host` or `host:port` authorities; empty until the connector is configured.
    pub allowed: RwLock<Vec<String>>,
    pub calls: Mutex<BTreeMap<String, u64>>,
    pub denied: Mutex<Vec<String>>,
    /// Responses that said "slow down" (HTTP 429, or an AWS throttling error code).
    pub throttled: AtomicU64,
    /// Responses with a 5xx status.
    pub server_errors: AtomicU64,
}

impl Outbound {
    pub fn allow(&self, authorities: Vec<String>) {
        *self.allowed.write().expect("allow-list lock") = authorities;
    }

    pub fn is_allowed(&self, authority: &str) -> bool {
        let authority = authority.to_ascii_lowercase();
        self.allowed
            .read()
            .expect("allow-list lock")
            .contains(&authority)
    }
}

/// The `WasiHttpHooks` of one store.
pub struct Hooks {
    pub outbound: Arc<Outbound>,
}

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                    ),
                    HttpError,
                >,
            > + Send,
    > {
        drop(fut);
        let outbound = self.outbound.clone();
        let authority = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        if !outbound.is_allowed(&authority) {
            outbound.denied.lock().expect("denied lock").push(format!(
                "{} {}",
                request.method(),
                request.uri()
            ));
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let options = clamp(options);
        Box::new(async move {
            let (parts, body) = request.into_parts();
            // AWS request bodies are small; buffering lets us name the operation.
            let bytes = body.collect().await?.to_bytes();
            let operation = operation_name(&parts, &bytes);
            *outbound
                .calls
                .lock()
                .expect("calls lock")
                .entry(operation)
                .or_default() += 1;
            let body = Full::new(bytes)
                .map_err(|never| match never {})
                .boxed_unsync();
            let request = http::Request::from_parts(parts, body);
            let (response, io) = tokio::time::timeout(
                OVERALL_TIMEOUT,
                wasmtime_wasi_http::default_send_request(request, Some(options)),
            )
            .await
            .map_err(|_| HttpError::ConnectionTimeout)??;
            let status = response.status().as_u16();
            if status < 400 {
                return Ok((
                    response.map(BodyExt::boxed_unsync),
                    Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ));
            }
            // Error answers are small: read them to tell throttling from other errors.
            let driver = tokio::spawn(io);
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await?.to_bytes();
            driver.abort();
            if status >= 500 {
                outbound.server_errors.fetch_add(1, Ordering::Relaxed);
            }
            if is_throttling(status, &parts.headers, &bytes) {
                outbound.throttled.fetch_add(1, Ordering::Relaxed);
            }
            let body = Full::new(bytes)
                .map_err(|never| match never {})
                .boxed_unsync();
            Ok((
                http::Response::from_parts(parts, body),
                Box::new(async { Ok(()) })
                    as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
            ))
        })
    }
}

/// AWS's ways of saying "slow down": 429, or a throttling code in the JSON error type
/// header or the XML/JSON body.
fn is_throttling(status: u16, headers: &http::HeaderMap, body: &[u8]) -> bool {
    const CODES: [&str; 4] = [
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
    ];
    if status == 429 {
        return true;
    }
    let header = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if CODES.iter().any(|c| header.starts_with(c)) {
        return true;
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
    CODES.iter().any(|c| {
        text.contains(&format!("<Code>{c}</Code>"))
            || text.contains(&format!("\"__type\":\"{c}\""))
            || text.contains(&format!("#{c}\""))
    })
}

fn clamp(options: Option<RequestOptions>) -> RequestOptions {
    let o = options.unwrap_or_default();
    let cap = |asked: Option<Duration>, max: Duration| Some(asked.map_or(max, |a| a.min(max)));
    RequestOptions {
        connect_timeout: cap(o.connect_timeout, CONNECT_TIMEOUT),
        first_byte_timeout: cap(o.first_byte_timeout, RESPONSE_TIMEOUT),
        between_bytes_timeout: cap(o.between_bytes_timeout, RESPONSE_TIMEOUT),
    }
}

/// `service:Operation` from the SigV4 scope and the JSON target or the Query `Action`;
/// `METHOD host/path` for requests that are not AWS API calls (SCIM).
pub fn operation_name(parts: &http::request::Parts, body: &Bytes) -> String {
    let headers = &parts.headers;
    let service = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3));
    let Some(service) = service else {
        let host = parts
            .uri
            .authority()
            .map(|a| a.as_str())
            .unwrap_or_default();
        return format!("{} {host}{}", parts.method, parts.uri.path());
    };
    let operation = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .map(str::to_string)
        .or_else(|| {
            std::str::from_utf8(body)
                .ok()?
                .split('&')
                .find_map(|kv| kv.strip_prefix("Action="))
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into());
    format!("{service}:{operation}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_query_json_and_other_operations() {
        let auth = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=x";
        let query = http::Request::post("http://127.0.0.1:5000/")
            .header("authorization", auth)
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let body = Bytes::from_static(b"Action=GetAccountAuthorizationDetails&Version=2010-05-08");
        assert_eq!(
            operation_name(&query, &body),
            "iam:GetAccountAuthorizationDetails"
        );
        let json = http::Request::post("http://127.0.0.1:5000/")
            .header("authorization", auth.replace("/iam/", "/identitystore/"))
            .header("x-amz-target", "AWSIdentityStore.ListUsers")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        assert_eq!(
            operation_name(&json, &Bytes::new()),
            "identitystore:ListUsers"
        );
        let scim = http::Request::get(
            "https://scim.us-east-1.amazonaws.com/t-1/scim/v2/Users?startIndex=1",
        )
        .header("authorization", "Bearer secret")
        .body(())
        .unwrap()
        .into_parts()
        .0;
        assert_eq!(
            operation_name(&scim, &Bytes::new()),
            "GET scim.us-east-1.amazonaws.com/t-1/scim/v2/Users"
        );
    }

    #[test]
    fn allow_list_is_exact_and_case_insensitive() {
        let o = Outbound::default();
        assert!(!o.is_allowed("iam.amazonaws.com"));
        o.allow(vec!["iam.amazonaws.com".into(), "127.0.0.1:5000".into()]);
        assert!(o.is_allowed("IAM.amazonaws.com"));
        assert!(o.is_allowed("127.0.0.1:5000"));
        assert!(!o.is_allowed("127.0.0.1:5001"));
        assert!(!o.is_allowed("evil.amazonaws.com"));
    }

    #[test]
    fn throttling_is_recognised_in_every_protocol() {
        let none = http::HeaderMap::new();
        let iam = b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>";
        assert!(is_throttling(400, &none, iam));
        let sso =
            br#"{"__type":"ThrottlingException","message":"slow down","RetryAfterSeconds":2}"#;
        assert!(is_throttling(400, &none, sso));
        let orgs = br#"{"__type":"com.amazonaws#TooManyRequestsException","Message":"x"}"#;
        assert!(is_throttling(400, &none, orgs));
        let mut h = http::HeaderMap::new();
        h.insert(
            "x-amzn-errortype",
            "ThrottlingException:http://internal".parse().unwrap(),
        );
        assert!(is_throttling(400, &h, b""));
        assert!(is_throttling(429, &none, b""));
        let denied = b"<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>";
        assert!(!is_throttling(403, &none, denied));
    }

    #[test]
    fn timeouts_are_clamped() {
        let o = clamp(Some(RequestOptions {
            connect_timeout: Some(Duration::from_secs(600)),
            ..Default::default()
        }));
        assert_eq!(o.connect_timeout, Some(CONNECT_TIMEOUT));
        assert_eq!(o.first_byte_timeout, Some(RESPONSE_TIMEOUT));
    }
}
