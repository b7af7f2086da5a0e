//! The connector's view of the world inside the sandbox: host imports plus WASI.

use crate::baton::connector::host;
use crate::baton::connector::types as wit;
use crate::convert;
use aws_connector_core::model::{ConnectorError, CredentialScope, Credentials, LogLevel};
use aws_connector_core::platform::{HttpRequest, HttpResponse, Platform, TransportError};
use std::time::{Duration, SystemTime};

#[derive(Default)]
pub struct WasiPlatform;

impl Platform for WasiPlatform {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        crate::http::send(request)
    }

    fn send_many(&self, requests: &[HttpRequest]) -> Vec<Result<HttpResponse, TransportError>> {
        crate::http::send_many(requests)
    }

    fn credentials(
        &self,
        scope: &CredentialScope,
        refresh: bool,
    ) -> Result<Credentials, ConnectorError> {
        let scope = match scope {
            CredentialScope::Base => wit::CredentialScope::Base,
            CredentialScope::Account(a) => wit::CredentialScope::Account(a.clone()),
        };
        host::get_credentials(&scope, refresh)
            .map(|c| Credentials {
                access_key_id: c.access_key_id,
                secret_access_key: c.secret_access_key,
                session_token: c.session_token,
                expires_at: c.expires_at.map(|t| aws_connector_core::model::Timestamp {
                    seconds: t.seconds,
                    nanos: t.nanos,
                }),
            })
            .map_err(convert::error_in)
    }

    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) {
        let ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        wasip2::clocks::monotonic_clock::subscribe_duration(ns).block();
    }

    fn random(&self) -> u64 {
        wasip2::random::random::get_random_u64()
    }

    fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Debug => wit::LogLevel::Debug,
            LogLevel::Info => wit::LogLevel::Info,
            LogLevel::Warn => wit::LogLevel::Warn,
        };
        host::log(level, message, &[]);
    }

    fn secret(&self, name: &str) -> Option<String> {
        host::secret(name)
    }

    fn cache_get(&self, key: &str) -> Option<Vec<u8>> {
        host::cache_get(key)
    }

    fn cache_set(&self, key: &str, value: &[u8]) {
        host::cache_set(key, value)
    }
}
