//! Delivering finished `.c1z` files: to a directory (keeping the newest N), by HTTP PUT
//! (e.g. to a pre-signed URL), or to an S3 bucket with a request the host signs itself.
//! Files wait in an outbox until delivered, so a failed upload is retried next time.

use crate::credentials::CredentialProvider;
use crate::http_client;
use anyhow::{anyhow, bail, Context, Result};
use aws_connector_core::aws::endpoints::parse_endpoint_url;
use aws_connector_core::platform::HttpRequest;
use aws_connector_core::sigv4::sign_request;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Upload attempts per file and delivery round.
const ATTEMPTS: u32 = 3;
/// Undelivered files kept in the outbox; older ones are dropped (a newer sync supersedes them).
const OUTBOX_LIMIT: usize = 5;

pub enum Sink {
    Dir {
        path: PathBuf,
        keep: usize,
    },
    Http {
        url: String,
        headers: Vec<(String, String)>,
    },
    S3 {
        bucket: String,
        prefix: String,
        region: String,
        endpoint_url: Option<String>,
        credentials: Box<CredentialProvider>,
    },
}

impl Sink {
    pub fn kind(&self) -> &'static str {
        match self {
            Sink::Dir { .. } => "dir",
            Sink::Http { .. } => "http",
            Sink::S3 { .. } => "s3",
        }
    }

    /// Delivers one file under `name`; returns where it went.
    async fn deliver(&self, file: &Path, name: &str) -> Result<String> {
        match self {
            Sink::Dir { path, keep } => to_dir(file, path, name, *keep),
            Sink::Http { url, headers } => {
                let body = std::fs::read(file)?;
                let mut request = put_request(url, body)?;
                request.headers.extend(headers.iter().cloned());
                send(request).await?;
                Ok(redact_query(url))
            }
            Sink::S3 {
                bucket,
                prefix,
                region,
                endpoint_url,
                credentials,
            } => {
                let key = format!("{prefix}{name}");
                let url = match endpoint_url {
                    Some(e) => format!("{}/{bucket}/{key}", e.trim_end_matches('/')),
                    None => format!("https://{bucket}.s3.{region}.amazonaws.com/{key}"),
                };
                let body = std::fs::read(file)?;
                let mut request = put_request(&url, body)?;
                let hash: String = Sha256::digest(&request.body)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                request.headers.push(("x-amz-content-sha256".into(), hash));
                let creds = credentials
                    .get(false)
                    .await
                    .map_err(|e| anyhow!("{}", crate::runtime::describe_error(&e)))?;
                sign_request(&mut request, &creds, region, "s3", SystemTime::now())
                    .map_err(|e| anyhow!(e))?;
                send(request).await?;
                Ok(format!("s3://{bucket}/{key}"))
            }
        }
    }
}

/// The outbox of one connector: finished syncs waiting for delivery.
pub struct Outbox {
    pub dir: PathBuf,
}

pub struct Delivered {
    pub to: Vec<String>,
    pub failures: Vec<String>,
    pub pending: usize,
}

impl Outbox {
    /// Puts a copy of a finished sync in the outbox under its upload name.
    pub fn add(&self, file: &Path, name: &str) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create the outbox {}", self.dir.display()))?;
        let tmp = self.dir.join(format!(".{name}.tmp"));
        std::fs::copy(file, &tmp)
            .with_context(|| format!("cannot copy {} to the outbox", file.display()))?;
        std::fs::rename(&tmp, self.dir.join(name))?;
        let mut files = self.files()?;
        while files.len() > OUTBOX_LIMIT {
            let oldest = files.remove(0);
            let _ = std::fs::remove_file(&oldest);
            crate::log::warn(
                "dropped an undelivered sync: a newer one supersedes it",
                &[("file", &oldest.display().to_string())],
            );
        }
        Ok(())
    }

    /// Waiting files, oldest first (names start with their time).
    pub fn files(&self) -> Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "c1z"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
            Err(e) => bail!("cannot read the outbox {}: {e}", self.dir.display()),
        };
        files.sort();
        Ok(files)
    }

    /// Tries to deliver every waiting file, oldest first, each with a few retries.
    pub async fn flush(&self, sink: &Sink) -> Result<Delivered> {
        let mut result = Delivered {
            to: vec![],
            failures: vec![],
            pending: 0,
        };
        for file in self.files()? {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("sync.c1z")
                .to_string();
            let mut attempt = 1;
            loop {
                match sink.deliver(&file, &name).await {
                    Ok(to) => {
                        let _ = std::fs::remove_file(&file);
                        result.to.push(to);
                        break;
                    }
                    Err(_) if attempt < ATTEMPTS => {
                        tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                        attempt += 1;
                    }
                    Err(e) => {
                        result.failures.push(format!("{name}: {e:#}"));
                        break;
                    }
                }
            }
        }
        result.pending = self.files()?.len();
        Ok(result)
    }
}

