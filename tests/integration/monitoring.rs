//! `deploy/monitoring`: the alert rules (through `promtool check rules` and `promtool test
//! rules`), the Grafana dashboard and its ConfigMap, the kube-prometheus-stack overlay, and a
//! real Prometheus scraping the agent, the proxy and the app through a scenario (renewals, an
//! OpenBao outage, a bad certificate file, an expired served certificate) in which every
//! dashboard query returns data and every alert expression evaluates.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_yaml::Value;

use crate::deploy::{kind, rendered, text};
use crate::util;

mod scenario;

/// The dashboard file, the one copy the ConfigMap is generated from.
const DASHBOARD: &str = "deploy/monitoring/dashboards/pki-sidecar.json";
/// The `promtool test rules` cases.
const ALERT_TESTS: &str = "deploy/monitoring/tests/alerts.test.yaml";
/// Where the runbooks' anchors point.
const RUNBOOK_BASE: &str = "https://github.com/pki-sidecar/pki-sidecar/blob/main/README.md#";

/// The PrometheusRule's `spec` (`groups: [...]`) as rendered by kustomize: the one source of the
/// rules, written as a plain rules file for promtool and Prometheus.
/// The pods' rules (`deploy/monitoring`) and the webhook's (`deploy/monitoring/webhook`, applied
/// only with the webhook) go into one file, their groups in that order.
pub fn rules_file() -> String {
    let mut groups = Vec::new();
    for dir in ["deploy/monitoring", "deploy/monitoring/webhook"] {
        let documents = rendered(dir);
        let rules = kind(&documents, "PrometheusRule");
        assert_eq!(rules.len(), 1, "one PrometheusRule in {dir}");
        groups.extend(
            rules[0]["spec"]["groups"]
                .as_sequence()
                .expect("groups")
                .iter()
                .cloned(),
        );
    }
    let mut spec = serde_yaml::Mapping::new();
    spec.insert("groups".into(), Value::Sequence(groups));
    serde_yaml::to_string(&spec).expect("rules as YAML")
}

/// Every alerting rule: (group, alert name, rule).
pub fn alerts() -> Vec<(String, String, Value)> {
    let spec: Value = serde_yaml::from_str(&rules_file()).unwrap();
    let mut alerts = Vec::new();
    for group in spec["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            alerts.push((
                text(&group["name"]).to_string(),
                text(&rule["alert"]).to_string(),
                rule.clone(),
            ));
        }
    }
    alerts
}

/// `promtool ARGS` in `dir`: `None` when promtool is not installed (a failure when
/// `PKI_SIDECAR_REQUIRE_PROMTOOL` is set, as in CI), else success and the output.
fn promtool(dir: &Path, args: &[&str]) -> Option<(bool, String)> {
    match Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(output) => Some((
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).to_string()
                + &String::from_utf8_lossy(&output.stderr),
        )),
        Err(err) => {
            assert!(
                std::env::var_os("PKI_SIDECAR_REQUIRE_PROMTOOL").is_none(),
                "promtool is required here (PKI_SIDECAR_REQUIRE_PROMTOOL) but cannot run: {err}; \
                 run scripts/install-test-deps.sh"
            );
            eprintln!("SKIPPED promtool: {err}; scripts/install-test-deps.sh installs it");
            None
        }
    }
}

/// The README's `### Name` headings under `## Alerts and runbooks`.
fn runbook_sections() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(util::repo().join("README.md")).unwrap();
    let section = readme
        .split("\n## Alerts and runbooks\n")
        .nth(1)
        .expect("README.md has a section `## Alerts and runbooks`");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|line| line.strip_prefix("### "))
        .map(|heading| heading.trim().to_string())
        .collect()
}

