//! Reads Identity Center and Organizations through their JSON APIs, at the largest page
//! sizes they allow (Identity Store and SSO Admin 100, Organizations 20).

use crate::aws::client::MAX_IN_FLIGHT;
use crate::aws::json::for_each_page;
use crate::aws::{AwsClient, AwsError, ErrorKind, Service};
use crate::model::ConnectorError;
use crate::platform::Platform;
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub arn: String,
    pub identity_store_id: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SsoUser {
    pub user_id: String,
    pub user_name: String,
    pub display_name: String,
    pub emails: Vec<String>,
    /// `ENABLED`, `DISABLED`, or absent.
    pub status: Option<String>,
    /// `(issuer, id)` pairs.
    pub external_ids: Vec<(String, String)>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SsoGroup {
    pub group_id: String,
    pub display_name: String,
    pub description: Option<String>,
    pub external_ids: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Membership {
    pub membership_id: String,
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PermissionSet {
    pub arn: String,
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: String,
    pub arn: String,
    pub name: String,
    pub email: String,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// `USER` or `GROUP`.
    pub principal_type: String,
    pub principal_id: String,
}

fn s(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn opt(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
}

fn items<'v>(page: &'v Value, key: &str) -> impl Iterator<Item = &'v Value> {
    page.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Calls a list operation through all its pages.
fn list<P: Platform>(
    client: &AwsClient<P>,
    service: Service,
    action: &str,
    input: Value,
    page_size: u32,
    mut on_page: impl FnMut(&Value),
) -> Result<(), AwsError> {
    let operation = format!("{}:{action}", service.action_prefix());
    for_each_page(
        &operation,
        |token| {
            let mut body = input.clone();
            body["MaxResults"] = json!(page_size);
            if let Some(t) = token {
                body["NextToken"] = json!(t);
            }
            client.json(service, action, &body)
        },
        |page| {
            on_page(page);
            Ok(())
        },
    )
}

/// Inputs sent per batch: enough to keep every request slot busy, few enough that the
/// answers waiting to be read stay small (a page as JSON takes ten times its items).
const BATCH_INPUTS: usize = 64;

/// A list operation for several inputs at once: first pages together, then the next pages
/// of those that have more, together. Each page is read into items by `read` as soon as
/// it arrives. Returns every item per input.
fn list_batch<P: Platform, T>(
    client: &AwsClient<P>,
    service: Service,
    action: &str,
    inputs: &[Value],
    page_size: u32,
    read: impl Fn(&Value) -> Vec<T>,
) -> Vec<Result<Vec<T>, AwsError>> {
    let operation = format!("{}:{action}", service.action_prefix());
    let mut out: Vec<Result<Vec<T>, AwsError>> = inputs.iter().map(|_| Ok(Vec::new())).collect();
    let mut tokens: Vec<Option<Option<String>>> = inputs.iter().map(|_| Some(None)).collect();
    let mut seen: Vec<std::collections::HashSet<String>> =
        inputs.iter().map(|_| Default::default()).collect();
    loop {
        let due: Vec<usize> = (0..inputs.len()).filter(|&i| tokens[i].is_some()).collect();
        if due.is_empty() {
            return out;
        }
        for due in due.chunks(BATCH_INPUTS) {
            let bodies: Vec<Value> = due
                .iter()
                .map(|&i| {
                    let mut body = inputs[i].clone();
                    body["MaxResults"] = json!(page_size);
                    if let Some(Some(t)) = &tokens[i] {
                        body["NextToken"] = json!(t);
                    }
                    body
                })
                .collect();
            for (&i, result) in due.iter().zip(client.json_batch(service, action, &bodies)) {
                tokens[i] = None;
                match result {
                    Err(e) => out[i] = Err(e),
                    Ok(page) => {
                        let next = page
                            .get("NextToken")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                            .map(str::to_string);
                        if let Ok(items) = &mut out[i] {
                            items.extend(read(&page));
                        }
                        if let Some(t) = next {
                            if seen[i].insert(t.clone()) {
                                tokens[i] = Some(Some(t));
                            } else {
                                out[i] = Err(AwsError::new(&operation, 200, "RepeatedNextToken", "AWS returned the same NextToken twice; stopping instead of looping")
                                    .with_kind(ErrorKind::Malformed));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The Identity Center instance. AWS allows one per organization; a region without one
/// usually means the region setting is wrong.
pub fn instance<P: Platform>(
    client: &AwsClient<P>,
    region: &str,
) -> Result<Instance, ConnectorError> {
    let mut found = Vec::new();
    list(
        client,
        Service::SsoAdmin,
        "ListInstances",
        json!({}),
        100,
        |page| {
            for i in items(page, "Instances") {
                found.push(Instance {
                    arn: s(i, "InstanceArn"),
                    identity_store_id: s(i, "IdentityStoreId"),
                });
            }
        },
    )?;
    found.into_iter().find(|i| !i.arn.is_empty() && !i.identity_store_id.is_empty()).ok_or_else(|| {
        ConnectorError::invalid_config(
            "BATON_GLOBAL_AWS_SSO_REGION",
            format!(
                "no IAM Identity Center instance in {region}; set it to the region shown in the IAM Identity Center console's settings, or unset BATON_GLOBAL_AWS_SSO_ENABLED"
            ),
        )
    })
}

fn external_ids(v: &Value) -> Vec<(String, String)> {
    items(v, "ExternalIds")
        .map(|e| (s(e, "Issuer"), s(e, "Id")))
        .collect()
}

fn user_items(page: &Value) -> impl Iterator<Item = SsoUser> + '_ {
    items(page, "Users").map(|u| SsoUser {
        user_id: s(u, "UserId"),
        user_name: s(u, "UserName"),
        display_name: s(u, "DisplayName"),
        emails: items(u, "Emails").filter_map(|e| opt(e, "Value")).collect(),
        status: opt(u, "UserStatus"),
        external_ids: external_ids(u),
        given_name: u.get("Name").and_then(|n| opt(n, "GivenName")),
        family_name: u.get("Name").and_then(|n| opt(n, "FamilyName")),
    })
}

/// Users that are members of a group (groups cannot nest in Identity Store today).
fn membership_items(page: &Value) -> Vec<Membership> {
    items(page, "GroupMemberships")
        .filter_map(|m| {
            let user_id = m.get("MemberId").and_then(|id| opt(id, "UserId"))?;
            Some(Membership {
                membership_id: s(m, "MembershipId"),
                user_id,
            })
        })
        .collect()
}

fn next_token(page: &Value) -> Option<String> {
    page.get("NextToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

pub type Members = Vec<Membership>;

/// Every user of the store. The listing goes one page at a time (each page needs the
/// previous one's token), which leaves most of Identity Center's request rate unused:
/// meanwhile, with what is spare, the members of `groups` are read too. Returns the
/// users, and the members of each group that could be read whole (`None`: read later).
pub fn users_and_members<P: Platform>(
    client: &AwsClient<P>,
    store: &str,
    groups: &[&str],
) -> Result<(Vec<SsoUser>, Vec<Option<Members>>), AwsError> {
    let body = |token: Option<&str>, group: Option<&str>| {
        let mut body = json!({"IdentityStoreId": store, "MaxResults": 100});
        if let Some(g) = group {
            body["GroupId"] = json!(g);
        }
        if let Some(t) = token {
            body["NextToken"] = json!(t);
        }
        body
    };
    let mut users = Vec::new();
    let mut members: Vec<Option<Members>> = groups.iter().map(|_| Some(Vec::new())).collect();
    let mut complete = vec![false; groups.len()];
    let mut waiting: std::collections::VecDeque<(usize, Option<String>)> =
        (0..groups.len()).map(|g| (g, None)).collect();
    let mut token: Option<String> = None;
    let mut seen = std::collections::HashSet::new();
    loop {
        let mut bodies = vec![body(token.as_deref(), None)];
        let mut asked = Vec::new();
        let spare = client
            .spare_calls()
            .saturating_sub(1)
            .min(MAX_IN_FLIGHT - 1);
        while asked.len() < spare {
            let Some((g, t)) = waiting.pop_front() else {
                break;
            };
            bodies.push(body(t.as_deref(), Some(groups[g])));
            asked.push(g);
        }
        let calls: Vec<(Service, &str, &Value)> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let action = if i == 0 {
                    "ListUsers"
                } else {
                    "ListGroupMemberships"
                };
                (Service::IdentityStore, action, b)
            })
            .collect();
        let mut results = client.json_calls(&calls).into_iter();
        let page = results.next().expect("one answer per call")?;
        users.extend(user_items(&page));
        for (g, result) in asked.into_iter().zip(results) {
            // A group that fails here is read again later, on its own.
            let Ok(p) = result else {
                members[g] = None;
                continue;
            };
            if let Some(m) = &mut members[g] {
                m.extend(membership_items(&p));
            }
            match next_token(&p) {
                Some(t) => waiting.push_back((g, Some(t))),
                None => complete[g] = true,
            }
        }
        token = next_token(&page);
        match &token {
            None => break,
            Some(t) if !seen.insert(t.clone()) => {
                return Err(AwsError::new(
                    "identitystore:ListUsers",
                    200,
                    "RepeatedNextToken",
                    "AWS returned the same NextToken twice; stopping instead of looping",
                )
                .with_kind(ErrorKind::Malformed));
            }
            Some(_) => {}
        }
    }
    let members = members
        .into_iter()
        .zip(complete)
        .map(|(m, done)| m.filter(|_| done))
        .collect();
    Ok((users, members))
}

pub fn groups<P: Platform>(client: &AwsClient<P>, store: &str) -> Result<Vec<SsoGroup>, AwsError> {
    let mut out = Vec::new();
    list(
        client,
        Service::IdentityStore,
        "ListGroups",
        json!({"IdentityStoreId": store}),
        100,
        |page| {
            for g in items(page, "Groups") {
                out.push(SsoGroup {
                    group_id: s(g, "GroupId"),
                    display_name: s(g, "DisplayName"),
                    description: opt(g, "Description"),
                    external_ids: external_ids(g),
                });
            }
        },
    )?;
    Ok(out)
}

/// Members of each group that are users (groups cannot nest in Identity Store today),
/// for many groups at once.
pub fn memberships<P: Platform>(
    client: &AwsClient<P>,
    store: &str,
    group_ids: &[&str],
) -> Vec<Result<Vec<Membership>, AwsError>> {
    let inputs: Vec<Value> = group_ids
        .iter()
        .map(|g| json!({"IdentityStoreId": store, "GroupId": g}))
        .collect();
    list_batch(
        client,
        Service::IdentityStore,
        "ListGroupMemberships",
        &inputs,
        100,
        membership_items,
    )
}

pub fn permission_sets<P: Platform>(
    client: &AwsClient<P>,
    instance: &Instance,
) -> Result<Vec<PermissionSet>, AwsError> {
    let mut arns = Vec::new();
    list(
        client,
        Service::SsoAdmin,
        "ListPermissionSets",
        json!({"InstanceArn": instance.arn}),
        100,
        |page| {
            arns.extend(
                items(page, "PermissionSets")
                    .filter_map(Value::as_str)
                    .map(str::to_string),
            );
        },
    )?;
    let inputs: Vec<Value> = arns
        .iter()
        .map(|arn| json!({"InstanceArn": instance.arn, "PermissionSetArn": arn}))
        .collect();
    arns.into_iter()
        .zip(client.json_batch(Service::SsoAdmin, "DescribePermissionSet", &inputs))
        .map(|(arn, out)| {
            let ps = out?.get("PermissionSet").cloned().unwrap_or_default();
            Ok(PermissionSet {
                name: s(&ps, "Name"),
                description: s(&ps, "Description"),
                arn,
            })
        })
        .collect()
}

/// Permission sets provisioned to each account, for many accounts at once.
pub fn provisioned_to<P: Platform>(
    client: &AwsClient<P>,
    instance: &Instance,
    accounts: &[&str],
) -> Vec<Result<Vec<String>, AwsError>> {
    let inputs: Vec<Value> = accounts
        .iter()
        .map(|a| json!({"InstanceArn": instance.arn, "AccountId": a}))
        .collect();
    list_batch(
        client,
        Service::SsoAdmin,
        "ListPermissionSetsProvisionedToAccount",
        &inputs,
        100,
        |page| {
            items(page, "PermissionSets")
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        },
    )
}

/// Assignments of many (account, permission set) pairs at once.
pub fn assignments<P: Platform>(
    client: &AwsClient<P>,
    instance: &Instance,
    pairs: &[(&str, &str)],
) -> Vec<Result<Vec<Assignment>, AwsError>> {
    let inputs: Vec<Value> = pairs
        .iter()
        .map(|(account, ps)| json!({"InstanceArn": instance.arn, "AccountId": account, "PermissionSetArn": ps}))
        .collect();
    list_batch(
        client,
        Service::SsoAdmin,
        "ListAccountAssignments",
        &inputs,
        100,
        |page| {
            items(page, "AccountAssignments")
                .map(|a| Assignment {
                    principal_type: s(a, "PrincipalType"),
                    principal_id: s(a, "PrincipalId"),
                })
                .collect()
        },
    )
}

pub fn accounts<P: Platform>(client: &AwsClient<P>) -> Result<Vec<Account>, AwsError> {
    let mut out = Vec::new();
    list(
        client,
        Service::Organizations,
        "ListAccounts",
        json!({}),
        20,
        |page| {
            for a in items(page, "Accounts") {
                // `Status` is being retired in favour of `State`; read the new field first.
                let state = opt(a, "State")
                    .or_else(|| opt(a, "Status"))
                    .unwrap_or_default();
                out.push(Account {
                    id: s(a, "Id"),
                    arn: s(a, "Arn"),
                    name: s(a, "Name"),
                    email: s(a, "Email"),
                    active: state == "ACTIVE",
                });
            }
        },
    )?;
    Ok(out)
}

/// Organizations can only be read from the management account (or a delegated
/// administrator); say so plainly instead of failing later with a 400.
pub fn check_management<P: Platform>(
    client: &AwsClient<P>,
    caller_account: &str,
) -> Result<String, ConnectorError> {
    let setting = "BATON_GLOBAL_AWS_ORGS_ENABLED";
    let org = match client.json(Service::Organizations, "DescribeOrganization", &json!({})) {
        Ok(v) => v,
        Err(e) if e.code == "AWSOrganizationsNotInUseException" => {
            return Err(ConnectorError::invalid_config(
                setting,
                format!("account {caller_account} is not in an AWS Organization; unset {setting} or use the organization's management account"),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let org = org.get("Organization").cloned().unwrap_or_default();
    let management = s(&org, "MasterAccountId");
    if management.is_empty() || management == caller_account {
        return Ok(s(&org, "Id"));
    }
    // A delegated administrator may list accounts from a member account; others may not.
    match client.json(Service::Organizations, "ListAccounts", &json!({"MaxResults": 1})) {
        Ok(_) => Ok(s(&org, "Id")),
        Err(e) if e.kind == ErrorKind::AccessDenied => Err(ConnectorError::invalid_config(
            setting,
            format!(
                "the connector's role is in member account {caller_account}, but Organizations can only be read from the management account {management} (or a delegated administrator): create the role in account {management}"
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Endpoints;
    use crate::testing::{resp, Fake};

    #[test]
    fn members_are_read_alongside_the_user_listing() {
        let user = |id: &str| format!(r#"{{"UserId":"{id}","UserName":"{id}"}}"#);
        let member =
            |id: &str| format!(r#"{{"MembershipId":"m-{id}","MemberId":{{"UserId":"{id}"}}}}"#);
        let denied = resp(
            400,
            &[("x-amzn-ErrorType", "AccessDeniedException")],
            r#"{"message":"no"}"#,
        );
        let script = vec![
            (
                r#"{"IdentityStoreId":"d-1","MaxResults":100}"#.to_string(),
                resp(
                    200,
                    &[],
                    &format!(
                        r#"{{"Users":[{},{}],"NextToken":"u2"}}"#,
                        user("a"),
                        user("b")
                    ),
                ),
            ),
            (
                r#""NextToken":"u2""#.to_string(),
                resp(200, &[], &format!(r#"{{"Users":[{}]}}"#, user("c"))),
            ),
            (
                r#""GroupId":"g1","IdentityStoreId":"d-1","MaxResults":100}"#.to_string(),
                resp(
                    200,
                    &[],
                    &format!(
                        r#"{{"GroupMemberships":[{}],"NextToken":"m2"}}"#,
                        member("a")
                    ),
                ),
            ),
            (
                r#""NextToken":"m2""#.to_string(),
                resp(
                    200,
                    &[],
                    &format!(r#"{{"GroupMemberships":[{}]}}"#, member("b")),
                ),
            ),
            (
                r#""GroupId":"g2""#.to_string(),
                resp(
                    200,
                    &[],
                    &format!(r#"{{"GroupMemberships":[{}]}}"#, member("c")),
                ),
            ),
            (r#""GroupId":"g3""#.to_string(), denied),
        ];
        let fake = Fake::new(script);
        let endpoints = Endpoints::new("us-east-1", "us-east-1", None).unwrap();
        let client = AwsClient::new(&fake, &endpoints);
        let (users, members) = users_and_members(&client, "d-1", &["g1", "g2", "g3"]).unwrap();
        let ids: Vec<_> = users.iter().map(|u| u.user_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        let of = |g: usize| {
            members[g]
                .as_ref()
                .map(|m| m.iter().map(|m| m.user_id.clone()).collect::<Vec<_>>())
        };
        assert_eq!(of(0), Some(vec!["a".into(), "b".into()]), "both pages");
        assert_eq!(of(1), Some(vec!["c".into()]));
        assert_eq!(of(2), None, "a group that failed is left to be read later");
        // Two rounds: the user pages each with the member pages that were due.
        assert_eq!(*fake.batches.borrow(), [4, 2]);
        assert!(fake.script.borrow().is_empty());
    }
}
