//! Stand-ins for remote systems, on 127.0.0.1: a Kubernetes API server (no real one can run on
//! these machines) that speaks the REST paths the live executor uses, keeps the objects it is sent
//! and records every request; an HTTP recorder for health checks and webhooks; `moto_server` for
//! Route53; and a real PostgreSQL streaming standby.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One request as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: String,
}

impl Seen {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// The objects of one region's `erlmcp-prod` namespace.
#[derive(Debug)]
pub struct KubeState {
    pub replicas: i64,
    pub ready: i64,
    pub image: String,
    pub annotations: BTreeMap<String, String>,
    pub template_annotations: BTreeMap<String, String>,
    pub generation: i64,
    pub network_policies: BTreeMap<String, Value>,
    pub config_maps: BTreeMap<String, Value>,
    /// Requests answered 403 (method, path suffix), like an RBAC denial.
    pub forbid: Vec<(String, String)>,
    /// Requests that wait (method, path suffix) until the test releases them: a slow step.
    pub holds: Vec<(String, String, tokio::sync::watch::Receiver<bool>)>,
    /// Every request as it arrived.
    pub seen: Vec<Seen>,
    /// Changing requests (anything but GET) that the server carried out and answered. A request
    /// whose client went away while it was held is in `seen` but not here: it changed nothing.
    pub applied: Vec<Seen>,
}

#[derive(Clone)]
pub struct FakeKube {
    pub url: String,
    pub state: Arc<Mutex<KubeState>>,
}

fn status(code: u16, reason: &str, message: String) -> Response {
    let body = json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code });
    (
        StatusCode::from_u16(code).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok(v: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn statefulset(ns: &str, name: &str, s: &KubeState) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": { "name": name, "namespace": ns, "generation": s.generation, "annotations": s.annotations },
        "spec": {
            "replicas": s.replicas, "serviceName": name,
            "selector": { "matchLabels": { "app": "erlmcp" } },
            "template": { "metadata": { "labels": { "app": "erlmcp" }, "annotations": s.template_annotations },
                          "spec": { "containers": [ { "name": "erlmcp", "image": s.image } ] } }
        },
        "status": { "replicas": s.replicas, "readyReplicas": s.ready, "updatedReplicas": s.ready, "observedGeneration": s.generation,
                    "currentRevision": "r1", "updateRevision": "r1" }
    })
}