#[test]
fn every_alert_says_what_happened_and_links_a_runbook_in_the_readme() {
    let sections = runbook_sections();
    let alerts = alerts();
    assert!(alerts.len() >= 10, "{} alerts", alerts.len());
    for (_, name, rule) in &alerts {
        for annotation in ["summary", "description", "runbook_url"] {
            assert!(
                rule["annotations"][annotation]
                    .as_str()
                    .is_some_and(|value| !value.trim().is_empty()),
                "{name}: no {annotation}"
            );
        }
        assert!(
            matches!(
                rule["labels"]["severity"].as_str(),
                Some("warning" | "critical")
            ),
            "{name}: severity"
        );
        // GitHub's anchor for `### PkiSidecarX` is `#pkisidecarx`.
        let url = text(&rule["annotations"]["runbook_url"]);
        assert_eq!(
            url,
            format!("{RUNBOOK_BASE}{}", name.to_lowercase()),
            "{name}"
        );
        assert!(
            sections.contains(name),
            "{name}: no `### {name}` runbook under README.md's `## Alerts and runbooks` \
             (found {sections:?})"
        );
    }
    // And no runbook for an alert that no longer exists.
    let names: BTreeSet<String> = alerts.iter().map(|(_, name, _)| name.clone()).collect();
    assert_eq!(sections, names);
    // Every role has its target alert.
    for role in ["Agent", "Proxy", "App", "Webhook"] {
        let name = format!("PkiSidecar{role}Down");
        let (_, _, rule) = alerts
            .iter()
            .find(|(_, n, _)| *n == name)
            .unwrap_or_else(|| panic!("no {name}"));
        let expr = text(&rule["expr"]);
        assert!(
            expr.contains("== 0") && expr.contains("absent("),
            "{name}: {expr}"
        );
    }
}

#[test]
fn the_alert_rules_pass_promtool_check_and_every_alert_fires_and_stays_quiet_in_its_tests() {
    let dir = tempfile::tempdir().unwrap();
    util::write_file(dir.path(), "rules.yaml", &rules_file());
    let cases = std::fs::read_to_string(util::repo().join(ALERT_TESTS)).unwrap();
    util::write_file(dir.path(), "alerts.test.yaml", &cases);
    let Some((ok, report)) = promtool(dir.path(), &["check", "rules", "rules.yaml"]) else {
        return;
    };
    assert!(ok, "promtool check rules:\n{report}");
    let (ok, report) = promtool(dir.path(), &["test", "rules", "alerts.test.yaml"]).unwrap();
    assert!(ok, "promtool test rules:\n{report}");

    // Each alert has a case where it fires and one where it is evaluated and stays quiet.
    let tests: Value = serde_yaml::from_str(&cases).unwrap();
    let mut fired = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for group in tests["tests"].as_sequence().unwrap() {
        for case in group["alert_rule_test"].as_sequence().into_iter().flatten() {
            let name = text(&case["alertname"]).to_string();
            match case["exp_alerts"].as_sequence() {
                Some(expected) if !expected.is_empty() => fired.insert(name),
                _ => quiet.insert(name),
            };
        }
    }
    let names: BTreeSet<String> = alerts().into_iter().map(|(_, name, _)| name).collect();
    assert_eq!(fired, names, "alerts fired by {ALERT_TESTS}");
    assert_eq!(quiet, names, "alerts kept quiet by {ALERT_TESTS}");
}

/// The dashboard as JSON.
pub fn dashboard() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(util::repo().join(DASHBOARD)).unwrap())
        .expect("the dashboard is JSON")
}

