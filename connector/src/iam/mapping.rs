//! Turns IAM entities into baton resources, entitlements and grants, with baton-aws's ids.

use super::details::{AuthorizationDetails, IamGroup, IamRole, IamUser};
use super::trust::{Candidate, TrustPolicy};
use crate::model::*;
use crate::resource_types::{GROUP, IAM_USER, ROLE, SSO_USER};
use crate::timestamp::parse_iso8601;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

fn tags_struct(tags: &[(String, String)]) -> Value {
    Value::Object(
        tags.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

pub fn user_resource(u: &IamUser) -> Resource {
    let username_email = u.name.contains('@').then_some(u.name.as_str());
    let tag_emails = u
        .tags
        .iter()
        .filter(|(k, _)| k == "email")
        .map(|(_, v)| v.as_str());
    let emails = emails(username_email.into_iter().chain(tag_emails));
    let profile = json!({
        "aws_arn": u.arn,
        "aws_path": u.path,
        "aws_user_type": "iam",
        "aws_tags": tags_struct(&u.tags),
        "aws_user_id": u.user_id,
    });
    Resource {
        id: ResourceId::new(IAM_USER, &u.arn),
        parent: None,
        display_name: u.name.clone(),
        description: None,
        traits: vec![ResourceTrait::User(UserTrait {
            emails,
            status: Status::Enabled,
            account_type: AccountType::Human,
            login: None,
            created_at: u.create_date.as_deref().and_then(parse_iso8601),
            last_login: u.password_last_used.as_deref().and_then(parse_iso8601),
            mfa_enabled: None,
        })],
        profile: Some(profile.to_string()),
        status: Status::Unspecified,
        created_at: u.create_date.as_deref().and_then(parse_iso8601),
        annotations: vec![Annotation::V1Identifier(u.arn.clone())],
    }
}

pub fn group_resource(g: &IamGroup) -> Resource {
    let profile = json!({
        "aws_arn": g.arn,
        "aws_path": g.path,
        "aws_group_type": "iam",
        "aws_group_name": g.name,
        "aws_group_id": g.group_id,
    });
    Resource {
        id: ResourceId::new(GROUP, &g.arn),
        parent: None,
        display_name: g.name.clone(),
        description: None,
        traits: vec![ResourceTrait::Group],
        profile: Some(profile.to_string()),
        status: Status::Unspecified,
        created_at: g.create_date.as_deref().and_then(parse_iso8601),
        annotations: vec![Annotation::V1Identifier(g.arn.clone())],
    }
}

pub fn role_resource(r: &IamRole) -> Resource {
    let mut profile = json!({
        "aws_arn": r.arn,
        "aws_path": r.path,
        "aws_tags": tags_struct(&r.tags),
        "aws_role_name": r.name,
        "aws_role_description": r.description.clone().unwrap_or_default(),
    });
    if let Some(d) = r.max_session_duration {
        profile["aws_max_session_duration_seconds"] = json!(d);
    }
    let (nhi_type, detail) = classify_role(r);
    Resource {
        id: ResourceId::new(ROLE, &r.arn),
        parent: None,
        display_name: r.name.clone(),
        description: r.description.clone(),
        traits: vec![ResourceTrait::Role],
        profile: Some(profile.to_string()),
        status: Status::Unspecified,
        created_at: r.create_date.as_deref().and_then(parse_iso8601),
        annotations: vec![
            Annotation::V1Identifier(r.arn.clone()),
            Annotation::NonHumanIdentity { nhi_type, detail },
        ],
    }
}

/// What kind of non-human identity a role is, from its path and trust policy.
fn classify_role(r: &IamRole) -> (NhiType, String) {
    if r.path.starts_with("/aws-service-role/") {
        return (NhiType::ManagedIdentity, "aws.service_linked_role".into());
    }
    let doc: Value = r
        .trust_policy
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    let statements: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => vec![],
    };
    let mut services = Vec::new();
    let mut federated = Vec::new();
    let mut aws = Vec::new();
    for s in statements {
        let allows_assume = s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && values(s.get("Action"))
                .iter()
                .any(|a| a.starts_with("sts:AssumeRole"));
        if !allows_assume {
            continue;
        }
        let p = s.get("Principal");
        services.extend(values(p.and_then(|p| p.get("Service"))));
        federated.extend(values(p.and_then(|p| p.get("Federated"))));
        aws.extend(values(p.and_then(|p| p.get("AWS"))));
    }
    let detail = if let Some(svc) = services
        .iter()
        .map(|s| {
            s.split(['.'])
                .next()
                .unwrap_or(s)
                .replace('-', "_")
                .to_ascii_lowercase()
        })
        .min()
    {
        format!("aws.role.{svc}")
    } else if !federated.is_empty() {
        if federated.iter().any(|f| f.contains(":oidc-provider/")) {
            "aws.role.oidc".into()
        } else if federated.iter().any(|f| f.contains(":saml-provider/")) {
            "aws.role.saml".into()
        } else {
            "aws.role.federated".into()
        }
    } else {
        let own = r.arn.split(':').nth(4).unwrap_or("");
        let other_account = aws.iter().any(|p| {
            let account = if p.starts_with("arn:") {
                p.split(':').nth(4).unwrap_or("")
            } else {
                p.as_str()
            };
            account.len() == 12 && account != own
        });
        if other_account {
            "aws.role.cross_account".into()
        } else {
            "aws.role".into()
        }
    };
    (NhiType::AssumableRole, detail)
}

fn values(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => vec![],
    }
}

