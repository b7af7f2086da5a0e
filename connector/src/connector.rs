//! The connector: metadata, configuration, and the list calls the host drives.

use crate::aws::{AwsClient, Endpoints, Service};
use crate::iam::details::AuthorizationDetails;
use crate::iam::mapping::{self, IamIndex};
use crate::model::*;
use crate::platform::Platform;
use crate::resource_types::{self, GROUP, IAM_USER, ROLE};
use crate::settings::{self, Config};
use crate::sts;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Items per page handed to the host: big enough to keep per-page overhead low, small
/// enough that one page's transaction stays short.
const PAGE_ITEMS: usize = 500;
const CACHE_KEY_DETAILS: &str = "iam:authorization-details:v1";

pub fn metadata() -> Metadata {
    Metadata {
        name: "aws",
        display_name: "AWS",
        version: env!("CARGO_PKG_VERSION"),
        description: "IAM users, groups and roles of an AWS account, with group memberships and who can assume each role",
        resource_types: resource_types::enabled(),
        capabilities: vec![
            Capability {
                name: "sync",
                enabled_by: None,
                permissions: vec!["iam:GetAccountAuthorizationDetails", "iam:ListUsers", "iam:ListRoles"],
                description: "Read IAM users, groups, memberships and role trust policies",
            },
        ],
        settings: settings::specs(),
        outbound_hosts: vec![
            "iam.amazonaws.com".into(),
            "sts.*.amazonaws.com".into(),
        ],
    }
}

pub struct Connector {
    endpoints: Endpoints,
    snapshot: RefCell<Option<Rc<Snapshot>>>,
}

/// One sync's view of the account: the entities and every grant between them, computed
/// once so that each per-resource call is a lookup.
struct Snapshot {
    details: AuthorizationDetails,
    /// Grants per resource id; `Err` holds why a role's trust policy could not be read.
    grants: HashMap<ResourceId, Result<Vec<Grant>, String>>,
}

impl Snapshot {
    fn new(details: AuthorizationDetails) -> Snapshot {
        let index = IamIndex::new(&details);
        let mut grants = HashMap::new();
        for g in &details.groups {
            let id = ResourceId::new(GROUP, &g.arn);
            grants.insert(id.clone(), Ok(index.group_grants(&id)));
        }
        for r in &details.roles {
            let id = ResourceId::new(ROLE, &r.arn);
            grants.insert(id.clone(), index.role_grants(&id));
        }
        Snapshot { details, grants }
    }
}

impl Connector {
    pub fn configure(
        settings: &[(String, String)],
    ) -> Result<(Connector, Configured), ConnectorError> {
        let config = Config::parse(settings)?;
        let endpoints = Endpoints::new(&config.region, config.endpoint_url.as_deref())
            .map_err(|e| ConnectorError::invalid_config("AWS_ENDPOINT_URL", e))?;
        let configured = Configured {
            outbound_hosts: endpoints.authorities(&[Service::Iam, Service::Sts]),
            resource_types: resource_types::enabled(),
        };
        Ok((
            Connector {
                endpoints,
                snapshot: RefCell::new(None),
            },
            configured,
        ))
    }

    fn client<'a, P: Platform>(&'a self, platform: &'a P) -> AwsClient<'a, P> {
        AwsClient::new(platform, &self.endpoints)
    }

    pub fn validate<P: Platform>(&self, platform: &P) -> Result<String, ConnectorError> {
        let result = self
            .client(platform)
            .query(Service::Sts, "GetCallerIdentity", &[])?;
        let me = sts::parse_caller_identity(&result).map_err(ConnectorError::Fatal)?;
        Ok(format!("AWS account {} as {}", me.account, me.arn))
    }

    /// The account's IAM entities, fetched once per sync and shared through the host cache.
    fn snapshot<P: Platform>(&self, platform: &P) -> Result<Rc<Snapshot>, ConnectorError> {
        if let Some(s) = self.snapshot.borrow().as_ref() {
            return Ok(s.clone());
        }
        let cached = platform
            .cache_get(CACHE_KEY_DETAILS)
            .and_then(|bytes| serde_json::from_slice::<AuthorizationDetails>(&bytes).ok());
        let details = match cached {
            Some(d) => d,
            None => {
                let d = AuthorizationDetails::fetch(&self.client(platform))?;
                let bytes =
                    serde_json::to_vec(&d).map_err(|e| ConnectorError::Fatal(e.to_string()))?;
                platform.cache_set(CACHE_KEY_DETAILS, &bytes);
                d
            }
        };
        let snapshot = Rc::new(Snapshot::new(details));
        *self.snapshot.borrow_mut() = Some(snapshot.clone());
        Ok(snapshot)
    }

    pub fn list_resources<P: Platform>(
        &self,
        platform: &P,
        resource_type: &str,
        parent: Option<&ResourceId>,
        page_token: Option<&str>,
    ) -> Result<Page<Resource>, ConnectorError> {
        if parent.is_some() {
            return Ok(Page::last(vec![]));
        }
        let snapshot = self.snapshot(platform)?;
        let details = &snapshot.details;
        let all: Vec<Resource> = match resource_type {
            IAM_USER => details.users.iter().map(mapping::user_resource).collect(),
            GROUP => details.groups.iter().map(mapping::group_resource).collect(),
            ROLE => details.roles.iter().map(mapping::role_resource).collect(),
            other => {
                return Err(ConnectorError::NotFound(format!(
                    "unknown resource type {other:?}"
                )))
            }
        };
        paged(all, page_token)
    }

    pub fn list_entitlements(
        &self,
        resource: &Resource,
        page_token: Option<&str>,
    ) -> Result<Page<Entitlement>, ConnectorError> {
        let items = match resource.id.resource_type.as_str() {
            GROUP => vec![mapping::membership_entitlement(resource, "IAM")],
            ROLE => vec![mapping::role_entitlement(resource)],
            _ => vec![],
        };
        paged(items, page_token)
    }

    pub fn list_grants<P: Platform>(
        &self,
        platform: &P,
        resource: &Resource,
        page_token: Option<&str>,
    ) -> Result<Page<Grant>, ConnectorError> {
        let snapshot = self.snapshot(platform)?;
        match snapshot.grants.get(&resource.id) {
            Some(Ok(grants)) => paged(grants.clone(), page_token),
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

/// Slices a full list into pages; the token is the offset of the next item.
fn paged<T>(mut all: Vec<T>, page_token: Option<&str>) -> Result<Page<T>, ConnectorError> {
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
    all.truncate(end);
    let items = all.split_off(start);
    Ok(Page {
        items,
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
        let p1 = paged(all.clone(), None).unwrap();
        assert_eq!(
            (p1.items.len(), p1.next_page_token.as_deref()),
            (500, Some("500"))
        );
        let p3 = paged(all.clone(), Some("1000")).unwrap();
        assert_eq!(
            (p3.items[0], p3.items.len(), p3.next_page_token),
            (1000, 100, None)
        );
        assert!(paged(all.clone(), Some("x")).is_err());
        assert!(paged(all, Some("5000")).is_err());
        assert_eq!(paged(Vec::<u8>::new(), None).unwrap().next_page_token, None);
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
