//! The baton-shaped records the connector produces, mirroring `wit/connector.wit`.
//!
//! The component converts these one-to-one into the generated WIT types; keeping them
//! here lets the mapping logic be tested on the native target.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId {
    pub resource_type: String,
    pub resource: String,
}

impl ResourceId {
    pub fn new(resource_type: &str, resource: impl Into<String>) -> Self {
        ResourceId {
            resource_type: resource_type.to_string(),
            resource: resource.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Status {
    #[default]
    Unspecified,
    Enabled,
    Disabled,
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub address: String,
    pub primary: bool,
}

/// A user's e-mails from candidate addresses in order: blanks and case-insensitive
/// repeats dropped, the first one primary.
pub fn emails<'a>(addresses: impl IntoIterator<Item = &'a str>) -> Vec<Email> {
    let mut out: Vec<Email> = Vec::new();
    for address in addresses {
        if !address.is_empty() && !out.iter().any(|e| e.address.eq_ignore_ascii_case(address)) {
            let primary = out.is_empty();
            out.push(Email {
                address: address.to_string(),
                primary,
            });
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccountType {
    #[default]
    Unspecified,
    Human,
    Service,
    System,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub seconds: i64,
    pub nanos: u32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserTrait {
    pub emails: Vec<Email>,
    pub status: Status,
    pub account_type: AccountType,
    pub login: Option<String>,
    pub created_at: Option<Timestamp>,
    pub last_login: Option<Timestamp>,
    pub mfa_enabled: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraitKind {
    User,
    Group,
    Role,
    App,
    Secret,
    ScopeBinding,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResourceTrait {
    User(UserTrait),
    Group,
    Role,
    App,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NhiType {
    AssumableRole,
    ManagedIdentity,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantExpandable {
    pub entitlement_ids: Vec<String>,
    pub shallow: bool,
    pub resource_type_ids: Vec<String>,
}

impl GrantExpandable {
    /// "Every holder of `entitlement_id` also holds this grant's entitlement."
    pub fn from_holders_of(entitlement_id: String) -> Annotation {
        Annotation::GrantExpandable(GrantExpandable {
            entitlement_ids: vec![entitlement_id],
            shallow: false,
            resource_type_ids: vec![],
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Annotation {
    V1Identifier(String),
    ChildResourceType(String),
    SkipEntitlements,
    SkipGrants,
    SkipEntitlementsAndGrants,
    NonHumanIdentity { nhi_type: NhiType, detail: String },
    ExternalLink(String),
    GrantExpandable(GrantExpandable),
    GrantAlreadyExists,
    GrantAlreadyRevoked,
    RequestId(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    pub id: &'static str,
    pub display_name: &'static str,
    pub description: &'static str,
    pub traits: Vec<TraitKind>,
    pub annotations: Vec<Annotation>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub id: ResourceId,
    pub parent: Option<ResourceId>,
    pub display_name: String,
    pub description: Option<String>,
    pub traits: Vec<ResourceTrait>,
    /// JSON object text.
    pub profile: Option<String>,
    pub status: Status,
    pub created_at: Option<Timestamp>,
    pub annotations: Vec<Annotation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Assignment,
    Permission,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entitlement {
    pub id: String,
    pub resource: ResourceId,
    pub slug: String,
    pub display_name: String,
    pub description: String,
    pub purpose: Purpose,
    pub grantable_to: Vec<String>,
    pub annotations: Vec<Annotation>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub id: String,
    pub entitlement_id: String,
    pub resource: ResourceId,
    pub principal: ResourceId,
    pub annotations: Vec<Annotation>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
    pub warnings: Vec<String>,
}

impl<T> Page<T> {
    pub fn last(items: Vec<T>) -> Self {
        Page {
            items,
            next_page_token: None,
            warnings: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    String,
    Boolean,
    Secret,
    Select,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SettingSpec {
    pub name: &'static str,
    pub env: &'static str,
    pub kind: SettingKind,
    pub default_value: Option<&'static str>,
    pub choices: Vec<&'static str>,
    pub description: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Capability {
    pub name: &'static str,
    pub enabled_by: Option<&'static str>,
    pub permissions: Vec<&'static str>,
    pub description: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub name: &'static str,
    pub display_name: &'static str,
    pub version: &'static str,
    pub description: &'static str,
    pub resource_types: Vec<ResourceType>,
    pub capabilities: Vec<Capability>,
    pub settings: Vec<SettingSpec>,
    pub outbound_hosts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Configured {
    pub outbound_hosts: Vec<String>,
    pub resource_types: Vec<ResourceType>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialScope {
    Base,
    Account(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub expires_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
}

/// Errors the host can act on (the WIT `connector-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorError {
    Throttled {
        retry_after: Option<Duration>,
        message: String,
    },
    AccessDenied(String),
    NotFound(String),
    InvalidConfig {
        setting: String,
        reason: String,
    },
    Transient(String),
    CredentialsExpired(String),
    Unsupported(String),
    InvalidArgument(String),
    Fatal(String),
}

impl ConnectorError {
    /// Whether trying the same call again later may succeed.
    pub fn may_pass(&self) -> bool {
        matches!(
            self,
            ConnectorError::Throttled { .. }
                | ConnectorError::Transient(_)
                | ConnectorError::CredentialsExpired(_)
        )
    }
}

impl ConnectorError {
    pub fn invalid_config(setting: &str, reason: impl Into<String>) -> Self {
        ConnectorError::InvalidConfig {
            setting: setting.to_string(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for ConnectorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectorError::Throttled { message, .. } => write!(f, "throttled: {message}"),
            ConnectorError::AccessDenied(m) => write!(f, "access denied: {m}"),
            ConnectorError::NotFound(m) => write!(f, "not found: {m}"),
            ConnectorError::InvalidConfig { setting, reason } => {
                write!(f, "invalid setting {setting}: {reason}")
            }
            ConnectorError::Transient(m) => write!(f, "transient failure: {m}"),
            ConnectorError::CredentialsExpired(m) => write!(f, "credentials rejected: {m}"),
            ConnectorError::Unsupported(m) => write!(f, "unsupported: {m}"),
            ConnectorError::InvalidArgument(m) => write!(f, "invalid request: {m}"),
            ConnectorError::Fatal(m) => write!(f, "{m}"),
        }
    }
}
