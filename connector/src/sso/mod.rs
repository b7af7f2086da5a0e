//! IAM Identity Center (Identity Store, SSO Admin) and AWS Organizations.

pub mod fetch;
pub mod mapping;
