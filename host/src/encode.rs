//! Turns the connector's WIT records into baton's protobuf messages.

use crate::bindings::wit;
use crate::store::proto::{self as p, any, Empty};
use anyhow::{Context, Result};
use prost_types::{value::Kind, Any, ListValue, Struct, Timestamp, Value};
use std::collections::HashMap;

fn ts(t: &wit::Timestamp) -> Timestamp {
    Timestamp {
        seconds: t.seconds,
        nanos: t.nanos as i32,
    }
}

pub fn resource_id(id: &wit::ResourceId) -> p::ResourceId {
    p::ResourceId {
        resource_type: id.resource_type.clone(),
        resource: id.resource.clone(),
        baton_resource: false,
    }
}

fn status_code(s: wit::Status) -> i32 {
    match s {
        wit::Status::Unspecified => 0,
        wit::Status::Enabled => 1,
        wit::Status::Disabled => 2,
        wit::Status::Deleted => 3,
    }
}

fn trait_code(t: wit::TraitKind) -> i32 {
    match t {
        wit::TraitKind::User => 1,
        wit::TraitKind::Group => 2,
        wit::TraitKind::Role => 3,
        wit::TraitKind::App => 4,
        wit::TraitKind::Secret => 5,
        wit::TraitKind::ScopeBinding => 7,
    }
}

/// Annotations as baton's `Any`s. `GrantExpandable` is returned apart: baton stores it in
/// the grant row's `expansion` column, not in the blob.
pub fn annotations(list: &[wit::Annotation]) -> (Vec<Any>, Option<p::GrantExpandable>) {
    let mut out = Vec::new();
    let mut expandable = None;
    for a in list {
        match a {
            wit::Annotation::V1Identifier(id) => {
                out.push(any("V1Identifier", &p::V1Identifier { id: id.clone() }))
            }
            wit::Annotation::ChildResourceType(t) => out.push(any(
                "ChildResourceType",
                &p::ChildResourceType {
                    resource_type_id: t.clone(),
                },
            )),
            wit::Annotation::SkipEntitlements => out.push(any("SkipEntitlements", &Empty {})),
            wit::Annotation::SkipGrants => out.push(any("SkipGrants", &Empty {})),
            wit::Annotation::SkipEntitlementsAndGrants => {
                out.push(any("SkipEntitlementsAndGrants", &Empty {}))
            }
            wit::Annotation::NonHumanIdentity(n) => out.push(any(
                "NonHumanIdentityTrait",
                &p::NonHumanIdentityTrait {
                    nhi_type: match n.nhi_type {
                        wit::NhiType::Unspecified => 0,
                        wit::NhiType::AppRegistration => 1,
                        wit::NhiType::AssumableRole => 2,
                        wit::NhiType::ManagedIdentity => 3,
                    },
                    nhi_detail: n.detail.clone(),
                },
            )),
            wit::Annotation::ExternalLink(url) => {
                out.push(any("ExternalLink", &p::ExternalLink { url: url.clone() }))
            }
            wit::Annotation::GrantExpandable(x) => {
                expandable = Some(p::GrantExpandable {
                    entitlement_ids: x.entitlement_ids.clone(),
                    shallow: x.shallow,
                    resource_type_ids: x.resource_type_ids.clone(),
                })
            }
            wit::Annotation::GrantAlreadyExists => out.push(any("GrantAlreadyExists", &Empty {})),
            wit::Annotation::GrantAlreadyRevoked => out.push(any("GrantAlreadyRevoked", &Empty {})),
            wit::Annotation::RequestId(id) => out.push(any(
                "RequestId",
                &p::RequestId {
                    request_id: id.clone(),
                },
            )),
        }
    }
    (out, expandable)
}

pub fn resource_type(t: &wit::ResourceType) -> p::ResourceType {
    p::ResourceType {
        id: t.id.clone(),
        display_name: t.display_name.clone(),
        traits: t.traits.iter().map(|k| trait_code(*k)).collect(),
        annotations: annotations(&t.annotations).0,
        description: t.description.clone(),
        sourced_externally: false,
    }
}

