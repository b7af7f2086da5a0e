//! The connector: metadata, configuration, and the list calls the host drives.

use crate::aws::pace::Pacer;
use crate::aws::{AwsClient, Endpoints, Service};
use crate::iam::details::AuthorizationDetails;
use crate::iam::mapping::{self, IamIndex};
use crate::model::*;
use crate::platform::Platform;
use crate::provision;
use crate::resource_types::{
    self, ACCOUNT, ACCOUNT_IAM, GROUP, IAM_USER, ROLE, SSO_GROUP, SSO_USER,
};
use crate::scim;
use crate::settings::{self, Config};
use crate::sso::fetch::{self, Account, Instance, Membership, PermissionSet, SsoGroup, SsoUser};
use crate::sso::mapping as sso_mapping;
use crate::sts;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Items per page handed to the host: big enough to keep per-page overhead low, small
/// enough that one page's transaction stays short.
const PAGE_ITEMS: usize = 500;

pub fn metadata() -> Metadata {
    Metadata {
        name: "aws",
        display_name: "AWS",
        version: env!("CARGO_PKG_VERSION"),
        description: "IAM users, groups and roles of an AWS account, with group memberships and who can assume each role",
        resource_types: resource_types::all(),
        capabilities: vec![
            Capability {
                name: "sync",
                enabled_by: None,
                permissions: vec!["iam:GetAccountAuthorizationDetails", "iam:ListUsers", "iam:ListRoles"],
                description: "Read IAM users, groups, memberships and role trust policies",
            },
            Capability {
                name: "sync-organizations",
                enabled_by: Some("global-aws-orgs-enabled"),
                permissions: vec!["organizations:DescribeOrganization", "organizations:ListAccounts"],
                description: "Read the Organization's accounts",
            },
            Capability {
                name: "sync-identity-center",
                enabled_by: Some("global-aws-sso-enabled"),
                permissions: vec![
                    "sso:ListInstances",
                    "identitystore:ListUsers",
                    "identitystore:ListGroups",
                    "identitystore:ListGroupMemberships",
                    "sso:ListPermissionSets",
                    "sso:DescribePermissionSet",
                    "sso:ListPermissionSetsProvisionedToAccount",
                    "sso:ListAccountAssignments",
                ],
                description: "Read Identity Center users, groups, memberships, permission sets and account assignments",
            },
            Capability {
                name: "sync-member-accounts-iam",
                enabled_by: Some("global-aws-cross-account-iam-enabled"),
                permissions: vec!["sts:AssumeRole"],
                description: "Assume the member-account role (BATON_IAM_ASSUME_ROLE_NAME) in each account and read its IAM; that role needs the sync permissions",
            },
            Capability {
                name: "provision-iam-groups",
                enabled_by: None,
                permissions: vec!["iam:ListGroupsForUser", "iam:AddUserToGroup", "iam:RemoveUserFromGroup"],
                description: "Add users to and remove them from IAM groups",
            },
            Capability {
                name: "provision-identity-center",
                enabled_by: Some("global-aws-sso-enabled"),
                permissions: vec![
                    "identitystore:GetGroupMembershipId",
                    "identitystore:CreateGroupMembership",
                    "identitystore:DeleteGroupMembership",
                    "sso:ListAccountAssignments",
                    "sso:CreateAccountAssignment",
                    "sso:DeleteAccountAssignment",
                    "sso:DescribeAccountAssignmentCreationStatus",
                    "sso:DescribeAccountAssignmentDeletionStatus",
                ],
                description: "Add users to and remove them from Identity Center groups; create and delete account assignments",
            },
            Capability {
                name: "sync-scim-status",
                enabled_by: Some("scim-enabled"),
                permissions: vec![],
                description: "Read SSO users' status from the Identity Center SCIM API (bearer token, no IAM permission)",
            },
        ],
        settings: settings::specs(),
        outbound_hosts: vec![
            "iam.amazonaws.com".into(),
            "sts.*.amazonaws.com".into(),
            "identitystore.*.amazonaws.com".into(),
            "sso.*.amazonaws.com".into(),
            "organizations.us-east-1.amazonaws.com".into(),
            "scim.*.amazonaws.com".into(),
        ],
    }
}

