//! Issue 5: the live executor against stand-ins that speak the real protocols: a local HTTP server
//! speaking the Kubernetes REST paths (no API server can run here), `moto_server` for Route53, a
//! real PostgreSQL streaming standby, and HTTP recorders for health checks and notifications.

use erlmcp_bot::config::{BackupSettings, HealthSettings, LiveSettings, NotifySettings};
use erlmcp_bot::live::Live;
use erlmcp_handlers::approval::RequestState;
use erlmcp_handlers::executor::{Action, Executor};
use erlmcp_handlers::ids::RequestId;
use erlmcp_handlers::topology::Topology;
use erlmcp_tests::fakes::{FakeKube, Moto, Recorder, Standby};
use erlmcp_tests::{Backend, RecordingOutbox, TestDb, engine_with, request, test_settings};
use std::collections::BTreeMap;
use std::sync::Arc;

struct LiveWorld {
    kube: BTreeMap<String, FakeKube>,
    moto: Option<Moto>,
    zone: String,
    health: Recorder,
    notify: Recorder,
    standby: Option<Standby>,
    topo: Topology,
    live: Arc<Live>,
}

fn settings(dsns: BTreeMap<String, String>, notify: &Recorder) -> LiveSettings {
    LiveSettings {
        kubeconfig: None,
        container: "erlmcp".into(),
        poll_ms: 10,
        alias_zone_id: String::new(),
        set_identifier: "primary".into(),
        route53_endpoint: None,
        dsns,
        dsn_sources: BTreeMap::new(),
        notify: NotifySettings {
            page_url: Some(format!("{}/v2/enqueue", notify.url)),
            page_routing_key_env: None,
            status_page_url: Some(format!("{}/status", notify.url)),
            webhooks: BTreeMap::from([(
                "security-team".to_string(),
                format!("{}/hooks/security", notify.url),
            )]),
        },
        page_routing_key: Some("R0UT1NGKEY".into()),
        backup: BackupSettings {
            api_url: Some(format!("{}/backup", notify.url)),
        },
        health: HealthSettings {
            expect_status: 200,
            expect_body: Some("ok".into()),
            timeout_seconds: 5,
        },
    }
}

/// Everything live, with the DNS record pointing at us-east-1. `with_dns` and `with_standby`
/// start moto and a standby (slower), for the tests that need them.
async fn world(with_dns: bool, with_standby: bool) -> Option<LiveWorld> {
    erlmcp_bot::cli::install_crypto_provider();
    let mut topo = Topology::runbook_default();
    let mut kube = BTreeMap::new();
    let mut clients = BTreeMap::new();
    for r in &topo.regions {
        let fake = FakeKube::start(r.replicas as i64).await;
        clients.insert(r.name.clone(), fake.client());
        kube.insert(r.name.clone(), fake);
    }
    let health = Recorder::start(200, "ok").await;
    for r in &mut topo.regions {
        r.health_url = format!("{}/health/{}", health.url, r.name);
    }
    let notify = Recorder::start(202, "{\"status\":\"success\"}").await;
    let moto = if with_dns {
        Some(Moto::start().await?)
    } else {
        None
    };
    let route53 = match &moto {
        Some(m) => m.client(),
        None => route53_at("http://127.0.0.1:9"),
    };
    let mut zone = String::new();
    if moto.is_some() {
        let created = route53
            .create_hosted_zone()
            .name("erlmcp.io")
            .caller_reference(format!("t{}", std::process::id()))
            .send()
            .await
            .expect("create zone");
        zone = created
            .hosted_zone()
            .unwrap()
            .id()
            .trim_start_matches("/hostedzone/")
            .to_string();
        topo.hosted_zone_id = zone.clone();
    }
    let standby = if with_standby {
        Some(Standby::start()?)
    } else {
        None
    };
    let mut dsns = BTreeMap::new();
    if let Some(s) = &standby {
        dsns.insert("us-west-2".to_string(), s.dsn.clone());
    }
    let mut st = settings(dsns, &notify);
    st.alias_zone_id = zone.clone();
    let live = Arc::new(Live::new(Arc::new(topo.clone()), st, clients, route53));
    if moto.is_some() {
        live.apply(&Action::PointDns {
            region: "us-east-1".into(),
        })
        .await
        .expect("initial record");
    }
    Some(LiveWorld {
        kube,
        moto,
        zone,
        health,
        notify,
        standby,
        topo,
        live,
    })
}

