//! Reads a role's trust policy the way AWS evaluates it for `sts:AssumeRole`.
//!
//! A principal may assume the role when an `Allow` statement whose actions cover
//! `sts:AssumeRole` names it (conditions do not stop a grant: they narrow when, not who),
//! and no unconditional `Deny` covering `sts:AssumeRole` applies to it. Only principals
//! that name one IAM user or role can become grants; account roots, `*`, services and
//! federated providers are not synced resources.

use serde_json::Value;

/// One IAM principal we might grant to.
pub struct Candidate<'a> {
    pub arn: &'a str,
    /// `AIDA…`/`AROA…`: AWS rewrites a trust policy to this when the principal is deleted
    /// and recreated, so a policy may name it instead of the ARN.
    pub unique_id: &'a str,
    pub account_id: &'a str,
}

#[derive(Debug, Default)]
pub struct TrustPolicy {
    statements: Vec<Statement>,
}

#[derive(Debug)]
struct Statement {
    allow: bool,
    conditional: bool,
    /// `Some` for `Principal`, `None` with `NotPrincipal`.
    principal: PrincipalSet,
    covers_assume_role: bool,
}

#[derive(Debug)]
enum PrincipalSet {
    /// `Principal`: the listed AWS principals (`*` included as a value).
    Listed { aws: Vec<String>, everyone: bool },
    /// `NotPrincipal`: everyone except the listed AWS principals.
    AllExcept(Vec<String>),
}

impl TrustPolicy {
    pub fn parse(document: &str) -> Result<TrustPolicy, String> {
        let doc: Value =
            serde_json::from_str(document).map_err(|e| format!("trust policy is not JSON: {e}"))?;
        let statements = match doc.get("Statement") {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(obj @ Value::Object(_)) => vec![obj],
            None => Vec::new(),
            Some(_) => return Err("trust policy Statement is neither an object nor a list".into()),
        };
        let statements = statements
            .into_iter()
            .map(parse_statement)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustPolicy { statements })
    }

    /// The AWS principal strings named by `Allow` statements that cover `sts:AssumeRole`.
    pub fn allowed_principals(&self) -> impl Iterator<Item = &str> {
        self.statements
            .iter()
            .filter(|s| s.allow && s.covers_assume_role)
            .filter_map(|s| match &s.principal {
                PrincipalSet::Listed { aws, .. } => Some(aws.iter().map(String::as_str)),
                PrincipalSet::AllExcept(_) => None,
            })
            .flatten()
    }

    /// Whether the candidate may assume the role.
    pub fn allows(&self, c: &Candidate) -> bool {
        let named = |list: &[String]| list.iter().any(|p| names(p, c));
        let allowed = self.statements.iter().any(|s| {
            s.allow
                && s.covers_assume_role
                && matches!(&s.principal, PrincipalSet::Listed { aws, .. } if named(aws))
        });
        allowed && !self.denies(c)
    }

    fn denies(&self, c: &Candidate) -> bool {
        self.statements.iter().any(|s| {
            !s.allow
                && !s.conditional
                && s.covers_assume_role
                && match &s.principal {
                    PrincipalSet::Listed { aws, everyone } => {
                        *everyone
                            || aws
                                .iter()
                                .any(|p| p == "*" || names(p, c) || names_account(p, c))
                    }
                    PrincipalSet::AllExcept(except) => {
                        !except.iter().any(|p| names(p, c) || names_account(p, c))
                    }
                }
        })
    }
}

/// The principal string names exactly this user or role.
fn names(p: &str, c: &Candidate) -> bool {
    p == c.arn || p == c.unique_id
}

/// The principal string names the candidate's whole account (root ARN or bare id).
fn names_account(p: &str, c: &Candidate) -> bool {
    p == c.account_id || p == format!("arn:aws:iam::{}:root", c.account_id)
}

fn parse_statement(v: &Value) -> Result<Statement, String> {
    let effect = v.get("Effect").and_then(Value::as_str).unwrap_or("");
    let allow = match effect {
        "Allow" => true,
        "Deny" => false,
        other => {
            return Err(format!(
                "trust policy statement has Effect {other:?}, expected Allow or Deny"
            ))
        }
    };
    let covers_assume_role = match (v.get("Action"), v.get("NotAction")) {
        (Some(a), _) => strings(a)
            .iter()
            .any(|p| wildcard_match(p, "sts:AssumeRole")),
        (None, Some(na)) => !strings(na)
            .iter()
            .any(|p| wildcard_match(p, "sts:AssumeRole")),
        (None, None) => false,
    };
    let principal = match (v.get("Principal"), v.get("NotPrincipal")) {
        (Some(p), _) => {
            let everyone = p.as_str() == Some("*");
            PrincipalSet::Listed {
                aws: p.get("AWS").map(strings).unwrap_or_default(),
                everyone,
            }
        }
        (None, Some(np)) => PrincipalSet::AllExcept(np.get("AWS").map(strings).unwrap_or_default()),
        (None, None) => PrincipalSet::Listed {
            aws: Vec::new(),
            everyone: false,
        },
    };
    Ok(Statement {
        allow,
        conditional: v
            .get("Condition")
            .is_some_and(|c| c.as_object().is_none_or(|o| !o.is_empty())),
        principal,
        covers_assume_role,
    })
}

