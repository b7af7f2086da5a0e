//! The AWS connector component: binds the logic in `aws-connector-core` to the
//! `baton:connector` contract and to `wasi:http`.

mod convert;
mod http;
mod platform;

wit_bindgen::generate!({ world: "plugin", path: "../wit" });

use aws_connector_core::connector::{self, Connector};
use aws_connector_core::model::ConnectorError as CoreError;
use baton::connector::types as wit;
use exports::baton::connector::connector::Guest;
use platform::WasiPlatform;
use std::cell::RefCell;

thread_local! {
    static STATE: RefCell<Option<Connector>> = const { RefCell::new(None) };
}

fn with_connector<T>(
    f: impl FnOnce(&Connector, &WasiPlatform) -> Result<T, CoreError>,
) -> Result<T, wit::ConnectorError> {
    STATE.with(|s| {
        let state = s.borrow();
        let connector = state.as_ref().ok_or_else(|| {
            wit::ConnectorError::Fatal("the host called the connector before configure".into())
        })?;
        f(connector, &WasiPlatform).map_err(convert::error)
    })
}

struct Component;

impl Guest for Component {
    fn get_metadata() -> wit::Metadata {
        convert::metadata(connector::metadata())
    }

    fn configure(settings: Vec<wit::Setting>) -> Result<wit::Configured, wit::ConnectorError> {
        let pairs: Vec<(String, String)> =
            settings.into_iter().map(|s| (s.name, s.value)).collect();
        let (connector, configured) = Connector::configure(&pairs).map_err(convert::error)?;
        STATE.with(|s| *s.borrow_mut() = Some(connector));
        Ok(convert::configured(configured))
    }

    fn validate() -> Result<String, wit::ConnectorError> {
        with_connector(|c, p| c.validate(p))
    }

    fn list_resources(
        resource_type: String,
        parent: Option<wit::ResourceId>,
        page_token: Option<String>,
    ) -> Result<wit::ResourcePage, wit::ConnectorError> {
        let parent = parent.map(convert::resource_id_in);
        with_connector(|c, p| {
            c.list_resources(p, &resource_type, parent.as_ref(), page_token.as_deref())
        })
        .map(convert::resource_page)
    }

    fn list_entitlements(
        resource: wit::Resource,
        page_token: Option<String>,
    ) -> Result<wit::EntitlementPage, wit::ConnectorError> {
        let resource = convert::resource_in(resource);
        with_connector(|c, p| c.list_entitlements(p, &resource, page_token.as_deref()))
            .map(convert::entitlement_page)
    }

    fn list_grants(
        resource: wit::Resource,
        page_token: Option<String>,
    ) -> Result<wit::GrantPage, wit::ConnectorError> {
        let resource = convert::resource_in(resource);
        with_connector(|c, p| c.list_grants(p, &resource, page_token.as_deref()))
            .map(convert::grant_page)
    }

    fn grant_entitlement(
        entitlement: wit::Entitlement,
        principal: wit::Resource,
    ) -> Result<wit::ProvisionResult, wit::ConnectorError> {
        let entitlement = convert::entitlement_in(entitlement);
        let principal = convert::resource_in(principal);
        with_connector(|c, p| c.grant(p, &entitlement, &principal)).map(convert::provision_result)
    }

    fn revoke_grant(grant: wit::Grant) -> Result<Vec<wit::Annotation>, wit::ConnectorError> {
        let grant = convert::grant_in(grant);
        with_connector(|c, p| c.revoke(p, &grant)).map(convert::annotations)
    }
}

export!(Component);
