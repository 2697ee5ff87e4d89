//! The bot's Kubernetes manifests (`deploy/kubernetes/*.yaml`) and its `Dockerfile`, checked
//! against the bot itself: every environment variable they set is one the bot reads
//! (`erlmcp_bot::environment`), secrets come from a Secret, the configuration file they mount is
//! one the bot's parser accepts and, with the environment they give, complete for the live
//! executor and `serve`; probes, ports, security settings and the shutdown grace match what the
//! program does. The README may name only variables the bot reads.
//!
//! Every check adds to a list of problems; `each_check_catches_its_mistake` breaks the real
//! manifests one way at a time and expects the matching problem, so no check passes vacuously.
//! Schema validity is `tests/scripts/validate-manifests.sh`'s job.

use erlmcp_bot::environment::{REGION_DSN_PREFIX, VARIABLES, is_read};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/kubernetes");
const DOCKERFILE: &str = include_str!("../../Dockerfile");
const SERVE_RS: &str = include_str!("../../bot/src/serve.rs");
const NAMESPACE: &str = "erlmcp-prod";
const NAME: &str = "erlmcp-bot";
/// The label the live executor selects erlmcp's own pods by (`bot/src/live/kube_ops.rs`): pods
/// it counts for readiness and cuts off with the deny-all isolation policy.
const EXECUTOR_POD_LABEL: (&str, &str) = ("app", "erlmcp");

/// One YAML document of a manifest file.
#[derive(Clone, Debug)]
struct Doc {
    file: String,
    value: Value,
}

#[derive(Clone)]
struct Repo {
    docs: Vec<Doc>,
    dockerfile: String,
    readme: String,
}

fn load() -> Repo {
    let mut files: Vec<_> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with('#'),
            "{file} must start with a comment saying what it is and why"
        );
        let values: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("deploy/kubernetes/{file} is not YAML: {e}"));
        for value in values.into_iter().filter(|v| !v.is_null()) {
            docs.push(Doc {
                file: file.clone(),
                value,
            });
        }
    }
    Repo {
        docs,
        dockerfile: DOCKERFILE.to_string(),
        readme: include_str!("../../README.md").to_string(),
    }
}

fn text(v: &Value) -> Option<&str> {
    v.as_str()
}

fn items(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The port of an address like `0.0.0.0:3000`.
fn port_of(address: &str) -> Option<u64> {
    address.rsplit_once(':')?.1.parse().ok()
}

/// A container port by number or name, if the container declares it.
fn container_port(container: &Value, port: &Value) -> Option<u64> {
    let ports = items(&container["ports"]);
    match port {
        Value::Number(n) => ports
            .iter()
            .find(|p| p["containerPort"].as_u64() == n.as_u64())
            .and_then(|p| p["containerPort"].as_u64()),
        Value::String(name) => ports
            .iter()
            .find(|p| p["name"] == name.as_str())
            .and_then(|p| p["containerPort"].as_u64()),
        _ => None,
    }
}

/// `matchLabels` all present in `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels[k] == *v))
}

/// Must come from a Secret: the bot's secrets, the region DSNs (passwords), AWS keys.
fn is_secret(name: &str) -> bool {
    VARIABLES.iter().any(|v| v.name == name && v.secret)
        || name.starts_with(REGION_DSN_PREFIX)
        || matches!(name, "AWS_SECRET_ACCESS_KEY" | "AWS_SESSION_TOKEN")
}

/// The seconds a stopping `serve` may take after SIGTERM to hand its runs over
/// (`HAND_OVER_GRACE` in bot/src/serve.rs), read from the source so a change there is seen here.
fn hand_over_grace_seconds() -> u64 {
    let re = regex::Regex::new(r"const HAND_OVER_GRACE: [\w:]*Duration = [\w:]*from_secs\((\d+)\)")
        .unwrap();
    re.captures(SERVE_RS)
        .expect("HAND_OVER_GRACE in bot/src/serve.rs: update this test")[1]
        .parse()
        .unwrap()
}

