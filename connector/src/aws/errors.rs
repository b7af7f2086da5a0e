//! AWS error codes, normalised and classified into what the caller should do.

use crate::model::ConnectorError;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Throttle,
    Transient,
    ClockSkew,
    ExpiredCredentials,
    /// The key id is unknown or the signature does not match: wrong secret or key.
    InvalidCredentials,
    AccessDenied,
    NotFound,
    Conflict,
    /// The response could not be understood.
    Malformed,
    /// The host refused to send the request (outbound allow-list).
    Denied,
    Fatal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// `service:Operation`, e.g. `iam:GetAccountAuthorizationDetails`.
    pub operation: String,
    /// HTTP status, 0 when no response arrived.
    pub status: u16,
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
    pub kind: ErrorKind,
    pub retry_after: Option<Duration>,
}

impl AwsError {
    pub fn new(operation: &str, status: u16, code: &str, message: &str) -> Self {
        AwsError {
            operation: operation.to_string(),
            status,
            code: normalise_code(code),
            message: message.to_string(),
            request_id: None,
            kind: classify(&normalise_code(code), status),
            retry_after: None,
        }
    }

    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed: ", self.operation)?;
        if self.status == 0 {
            write!(f, "{}", self.message)?;
        } else {
            write!(f, "{}", self.code)?;
            if !self.message.is_empty() {
                write!(f, ": {}", self.message)?;
            }
            write!(f, " (HTTP {}", self.status)?;
            if let Some(id) = &self.request_id {
                write!(f, ", request id {id}")?;
            }
            write!(f, ")")?;
        }
        if let Some(hint) = self.hint() {
            write!(f, ". {hint}")?;
        }
        Ok(())
    }
}

impl AwsError {
    fn hint(&self) -> Option<String> {
        match self.kind {
            ErrorKind::InvalidCredentials => Some(
                "AWS rejected the credentials: check the access key id and secret access key \
                 (BATON_GLOBAL_ACCESS_KEY_ID / BATON_GLOBAL_SECRET_ACCESS_KEY or AWS_*), and that \
                 the clock is correct"
                    .into(),
            ),
            ErrorKind::AccessDenied => Some(format!(
                "Allow {} in the IAM policy of the connector's role or user (README: IAM permissions)",
                self.operation
            )),
            ErrorKind::ClockSkew => Some("Check this machine's clock".into()),
            _ => None,
        }
    }
}

impl From<AwsError> for ConnectorError {
    fn from(e: AwsError) -> Self {
        let text = e.to_string();
        match e.kind {
            ErrorKind::Throttle => ConnectorError::Throttled {
                retry_after: e.retry_after,
                message: text,
            },
            ErrorKind::Transient => ConnectorError::Transient(text),
            ErrorKind::ExpiredCredentials => ConnectorError::CredentialsExpired(text),
            ErrorKind::AccessDenied => ConnectorError::AccessDenied(text),
            ErrorKind::NotFound => ConnectorError::NotFound(text),
            ErrorKind::ClockSkew
            | ErrorKind::InvalidCredentials
            | ErrorKind::Conflict
            | ErrorKind::Malformed
            | ErrorKind::Denied
            | ErrorKind::Fatal => ConnectorError::Fatal(text),
        }
    }
}

/// Drops a `namespace#` prefix and a `:suffix`, as the AWS protocol tests require.
pub fn normalise_code(code: &str) -> String {
    let code = code.rsplit('#').next().unwrap_or(code);
    let code = code.split(':').next().unwrap_or(code);
    code.trim().to_string()
}