/// A policy value that may be a string or a list of strings.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// IAM action matching: case-insensitive, `*` any run, `?` one character.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: Candidate = Candidate {
        arn: "arn:aws:iam::123456789012:user/alice",
        unique_id: "AIDAALICE",
        account_id: "123456789012",
    };
    const BOB: Candidate = Candidate {
        arn: "arn:aws:iam::123456789012:user/team/bob",
        unique_id: "AIDABOB",
        account_id: "123456789012",
    };

    fn policy(statements: &str) -> TrustPolicy {
        TrustPolicy::parse(&format!(
            r#"{{"Version":"2012-10-17","Statement":{statements}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn wildcards_cover_assume_role() {
        for p in [
            "sts:AssumeRole",
            "sts:*",
            "*",
            "STS:assumerole",
            "sts:Assume*",
            "sts:AssumeRol?",
        ] {
            assert!(wildcard_match(p, "sts:AssumeRole"), "{p}");
        }
        for p in [
            "sts:AssumeRoleWithSAML",
            "sts:TagSession",
            "iam:*",
            "sts:Assume",
        ] {
            assert!(!wildcard_match(p, "sts:AssumeRole"), "{p}");
        }
    }

    #[test]
    fn allow_by_arn_list_or_unique_id() {
        let p = policy(
            r#"{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/alice","AIDABOB"]},"Action":"sts:AssumeRole"}"#,
        );
        assert!(p.allows(&ALICE));
        assert!(p.allows(&BOB));
    }

    #[test]
    fn actions_must_cover_assume_role() {
        let p = policy(
            r#"[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":["sts:TagSession","sts:AssumeRoleWithWebIdentity"]}]"#,
        );
        assert!(!p.allows(&ALICE));
        let p = policy(
            r#"[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"NotAction":"iam:*"}]"#,
        );
        assert!(
            p.allows(&ALICE),
            "NotAction that spares sts:AssumeRole covers it"
        );
    }

    #[test]
    fn conditional_allow_still_grants_but_conditional_deny_does_not_deny() {
        let p = policy(
            r#"[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"sts:AssumeRole","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}},
            {"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"sts:AssumeRole","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]"#,
        );
        assert!(p.allows(&ALICE));
    }

    #[test]
    fn unconditional_deny_wins_by_name_account_or_star() {
        let allow_both = r#"{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/alice","arn:aws:iam::123456789012:user/team/bob"]},"Action":"sts:AssumeRole"}"#;
        let p = policy(&format!(
            r#"[{allow_both},{{"Effect":"Deny","Principal":{{"AWS":"arn:aws:iam::123456789012:user/alice"}},"Action":"sts:*"}}]"#
        ));
        assert!(!p.allows(&ALICE));
        assert!(p.allows(&BOB));
        let p = policy(&format!(
            r#"[{allow_both},{{"Effect":"Deny","Principal":"*","Action":"*"}}]"#
        ));
        assert!(!p.allows(&BOB));
        let p = policy(&format!(
            r#"[{allow_both},{{"Effect":"Deny","Principal":{{"AWS":"arn:aws:iam::123456789012:root"}},"Action":"sts:AssumeRole"}}]"#
        ));
        assert!(!p.allows(&ALICE));
        let p = policy(&format!(
            r#"[{allow_both},{{"Effect":"Deny","NotPrincipal":{{"AWS":"AIDABOB"}},"Action":"sts:AssumeRole"}}]"#
        ));
        assert!(!p.allows(&ALICE));
        assert!(p.allows(&BOB));
    }

    #[test]
    fn roots_services_and_federated_principals_name_no_user() {
        let p = policy(
            r#"[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root","Service":"ec2.amazonaws.com","Federated":"arn:aws:iam::123456789012:saml-provider/x"},"Action":"sts:AssumeRole"},
            {"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]"#,
        );
        assert!(!p.allows(&ALICE));
        let p = policy(
            r#"{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"}"#,
        );
        assert!(!p.allows(&ALICE));
    }

    #[test]
    fn malformed_policies_are_errors() {
        assert!(TrustPolicy::parse("not json").is_err());
        assert!(TrustPolicy::parse(r#"{"Statement":[{"Effect":"Maybe"}]}"#).is_err());
        assert!(TrustPolicy::parse(r#"{"Statement":3}"#).is_err());
    }
}