fn to_dir(file: &Path, dir: &Path, name: &str, keep: usize) -> Result<String> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the upload directory {}", dir.display()))?;
    let dest = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::copy(file, &tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &dest)?;
    // Keep the newest `keep` files of this connector (names sort by time).
    let connector = name.split('-').next().unwrap_or_default().to_string();
    let mut ours: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{connector}-")) && n.ends_with(".c1z"))
        })
        .collect();
    ours.sort();
    while ours.len() > keep.max(1) {
        let _ = std::fs::remove_file(ours.remove(0));
    }
    Ok(dest.display().to_string())
}

/// The file name a sync is uploaded under: connector, UTC time, sync id.
pub fn object_name(connector: &str, at: SystemTime, sync_id: &str) -> String {
    let t = time::OffsetDateTime::from(at);
    format!(
        "{connector}-{:04}{:02}{:02}T{:02}{:02}{:02}Z-{sync_id}.c1z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Checks an upload URL when the configuration is read, not at the first upload.
pub fn check_url(url: &str) -> Result<()> {
    put_request(url, Vec::new()).map(|_| ())
}

fn put_request(url: &str, body: Vec<u8>) -> Result<HttpRequest> {
    let (scheme_text, rest) = url
        .split_once("://")
        .with_context(|| format!("{} is not an http(s) URL", redact_query(url)))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (scheme, authority) = parse_endpoint_url(&format!("{scheme_text}://{authority}"))
        .map_err(|e| anyhow!("upload URL {}: {e}", redact_query(url)))?;
    Ok(HttpRequest {
        method: "PUT",
        scheme,
        authority,
        path: path.to_string(),
        headers: vec![("content-type".into(), "application/octet-stream".into())],
        body,
    })
}

async fn send(request: HttpRequest) -> Result<()> {
    let url = redact_query(&request.url());
    let response = http_client::send(&request)
        .await
        .map_err(|e| anyhow!("PUT {url}: {}", redact_query(&format!("{e:#}"))))?;
    if !(200..300).contains(&response.status) {
        let text = String::from_utf8_lossy(&response.body);
        let text: String = text.chars().take(300).collect();
        bail!("PUT {url} answered HTTP {}: {text}", response.status);
    }
    Ok(())
}

/// A URL without its query: pre-signed URLs carry their signature there.
pub fn redact_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_time_and_name_the_connector() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_824_683);
        assert_eq!(
            object_name("aws", t, "2abc"),
            "aws-20261128T001123Z-2abc.c1z"
        );
    }

    #[test]
    fn directories_keep_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("sync.c1z");
        std::fs::write(&src, b"x").unwrap();
        let out = dir.path().join("out");
        for i in 0..4 {
            to_dir(&src, &out, &format!("aws-2026112{i}T000000Z-id.c1z"), 2).unwrap();
        }
        to_dir(&src, &out, "other-20261101T000000Z-id.c1z", 2).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "aws-20261122T000000Z-id.c1z",
                "aws-20261123T000000Z-id.c1z",
                "other-20261101T000000Z-id.c1z"
            ]
        );
    }

    #[test]
    fn put_requests_keep_path_and_query_and_logs_hide_the_query() {
        let r = put_request(
            "https://bucket.example.com/a/b.c1z?X-Amz-Signature=s",
            vec![],
        )
        .unwrap();
        assert_eq!(r.authority, "bucket.example.com");
        assert_eq!(r.path, "/a/b.c1z?X-Amz-Signature=s");
        assert_eq!(
            redact_query("https://h/p?X-Amz-Signature=s"),
            "https://h/p?…"
        );
        assert!(put_request("ftp:/x", vec![]).is_err());
    }
}
