//! The host's own HTTP client, for the calls it makes itself (STS AssumeRole).

use crate::outbound::{CONNECT_TIMEOUT, OVERALL_TIMEOUT, RESPONSE_TIMEOUT};
use anyhow::{Context, Result};
use aws_connector_core::platform::{HttpRequest, HttpResponse};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::RequestOptions;

pub async fn send(req: &HttpRequest) -> Result<HttpResponse> {
    let url = req.url();
    let mut builder = http::Request::builder()
        .method(req.method)
        .uri(&url)
        .header("host", &req.authority);
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    builder = builder.header("content-length", req.body.len().to_string());
    let body = Full::new(Bytes::from(req.body.clone())).map_err(|never| match never {});
    let request = builder
        .body(body)
        .with_context(|| format!("cannot build the request to {url}"))?;
    let options = RequestOptions {
        connect_timeout: Some(CONNECT_TIMEOUT),
        first_byte_timeout: Some(RESPONSE_TIMEOUT),
        between_bytes_timeout: Some(RESPONSE_TIMEOUT),
    };
    let work = async {
        let (response, io) = wasmtime_wasi_http::default_send_request(request, Some(options))
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let driver = tokio::spawn(io);
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .to_bytes()
            .to_vec();
        driver.abort();
        Ok::<_, anyhow::Error>(HttpResponse {
            status,
            headers,
            body,
        })
    };
    tokio::time::timeout(OVERALL_TIMEOUT, work)
        .await
        .map_err(|_| anyhow::anyhow!("no answer from {url} within {}s", OVERALL_TIMEOUT.as_secs()))?
        .with_context(|| format!("request to {url} failed"))
}
