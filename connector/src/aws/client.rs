//! Sends signed AWS calls with retries.

use super::endpoints::{Endpoints, Service};
use super::errors::{AwsError, ErrorKind};
use super::query;
use super::retry::RetryPolicy;
use crate::model::{CredentialScope, Credentials, LogLevel};
use crate::platform::{HttpRequest, Platform, TransportError};
use crate::sigv4::sign_request;
use crate::xml::Element;
use std::time::{Duration, SystemTime};

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

    /// One Query-protocol call; returns its `<Action>Result` element.
    pub fn query(
        &self,
        service: Service,
        action: &str,
        params: &[(String, String)],
    ) -> Result<Element, AwsError> {
        let operation = format!("{}:{action}", service.action_prefix());
        let body = query::encode_body(action, service.api_version(), params).into_bytes();
        let mut refresh = false;
        let mut attempt = 1;
        loop {
            let result = self
                .send_once(service, &operation, &body, refresh)
                .and_then(|(status, body)| {
                    query::parse_response(&operation, action, status, &body)
                });
            let err = match result {
                Ok(el) => return Ok(el),
                Err(e) => e,
            };
            // Expired session credentials: ask the host for fresh ones, once.
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
        operation: &str,
        body: &[u8],
        refresh: bool,
    ) -> Result<(u16, Vec<u8>), AwsError> {
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
        let request = build_query_request(
            self.endpoints,
            service,
            operation,
            body,
            &credentials,
            self.platform.now(),
        )?;
        let response = self
            .platform
            .send(&request)
            .map_err(|e| transport_error(operation, &request, e))?;
        if !(200..300).contains(&response.status) {
            let mut err = query::parse_error(
                operation,
                response.status,
                &String::from_utf8_lossy(&response.body),
            );
            err.retry_after = response
                .header("x-amz-retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_millis);
            if err.request_id.is_none() {
                err.request_id = response.header("x-amzn-requestid").map(str::to_string);
            }
            return Err(err);
        }
        Ok((response.status, response.body))
    }
}

/// A signed Query-protocol request, ready to send.
pub fn build_query_request(
    endpoints: &Endpoints,
    service: Service,
    operation: &str,
    body: &[u8],
    credentials: &Credentials,
    now: SystemTime,
) -> Result<HttpRequest, AwsError> {
    let target = endpoints.target(service);
    let mut request = HttpRequest {
        scheme: target.scheme,
        authority: target.authority,
        path: "/".into(),
        headers: vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        )],
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
