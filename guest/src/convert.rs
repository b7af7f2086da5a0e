//! One-to-one conversions between the core's records and the generated WIT types.

use crate::baton::connector::types as wit;
use aws_connector_core::model as m;

fn ts(t: m::Timestamp) -> wit::Timestamp {
    wit::Timestamp {
        seconds: t.seconds,
        nanos: t.nanos,
    }
}

fn status(s: m::Status) -> wit::Status {
    match s {
        m::Status::Unspecified => wit::Status::Unspecified,
        m::Status::Enabled => wit::Status::Enabled,
        m::Status::Disabled => wit::Status::Disabled,
        m::Status::Deleted => wit::Status::Deleted,
    }
}

fn trait_kind(k: m::TraitKind) -> wit::TraitKind {
    match k {
        m::TraitKind::User => wit::TraitKind::User,
        m::TraitKind::Group => wit::TraitKind::Group,
        m::TraitKind::Role => wit::TraitKind::Role,
        m::TraitKind::App => wit::TraitKind::App,
        m::TraitKind::Secret => wit::TraitKind::Secret,
        m::TraitKind::ScopeBinding => wit::TraitKind::ScopeBinding,
    }
}

pub fn resource_id(id: m::ResourceId) -> wit::ResourceId {
    wit::ResourceId {
        resource_type: id.resource_type,
        resource: id.resource,
    }
}

pub fn resource_id_in(id: wit::ResourceId) -> m::ResourceId {
    m::ResourceId {
        resource_type: id.resource_type,
        resource: id.resource,
    }
}

fn annotation(a: m::Annotation) -> wit::Annotation {
    match a {
        m::Annotation::V1Identifier(s) => wit::Annotation::V1Identifier(s),
        m::Annotation::ChildResourceType(s) => wit::Annotation::ChildResourceType(s),
        m::Annotation::SkipEntitlements => wit::Annotation::SkipEntitlements,
        m::Annotation::SkipGrants => wit::Annotation::SkipGrants,
        m::Annotation::SkipEntitlementsAndGrants => wit::Annotation::SkipEntitlementsAndGrants,
        m::Annotation::NonHumanIdentity { nhi_type, detail } => {
            wit::Annotation::NonHumanIdentity(wit::NonHumanIdentity {
                nhi_type: match nhi_type {
                    m::NhiType::AssumableRole => wit::NhiType::AssumableRole,
                    m::NhiType::ManagedIdentity => wit::NhiType::ManagedIdentity,
                },
                detail,
            })
        }
        m::Annotation::ExternalLink(s) => wit::Annotation::ExternalLink(s),
        m::Annotation::GrantExpandable(g) => {
            wit::Annotation::GrantExpandable(wit::GrantExpandable {
                entitlement_ids: g.entitlement_ids,
                shallow: g.shallow,
                resource_type_ids: g.resource_type_ids,
            })
        }
        m::Annotation::GrantAlreadyExists => wit::Annotation::GrantAlreadyExists,
        m::Annotation::GrantAlreadyRevoked => wit::Annotation::GrantAlreadyRevoked,
        m::Annotation::RequestId(s) => wit::Annotation::RequestId(s),
    }
}

pub fn annotations(list: Vec<m::Annotation>) -> Vec<wit::Annotation> {
    list.into_iter().map(annotation).collect()
}

fn resource_type(t: m::ResourceType) -> wit::ResourceType {
    wit::ResourceType {
        id: t.id.into(),
        display_name: t.display_name.into(),
        description: t.description.into(),
        traits: t.traits.into_iter().map(trait_kind).collect(),
        annotations: annotations(t.annotations),
    }
}

