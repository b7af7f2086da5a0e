//! The resource types this connector syncs, with baton-aws's ids and annotations.

use crate::model::{Annotation, ResourceType, TraitKind};

pub const IAM_USER: &str = "iam_user";
pub const ROLE: &str = "role";
pub const GROUP: &str = "group";
pub const SSO_USER: &str = "sso_user";

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

/// The types a configuration syncs, in sync order.
pub fn enabled() -> Vec<ResourceType> {
    vec![iam_user(), role(), group()]
}