pub struct Connector {
    config: Config,
    endpoints: Endpoints,
    /// One IAM snapshot per account: `None` is the configured account, `Some` a member
    /// account reached with cross-account credentials.
    snapshots: RefCell<HashMap<Option<String>, Rc<Snapshot>>>,
    caller_account: RefCell<Option<String>>,
    unreadable_accounts: RefCell<std::collections::HashSet<String>>,
    sso: RefCell<SsoState>,
    /// Identity Center's request rate, shared by every call of this connector.
    pacer: Pacer,
}

/// Identity Center and Organizations data read once per sync.
#[derive(Default)]
struct SsoState {
    instance: Option<Instance>,
    users: Option<Rc<Vec<SsoUser>>>,
    groups: Option<Rc<Vec<SsoGroup>>>,
    permission_sets: Option<Rc<Vec<PermissionSet>>>,
    accounts: Option<Rc<Vec<Account>>>,
    /// What each group or account grants, read on the first page and sliced for the next.
    grants: HashMap<ResourceId, Result<Held, ConnectorError>>,
}

/// What an Identity Center group or account grants, as read.
#[derive(Clone)]
enum Held {
    /// A group's members: made into grants a page at a time (40,000 memberships as
    /// records would fill the guest's memory).
    Members(Rc<Vec<Membership>>),
    Grants(Rc<Vec<Grant>>),
}

/// One sync's view of the account: the entities and who holds what, computed once so
/// that each per-resource call is a lookup.
struct Snapshot {
    details: AuthorizationDetails,
    /// Members of each group (by ARN) as indices into `details.users`: made into grants a
    /// page at a time, 20,000 memberships as records would fill the guest's memory.
    members: HashMap<String, Vec<usize>>,
    /// Grants of each role; `Err` holds why its trust policy could not be read.
    role_grants: HashMap<ResourceId, Result<Vec<Grant>, String>>,
}

impl Snapshot {
    fn new(details: AuthorizationDetails) -> Snapshot {
        let index = IamIndex::new(&details);
        let mut members = HashMap::new();
        for g in &details.groups {
            let id = ResourceId::new(GROUP, &g.arn);
            members.insert(g.arn.clone(), index.group_members(&id));
        }
        let mut role_grants = HashMap::new();
        for r in &details.roles {
            let id = ResourceId::new(ROLE, &r.arn);
            role_grants.insert(id.clone(), index.role_grants(&id));
        }
        Snapshot {
            details,
            members,
            role_grants,
        }
    }
}

impl Connector {
    pub fn configure(
        settings: &[(String, String)],
    ) -> Result<(Connector, Configured), ConnectorError> {
        let config = Config::parse(settings)?;
        let endpoints = Endpoints::new(
            &config.region,
            &config.sso_region,
            config.endpoint_url.as_deref(),
        )
        .map_err(|e| ConnectorError::invalid_config("AWS_ENDPOINT_URL", e))?;
        let mut services = vec![Service::Iam, Service::Sts];
        if config.orgs_enabled {
            services.push(Service::Organizations);
        }
        if config.sso_enabled {
            services.extend([Service::SsoAdmin, Service::IdentityStore]);
        }
        let mut outbound_hosts = endpoints.authorities(&services);
        if let Some(url) = &config.scim_endpoint {
            let (_, authority, _) = scim::parse_endpoint(url)
                .map_err(|e| ConnectorError::invalid_config("BATON_SCIM_ENDPOINT", e))?;
            outbound_hosts.push(authority);
        }
        let configured = Configured {
            outbound_hosts,
            resource_types: resource_types::enabled(
                config.orgs_enabled,
                config.sso_enabled,
                config.cross_account,
            ),
        };
        Ok((
            Connector {
                config,
                endpoints,
                snapshots: RefCell::new(HashMap::new()),
                caller_account: RefCell::new(None),
                unreadable_accounts: RefCell::new(Default::default()),
                sso: RefCell::new(SsoState::default()),
                pacer: Pacer::identity_center(),
            },
            configured,
        ))
    }