/// A Route53 client for an endpoint with no moto behind it (tests that do not touch DNS).
fn route53_at(url: &str) -> aws_sdk_route53::Client {
    aws_sdk_route53::Client::from_conf(
        aws_sdk_route53::Config::builder()
            .behavior_version(aws_sdk_route53::config::BehaviorVersion::latest())
            .region(aws_sdk_route53::config::Region::new("us-east-1"))
            .endpoint_url(url)
            .credentials_provider(aws_sdk_route53::config::Credentials::new(
                "a", "b", None, None, "t",
            ))
            .build(),
    )
}

async fn alias_target(w: &LiveWorld) -> String {
    let out = w
        .moto
        .as_ref()
        .unwrap()
        .client()
        .list_resource_record_sets()
        .hosted_zone_id(&w.zone)
        .send()
        .await
        .unwrap();
    let rec = out
        .resource_record_sets()
        .iter()
        .find(|r| r.set_identifier() == Some("primary"))
        .expect("record");
    rec.alias_target()
        .unwrap()
        .dns_name()
        .trim_end_matches('.')
        .to_string()
}

async fn app(w: &LiveWorld) -> (TestDb, erlmcp_handlers::engine::Engine) {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let clock = Arc::new(erlmcp_handlers::clock::ManualClock::new(
        erlmcp_tests::start_time(),
    ));
    let engine = engine_with(
        db.store.clone(),
        w.live.clone(),
        clock,
        RecordingOutbox::default(),
        test_settings(),
        w.topo.clone(),
    );
    (db, engine)
}