fn user_trait(u: &wit::UserTrait) -> p::UserTrait {
    p::UserTrait {
        emails: u
            .emails
            .iter()
            .map(|e| p::Email {
                address: e.address.clone(),
                is_primary: e.primary,
            })
            .collect(),
        // baton's defaults: a user is enabled and human unless the connector says otherwise.
        status: Some(p::UserStatus {
            status: match u.status {
                wit::Status::Unspecified => 1,
                s => status_code(s),
            },
            details: String::new(),
        }),
        account_type: match u.account_type {
            wit::AccountType::Unspecified | wit::AccountType::Human => 1,
            wit::AccountType::Service => 2,
            wit::AccountType::System => 3,
        },
        login: u.login.clone().unwrap_or_default(),
        login_aliases: u.login_aliases.clone(),
        created_at: u.created_at.as_ref().map(ts),
        last_login: u.last_login.as_ref().map(ts),
        mfa_status: u.mfa_enabled.map(|m| p::MfaStatus { mfa_enabled: m }),
        sso_status: u.sso_enabled.map(|s| p::SsoStatus { sso_enabled: s }),
        structured_name: u.structured_name.as_ref().map(|n| p::StructuredName {
            given_name: n.given_name.clone(),
            family_name: n.family_name.clone(),
        }),
        employee_ids: u.employee_ids.clone(),
    }
}

pub fn resource(r: &wit::Resource) -> Result<p::Resource> {
    let mut anns = Vec::new();
    for t in &r.traits {
        anns.push(match t {
            wit::ResourceTrait::User(u) => any("UserTrait", &user_trait(u)),
            wit::ResourceTrait::Group => any("GroupTrait", &Empty {}),
            wit::ResourceTrait::Role => any("RoleTrait", &Empty {}),
            wit::ResourceTrait::App => any("AppTrait", &Empty {}),
            wit::ResourceTrait::Secret => any("SecretTrait", &Empty {}),
            wit::ResourceTrait::ScopeBinding(s) => any(
                "ScopeBindingTrait",
                &p::ScopeBindingTrait {
                    role_id: Some(resource_id(&s.role)),
                    scope_resource_id: Some(resource_id(&s.scope)),
                },
            ),
        });
    }
    anns.extend(annotations(&r.annotations).0);
    let profile = match &r.profile {
        Some(json) => Some(json_struct(json).with_context(|| {
            format!(
                "resource {}:{} has a bad profile",
                r.id.resource_type, r.id.resource
            )
        })?),
        None => None,
    };
    Ok(p::Resource {
        id: Some(resource_id(&r.id)),
        parent_resource_id: r.parent.as_ref().map(resource_id),
        display_name: r.display_name.clone(),
        annotations: anns,
        description: r.description.clone().unwrap_or_default(),
        baton_resource: false,
        profile,
        status: match r.status {
            wit::Status::Unspecified => None,
            s => Some(p::ResourceStatus {
                status: status_code(s),
                details: String::new(),
            }),
        },
        created_at: r.created_at.as_ref().map(ts),
    })
}

pub fn entitlement(
    e: &wit::Entitlement,
    resource: &p::Resource,
    types: &HashMap<String, p::ResourceType>,
) -> p::Entitlement {
    p::Entitlement {
        resource: Some(resource.clone()),
        id: e.id.clone(),
        display_name: e.display_name.clone(),
        description: e.description.clone(),
        grantable_to: e
            .grantable_to
            .iter()
            .map(|t| {
                types.get(t).cloned().unwrap_or_else(|| p::ResourceType {
                    id: t.clone(),
                    ..Default::default()
                })
            })
            .collect(),
        annotations: annotations(&e.annotations).0,
        purpose: match e.purpose {
            wit::Purpose::Unspecified => 0,
            wit::Purpose::Assignment => 1,
            wit::Purpose::Permission => 2,
            wit::Purpose::Ownership => 3,
        },
        slug: e.slug.clone(),
    }
}

