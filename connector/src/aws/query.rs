//! The AWS Query protocol (IAM, STS): form-encoded requests, XML responses.

use super::errors::{AwsError, ErrorKind};
use crate::xml::{self, Element};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// RFC 3986 unreserved characters stay as they are; everything else is encoded.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `Action=<action>&Version=<version>&k=v…`, values percent-encoded.
pub fn encode_body(action: &str, version: &str, params: &[(String, String)]) -> String {
    let mut body = format!("Action={action}&Version={version}");
    for (k, v) in params {
        body.push('&');
        body.extend(utf8_percent_encode(k, FORM));
        body.push('=');
        body.extend(utf8_percent_encode(v, FORM));
    }
    body
}

/// Returns the `<Action>Result` element of a successful response, or the error it carries.
pub fn parse_response(
    operation: &str,
    action: &str,
    status: u16,
    body: &[u8],
) -> Result<Element, AwsError> {
    let text = String::from_utf8_lossy(body);
    if !(200..300).contains(&status) {
        return Err(parse_error(operation, status, &text));
    }
    let root = xml::parse(&text).map_err(|e| malformed(operation, status, &e))?;
    if root.name != format!("{action}Response") {
        return Err(malformed(
            operation,
            status,
            &format!("expected <{action}Response>, got <{}>", root.name),
        ));
    }
    let result_name = format!("{action}Result");
    Ok(
        match root.children.iter().position(|c| c.name == result_name) {
            Some(i) => root.children.into_iter().nth(i).expect("index found"),
            // Operations without output carry only ResponseMetadata.
            None => Element::default(),
        },
    )
}

/// Reads an error document leniently: the first `<Error>` at any depth (AWS, EC2 and the
/// emulator's layouts), else a code derived from the HTTP status.
pub fn parse_error(operation: &str, status: u16, text: &str) -> AwsError {
    let parsed = xml::parse(text).ok();
    let error = parsed.as_ref().and_then(|root| root.find("Error"));
    let mut err = match error.and_then(|e| e.child_text("Code")) {
        Some(code) => AwsError::new(
            operation,
            status,
            code,
            error.and_then(|e| e.child_text("Message")).unwrap_or(""),
        ),
        None => {
            let snippet: String = text.chars().take(200).collect();
            AwsError::new(operation, status, &format!("HTTP{status}"), snippet.trim())
        }
    };
    err.request_id = parsed
        .as_ref()
        .and_then(|r| r.find("RequestId"))
        .map(|e| e.text.clone())
        .filter(|s| !s.is_empty());
    err
}

pub fn malformed(operation: &str, status: u16, why: &str) -> AwsError {
    AwsError::new(
        operation,
        status,
        "MalformedResponse",
        &format!("could not read the response: {why}"),
    )
    .with_kind(ErrorKind::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_values_and_tokens() {
        let body = encode_body(
            "GetAccountAuthorizationDetails",
            "2010-05-08",
            &[
                ("Filter.member.1".into(), "User".into()),
                ("Marker".into(), "ab+/=c d".into()),
            ],
        );
        assert_eq!(
            body,
            "Action=GetAccountAuthorizationDetails&Version=2010-05-08&Filter.member.1=User&Marker=ab%2B%2F%3Dc%20d"
        );
    }

    #[test]
    fn reads_results_and_empty_results() {
        let ok = br#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult><Account>123456789012</Account></GetCallerIdentityResult>
  <ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"#;
        let result = parse_response("sts:GetCallerIdentity", "GetCallerIdentity", 200, ok).unwrap();
        assert_eq!(result.child_text("Account"), Some("123456789012"));
        let empty = br#"<AddUserToGroupResponse><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AddUserToGroupResponse>"#;
        assert!(parse_response("iam:AddUserToGroup", "AddUserToGroup", 200, empty).is_ok());
    }

    #[test]
    fn reads_aws_and_emulator_error_layouts() {
        let aws = br#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>req-1</RequestId></ErrorResponse>"#;
        let e = parse_response("iam:ListUsers", "ListUsers", 400, aws).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.kind),
            ("Throttling", ErrorKind::Throttle)
        );
        assert_eq!(e.request_id.as_deref(), Some("req-1"));
        let moto = br#"<?xml version="1.0" encoding="UTF-8"?><ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error></Errors></ErrorResponse>"#;
        let e = parse_response("iam:ListUsers", "ListUsers", 403, moto).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidCredentials);
        let html = b"<html><body>Internal Server Error</body></html>";
        let e = parse_response("iam:ListUsers", "ListUsers", 500, html).unwrap_err();
        assert_eq!((e.code.as_str(), e.kind), ("HTTP500", ErrorKind::Transient));
    }

    #[test]
    fn a_malformed_success_is_an_error_naming_the_operation() {
        let e = parse_response(
            "iam:ListUsers",
            "ListUsers",
            200,
            b"<ListUsersResponse><oops>",
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Malformed);
        assert!(
            e.to_string()
                .starts_with("iam:ListUsers failed: MalformedResponse"),
            "{e}"
        );
        let e = parse_response("iam:ListUsers", "ListUsers", 200, b"<Other/>").unwrap_err();
        assert!(
            e.to_string().contains("expected <ListUsersResponse>"),
            "{e}"
        );
    }
}