/// Where a file in the container comes from, through the pod's volumes.
#[derive(Debug, PartialEq)]
enum Mounted {
    ConfigMap { name: String, key: String },
    Secret { name: String },
}

fn mounted(pod: &Value, container: &Value, path: &str) -> Option<Mounted> {
    for m in items(&container["volumeMounts"]) {
        let dir = text(&m["mountPath"])?.trim_end_matches('/');
        let Some(rel) = path.strip_prefix(dir).and_then(|r| r.strip_prefix('/')) else {
            continue;
        };
        if m.get("subPath").is_some() {
            continue;
        }
        let volume = items(&pod["volumes"])
            .iter()
            .find(|v| v["name"] == m["name"])?;
        let sources: Vec<&Value> = match volume.get("projected") {
            Some(p) => items(&p["sources"]).iter().collect(),
            None => vec![volume],
        };
        for s in sources {
            if let Some(cm) = s.get("configMap") {
                for item in items(&cm["items"]) {
                    if item["path"] == rel {
                        return Some(Mounted::ConfigMap {
                            name: text(&cm["name"])?.to_string(),
                            key: text(&item["key"])?.to_string(),
                        });
                    }
                }
                if cm.get("items").is_none() {
                    return Some(Mounted::ConfigMap {
                        name: text(&cm["name"])?.to_string(),
                        key: rel.to_string(),
                    });
                }
            }
            if let Some(sec) = s.get("secret") {
                // A projected source names its Secret `name`, a secret volume `secretName`.
                let name = text(&sec["name"]).or(text(&sec["secretName"]))?.to_string();
                if sec.get("items").is_none()
                    || items(&sec["items"]).iter().any(|i| i["path"] == rel)
                {
                    return Some(Mounted::Secret { name });
                }
            }
        }
    }
    None
}

