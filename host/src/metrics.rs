//! What each connector of a serving host has done, rendered for Prometheus.

use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Default, Clone)]
pub struct ConnectorMetrics {
    /// `starting`, `idle`, `syncing`, `backoff`, `refused` (its component cannot run).
    pub state: &'static str,
    pub syncs_succeeded: u64,
    pub syncs_failed: u64,
    pub duration_sum_secs: f64,
    pub last_duration_secs: f64,
    pub last_success_unix: Option<f64>,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    /// AWS calls (or other outbound requests) per operation, over all syncs.
    pub calls: BTreeMap<String, u64>,
    pub throttled: u64,
    pub server_errors: u64,
    pub denied_requests: u64,
    /// Failures by kind: `connector` (an error it reported), `sandbox` (a limit or trap),
    /// `host` (loading, configuring, writing).
    pub errors: BTreeMap<&'static str, u64>,
    pub uploads_succeeded: u64,
    pub uploads_failed: u64,
    pub pending_uploads: usize,
    /// The last successful sync's counts.
    pub resources: BTreeMap<String, u64>,
    pub entitlements: u64,
    pub grants: u64,
    /// Provisioning requests by (action, result).
    pub provisioning: BTreeMap<(&'static str, &'static str), u64>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let _ = writeln!(self.out, "{name}{{{}}} {value}", labels.join(","));
    }
}

type Series<'a> = Vec<(&'a str, &'a ConnectorMetrics)>;

/// The Prometheus text exposition of every connector's metrics.
pub fn render(connectors: &Series) -> String {
    let mut out = String::new();
    let mut f = Family { out: &mut out };
    let each = |f: &mut Family,
                name: &str,
                kind: &str,
                help: &str,
                value: &dyn Fn(&ConnectorMetrics) -> f64| {
        f.head(name, kind, help);
        for (c, m) in connectors {
            f.sample(name, &[("connector", c)], value(m));
        }
    };
    each(
        &mut f,
        "baton_connector_up",
        "gauge",
        "1 when the last sync succeeded.",
        &|m| f64::from(m.syncs_succeeded > 0 && m.consecutive_failures == 0),
    );
    f.head("baton_syncs_total", "counter", "Syncs by result.");
    for (c, m) in connectors {
        f.sample(
            "baton_syncs_total",
            &[("connector", c), ("result", "success")],
            m.syncs_succeeded as f64,
        );
        f.sample(
            "baton_syncs_total",
            &[("connector", c), ("result", "failure")],
            m.syncs_failed as f64,
        );
    }
    each(
        &mut f,
        "baton_sync_duration_seconds_sum",
        "counter",
        "Seconds spent in syncs.",
        &|m| m.duration_sum_secs,
    );
    each(
        &mut f,
        "baton_sync_duration_seconds_count",
        "counter",
        "Syncs timed.",
        &|m| (m.syncs_succeeded + m.syncs_failed) as f64,
    );
    each(
        &mut f,
        "baton_last_sync_duration_seconds",
        "gauge",
        "Duration of the last sync.",
        &|m| m.last_duration_secs,
    );
    each(
        &mut f,
        "baton_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the last successful sync (0: never).",
        &|m| m.last_success_unix.unwrap_or(0.0),
    );
    each(
        &mut f,
        "baton_consecutive_failures",
        "gauge",
        "Failed syncs since the last success.",
        &|m| f64::from(m.consecutive_failures),
    );
    f.head(
        "baton_errors_total",
        "counter",
        "Failed syncs by kind: connector, sandbox (a limit or trap), host.",
    );
    for (c, m) in connectors {
        for (kind, n) in &m.errors {
            f.sample(
                "baton_errors_total",
                &[("connector", c), ("kind", kind)],
                *n as f64,
            );
        }
    }
    f.head(
        "baton_aws_calls_total",
        "counter",
        "Outbound calls by AWS operation.",
    );
    for (c, m) in connectors {
        for (op, n) in &m.calls {
            f.sample(
                "baton_aws_calls_total",
                &[("connector", c), ("operation", op)],
                *n as f64,
            );
        }
    }
    each(
        &mut f,
        "baton_throttled_total",
        "counter",
        "Responses that asked to slow down.",
        &|m| m.throttled as f64,
    );
    each(
        &mut f,
        "baton_server_errors_total",
        "counter",
        "Responses with a 5xx status.",
        &|m| m.server_errors as f64,
    );
    each(
        &mut f,
        "baton_denied_requests_total",
        "counter",
        "Outbound requests refused by the allow-list.",
        &|m| m.denied_requests as f64,
    );
    f.head(
        "baton_uploads_total",
        "counter",
        "Uploads of finished syncs by result.",
    );
    for (c, m) in connectors {
        f.sample(
            "baton_uploads_total",
            &[("connector", c), ("result", "success")],
            m.uploads_succeeded as f64,
        );
        f.sample(
            "baton_uploads_total",
            &[("connector", c), ("result", "failure")],
            m.uploads_failed as f64,
        );
    }
    each(
        &mut f,
        "baton_pending_uploads",
        "gauge",
        "Finished syncs waiting in the outbox.",
        &|m| m.pending_uploads as f64,
    );
    f.head(
        "baton_resources",
        "gauge",
        "Resources in the last successful sync, by type.",
    );
    for (c, m) in connectors {
        for (t, n) in &m.resources {
            f.sample(
                "baton_resources",
                &[("connector", c), ("resource_type", t)],
                *n as f64,
            );
        }
    }
    each(
        &mut f,
        "baton_entitlements",
        "gauge",
        "Entitlements in the last successful sync.",
        &|m| m.entitlements as f64,
    );
    each(
        &mut f,
        "baton_grants",
        "gauge",
        "Grants in the last successful sync, expanded ones included.",
        &|m| m.grants as f64,
    );
    f.head(
        "baton_provisioning_requests_total",
        "counter",
        "Grant and revoke requests by result.",
    );
    for (c, m) in connectors {
        for ((action, result), n) in &m.provisioning {
            f.sample(
                "baton_provisioning_requests_total",
                &[("connector", c), ("action", action), ("result", result)],
                *n as f64,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let mut m = ConnectorMetrics {
            syncs_succeeded: 2,
            syncs_failed: 1,
            ..Default::default()
        };
        m.calls.insert("iam:ListUsers".into(), 4);
        m.errors.insert("sandbox", 1);
        m.provisioning.insert(("grant", "success"), 1);
        let text = render(&vec![("a\"b", &m)]);
        assert!(
            text.contains("# TYPE baton_syncs_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("baton_syncs_total{connector=\"a\\\"b\",result=\"success\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "baton_aws_calls_total{connector=\"a\\\"b\",operation=\"iam:ListUsers\"} 4\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("baton_errors_total{connector=\"a\\\"b\",kind=\"sandbox\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("baton_connector_up{connector=\"a\\\"b\"} 1\n"),
            "{text}"
        );
        assert!(text.contains(
            "baton_provisioning_requests_total{connector=\"a\\\"b\",action=\"grant\",result=\"success\"} 1\n"
        ));
    }
}
