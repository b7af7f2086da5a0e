//! Identity Center users, groups and accounts as baton resources, entitlements and
//! grants, with baton-aws's ids.

use super::fetch::{Account, Assignment, Membership, PermissionSet, SsoGroup, SsoUser};
use crate::model::*;
use crate::resource_types::{ACCOUNT, SSO_GROUP, SSO_USER};
use serde_json::{json, Value};

/// baton-aws synthesises Identity Store ARNs (they have none): region of the instance,
/// empty account field.
pub fn user_arn(region: &str, store: &str, user_id: &str) -> String {
    format!("arn:aws:identitystore:{region}::{store}/user/{user_id}")
}

pub fn group_arn(region: &str, store: &str, group_id: &str) -> String {
    format!("arn:aws:identitystore:{region}::{store}/group/{group_id}")
}

fn external_ids(ids: &[(String, String)]) -> Option<Value> {
    (!ids.is_empty()).then(|| {
        Value::Array(
            ids.iter()
                .map(|(issuer, id)| json!({"id": id, "issuer": issuer}))
                .collect(),
        )
    })
}

fn status(s: Option<&str>) -> Status {
    match s {
        Some("ENABLED") => Status::Enabled,
        Some("DISABLED") => Status::Disabled,
        _ => Status::Unspecified,
    }
}

/// `status` overrides the Identity Store's `UserStatus` (the SCIM `active` flag, when read).
pub fn user_resource(
    region: &str,
    store: &str,
    u: &SsoUser,
    scim_active: Option<bool>,
) -> Resource {
    let arn = user_arn(region, store, &u.user_id);
    let username_email = u.user_name.contains('@').then_some(u.user_name.as_str());
    let emails = emails(
        username_email
            .into_iter()
            .chain(u.emails.iter().map(String::as_str)),
    );
    let status = match scim_active {
        Some(true) => Status::Enabled,
        Some(false) => Status::Disabled,
        None => status(u.status.as_deref()),
    };
    let mut profile = json!({
        "aws_user_type": "sso",
        "aws_user_name": u.display_name,
        "aws_user_id": u.user_id,
    });
    if let Some(ids) = external_ids(&u.external_ids) {
        profile["external_ids"] = ids;
    }
    Resource {
        id: ResourceId::new(SSO_USER, &arn),
        parent: None,
        display_name: u.user_name.clone(),
        description: None,
        traits: vec![ResourceTrait::User(UserTrait {
            emails,
            status: if status == Status::Unspecified {
                Status::Enabled
            } else {
                status
            },
            account_type: AccountType::Human,
            login: Some(u.user_name.clone()),
            ..Default::default()
        })],
        profile: Some(profile.to_string()),
        status,
        created_at: None,
        annotations: vec![Annotation::V1Identifier(arn)],
    }
}

pub fn group_resource(region: &str, store: &str, g: &SsoGroup) -> Resource {
    let arn = group_arn(region, store, &g.group_id);
    let mut profile = json!({
        "aws_group_type": "sso",
        "aws_group_name": g.display_name,
        "aws_group_id": g.group_id,
    });
    if let Some(ids) = external_ids(&g.external_ids) {
        profile["external_ids"] = ids;
    }
    Resource {
        id: ResourceId::new(SSO_GROUP, &arn),
        parent: None,
        display_name: g.display_name.clone(),
        description: g.description.clone(),
        traits: vec![ResourceTrait::Group],
        profile: Some(profile.to_string()),
        status: Status::Unspecified,
        created_at: None,
        annotations: vec![Annotation::V1Identifier(arn)],
    }
}

/// Membership grants; their id is the Identity Store membership id, as baton-aws's.
pub fn membership_grants(
    region: &str,
    store: &str,
    group: &ResourceId,
    members: &[Membership],
) -> Vec<Grant> {
    members
        .iter()
        .map(|m| membership_grant(region, store, group, m))
        .collect()
}

/// The grant of `sso_group:<arn>:member` to one member.
pub fn membership_grant(region: &str, store: &str, group: &ResourceId, m: &Membership) -> Grant {
    let user = user_arn(region, store, &m.user_id);
    Grant {
        id: m.membership_id.clone(),
        entitlement_id: format!("{SSO_GROUP}:{}:member", group.resource),
        resource: group.clone(),
        principal: ResourceId::new(SSO_USER, &user),
        annotations: vec![Annotation::V1Identifier(format!(
            "grant:membership:{}:{user}",
            group.resource
        ))],
    }
}

pub fn account_resource(a: &Account) -> Resource {
    Resource {
        id: ResourceId::new(ACCOUNT, &a.id),
        parent: None,
        display_name: a.name.clone(),
        description: None,
        traits: vec![ResourceTrait::App],
        profile: Some(json!({"aws_account_arn": a.arn, "aws_account_id": a.id}).to_string()),
        status: Status::Unspecified,
        created_at: None,
        annotations: vec![Annotation::V1Identifier(a.id.clone())],
    }
}

/// `<account>|<permission set ARN>`: baton-aws's id for "may use this permission set in
/// this account".
pub fn account_entitlement_id(account: &str, permission_set: &str) -> String {
    format!("{account}|{permission_set}")
}