/// Everything wrong with the manifests, each as one sentence.
fn problems(repo: &Repo) -> Vec<String> {
    let mut p = Vec::new();
    let docs = &repo.docs;
    let find = |kind: &str, file: Option<&str>| -> Vec<&Doc> {
        docs.iter()
            .filter(|d| d.value["kind"] == kind && file.is_none_or(|f| d.file == f))
            .collect()
    };

    // Every resource in the namespace; the kustomization lists every other file.
    let mut files = BTreeSet::new();
    for d in docs {
        files.insert(d.file.clone());
        if d.value["kind"] == "Kustomization" {
            continue;
        }
        if d.value["metadata"]["namespace"] != NAMESPACE {
            p.push(format!(
                "{}: {} {} is not in namespace {NAMESPACE}",
                d.file, d.value["kind"], d.value["metadata"]["name"]
            ));
        }
    }
    match find("Kustomization", Some("kustomization.yaml")).as_slice() {
        [k] => {
            let listed: BTreeSet<String> = items(&k.value["resources"])
                .iter()
                .filter_map(|r| r.as_str().map(String::from))
                .collect();
            files.remove("kustomization.yaml");
            if listed != files {
                p.push(format!(
                    "kustomization.yaml lists {listed:?}, the folder holds {files:?}"
                ));
            }
        }
        _ => p.push("kustomization.yaml: no Kustomization".into()),
    }

    let deployments = find("Deployment", Some("deployment.yaml"));
    let [deployment] = deployments.as_slice() else {
        p.push("deployment.yaml must hold exactly one Deployment".into());
        return p;
    };
    let d = &deployment.value;
    if d["metadata"]["name"] != NAME {
        p.push(format!("the Deployment is not named {NAME}"));
    }
    if d["spec"]["replicas"] != 2 {
        p.push(format!(
            "replicas is {}, not 2 (two replicas on one PostgreSQL)",
            d["spec"]["replicas"]
        ));
    }
    let rolling = &d["spec"]["strategy"]["rollingUpdate"];
    if d["spec"]["strategy"]["type"] != "RollingUpdate" || rolling["maxUnavailable"] != 0 {
        p.push("the rolling update must keep every replica up (maxUnavailable 0)".into());
    }
    let pod = &d["spec"]["template"]["spec"];
    let labels = &d["spec"]["template"]["metadata"]["labels"];
    if !selects(&d["spec"]["selector"]["matchLabels"], labels) {
        p.push("the Deployment's selector does not select its own pods".into());
    }
    if labels[EXECUTOR_POD_LABEL.0] == EXECUTOR_POD_LABEL.1 {
        p.push(format!(
            "the bot's pods carry app={}: the live executor would count and isolate them as erlmcp's",
            EXECUTOR_POD_LABEL.1
        ));
    }

    // The ServiceAccount exists in rbac.yaml and is bound to the Role.
    let account = text(&pod["serviceAccountName"]).unwrap_or("");
    if !find("ServiceAccount", Some("rbac.yaml"))
        .iter()
        .any(|a| a.value["metadata"]["name"] == account)
    {
        p.push(format!(
            "serviceAccountName `{account}` is not a ServiceAccount in rbac.yaml"
        ));
    }
    if !find("RoleBinding", Some("rbac.yaml")).iter().any(|b| {
        items(&b.value["subjects"])
            .iter()
            .any(|s| s["kind"] == "ServiceAccount" && s["name"] == account)
    }) {
        p.push(format!("no RoleBinding in rbac.yaml binds `{account}`"));
    }

    let containers = items(&pod["containers"]);
    let Some(container) = containers.iter().find(|c| c["name"] == NAME) else {
        p.push(format!("no container named {NAME}"));
        return p;
    };
    if items(&container["args"]).first() != Some(&json!("serve")) {
        p.push("the container's args must be [\"serve\"]".into());
    }

    // The environment: names the bot reads, secrets from a Secret.
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for c in containers.iter().chain(items(&pod["initContainers"])) {
        let cname = &c["name"];
        if c.get("envFrom").is_some() {
            p.push(format!(
                "container {cname}: envFrom hides which names are set; list each variable"
            ));
        }
        for e in items(&c["env"]) {
            let name = text(&e["name"]).unwrap_or("").to_string();
            if !is_read(&name) {
                p.push(format!(
                    "container {cname} sets {name}, which the bot does not read (bot/src/environment.rs)"
                ));
            }
            let from_secret = e["valueFrom"]["secretKeyRef"]["name"].is_string()
                && e["valueFrom"]["secretKeyRef"]["key"].is_string();
            if is_secret(&name) && (!from_secret || e.get("value").is_some()) {
                p.push(format!(
                    "container {cname}: the secret {name} must come from valueFrom.secretKeyRef, never a value"
                ));
            }
            if c == container {
                if env.contains_key(&name) {
                    p.push(format!("{name} is set twice"));
                }
                // The test stands in for secrets; the timeline key must be at least 16 bytes.
                let v = match text(&e["value"]) {
                    Some(v) => v.to_string(),
                    None if name == "DATABASE_URL" => "postgres://erlmcp_bot@db/erlmcp_bot".into(),
                    None => "placeholder-0123456789abcdef-0123456789abcdef".into(),
                };
                env.insert(name, v);
            }
        }
    }

    // The configuration file: mounted from the ConfigMap, accepted by the parser, no secrets,
    // and with this environment complete for the live executor and `serve`.
    let config_path = env.get("ERLMCP_CONFIG").cloned().unwrap_or_default();
    let toml = match mounted(pod, container, &config_path) {
        Some(Mounted::ConfigMap { name, key }) => {
            let data = find("ConfigMap", Some("configmap.yaml"))
                .iter()
                .find(|c| c.value["metadata"]["name"] == name.as_str())
                .and_then(|c| text(&c.value["data"][&key]).map(String::from));
            if data.is_none() {
                p.push(format!(
                    "ERLMCP_CONFIG {config_path}: configmap.yaml has no ConfigMap {name} with key {key}"
                ));
            }
            data
        }
        other => {
            p.push(format!(
                "ERLMCP_CONFIG `{config_path}` is not a file mounted from configmap.yaml ({other:?})"
            ));
            None
        }
    };
    if let Some(toml) = toml {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("erlmcp-bot.toml");
        std::fs::write(&file, &toml).unwrap();
        match erlmcp_bot::config::Config::load(Some(&file), &|_| None) {
            Err(e) => p.push(format!("the ConfigMap's configuration is refused: {e}")),
            Ok(alone) => {
                if alone.database_url != erlmcp_bot::config::DEFAULT_DATABASE_URL
                    || !alone.live.dsns.is_empty()
                {
                    p.push("the ConfigMap's configuration holds a database URL or DSN: secrets belong in the Secret".into());
                }
            }
        }
        let lookup = |k: &str| env.get(k).cloned();
        match erlmcp_bot::config::Config::load(Some(&file), &lookup) {
            Err(e) => p.push(format!(
                "the configuration with the Deployment's environment is refused: {e}"
            )),
            Ok(config) => {
                if config.mode.as_str() != "live" {
                    p.push(format!(
                        "the executor is {}, not live",
                        config.mode.as_str()
                    ));
                }
                for missing in erlmcp_bot::live::check_config(&config) {
                    p.push(format!("live mode would refuse to start: {missing}"));
                }
                if !config.database_url.starts_with("postgres://") {
                    p.push("DATABASE_URL is not set: the default SQLite file needs a writable directory and serves one replica only".into());
                }
                let kubeconfig = config
                    .live
                    .kubeconfig
                    .map(|k| k.display().to_string())
                    .unwrap_or_default();
                if !matches!(
                    mounted(pod, container, &kubeconfig),
                    Some(Mounted::Secret { .. })
                ) {
                    p.push(format!(
                        "the kubeconfig `{kubeconfig}` is not mounted from a Secret"
                    ));
                }
            }
        }
    }
    if let Err(e) = erlmcp_bot::slack::SlackConfig::from_env(&|k| env.get(k).cloned()) {
        p.push(format!("serve would refuse to start: {e}"));
    }

    // Ports: the probes and the Service reach what the bot listens on.
    let listen = env
        .get("ERLMCP_LISTEN")
        .and_then(|a| port_of(a))
        .unwrap_or(3000);
    let metrics = env
        .get("ERLMCP_METRICS_LISTEN")
        .and_then(|a| port_of(a))
        .unwrap_or(listen);
    let declared: BTreeSet<u64> = items(&container["ports"])
        .iter()
        .filter_map(|p| p["containerPort"].as_u64())
        .collect();
    if declared != BTreeSet::from([listen, metrics]) {
        p.push(format!(
            "the container declares ports {declared:?}; the bot listens on {listen} and {metrics}"
        ));
    }
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &container[probe]["httpGet"];
        if get["path"] != path || container_port(container, &get["port"]) != Some(listen) {
            p.push(format!(
                "{probe} must be GET {path} on port {listen}, is {get}"
            ));
        }
    }
    if let Some(port) =
        d["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"].as_str()
        && port != metrics.to_string()
    {
        p.push(format!(
            "prometheus.io/port is {port}, metrics are on {metrics}"
        ));
    }

    // Security and resources.
    let sc = &container["securityContext"];
    let psc = &pod["securityContext"];
    if sc["readOnlyRootFilesystem"] != true {
        p.push("readOnlyRootFilesystem must be true".into());
    }
    if sc["runAsNonRoot"] != true && psc["runAsNonRoot"] != true {
        p.push("runAsNonRoot must be true".into());
    }
    if sc["allowPrivilegeEscalation"] != false {
        p.push("allowPrivilegeEscalation must be false".into());
    }
    if !items(&sc["capabilities"]["drop"]).contains(&json!("ALL")) {
        p.push("capabilities must drop ALL".into());
    }
    if sc["seccompProfile"]["type"] != "RuntimeDefault"
        && psc["seccompProfile"]["type"] != "RuntimeDefault"
    {
        p.push("seccompProfile must be RuntimeDefault".into());
    }
    let uid = sc["runAsUser"]
        .as_u64()
        .or(psc["runAsUser"].as_u64())
        .unwrap_or(0);
    let image_user = repo
        .dockerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .and_then(|u| u.split(':').next()?.trim().parse::<u64>().ok());
    if uid == 0 || image_user != Some(uid) {
        p.push(format!(
            "runAsUser {uid} must be the Dockerfile's non-root USER ({image_user:?})"
        ));
    }
    let exposed: BTreeSet<u64> = repo
        .dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("EXPOSE "))
        .flat_map(|l| l.split_whitespace().filter_map(|p| p.parse().ok()))
        .collect();
    if exposed != declared {
        p.push(format!(
            "the Dockerfile exposes {exposed:?}, the container declares {declared:?}"
        ));
    }
    let res = &container["resources"];
    if !res["limits"]["memory"].is_string() {
        p.push("resources.limits.memory must be set".into());
    }
    if !res["requests"]["memory"].is_string() || !res["requests"]["cpu"].is_string() {
        p.push("resources.requests (cpu, memory) must be set".into());
    }

    // SIGTERM: the pre-stop pause, open requests (READ_TIMEOUT), then the hand-over of the runs.
    let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap_or(0);
    let needed = pre_stop + erlmcp_bot::http::READ_TIMEOUT.as_secs() + hand_over_grace_seconds();
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
    if grace <= needed {
        p.push(format!(
            "terminationGracePeriodSeconds {grace} leaves no room for the {needed} s a stopping bot may take to hand its runs over"
        ));
    }

    // The Service and the PodDisruptionBudget.
    match find("Service", Some("service.yaml")).as_slice() {
        [s] => {
            if !selects(&s.value["spec"]["selector"], labels) {
                p.push("the Service does not select the bot's pods".into());
            }
            let mut targets = BTreeSet::new();
            for port in items(&s.value["spec"]["ports"]) {
                let target = if port.get("targetPort").is_some() {
                    &port["targetPort"]
                } else {
                    &port["port"]
                };
                match container_port(container, target) {
                    Some(n) => {
                        targets.insert(n);
                    }
                    None => p.push(format!(
                        "Service port {} targets {target}, which the container does not declare",
                        port["name"]
                    )),
                }
            }
            if !targets.contains(&listen) {
                p.push(format!(
                    "the Service does not reach the Slack endpoints on {listen}"
                ));
            }
        }
        _ => p.push("service.yaml must hold exactly one Service".into()),
    }
    match find("PodDisruptionBudget", Some("pdb.yaml")).as_slice() {
        [b] => {
            if !selects(&b.value["spec"]["selector"]["matchLabels"], labels) {
                p.push("the PodDisruptionBudget does not select the bot's pods".into());
            }
            if b.value["spec"]["minAvailable"] != 1 {
                p.push("the PodDisruptionBudget must keep one replica (minAvailable 1)".into());
            }
        }
        _ => p.push("pdb.yaml must hold exactly one PodDisruptionBudget".into()),
    }

    // No Secret in the repository.
    for s in find("Secret", None) {
        p.push(format!(
            "{}: a Secret in the repository; create it with kubectl",
            s.file
        ));
    }

    for name in unread_names(&repo.readme) {
        p.push(format!(
            "README.md names {name}, which the bot does not read (bot/src/environment.rs)"
        ));
    }
    p
}

