//! A hand-written AWS client: endpoints, wire protocols, errors, retries.

pub mod client;
pub mod endpoints;
pub mod errors;
pub mod json;
pub mod pace;
pub mod query;
pub mod retry;

pub use client::AwsClient;
pub use endpoints::{Endpoints, Service};
pub use errors::{AwsError, ErrorKind};
