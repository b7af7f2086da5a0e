//! Sends signed AWS calls with retries, in the Query (IAM, STS) and JSON 1.1 (Identity
//! Store, SSO Admin, Organizations) protocols.

use super::endpoints::{Endpoints, Protocol, Service};
use super::errors::{AwsError, ErrorKind};
use super::pace::Pacer;
use super::retry::RetryPolicy;
use super::{json, query};
use crate::model::{CredentialScope, Credentials, LogLevel};
use crate::platform::{HttpRequest, HttpResponse, Platform, TransportError};
use crate::sigv4::sign_request;
use crate::xml::Element;
use serde_json::Value;
use std::time::SystemTime;

/// How many requests one connector keeps in flight to one service. Identity Center calls
/// are also paced to its request rate (see [`Pacer`]); a batch that is throttled anyway
/// backs off together.
pub const MAX_IN_FLIGHT: usize = 8;

/// Identity Center's services share one request rate.
fn paced(service: Service) -> bool {
    matches!(service, Service::IdentityStore | Service::SsoAdmin)
}

pub struct AwsClient<'a, P: Platform> {
    pub platform: &'a P,
    pub endpoints: &'a Endpoints,
    pub scope: CredentialScope,
    pub retry: RetryPolicy,
    /// Paces Identity Store and SSO Admin calls, shared by every client of a connector.
    pub pacer: Option<&'a Pacer>,
}

impl<'a, P: Platform> AwsClient<'a, P> {
    pub fn new(platform: &'a P, endpoints: &'a Endpoints) -> Self {
        AwsClient {
            platform,
            endpoints,
            scope: CredentialScope::Base,
            retry: RetryPolicy::default(),
            pacer: None,
        }
    }

