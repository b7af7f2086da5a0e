//! The resource types this connector syncs, with baton-aws's ids and annotations.

use crate::model::{Annotation, ResourceType, TraitKind};

pub const IAM_USER: &str = "iam_user";
pub const ROLE: &str = "role";
pub const GROUP: &str = "group";
pub const SSO_USER: &str = "sso_user";
pub const SSO_GROUP: &str = "sso_group";
pub const ACCOUNT: &str = "account";
pub const ACCOUNT_IAM: &str = "account_iam";

pub fn iam_user() -> ResourceType {
    ResourceType {
        id: IAM_USER,
        display_name: "IAM User",
        description: "An IAM user of the AWS account",
        traits: vec![TraitKind::User],
        annotations: vec![
            Annotation::SkipEntitlements,
            Annotation::V1Identifier(IAM_USER.into()),
        ],
    }
}

pub fn role() -> ResourceType {
    ResourceType {
        id: ROLE,
        display_name: "IAM Role",
        description:
            "An IAM role; its grants are the users and roles its trust policy lets assume it",
        traits: vec![TraitKind::Role],
        annotations: vec![Annotation::V1Identifier(ROLE.into())],
    }
}

pub fn group() -> ResourceType {
    ResourceType {
        id: GROUP,
        display_name: "Group",
        description: "An IAM group; its grants are its members",
        traits: vec![TraitKind::Group],
        annotations: vec![Annotation::V1Identifier(GROUP.into())],
    }
}

pub fn sso_user() -> ResourceType {
    ResourceType {
        id: SSO_USER,
        display_name: "SSO User",
        description: "A user of the IAM Identity Center identity store",
        traits: vec![TraitKind::User],
        annotations: vec![
            Annotation::SkipEntitlementsAndGrants,
            Annotation::V1Identifier(SSO_USER.into()),
        ],
    }
}

pub fn sso_group() -> ResourceType {
    ResourceType {
        id: SSO_GROUP,
        display_name: "SSO Group",
        description: "An IAM Identity Center group; its grants are its members",
        traits: vec![TraitKind::Group],
        annotations: vec![Annotation::V1Identifier(SSO_GROUP.into())],
    }
}

pub fn account() -> ResourceType {
    ResourceType {
        id: ACCOUNT,
        display_name: "Account",
        description:
            "An active account of the AWS Organization; one entitlement per permission set",
        traits: vec![TraitKind::App],
        annotations: vec![Annotation::V1Identifier(ACCOUNT.into())],
    }
}

pub fn account_iam() -> ResourceType {
    ResourceType {
        id: ACCOUNT_IAM,
        display_name: "Account IAM",
        description:
            "An account of the AWS Organization, parent of its IAM users, groups and roles",
        traits: vec![TraitKind::App],
        annotations: vec![
            Annotation::SkipEntitlementsAndGrants,
            Annotation::V1Identifier(ACCOUNT_IAM.into()),
        ],
    }
}

/// Every type this connector can sync.
pub fn all() -> Vec<ResourceType> {
    vec![
        iam_user(),
        role(),
        group(),
        sso_user(),
        sso_group(),
        account(),
        account_iam(),
    ]
}

/// The types a configuration syncs, in sync order (baton-aws's registration rules).
pub fn enabled(orgs: bool, sso: bool, cross_account: bool) -> Vec<ResourceType> {
    let mut types = vec![iam_user(), role(), group()];
    if sso {
        types.extend([sso_user(), sso_group()]);
    }
    if orgs && sso {
        types.push(account());
    }
    if orgs && (!sso || cross_account) {
        types.push(account_iam());
    }
    types
}