/// Names in `text` that look like the bot's variables but are not read by it. Variables of the
/// test and bench harnesses are not the bot's: `ERLMCP_TEST_*` (tests' PostgreSQL),
/// `ERLMCP_REQUIRE_*` (.ci/run: fail instead of skip), `ERLMCP_BENCH_*` (bench/run). A family
/// written `ERLMCP_PG_<REGION>` counts as its members.
fn unread_names(text: &str) -> BTreeSet<String> {
    const HARNESS: &[&str] = &["ERLMCP_TEST_", "ERLMCP_REQUIRE_", "ERLMCP_BENCH_"];
    let re = regex::Regex::new(
        r"\b(ERLMCP_[A-Z0-9][A-Z0-9_]*|SLACK_[A-Z0-9][A-Z0-9_]*|DATABASE_URL)(<[A-Za-z_]+>)?",
    )
    .unwrap();
    re.captures_iter(text)
        .filter_map(|c| {
            let name = c[1].to_string();
            let example = if c.get(2).is_some() {
                format!("{name}EXAMPLE")
            } else {
                name.clone()
            };
            (!HARNESS.iter().any(|h| name.starts_with(h)) && !is_read(&example)).then_some(name)
        })
        .collect()
}

#[test]
fn the_manifests_set_what_the_bot_reads_and_keep_secrets_in_a_secret() {
    let repo = load();
    let problems = problems(&repo);
    assert!(
        problems.is_empty(),
        "deploy/kubernetes:\n- {}",
        problems.join("\n- ")
    );
}

