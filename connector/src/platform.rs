//! What the connector needs from the world it runs in.
//!
//! In the component these are the host imports and `wasi:http`; in unit tests, fakes.

use crate::model::{ConnectorError, CredentialScope, Credentials, LogLevel};
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `POST` for AWS APIs, `GET` for SCIM.
    pub method: &'static str,
    pub scheme: Scheme,
    /// `host` or `host:port`, exactly as signed and sent.
    pub authority: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub fn url(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}{}", self.authority, self.path)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Why a request produced no HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// The host refused to send it (outbound allow-list).
    Denied(String),
    /// Connecting, or waiting for the response, took too long.
    Timeout(String),
    /// Connection refused, reset, DNS failure, truncated body, TLS failure.
    Connection(String),
}

pub trait Platform {
    /// Sends one POST request and reads the whole response.
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError>;
    /// Sends several requests at once and returns their results in order. Platforms that
    /// cannot overlap requests send them one after the other.
    fn send_many(&self, requests: &[HttpRequest]) -> Vec<Result<HttpResponse, TransportError>> {
        requests.iter().map(|r| self.send(r)).collect()
    }
    /// Credentials for a scope. `refresh` asks the host for fresh ones (after a rejection).
    fn credentials(
        &self,
        scope: &CredentialScope,
        refresh: bool,
    ) -> Result<Credentials, ConnectorError>;
    fn now(&self) -> SystemTime;
    fn sleep(&self, duration: Duration);
    /// A random number for backoff jitter.
    fn random(&self) -> u64;
    fn log(&self, level: LogLevel, message: &str);
    /// A secret setting the host holds (e.g. the SCIM token).
    fn secret(&self, name: &str) -> Option<String>;
    fn cache_get(&self, key: &str) -> Option<Vec<u8>>;
    fn cache_set(&self, key: &str, value: &[u8]);
}
