//! A fault-injecting HTTP proxy between the host (and its component) and the emulator. It
//! answers with each AWS protocol's real error shapes — IAM/STS `Throttling` (400, XML),
//! Identity Store / SSO Admin `ThrottlingException` with `RetryAfterSeconds`, Organizations
//! `TooManyRequestsException`, 500/503, expired tokens — or adds latency, drops the
//! connection, or truncates the body; and it records every request it saw.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
pub struct Faults {
    pub seed: u64,
    /// Share of requests answered with the protocol's throttling error.
    pub throttle: f64,
    /// Share answered 500 or 503 (alternately).
    pub server_error: f64,
    /// Share whose connection is closed without an answer.
    pub drop: f64,
    /// Share whose answer stops half-way through the body.
    pub truncate: f64,
    /// Added to every request.
    pub latency: Duration,
    /// Throttle the first request of every operation, so every protocol's shape is seen.
    pub throttle_first_of_each: bool,
    /// Throttle the first N requests of these operations (e.g. `ListGroupMemberships`).
    pub throttle_first: Vec<(&'static str, usize)>,
    /// `RetryAfterSeconds` in the JSON throttling errors.
    pub retry_after_secs: u64,
    /// Answer 503 to every request after the first N.
    pub fail_after: Option<usize>,
    /// The first session token seen is expired: every request carrying it is refused.
    pub expire_first_token: bool,
    /// AssumeRole sessions last this long: their `Expiration` is rewritten to say so, and
    /// a request carrying their token after that is refused as expired.
    pub session_seconds: Option<u64>,
}

/// One request as the proxy saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub operation: String,
    pub fault: &'static str,
    /// The session token it carried.
    pub token: Option<String>,
    pub arrived: Instant,
    pub answered: Instant,
}

struct State {
    faults: Faults,
    rng: u64,
    count: usize,
    per_operation: HashMap<String, usize>,
    expired_token: Option<String>,
    seen_tokens: HashSet<String>,
    /// Session tokens the proxy shortened, and when they expire.
    sessions: HashMap<String, Instant>,
}

pub struct FaultProxy {
    pub address: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    pub fn start(upstream: &str, faults: Faults) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let upstream = upstream.trim_start_matches("http://").to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(Mutex::new(State {
            rng: faults.seed.max(1),
            faults,
            count: 0,
            per_operation: HashMap::new(),
            expired_token: None,
            seen_tokens: HashSet::new(),
            sessions: HashMap::new(),
        }));
        let (log, shared) = (seen.clone(), state.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (upstream, state, log) = (upstream.clone(), state.clone(), log.clone());
                std::thread::spawn(move || serve(stream, &upstream, &state, &log));
            }
        });
        FaultProxy {
            address,
            seen,
            state: shared,
        }
    }

    /// Changes the faults from the next request on (the same address: the host sees
    /// the same endpoint, e.g. a service that comes back).
    pub fn set_faults(&self, faults: Faults) {
        self.state.lock().unwrap().faults = faults;
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests got `fault` (`"none"` for the ones passed through).
    pub fn count(&self, fault: &str) -> usize {
        self.seen().iter().filter(|s| s.fault == fault).count()
    }
}

