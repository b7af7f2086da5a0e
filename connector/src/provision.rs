//! Grant and revoke: IAM group membership, Identity Center group membership, and account
//! assignments. Every write is preceded by a read, so that granting what is held and
//! revoking what is gone succeed and say so, and a wrong request is refused before any
//! AWS write.

use crate::aws::{AwsClient, AwsError, ErrorKind, Service};
use crate::iam::mapping::grant_id;
use crate::model::*;
use crate::platform::Platform;
use crate::resource_types::{ACCOUNT, GROUP, IAM_USER, SSO_GROUP, SSO_USER};
use crate::sso::fetch::{self, Instance};
use crate::sso::mapping as sso_mapping;
use serde_json::{json, Value};
use std::time::Duration;

/// AWS applies account assignments asynchronously; poll about once a second, for at most
/// five minutes.
const POLL_EVERY: Duration = Duration::from_secs(1);
const POLL_ATTEMPTS: u32 = 300;

#[derive(Debug)]
pub struct Outcome {
    pub grants: Vec<Grant>,
    pub annotations: Vec<Annotation>,
}

fn last_segment(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn after<'a>(arn: &'a str, marker: &str) -> Result<&'a str, ConnectorError> {
    arn.split_once(marker)
        .map(|(_, id)| id)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            ConnectorError::InvalidArgument(format!(
                "{arn:?} is not an Identity Store ARN with {marker}<id>"
            ))
        })
}

fn require(principal: &ResourceId, want: &[&str], what: &str) -> Result<(), ConnectorError> {
    if want.contains(&principal.resource_type.as_str()) {
        Ok(())
    } else {
        Err(ConnectorError::InvalidArgument(format!(
            "{what} can be granted to {} only, not to {} {}",
            want.join(" or "),
            principal.resource_type,
            principal.resource
        )))
    }
}

/// `(account, permission set ARN)` from `<account>|<permission set ARN>`.
pub fn split_account_entitlement(id: &str) -> Result<(&str, &str), ConnectorError> {
    match id.split_once('|') {
        Some((account, ps))
            if account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && !ps.is_empty() =>
        {
            Ok((account, ps))
        }
        _ => Err(ConnectorError::InvalidArgument(format!(
            "{id:?} is not an account entitlement (<account id>|<permission set ARN>)"
        ))),
    }
}

// ---- IAM groups ----

pub fn grant_iam_group<P: Platform>(
    client: &AwsClient<P>,
    group: &ResourceId,
    user: &ResourceId,
) -> Result<Outcome, ConnectorError> {
    require(user, &[IAM_USER], "IAM group membership")?;
    let (group_name, user_name) = (last_segment(&group.resource), last_segment(&user.resource));
    let entitlement = format!("{GROUP}:{}:member", group.resource);
    let grant = Grant {
        id: grant_id(&entitlement, user),
        entitlement_id: entitlement,
        resource: group.clone(),
        principal: user.clone(),
        annotations: vec![Annotation::V1Identifier(format!(
            "grant:membership:{}:{}",
            group.resource, user.resource
        ))],
    };
    let groups = client.query(
        Service::Iam,
        "ListGroupsForUser",
        &[
            ("UserName".into(), user_name.into()),
            ("MaxItems".into(), "1000".into()),
        ],
    )?;
    if groups
        .members("Groups")
        .any(|g| g.child_text("Arn") == Some(group.resource.as_str()))
    {
        return Ok(Outcome {
            grants: vec![grant],
            annotations: vec![Annotation::GrantAlreadyExists],
        });
    }
    client.query(
        Service::Iam,
        "AddUserToGroup",
        &[
            ("GroupName".into(), group_name.into()),
            ("UserName".into(), user_name.into()),
        ],
    )?;
    Ok(Outcome {
        grants: vec![grant],
        annotations: vec![],
    })
}

pub fn revoke_iam_group<P: Platform>(
    client: &AwsClient<P>,
    group: &ResourceId,
    user: &ResourceId,
) -> Result<Vec<Annotation>, ConnectorError> {
    require(user, &[IAM_USER], "IAM group membership")?;
    let params = [
        ("GroupName".into(), last_segment(&group.resource).into()),
        ("UserName".into(), last_segment(&user.resource).into()),
    ];
    match client.query(Service::Iam, "RemoveUserFromGroup", &params) {
        Ok(_) => Ok(vec![]),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(vec![Annotation::GrantAlreadyRevoked]),
        Err(e) => Err(e.into()),
    }
}

