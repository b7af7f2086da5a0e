//! The AWS connector's logic, independent of WebAssembly: the component in `guest/`
//! wraps it with `wasi:http` and the host imports; the host reuses its STS and SigV4 code.

pub mod aws;
pub mod connector;
pub mod iam;
pub mod model;
pub mod platform;
pub mod provision;
pub mod resource_types;
#[cfg(test)]
mod robustness;
pub mod scim;
pub mod settings;
pub mod sigv4;
pub mod sso;
pub mod sts;
#[cfg(test)]
mod testing;
pub mod timestamp;
pub mod xml;
