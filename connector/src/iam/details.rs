//! Everything the IAM sync needs, fetched in bulk.
//!
//! `GetAccountAuthorizationDetails` returns users (with their group names and tags),
//! groups and roles (with trust policies) a thousand at a time. It lacks a user's
//! `PasswordLastUsed` and a role's description and session duration, so one pass of
//! `ListUsers` and `ListRoles` (also a thousand per page) fills those in. For 1,000 users,
//! 100 groups and 300 roles that is four calls instead of about 1,700.

use crate::aws::{AwsClient, AwsError, ErrorKind, Service};
use crate::platform::Platform;
use crate::xml::Element;
use percent_encoding::percent_decode_str;
use std::collections::{HashMap, HashSet};

pub const PAGE_SIZE: &str = "1000";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct IamUser {
    pub arn: String,
    pub name: String,
    pub path: String,
    pub user_id: String,
    pub create_date: Option<String>,
    pub password_last_used: Option<String>,
    /// Group names (not ARNs), as GAAD reports them.
    pub groups: Vec<String>,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct IamGroup {
    pub arn: String,
    pub name: String,
    pub path: String,
    pub group_id: String,
    pub create_date: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct IamRole {
    pub arn: String,
    pub name: String,
    pub path: String,
    pub role_id: String,
    pub create_date: Option<String>,
    /// Decoded JSON text.
    pub trust_policy: Option<String>,
    pub description: Option<String>,
    pub max_session_duration: Option<u32>,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthorizationDetails {
    pub users: Vec<IamUser>,
    pub groups: Vec<IamGroup>,
    pub roles: Vec<IamRole>,
}

impl AuthorizationDetails {
    pub fn fetch<P: Platform>(client: &AwsClient<P>) -> Result<Self, AwsError> {
        let mut details = AuthorizationDetails::default();
        let filter = [
            ("Filter.member.1", "User"),
            ("Filter.member.2", "Group"),
            ("Filter.member.3", "Role"),
        ];
        paginate(
            client,
            "GetAccountAuthorizationDetails",
            &filter,
            |result| {
                details
                    .users
                    .extend(result.members("UserDetailList").map(parse_user));
                details
                    .groups
                    .extend(result.members("GroupDetailList").map(parse_group));
                details
                    .roles
                    .extend(result.members("RoleDetailList").map(parse_role));
            },
        )?;
        let mut password_used: HashMap<String, String> = HashMap::new();
        paginate(client, "ListUsers", &[], |result| {
            for u in result.members("Users") {
                if let (Some(arn), Some(used)) =
                    (u.child_text("Arn"), u.child_text("PasswordLastUsed"))
                {
                    password_used.insert(arn.to_string(), used.to_string());
                }
            }
        })?;
        let mut role_extras: HashMap<String, (Option<String>, Option<u32>)> = HashMap::new();
        paginate(client, "ListRoles", &[], |result| {
            for r in result.members("Roles") {
                if let Some(arn) = r.child_text("Arn") {
                    let description = r
                        .child_text("Description")
                        .filter(|d| !d.is_empty())
                        .map(str::to_string);
                    let duration = r
                        .child_text("MaxSessionDuration")
                        .and_then(|d| d.parse().ok());
                    role_extras.insert(arn.to_string(), (description, duration));
                }
            }
        })?;
        for u in &mut details.users {
            u.password_last_used = password_used.remove(&u.arn);
        }
        for r in &mut details.roles {
            if let Some((description, duration)) = role_extras.remove(&r.arn) {
                r.description = description;
                r.max_session_duration = duration;
            }
        }
        Ok(details)
    }

    /// The account id, read from the first ARN.
    pub fn account_id(&self) -> Option<&str> {
        let arn = self
            .users
            .first()
            .map(|u| &u.arn)
            .or(self.groups.first().map(|g| &g.arn))
            .or(self.roles.first().map(|r| &r.arn))?;
        arn.split(':').nth(4)
    }
}

/// Follows `IsTruncated`/`Marker` until the last page. A marker that repeats would loop
/// forever, so it is an error.
fn paginate<P: Platform>(
    client: &AwsClient<P>,
    action: &str,
    fixed: &[(&str, &str)],
    mut on_page: impl FnMut(&Element),
) -> Result<(), AwsError> {
    let mut seen = HashSet::new();
    let mut marker: Option<String> = None;
    loop {
        let mut params: Vec<(String, String)> = fixed
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        params.push(("MaxItems".into(), PAGE_SIZE.into()));
        if let Some(m) = &marker {
            params.push(("Marker".into(), m.clone()));
        }
        let result = client.query(Service::Iam, action, &params)?;
        on_page(&result);
        let truncated = result.child_text("IsTruncated") == Some("true");
        marker = result
            .child_text("Marker")
            .filter(|m| !m.is_empty())
            .map(str::to_string);
        match (&marker, truncated) {
            (Some(m), true) => {
                if !seen.insert(m.clone()) {
                    return Err(AwsError::new(
                        &format!("iam:{action}"),
                        200,
                        "RepeatedMarker",
                        "AWS returned the same page marker twice; stopping instead of looping",
                    )
                    .with_kind(ErrorKind::Malformed));
                }
            }
            _ => return Ok(()),
        }
    }
}

fn text(el: &Element, name: &str) -> String {
    el.child_text(name).unwrap_or_default().to_string()
}

fn opt_text(el: &Element, name: &str) -> Option<String> {
    el.child_text(name)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn tags(el: &Element) -> Vec<(String, String)> {
    el.members("Tags")
        .map(|t| (text(t, "Key"), text(t, "Value")))
        .collect()
}

fn parse_user(u: &Element) -> IamUser {
    IamUser {
        arn: text(u, "Arn"),
        name: text(u, "UserName"),
        path: text(u, "Path"),
        user_id: text(u, "UserId"),
        create_date: opt_text(u, "CreateDate"),
        password_last_used: None,
        groups: u.members("GroupList").map(|g| g.text.clone()).collect(),
        tags: tags(u),
    }
}

fn parse_group(g: &Element) -> IamGroup {
    IamGroup {
        arn: text(g, "Arn"),
        name: text(g, "GroupName"),
        path: text(g, "Path"),
        group_id: text(g, "GroupId"),
        create_date: opt_text(g, "CreateDate"),
    }
}

fn parse_role(r: &Element) -> IamRole {
    IamRole {
        arn: text(r, "Arn"),
        name: text(r, "RoleName"),
        path: text(r, "Path"),
        role_id: text(r, "RoleId"),
        create_date: opt_text(r, "CreateDate"),
        trust_policy: opt_text(r, "AssumeRolePolicyDocument").map(|d| decode_policy(&d)),
        description: None,
        max_session_duration: None,
        tags: tags(r),
    }
}

/// IAM URL-encodes policy documents; the emulator does not. Decoding plain JSON is
/// harmless unless it contains `%`, so only decode what is not already JSON.
pub fn decode_policy(doc: &str) -> String {
    let trimmed = doc.trim_start();
    if trimmed.starts_with('{') {
        return doc.to_string();
    }
    percent_decode_str(&doc.replace('+', "%20"))
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml;

    #[test]
    fn decodes_encoded_and_plain_policies() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(
            decode_policy(encoded),
            r#"{"Version":"2012-10-17","Statement":[]}"#
        );
        let plain = r#"{"Statement":[{"Sid":"100%"}]}"#;
        assert_eq!(decode_policy(plain), plain);
    }

    #[test]
    fn parses_detail_lists() {
        let doc = r#"<GetAccountAuthorizationDetailsResponse><GetAccountAuthorizationDetailsResult>
<UserDetailList><member><Path>/eng/</Path><UserName>a+b@x.com</UserName><UserId>AIDA1</UserId>
<Arn>arn:aws:iam::123456789012:user/eng/a+b@x.com</Arn><CreateDate>2024-01-02T03:04:05Z</CreateDate>
<GroupList><member>admins</member><member>devs</member></GroupList>
<Tags><member><Key>email</Key><Value>ab@example.com</Value></member></Tags></member></UserDetailList>
<GroupDetailList><member><Path>/</Path><GroupName>admins</GroupName><GroupId>AGPA1</GroupId><Arn>arn:aws:iam::123456789012:group/admins</Arn></member></GroupDetailList>
<RoleDetailList><member><Path>/</Path><RoleName>ops</RoleName><RoleId>AROA1</RoleId><Arn>arn:aws:iam::123456789012:role/ops</Arn>
<AssumeRolePolicyDocument>%7B%22Statement%22%3A%5B%5D%7D</AssumeRolePolicyDocument></member></RoleDetailList>
<IsTruncated>false</IsTruncated></GetAccountAuthorizationDetailsResult></GetAccountAuthorizationDetailsResponse>"#;
        let root = xml::parse(doc).unwrap();
        let result = root.child("GetAccountAuthorizationDetailsResult").unwrap();
        let user = parse_user(result.members("UserDetailList").next().unwrap());
        assert_eq!(user.name, "a+b@x.com");
        assert_eq!(user.groups, ["admins", "devs"]);
        assert_eq!(
            user.tags,
            [("email".to_string(), "ab@example.com".to_string())]
        );
        let role = parse_role(result.members("RoleDetailList").next().unwrap());
        assert_eq!(role.trust_policy.as_deref(), Some(r#"{"Statement":[]}"#));
        let group = parse_group(result.members("GroupDetailList").next().unwrap());
        assert_eq!(group.group_id, "AGPA1");
    }
}
