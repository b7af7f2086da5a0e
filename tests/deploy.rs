//! Offline checks of the deployment files: the Kubernetes manifests parse and match the
//! product guide's Secret and the host's endpoints, the Dockerfile and the manifests agree,
//! the Terraform module parses and grants exactly what `host policy` prints, and the example
//! service configuration passes `host serve --check`.

mod support;

use serde_json::Value;
use serde_yaml::Value as Yaml;
use std::collections::BTreeSet;
use support::*;

/// The Secret's keys in the product guide (../shared/seed/aws-v2-connector.txt).
const SEED_SECRET_KEYS: [&str; 12] = [
    "BATON_CLIENT_ID",
    "BATON_CLIENT_SECRET",
    "BATON_EXTERNAL_ID",
    "BATON_ROLE_ARN",
    "BATON_USERNAME",
    "BATON_PROVISIONING",
    "BATON_GLOBAL_AWS_ORGS_ENABLED",
    "BATON_GLOBAL_AWS_SSO_ENABLED",
    "BATON_GLOBAL_AWS_SSO_REGION",
    "BATON_SCIM_ENABLED",
    "BATON_SCIM_ENDPOINT",
    "BATON_SCIM_TOKEN",
];

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml_docs(path: &str) -> Vec<Yaml> {
    let text = read(path);
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{path}: {e}")))
        .collect()
}

fn kind<'a>(docs: &'a [Yaml], kind: &str) -> &'a Yaml {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn kubernetes_manifests_match_the_guide_and_the_host() {
    let secrets = yaml_docs("deploy/kubernetes/baton-aws-secrets.yaml");
    let secret = kind(&secrets, "Secret");
    let data = secret["stringData"].as_mapping().expect("stringData");
    let keys: BTreeSet<&str> = data.keys().map(|k| k.as_str().unwrap()).collect();
    for k in SEED_SECRET_KEYS {
        assert!(keys.contains(k), "the Secret lacks the guide's key {k}");
    }
    // Kubernetes wants strings: an unquoted true would be rejected.
    for (k, v) in data {
        assert!(v.is_string(), "{k:?} is not a string");
    }
    // Every extra key is one the host reads.
    let host_keys = [
        "BATON_UPLOAD_S3_BUCKET",
        "BATON_HOST_API_TOKEN",
        "BATON_SYNC_INTERVAL",
        "BATON_SYNC_JITTER",
    ];
    let source = read("host/src/serve/config.rs");
    for k in keys.iter().filter(|k| !SEED_SECRET_KEYS.contains(k)) {
        assert!(host_keys.contains(k), "unexpected key {k}");
        assert!(
            source.contains(&format!("\"{k}\"")),
            "the host does not read {k}"
        );
    }

    let docs = yaml_docs("deploy/kubernetes/baton-aws.yaml");
    let deployment = kind(&docs, "Deployment");
    let spec = &deployment["spec"];
    assert_eq!(
        spec["replicas"].as_i64(),
        Some(1),
        "one replica: two would provision twice"
    );
    let template = &spec["template"];
    for (k, v) in spec["selector"]["matchLabels"].as_mapping().unwrap() {
        assert_eq!(
            &template["metadata"]["labels"][k], v,
            "the selector matches the pod"
        );
    }
    for v in template["metadata"]["labels"]
        .as_mapping()
        .unwrap()
        .values()
    {
        assert!(v.is_string(), "labels are strings");
    }
    let pod = &template["spec"];
    let account = kind(&docs, "ServiceAccount");
    assert_eq!(pod["serviceAccountName"], account["metadata"]["name"]);
    // SIGTERM must come early enough for the host's 25 s grace.
    assert!(pod["terminationGracePeriodSeconds"].as_i64().unwrap() > 25);
    let container = &pod["containers"][0];
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        secret["metadata"]["name"]
    );
    assert_eq!(container["args"][0].as_str(), Some("serve"));
    let port = container["ports"][0]["containerPort"].as_i64().unwrap();
    let port_name = container["ports"][0]["name"].as_str().unwrap();
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            container[probe]["httpGet"]["port"].as_str(),
            Some(port_name)
        );
    }
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    let mounts: Vec<&str> = container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();

    // The image listens where the probes look and keeps its state where the volume is.
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains(&format!("BATON_HOST_LISTEN=0.0.0.0:{port}")));
    assert!(dockerfile.contains(&format!("EXPOSE {port}")));
    assert!(dockerfile.contains("BATON_STATE_DIR=/var/lib/baton"));
    assert!(mounts.contains(&"/var/lib/baton"), "{mounts:?}");
    assert!(dockerfile.contains("BATON_COMPONENT=/usr/local/lib/baton/aws_connector.wasm"));
    assert!(dockerfile.contains("aws_connector.wasm /rootfs/usr/local/lib/baton/"));
    assert!(dockerfile.contains("USER 65532:65532"));
    assert_eq!(pod["securityContext"]["runAsUser"].as_i64(), Some(65532));
}

