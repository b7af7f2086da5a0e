//! The serving host's HTTP side: `/healthz`, `/readyz`, `/metrics`, and the `/v1` API
//! (status, sync now, grant, revoke) behind a bearer token, with an audit line per request.

use super::connector::{Action, Failure, Handle, Job};
use crate::log;
use crate::metrics;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

/// Request bodies are small JSON documents.
const MAX_BODY: usize = 64 * 1024;

type Handles = Arc<Vec<Arc<Handle>>>;

pub async fn serve(
    listener: TcpListener,
    handles: Handles,
    token: Option<String>,
    mut stop: watch::Receiver<bool>,
) {
    let token = Arc::new(token);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
            _ = stop.changed() => {
                // Keep answering probes while connectors drain: readyz now says 503.
                accept_while_draining(&listener, &handles, &token).await;
                return;
            }
        };
        spawn_connection(stream, remote, handles.clone(), token.clone(), true);
    }
}

async fn accept_while_draining(
    listener: &TcpListener,
    handles: &Handles,
    token: &Arc<Option<String>>,
) {
    while let Ok((stream, remote)) = listener.accept().await {
        spawn_connection(stream, remote, handles.clone(), token.clone(), false);
    }
}

fn spawn_connection(
    stream: tokio::net::TcpStream,
    remote: SocketAddr,
    handles: Handles,
    token: Arc<Option<String>>,
    ready: bool,
) {
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |req| {
            let handles = handles.clone();
            let token = token.clone();
            async move {
                Ok::<_, std::convert::Infallible>(
                    route(req, remote, &handles, token.as_deref(), ready).await,
                )
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
    });
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts")
}

fn json_reply(status: StatusCode, v: Value) -> Response<Full<Bytes>> {
    reply(status, "application/json", format!("{v}\n"))
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_reply(status, json!({ "error": message }))
}

async fn route(
    req: Request<Incoming>,
    remote: SocketAddr,
    handles: &Handles,
    token: Option<&str>,
    ready: bool,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        (&Method::GET, "/readyz") => readyz(handles, ready),
        (&Method::GET, "/metrics") => {
            let snapshot: Vec<(String, crate::metrics::ConnectorMetrics)> = handles
                .iter()
                .map(|h| {
                    (
                        h.name.clone(),
                        h.metrics.lock().expect("metrics lock").clone(),
                    )
                })
                .collect();
            let series: Vec<(&str, &crate::metrics::ConnectorMetrics)> =
                snapshot.iter().map(|(n, m)| (n.as_str(), m)).collect();
            reply(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                metrics::render(&series),
            )
        }
        _ if path.starts_with("/v1/") => v1(req, remote, handles, token).await,
        _ => error(
            StatusCode::NOT_FOUND,
            "no such endpoint; see /healthz, /readyz, /metrics, /v1/connectors",
        ),
    }
}

fn readyz(handles: &Handles, ready: bool) -> Response<Full<Bytes>> {
    let mut states = serde_json::Map::new();
    let mut loading = false;
    for h in handles.iter() {
        let m = h.metrics.lock().expect("metrics lock");
        loading |= m.state == "starting";
        states.insert(
            h.name.clone(),
            json!({ "state": m.state, "last_error": m.last_error }),
        );
    }
    let ok = ready && !loading;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_reply(
        status,
        json!({ "ready": ok, "draining": !ready, "connectors": states }),
    )
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorised(req: &Request<Incoming>, token: &str) -> bool {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| same(given.trim().as_bytes(), token.as_bytes()))
}

