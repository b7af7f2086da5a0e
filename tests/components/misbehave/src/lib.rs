//! A test connector for the host's isolation and sandbox tests. Its `mode` setting says
//! what `list-resources` does:
//! - `ok`: lists `count` things, or one thing per line of the `upstream` URL's answer;
//! - `spin`: loops forever (the CPU budget or the call timeout must stop it);
//! - `oom`: allocates without bound (the memory cap must stop it);
//! - `stack`: recurses without bound (the stack limit must stop it);
//! - `trap`: panics (an `unreachable` trap);
//! - `forbidden`: calls a host that is not on its allow-list and reports the outcome;
//! - `slow`: lists `count` pages of one thing each, `delay_ms` apart;
//! - `huge`: lists one thing whose name is `count` bytes long;
//! - `malformed`: lists one thing whose profile is not JSON.

wit_bindgen::generate!({ world: "plugin", path: "../../../wit" });

use baton::connector::types as wit;
use exports::baton::connector::connector::Guest;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

thread_local! {
    static SETTINGS: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

fn setting(name: &str) -> Option<String> {
    SETTINGS.with(|s| {
        s.borrow()
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    })
}

fn spec(name: &str, kind: wit::SettingKind, description: &str) -> wit::SettingSpec {
    wit::SettingSpec {
        name: name.into(),
        env: format!("MISBEHAVE_{}", name.to_uppercase()),
        kind,
        default_value: None,
        choices: vec![],
        description: description.into(),
    }
}

fn thing_type() -> wit::ResourceType {
    wit::ResourceType {
        id: "thing".into(),
        display_name: "Thing".into(),
        description: "Something listed by the test connector".into(),
        traits: vec![],
        annotations: vec![wit::Annotation::SkipEntitlementsAndGrants],
    }
}

fn thing(name: &str) -> wit::Resource {
    wit::Resource {
        id: wit::ResourceId {
            resource_type: "thing".into(),
            resource: name.into(),
        },
        parent: None,
        display_name: name.into(),
        description: None,
        traits: vec![],
        profile: None,
        status: wit::Status::Unspecified,
        created_at: None,
        annotations: vec![],
    }
}

/// `(scheme, authority, path)` of an http(s) URL.
fn split_url(url: &str) -> Option<(Scheme, String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Some((scheme, authority.to_string(), path.to_string()))
}

fn get(url: &str) -> Result<String, wit::ConnectorError> {
    let (scheme, authority, path) = split_url(url)
        .ok_or_else(|| wit::ConnectorError::Fatal(format!("{url} is not an http(s) URL")))?;
    let fields = Fields::new();
    let _ = fields.append("content-length", b"0");
    let request = OutgoingRequest::new(fields);
    let _ = request.set_method(&Method::Get);
    let _ = request.set_scheme(Some(&scheme));
    let _ = request.set_authority(Some(&authority));
    let _ = request.set_path_with_query(Some(&path));
    let body = request
        .body()
        .map_err(|_| wit::ConnectorError::Fatal("no request body".into()))?;
    let future = outgoing_handler::handle(request, None)
        .map_err(|e| wit::ConnectorError::Transient(format!("GET {url}: {e:?}")))?;
    let _ = OutgoingBody::finish(body, None);
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(e))) => {
            return Err(wit::ConnectorError::Transient(format!("GET {url}: {e:?}")))
        }
        _ => {
            return Err(wit::ConnectorError::Transient(format!(
                "GET {url}: no response"
            )))
        }
    };
    let status = response.status();
    let incoming = response
        .consume()
        .map_err(|_| wit::ConnectorError::Transient("no response body".into()))?;
    let mut text = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|_| wit::ConnectorError::Transient("no response stream".into()))?;
        while let Ok(chunk) = stream.blocking_read(65536) {
            text.extend_from_slice(&chunk);
        }
    }
    if status != 200 {
        return Err(wit::ConnectorError::Transient(format!(
            "GET {url}: HTTP {status}"
        )));
    }
    Ok(String::from_utf8_lossy(&text).into_owned())
}

static DEPTH: AtomicU64 = AtomicU64::new(0);

/// Recursion the optimiser cannot turn into a loop (the shared counter is read after each
/// call returns), with frames small enough to live on the wasm stack, not in memory.
#[allow(unconditional_recursion)]
fn recurse() -> u64 {
    DEPTH.fetch_add(1, Ordering::Relaxed);
    let below = recurse();
    below.wrapping_add(DEPTH.load(Ordering::Relaxed))
}

struct Component;