async fn say(e: &erlmcp_handlers::engine::Engine, who: &str, text: &str) -> String {
    e.handle(&request(who, text))
        .await
        .iter()
        .map(|r| r.text.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_in_live_mode_moves_dns_promotes_the_standby_and_scales() {
    let Some(w) = world(true, true).await else {
        return;
    };
    assert_eq!(alias_target(&w).await, "elb.us-east-1.amazonaws.com");
    let (_db, e) = app(&w).await;
    say(&e, "alice", "p0 declare API down in us-east-1").await;
    let plan = say(&e, "alice", "/failover us-west-2").await;
    assert!(plan.contains("executor live"), "{plan}");
    assert!(plan.contains("promote the PostgreSQL standby in us-west-2 (SELECT pg_promote()) [standby (in recovery) -> primary]"), "{plan}");
    assert!(
        plan.contains("to 3 replicas [0 replicas -> 3 replicas]"),
        "{plan}"
    );
    assert!(
        plan.contains("-> us-west-2 (elb.us-west-2.amazonaws.com) [us-east-1 -> us-west-2]"),
        "{plan}"
    );
    let done = say(&e, "bob", "approve").await;
    assert!(
        done.contains("🏁 RUN-20261128-1 (failover) done: 6/6 steps"),
        "{done}"
    );

    // Route53 (moto): the record now aliases the DR region's load balancer.
    assert_eq!(alias_target(&w).await, "elb.us-west-2.amazonaws.com");
    // PostgreSQL: the standby is a primary now.
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&w.standby.as_ref().unwrap().dsn)
        .await
        .unwrap();
    let (in_recovery,): (bool,) = sqlx::query_as("SELECT pg_is_in_recovery()")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert!(!in_recovery);
    // Kubernetes: the exact scale request, then readiness polls.
    let west = &w.kube["us-west-2"];
    let scale = west
        .seen()
        .into_iter()
        .find(|s| s.method == "PATCH")
        .expect("a PATCH");
    assert_eq!(
        scale.path,
        "/apis/apps/v1/namespaces/erlmcp-prod/statefulsets/erlmcp-cluster/scale"
    );
    assert_eq!(scale.content_type, "application/merge-patch+json");
    assert_eq!(
        scale.json(),
        serde_json::json!({ "spec": { "replicas": 3 } })
    );
    assert_eq!(west.state.lock().unwrap().replicas, 3);
    assert!(
        west.seen()
            .iter()
            .filter(|s| s.method == "GET" && s.path.ends_with("/statefulsets/erlmcp-cluster"))
            .count()
            >= 3,
        "it waited for pods"
    );
    assert!(
        w.kube["us-east-1"].seen().iter().all(|s| s.method == "GET"),
        "the primary was not touched"
    );
    // Health and status page.
    assert!(
        w.health
            .seen()
            .iter()
            .any(|s| s.method == "GET" && s.path == "/health/us-west-2")
    );
    let status = w
        .notify
        .seen()
        .into_iter()
        .find(|s| s.path == "/status")
        .expect("status page call");
    assert_eq!(status.json()["status"], "major_outage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_from_the_api_server_is_a_clear_step_failure() {
    let Some(w) = world(false, false).await else {
        return;
    };
    w.kube["us-west-2"].forbid("PATCH", "/scale");
    let (db, e) = app(&w).await;
    say(&e, "alice", "p1 declare Capacity").await;
    say(&e, "alice", "scale us-west-2 3").await;
    let r = e.handle(&request("bob", "approve")).await;
    assert!(r[0].is_error, "{r:?}");
    assert!(
        r[0].text.contains("failed at step 1/2 `Scale StatefulSet`: Kubernetes API 403 Forbidden: statefulsets.apps \"erlmcp-cluster\" is forbidden: User \"system:serviceaccount:erlmcp-prod:erlmcp-bot\" cannot patch"),
        "{}",
        r[0].text
    );
    assert!(
        r[0].text.contains("Not done: 2. Wait for ready pods"),
        "{}",
        r[0].text
    );
    assert_eq!(
        db.store
            .request(&RequestId::new("REQ-20261128-1"))
            .await
            .unwrap()
            .unwrap()
            .state,
        RequestState::Failed
    );
    assert_eq!(
        w.kube["us-west-2"]
            .seen()
            .iter()
            .filter(|s| s.method == "PATCH")
            .count(),
        1,
        "a 403 is not retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_applies_a_deny_all_policy_by_server_side_apply() {
    let Some(w) = world(false, false).await else {
        return;
    };
    let (_db, e) = app(&w).await;
    say(&e, "alice", "p0 declare Breach").await;
    let plan = say(&e, "alice", "isolate us-east-1").await;
    assert!(plan.contains("[absent -> present]"), "{plan}");
    let done = say(&e, "sam", "approve").await;
    assert!(done.contains("🏁"), "{done}");
    let seen = w.kube["us-east-1"].seen();
    let apply = seen
        .iter()
        .find(|s| s.method == "PATCH" && s.path.ends_with("/networkpolicies/incident-isolation"))
        .expect("policy apply");
    assert_eq!(
        apply.path,
        "/apis/networking.k8s.io/v1/namespaces/erlmcp-prod/networkpolicies/incident-isolation"
    );
    assert!(
        apply.query.contains("fieldManager=erlmcp-bot") && apply.query.contains("force=true"),
        "{}",
        apply.query
    );
    assert_eq!(apply.content_type, "application/apply-patch+yaml");
    let body = apply.json();
    assert_eq!(body["kind"], "NetworkPolicy");
    assert_eq!(body["spec"]["podSelector"]["matchLabels"]["app"], "erlmcp");
    assert_eq!(
        body["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    assert!(
        body["spec"].get("ingress").is_none() && body["spec"].get("egress").is_none(),
        "deny-all has no rules: {body}"
    );
    let cm = seen
        .iter()
        .find(|s| s.method == "PATCH" && s.path.ends_with("/configmaps/erlmcp-audit-logging"))
        .expect("audit config map");
    assert_eq!(cm.json()["data"]["audit_level"], "RequestResponse");
    assert!(seen.iter().any(|s| s.method == "PATCH"
        && s.path.ends_with("/statefulsets/erlmcp-cluster")
        && s.content_type == "application/strategic-merge-patch+json"
        && s.body.contains("kubectl.kubernetes.io/restartedAt")));
    // Unconfigured hooks say they were skipped and why; configured ones are called.
    let timeline = say(&e, "alice", "timeline").await;
    assert!(
        timeline
            .contains("skipped: no `forensics` webhook configured ([notify.webhooks] forensics"),
        "{timeline}"
    );
    let hook = w
        .notify
        .seen()
        .into_iter()
        .find(|s| s.path == "/hooks/security")
        .expect("security team hook");
    assert!(
        hook.json()["text"]
            .as_str()
            .unwrap()
            .contains("us-east-1 isolated")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_sets_the_image_records_the_previous_version_and_waits() {
    let Some(w) = world(false, false).await else {
        return;
    };
    let (_db, e) = app(&w).await;
    say(&e, "alice", "p1 declare Bad deploy").await;
    let refused = say(&e, "alice", "rollback").await;
    assert!(
        refused.contains("no previous version is recorded on the StatefulSet"),
        "{refused}"
    );
    let plan = say(&e, "alice", "rollback 3.0.1 us-east-1").await;
    assert!(plan.contains("[3.0.2 -> 3.0.1]"), "{plan}");
    assert!(say(&e, "bob", "approve").await.contains("🏁"));
    let patch = w.kube["us-east-1"]
        .seen()
        .into_iter()
        .find(|s| s.method == "PATCH")
        .unwrap();
    assert_eq!(patch.content_type, "application/strategic-merge-patch+json");
    assert_eq!(
        patch.json()["spec"]["template"]["spec"]["containers"][0],
        serde_json::json!({ "name": "erlmcp", "image": "ghcr.io/seanchatmangpt/erlmcp:3.0.1" })
    );
    assert_eq!(
        patch.json()["metadata"]["annotations"]["erlmcp.io/previous-version"],
        "3.0.2"
    );
    // Now `previous` is known: back to 3.0.2.
    let plan = say(&e, "alice", "rollback us-east-1").await;
    assert!(plan.contains("[3.0.1 -> 3.0.2]"), "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_uses_the_pagerduty_events_v2_body_and_failing_health_is_reported() {
    let Some(w) = world(false, false).await else {
        return;
    };
    let said = w
        .live
        .apply(&Action::Page {
            summary: "P0 INC-1: API down".into(),
        })
        .await
        .unwrap();
    assert_eq!(said, "on-call paged: P0 INC-1: API down");
    let page = w
        .notify
        .seen()
        .into_iter()
        .find(|s| s.path == "/v2/enqueue")
        .unwrap();
    let body = page.json();
    assert_eq!(body["routing_key"], "R0UT1NGKEY");
    assert_eq!(body["event_action"], "trigger");
    assert_eq!(body["payload"]["summary"], "P0 INC-1: API down");
    assert_eq!(body["payload"]["severity"], "critical");
    assert_eq!(body["payload"]["source"], "erlmcp-bot");
    w.health.answer(503, "upstream connect error");
    let err = w
        .live
        .apply(&Action::CheckHealth {
            region: "eu-west-1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, erlmcp_handlers::executor::FailureKind::Transient);
    assert!(
        err.message
            .contains("answered 503 (expected 200 containing \"ok\"): upstream connect error"),
        "{}",
        err.message
    );
    w.notify.answer(500, "pagerduty is having a bad day");
    let err = w
        .live
        .apply(&Action::Page {
            summary: "x".into(),
        })
        .await
        .unwrap_err();
    assert!(
        err.message
            .contains("paging answered 500 Internal Server Error: pagerduty is having a bad day"),
        "{}",
        err.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_server_is_a_transient_failure_with_the_reason() {
    erlmcp_bot::cli::install_crypto_provider();
    let dead =
        kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
    let notify = Recorder::start(200, "ok").await;
    let route53 = route53_at("http://127.0.0.1:9");
    let live = Live::new(
        Arc::new(Topology::runbook_default()),
        settings(BTreeMap::new(), &notify),
        BTreeMap::from([("us-east-1".to_string(), dead)]),
        route53,
    );
    let err = live
        .apply(&Action::Scale {
            region: "us-east-1".into(),
            replicas: 4,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, erlmcp_handlers::executor::FailureKind::Transient);
    assert!(
        err.message.starts_with("Kubernetes API unreachable:"),
        "{}",
        err.message
    );
    let err = live
        .apply(&Action::PointDns {
            region: "us-west-2".into(),
        })
        .await
        .unwrap_err();
    assert!(err.message.starts_with("Route53:"), "{}", err.message);
    let err = live
        .apply(&Action::PromoteDatabase {
            region: "us-west-2".into(),
        })
        .await
        .unwrap_err();
    assert!(
        err.message.contains("no PostgreSQL DSN for us-west-2"),
        "{}",
        err.message
    );
}

/// deploy/kubernetes/rbac.yaml grants exactly the (verb, resource) pairs the executor uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_covers_every_call_the_executor_makes_and_nothing_more() {
    let Some(w) = world(false, false).await else {
        return;
    };
    let r = "us-east-1".to_string();
    let actions = vec![
        Action::Scale {
            region: r.clone(),
            replicas: 4,
        },
        Action::WaitReady { region: r.clone() },
        Action::PodsReady { region: r.clone() },
        Action::IsolateNetwork {
            region: r.clone(),
            name: "incident-isolation".into(),
        },
        Action::RemoveNetworkPolicy {
            region: r.clone(),
            name: "incident-isolation".into(),
        },
        Action::ApplyConfigMap {
            region: r.clone(),
            name: "erlmcp-read-only".into(),
            data: BTreeMap::from([("read_only".into(), "true".into())]),
        },
        Action::DeleteConfigMap {
            region: r.clone(),
            name: "erlmcp-read-only".into(),
        },
        Action::SetImage {
            region: r.clone(),
            version: "3.0.1".into(),
        },
        Action::WaitRollout { region: r.clone() },
        Action::RestartRollout { region: r.clone() },
    ];
    for a in &actions {
        w.live.observe(a).await.unwrap();
        w.live
            .apply(a)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", a.kind()));
    }
    // Also the 404 paths (deleting what is absent).
    w.live.apply(&actions[4]).await.unwrap();
    let mut used = std::collections::BTreeSet::new();
    for s in w.kube["us-east-1"].seen() {
        let parts: Vec<&str> = s.path.trim_start_matches('/').split('/').collect();
        let (group, rest) = if parts[0] == "api" {
            ("", &parts[2..])
        } else {
            (parts[1], &parts[3..])
        };
        // namespaces/{ns}/{resource}[/{name}[/{sub}]]
        let resource = match rest.len() {
            3 => rest[2].to_string(),
            4 => rest[2].to_string(),
            5 => format!("{}/{}", rest[2], rest[4]),
            _ => panic!("unexpected path {}", s.path),
        };
        let verb = match (s.method.as_str(), rest.len()) {
            ("GET", 3) => "list",
            ("GET", _) => "get",
            ("PATCH", _) => "patch",
            ("DELETE", _) => "delete",
            (m, _) => panic!("unexpected method {m}"),
        };
        used.insert((group.to_string(), resource, verb.to_string()));
    }
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/kubernetes/rbac.yaml"
    ))
    .unwrap();
    let mut granted = std::collections::BTreeSet::new();
    for doc in text.split("\n---\n") {
        let v: serde_json::Value = serde_saphyr::from_str(doc).unwrap();
        if v["kind"] != "Role" {
            continue;
        }
        assert_eq!(v["metadata"]["namespace"], "erlmcp-prod");
        for rule in v["rules"].as_array().unwrap() {
            for g in rule["apiGroups"].as_array().unwrap() {
                for res in rule["resources"].as_array().unwrap() {
                    for verb in rule["verbs"].as_array().unwrap() {
                        granted.insert((
                            g.as_str().unwrap().to_string(),
                            res.as_str().unwrap().to_string(),
                            verb.as_str().unwrap().to_string(),
                        ));
                    }
                }
            }
        }
    }
    assert_eq!(
        granted, used,
        "deploy/kubernetes/rbac.yaml must grant exactly what the executor uses"
    );
}

#[test]
fn live_mode_with_incomplete_configuration_names_every_missing_field() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\nclusters: []\ncontexts:\n- name: us-east-1\n  context: { cluster: c, user: u }\nusers: []\n").unwrap();
    let file = dir.path().join("bot.toml");
    std::fs::write(&file, format!("executor = \"live\"\n[kube]\nkubeconfig = \"{}\"\n[regions.us-west-2]\ndatabase_dsn_env = \"DR_WEST_DSN\"\n", kubeconfig.display())).unwrap();
    let config = erlmcp_bot::config::Config::load(Some(&file), &|_| None).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt
        .block_on(Live::connect(&config))
        .err()
        .expect("incomplete configuration is refused");
    assert!(
        matches!(err, erlmcp_bot::error::Error::Config(_)),
        "{err:?}"
    );
    let err = err.to_string();
    for expected in [
        "live executor: the configuration is incomplete:",
        "- [regions.us-west-2] database DSN: set the environment variable DR_WEST_DSN (or database_dsn_env)",
        "- [regions.eu-central-1] database DSN: set the environment variable ERLMCP_PG_EU_CENTRAL_1",
        "- [regions.eu-west-1] kube_context `eu-west-1`: no such context in the kubeconfig",
        "- [regions.us-west-2] kube_context `us-west-2`: no such context in the kubeconfig",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_reads_the_real_state_and_changes_nothing() {
    let Some(w) = world(false, false).await else {
        return;
    };
    let dry = Arc::new(erlmcp_handlers::executor::dry_run::DryRun::new(
        w.live.clone(),
        Arc::new(w.topo.clone()),
    ));
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let clock = Arc::new(erlmcp_handlers::clock::ManualClock::new(
        erlmcp_tests::start_time(),
    ));
    let e = engine_with(
        db.store.clone(),
        dry,
        clock,
        RecordingOutbox::default(),
        test_settings(),
        w.topo.clone(),
    );
    say(&e, "alice", "p1 declare Capacity").await;
    let plan = say(&e, "alice", "scale eu-west-1 5").await;
    assert!(
        plan.contains("executor dry-run") && plan.contains("[2 replicas -> 5 replicas]"),
        "{plan}"
    );
    let done = say(&e, "bob", "approve").await;
    assert!(done.contains("🏁"), "{done}");
    let timeline = say(&e, "alice", "timeline").await;
    assert!(timeline.contains("dry run, nothing changed: would scale statefulset erlmcp-prod/erlmcp-cluster (context eu-west-1) to 5 replicas"), "{timeline}");
    assert!(
        w.kube["eu-west-1"].seen().iter().all(|s| s.method == "GET"),
        "dry-run only reads"
    );
    assert_eq!(w.kube["eu-west-1"].state.lock().unwrap().replicas, 2);
}

/// The production path: contexts from a kubeconfig file, DSNs from the environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_mode_connects_through_a_kubeconfig_with_a_context_per_region() {
    erlmcp_bot::cli::install_crypto_provider();
    let fake = FakeKube::start(3).await;
    let dir = tempfile::tempdir().unwrap();
    let mut kc = String::from("apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: URL\nusers:\n- name: bot\n  user:\n    token: not-a-real-token\ncontexts:\n").replace("URL", &fake.url);
    for r in Topology::runbook_default().regions {
        kc.push_str(&format!("- name: {}\n  context:\n    cluster: fake\n    user: bot\n    namespace: erlmcp-prod\n", r.name));
    }
    kc.push_str("current-context: us-east-1\n");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kc).unwrap();
    let kubeconfig_path = kubeconfig.display().to_string();
    let env = move |k: &str| match k {
        "KUBECONFIG" => Some(kubeconfig_path.clone()),
        "ERLMCP_EXECUTOR" => Some("live".into()),
        "ERLMCP_PG_US_WEST_2" | "ERLMCP_PG_EU_CENTRAL_1" => {
            Some("postgres://postgres@127.0.0.1:1/none".into())
        }
        "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:9".into()),
        _ => None,
    };
    let config =
        erlmcp_bot::config::Config::load(Some(std::path::Path::new("/dev/null")), &env).unwrap();
    let live = Live::connect(&config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        live.apply(&Action::Scale {
            region: "eu-west-1".into(),
            replicas: 5
        })
        .await
        .unwrap(),
        "eu-west-1: replicas 3 -> 5"
    );
    let patch = fake
        .seen()
        .into_iter()
        .find(|s| s.method == "PATCH")
        .unwrap();
    assert_eq!(
        patch.path,
        "/apis/apps/v1/namespaces/erlmcp-prod/statefulsets/erlmcp-cluster/scale"
    );
}