pub fn account_entitlement(account: &ResourceId, ps: &PermissionSet) -> Entitlement {
    let id = account_entitlement_id(&account.resource, &ps.arn);
    Entitlement {
        id: id.clone(),
        resource: account.clone(),
        slug: format!("{} access", ps.name),
        display_name: format!("{} Permission Set", ps.name),
        description: ps.description.clone(),
        purpose: Purpose::Assignment,
        grantable_to: vec![SSO_USER.into(), SSO_GROUP.into()],
        annotations: vec![Annotation::V1Identifier(id)],
    }
}

/// Account assignments of one permission set as grants; group grants expand to the
/// group's members.
pub fn assignment_grants(
    region: &str,
    store: &str,
    account: &ResourceId,
    ps_arn: &str,
    assignments: &[Assignment],
) -> Vec<Grant> {
    let entitlement_id = account_entitlement_id(&account.resource, ps_arn);
    let mut out: Vec<Grant> = Vec::new();
    for a in assignments {
        let (ptype, parn) = match a.principal_type.as_str() {
            "USER" => (SSO_USER, user_arn(region, store, &a.principal_id)),
            "GROUP" => (SSO_GROUP, group_arn(region, store, &a.principal_id)),
            _ => continue,
        };
        let id = format!("grant:{ptype}:{parn}:{entitlement_id}");
        if out.iter().any(|g| g.id == id) {
            continue;
        }
        let mut annotations = vec![Annotation::V1Identifier(format!(
            "grant:{entitlement_id}:{parn}"
        ))];
        if ptype == SSO_GROUP {
            annotations.push(GrantExpandable::from_holders_of(format!(
                "{SSO_GROUP}:{parn}:member"
            )));
        }
        out.push(Grant {
            id,
            entitlement_id: entitlement_id.clone(),
            resource: account.clone(),
            principal: ResourceId::new(ptype, &parn),
            annotations,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_emails_and_status() {
        let u = SsoUser {
            user_id: "u-1".into(),
            user_name: "ann@example.com".into(),
            display_name: "Ann".into(),
            emails: vec!["ANN@example.com".into(), "ann.b@example.com".into()],
            status: Some("DISABLED".into()),
            external_ids: vec![("okta".into(), "00u1".into())],
            ..Default::default()
        };
        let r = user_resource("eu-west-1", "d-123", &u, None);
        assert_eq!(
            r.id.resource,
            "arn:aws:identitystore:eu-west-1::d-123/user/u-1"
        );
        assert_eq!(r.status, Status::Disabled);
        let ResourceTrait::User(t) = &r.traits[0] else {
            panic!()
        };
        let emails: Vec<_> = t
            .emails
            .iter()
            .map(|e| (e.address.as_str(), e.primary))
            .collect();
        assert_eq!(
            emails,
            [("ann@example.com", true), ("ann.b@example.com", false)],
            "no duplicate of the user name"
        );
        let profile: Value = serde_json::from_str(r.profile.as_deref().unwrap()).unwrap();
        assert_eq!(
            profile["external_ids"],
            json!([{"id": "00u1", "issuer": "okta"}])
        );
        assert_eq!(
            user_resource("eu-west-1", "d-123", &u, Some(true)).status,
            Status::Enabled,
            "SCIM wins"
        );
    }

    #[test]
    fn account_grant_ids_are_baton_awss() {
        let account = ResourceId::new(ACCOUNT, "111122223333");
        let ps = "arn:aws:sso:::permissionSet/ssoins-1/ps-1";
        let grants = assignment_grants(
            "us-east-1",
            "d-1",
            &account,
            ps,
            &[
                Assignment {
                    principal_type: "USER".into(),
                    principal_id: "u1".into(),
                },
                Assignment {
                    principal_type: "GROUP".into(),
                    principal_id: "g1".into(),
                },
                Assignment {
                    principal_type: "USER".into(),
                    principal_id: "u1".into(),
                },
            ],
        );
        assert_eq!(grants.len(), 2, "duplicate assignments collapse");
        assert_eq!(
            grants[0].id,
            "grant:sso_user:arn:aws:identitystore:us-east-1::d-1/user/u1:111122223333|arn:aws:sso:::permissionSet/ssoins-1/ps-1"
        );
        assert_eq!(
            grants[0].entitlement_id,
            "111122223333|arn:aws:sso:::permissionSet/ssoins-1/ps-1"
        );
        assert!(
            matches!(&grants[1].annotations[1], Annotation::GrantExpandable(x)
            if x.entitlement_ids == ["sso_group:arn:aws:identitystore:us-east-1::d-1/group/g1:member"])
        );
        let e = account_entitlement(
            &account,
            &PermissionSet {
                arn: ps.into(),
                name: "Admin".into(),
                description: "d".into(),
            },
        );
        assert_eq!(
            (e.slug.as_str(), e.display_name.as_str()),
            ("Admin access", "Admin Permission Set")
        );
    }

    #[test]
    fn membership_grant_ids_are_membership_ids() {
        let group = ResourceId::new(SSO_GROUP, group_arn("us-east-1", "d-1", "g1"));
        let g = membership_grants(
            "us-east-1",
            "d-1",
            &group,
            &[Membership {
                membership_id: "m-1".into(),
                user_id: "u1".into(),
            }],
        );
        assert_eq!(g[0].id, "m-1");
        assert_eq!(
            g[0].entitlement_id,
            "sso_group:arn:aws:identitystore:us-east-1::d-1/group/g1:member"
        );
    }
}