    fn client<'a, P: Platform>(&'a self, platform: &'a P) -> AwsClient<'a, P> {
        AwsClient::new(platform, &self.endpoints).paced(&self.pacer)
    }

    pub fn validate<P: Platform>(&self, platform: &P) -> Result<String, ConnectorError> {
        let client = self.client(platform);
        let result = client.query(Service::Sts, "GetCallerIdentity", &[])?;
        let me = sts::parse_caller_identity(&result).map_err(ConnectorError::Fatal)?;
        *self.caller_account.borrow_mut() = Some(me.account.clone());
        let mut reached = format!("AWS account {} as {}", me.account, me.arn);
        if self.config.orgs_enabled {
            let org = fetch::check_management(&client, &me.account)?;
            reached.push_str(&format!(", organization {org}"));
        }
        if self.config.sso_enabled {
            let instance = self.instance(platform)?;
            reached.push_str(&format!(
                ", Identity Center {} (identity store {}) in {}",
                instance.arn, instance.identity_store_id, self.config.sso_region
            ));
        }
        Ok(reached)
    }

    /// The account's IAM entities, fetched once per sync (per instance: the host starts one
    /// per sync).
    fn snapshot<P: Platform>(
        &self,
        platform: &P,
        account: Option<&str>,
    ) -> Result<Rc<Snapshot>, ConnectorError> {
        let key = account.map(str::to_string);
        if let Some(s) = self.snapshots.borrow().get(&key) {
            return Ok(s.clone());
        }
        // A member account that could not be read was reported once; its other types
        // come back empty rather than repeating the same failure.
        if let Some(a) = account {
            if self.unreadable_accounts.borrow().contains(a) {
                return Ok(Rc::new(Snapshot::new(AuthorizationDetails::default())));
            }
        }
        let client = match account {
            Some(a) => self
                .client(platform)
                .with_scope(CredentialScope::Account(a.into())),
            None => self.client(platform),
        };
        let details = AuthorizationDetails::fetch(&client).inspect_err(|_| {
            if let Some(a) = account {
                self.unreadable_accounts.borrow_mut().insert(a.to_string());
            }
        })?;
        let snapshot = Rc::new(Snapshot::new(details));
        self.snapshots.borrow_mut().insert(key, snapshot.clone());
        Ok(snapshot)
    }

    /// The account the base credentials belong to.
    fn caller_account<P: Platform>(&self, platform: &P) -> Result<String, ConnectorError> {
        if let Some(a) = self.caller_account.borrow().as_ref() {
            return Ok(a.clone());
        }
        let result = self
            .client(platform)
            .query(Service::Sts, "GetCallerIdentity", &[])?;
        let me = sts::parse_caller_identity(&result).map_err(ConnectorError::Fatal)?;
        *self.caller_account.borrow_mut() = Some(me.account.clone());
        Ok(me.account)
    }

