//! Where each AWS service lives and how its requests are signed.

use crate::platform::Scheme;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Iam,
    Sts,
    IdentityStore,
    SsoAdmin,
    Organizations,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Query,
    Json { target_prefix: &'static str },
}

impl Service {
    /// The SigV4 signing name (SSO Admin signs as `sso`, not `sso-admin`).
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::Iam => "iam",
            Service::Sts => "sts",
            Service::IdentityStore => "identitystore",
            Service::SsoAdmin => "sso",
            Service::Organizations => "organizations",
        }
    }

    /// The prefix of IAM action names, as used in policies and error messages.
    pub fn action_prefix(self) -> &'static str {
        self.signing_name()
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Service::Iam => "2010-05-08",
            Service::Sts => "2011-06-15",
            Service::IdentityStore => "2020-06-15",
            Service::SsoAdmin => "2020-07-20",
            Service::Organizations => "2016-11-28",
        }
    }

    pub fn protocol(self) -> Protocol {
        match self {
            Service::Iam | Service::Sts => Protocol::Query,
            Service::IdentityStore => Protocol::Json {
                target_prefix: "AWSIdentityStore",
            },
            Service::SsoAdmin => Protocol::Json {
                target_prefix: "SWBExternalService",
            },
            Service::Organizations => Protocol::Json {
                target_prefix: "AWSOrganizationsV20161128",
            },
        }
    }
}

/// Resolves service endpoints for the `aws` partition, or sends everything to one
/// override URL (a local emulator or a private endpoint) while signing as AWS would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Region for regional global-account services (STS).
    pub region: String,
    /// Region of the IAM Identity Center instance (Identity Store, SSO Admin).
    pub sso_region: String,
    pub override_url: Option<(Scheme, String)>,
}

pub struct Target {
    pub scheme: Scheme,
    pub authority: String,
    pub signing_region: String,
}

impl Endpoints {
    pub fn new(region: &str, sso_region: &str, override_url: Option<&str>) -> Result<Self, String> {
        let override_url = override_url.map(parse_endpoint_url).transpose()?;
        Ok(Endpoints {
            region: region.to_string(),
            sso_region: sso_region.to_string(),
            override_url,
        })
    }

    pub fn target(&self, service: Service) -> Target {
        let (host, signing_region) = match service {
            Service::Iam => ("iam.amazonaws.com".to_string(), "us-east-1".to_string()),
            Service::Sts => (
                format!("sts.{}.amazonaws.com", self.region),
                self.region.clone(),
            ),
            Service::IdentityStore => (
                format!("identitystore.{}.amazonaws.com", self.sso_region),
                self.sso_region.clone(),
            ),
            Service::SsoAdmin => (
                format!("sso.{}.amazonaws.com", self.sso_region),
                self.sso_region.clone(),
            ),
            // Organizations is global; its endpoint and quotas live in us-east-1.
            Service::Organizations => (
                "organizations.us-east-1.amazonaws.com".to_string(),
                "us-east-1".to_string(),
            ),
        };
        match &self.override_url {
            Some((scheme, authority)) => Target {
                scheme: *scheme,
                authority: authority.clone(),
                signing_region,
            },
            None => Target {
                scheme: Scheme::Https,
                authority: host,
                signing_region,
            },
        }
    }

    /// Every authority this configuration sends requests to.
    pub fn authorities(&self, services: &[Service]) -> Vec<String> {
        let mut out: Vec<String> = services.iter().map(|s| self.target(*s).authority).collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Parses `http[s]://host[:port][/]` into a scheme and the authority to send and sign.
/// A default port is dropped, because the HTTP layer omits it from `Host` and SigV4 must
/// sign exactly what is sent.
pub fn parse_endpoint_url(url: &str) -> Result<(Scheme, String), String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else {
        return Err(format!(
            "{url:?} is not an http:// or https:// URL (example: http://127.0.0.1:5000)"
        ));
    };
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') || authority.contains('@') {
        return Err(format!(
            "{url:?} must be a bare scheme://host[:port] without a path (example: http://127.0.0.1:5000)"
        ));
    }
    let authority = match (scheme, authority.rsplit_once(':')) {
        (Scheme::Http, Some((host, "80"))) | (Scheme::Https, Some((host, "443"))) => host,
        (_, Some((_, port))) if port.parse::<u16>().is_err() => {
            return Err(format!("{url:?} has an invalid port {port:?}"))
        }
        _ => authority,
    };
    Ok((scheme, authority.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_endpoints_by_default() {
        let e = Endpoints::new("eu-west-1", "eu-central-1", None).unwrap();
        let iam = e.target(Service::Iam);
        assert_eq!(iam.authority, "iam.amazonaws.com");
        assert_eq!(iam.signing_region, "us-east-1");
        let sts = e.target(Service::Sts);
        assert_eq!(sts.authority, "sts.eu-west-1.amazonaws.com");
        assert_eq!(sts.signing_region, "eu-west-1");
        assert_eq!(sts.scheme, Scheme::Https);
        let sso = e.target(Service::SsoAdmin);
        assert_eq!(
            (sso.authority.as_str(), sso.signing_region.as_str()),
            ("sso.eu-central-1.amazonaws.com", "eu-central-1")
        );
        assert_eq!(Service::SsoAdmin.signing_name(), "sso");
        let orgs = e.target(Service::Organizations);
        assert_eq!(
            (orgs.authority.as_str(), orgs.signing_region.as_str()),
            ("organizations.us-east-1.amazonaws.com", "us-east-1")
        );
    }

    #[test]
    fn override_sends_everything_to_one_place_but_signs_per_service() {
        let e =
            Endpoints::new("eu-west-1", "eu-central-1", Some("http://127.0.0.1:5000/")).unwrap();
        let iam = e.target(Service::Iam);
        assert_eq!(
            (iam.scheme, iam.authority.as_str()),
            (Scheme::Http, "127.0.0.1:5000")
        );
        assert_eq!(iam.signing_region, "us-east-1");
        assert_eq!(
            e.authorities(&[Service::Iam, Service::Sts]),
            ["127.0.0.1:5000"]
        );
    }

    #[test]
    fn default_ports_are_dropped_and_bad_urls_named() {
        assert_eq!(
            parse_endpoint_url("https://Example.com:443").unwrap(),
            (Scheme::Https, "example.com".into())
        );
        for bad in [
            "127.0.0.1:5000",
            "ftp://x",
            "http://",
            "http://x/path",
            "http://x:port",
        ] {
            let err = parse_endpoint_url(bad).unwrap_err();
            assert!(
                err.contains(bad.trim_end_matches('/')) || err.contains("port"),
                "{err}"
            );
        }
    }
}