#[test]
fn the_readme_names_only_variables_the_bot_reads() {
    assert_eq!(
        unread_names(include_str!("../../README.md")),
        BTreeSet::new()
    );
    assert_eq!(
        unread_names(include_str!("../../ARCHITECTURE.md")),
        BTreeSet::new()
    );
    let sample = "ERLMCP_LISTEN, ERLMCP_PG_<REGION>, ERLMCP_PG_US_WEST_2, ERLMCP_BENCH_TARGETS, \
                  ERLMCP_REQUIRE_POSTGRES, ERLMCP_TEST_POSTGRES_URL, SLACK_BOT_TOKEN, \
                  ERLMCP_LISTEN_ADDR, SLACK_TOKEN, ERLMCP_FOO_<X>";
    assert_eq!(
        unread_names(sample),
        BTreeSet::from([
            "ERLMCP_LISTEN_ADDR".to_string(),
            "SLACK_TOKEN".to_string(),
            "ERLMCP_FOO_".to_string(),
        ])
    );
}

fn deployment(repo: &mut Repo) -> &mut Value {
    &mut repo
        .docs
        .iter_mut()
        .find(|d| d.value["kind"] == "Deployment")
        .unwrap()
        .value
}

fn container(repo: &mut Repo) -> &mut Value {
    &mut deployment(repo)["spec"]["template"]["spec"]["containers"][0]
}