    /// Every account of the Organization; with cross-account IAM on, each member account
    /// whose role the host can assume announces its IAM users, roles and groups as
    /// children. One that cannot be assumed is a warning, not a failed sync.
    fn account_iam_page<P: Platform>(
        &self,
        platform: &P,
    ) -> Result<Page<Resource>, ConnectorError> {
        let own = self.caller_account(platform)?;
        let mut items = Vec::new();
        let mut warnings = Vec::new();
        for a in self.accounts(platform)?.iter() {
            let mut r = sso_mapping::account_resource(a);
            r.id.resource_type = ACCOUNT_IAM.into();
            r.annotations.push(Annotation::SkipEntitlementsAndGrants);
            // A suspended or closed account cannot be entered: list it, skip its IAM.
            if self.config.cross_account && a.id != own && a.active {
                match platform.credentials(&CredentialScope::Account(a.id.clone()), false) {
                    Ok(_) => r.annotations.extend(
                        [IAM_USER, ROLE, GROUP].map(|t| Annotation::ChildResourceType(t.into())),
                    ),
                    Err(e) => warnings.push(format!(
                        "account {} ({}): its IAM users, groups and roles are not synced: {e}",
                        a.id, a.name
                    )),
                }
            }
            items.push(r);
        }
        Ok(Page {
            items,
            next_page_token: None,
            warnings,
        })
    }

    pub fn list_resources<P: Platform>(
        &self,
        platform: &P,
        resource_type: &str,
        parent: Option<&ResourceId>,
        page_token: Option<&str>,
    ) -> Result<Page<Resource>, ConnectorError> {
        // Only IAM types live under a parent: a member account's `account_iam`.
        let member = match parent {
            Some(p)
                if p.resource_type == ACCOUNT_IAM
                    && matches!(resource_type, IAM_USER | GROUP | ROLE) =>
            {
                Some(p.resource.as_str())
            }
            Some(_) => return Ok(Page::last(vec![])),
            None => None,
        };
        // Only the requested page is mapped: a listing of 20,000 users asked for 40 times
        // must not build 20,000 resources each time.
        match resource_type {
            IAM_USER | GROUP | ROLE => {
                let snapshot = self.snapshot(platform, member)?;
                let details = &snapshot.details;
                let under = |mut r: Resource| {
                    r.parent = parent.cloned();
                    r
                };
                match resource_type {
                    IAM_USER => paged(&details.users, page_token, |u| {
                        under(mapping::user_resource(u))
                    }),
                    GROUP => paged(&details.groups, page_token, |g| {
                        under(mapping::group_resource(g))
                    }),
                    _ => paged(&details.roles, page_token, |r| {
                        under(mapping::role_resource(r))
                    }),
                }
            }
            ACCOUNT_IAM if self.types_include(ACCOUNT_IAM) => {
                if page_token.is_some() {
                    return Ok(Page::last(vec![]));
                }
                self.account_iam_page(platform)
            }
            SSO_USER if self.config.sso_enabled => {
                let store = self.instance(platform)?.identity_store_id;
                let region = &self.config.sso_region;
                let scim = self.scim_status(platform)?;
                paged(&self.sso_users(platform)?, page_token, |u| {
                    let active = scim
                        .as_ref()
                        .and_then(|s| s.active(&u.user_id, &u.user_name));
                    sso_mapping::user_resource(region, &store, u, active)
                })
            }
            SSO_GROUP if self.config.sso_enabled => {
                let store = self.instance(platform)?.identity_store_id;
                let region = &self.config.sso_region;
                paged(&self.sso_groups(platform)?, page_token, |g| {
                    sso_mapping::group_resource(region, &store, g)
                })
            }
            ACCOUNT if self.config.orgs_enabled && self.config.sso_enabled => {
                let accounts = self.accounts(platform)?;
                let active: Vec<&Account> = accounts.iter().filter(|a| a.active).collect();
                paged(&active, page_token, |a| sso_mapping::account_resource(a))
            }
            other => Err(ConnectorError::NotFound(format!(
                "resource type {other:?} is not synced by this configuration"
            ))),
        }
    }

    pub fn list_entitlements<P: Platform>(
        &self,
        platform: &P,
        resource: &Resource,
        page_token: Option<&str>,
    ) -> Result<Page<Entitlement>, ConnectorError> {
        let items = match resource.id.resource_type.as_str() {
            GROUP => vec![mapping::membership_entitlement(resource, "IAM")],
            SSO_GROUP => vec![mapping::membership_entitlement(resource, "SSO")],
            ROLE => vec![mapping::role_entitlement(resource)],
            // Every permission set may be requested for every account.
            ACCOUNT => self
                .permission_sets(platform)?
                .iter()
                .map(|ps| sso_mapping::account_entitlement(&resource.id, ps))
                .collect(),
            _ => vec![],
        };
        paged(&items, page_token, Clone::clone)
    }