// ---- Identity Center groups ----

fn membership_id<P: Platform>(
    client: &AwsClient<P>,
    store: &str,
    group_id: &str,
    user_id: &str,
) -> Result<Option<String>, AwsError> {
    let input =
        json!({"IdentityStoreId": store, "GroupId": group_id, "MemberId": {"UserId": user_id}});
    match client.json(Service::IdentityStore, "GetGroupMembershipId", &input) {
        Ok(v) => Ok(v
            .get("MembershipId")
            .and_then(Value::as_str)
            .map(str::to_string)),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn grant_sso_group<P: Platform>(
    client: &AwsClient<P>,
    region: &str,
    instance: &Instance,
    group: &ResourceId,
    user: &ResourceId,
) -> Result<Outcome, ConnectorError> {
    require(user, &[SSO_USER], "Identity Center group membership")?;
    let store = &instance.identity_store_id;
    let (group_id, user_id) = (
        after(&group.resource, "/group/")?,
        after(&user.resource, "/user/")?,
    );
    let members = |id: String| fetch::Membership {
        membership_id: id,
        user_id: user_id.to_string(),
    };
    if let Some(id) = membership_id(client, store, group_id, user_id)? {
        let grants = sso_mapping::membership_grants(region, store, group, &[members(id)]);
        return Ok(Outcome {
            grants,
            annotations: vec![Annotation::GrantAlreadyExists],
        });
    }
    let input =
        json!({"IdentityStoreId": store, "GroupId": group_id, "MemberId": {"UserId": user_id}});
    let id = match client.json(Service::IdentityStore, "CreateGroupMembership", &input) {
        Ok(v) => v
            .get("MembershipId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        // Someone else added it in between: it exists, which is what was asked.
        Err(e) if e.kind == ErrorKind::Conflict => {
            let id = membership_id(client, store, group_id, user_id)?.unwrap_or_default();
            let grants = sso_mapping::membership_grants(region, store, group, &[members(id)]);
            return Ok(Outcome {
                grants,
                annotations: vec![Annotation::GrantAlreadyExists],
            });
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Outcome {
        grants: sso_mapping::membership_grants(region, store, group, &[members(id)]),
        annotations: vec![],
    })
}

pub fn revoke_sso_group<P: Platform>(
    client: &AwsClient<P>,
    instance: &Instance,
    group: &ResourceId,
    user: &ResourceId,
) -> Result<Vec<Annotation>, ConnectorError> {
    require(user, &[SSO_USER], "Identity Center group membership")?;
    let store = &instance.identity_store_id;
    let (group_id, user_id) = (
        after(&group.resource, "/group/")?,
        after(&user.resource, "/user/")?,
    );
    // Look the membership up rather than trusting the grant id: it may be stale.
    let Some(id) = membership_id(client, store, group_id, user_id)? else {
        return Ok(vec![Annotation::GrantAlreadyRevoked]);
    };
    match client.json(
        Service::IdentityStore,
        "DeleteGroupMembership",
        &json!({"IdentityStoreId": store, "MembershipId": id}),
    ) {
        Ok(_) => Ok(vec![]),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(vec![Annotation::GrantAlreadyRevoked]),
        Err(e) => Err(e.into()),
    }
}

// ---- Account assignments ----

fn principal_kind(principal: &ResourceId) -> Result<(&'static str, &str), ConnectorError> {
    require(principal, &[SSO_USER, SSO_GROUP], "An account assignment")?;
    Ok(match principal.resource_type.as_str() {
        SSO_USER => ("USER", after(&principal.resource, "/user/")?),
        _ => ("GROUP", after(&principal.resource, "/group/")?),
    })
}

fn assigned<P: Platform>(
    client: &AwsClient<P>,
    instance: &Instance,
    account: &str,
    ps: &str,
    kind: &str,
    id: &str,
) -> Result<bool, ConnectorError> {
    let result = fetch::assignments(client, instance, &[(account, ps)])
        .pop()
        .expect("one result per pair")?;
    Ok(result
        .iter()
        .any(|a| a.principal_type == kind && a.principal_id == id))
}

/// Waits for an asynchronous assignment operation; AWS's failure reason is reported verbatim.
fn wait_for<P: Platform>(
    client: &AwsClient<P>,
    instance: &Instance,
    created: bool,
    status: &Value,
) -> Result<Vec<Annotation>, ConnectorError> {
    let (action, id_field) = if created {
        (
            "DescribeAccountAssignmentCreationStatus",
            "AccountAssignmentCreationRequestId",
        )
    } else {
        (
            "DescribeAccountAssignmentDeletionStatus",
            "AccountAssignmentDeletionRequestId",
        )
    };
    let what = if created { "creating" } else { "deleting" };
    let mut status = status.clone();
    let request_id = status
        .get("RequestId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    for _ in 0..POLL_ATTEMPTS {
        match status.get("Status").and_then(Value::as_str) {
            Some("SUCCEEDED") => return Ok(vec![Annotation::RequestId(request_id)]),
            Some("FAILED") => {
                let reason = status
                    .get("FailureReason")
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given");
                return Err(ConnectorError::Fatal(format!(
                    "{what} the account assignment failed (request {request_id}): {reason}"
                )));
            }
            _ => {}
        }
        client.platform.sleep(POLL_EVERY);
        let out = client.json(
            Service::SsoAdmin,
            action,
            &json!({"InstanceArn": instance.arn, id_field: request_id}),
        )?;
        status = out
            .get("AccountAssignmentCreationStatus")
            .or(out.get("AccountAssignmentDeletionStatus"))
            .cloned()
            .unwrap_or_default();
    }
    Err(ConnectorError::Transient(format!(
        "{what} the account assignment (request {request_id}) had not finished after {} s; check it in the IAM Identity Center console",
        POLL_ATTEMPTS
    )))
}

pub fn grant_account<P: Platform>(
    client: &AwsClient<P>,
    region: &str,
    instance: &Instance,
    account: &ResourceId,
    entitlement_id: &str,
    principal: &ResourceId,
) -> Result<Outcome, ConnectorError> {
    let (kind, id) = principal_kind(principal)?;
    let (account_id, ps) = split_account_entitlement(entitlement_id)?;
    let store = &instance.identity_store_id;
    let assignment = fetch::Assignment {
        principal_type: kind.into(),
        principal_id: id.into(),
    };
    let grants = sso_mapping::assignment_grants(region, store, account, ps, &[assignment]);
    if assigned(client, instance, account_id, ps, kind, id)? {
        return Ok(Outcome {
            grants,
            annotations: vec![Annotation::GrantAlreadyExists],
        });
    }
    let input = assignment_request(instance, account_id, ps, kind, id);
    let out = client
        .json(Service::SsoAdmin, "CreateAccountAssignment", &input)
        .map_err(|e| conflict_hint(e, account_id))?;
    let status = out
        .get("AccountAssignmentCreationStatus")
        .cloned()
        .unwrap_or_default();
    let annotations = wait_for(client, instance, true, &status)?;
    Ok(Outcome {
        grants,
        annotations,
    })
}

/// The request body that names one account assignment (create and delete alike).
fn assignment_request(
    instance: &Instance,
    account_id: &str,
    ps: &str,
    kind: &str,
    id: &str,
) -> Value {
    json!({
        "InstanceArn": instance.arn, "TargetId": account_id, "TargetType": "AWS_ACCOUNT",
        "PermissionSetArn": ps, "PrincipalType": kind, "PrincipalId": id,
    })
}

pub fn revoke_account<P: Platform>(
    client: &AwsClient<P>,
    instance: &Instance,
    entitlement_id: &str,
    principal: &ResourceId,
) -> Result<Vec<Annotation>, ConnectorError> {
    let (kind, id) = principal_kind(principal)?;
    let (account_id, ps) = split_account_entitlement(entitlement_id)?;
    if !assigned(client, instance, account_id, ps, kind, id)? {
        return Ok(vec![Annotation::GrantAlreadyRevoked]);
    }
    let input = assignment_request(instance, account_id, ps, kind, id);
    let out = client
        .json(Service::SsoAdmin, "DeleteAccountAssignment", &input)
        .map_err(|e| conflict_hint(e, account_id))?;
    let status = out
        .get("AccountAssignmentDeletionStatus")
        .cloned()
        .unwrap_or_default();
    wait_for(client, instance, false, &status)
}

fn conflict_hint(e: AwsError, account: &str) -> ConnectorError {
    if e.kind == ErrorKind::Conflict {
        return ConnectorError::Transient(format!(
            "{e}: another assignment operation is in progress for account {account} (or the account is suspended); try again shortly"
        ));
    }
    e.into()
}

/// Which provisioning a grant on this resource type is.
pub fn provisionable(resource_type: &str) -> bool {
    matches!(resource_type, GROUP | SSO_GROUP | ACCOUNT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Endpoints;
    use crate::platform::HttpResponse;
    use crate::testing::{resp, Fake};

    fn instance() -> Instance {
        Instance {
            arn: "arn:aws:sso:::instance/ssoins-1".into(),
            identity_store_id: "d-1".into(),
        }
    }

    const PS: &str = "arn:aws:sso:::permissionSet/ssoins-1/ps-1";

    fn script(creation_statuses: &[&str], reason: &str) -> Vec<(String, HttpResponse)> {
        // Keys are matched against the request body, first match first.
        let mut s = vec![(
            "\"PermissionSetArn\"".to_string(),
            resp(200, &[], r#"{"AccountAssignments":[]}"#),
        )];
        s.push((
            "\"TargetType\"".to_string(),
            resp(
                200,
                &[],
                r#"{"AccountAssignmentCreationStatus":{"Status":"IN_PROGRESS","RequestId":"r-1"}}"#,
            ),
        ));
        for st in creation_statuses {
            s.push((
                "AccountAssignmentCreationRequestId".to_string(),
                resp(200, &[], &format!(r#"{{"AccountAssignmentCreationStatus":{{"Status":"{st}","RequestId":"r-1","FailureReason":"{reason}"}}}}"#)),
            ));
        }
        s
    }

    #[test]
    fn assignments_are_polled_until_they_succeed() {
        let fake = Fake::new(script(&["IN_PROGRESS", "IN_PROGRESS", "SUCCEEDED"], ""));
        let endpoints = Endpoints::new("us-east-1", "us-east-1", None).unwrap();
        let client = AwsClient::new(&fake, &endpoints);
        let account = ResourceId::new(ACCOUNT, "111122223333");
        let group = ResourceId::new(SSO_GROUP, "arn:aws:identitystore:us-east-1::d-1/group/g-1");
        let out = grant_account(
            &client,
            "us-east-1",
            &instance(),
            &account,
            &format!("111122223333|{PS}"),
            &group,
        )
        .unwrap();
        assert_eq!(out.annotations, [Annotation::RequestId("r-1".into())]);
        assert_eq!(
            fake.sleeps.borrow().len(),
            3,
            "one poll a second until SUCCEEDED"
        );
        assert!(fake.sleeps.borrow().iter().all(|d| *d == POLL_EVERY));
    }

    #[test]
    fn a_failed_assignment_reports_aws_reason_verbatim() {
        let fake = Fake::new(script(
            &["FAILED"],
            "Received a 404 status error: The account is suspended",
        ));
        let endpoints = Endpoints::new("us-east-1", "us-east-1", None).unwrap();
        let client = AwsClient::new(&fake, &endpoints);
        let account = ResourceId::new(ACCOUNT, "111122223333");
        let user = ResourceId::new(SSO_USER, "arn:aws:identitystore:us-east-1::d-1/user/u-1");
        let err = grant_account(
            &client,
            "us-east-1",
            &instance(),
            &account,
            &format!("111122223333|{PS}"),
            &user,
        )
        .unwrap_err();
        assert_eq!(
            err,
            ConnectorError::Fatal("creating the account assignment failed (request r-1): Received a 404 status error: The account is suspended".into())
        );
    }

    #[test]
    fn account_entitlements_split_at_the_first_bar() {
        assert_eq!(
            split_account_entitlement("123456789012|arn:aws:sso:::permissionSet/ssoins-1/ps-1")
                .unwrap(),
            ("123456789012", "arn:aws:sso:::permissionSet/ssoins-1/ps-1")
        );
        for bad in ["123|x", "123456789012|", "no-bar", "12345678901a|x"] {
            assert!(
                matches!(
                    split_account_entitlement(bad),
                    Err(ConnectorError::InvalidArgument(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn wrong_principal_types_are_refused_by_name() {
        let e = require(
            &ResourceId::new(SSO_USER, "arn:x"),
            &[IAM_USER],
            "IAM group membership",
        )
        .unwrap_err();
        assert_eq!(
            e,
            ConnectorError::InvalidArgument(
                "IAM group membership can be granted to iam_user only, not to sso_user arn:x"
                    .into()
            )
        );
        assert!(principal_kind(&ResourceId::new(IAM_USER, "arn:aws:iam::1:user/x")).is_err());
        assert_eq!(
            principal_kind(&ResourceId::new(
                SSO_GROUP,
                "arn:aws:identitystore:us-east-1::d-1/group/g-1"
            ))
            .unwrap(),
            ("GROUP", "g-1")
        );
    }
}