    /// The same client, pacing Identity Center calls with `pacer`.
    pub fn paced(mut self, pacer: &'a Pacer) -> AwsClient<'a, P> {
        self.pacer = Some(pacer);
        self
    }

    /// Waits until `n` more paced calls may go.
    fn pace(&self, n: usize) {
        let Some(pacer) = self.pacer.filter(|_| n > 0) else {
            return;
        };
        let wait = pacer.reserve(self.platform.now(), n);
        if !wait.is_zero() {
            self.platform.sleep(wait);
        }
    }

    /// How many Identity Center calls may go right now without waiting for the pace.
    pub fn spare_calls(&self) -> usize {
        match self.pacer {
            Some(p) => p.available(self.platform.now()),
            None => MAX_IN_FLIGHT,
        }
    }

    /// The same client acting with another scope's credentials (a member account).
    pub fn with_scope(&self, scope: CredentialScope) -> AwsClient<'a, P> {
        AwsClient {
            platform: self.platform,
            endpoints: self.endpoints,
            scope,
            retry: self.retry,
            pacer: self.pacer,
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

    /// The same JSON call with several inputs, at most [`MAX_IN_FLIGHT`] at a time. When
    /// any of them is throttled the whole batch waits before the failed ones are retried
    /// (and the unsent rest goes with them): the connector backs off together instead of
    /// letting its other requests keep hammering a throttled service.
    pub fn json_batch(
        &self,
        service: Service,
        action: &str,
        inputs: &[Value],
    ) -> Vec<Result<Value, AwsError>> {
        let calls: Vec<(Service, &str, &Value)> =
            inputs.iter().map(|v| (service, action, v)).collect();
        self.json_calls(&calls)
    }

    /// JSON calls of any operations, sent and retried together as [`json_batch`] does.
    ///
    /// [`json_batch`]: AwsClient::json_batch
    pub fn json_calls(&self, calls: &[(Service, &str, &Value)]) -> Vec<Result<Value, AwsError>> {
        let operations: Vec<String> = calls
            .iter()
            .map(|(service, action, _)| format!("{}:{action}", service.action_prefix()))
            .collect();
        let bodies: Vec<Vec<u8>> = calls
            .iter()
            .map(|(_, _, v)| serde_json::to_vec(v).expect("JSON values serialise"))
            .collect();
        let mut results: Vec<Option<Result<Value, AwsError>>> =
            (0..calls.len()).map(|_| None).collect();
        let mut pending: Vec<usize> = (0..calls.len()).collect();
        let (mut attempt, mut refresh) = (1, false);
        while !pending.is_empty() {
            let credentials = match self.platform.credentials(&self.scope, refresh) {
                Ok(c) => c,
                Err(e) => {
                    for i in pending {
                        let err = AwsError::new(
                            &operations[i],
                            0,
                            "CredentialsUnavailable",
                            &format!("no credentials: {e}"),
                        )
                        .with_kind(ErrorKind::Fatal);
                        results[i] = Some(Err(err));
                    }
                    break;
                }
            };
            let mut again = Vec::new();
            let mut wait = std::time::Duration::ZERO;
            let mut expired = false;
            for (n, chunk) in pending.chunks(MAX_IN_FLIGHT).enumerate() {
                if !again.is_empty() && wait > std::time::Duration::ZERO {
                    // Throttled: do not send more of this round; retry it all after the wait.
                    again.extend(pending.chunks(MAX_IN_FLIGHT).skip(n).flatten().copied());
                    break;
                }
                let mut requests = Vec::new();
                let mut sent = Vec::new();
                for &i in chunk {
                    let (service, action, _) = calls[i];
                    match build_request(
                        self.endpoints,
                        service,
                        action,
                        &operations[i],
                        &bodies[i],
                        &credentials,
                        self.platform.now(),
                    ) {
                        Ok(r) => {
                            requests.push(r);
                            sent.push(i);
                        }
                        Err(e) => results[i] = Some(Err(e)),
                    }
                }
                let paced = sent.iter().filter(|&&i| paced(calls[i].0)).count();
                self.pace(paced);
                let responses = self.platform.send_many(&requests);
                for ((i, request), response) in sent.into_iter().zip(&requests).zip(responses) {
                    let operation = &operations[i];
                    let outcome = response
                        .map_err(|e| transport_error(operation, request, e))
                        .and_then(|r| {
                            json::parse_response(operation, &r)
                                .map_err(|e| with_response_headers(e, &r))
                        });
                    match outcome {
                        Ok(v) => results[i] = Some(Ok(v)),
                        Err(e) if e.kind == ErrorKind::ExpiredCredentials && !refresh => {
                            expired = true;
                            again.push(i);
                        }
                        Err(e)
                            if RetryPolicy::retryable(e.kind)
                                && attempt < self.retry.max_attempts =>
                        {
                            wait = wait.max(self.retry.delay(
                                e.kind,
                                attempt,
                                e.retry_after,
                                self.platform.random(),
                            ));
                            again.push(i);
                            results[i] = Some(Err(e));
                        }
                        Err(e) => results[i] = Some(Err(e)),
                    }
                }
            }
            if again.is_empty() {
                break;
            }
            refresh |= expired;
            if wait > std::time::Duration::ZERO {
                self.platform.log(
                    LogLevel::Debug,
                    &format!(
                        "{}: {} calls throttled or failed; retrying together in {} ms",
                        operations[again[0]],
                        again.len(),
                        wait.as_millis()
                    ),
                );
                self.platform.sleep(wait);
                attempt += 1;
            }
            pending = again;
        }
        results
            .into_iter()
            .zip(&operations)
            .map(|(r, operation)| {
                r.unwrap_or_else(|| {
                    Err(
                        AwsError::new(operation, 0, "NotSent", "the call was not sent")
                            .with_kind(ErrorKind::Fatal),
                    )
                })
            })
            .collect()
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
        self.pace(usize::from(paced(service)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{resp, Fake};
    use std::time::Duration;

    #[test]
    fn a_batch_backs_off_together_and_keeps_order() {
        let throttle = resp(
            400,
            &[("x-amzn-ErrorType", "ThrottlingException")],
            r#"{"message":"Rate exceeded","RetryAfterSeconds":2}"#,
        );
        let mut script: Vec<(String, HttpResponse)> = (0..10)
            .map(|i| {
                (
                    format!(r#""g{i}""#),
                    resp(200, &[], &format!(r#"{{"n":{i}}}"#)),
                )
            })
            .collect();
        // g3 is throttled once: the second chunk (g8, g9) waits, then all retry together.
        script.insert(0, (r#""g3""#.into(), throttle));
        let fake = Fake::new(script);
        let endpoints = Endpoints::new("us-east-1", "us-east-1", None).unwrap();
        let client = AwsClient::new(&fake, &endpoints);
        let inputs: Vec<Value> = (0..10)
            .map(|i| serde_json::json!({ "GroupId": format!("g{i}") }))
            .collect();
        let out = client.json_batch(Service::IdentityStore, "ListGroupMemberships", &inputs);
        let ns: Vec<i64> = out
            .into_iter()
            .map(|r| r.unwrap()["n"].as_i64().unwrap())
            .collect();
        assert_eq!(ns, (0..10).collect::<Vec<_>>());
        assert_eq!(
            *fake.batches.borrow(),
            [MAX_IN_FLIGHT, 3],
            "first chunk of 8, then g3, g8, g9 together"
        );
        assert_eq!(
            *fake.sleeps.borrow(),
            [Duration::from_secs(2)],
            "one shared wait, honouring RetryAfterSeconds"
        );
    }

    #[test]
    fn a_failure_that_is_not_retryable_stays_with_its_input() {
        let denied = resp(
            400,
            &[("x-amzn-ErrorType", "AccessDeniedException")],
            r#"{"message":"no"}"#,
        );
        let script = vec![
            (r#""a""#.to_string(), resp(200, &[], "{}")),
            (r#""b""#.to_string(), denied),
        ];
        let fake = Fake::new(script);
        let endpoints = Endpoints::new("us-east-1", "us-east-1", None).unwrap();
        let client = AwsClient::new(&fake, &endpoints);
        let out = client.json_batch(
            Service::SsoAdmin,
            "ListAccountAssignments",
            &[serde_json::json!({"x":"a"}), serde_json::json!({"x":"b"})],
        );
        assert!(out[0].is_ok());
        assert_eq!(out[1].as_ref().unwrap_err().kind, ErrorKind::AccessDenied);
        assert!(fake.sleeps.borrow().is_empty());
    }
}