pub fn membership_entitlement(resource: &Resource, kind: &str) -> Entitlement {
    let id = &resource.id;
    let name = &resource.display_name;
    Entitlement {
        id: format!("{}:{}:member", id.resource_type, id.resource),
        resource: id.clone(),
        slug: "member".into(),
        display_name: format!("{name} Group Member"),
        description: format!("Is member of the {name} {kind} group in AWS"),
        purpose: Purpose::Assignment,
        grantable_to: vec![if kind == "IAM" {
            IAM_USER.into()
        } else {
            SSO_USER.into()
        }],
        annotations: vec![Annotation::V1Identifier(format!(
            "membership:{}",
            id.resource
        ))],
    }
}

pub fn role_entitlement(resource: &Resource) -> Entitlement {
    let name = &resource.display_name;
    Entitlement {
        id: format!("{ROLE}:{}:assignment", resource.id.resource),
        resource: resource.id.clone(),
        slug: "assignment".into(),
        display_name: format!("{name} Role"),
        description: format!("Can assume the {name} role in AWS"),
        purpose: Purpose::Assignment,
        grantable_to: vec![IAM_USER.into(), ROLE.into(), GROUP.into(), SSO_USER.into()],
        annotations: vec![Annotation::V1Identifier(format!(
            "membership:{}",
            resource.id.resource
        ))],
    }
}

/// `<entitlement id>:<principal type>:<principal id>`, baton's default grant id.
pub fn grant_id(entitlement_id: &str, principal: &ResourceId) -> String {
    format!(
        "{entitlement_id}:{}:{}",
        principal.resource_type, principal.resource
    )
}

/// Grant, entitlement and principal indexes over one account's IAM entities.
/// The grant of `group:<arn>:member` to one of its users.
pub fn membership_grant(group: &ResourceId, u: &IamUser) -> Grant {
    let entitlement_id = format!("{GROUP}:{}:member", group.resource);
    let principal = ResourceId::new(IAM_USER, &u.arn);
    Grant {
        id: grant_id(&entitlement_id, &principal),
        entitlement_id,
        resource: group.clone(),
        principal,
        annotations: vec![Annotation::V1Identifier(format!(
            "grant:membership:{}:{}",
            group.resource, u.arn
        ))],
    }
}

pub struct IamIndex<'a> {
    details: &'a AuthorizationDetails,
    /// Members of each group by name, as indices into `details.users`.
    users_by_group: HashMap<&'a str, Vec<usize>>,
    principals: HashMap<&'a str, (&'static str, &'a str, &'a str)>,
    roles: HashMap<&'a str, &'a IamRole>,
}

