//! Baton's protobuf messages back into the connector's WIT records: the host streams the
//! resources it stored back to the connector for their entitlements and grants, instead
//! of holding every resource in memory (and so a resumed sync can pick them up too).

use crate::bindings::wit;
use crate::encode::struct_json;
use crate::store::proto::{self as p, any_name};
use anyhow::{anyhow, Context, Result};
use prost::Message;
use prost_types::{Any, Timestamp};

fn ts(t: &Timestamp) -> wit::Timestamp {
    wit::Timestamp {
        seconds: t.seconds,
        nanos: t.nanos.max(0) as u32,
    }
}

fn resource_id(id: Option<&p::ResourceId>) -> Result<wit::ResourceId> {
    let id = id.ok_or_else(|| anyhow!("a stored resource has no id"))?;
    Ok(wit::ResourceId {
        resource_type: id.resource_type.clone(),
        resource: id.resource.clone(),
    })
}

fn status(code: i32) -> wit::Status {
    match code {
        1 => wit::Status::Enabled,
        2 => wit::Status::Disabled,
        3 => wit::Status::Deleted,
        _ => wit::Status::Unspecified,
    }
}

fn user_trait(u: p::UserTrait) -> wit::UserTrait {
    wit::UserTrait {
        emails: u
            .emails
            .into_iter()
            .map(|e| wit::Email {
                address: e.address,
                primary: e.is_primary,
            })
            .collect(),
        status: status(u.status.map_or(0, |s| s.status)),
        account_type: match u.account_type {
            1 => wit::AccountType::Human,
            2 => wit::AccountType::Service,
            3 => wit::AccountType::System,
            _ => wit::AccountType::Unspecified,
        },
        login: Some(u.login).filter(|l| !l.is_empty()),
        login_aliases: u.login_aliases,
        created_at: u.created_at.as_ref().map(ts),
        last_login: u.last_login.as_ref().map(ts),
        mfa_enabled: u.mfa_status.map(|m| m.mfa_enabled),
        sso_enabled: u.sso_status.map(|s| s.sso_enabled),
        structured_name: u.structured_name.map(|n| wit::StructuredName {
            given_name: n.given_name,
            family_name: n.family_name,
        }),
        employee_ids: u.employee_ids,
    }
}

/// One stored annotation: a trait, an annotation, or something this host does not
/// write (kept out: the connector never sees what it did not send).
enum Decoded {
    Trait(wit::ResourceTrait),
    Annotation(wit::Annotation),
    Other,
}

fn decode_any<M: Message + Default>(a: &Any) -> Result<M> {
    M::decode(a.value.as_slice()).with_context(|| format!("stored {} is damaged", a.type_url))
}

fn annotation(a: &Any) -> Result<Decoded> {
    use wit::Annotation as A;
    Ok(match any_name(a).unwrap_or_default() {
        "UserTrait" => Decoded::Trait(wit::ResourceTrait::User(user_trait(decode_any(a)?))),
        "GroupTrait" => Decoded::Trait(wit::ResourceTrait::Group),
        "RoleTrait" => Decoded::Trait(wit::ResourceTrait::Role),
        "AppTrait" => Decoded::Trait(wit::ResourceTrait::App),
        "SecretTrait" => Decoded::Trait(wit::ResourceTrait::Secret),
        "ScopeBindingTrait" => {
            let s: p::ScopeBindingTrait = decode_any(a)?;
            Decoded::Trait(wit::ResourceTrait::ScopeBinding(wit::ScopeBindingTrait {
                role: resource_id(s.role_id.as_ref())?,
                scope: resource_id(s.scope_resource_id.as_ref())?,
            }))
        }
        "V1Identifier" => {
            Decoded::Annotation(A::V1Identifier(decode_any::<p::V1Identifier>(a)?.id))
        }
        "ChildResourceType" => Decoded::Annotation(A::ChildResourceType(
            decode_any::<p::ChildResourceType>(a)?.resource_type_id,
        )),
        "SkipEntitlements" => Decoded::Annotation(A::SkipEntitlements),
        "SkipGrants" => Decoded::Annotation(A::SkipGrants),
        "SkipEntitlementsAndGrants" => Decoded::Annotation(A::SkipEntitlementsAndGrants),
        "NonHumanIdentityTrait" => {
            let n: p::NonHumanIdentityTrait = decode_any(a)?;
            Decoded::Annotation(A::NonHumanIdentity(wit::NonHumanIdentity {
                nhi_type: match n.nhi_type {
                    1 => wit::NhiType::AppRegistration,
                    2 => wit::NhiType::AssumableRole,
                    3 => wit::NhiType::ManagedIdentity,
                    _ => wit::NhiType::Unspecified,
                },
                detail: n.nhi_detail,
            }))
        }
        "ExternalLink" => {
            Decoded::Annotation(A::ExternalLink(decode_any::<p::ExternalLink>(a)?.url))
        }
        "GrantAlreadyExists" => Decoded::Annotation(A::GrantAlreadyExists),
        "GrantAlreadyRevoked" => Decoded::Annotation(A::GrantAlreadyRevoked),
        "RequestId" => Decoded::Annotation(A::RequestId(decode_any::<p::RequestId>(a)?.request_id)),
        _ => Decoded::Other,
    })
}

