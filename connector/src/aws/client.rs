//! Sends signed AWS calls with retries, in the Query (IAM, STS) and JSON 1.1 (Identity
//! Store, SSO Admin, Organizations) protocols.

use super::endpoints::{Endpoints, Protocol, Service};
use super::errors::{AwsError, ErrorKind};
use super::retry::RetryPolicy;
use super::{json, query};
use crate::model::{CredentialScope, Credentials, LogLevel};
use crate::platform::{HttpRequest, HttpResponse, Platform, TransportError};
use crate::sigv4::sign_request;
use crate::xml::Element;
use serde_json::Value;
use std::time::SystemTime;

pub struct AwsClient<'a, P: Platform> {
    pub platform: &'a P,
    pub endpoints: &'a Endpoints,
    pub scope: CredentialScope,
    pub retry: RetryPolicy,
}

impl<'a, P: Platform> AwsClient<'a, P> {
    pub fn new(platform: &'a P, endpoints: &'a Endpoints) -> Self {
        AwsClient {
            platform,
            endpoints,
            scope: CredentialScope::Base,
            retry: RetryPolicy::default(),
        }
    }

    /// The same client acting with another scope's credentials (a member account).
    pub fn with_scope(&self, scope: CredentialScope) -> AwsClient<'a, P> {
        AwsClient {
            platform: self.platform,
            endpoints: self.endpoints,
            scope,
            retry: self.retry,
        }
    }

    /// One Query-protocol call; returns its `<Action>Result` element.
    pub fn query(
        &self,
        service: Service,
        action: &str,
        params: &[(String, String)],
    ) -> Result<Element, AwsError> {
        let body = query::encode_body(action, service.api_version(), params).into_bytes();
        self.call(service, action, &body, |operation, response| {
            query::parse_response(operation, action, response.status, &response.body)
        })
    }

    /// One JSON 1.1 call; returns the response object.
    pub fn json(&self, service: Service, action: &str, input: &Value) -> Result<Value, AwsError> {
        let body = serde_json::to_vec(input).expect("JSON values serialise");
        self.call(service, action, &body, json::parse_response)
    }

    /// Signs, sends and retries one call: throttling and transient failures with backoff,
    /// expired session credentials once after asking the host for fresh ones.
    fn call<T>(
        &self,
        service: Service,
        action: &str,
        body: &[u8],
        parse: impl Fn(&str, &HttpResponse) -> Result<T, AwsError>,
    ) -> Result<T, AwsError> {
        let operation = format!("{}:{action}", service.action_prefix());
        let mut refresh = false;
        let mut attempt = 1;
        loop {
            let err = match self.send_once(service, action, &operation, body, refresh) {
                Ok(response) => match parse(&operation, &response) {
                    Ok(v) => return Ok(v),
                    Err(e) => with_response_headers(e, &response),
                },
                Err(e) => e,
            };
            if err.kind == ErrorKind::ExpiredCredentials && !refresh {
                refresh = true;
                continue;
            }
            if !RetryPolicy::retryable(err.kind) || attempt >= self.retry.max_attempts {
                return Err(err);
            }
            let wait = self
                .retry
                .delay(err.kind, attempt, err.retry_after, self.platform.random());
            self.platform.log(
                LogLevel::Debug,
                &format!("{err}; retry {attempt} in {} ms", wait.as_millis()),
            );
            self.platform.sleep(wait);
            attempt += 1;
        }
    }

    fn send_once(
        &self,
        service: Service,
        action: &str,
        operation: &str,
        body: &[u8],
        refresh: bool,
    ) -> Result<HttpResponse, AwsError> {
        let credentials = self
            .platform
            .credentials(&self.scope, refresh)
            .map_err(|e| {
                AwsError::new(
                    operation,
                    0,
                    "CredentialsUnavailable",
                    &format!("no credentials: {e}"),
                )
                .with_kind(ErrorKind::Fatal)
            })?;
        let request = build_request(
            self.endpoints,
            service,
            action,
            operation,
            body,
            &credentials,
            self.platform.now(),
        )?;
        self.platform
            .send(&request)
            .map_err(|e| transport_error(operation, &request, e))
    }
}

/// Fills what an error body lacks from the response headers.
fn with_response_headers(mut err: AwsError, response: &HttpResponse) -> AwsError {
    if err.retry_after.is_none() {
        err.retry_after = response
            .header("x-amz-retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(std::time::Duration::from_millis);
    }
    if err.request_id.is_none() {
        err.request_id = response.header("x-amzn-requestid").map(str::to_string);
    }
    err
}

/// A signed request in the service's protocol, ready to send.
pub fn build_request(
    endpoints: &Endpoints,
    service: Service,
    action: &str,
    operation: &str,
    body: &[u8],
    credentials: &Credentials,
    now: SystemTime,
) -> Result<HttpRequest, AwsError> {
    let target = endpoints.target(service);
    let headers = match service.protocol() {
        Protocol::Query => vec![(
            "content-type".to_string(),
            "application/x-www-form-urlencoded; charset=utf-8".to_string(),
        )],
        Protocol::Json { target_prefix } => vec![
            (
                "content-type".to_string(),
                "application/x-amz-json-1.1".to_string(),
            ),
            (
                "x-amz-target".to_string(),
                format!("{target_prefix}.{action}"),
            ),
        ],
    };
    let mut request = HttpRequest {
        method: "POST",
        scheme: target.scheme,
        authority: target.authority,
        path: "/".into(),
        headers,
        body: body.to_vec(),
    };
    sign_request(
        &mut request,
        credentials,
        &target.signing_region,
        service.signing_name(),
        now,
    )
    .map_err(|e| AwsError::new(operation, 0, "SigningFailed", &e).with_kind(ErrorKind::Fatal))?;
    Ok(request)
}

fn transport_error(operation: &str, request: &HttpRequest, e: TransportError) -> AwsError {
    let url = request.url();
    match e {
        TransportError::Denied(why) => AwsError::new(
            operation,
            0,
            "RequestDenied",
            &format!("the host refused the request to {url}: {why}"),
        )
        .with_kind(ErrorKind::Denied),
        TransportError::Timeout(why) => {
            AwsError::new(operation, 0, "Timeout", &format!("{url}: {why}"))
                .with_kind(ErrorKind::Transient)
        }
        TransportError::Connection(why) => {
            AwsError::new(operation, 0, "ConnectionError", &format!("{url}: {why}"))
                .with_kind(ErrorKind::Transient)
        }
    }
}
