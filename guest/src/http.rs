//! Blocking HTTP over `wasi:http/outgoing-handler`, written around its known traps:
//! no `host` header (the host derives it from the authority), an explicit
//! `content-length`, `handle` before the body is written, body writes of at most 4096
//! bytes, and timeouts on every request.

use aws_connector_core::platform::{HttpRequest, HttpResponse, Scheme, TransportError};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, Method, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme as WasiScheme,
};
use wasip2::io::streams::StreamError;

const CONNECT_TIMEOUT_NS: u64 = 10_000_000_000;
const RESPONSE_TIMEOUT_NS: u64 = 120_000_000_000;
const WRITE_CHUNK: usize = 4096;

/// A request whose body is written and whose response is on its way.
pub struct InFlight {
    url: String,
    future: FutureIncomingResponse,
    written: Result<(), TransportError>,
}

pub fn send(req: &HttpRequest) -> Result<HttpResponse, TransportError> {
    receive(start(req)?)
}

/// Starts every request before waiting for any: the host sends them concurrently, so a
/// batch takes about as long as its slowest request.
pub fn send_many(reqs: &[HttpRequest]) -> Vec<Result<HttpResponse, TransportError>> {
    let started: Vec<_> = reqs.iter().map(start).collect();
    started.into_iter().map(|s| s.and_then(receive)).collect()
}

fn start(req: &HttpRequest) -> Result<InFlight, TransportError> {
    let fields = Fields::new();
    for (name, value) in &req.headers {
        fields
            .append(name, value.as_bytes())
            .map_err(|e| TransportError::Connection(format!("header {name} rejected: {e:?}")))?;
    }
    fields
        .append("content-length", req.body.len().to_string().as_bytes())
        .map_err(|e| TransportError::Connection(format!("content-length rejected: {e:?}")))?;
    let request = OutgoingRequest::new(fields);
    let scheme = match req.scheme {
        Scheme::Http => WasiScheme::Http,
        Scheme::Https => WasiScheme::Https,
    };
    let invalid =
        |what: &str| TransportError::Connection(format!("invalid {what} for {}", req.url()));
    let method = match req.method {
        "GET" => Method::Get,
        _ => Method::Post,
    };
    request.set_method(&method).map_err(|_| invalid("method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|_| invalid("scheme"))?;
    request
        .set_authority(Some(&req.authority))
        .map_err(|_| invalid("authority"))?;
    request
        .set_path_with_query(Some(&req.path))
        .map_err(|_| invalid("path"))?;
    let body = request.body().map_err(|_| invalid("body"))?;

    let options = RequestOptions::new();
    // The host clamps these too; asking keeps a well-behaved guest from waiting 600 s.
    let _ = options.set_connect_timeout(Some(CONNECT_TIMEOUT_NS));
    let _ = options.set_first_byte_timeout(Some(RESPONSE_TIMEOUT_NS));
    let _ = options.set_between_bytes_timeout(Some(RESPONSE_TIMEOUT_NS));

    let future = outgoing_handler::handle(request, Some(options)).map_err(transport_error)?;
    let written = write_body(body, &req.body);
    Ok(InFlight {
        url: req.url(),
        future,
        written,
    })
}

fn receive(flight: InFlight) -> Result<HttpResponse, TransportError> {
    let InFlight {
        url,
        future,
        written,
    } = flight;
    future.subscribe().block();
    // When the host refuses the request it also closes the body: its reason wins.
    let response = match future.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(code))) => return Err(transport_error(code)),
        Some(Err(())) | None => {
            return Err(TransportError::Connection(
                "the response was already taken".into(),
            ))
        }
    };
    written?;
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|_| TransportError::Connection("response body unavailable".into()))?;
    let mut body = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|_| TransportError::Connection("response body stream unavailable".into()))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(e) => {
                    return Err(TransportError::Connection(format!(
                        "reading the response from {} failed: {}",
                        url,
                        stream_error(e)
                    )))
                }
            }
        }
    }
    drop(IncomingBody::finish(incoming));
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), TransportError> {
    {
        let stream = body
            .write()
            .map_err(|_| TransportError::Connection("request body stream unavailable".into()))?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream.blocking_write_and_flush(chunk).map_err(|e| {
                TransportError::Connection(format!(
                    "writing the request body failed: {}",
                    stream_error(e)
                ))
            })?;
        }
    }
    OutgoingBody::finish(body, None).map_err(transport_error)
}

fn stream_error(e: StreamError) -> String {
    match e {
        StreamError::Closed => "stream closed".into(),
        StreamError::LastOperationFailed(err) => err.to_debug_string(),
    }
}

fn transport_error(code: ErrorCode) -> TransportError {
    match code {
        ErrorCode::HttpRequestDenied => {
            TransportError::Denied("HTTP request denied by the host's outbound allow-list".into())
        }
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::DnsTimeout => TransportError::Timeout(format!("{code:?}")),
        other => TransportError::Connection(format!("{other:?}")),
    }
}