async fn kube_handler(
    State(state): State<Arc<Mutex<KubeState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let body = String::from_utf8_lossy(&body).to_string();
    let seen = Seen {
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().unwrap_or("").to_string(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        body: body.clone(),
    };
    let hold = {
        let mut s = state.lock().unwrap();
        s.seen.push(seen.clone());
        s.holds
            .iter()
            .find(|(m, suffix, released)| {
                *m == method.as_str() && path.ends_with(suffix.as_str()) && !*released.borrow()
            })
            .map(|(_, _, released)| released.clone())
    };
    if let Some(mut released) = hold {
        // If the client goes away meanwhile, this future is dropped and nothing is applied.
        let _ = released.wait_for(|r| *r).await;
    }
    let response = handle_kube(&mut state.lock().unwrap(), &method, &path, &body);
    if method != Method::GET && response.status().is_success() {
        state.lock().unwrap().applied.push(seen);
    }
    response
}

fn handle_kube(s: &mut KubeState, method: &Method, path: &str, body: &str) -> Response {
    if s.forbid
        .iter()
        .any(|(m, suffix)| *m == method.as_str() && path.ends_with(suffix.as_str()))
    {
        // As the API server words it: `statefulsets.apps "NAME" is forbidden: ... resource "statefulsets/scale" ...`
        let segs: Vec<&str> = path.split('/').collect();
        let i = segs.iter().position(|p| *p == "statefulsets").unwrap_or(0);
        let (name, sub) = (
            segs.get(i + 1).copied().unwrap_or(""),
            segs.get(i + 2).map(|s| format!("/{s}")).unwrap_or_default(),
        );
        return status(
            403,
            "Forbidden",
            format!(
                "statefulsets.apps \"{name}\" is forbidden: User \"system:serviceaccount:erlmcp-prod:erlmcp-bot\" cannot {} resource \"statefulsets{sub}\" in API group \"apps\" in the namespace \"erlmcp-prod\"",
                method.as_str().to_ascii_lowercase()
            ),
        );
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let patch: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    match (method.as_str(), parts.as_slice()) {
        (
            "GET",
            [
                "apis",
                "apps",
                "v1",
                "namespaces",
                ns,
                "statefulsets",
                name,
                "scale",
            ],
        ) => ok(
            json!({ "apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": { "name": name, "namespace": ns }, "spec": { "replicas": s.replicas }, "status": { "replicas": s.replicas } }),
        ),
        (
            "PATCH",
            [
                "apis",
                "apps",
                "v1",
                "namespaces",
                ns,
                "statefulsets",
                name,
                "scale",
            ],
        ) => {
            s.replicas = patch["spec"]["replicas"].as_i64().unwrap_or(s.replicas);
            s.ready = s.ready.min(s.replicas);
            ok(
                json!({ "apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": { "name": name, "namespace": ns }, "spec": { "replicas": s.replicas } }),
            )
        }
        ("GET", ["apis", "apps", "v1", "namespaces", ns, "statefulsets", name]) => {
            // Pods become ready one poll at a time, so waiting really waits.
            let v = statefulset(ns, name, s);
            if s.ready < s.replicas {
                s.ready += 1;
            }
            ok(v)
        }
        ("PATCH", ["apis", "apps", "v1", "namespaces", ns, "statefulsets", name]) => {
            if let Some(a) = patch["metadata"]["annotations"].as_object() {
                for (k, v) in a {
                    s.annotations
                        .insert(k.clone(), v.as_str().unwrap_or("").to_string());
                }
            }
            if let Some(a) = patch["spec"]["template"]["metadata"]["annotations"].as_object() {
                for (k, v) in a {
                    s.template_annotations
                        .insert(k.clone(), v.as_str().unwrap_or("").to_string());
                }
            }
            if let Some(image) =
                patch["spec"]["template"]["spec"]["containers"][0]["image"].as_str()
            {
                s.image = image.to_string();
                s.ready = 0;
            }
            s.generation += 1;
            ok(statefulset(ns, name, s))
        }
        ("GET", ["api", "v1", "namespaces", _ns, "pods"]) => {
            let items: Vec<Value> = (0..s.replicas)
                .map(|i| {
                    json!({ "metadata": { "name": format!("erlmcp-cluster-{i}"), "labels": { "app": "erlmcp" } },
                            "status": { "conditions": [ { "type": "Ready", "status": if i < s.ready { "True" } else { "False" } } ] } })
                })
                .collect();
            ok(json!({ "apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items }))
        }
        (
            m,
            [
                "apis",
                "networking.k8s.io",
                "v1",
                "namespaces",
                _ns,
                "networkpolicies",
                name,
            ],
        ) => object(s, m, name, patch, "networkpolicies", "networking.k8s.io"),
        (m, ["api", "v1", "namespaces", _ns, "configmaps", name]) => {
            object(s, m, name, patch, "configmaps", "")
        }
        _ => status(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({method} {path})"),
        ),
    }
}

fn object(
    s: &mut KubeState,
    method: &str,
    name: &str,
    body: Value,
    resource: &str,
    group: &str,
) -> Response {
    let store = if resource == "networkpolicies" {
        &mut s.network_policies
    } else {
        &mut s.config_maps
    };
    let not_found = || {
        status(
            404,
            "NotFound",
            format!(
                "{resource}{} \"{name}\" not found",
                if group.is_empty() {
                    String::new()
                } else {
                    format!(".{group}")
                }
            ),
        )
    };
    match method {
        "GET" => store.get(name).cloned().map(ok).unwrap_or_else(not_found),
        "PATCH" => {
            store.insert(name.to_string(), body.clone());
            ok(body)
        }
        "DELETE" => match store.remove(name) {
            Some(_) => ok(
                json!({ "kind": "Status", "apiVersion": "v1", "status": "Success", "details": { "name": name, "kind": resource } }),
            ),
            None => not_found(),
        },
        _ => status(405, "MethodNotAllowed", format!("{method} not allowed")),
    }
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    url
}

impl FakeKube {
    pub async fn start(replicas: i64) -> FakeKube {
        let state = Arc::new(Mutex::new(KubeState {
            replicas,
            ready: replicas,
            image: "ghcr.io/seanchatmangpt/erlmcp:3.0.2".into(),
            annotations: BTreeMap::new(),
            template_annotations: BTreeMap::new(),
            generation: 1,
            network_policies: BTreeMap::new(),
            config_maps: BTreeMap::new(),
            forbid: Vec::new(),
            holds: Vec::new(),
            seen: Vec::new(),
            applied: Vec::new(),
        }));
        let router = Router::new()
            .fallback(kube_handler)
            .with_state(state.clone());
        FakeKube {
            url: serve(router).await,
            state,
        }
    }

    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Changing requests the server carried out (not those abandoned while held).
    pub fn applied(&self) -> Vec<Seen> {
        self.state.lock().unwrap().applied.clone()
    }

    /// From now on, requests of `method` to a path ending in `path_suffix` wait until the
    /// returned sender is given `true` (or dropped: then they wait for ever, as a hung API would).
    pub fn hold(&self, method: &str, path_suffix: &str) -> tokio::sync::watch::Sender<bool> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        self.state
            .lock()
            .unwrap()
            .holds
            .push((method.into(), path_suffix.into(), rx));
        tx
    }

    /// Waits (bounded) until `n` requests matching `method` and `path_suffix` have arrived.
    pub async fn wait_for_arrivals(&self, method: &str, path_suffix: &str, n: usize) {
        for _ in 0..1200 {
            let count = self
                .seen()
                .iter()
                .filter(|s| s.method == method && s.path.ends_with(path_suffix))
                .count();
            if count >= n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!(
            "never saw {n} {method} …{path_suffix}; seen: {:?}",
            self.seen()
                .iter()
                .map(|s| format!("{} {}", s.method, s.path))
                .collect::<Vec<_>>()
        );
    }

    /// A kubeconfig with one context per runbook region, all pointing at this server.
    pub fn write_kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let mut kc = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\nusers:\n- name: bot\n  user:\n    token: not-a-real-token\ncontexts:\n",
            self.url
        );
        for r in erlmcp_handlers::topology::Topology::runbook_default().regions {
            kc.push_str(&format!(
                "- name: {}\n  context:\n    cluster: fake\n    user: bot\n    namespace: erlmcp-prod\n",
                r.name
            ));
        }
        kc.push_str("current-context: us-east-1\n");
        let path = dir.join("kubeconfig");
        std::fs::write(&path, kc).unwrap();
        path
    }

    pub fn forbid(&self, method: &str, path_suffix: &str) {
        self.state
            .lock()
            .unwrap()
            .forbid
            .push((method.into(), path_suffix.into()));
    }
}

/// What a recorder keeps: the requests, and the answer to give.
type RecorderState = (Arc<Mutex<Vec<Seen>>>, Arc<Mutex<(u16, String)>>);

/// Answers every request with a configurable status and body, and records what it was sent.
#[derive(Clone)]
pub struct Recorder {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub answer: Arc<Mutex<(u16, String)>>,
}

async fn record_handler(
    State((seen, answer)): State<RecorderState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or("").to_string(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        body: String::from_utf8_lossy(&body).to_string(),
    });
    let (code, text) = answer.lock().unwrap().clone();
    (StatusCode::from_u16(code).unwrap(), text).into_response()
}

impl Recorder {
    pub async fn start(code: u16, body: &str) -> Recorder {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(Mutex::new((code, body.to_string())));
        let router = Router::new()
            .fallback(record_handler)
            .with_state((seen.clone(), answer.clone()));
        Recorder {
            url: serve(router).await,
            seen,
            answer,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn answer(&self, code: u16, body: &str) {
        *self.answer.lock().unwrap() = (code, body.to_string());
    }
}

/// A port nothing listens on now (for a stand-in to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether a missing stand-in fails the test (CI) instead of skipping it.
pub fn required(what: &str) -> bool {
    let v = std::env::var("ERLMCP_REQUIRE_EMULATORS")
        .or_else(|_| std::env::var("ERLMCP_REQUIRE_POSTGRES"))
        .unwrap_or_default();
    let req = v == "1" || v == "true";
    if !req {
        eprintln!(
            "note: {what} not available; test skipped (set ERLMCP_REQUIRE_EMULATORS=1 to make this a failure)"
        );
    }
    req
}

/// A `moto_server` (PyPI `moto[server]`) on a free port, killed when dropped.
pub struct Moto {
    pub url: String,
    child: std::process::Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    pub async fn start() -> Option<Moto> {
        let port = free_port();
        let spawn = |program: &str, pre: &[&str]| {
            std::process::Command::new(program)
                .args(pre)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
        };
        // The console script, or the module where the script's directory is not on PATH.
        let child = spawn("moto_server", &[]).or_else(|_| spawn("python3", &["-m", "moto.server"]));
        let child = match child {
            Ok(c) => c,
            Err(e) if !required("moto_server") => {
                eprintln!("note: cannot start moto_server: {e}");
                return None;
            }
            Err(e) => {
                panic!("moto_server is required but cannot start: {e} (pip install 'moto[server]')")
            }
        };
        let moto = Moto {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(moto);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("moto_server did not start listening on port {port}");
    }

    pub fn client(&self) -> aws_sdk_route53::Client {
        let creds = aws_sdk_route53::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "erlmcp-tests",
        );
        let config = aws_sdk_route53::Config::builder()
            .behavior_version(aws_sdk_route53::config::BehaviorVersion::latest())
            .region(aws_sdk_route53::config::Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(creds)
            .build();
        aws_sdk_route53::Client::from_conf(config)
    }
}

/// A real streaming standby of the local PostgreSQL server, removed when dropped.
pub struct Standby {
    pub dsn: String,
    dir: String,
}

fn script() -> String {
    format!("{}/scripts/pg-standby.sh", env!("CARGO_MANIFEST_DIR"))
}

impl Standby {
    pub fn start() -> Option<Standby> {
        let is_root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        if !is_root {
            if required("a PostgreSQL standby (needs root)") {
                panic!(
                    "the standby test needs root to run a PostgreSQL server as the postgres user"
                );
            }
            return None;
        }
        let port = free_port();
        let dir = format!("/tmp/erlmcp-standby-{}-{port}", std::process::id());
        let out = std::process::Command::new("bash")
            .args([&script(), "start", &port.to_string(), &dir])
            .output()
            .expect("run pg-standby.sh");
        if !out.status.success() {
            let msg = format!(
                "pg-standby.sh failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if required("a PostgreSQL standby") {
                panic!("{msg}");
            }
            eprintln!("note: {msg}");
            return None;
        }
        Some(Standby {
            dsn: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
        })
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .args([&script(), "stop", &self.dir])
            .output();
    }
}