    pub fn list_grants<P: Platform>(
        &self,
        platform: &P,
        resource: &Resource,
        page_token: Option<&str>,
    ) -> Result<Page<Grant>, ConnectorError> {
        match resource.id.resource_type.as_str() {
            SSO_GROUP | ACCOUNT => {
                return match self.sso_grants(platform, &resource.id)? {
                    Held::Grants(grants) => paged(&grants, page_token, Clone::clone),
                    Held::Members(members) => {
                        let store = self.instance(platform)?.identity_store_id;
                        let region = &self.config.sso_region;
                        paged(&members, page_token, |m| {
                            sso_mapping::membership_grant(region, &store, &resource.id, m)
                        })
                    }
                };
            }
            IAM_USER | GROUP | ROLE => {}
            _ => return Ok(Page::last(vec![])),
        }
        let member = resource
            .parent
            .as_ref()
            .filter(|p| p.resource_type == ACCOUNT_IAM)
            .map(|p| p.resource.as_str());
        let snapshot = self.snapshot(platform, member)?;
        if resource.id.resource_type == GROUP {
            let users = &snapshot.details.users;
            return match snapshot.members.get(&resource.id.resource) {
                Some(members) => paged(members, page_token, |&i| {
                    mapping::membership_grant(&resource.id, &users[i])
                }),
                None => Ok(Page::last(vec![])),
            };
        }
        match snapshot.role_grants.get(&resource.id) {
            Some(Ok(grants)) => paged(grants, page_token, Clone::clone),
            // One unreadable trust policy must not sink the sync: warn and move on.
            Some(Err(why)) => Ok(Page {
                items: vec![],
                next_page_token: None,
                warnings: vec![why.clone()],
            }),
            None => Ok(Page::last(vec![])),
        }
    }
}