impl<'a> IamIndex<'a> {
    pub fn new(details: &'a AuthorizationDetails) -> Self {
        let mut users_by_group: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut principals = HashMap::new();
        for (i, u) in details.users.iter().enumerate() {
            for g in &u.groups {
                users_by_group.entry(g.as_str()).or_default().push(i);
            }
            principals.insert(
                u.arn.as_str(),
                (IAM_USER, u.arn.as_str(), u.user_id.as_str()),
            );
            principals.insert(
                u.user_id.as_str(),
                (IAM_USER, u.arn.as_str(), u.user_id.as_str()),
            );
        }
        for r in &details.roles {
            principals.insert(r.arn.as_str(), (ROLE, r.arn.as_str(), r.role_id.as_str()));
            principals.insert(
                r.role_id.as_str(),
                (ROLE, r.arn.as_str(), r.role_id.as_str()),
            );
        }
        let roles = details.roles.iter().map(|r| (r.arn.as_str(), r)).collect();
        IamIndex {
            details,
            users_by_group,
            principals,
            roles,
        }
    }

    /// The members of a group, as indices into `details.users`, ordered by ARN.
    pub fn group_members(&self, group: &ResourceId) -> Vec<usize> {
        let Some(g) = self.details.groups.iter().find(|g| g.arn == group.resource) else {
            return vec![];
        };
        let users = &self.details.users;
        let mut members = self
            .users_by_group
            .get(g.name.as_str())
            .cloned()
            .unwrap_or_default();
        members.sort_by(|a, b| users[*a].arn.cmp(&users[*b].arn));
        members
    }

    #[cfg(test)]
    pub fn group_grants(&self, group: &ResourceId) -> Vec<Grant> {
        self.group_members(group)
            .into_iter()
            .map(|i| membership_grant(group, &self.details.users[i]))
            .collect()
    }