/// Classifies a normalised error code, then the HTTP status.
pub fn classify(code: &str, status: u16) -> ErrorKind {
    match code {
        "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException"
        | "ThrottledException"
        | "RequestThrottledException"
        | "ProvisionedThroughputExceededException"
        | "TransactionInProgressException"
        | "RequestLimitExceeded"
        | "BandwidthLimitExceeded"
        | "LimitExceededException"
        | "RequestThrottled"
        | "SlowDown"
        | "PriorRequestNotComplete"
        | "EC2ThrottledException" => ErrorKind::Throttle,
        "RequestTimeout"
        | "RequestTimeoutException"
        | "ServiceFailure"
        | "InternalServerException"
        | "ServiceException"
        | "InternalFailure"
        | "InternalError"
        | "ServiceUnavailable"
        | "ConcurrentModification"
        | "EntityTemporarilyUnmodifiable" => ErrorKind::Transient,
        "RequestExpired" | "RequestInTheFuture" | "RequestTimeTooSkewed" => ErrorKind::ClockSkew,
        "ExpiredToken" | "ExpiredTokenException" => ErrorKind::ExpiredCredentials,
        "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "InvalidSignatureException"
        | "UnrecognizedClientException"
        | "AuthFailure"
        | "IncompleteSignature"
        | "MissingAuthenticationToken" => ErrorKind::InvalidCredentials,
        "AccessDenied" | "AccessDeniedException" => ErrorKind::AccessDenied,
        "NoSuchEntity"
        | "ResourceNotFoundException"
        | "AccountNotFoundException"
        | "ParentNotFoundException"
        | "ChildNotFoundException" => ErrorKind::NotFound,
        "EntityAlreadyExists" | "ConflictException" => ErrorKind::Conflict,
        _ => match status {
            429 => ErrorKind::Throttle,
            500 | 502 | 503 | 504 => ErrorKind::Transient,
            403 => ErrorKind::AccessDenied,
            _ => ErrorKind::Fatal,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_normalised() {
        assert_eq!(
            normalise_code("com.amazonaws.identitystore#ThrottlingException"),
            "ThrottlingException"
        );
        assert_eq!(
            normalise_code("aws.protocoltests.restjson#FooError:http://internal.amazon.com/coral/com.amazon.coral.validate/"),
            "FooError"
        );
        assert_eq!(normalise_code("Throttling"), "Throttling");
    }

    #[test]
    fn classification_follows_codes_then_status() {
        assert_eq!(classify("Throttling", 400), ErrorKind::Throttle);
        assert_eq!(
            classify("TooManyRequestsException", 400),
            ErrorKind::Throttle
        );
        // IAM's LimitExceeded is an entity quota, not a throttle.
        assert_eq!(classify("LimitExceeded", 409), ErrorKind::Fatal);
        assert_eq!(classify("ServiceFailure", 500), ErrorKind::Transient);
        assert_eq!(classify("Whatever", 503), ErrorKind::Transient);
        assert_eq!(classify("Whatever", 429), ErrorKind::Throttle);
        assert_eq!(
            classify("SignatureDoesNotMatch", 403),
            ErrorKind::InvalidCredentials
        );
        assert_eq!(classify("AccessDenied", 403), ErrorKind::AccessDenied);
        assert_eq!(classify("NoSuchEntity", 404), ErrorKind::NotFound);
        assert_eq!(classify("ExpiredToken", 403), ErrorKind::ExpiredCredentials);
        assert_eq!(classify("InvalidInput", 400), ErrorKind::Fatal);
    }

    #[test]
    fn messages_name_the_operation_and_what_to_do() {
        let mut e = AwsError::new(
            "iam:GetAccountAuthorizationDetails",
            403,
            "AccessDenied",
            "not authorized",
        );
        e.request_id = Some("abc".into());
        let text = e.to_string();
        assert!(text.starts_with("iam:GetAccountAuthorizationDetails failed: AccessDenied: not authorized (HTTP 403, request id abc)"), "{text}");
        assert!(
            text.contains("Allow iam:GetAccountAuthorizationDetails"),
            "{text}"
        );
        let wrong = AwsError::new(
            "iam:GetAccountAuthorizationDetails",
            403,
            "SignatureDoesNotMatch",
            "",
        );
        assert!(wrong.to_string().contains("secret access key"));
    }
}
