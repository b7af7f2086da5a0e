//! No input makes a parser panic: valid AWS answers, mutated at random (bytes flipped,
//! inserted, deleted, truncated), and pathological ones, go through every parser the
//! connector applies to what AWS sends; each must return a value or an error.

use crate::aws::{json, query};
use crate::iam::trust::TrustPolicy;
use crate::platform::HttpResponse;
use crate::xml;

const IAM_PAGE: &str = r#"<GetAccountAuthorizationDetailsResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><GetAccountAuthorizationDetailsResult><IsTruncated>true</IsTruncated><Marker>m1</Marker><UserDetailList><member><UserName>dave</UserName><UserId>AIDA1</UserId><Arn>arn:aws:iam::123456789012:user/dave</Arn><Path>/</Path><CreateDate>2024-01-02T03:04:05Z</CreateDate><GroupList><member>admins</member></GroupList><Tags><member><Key>email</Key><Value>d@example.com</Value></member></Tags></member></UserDetailList><RoleDetailList><member><RoleName>ops</RoleName><Arn>arn:aws:iam::123456789012:role/ops</Arn><AssumeRolePolicyDocument>%7B%22Version%22%3A%222012-10-17%22%7D</AssumeRolePolicyDocument></member></RoleDetailList></GetAccountAuthorizationDetailsResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetAccountAuthorizationDetailsResponse>"#;

const IAM_ERROR: &str = r#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded &amp; more</Message></Error><RequestId>r</RequestId></ErrorResponse>"#;

const JSON_PAGE: &str = r#"{"Users":[{"UserId":"u1","UserName":"alice","DisplayName":"Alice","Emails":[{"Value":"a@example.com","Primary":true}],"UserStatus":"ENABLED"}],"NextToken":"t1"}"#;

const JSON_ERROR: &str = r#"{"__type":"com.amazonaws.identitystore#ThrottlingException","message":"slow down","RetryAfterSeconds":2}"#;

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/dave","*"]},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"x"}}},{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::123456789012:root"},"NotAction":"iam:*"}]}"#;

/// xorshift64: reproducible mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Interesting bytes for these formats, and arbitrary ones.
const SPICE: &[u8] = b"<>/&;\"'{}[]:,\\ \n\x00\xff\xc3";

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        let byte = if rng.below(2) == 0 {
            SPICE[rng.below(SPICE.len())]
        } else {
            rng.next() as u8
        };
        match rng.below(4) {
            0 if at < out.len() => out[at] = byte,
            1 => out.insert(at, byte),
            2 if at < out.len() => {
                out.remove(at);
            }
            _ => out.truncate(at),
        }
    }
    out
}

fn mutations(sample: &str, seed: u64, n: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| mutate(&mut rng, sample.as_bytes()))
        .collect()
}

#[test]
fn xml_answers_never_panic() {
    for sample in [IAM_PAGE, IAM_ERROR] {
        for bytes in mutations(sample, 0x5eed, 3000) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = xml::parse(&text);
            for status in [200, 400, 503] {
                let _ = query::parse_response(
                    "iam:GetAccountAuthorizationDetails",
                    "GetAccountAuthorizationDetails",
                    status,
                    &bytes,
                );
            }
        }
    }
}

#[test]
fn json_answers_never_panic() {
    for sample in [JSON_PAGE, JSON_ERROR] {
        for bytes in mutations(sample, 0xbeef, 3000) {
            for status in [200, 400, 500] {
                let response = HttpResponse {
                    status,
                    headers: vec![("x-amzn-errortype".into(), "ThrottlingException:".into())],
                    body: bytes.clone(),
                };
                let _ = json::parse_response("identitystore:ListUsers", &response);
            }
        }
    }
}

#[test]
fn trust_policies_never_panic() {
    for bytes in mutations(TRUST, 0xfeed, 3000) {
        let _ = TrustPolicy::parse(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn pathological_answers_are_errors_that_say_what_is_wrong() {
    // Deep nesting: refused before any recursive walk or drop could exhaust the stack.
    let deep = format!("{}{}", "<a>".repeat(200_000), "</a>".repeat(200_000));
    let e = xml::parse(&deep).unwrap_err();
    assert!(e.contains("nested deeper than 100"), "{e}");
    let e = query::parse_response("iam:ListUsers", "ListUsers", 200, deep.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(e.contains("iam:ListUsers"), "{e}");
    let deep_json = "[".repeat(200_000);
    let response = HttpResponse {
        status: 200,
        headers: vec![],
        body: deep_json.into_bytes(),
    };
    let e = json::parse_response("sso:ListInstances", &response)
        .unwrap_err()
        .to_string();
    assert!(e.contains("sso:ListInstances"), "{e}");
    // Not XML at all, an HTML error page, an empty body.
    for body in [
        "",
        "<html><body>502 Bad Gateway</body></html>",
        "\u{0}\u{1}",
    ] {
        let e = query::parse_response("iam:ListRoles", "ListRoles", 200, body.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("iam:ListRoles"), "{body:?}: {e}");
    }
    assert!(TrustPolicy::parse(&"{\"Statement\":".repeat(50_000)).is_err());
}