pub fn metadata(md: m::Metadata) -> wit::Metadata {
    wit::Metadata {
        name: md.name.into(),
        display_name: md.display_name.into(),
        version: md.version.into(),
        description: md.description.into(),
        resource_types: md.resource_types.into_iter().map(resource_type).collect(),
        capabilities: md
            .capabilities
            .into_iter()
            .map(|c| wit::Capability {
                name: c.name.into(),
                enabled_by: c.enabled_by.map(Into::into),
                permissions: c.permissions.into_iter().map(Into::into).collect(),
                description: c.description.into(),
            })
            .collect(),
        settings: md
            .settings
            .into_iter()
            .map(|s| wit::SettingSpec {
                name: s.name.into(),
                env: s.env.into(),
                kind: match s.kind {
                    m::SettingKind::String => wit::SettingKind::String,
                    m::SettingKind::Boolean => wit::SettingKind::Boolean,
                    m::SettingKind::Secret => wit::SettingKind::Secret,
                    m::SettingKind::Select => wit::SettingKind::Select,
                },
                default_value: s.default_value.map(Into::into),
                choices: s.choices.into_iter().map(Into::into).collect(),
                description: s.description.into(),
            })
            .collect(),
        outbound_hosts: md.outbound_hosts,
    }
}

pub fn configured(c: m::Configured) -> wit::Configured {
    wit::Configured {
        outbound_hosts: c.outbound_hosts,
        resource_types: c.resource_types.into_iter().map(resource_type).collect(),
    }
}

fn user_trait(u: m::UserTrait) -> wit::UserTrait {
    wit::UserTrait {
        emails: u
            .emails
            .into_iter()
            .map(|e| wit::Email {
                address: e.address,
                primary: e.primary,
            })
            .collect(),
        status: status(u.status),
        account_type: match u.account_type {
            m::AccountType::Unspecified => wit::AccountType::Unspecified,
            m::AccountType::Human => wit::AccountType::Human,
            m::AccountType::Service => wit::AccountType::Service,
            m::AccountType::System => wit::AccountType::System,
        },
        login: u.login,
        login_aliases: vec![],
        created_at: u.created_at.map(ts),
        last_login: u.last_login.map(ts),
        mfa_enabled: u.mfa_enabled,
        sso_enabled: None,
        structured_name: None,
        employee_ids: vec![],
    }
}

fn resource(r: m::Resource) -> wit::Resource {
    wit::Resource {
        id: resource_id(r.id),
        parent: r.parent.map(resource_id),
        display_name: r.display_name,
        description: r.description,
        traits: r
            .traits
            .into_iter()
            .map(|t| match t {
                m::ResourceTrait::User(u) => wit::ResourceTrait::User(user_trait(u)),
                m::ResourceTrait::Group => wit::ResourceTrait::Group,
                m::ResourceTrait::Role => wit::ResourceTrait::Role,
                m::ResourceTrait::App => wit::ResourceTrait::App,
            })
            .collect(),
        profile: r.profile,
        status: status(r.status),
        created_at: r.created_at.map(ts),
        annotations: annotations(r.annotations),
    }
}

/// The connector only reads a resource's id and name back from the host.
pub fn resource_in(r: wit::Resource) -> m::Resource {
    m::Resource {
        id: resource_id_in(r.id),
        parent: r.parent.map(resource_id_in),
        display_name: r.display_name,
        description: r.description,
        traits: vec![],
        profile: r.profile,
        status: m::Status::Unspecified,
        created_at: None,
        annotations: vec![],
    }
}

pub fn resource_page(p: m::Page<m::Resource>) -> wit::ResourcePage {
    wit::ResourcePage {
        items: p.items.into_iter().map(resource).collect(),
        next_page_token: p.next_page_token,
        warnings: p.warnings,
    }
}

pub fn entitlement_page(p: m::Page<m::Entitlement>) -> wit::EntitlementPage {
    wit::EntitlementPage {
        items: p
            .items
            .into_iter()
            .map(|e| wit::Entitlement {
                id: e.id,
                resource: resource_id(e.resource),
                slug: e.slug,
                display_name: e.display_name,
                description: e.description,
                purpose: match e.purpose {
                    m::Purpose::Assignment => wit::Purpose::Assignment,
                    m::Purpose::Permission => wit::Purpose::Permission,
                },
                grantable_to: e.grantable_to,
                annotations: annotations(e.annotations),
            })
            .collect(),
        next_page_token: p.next_page_token,
        warnings: p.warnings,
    }
}

