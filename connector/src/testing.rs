//! A scripted platform for unit tests: answers requests whose body contains a key,
//! records sleeps and batch sizes.

use crate::model::{ConnectorError, CredentialScope, Credentials, LogLevel};
use crate::platform::{HttpRequest, HttpResponse, Platform, TransportError};
use std::cell::RefCell;
use std::time::{Duration, SystemTime};

/// Answers each request from a script keyed by its body; records sleeps and batches.
pub struct Fake {
    pub script: RefCell<Vec<(String, HttpResponse)>>,
    pub sleeps: RefCell<Vec<Duration>>,
    pub batches: RefCell<Vec<usize>>,
}

pub fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

impl Platform for Fake {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let body = String::from_utf8(request.body.clone()).unwrap();
        let mut script = self.script.borrow_mut();
        let at = script
            .iter()
            .position(|(k, _)| body.contains(k.as_str()))
            .unwrap_or_else(|| panic!("unscripted {body}"));
        Ok(script.remove(at).1)
    }
    fn send_many(&self, requests: &[HttpRequest]) -> Vec<Result<HttpResponse, TransportError>> {
        self.batches.borrow_mut().push(requests.len());
        requests.iter().map(|r| self.send(r)).collect()
    }
    fn credentials(&self, _: &CredentialScope, _: bool) -> Result<Credentials, ConnectorError> {
        Ok(Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "s".into(),
            session_token: None,
            expires_at: None,
        })
    }
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }
    fn sleep(&self, d: Duration) {
        self.sleeps.borrow_mut().push(d);
    }
    fn random(&self) -> u64 {
        0
    }
    fn log(&self, _: LogLevel, _: &str) {}
    fn secret(&self, _: &str) -> Option<String> {
        None
    }
    fn cache_get(&self, _: &str) -> Option<Vec<u8>> {
        None
    }
    fn cache_set(&self, _: &str, _: &[u8]) {}
}

impl Fake {
    pub fn new(script: Vec<(String, HttpResponse)>) -> Fake {
        Fake {
            script: RefCell::new(script),
            sleeps: RefCell::new(vec![]),
            batches: RefCell::new(vec![]),
        }
    }
}