async fn v1(
    req: Request<Incoming>,
    remote: SocketAddr,
    handles: &Handles,
    token: Option<&str>,
) -> Response<Full<Bytes>> {
    let Some(token) = token else {
        return error(
            StatusCode::FORBIDDEN,
            "the /v1 API is off: configure a bearer token ([server] api_token_env or api_token_file, or BATON_HOST_API_TOKEN)",
        );
    };
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    if !authorised(&req, token) {
        let named = path.split('/').nth(3).unwrap_or("");
        audit(&remote, &method, &path, named, &json!({}), "unauthorised");
        return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    let parts: Vec<&str> = path.trim_start_matches("/v1/").split('/').collect();
    if method == Method::GET && parts == ["connectors"] {
        let list: Vec<Value> = handles
            .iter()
            .map(|h| {
                let m = h.metrics.lock().expect("metrics lock");
                json!({
                    "name": h.name, "state": m.state, "provisioning": h.provisioning,
                    "syncs_succeeded": m.syncs_succeeded, "syncs_failed": m.syncs_failed,
                    "last_error": m.last_error, "pending_uploads": m.pending_uploads,
                })
            })
            .collect();
        return json_reply(StatusCode::OK, json!({ "connectors": list }));
    }
    let (name, verb) = match parts.as_slice() {
        ["connectors", name, verb] if method == Method::POST => (*name, *verb),
        _ => return error(StatusCode::NOT_FOUND, "no such endpoint; see GET /v1/connectors, POST /v1/connectors/{name}/sync|grant|revoke"),
    };
    let Some(handle) = handles.iter().find(|h| h.name == name) else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("no connector named {name:?}"),
        );
    };
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request bodies are limited to 64 KiB",
            )
        }
    };
    let request: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("the body is not JSON: {e}"),
                )
            }
        }
    };
    let field = |k: &str| request.get(k).and_then(Value::as_str).map(str::to_string);
    let action = match verb {
        "sync" => {
            handle.trigger.notify_one();
            audit(&remote, &method, &path, name, &request, "accepted");
            return json_reply(StatusCode::ACCEPTED, json!({ "sync": "requested" }));
        }
        "grant" => match (
            field("entitlement"),
            field("principal_type"),
            field("principal"),
        ) {
            (Some(entitlement), Some(principal_type), Some(principal)) => Action::Grant {
                entitlement,
                principal_type,
                principal,
            },
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "a grant needs entitlement, principal_type and principal",
                )
            }
        },
        "revoke" => match field("grant") {
            Some(grant) => Action::Revoke { grant },
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "a revoke needs grant (an id from `host grants`)",
                )
            }
        },
        other => {
            return error(
                StatusCode::NOT_FOUND,
                &format!("{other:?} is not one of sync, grant, revoke"),
            )
        }
    };
    // One audit line and one count per provisioning request, whatever its outcome.
    let record = |result: &'static str, outcome: &str| {
        audit(&remote, &method, &path, name, &request, outcome);
        let action = if verb == "grant" { "grant" } else { "revoke" };
        let mut m = handle.metrics.lock().expect("metrics lock");
        *m.provisioning.entry((action, result)).or_default() += 1;
    };
    if !handle.provisioning {
        record("refused", "refused: provisioning is off");
        return error(
            StatusCode::FORBIDDEN,
            &format!("provisioning is off for connector {name}, so nothing was changed: set provisioning = true in its configuration (or BATON_PROVISIONING=true)"),
        );
    }
    let (tx, rx) = oneshot::channel();
    if handle.jobs.send(Job { action, reply: tx }).is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the connector is stopping");
    }
    match rx.await {
        Ok(Ok(v)) => {
            record("success", "success");
            json_reply(StatusCode::OK, v)
        }
        Ok(Err(Failure::Unknown(why))) => {
            record("refused", &format!("refused: {why}"));
            error(StatusCode::NOT_FOUND, &why)
        }
        Ok(Err(Failure::Failed(why))) => {
            record("failure", &format!("failed: {why}"));
            error(StatusCode::BAD_GATEWAY, &why)
        }
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the connector stopped before answering",
        ),
    }
}

/// One line per `/v1` request: who asked what of which connector, and the outcome.
fn audit(
    remote: &SocketAddr,
    method: &Method,
    path: &str,
    connector: &str,
    request: &Value,
    outcome: &str,
) {
    let get = |k: &str| {
        request
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    log::info(
        "audit",
        &[
            ("remote", &remote.to_string()),
            ("method", method.as_str()),
            ("path", path),
            ("connector", connector),
            ("entitlement", &get("entitlement")),
            ("principal_type", &get("principal_type")),
            ("principal", &get("principal")),
            ("grant", &get("grant")),
            ("outcome", outcome),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"", b"a"));
    }
}