fn hcl_blocks(path: &str) -> Vec<hcl::Block> {
    let body: hcl::Body = hcl::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    body.into_blocks().collect()
}

fn labels(b: &hcl::Block) -> Vec<String> {
    b.labels.iter().map(|l| l.as_str().to_string()).collect()
}

#[test]
fn terraform_module_grants_what_host_policy_prints() {
    let dir = "deploy/terraform/aws-connector-role";
    let main = hcl_blocks(&format!("{dir}/main.tf"));
    let resources: Vec<Vec<String>> = main
        .iter()
        .filter(|b| b.identifier.as_str() == "resource")
        .map(labels)
        .collect();
    assert!(resources.contains(&vec!["aws_iam_role".into(), "connector".into()]));
    assert!(resources.contains(&vec!["aws_iam_role_policy".into(), "connector".into()]));
    let variables = hcl_blocks(&format!("{dir}/variables.tf"));
    let external_id = variables
        .iter()
        .find(|b| labels(b) == ["external_id"])
        .expect("variable external_id");
    assert!(
        !external_id
            .body
            .attributes()
            .any(|a| a.key.as_str() == "default"),
        "the external ID must be required"
    );
    let outputs = hcl_blocks(&format!("{dir}/outputs.tf"));
    assert!(outputs.iter().any(|b| labels(b) == ["role_arn"]));
    hcl_blocks(&format!("{dir}/versions.tf"));

    // The permissions: exactly `host policy`'s for Organizations, Identity Center and
    // provisioning.
    let wasm = component().to_str().unwrap();
    let env = [
        ("BATON_GLOBAL_AWS_ORGS_ENABLED", "true"),
        ("BATON_GLOBAL_AWS_SSO_ENABLED", "true"),
        (
            "BATON_ROLE_ARN",
            "arn:aws:iam::123456789012:role/ConductorOneIntegration",
        ),
        ("BATON_EXTERNAL_ID", "ext-0123"),
    ];
    let out = host(&["policy", wasm, "--provisioning"], &env);
    assert!(out.status.success(), "{}", text(&out).1);
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let module: Value = serde_json::from_str(&read(&format!("{dir}/policy.json"))).unwrap();
    assert_eq!(
        module, printed["permissions_policy"],
        "policy.json differs from `host policy`; regenerate it"
    );

    // The trust policy: the template rendered as Terraform would equals `host policy`'s.
    let default_principal = variables
        .iter()
        .find(|b| labels(b) == ["trusted_principal_arn"])
        .and_then(|b| b.body.attributes().find(|a| a.key.as_str() == "default"))
        .map(|a| a.expr.to_string())
        .expect("a default trusted principal");
    let rendered = read(&format!("{dir}/trust.json.tftpl"))
        .replace("${jsonencode(trusted_principal_arn)}", &default_principal)
        .replace("${jsonencode(external_id)}", "\"ext-0123\"");
    let trust: Value = serde_json::from_str(&rendered).expect("the rendered trust policy is JSON");
    assert_eq!(trust, printed["trust_policy"]);
}

#[test]
fn the_example_configuration_passes_the_check() {
    // The example names both components by their build paths.
    let _ = (component(), test_component("misbehave"));
    let config = repo().join("examples/host.toml");
    let out = host(
        &["serve", "--check", "--config", config.to_str().unwrap()],
        &[("BATON_HOST_API_TOKEN", "t")],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("ok      aws:") && stdout.contains("ok      things:"),
        "{stdout}"
    );
    // Without the token its API section names, the check says what is missing.
    let out = host(
        &["serve", "--check", "--config", config.to_str().unwrap()],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("BATON_HOST_API_TOKEN is not set"),
        "{}",
        text(&out).1
    );
}