fn env_var<'a>(repo: &'a mut Repo, name: &str) -> &'a mut Value {
    container(repo)["env"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("the Deployment sets no {name}"))
}

fn remove_env(repo: &mut Repo, name: &str) {
    container(repo)["env"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e["name"] != name);
}

fn of_kind<'a>(repo: &'a mut Repo, kind: &str) -> &'a mut Value {
    &mut repo
        .docs
        .iter_mut()
        .find(|d| d.value["kind"] == kind)
        .unwrap()
        .value
}

#[test]
fn each_check_catches_its_mistake() {
    type Break = Box<dyn Fn(&mut Repo)>;
    let cases: Vec<(&str, Break)> = vec![
        (
            "which the bot does not read",
            Box::new(|r| {
                container(r)["env"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "ERLMCP_LISTEN_ADDR", "value": "0.0.0.0:3000"}))
            }),
        ),
        (
            "the secret SLACK_SIGNING_SECRET must come from valueFrom.secretKeyRef",
            Box::new(|r| {
                *env_var(r, "SLACK_SIGNING_SECRET") =
                    json!({"name": "SLACK_SIGNING_SECRET", "value": "s3cr3t"})
            }),
        ),
        (
            "the secret ERLMCP_PG_US_WEST_2 must come from valueFrom.secretKeyRef",
            Box::new(
                |r| *env_var(r, "ERLMCP_PG_US_WEST_2") = json!({"name": "ERLMCP_PG_US_WEST_2", "valueFrom": {"configMapKeyRef": {"name": "erlmcp-bot", "key": "pg"}}}),
            ),
        ),
        (
            "the secret DATABASE_URL must come from valueFrom.secretKeyRef",
            Box::new(|r| env_var(r, "DATABASE_URL")["value"] = json!("postgres://u:p@db/x")),
        ),
        (
            "envFrom hides",
            Box::new(|r| container(r)["envFrom"] = json!([{"secretRef": {"name": "erlmcp-bot"}}])),
        ),
        (
            "is set twice",
            Box::new(|r| {
                container(r)["env"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "ERLMCP_LOG_FORMAT", "value": "text"}))
            }),
        ),
        (
            "replicas is 1",
            Box::new(|r| deployment(r)["spec"]["replicas"] = json!(1)),
        ),
        (
            "maxUnavailable 0",
            Box::new(|r| {
                deployment(r)["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = json!(1)
            }),
        ),
        (
            "livenessProbe must be GET /healthz",
            Box::new(|r| container(r)["livenessProbe"]["httpGet"]["path"] = json!("/health")),
        ),
        (
            "readinessProbe must be GET /readyz",
            Box::new(|r| container(r)["readinessProbe"]["httpGet"]["port"] = json!(9464)),
        ),
        (
            "readinessProbe must be GET /readyz",
            Box::new(|r| {
                container(r)["readinessProbe"] = Value::Null;
            }),
        ),
        (
            "readOnlyRootFilesystem must be true",
            Box::new(|r| container(r)["securityContext"]["readOnlyRootFilesystem"] = json!(false)),
        ),
        (
            "runAsNonRoot must be true",
            Box::new(|r| {
                container(r)["securityContext"]["runAsNonRoot"] = json!(false);
                deployment(r)["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] =
                    Value::Null;
            }),
        ),
        (
            "allowPrivilegeEscalation must be false",
            Box::new(|r| container(r)["securityContext"]["allowPrivilegeEscalation"] = Value::Null),
        ),
        (
            "capabilities must drop ALL",
            Box::new(|r| {
                container(r)["securityContext"]["capabilities"]["drop"] = json!(["NET_RAW"])
            }),
        ),
        (
            "must be the Dockerfile's non-root USER",
            Box::new(|r| container(r)["securityContext"]["runAsUser"] = json!(1000)),
        ),
        (
            "must be the Dockerfile's non-root USER",
            Box::new(|r| r.dockerfile = r.dockerfile.replace("USER 10001:10001", "USER root")),
        ),
        (
            "the Dockerfile exposes",
            Box::new(|r| r.dockerfile = r.dockerfile.replace("EXPOSE 3000 9464", "EXPOSE 8080")),
        ),
        (
            "resources.limits.memory must be set",
            Box::new(|r| container(r)["resources"]["limits"] = json!({"cpu": "1"})),
        ),
        (
            "resources.requests",
            Box::new(|r| container(r)["resources"]["requests"] = Value::Null),
        ),
        (
            "is not a ServiceAccount in rbac.yaml",
            Box::new(|r| {
                deployment(r)["spec"]["template"]["spec"]["serviceAccountName"] = json!("default")
            }),
        ),
        (
            "no RoleBinding in rbac.yaml binds",
            Box::new(|r| of_kind(r, "RoleBinding")["subjects"][0]["name"] = json!("someone-else")),
        ),
        (
            "targets \"web\", which the container does not declare",
            Box::new(|r| of_kind(r, "Service")["spec"]["ports"][0]["targetPort"] = json!("web")),
        ),
        (
            "targets 8080, which the container does not declare",
            Box::new(|r| of_kind(r, "Service")["spec"]["ports"][1]["targetPort"] = json!(8080)),
        ),
        (
            "the Service does not select the bot's pods",
            Box::new(|r| of_kind(r, "Service")["spec"]["selector"] = json!({"app": "erlmcp-bot"})),
        ),
        (
            "the PodDisruptionBudget does not select",
            Box::new(|r| {
                of_kind(r, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] = json!({})
            }),
        ),
        (
            "carry app=erlmcp",
            Box::new(|r| {
                deployment(r)["spec"]["template"]["metadata"]["labels"]["app"] = json!("erlmcp")
            }),
        ),
        (
            "terminationGracePeriodSeconds 30 leaves no room",
            Box::new(|r| {
                deployment(r)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] =
                    json!(30)
            }),
        ),
        (
            "the container declares ports",
            Box::new(|r| remove_env(r, "ERLMCP_METRICS_LISTEN")),
        ),
        (
            "prometheus.io/port is 9090",
            Box::new(|r| {
                deployment(r)["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] =
                    json!("9090")
            }),
        ),
        (
            "[regions.eu-central-1] database DSN",
            Box::new(|r| remove_env(r, "ERLMCP_PG_EU_CENTRAL_1")),
        ),
        (
            "the executor is simulated, not live",
            Box::new(|r| remove_env(r, "ERLMCP_EXECUTOR")),
        ),
        (
            "DATABASE_URL is not set",
            Box::new(|r| remove_env(r, "DATABASE_URL")),
        ),
        (
            "serve would refuse to start",
            Box::new(|r| remove_env(r, "SLACK_BOT_TOKEN")),
        ),
        (
            "is not a file mounted from configmap.yaml",
            Box::new(|r| {
                env_var(r, "ERLMCP_CONFIG")["value"] = json!("/etc/other/erlmcp-bot.toml")
            }),
        ),
        (
            "configmap.yaml has no ConfigMap erlmcp-bot with key erlmcp-bot.toml",
            Box::new(|r| {
                let cm = of_kind(r, "ConfigMap");
                let toml = cm["data"]["erlmcp-bot.toml"].take();
                cm["data"] = json!({ "bot.toml": toml });
            }),
        ),
        (
            "the ConfigMap's configuration is refused",
            Box::new(|r| {
                let cm = of_kind(r, "ConfigMap");
                let toml = cm["data"]["erlmcp-bot.toml"].as_str().unwrap().to_string();
                cm["data"]["erlmcp-bot.toml"] = json!(format!("approval_expiri = \"5m\"\n{toml}"));
            }),
        ),
        (
            "holds a database URL or DSN",
            Box::new(|r| {
                let cm = of_kind(r, "ConfigMap");
                let toml = cm["data"]["erlmcp-bot.toml"].as_str().unwrap().to_string();
                cm["data"]["erlmcp-bot.toml"] = json!(format!(
                    "database_url = \"postgres://bot:pw@db/bot\"\n{toml}"
                ));
            }),
        ),
        (
            "the kubeconfig `/etc/erlmcp-bot/kubeconfig` is not mounted from a Secret",
            Box::new(|r| {
                deployment(r)["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|s| s.get("secret").is_none())
            }),
        ),
        (
            "is not in namespace erlmcp-prod",
            Box::new(|r| {
                of_kind(r, "PodDisruptionBudget")["metadata"]["namespace"] = json!("default")
            }),
        ),
        (
            "kustomization.yaml lists",
            Box::new(|r| {
                of_kind(r, "Kustomization")["resources"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|f| f != "pdb.yaml")
            }),
        ),
        (
            "a Secret in the repository",
            Box::new(|r| {
                r.docs.push(Doc {
                    file: "secret.yaml".into(),
                    value: json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "erlmcp-bot", "namespace": NAMESPACE}}),
                })
            }),
        ),
        (
            "README.md names ERLMCP_LISTEN_ADDRESS",
            Box::new(|r| r.readme.push_str("\nSet `ERLMCP_LISTEN_ADDRESS`.\n")),
        ),
    ];
    let real = load();
    for (expected, break_it) in &cases {
        let mut repo = real.clone();
        break_it(&mut repo);
        let found = problems(&repo);
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "a broken manifest was not caught: expected a problem containing {expected:?}, got {found:#?}"
        );
    }
}