impl Connector {
    /// The client for an IAM entity: a member account's credentials when its ARN is in
    /// another account than the connector's own.
    fn iam_client_for<'a, P: Platform>(
        &'a self,
        platform: &'a P,
        arn: &str,
    ) -> Result<crate::aws::AwsClient<'a, P>, ConnectorError> {
        let account = arn.split(':').nth(4).unwrap_or_default();
        let client = self.client(platform);
        if account.is_empty() || account == self.caller_account(platform)? {
            return Ok(client);
        }
        Ok(client.with_scope(CredentialScope::Account(account.to_string())))
    }

    pub fn grant<P: Platform>(
        &self,
        platform: &P,
        entitlement: &Entitlement,
        principal: &Resource,
    ) -> Result<provision::Outcome, ConnectorError> {
        let target = &entitlement.resource;
        let region = &self.config.sso_region;
        match target.resource_type.as_str() {
            GROUP if entitlement.id == format!("{GROUP}:{}:member", target.resource) => {
                let client = self.iam_client_for(platform, &target.resource)?;
                provision::grant_iam_group(&client, target, &principal.id)
            }
            SSO_GROUP if self.config.sso_enabled => {
                let instance = self.instance(platform)?;
                provision::grant_sso_group(
                    &self.client(platform),
                    region,
                    &instance,
                    target,
                    &principal.id,
                )
            }
            ACCOUNT if self.config.orgs_enabled && self.config.sso_enabled => {
                let instance = self.instance(platform)?;
                provision::grant_account(
                    &self.client(platform),
                    region,
                    &instance,
                    target,
                    &entitlement.id,
                    &principal.id,
                )
            }
            _ => Err(not_provisionable(&entitlement.id)),
        }
    }

    pub fn revoke<P: Platform>(
        &self,
        platform: &P,
        grant: &Grant,
    ) -> Result<Vec<Annotation>, ConnectorError> {
        let target = &grant.resource;
        match target.resource_type.as_str() {
            GROUP if grant.entitlement_id == format!("{GROUP}:{}:member", target.resource) => {
                let client = self.iam_client_for(platform, &target.resource)?;
                provision::revoke_iam_group(&client, target, &grant.principal)
            }
            SSO_GROUP if self.config.sso_enabled => {
                let instance = self.instance(platform)?;
                provision::revoke_sso_group(
                    &self.client(platform),
                    &instance,
                    target,
                    &grant.principal,
                )
            }
            ACCOUNT if self.config.orgs_enabled && self.config.sso_enabled => {
                let instance = self.instance(platform)?;
                provision::revoke_account(
                    &self.client(platform),
                    &instance,
                    &grant.entitlement_id,
                    &grant.principal,
                )
            }
            _ => Err(not_provisionable(&grant.entitlement_id)),
        }
    }
    fn types_include(&self, id: &str) -> bool {
        resource_types::enabled(
            self.config.orgs_enabled,
            self.config.sso_enabled,
            self.config.cross_account,
        )
        .iter()
        .any(|t| t.id == id)
    }

    fn instance<P: Platform>(&self, platform: &P) -> Result<Instance, ConnectorError> {
        if let Some(i) = &self.sso.borrow().instance {
            return Ok(i.clone());
        }
        let instance = fetch::instance(&self.client(platform), &self.config.sso_region)?;
        self.sso.borrow_mut().instance = Some(instance.clone());
        Ok(instance)
    }

    /// Users' `active` flag from SCIM, when SCIM status is on.
    fn scim_status<P: Platform>(
        &self,
        platform: &P,
    ) -> Result<Option<scim::ScimStatus>, ConnectorError> {
        let Some(endpoint) = &self.config.scim_endpoint else {
            return Ok(None);
        };
        let token = platform
            .secret("scim-token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ConnectorError::invalid_config(
                    "BATON_SCIM_TOKEN",
                    "BATON_SCIM_ENABLED is true but no SCIM access token is set",
                )
            })?;
        scim::statuses(platform, endpoint, &token).map(Some)
    }

    fn sso_users<P: Platform>(&self, platform: &P) -> Result<Rc<Vec<SsoUser>>, ConnectorError> {
        if let Some(u) = &self.sso.borrow().users {
            return Ok(u.clone());
        }
        let instance = self.instance(platform)?;
        let (region, store) = (&self.config.sso_region, &instance.identity_store_id);
        // Groups first, so that their members can be read while the users are listed. A
        // group listing that fails here is reported when the groups are listed.
        let groups = self.sso_groups(platform).unwrap_or_default();
        let ids: Vec<&str> = groups.iter().map(|g| g.group_id.as_str()).collect();
        let (users, members) = fetch::users_and_members(&self.client(platform), store, &ids)?;
        let users = Rc::new(users);
        let mut state = self.sso.borrow_mut();
        state.users = Some(users.clone());
        for (g, m) in groups.iter().zip(members) {
            if let Some(m) = m {
                let id = ResourceId::new(
                    SSO_GROUP,
                    sso_mapping::group_arn(region, store, &g.group_id),
                );
                state.grants.insert(id, Ok(Held::Members(Rc::new(m))));
            }
        }
        Ok(users)
    }

    fn sso_groups<P: Platform>(&self, platform: &P) -> Result<Rc<Vec<SsoGroup>>, ConnectorError> {
        if let Some(g) = &self.sso.borrow().groups {
            return Ok(g.clone());
        }
        let store = self.instance(platform)?.identity_store_id;
        let groups = Rc::new(fetch::groups(&self.client(platform), &store)?);
        self.sso.borrow_mut().groups = Some(groups.clone());
        Ok(groups)
    }

    fn permission_sets<P: Platform>(
        &self,
        platform: &P,
    ) -> Result<Rc<Vec<PermissionSet>>, ConnectorError> {
        if let Some(p) = &self.sso.borrow().permission_sets {
            return Ok(p.clone());
        }
        let instance = self.instance(platform)?;
        let sets = Rc::new(fetch::permission_sets(&self.client(platform), &instance)?);
        self.sso.borrow_mut().permission_sets = Some(sets.clone());
        Ok(sets)
    }

    fn accounts<P: Platform>(&self, platform: &P) -> Result<Rc<Vec<Account>>, ConnectorError> {
        if let Some(a) = &self.sso.borrow().accounts {
            return Ok(a.clone());
        }
        let accounts = Rc::new(fetch::accounts(&self.client(platform))?);
        self.sso.borrow_mut().accounts = Some(accounts.clone());
        Ok(accounts)
    }

    /// Grants of an Identity Center group (its members) or of an account (its
    /// assignments). The first call for either kind reads them for every group or account
    /// at once, several requests in flight, and keeps them for the calls that follow.
    fn sso_grants<P: Platform>(
        &self,
        platform: &P,
        id: &ResourceId,
    ) -> Result<Held, ConnectorError> {
        let cached = self.sso.borrow().grants.get(id).cloned();
        match cached {
            Some(Ok(grants)) => return Ok(grants),
            // A failure that may pass is forgotten once reported, so that the host's retry
            // of this page reads this resource again (and only it).
            Some(Err(e)) => {
                if e.may_pass() {
                    self.sso.borrow_mut().grants.remove(id);
                }
                return Err(e);
            }
            None => {}
        }
        if id.resource_type == SSO_GROUP {
            self.read_all_memberships(platform)?;
        } else {
            self.read_all_assignments(platform)?;
        }
        let known = self.sso.borrow().grants.get(id).cloned();
        // A resource that appeared after the first read has nothing recorded yet.
        known.unwrap_or_else(|| Ok(Held::Grants(Rc::new(Vec::new()))))
    }

    fn read_all_memberships<P: Platform>(&self, platform: &P) -> Result<(), ConnectorError> {
        let instance = self.instance(platform)?;
        let (region, store) = (&self.config.sso_region, &instance.identity_store_id);
        let all = self.sso_groups(platform)?;
        let id_of = |g: &&SsoGroup| {
            ResourceId::new(
                SSO_GROUP,
                sso_mapping::group_arn(region, store, &g.group_id),
            )
        };
        // Groups read before keep their answer; a retry reads only the others.
        let groups: Vec<&SsoGroup> = {
            let known = &self.sso.borrow().grants;
            all.iter()
                .filter(|g| !known.contains_key(&id_of(g)))
                .collect()
        };
        let ids: Vec<&str> = groups.iter().map(|g| g.group_id.as_str()).collect();
        let results = fetch::memberships(&self.client(platform), store, &ids);
        let mut state = self.sso.borrow_mut();
        for (g, result) in groups.iter().zip(results) {
            let id = id_of(g);
            let held = result
                .map(|members| Held::Members(Rc::new(members)))
                .map_err(ConnectorError::from);
            state.grants.insert(id, held);
        }
        Ok(())
    }

    fn read_all_assignments<P: Platform>(&self, platform: &P) -> Result<(), ConnectorError> {
        let instance = self.instance(platform)?;
        let (region, store) = (&self.config.sso_region, &instance.identity_store_id);
        let client = self.client(platform);
        let accounts = self.accounts(platform)?;
        let ids: Vec<&str> = {
            let known = &self.sso.borrow().grants;
            accounts
                .iter()
                .filter(|a| a.active && !known.contains_key(&ResourceId::new(ACCOUNT, &a.id)))
                .map(|a| a.id.as_str())
                .collect()
        };
        let provisioned = fetch::provisioned_to(&client, &instance, &ids);
        // Only permission sets provisioned to an account can have assignments there: no
        // call for the other (account, permission set) pairs.
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        let mut outcome: HashMap<&str, Result<Vec<Grant>, ConnectorError>> = HashMap::new();
        for (account, result) in ids.iter().zip(&provisioned) {
            match result {
                Ok(sets) => {
                    pairs.extend(sets.iter().map(|ps| (*account, ps.as_str())));
                    outcome.insert(account, Ok(Vec::new()));
                }
                Err(e) => {
                    outcome.insert(account, Err(e.clone().into()));
                }
            }
        }
        for ((account, ps), result) in pairs
            .iter()
            .zip(fetch::assignments(&client, &instance, &pairs))
        {
            let entry = outcome
                .get_mut(account)
                .expect("every paired account has an outcome");
            match (entry, result) {
                (Ok(grants), Ok(assignments)) => {
                    let id = ResourceId::new(ACCOUNT, *account);
                    grants.extend(sso_mapping::assignment_grants(
                        region,
                        store,
                        &id,
                        ps,
                        &assignments,
                    ));
                }
                (entry @ Ok(_), Err(e)) => *entry = Err(e.into()),
                (Err(_), _) => {}
            }
        }
        let mut state = self.sso.borrow_mut();
        for (account, grants) in outcome {
            state.grants.insert(
                ResourceId::new(ACCOUNT, account),
                grants.map(|g| Held::Grants(Rc::new(g))),
            );
        }
        Ok(())
    }
}

