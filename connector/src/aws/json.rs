//! The AWS JSON 1.1 protocol: JSON bodies, `X-Amz-Target`, errors named by
//! `X-Amzn-ErrorType`, `code` or `__type`.

use super::errors::{AwsError, ErrorKind};
use super::query;
use crate::platform::HttpResponse;
use serde_json::Value;
use std::time::Duration;

pub fn parse_response(operation: &str, response: &HttpResponse) -> Result<Value, AwsError> {
    if !(200..300).contains(&response.status) {
        return Err(parse_error(operation, response));
    }
    if response.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(&response.body).map_err(|e| {
        query::malformed(
            operation,
            response.status,
            &format!("the body is not JSON: {e}"),
        )
    })
}

/// The error code comes from `X-Amzn-ErrorType`, else the body's `code`, else `__type`,
/// normalised. Bodies that are not JSON (the emulator answers authentication failures in
/// XML even for JSON services) are read as Query-protocol errors.
pub fn parse_error(operation: &str, response: &HttpResponse) -> AwsError {
    let body: Option<Value> = serde_json::from_slice(&response.body).ok();
    let from_body = |key: &str| {
        body.as_ref()
            .and_then(|b| b.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let code = response
        .header("x-amzn-errortype")
        .map(str::to_string)
        .or_else(|| from_body("code"))
        .or_else(|| from_body("__type"));
    let Some(code) = code else {
        return query::parse_error(
            operation,
            response.status,
            &String::from_utf8_lossy(&response.body),
        );
    };
    let message = from_body("message")
        .or_else(|| from_body("Message"))
        .unwrap_or_default();
    let mut err = AwsError::new(operation, response.status, &code, &message);
    err.retry_after = body
        .as_ref()
        .and_then(|b| b.get("RetryAfterSeconds"))
        .and_then(Value::as_f64)
        .filter(|s| *s >= 0.0)
        .map(Duration::from_secs_f64);
    err
}

/// Follows `NextToken` through every page of a list operation, handing each page to
/// `on_page`. Organizations may return an empty page with a token, so only a missing
/// token ends the listing; a token that repeats is an error, not a loop.
pub fn for_each_page(
    operation: &str,
    mut call: impl FnMut(Option<&str>) -> Result<Value, AwsError>,
    mut on_page: impl FnMut(&Value) -> Result<(), AwsError>,
) -> Result<(), AwsError> {
    let mut token: Option<String> = None;
    let mut seen = std::collections::HashSet::new();
    loop {
        let page = call(token.as_deref())?;
        on_page(&page)?;
        match page
            .get("NextToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            None => return Ok(()),
            Some(t) => {
                if !seen.insert(t.to_string()) {
                    return Err(AwsError::new(
                        operation,
                        200,
                        "RepeatedNextToken",
                        "AWS returned the same NextToken twice; stopping instead of looping",
                    )
                    .with_kind(ErrorKind::Malformed));
                }
                token = Some(t.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::resp as response;

    #[test]
    fn error_codes_follow_the_protocol_order() {
        let r = response(
            400,
            &[("X-Amzn-ErrorType", "ThrottlingException:http://internal")],
            r#"{"__type":"Other","message":"slow down","RetryAfterSeconds":3}"#,
        );
        let e = parse_error("identitystore:ListUsers", &r);
        assert_eq!(
            (e.code.as_str(), e.kind),
            ("ThrottlingException", ErrorKind::Throttle)
        );
        assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
        assert_eq!(e.message, "slow down");
        let r = response(
            400,
            &[],
            r#"{"code":"ResourceNotFoundException","__type":"x","Message":"gone"}"#,
        );
        assert_eq!(parse_error("op", &r).kind, ErrorKind::NotFound);
        let r = response(
            400,
            &[],
            r#"{"__type":"com.amazonaws.organizations.v20161128#TooManyRequestsException","message":"m"}"#,
        );
        assert_eq!(parse_error("op", &r).code, "TooManyRequestsException");
        let r = response(
            403,
            &[],
            r#"<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code></Error></Errors></ErrorResponse>"#,
        );
        assert_eq!(parse_error("op", &r).kind, ErrorKind::InvalidCredentials);
    }

    #[test]
    fn bodies_parse_or_fail_naming_the_operation() {
        assert_eq!(
            parse_response("op", &response(200, &[], "")).unwrap(),
            serde_json::json!({})
        );
        let e = parse_response("sso:ListInstances", &response(200, &[], "{oops")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("sso:ListInstances failed: MalformedResponse"),
            "{e}"
        );
    }

    #[test]
    fn pages_follow_tokens_through_empty_pages_and_stop_on_repeats() {
        let pages = [
            r#"{"Accounts":[],"NextToken":"a"}"#,
            r#"{"Accounts":[1],"NextToken":"b"}"#,
            r#"{"Accounts":[2]}"#,
        ];
        let mut i = 0;
        let mut seen = vec![];
        for_each_page(
            "op",
            |_| {
                i += 1;
                Ok(serde_json::from_str(pages[i - 1]).unwrap())
            },
            |p| {
                seen.extend(p["Accounts"].as_array().unwrap().clone());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen.len(), 2);
        let e = for_each_page(
            "op",
            |_| Ok(serde_json::json!({"NextToken": "same"})),
            |_| Ok(()),
        )
        .unwrap_err();
        assert_eq!(e.code, "RepeatedNextToken");
    }
}