impl Guest for Component {
    fn get_metadata() -> wit::Metadata {
        wit::Metadata {
            name: "misbehave".into(),
            display_name: "Misbehaving test connector".into(),
            version: "0.1.0".into(),
            description: "Does what its mode setting says, for the host's tests".into(),
            resource_types: vec![thing_type()],
            capabilities: vec![],
            settings: vec![
                spec(
                    "mode",
                    wit::SettingKind::String,
                    "ok, spin, oom, stack, trap or forbidden",
                ),
                spec(
                    "count",
                    wit::SettingKind::String,
                    "how many things `ok` lists",
                ),
                spec(
                    "upstream",
                    wit::SettingKind::String,
                    "URL whose lines `ok` lists",
                ),
                spec(
                    "delay_ms",
                    wit::SettingKind::String,
                    "milliseconds between `slow` pages",
                ),
            ],
            outbound_hosts: vec![],
        }
    }

    fn configure(settings: Vec<wit::Setting>) -> Result<wit::Configured, wit::ConnectorError> {
        let pairs: Vec<(String, String)> =
            settings.into_iter().map(|s| (s.name, s.value)).collect();
        SETTINGS.with(|s| *s.borrow_mut() = pairs);
        let hosts = setting("upstream")
            .and_then(|u| split_url(&u))
            .map(|(_, authority, _)| vec![authority])
            .unwrap_or_default();
        Ok(wit::Configured {
            outbound_hosts: hosts,
            resource_types: vec![thing_type()],
        })
    }

    fn validate() -> Result<String, wit::ConnectorError> {
        Ok("misbehave".into())
    }

    fn list_resources(
        _resource_type: String,
        _parent: Option<wit::ResourceId>,
        page_token: Option<String>,
    ) -> Result<wit::ResourcePage, wit::ConnectorError> {
        let mode = setting("mode").unwrap_or_else(|| "ok".into());
        let names: Vec<String> = match mode.as_str() {
            "ok" => match setting("upstream") {
                Some(url) => get(&url)?.lines().map(str::to_string).collect(),
                None => {
                    let n: usize = setting("count").and_then(|c| c.parse().ok()).unwrap_or(3);
                    (0..n).map(|i| format!("thing-{i}")).collect()
                }
            },
            "spin" => {
                let mut x: u64 = 1;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            "oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "stack" => vec![recurse().to_string()],
            "trap" => panic!("the test connector traps on purpose"),
            "huge" => {
                let n: usize = setting("count")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(4 << 20);
                vec!["x".repeat(n)]
            }
            "malformed" => {
                let mut t = thing("bad");
                t.profile = Some("{not json".into());
                return Ok(wit::ResourcePage {
                    items: vec![t],
                    next_page_token: None,
                    warnings: vec![],
                });
            }
            "slow" => {
                let pages: u64 = setting("count").and_then(|c| c.parse().ok()).unwrap_or(3);
                let delay: u64 = setting("delay_ms")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(100);
                let page: u64 = page_token.and_then(|t| t.parse().ok()).unwrap_or(0);
                std::thread::sleep(std::time::Duration::from_millis(delay));
                return Ok(wit::ResourcePage {
                    items: vec![thing(&format!("page-{page}"))],
                    next_page_token: (page + 1 < pages).then(|| (page + 1).to_string()),
                    warnings: vec![],
                });
            }
            "forbidden" => match get("http://forbidden.example.com/") {
                Ok(_) => vec!["reached".into()],
                Err(e) => return Err(e),
            },
            other => {
                return Err(wit::ConnectorError::InvalidConfig(wit::InvalidConfig {
                    setting: "mode".into(),
                    reason: format!("{other:?} is not a mode"),
                }))
            }
        };
        Ok(wit::ResourcePage {
            items: names.iter().map(|n| thing(n)).collect(),
            next_page_token: None,
            warnings: vec![],
        })
    }

    fn list_entitlements(
        _resource: wit::Resource,
        _page_token: Option<String>,
    ) -> Result<wit::EntitlementPage, wit::ConnectorError> {
        Ok(wit::EntitlementPage {
            items: vec![],
            next_page_token: None,
            warnings: vec![],
        })
    }

    fn list_grants(
        _resource: wit::Resource,
        _page_token: Option<String>,
    ) -> Result<wit::GrantPage, wit::ConnectorError> {
        Ok(wit::GrantPage {
            items: vec![],
            next_page_token: None,
            warnings: vec![],
        })
    }

    fn grant_entitlement(
        _entitlement: wit::Entitlement,
        _principal: wit::Resource,
    ) -> Result<wit::ProvisionResult, wit::ConnectorError> {
        Err(wit::ConnectorError::Unsupported(
            "the test connector does not provision".into(),
        ))
    }

    fn revoke_grant(_grant: wit::Grant) -> Result<Vec<wit::Annotation>, wit::ConnectorError> {
        Err(wit::ConnectorError::Unsupported(
            "the test connector does not provision".into(),
        ))
    }
}

export!(Component);