/// A stored resource as the connector sent it (a user's unspecified status and account
/// type come back as baton's defaults, enabled and human).
pub fn resource(r: &p::Resource) -> Result<wit::Resource> {
    let mut traits = Vec::new();
    let mut annotations = Vec::new();
    for a in &r.annotations {
        match annotation(a)? {
            Decoded::Trait(t) => traits.push(t),
            Decoded::Annotation(a) => annotations.push(a),
            Decoded::Other => {}
        }
    }
    Ok(wit::Resource {
        id: resource_id(r.id.as_ref())?,
        parent: r
            .parent_resource_id
            .as_ref()
            .map(|p| resource_id(Some(p)))
            .transpose()?,
        display_name: r.display_name.clone(),
        description: Some(r.description.clone()).filter(|d| !d.is_empty()),
        traits,
        profile: r.profile.as_ref().map(|s| struct_json(s).to_string()),
        status: status(r.status.as_ref().map_or(0, |s| s.status)),
        created_at: r.created_at.as_ref().map(ts),
        annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode;

    fn full_resource() -> wit::Resource {
        let t = wit::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        };
        let id = |k: &str, v: &str| wit::ResourceId {
            resource_type: k.into(),
            resource: v.into(),
        };
        wit::Resource {
            id: id("iam_user", "arn:aws:iam::1:user/a"),
            parent: Some(id("account_iam", "1")),
            display_name: "a".into(),
            description: Some("the user a".into()),
            traits: vec![
                wit::ResourceTrait::User(wit::UserTrait {
                    emails: vec![wit::Email {
                        address: "a@example.com".into(),
                        primary: true,
                    }],
                    status: wit::Status::Disabled,
                    account_type: wit::AccountType::Service,
                    login: Some("a".into()),
                    login_aliases: vec!["b".into()],
                    created_at: Some(t),
                    last_login: Some(t),
                    mfa_enabled: Some(true),
                    sso_enabled: Some(false),
                    structured_name: Some(wit::StructuredName {
                        given_name: "A".into(),
                        family_name: "B".into(),
                    }),
                    employee_ids: vec!["7".into()],
                }),
                wit::ResourceTrait::ScopeBinding(wit::ScopeBindingTrait {
                    role: id("role", "r"),
                    scope: id("account", "1"),
                }),
                wit::ResourceTrait::Group,
            ],
            profile: Some(r#"{"arn":"x","tags":["a",true,null],"n":{"m":2.5}}"#.into()),
            status: wit::Status::Enabled,
            created_at: Some(t),
            annotations: vec![
                wit::Annotation::V1Identifier("old".into()),
                wit::Annotation::ChildResourceType("role".into()),
                wit::Annotation::SkipGrants,
                wit::Annotation::NonHumanIdentity(wit::NonHumanIdentity {
                    nhi_type: wit::NhiType::AssumableRole,
                    detail: "d".into(),
                }),
                wit::Annotation::ExternalLink("https://x".into()),
            ],
        }
    }

    #[test]
    fn a_stored_resource_reads_back_as_it_was_sent() {
        let sent = encode::resource(&full_resource()).unwrap();
        let back = resource(&sent).unwrap();
        assert_eq!(encode::resource(&back).unwrap(), sent);
        assert_eq!(back.display_name, "a");
        assert_eq!(back.parent.unwrap().resource, "1");
        assert_eq!(back.traits.len(), 3);
        assert_eq!(back.annotations.len(), 5);
    }

    #[test]
    fn a_damaged_record_is_an_error_not_a_panic() {
        let mut r = encode::resource(&full_resource()).unwrap();
        r.annotations[0].value = vec![0xff, 0xff, 0xff];
        assert!(resource(&r).unwrap_err().to_string().contains("damaged"));
        r.id = None;
        assert!(resource(&r).is_err());
    }
}