fn grant(g: m::Grant) -> wit::Grant {
    wit::Grant {
        id: g.id,
        entitlement_id: g.entitlement_id,
        resource: resource_id(g.resource),
        principal: resource_id(g.principal),
        annotations: annotations(g.annotations),
    }
}

/// Provisioning reads only ids back from the host.
pub fn entitlement_in(e: wit::Entitlement) -> m::Entitlement {
    m::Entitlement {
        id: e.id,
        resource: resource_id_in(e.resource),
        slug: e.slug,
        display_name: e.display_name,
        description: e.description,
        purpose: m::Purpose::Assignment,
        grantable_to: e.grantable_to,
        annotations: vec![],
    }
}

pub fn grant_in(g: wit::Grant) -> m::Grant {
    m::Grant {
        id: g.id,
        entitlement_id: g.entitlement_id,
        resource: resource_id_in(g.resource),
        principal: resource_id_in(g.principal),
        annotations: vec![],
    }
}

pub fn provision_result(o: aws_connector_core::provision::Outcome) -> wit::ProvisionResult {
    wit::ProvisionResult {
        grants: o.grants.into_iter().map(grant).collect(),
        annotations: annotations(o.annotations),
    }
}

pub fn grant_page(p: m::Page<m::Grant>) -> wit::GrantPage {
    wit::GrantPage {
        items: p.items.into_iter().map(grant).collect(),
        next_page_token: p.next_page_token,
        warnings: p.warnings,
    }
}

pub fn error(e: m::ConnectorError) -> wit::ConnectorError {
    match e {
        m::ConnectorError::Throttled {
            retry_after,
            message,
        } => wit::ConnectorError::Throttled(wit::Throttled {
            retry_after_ms: retry_after.map(|d| d.as_millis() as u64),
            message,
        }),
        m::ConnectorError::AccessDenied(s) => wit::ConnectorError::AccessDenied(s),
        m::ConnectorError::NotFound(s) => wit::ConnectorError::NotFound(s),
        m::ConnectorError::InvalidConfig { setting, reason } => {
            wit::ConnectorError::InvalidConfig(wit::InvalidConfig { setting, reason })
        }
        m::ConnectorError::Transient(s) => wit::ConnectorError::Transient(s),
        m::ConnectorError::CredentialsExpired(s) => wit::ConnectorError::CredentialsExpired(s),
        m::ConnectorError::Unsupported(s) => wit::ConnectorError::Unsupported(s),
        m::ConnectorError::InvalidArgument(s) => wit::ConnectorError::InvalidArgument(s),
        m::ConnectorError::Fatal(s) => wit::ConnectorError::Fatal(s),
    }
}

pub fn error_in(e: wit::ConnectorError) -> m::ConnectorError {
    match e {
        wit::ConnectorError::Throttled(t) => m::ConnectorError::Throttled {
            retry_after: t.retry_after_ms.map(std::time::Duration::from_millis),
            message: t.message,
        },
        wit::ConnectorError::AccessDenied(s) => m::ConnectorError::AccessDenied(s),
        wit::ConnectorError::NotFound(s) => m::ConnectorError::NotFound(s),
        wit::ConnectorError::InvalidConfig(c) => m::ConnectorError::InvalidConfig {
            setting: c.setting,
            reason: c.reason,
        },
        wit::ConnectorError::Transient(s) => m::ConnectorError::Transient(s),
        wit::ConnectorError::CredentialsExpired(s) => m::ConnectorError::CredentialsExpired(s),
        wit::ConnectorError::Unsupported(s) => m::ConnectorError::Unsupported(s),
        wit::ConnectorError::InvalidArgument(s) => m::ConnectorError::InvalidArgument(s),
        wit::ConnectorError::Fatal(s) => m::ConnectorError::Fatal(s),
    }
}