fn not_provisionable(entitlement: &str) -> ConnectorError {
    ConnectorError::InvalidArgument(format!(
        "{entitlement} cannot be granted or revoked: this connector provisions IAM group membership, \
         Identity Center group membership and account assignments (with Organizations and Identity Center on)"
    ))
}

/// One page of a full list, each item mapped; the token is the offset of the next item.
fn paged<S, T>(
    all: &[S],
    page_token: Option<&str>,
    map: impl FnMut(&S) -> T,
) -> Result<Page<T>, ConnectorError> {
    let start = match page_token {
        None | Some("") => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| ConnectorError::Fatal(format!("invalid page token {t:?}")))?,
    };
    if start > all.len() {
        return Err(ConnectorError::Fatal(format!(
            "page token {start} is past the end"
        )));
    }
    let end = (start + PAGE_ITEMS).min(all.len());
    let next = (end < all.len()).then(|| end.to_string());
    Ok(Page {
        items: all[start..end].iter().map(map).collect(),
        next_page_token: next,
        warnings: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_slice_and_end() {
        let all: Vec<usize> = (0..1_100).collect();
        let p1 = paged(&all, None, |x| *x).unwrap();
        assert_eq!(
            (p1.items.len(), p1.next_page_token.as_deref()),
            (500, Some("500"))
        );
        let p3 = paged(&all, Some("1000"), |x| *x).unwrap();
        assert_eq!(
            (p3.items[0], p3.items.len(), p3.next_page_token),
            (1000, 100, None)
        );
        assert!(paged(&all, Some("x"), |x| *x).is_err());
        assert!(paged(&all, Some("5000"), |x| *x).is_err());
        assert_eq!(
            paged(&Vec::<u8>::new(), None, |x| *x)
                .unwrap()
                .next_page_token,
            None
        );
    }

    #[test]
    fn configure_reports_the_hosts_it_will_call() {
        let (_, c) = Connector::configure(&[("global-region".into(), "eu-west-1".into())]).unwrap();
        assert_eq!(
            c.outbound_hosts,
            ["iam.amazonaws.com", "sts.eu-west-1.amazonaws.com"]
        );
        let (_, c) =
            Connector::configure(&[("endpoint-url".into(), "http://127.0.0.1:5000".into())])
                .unwrap();
        assert_eq!(c.outbound_hosts, ["127.0.0.1:5000"]);
    }
}
