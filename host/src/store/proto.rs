//! The baton-sdk v0.25 protobuf messages we store (`c1.connector.v2`), by hand with
//! prost's derive: no protoc, no generated code. Fields are declared in ascending tag
//! order so that encoding matches protobuf-go's deterministic output byte for byte.

use prost::Message;
use prost_types::{Any, Struct, Timestamp};
use std::collections::BTreeMap;

pub const TYPE_URL_PREFIX: &str = "type.googleapis.com/c1.connector.v2.";

#[derive(Clone, PartialEq, Message)]
pub struct ResourceId {
    #[prost(string, tag = "1")]
    pub resource_type: String,
    #[prost(string, tag = "2")]
    pub resource: String,
    #[prost(bool, tag = "3")]
    pub baton_resource: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct ResourceType {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub display_name: String,
    #[prost(int32, repeated, tag = "3")]
    pub traits: Vec<i32>,
    #[prost(message, repeated, tag = "4")]
    pub annotations: Vec<Any>,
    #[prost(string, tag = "5")]
    pub description: String,
    #[prost(bool, tag = "6")]
    pub sourced_externally: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct ResourceStatus {
    #[prost(int32, tag = "1")]
    pub status: i32,
    #[prost(string, tag = "2")]
    pub details: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Resource {
    #[prost(message, optional, tag = "1")]
    pub id: Option<ResourceId>,
    #[prost(message, optional, tag = "2")]
    pub parent_resource_id: Option<ResourceId>,
    #[prost(string, tag = "3")]
    pub display_name: String,
    #[prost(message, repeated, tag = "4")]
    pub annotations: Vec<Any>,
    #[prost(string, tag = "5")]
    pub description: String,
    #[prost(bool, tag = "6")]
    pub baton_resource: bool,
    #[prost(message, optional, tag = "9")]
    pub profile: Option<Struct>,
    #[prost(message, optional, tag = "11")]
    pub status: Option<ResourceStatus>,
    #[prost(message, optional, tag = "12")]
    pub created_at: Option<Timestamp>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Entitlement {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(string, tag = "2")]
    pub id: String,
    #[prost(string, tag = "3")]
    pub display_name: String,
    #[prost(string, tag = "4")]
    pub description: String,
    #[prost(message, repeated, tag = "5")]
    pub grantable_to: Vec<ResourceType>,
    #[prost(message, repeated, tag = "6")]
    pub annotations: Vec<Any>,
    #[prost(int32, tag = "7")]
    pub purpose: i32,
    #[prost(string, tag = "8")]
    pub slug: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct GrantSource {
    #[prost(bool, tag = "1")]
    pub is_direct: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct GrantSources {
    #[prost(btree_map = "string, message", tag = "1")]
    pub sources: BTreeMap<String, GrantSource>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Grant {
    #[prost(message, optional, tag = "1")]
    pub entitlement: Option<Entitlement>,
    #[prost(message, optional, tag = "2")]
    pub principal: Option<Resource>,
    #[prost(string, tag = "3")]
    pub id: String,
    #[prost(message, repeated, tag = "4")]
    pub annotations: Vec<Any>,
    #[prost(message, optional, tag = "5")]
    pub sources: Option<GrantSources>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Email {
    #[prost(string, tag = "1")]
    pub address: String,
    #[prost(bool, tag = "2")]
    pub is_primary: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct UserStatus {
    #[prost(int32, tag = "1")]
    pub status: i32,
    #[prost(string, tag = "2")]
    pub details: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct MfaStatus {
    #[prost(bool, tag = "1")]
    pub mfa_enabled: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct SsoStatus {
    #[prost(bool, tag = "1")]
    pub sso_enabled: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct StructuredName {
    #[prost(string, tag = "1")]
    pub given_name: String,
    #[prost(string, tag = "2")]
    pub family_name: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct UserTrait {
    #[prost(message, repeated, tag = "1")]
    pub emails: Vec<Email>,
    #[prost(message, optional, tag = "2")]
    pub status: Option<UserStatus>,
    #[prost(int32, tag = "5")]
    pub account_type: i32,
    #[prost(string, tag = "6")]
    pub login: String,
    #[prost(string, repeated, tag = "7")]
    pub login_aliases: Vec<String>,
    #[prost(message, optional, tag = "8")]
    pub created_at: Option<Timestamp>,
    #[prost(message, optional, tag = "9")]
    pub last_login: Option<Timestamp>,
    #[prost(message, optional, tag = "10")]
    pub mfa_status: Option<MfaStatus>,
    #[prost(message, optional, tag = "11")]
    pub sso_status: Option<SsoStatus>,
    #[prost(message, optional, tag = "12")]
    pub structured_name: Option<StructuredName>,
    #[prost(string, repeated, tag = "13")]
    pub employee_ids: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ScopeBindingTrait {
    #[prost(message, optional, tag = "1")]
    pub role_id: Option<ResourceId>,
    #[prost(message, optional, tag = "2")]
    pub scope_resource_id: Option<ResourceId>,
}

/// Trait and annotation messages with no fields we set (`GroupTrait`, `RoleTrait`,
/// `AppTrait`, `SecretTrait`, the skip markers, `GrantAlreadyExists`, …).
#[derive(Clone, PartialEq, Message)]
pub struct Empty {}

#[derive(Clone, PartialEq, Message)]
pub struct V1Identifier {
    #[prost(string, tag = "1")]
    pub id: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct ChildResourceType {
    #[prost(string, tag = "1")]
    pub resource_type_id: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct NonHumanIdentityTrait {
    #[prost(int32, tag = "1")]
    pub nhi_type: i32,
    #[prost(string, tag = "2")]
    pub nhi_detail: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct ExternalLink {
    #[prost(string, tag = "1")]
    pub url: String,
}

#[derive(Clone, PartialEq, Eq, Hash, Message)]
pub struct GrantExpandable {
    #[prost(string, repeated, tag = "1")]
    pub entitlement_ids: Vec<String>,
    #[prost(bool, tag = "2")]
    pub shallow: bool,
    #[prost(string, repeated, tag = "3")]
    pub resource_type_ids: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct RequestId {
    #[prost(string, tag = "1")]
    pub request_id: String,
}

/// Wraps a message as `google.protobuf.Any` with baton's type URL.
pub fn any<M: Message>(name: &str, message: &M) -> Any {
    Any {
        type_url: format!("{TYPE_URL_PREFIX}{name}"),
        value: message.encode_to_vec(),
    }
}

/// The short message name of an `Any` from this package, if it is one.
pub fn any_name(a: &Any) -> Option<&str> {
    a.type_url.strip_prefix(TYPE_URL_PREFIX)
}