struct Request {
    head: Vec<String>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.iter().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// `identitystore:ListUsers`-style: the JSON target or the Query action.
    fn operation(&self) -> String {
        if let Some(target) = self.header("x-amz-target") {
            let (prefix, op) = target.split_once('.').unwrap_or(("", target));
            let service = if prefix.starts_with("AWSIdentityStore") {
                "identitystore"
            } else if prefix.starts_with("SWBExternalService") {
                "sso"
            } else if prefix.starts_with("AWSOrganizations") {
                "organizations"
            } else {
                "json"
            };
            return format!("{service}:{op}");
        }
        let body = String::from_utf8_lossy(&self.body);
        let action = body
            .split('&')
            .find_map(|kv| kv.strip_prefix("Action="))
            .unwrap_or("unknown");
        let service = if action.starts_with("AssumeRole") || action == "GetCallerIdentity" {
            "sts"
        } else {
            "iam"
        };
        format!("{service}:{action}")
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    let mut req = Request { head, body: vec![] };
    let length: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    req.body = vec![0; length];
    reader.read_exact(&mut req.body).ok()?;
    Some(req)
}

fn decide(state: &Mutex<State>, req: &Request, op: &str) -> &'static str {
    let mut s = state.lock().unwrap();
    s.count += 1;
    let nth_of_op = {
        let n = s.per_operation.entry(op.to_string()).or_default();
        *n += 1;
        *n
    };
    if let Some(token) = req.header("x-amz-security-token") {
        if s.faults.expire_first_token {
            let first = s
                .expired_token
                .get_or_insert_with(|| token.to_string())
                .clone();
            if first == token {
                return "expired";
            }
        }
        if s.sessions.get(token).is_some_and(|t| Instant::now() >= *t) {
            return "expired";
        }
        s.seen_tokens.insert(token.to_string());
    }
    if s.faults.fail_after.is_some_and(|n| s.count > n) {
        return "503";
    }
    if s.faults.throttle_first_of_each && nth_of_op == 1 {
        return "throttle";
    }
    let short = op.split(':').nth(1).unwrap_or(op);
    if s.faults
        .throttle_first
        .iter()
        .any(|(name, n)| *name == short && nth_of_op <= *n)
    {
        return "throttle";
    }
    // xorshift64: reproducible for a seed (the order of concurrent requests is not).
    let mut roll = || {
        s.rng ^= s.rng << 13;
        s.rng ^= s.rng >> 7;
        s.rng ^= s.rng << 17;
        (s.rng >> 11) as f64 / (1u64 << 53) as f64
    };
    let r = roll();
    let f = s.faults.clone();
    let mut edge = f.throttle;
    if r < edge {
        return "throttle";
    }
    edge += f.server_error;
    if r < edge {
        return if s.count.is_multiple_of(2) {
            "500"
        } else {
            "503"
        };
    }
    edge += f.drop;
    if r < edge {
        return "drop";
    }
    edge += f.truncate;
    if r < edge {
        return "truncate";
    }
    "none"
}

/// The error a fault answers with, in the request's protocol: (status, headers, body).
fn error_reply(req: &Request, op: &str, fault: &str, retry_after: u64) -> (u16, String, String) {
    let json = req.header("x-amz-target").is_some();
    let (status, code, message) = match fault {
        "throttle" if op.starts_with("organizations:") => (
            400,
            "TooManyRequestsException",
            "AWS Organizations can't complete your request because another request is already in progress",
        ),
        "throttle" if json => (400, "ThrottlingException", "Rate exceeded"),
        "throttle" => (400, "Throttling", "Rate exceeded"),
        "500" if json => (500, "InternalServerException", "An internal error occurred"),
        "500" => (500, "InternalFailure", "An internal error occurred"),
        "503" if json => (503, "ServiceUnavailableException", "Service unavailable"),
        "503" => (503, "ServiceUnavailable", "Service unavailable"),
        _ if json => (400, "ExpiredTokenException", "The security token included in the request is expired"),
        _ => (403, "ExpiredToken", "The security token included in the request is expired"),
    };
    if json {
        let mut body = serde_json::json!({"__type": code, "message": message});
        if code == "ThrottlingException" {
            body["RetryAfterSeconds"] = retry_after.into();
        }
        (
            status,
            format!("Content-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: {code}\r\n"),
            body.to_string(),
        )
    } else {
        let kind = if status >= 500 { "Receiver" } else { "Sender" };
        (
            status,
            "Content-Type: text/xml\r\n".to_string(),
            format!("<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>"),
        )
    }
}