    /// Grants of `role:<arn>:assignment` to the users and roles its trust policy admits.
    /// A policy that cannot be read is reported, not guessed at.
    pub fn role_grants(&self, role: &ResourceId) -> Result<Vec<Grant>, String> {
        let Some(r) = self.roles.get(role.resource.as_str()) else {
            return Ok(vec![]);
        };
        let Some(doc) = &r.trust_policy else {
            return Ok(vec![]);
        };
        let policy = TrustPolicy::parse(doc).map_err(|e| format!("role {}: {e}", r.arn))?;
        let entitlement_id = format!("{ROLE}:{}:assignment", r.arn);
        let mut grants: Vec<Grant> = Vec::new();
        for named in policy.allowed_principals() {
            let Some(&(ptype, arn, unique_id)) = self.principals.get(named) else {
                continue;
            };
            let candidate = Candidate {
                arn,
                unique_id,
                account_id: arn.split(':').nth(4).unwrap_or(""),
            };
            if !policy.allows(&candidate) {
                continue;
            }
            let principal = ResourceId::new(ptype, arn);
            let id = grant_id(&entitlement_id, &principal);
            if grants.iter().any(|g| g.id == id) {
                continue;
            }
            let mut annotations = Vec::new();
            if ptype == ROLE {
                annotations.push(GrantExpandable::from_holders_of(format!(
                    "{ROLE}:{arn}:assignment"
                )));
            }
            grants.push(Grant {
                id,
                entitlement_id: entitlement_id.clone(),
                resource: role.clone(),
                principal,
                annotations,
            });
        }
        grants.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(grants)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details() -> AuthorizationDetails {
        AuthorizationDetails {
            users: vec![
                IamUser {
                    arn: "arn:aws:iam::123456789012:user/alice@example.com".into(),
                    name: "alice@example.com".into(),
                    path: "/".into(),
                    user_id: "AIDAALICE".into(),
                    groups: vec!["admins".into()],
                    tags: vec![("email".into(), "alice.work@example.com".into())],
                    ..Default::default()
                },
                IamUser {
                    arn: "arn:aws:iam::123456789012:user/eng/bob".into(),
                    name: "bob".into(),
                    path: "/eng/".into(),
                    user_id: "AIDABOB".into(),
                    groups: vec!["admins".into()],
                    ..Default::default()
                },
            ],
            groups: vec![
                IamGroup {
                    arn: "arn:aws:iam::123456789012:group/admins".into(),
                    name: "admins".into(),
                    path: "/".into(),
                    group_id: "AGPA1".into(),
                    create_date: None,
                },
                IamGroup {
                    arn: "arn:aws:iam::123456789012:group/empty".into(),
                    name: "empty".into(),
                    path: "/".into(),
                    group_id: "AGPA2".into(),
                    create_date: None,
                },
            ],
            roles: vec![
                IamRole {
                    arn: "arn:aws:iam::123456789012:role/ops".into(),
                    name: "ops".into(),
                    path: "/".into(),
                    role_id: "AROAOPS".into(),
                    trust_policy: Some(r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/eng/bob","arn:aws:iam::123456789012:role/ci","arn:aws:iam::123456789012:root","arn:aws:iam::123456789012:user/ghost"],"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#.into()),
                    ..Default::default()
                },
                IamRole {
                    arn: "arn:aws:iam::123456789012:role/ci".into(),
                    name: "ci".into(),
                    path: "/".into(),
                    role_id: "AROACI".into(),
                    trust_policy: Some(r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"AROAOPS"},"Action":"sts:*"}}"#.into()),
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn user_emails_profile_and_ids() {
        let d = details();
        let r = user_resource(&d.users[0]);
        assert_eq!(
            r.id.resource,
            "arn:aws:iam::123456789012:user/alice@example.com"
        );
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
            [
                ("alice@example.com", true),
                ("alice.work@example.com", false)
            ]
        );
        let profile: Value = serde_json::from_str(r.profile.as_deref().unwrap()).unwrap();
        assert_eq!(profile["aws_user_type"], "iam");
        assert_eq!(profile["aws_tags"]["email"], "alice.work@example.com");
    }

    #[test]
    fn group_grants_list_members_with_baton_ids() {
        let d = details();
        let index = IamIndex::new(&d);
        let admins = ResourceId::new(GROUP, "arn:aws:iam::123456789012:group/admins");
        let ids: Vec<_> = index
            .group_grants(&admins)
            .into_iter()
            .map(|g| g.id)
            .collect();
        assert_eq!(
            ids,
            [
                "group:arn:aws:iam::123456789012:group/admins:member:iam_user:arn:aws:iam::123456789012:user/alice@example.com",
                "group:arn:aws:iam::123456789012:group/admins:member:iam_user:arn:aws:iam::123456789012:user/eng/bob",
            ]
        );
        assert!(index
            .group_grants(&ResourceId::new(
                GROUP,
                "arn:aws:iam::123456789012:group/empty"
            ))
            .is_empty());
    }

    #[test]
    fn role_grants_only_for_synced_principals_and_roles_expand() {
        let d = details();
        let index = IamIndex::new(&d);
        let ops = index
            .role_grants(&ResourceId::new(ROLE, "arn:aws:iam::123456789012:role/ops"))
            .unwrap();
        let got: Vec<_> = ops
            .iter()
            .map(|g| {
                (
                    g.principal.resource_type.as_str(),
                    g.principal.resource.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("iam_user", "arn:aws:iam::123456789012:user/eng/bob"),
                ("role", "arn:aws:iam::123456789012:role/ci")
            ]
        );
        let ci_grant = ops
            .iter()
            .find(|g| g.principal.resource_type == ROLE)
            .unwrap();
        assert_eq!(
            ci_grant.annotations,
            [Annotation::GrantExpandable(GrantExpandable {
                entitlement_ids: vec!["role:arn:aws:iam::123456789012:role/ci:assignment".into()],
                shallow: false,
                resource_type_ids: vec![],
            })]
        );
        // ci trusts ops by unique id: the grant names ops by its ARN.
        let ci = index
            .role_grants(&ResourceId::new(ROLE, "arn:aws:iam::123456789012:role/ci"))
            .unwrap();
        assert_eq!(ci[0].id, "role:arn:aws:iam::123456789012:role/ci:assignment:role:arn:aws:iam::123456789012:role/ops");
    }

    #[test]
    fn roles_are_classified() {
        let mut r = details().roles[0].clone();
        assert_eq!(
            classify_role(&r),
            (NhiType::AssumableRole, "aws.role.ec2".into())
        );
        r.path = "/aws-service-role/".into();
        assert_eq!(classify_role(&r).0, NhiType::ManagedIdentity);
        r.path = "/".into();
        r.trust_policy = Some(r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999999999999:root"},"Action":"sts:AssumeRole"}]}"#.into());
        assert_eq!(classify_role(&r).1, "aws.role.cross_account");
    }
}
