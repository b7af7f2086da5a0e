//! IAM users, groups and roles.

pub mod details;
pub mod mapping;
pub mod trust;