fn serve(stream: TcpStream, upstream: &str, state: &Mutex<State>, log: &Mutex<Vec<Seen>>) {
    let mut client = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader) {
        let arrived = Instant::now();
        let op = req.operation();
        let fault = decide(state, &req, &op);
        let (latency, retry_after) = {
            let s = state.lock().unwrap();
            (s.faults.latency, s.faults.retry_after_secs)
        };
        std::thread::sleep(latency);
        let record = |fault: &'static str| {
            log.lock().unwrap().push(Seen {
                operation: op.clone(),
                fault,
                token: req.header("x-amz-security-token").map(str::to_string),
                arrived,
                answered: Instant::now(),
            });
        };
        match fault {
            "drop" => {
                record(fault);
                return;
            }
            "none" | "truncate" => {
                let Some(mut answer) = forward(upstream, &req) else {
                    return;
                };
                if op == "sts:AssumeRole" {
                    answer = shorten_session(state, answer);
                }
                if fault == "truncate" {
                    let split = answer
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map_or(answer.len(), |p| p + 4);
                    let cut = split + (answer.len() - split) / 2;
                    let _ = client.write_all(&answer[..cut]);
                    record(fault);
                    return;
                }
                if client.write_all(&answer).is_err() {
                    return;
                }
                record(fault);
            }
            _ => {
                let (status, headers, body) = error_reply(&req, &op, fault, retry_after);
                let reply = format!(
                    "HTTP/1.1 {status} Fault\r\n{headers}Content-Length: {}\r\nx-amzn-RequestId: fault-proxy\r\n\r\n{body}",
                    body.len()
                );
                if client.write_all(reply.as_bytes()).is_err() {
                    return;
                }
                record(fault);
            }
        }
    }
}

/// Rewrites an AssumeRole answer's `Expiration` to `session_seconds` from now and
/// remembers its token, so that the session really ends then.
fn shorten_session(state: &Mutex<State>, answer: Vec<u8>) -> Vec<u8> {
    let mut s = state.lock().unwrap();
    let Some(seconds) = s.faults.session_seconds else {
        return answer;
    };
    let text = String::from_utf8(answer).expect("an STS answer is text");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let between = |open: &str, close: &str| -> Option<(usize, usize)> {
        let start = body.find(open)? + open.len();
        Some((start, start + body[start..].find(close)?))
    };
    let (Some((es, ee)), Some((ts, te))) = (
        between("<Expiration>", "</Expiration>"),
        between("<SessionToken>", "</SessionToken>"),
    ) else {
        return text.into_bytes();
    };
    let ends = time::OffsetDateTime::now_utc() + Duration::from_secs(seconds);
    let iso = ends
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    s.sessions.insert(
        body[ts..te].to_string(),
        Instant::now() + Duration::from_secs(seconds),
    );
    let body = format!("{}{iso}{}", &body[..es], &body[ee..]);
    let head: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("content-length:"))
        .collect();
    format!(
        "{}\r\nContent-Length: {}\r\n\r\n{body}",
        head.join("\r\n"),
        body.len()
    )
    .into_bytes()
}

/// Sends the request upstream on a fresh connection and returns the whole answer, rewritten
/// to a fixed Content-Length so that the client's connection can carry on.
fn forward(upstream: &str, req: &Request) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect(upstream).ok()?;
    let mut out = Vec::new();
    for (i, line) in req.head.iter().enumerate() {
        if i > 0 && line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(&req.body);
    up.write_all(&out).ok()?;
    let mut reader = BufReader::new(up);
    let mut status_and_headers = Vec::new();
    let mut length = None;
    let mut chunked = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            break;
        }
        let lower = trimmed.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
            continue;
        }
        if lower.starts_with("transfer-encoding:") {
            chunked = lower.contains("chunked");
            continue;
        }
        if lower.starts_with("connection:") {
            continue;
        }
        status_and_headers.push(trimmed.to_string());
    }
    let body = match (length, chunked) {
        (Some(n), _) => {
            let mut b = vec![0; n];
            reader.read_exact(&mut b).ok()?;
            b
        }
        (None, true) => read_chunked(&mut reader)?,
        (None, false) => {
            let mut b = Vec::new();
            reader.read_to_end(&mut b).ok()?;
            b
        }
    };
    let mut answer = status_and_headers.join("\r\n").into_bytes();
    answer.extend_from_slice(format!("\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes());
    answer.extend_from_slice(&body);
    Some(answer)
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        let mut chunk = vec![0; n + 2];
        reader.read_exact(&mut chunk).ok()?;
        if n == 0 {
            return Some(body);
        }
        body.extend_from_slice(&chunk[..n]);
    }
}