/// A grant embeds its entitlement (id and resource) and its principal's id, which is
/// what baton's readers need from the blob.
pub fn grant(
    g: &wit::Grant,
    entitlement: Option<&p::Entitlement>,
    resource: &p::Resource,
) -> (p::Grant, Option<p::GrantExpandable>) {
    let (anns, expandable) = annotations(&g.annotations);
    let entitlement = entitlement.cloned().unwrap_or_else(|| p::Entitlement {
        resource: Some(resource.clone()),
        id: g.entitlement_id.clone(),
        ..Default::default()
    });
    (
        p::Grant {
            entitlement: Some(entitlement),
            principal: Some(p::Resource {
                id: Some(resource_id(&g.principal)),
                ..Default::default()
            }),
            id: g.id.clone(),
            annotations: anns,
            sources: None,
        },
        expandable,
    )
}

/// A JSON object as `google.protobuf.Struct`.
pub fn json_struct(text: &str) -> Result<Struct> {
    let v: serde_json::Value = serde_json::from_str(text).context("profile is not JSON")?;
    match json_value(v).kind {
        Some(Kind::StructValue(s)) => Ok(s),
        _ => anyhow::bail!("profile is not a JSON object"),
    }
}

fn json_value(v: serde_json::Value) -> Value {
    let kind = match v {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(a) => Kind::ListValue(ListValue {
            values: a.into_iter().map(json_value).collect(),
        }),
        serde_json::Value::Object(o) => Kind::StructValue(Struct {
            fields: o.into_iter().map(|(k, v)| (k, json_value(v))).collect(),
        }),
    };
    Value { kind: Some(kind) }
}

/// A `Struct` back to JSON, for `-o json` output.
pub fn struct_json(s: &Struct) -> serde_json::Value {
    serde_json::Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
            .collect(),
    )
}

fn value_json(v: &Value) -> serde_json::Value {
    match &v.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => (*b).into(),
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(*n)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Some(Kind::StringValue(s)) => s.clone().into(),
        Some(Kind::ListValue(l)) => {
            serde_json::Value::Array(l.values.iter().map(value_json).collect())
        }
        Some(Kind::StructValue(s)) => struct_json(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn profiles_round_trip_through_struct() {
        let s = json_struct(r#"{"b":"x","a":{"t":"v"},"n":3600,"l":[true,null]}"#).unwrap();
        assert_eq!(
            struct_json(&s),
            serde_json::json!({"a":{"t":"v"},"b":"x","n":3600.0,"l":[true,null]})
        );
        assert!(json_struct("[1]").is_err());
        assert!(json_struct("{").is_err());
    }

    #[test]
    fn expandable_is_kept_out_of_the_blob() {
        let g = wit::Grant {
            id: "role:r:assignment:role:q".into(),
            entitlement_id: "role:r:assignment".into(),
            resource: wit::ResourceId {
                resource_type: "role".into(),
                resource: "r".into(),
            },
            principal: wit::ResourceId {
                resource_type: "role".into(),
                resource: "q".into(),
            },
            annotations: vec![wit::Annotation::GrantExpandable(wit::GrantExpandable {
                entitlement_ids: vec!["role:q:assignment".into()],
                shallow: false,
                resource_type_ids: vec![],
            })],
        };
        let (grant, x) = grant(&g, None, &p::Resource::default());
        assert!(grant.annotations.is_empty());
        assert_eq!(x.unwrap().entitlement_ids, ["role:q:assignment"]);
        let decoded = p::Grant::decode(grant.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded.entitlement.unwrap().id, "role:r:assignment");
        assert_eq!(decoded.principal.unwrap().id.unwrap().resource, "q");
    }
}