/// Every query of the dashboard's panels: (panel title, expression).
pub fn panel_queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queries.push((
                panel["title"].as_str().unwrap().to_string(),
                target["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    queries
}

#[test]
fn the_dashboard_has_what_grafana_import_needs_and_ships_as_one_configmap() {
    let dashboard = dashboard();
    for key in ["title", "uid"] {
        assert!(dashboard[key].is_string(), "{key}");
    }
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 36);
    assert_eq!(
        dashboard["__inputs"][0]["pluginId"], "prometheus",
        "__inputs names the Prometheus data source"
    );
    assert!(
        dashboard["__requires"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "prometheus")
    );
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"))
    };
    assert_eq!(variable("datasource")["type"], "datasource");
    assert_eq!(variable("datasource")["query"], "prometheus");
    for name in ["namespace", "pod"] {
        assert_eq!(variable(name)["type"], "query");
        assert_eq!(variable(name)["datasource"]["uid"], "${datasource}");
    }
    let mut ids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().unwrap();
        assert!(ids.insert(panel["id"].as_u64().unwrap()), "{title}: id");
        for key in ["h", "w", "x", "y"] {
            assert!(panel["gridPos"][key].is_u64(), "{title}: gridPos.{key}");
        }
        assert!(panel["type"].is_string(), "{title}");
        if panel["type"] == "row" {
            continue;
        }
        assert!(titles.insert(title), "two panels named {title}");
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
        }
    }
    for (title, expr) in panel_queries(&dashboard) {
        assert!(
            expr.contains("namespace=~\"$namespace\", pod=~\"$pod\""),
            "{title}: not filtered by the dashboard's variables: {expr}"
        );
    }

    // One copy: the ConfigMap's data is the file, byte for byte, labelled for Grafana's sidecar.
    let file = std::fs::read_to_string(util::repo().join(DASHBOARD)).unwrap();
    let documents = rendered("deploy/monitoring");
    let maps = kind(&documents, "ConfigMap");
    assert_eq!(maps.len(), 1);
    assert_eq!(text(&maps[0]["metadata"]["name"]), "pki-sidecar-dashboard");
    assert_eq!(
        text(&maps[0]["metadata"]["labels"]["grafana_dashboard"]),
        "1"
    );
    assert_eq!(text(&maps[0]["data"]["pki-sidecar.json"]), file);
    // Below what `kubectl apply` can store in its last-applied annotation (256 KiB).
    assert!(file.len() < 200 * 1024, "{} bytes", file.len());
}

#[test]
fn the_kube_prometheus_stack_overlay_labels_what_the_chart_selects() {
    for dir in [
        "deploy/monitoring",
        "deploy/monitoring/webhook",
        "deploy/overlays/kube-prometheus-stack",
    ] {
        crate::deploy::validate_rendered(dir);
    }
    let documents = rendered("deploy/overlays/kube-prometheus-stack");
    for object in ["PodMonitor", "PrometheusRule", "ConfigMap"] {
        let found = kind(&documents, object);
        assert_eq!(found.len(), 1, "{object}");
        assert_eq!(
            found[0]["metadata"]["labels"]["release"].as_str(),
            Some("kube-prometheus-stack"),
            "{object}"
        );
    }
    let map = kind(&documents, "ConfigMap")[0];
    assert_eq!(text(&map["metadata"]["namespace"]), "monitoring");
    assert_eq!(text(&map["metadata"]["labels"]["grafana_dashboard"]), "1");
    // The PodMonitor stays beside the Pod it selects.
    let monitor = kind(&documents, "PodMonitor")[0];
    assert_eq!(
        text(&monitor["metadata"]["namespace"]),
        "poc-sidecar-tls-pki"
    );
    let ports: Vec<&str> = monitor["spec"]["podMetricsEndpoints"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|endpoint| text(&endpoint["port"]))
        .collect();
    assert_eq!(ports, ["agent-metrics", "proxy-metrics", "app-metrics"]);
    // The ports it names are the Deployment's.
    let base = rendered("deploy/base");
    let deployment = serde_yaml::to_string(kind(&base, "Deployment")[0]).unwrap();
    for port in ports {
        assert!(deployment.contains(&format!("name: {port}")), "{port}");
    }
    // The webhook's, beside the injector, on the port its Deployment names `metrics`.
    let webhook = rendered("deploy/monitoring/webhook");
    let monitor = kind(&webhook, "PodMonitor")[0];
    assert_eq!(
        text(&monitor["metadata"]["namespace"]),
        "pki-sidecar-injector"
    );
    assert_eq!(
        text(&monitor["spec"]["podMetricsEndpoints"][0]["port"]),
        "metrics"
    );
    let injector = rendered("deploy/injector");
    let deployment = kind(&injector, "Deployment")[0];
    let container = deployment["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "webhook")
        .expect("the injector's container is named webhook (PkiSidecarWebhookDown)");
    assert!(
        container["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "metrics")
    );
    assert_eq!(
        text(&monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]),
        text(&deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"])
    );
}
