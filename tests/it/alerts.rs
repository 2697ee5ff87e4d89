//! Alerts open incidents: the engine on both backends (grouping, repeats, resolved, attach,
//! two replicas receiving one alert), then the built binary fed by a real Alertmanager, and
//! hostile or malformed webhook requests.

use crate::program::{Served, Workdir};
use crate::shipped::slack_env;
use erlmcp_handlers::alerts::Notification;
use erlmcp_handlers::incident::IncidentStatus;
use erlmcp_handlers::timeline::Source;
use erlmcp_tests::slack_fake::FakeSlack;
use erlmcp_tests::{Backend, TestApp, engine_on, test_settings};
use serde_json::json;
use std::sync::Arc;

/// One webhook notification (payload version 4) of `alerts`, each `(fingerprint, status,
/// labels)`, in group `group`.
/// `(fingerprint, status, labels)` of one alert.
type AlertSpec<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

fn notification(group: &str, alerts: &[AlertSpec]) -> Notification {
    let alerts: Vec<serde_json::Value> = alerts
        .iter()
        .map(|(fp, status, labels)| {
            let labels: serde_json::Map<String, serde_json::Value> = labels
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            json!({
                "status": status,
                "labels": labels,
                "annotations": {"summary": "Error rate above 0.1%"},
                "startsAt": "2026-11-28T13:50:00Z",
                "endsAt": if *status == "resolved" { "2026-11-28T14:20:00Z" } else { "0001-01-01T00:00:00Z" },
                "generatorURL": "http://prometheus:9090/graph?g0.expr=rate",
                "fingerprint": fp,
            })
        })
        .collect();
    let body = json!({
        "version": "4",
        "groupKey": group,
        "status": "firing",
        "receiver": "erlmcp-bot",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "truncatedAlerts": 0,
        "alerts": alerts,
    });
    Notification::parse(body.to_string().as_bytes()).unwrap()
}

const ERRORS_EAST: &[(&str, &str)] = &[
    ("alertname", "HighErrorRate"),
    ("severity", "critical"),
    ("region", "us-east-1"),
];
const LATENCY_EAST: &[(&str, &str)] = &[
    ("alertname", "HighLatency"),
    ("severity", "warning"),
    ("region", "us-east-1"),
];

async fn alerts_open_group_repeat_resolve_and_attach(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let store = app.db.store.clone();
    let first = notification(
        "{}:{region=\"us-east-1\"}",
        &[("f1", "firing", ERRORS_EAST)],
    );
    let s = app.engine.receive_alerts(&first).await;
    assert_eq!((s.recorded, s.repeats, s.ignored), (1, 0, 0));
    assert_eq!(s.outcomes.len(), 1);
    let o = &s.outcomes[0];
    assert!(o.opened);
    let text = &o.replies[0].text;
    assert!(
        text.contains("opened by alert HighErrorRate (P1)"),
        "{text}"
    );
    assert!(text.contains("Suggested: `/failover us-west-2`"), "{text}");
    assert_eq!(o.replies[0].declared.as_ref(), Some(&o.incident));
    let id = o.incident.clone();
    let inc = store.incident(&id).await.unwrap().unwrap();
    assert_eq!(inc.declared_by, "alertmanager");
    assert_eq!(inc.severity.as_str(), "p1");
    // The alert asked for nothing: no request exists.
    assert!(store.requests_for_incident(&id).await.unwrap().is_empty());
    let entries = store.timeline(&id).await.unwrap();
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["declared", "alert.firing"]);
    assert!(entries.iter().all(|e| e.source == Source::Alert));
    assert!(
        entries[1].text.contains("Fingerprint f1"),
        "{}",
        entries[1].text
    );

    // The same notification again (Alertmanager's repeat): nothing new anywhere.
    let s = app.engine.receive_alerts(&first).await;
    assert_eq!((s.recorded, s.repeats), (0, 1));
    assert_eq!(store.timeline(&id).await.unwrap().len(), 2);
    assert_eq!(store.all_incident_ids().await.unwrap().len(), 1);

    // Another alert of the group joins the incident.
    let grouped = notification(
        "{}:{region=\"us-east-1\"}",
        &[
            ("f1", "firing", ERRORS_EAST),
            ("f2", "firing", LATENCY_EAST),
        ],
    );
    let s = app.engine.receive_alerts(&grouped).await;
    assert_eq!((s.recorded, s.repeats), (1, 1));
    assert_eq!(s.outcomes.len(), 1);
    assert_eq!(s.outcomes[0].incident, id);
    assert!(!s.outcomes[0].opened);
    assert_eq!(store.all_incident_ids().await.unwrap().len(), 1);

    // Resolved: on the timeline and said, but the incident stays as a person left it.
    let resolved = notification(
        "{}:{region=\"us-east-1\"}",
        &[("f1", "resolved", ERRORS_EAST)],
    );
    let s = app.engine.receive_alerts(&resolved).await;
    assert_eq!(s.recorded, 1);
    assert!(
        s.outcomes[0].replies[0]
            .text
            .contains("stays as it is until a person decides"),
        "{:?}",
        s.outcomes[0].replies
    );
    let after = store.incident(&id).await.unwrap().unwrap();
    assert_eq!(after.status, IncidentStatus::Declared);
    assert_eq!(
        store.timeline(&id).await.unwrap().last().unwrap().kind,
        "alert.resolved"
    );

    // Unmapped (severity info) and resolved-unknown alerts open nothing.
    let s = app
        .engine
        .receive_alerts(&notification(
            "g-other",
            &[
                (
                    "f3",
                    "firing",
                    &[("alertname", "Chatty"), ("severity", "info")],
                ),
                ("f4", "resolved", ERRORS_EAST),
            ],
        ))
        .await;
    assert_eq!((s.recorded, s.ignored), (0, 2));
    assert_eq!(store.all_incident_ids().await.unwrap().len(), 1);

    // A person's incident: alerts labelled region=eu-west-1 are attached to it in advance.
    app.ok("alice", "/erlmcp p0 declare EU customers see errors")
        .await;
    let bad = app.refused("alice", "/erlmcp attach-alert region").await;
    assert!(
        bad.contains("not an alert fingerprint") || bad.contains("label=value"),
        "{bad}"
    );
    let bad = app
        .refused("alice", "/erlmcp attach-alert region=<b>x</b>")
        .await;
    assert!(bad.contains("not a label=value pair"), "{bad}");
    let said = app
        .ok("alice", "/erlmcp attach-alert region=eu-west-1")
        .await;
    assert!(
        said.contains("From now on alerts labelled region=eu-west-1 go to"),
        "{said}"
    );
    let eu = notification(
        "{}:{region=\"eu-west-1\"}",
        &[(
            "f5",
            "firing",
            &[
                ("alertname", "HighErrorRate"),
                ("severity", "critical"),
                ("region", "eu-west-1"),
            ],
        )],
    );
    let s = app.engine.receive_alerts(&eu).await;
    assert!(!s.outcomes[0].opened, "attached, not opened");
    let person_incident = s.outcomes[0].incident.clone();
    assert_ne!(person_incident, id);
    assert_eq!(
        store
            .incident(&person_incident)
            .await
            .unwrap()
            .unwrap()
            .declared_by,
        "alice"
    );
    let status = app.ok("alice", "/erlmcp status").await;
    assert!(
        status.contains("Alerts: 1 firing, 0 resolved; attached: region=eu-west-1"),
        "{status}"
    );
    // HighErrorRate in eu-west-1 maps to P1; the incident is P0: no "raise" advice.
    assert!(!s.outcomes[0].replies[0].text.contains("raises it"));
    assert_eq!(store.all_incident_ids().await.unwrap().len(), 2);

    // The postmortem says when monitoring saw it, and the chain (with its alert facts) holds.
    let pm = app.engine.postmortem_markdown(&id).await.unwrap();
    assert!(
        pm.contains(
            "| Detected (alert `HighErrorRate` began, per its `startsAt`) | 2026-11-28 13:50:00 UTC |"
        ),
        "{pm}"
    );
    assert!(
        pm.contains("Time to declare (condition began to declared) | 10m 00s |"),
        "{pm}"
    );
    assert!(app.engine.verify_timeline(&id).await.unwrap().is_empty());
    assert!(
        app.engine
            .verify_timeline(&person_incident)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Two replicas receive the same notification at the same moment (Alertmanager in HA sends from
/// each instance): one incident, the other replica joins it.
async fn two_replicas_receiving_one_alert_open_one_incident(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let other = engine_on(
        app.db.replica().await,
        Arc::new(app.sim.clone()),
        app.clock.clone(),
        app.outbox.clone(),
        test_settings(),
    );
    for round in 0..10 {
        // Minutes apart, as separate outages would be (not an alert storm).
        app.clock.advance(chrono::Duration::minutes(11));
        let fp = format!("race{round}");
        let n = notification(&format!("group-{round}"), &[(&fp, "firing", ERRORS_EAST)]);
        let (a, b) = tokio::join!(app.engine.receive_alerts(&n), other.receive_alerts(&n));
        // The replica that came second joined the incident, or (if the first had already
        // committed when it looked) saw a repeat of what was recorded: either way one incident.
        let outcomes: Vec<_> = a.outcomes.iter().chain(&b.outcomes).collect();
        assert_eq!(
            outcomes.iter().filter(|o| o.opened).count(),
            1,
            "exactly one replica opened it (round {round}): {outcomes:?}"
        );
        assert!(
            outcomes.iter().all(|o| o.incident == outcomes[0].incident),
            "round {round}: {outcomes:?}"
        );
        assert_eq!(a.repeats + b.repeats + a.recorded + b.recorded, 2);
        assert_eq!(
            app.db.store.all_incident_ids().await.unwrap().len(),
            round + 1
        );
    }
    assert_eq!(app.db.store.all_incident_ids().await.unwrap().len(), 10);
}

/// What a reviewer broke: a resolved incident does not swallow a recurrence; a storm of groups
/// opens a bounded number of incidents; a `startsAt` from 1970 or the future is not believed; an
/// attach that moves an alert tells the incident it leaves; alert text cannot fake a line of
/// the bot's own.
async fn alerts_hold_up_against_recurrence_storms_clocks_and_text(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let store = app.db.store.clone();
    let first = notification("g-east", &[("a1", "firing", ERRORS_EAST)]);
    let id = app.engine.receive_alerts(&first).await.outcomes[0]
        .incident
        .clone();
    // A person resolves it (in the console, naming it); the same group fires again later.
    app.ok("bob", &format!("/erlmcp {id} ack")).await;
    app.ok("bob", &format!("/erlmcp {id} resolve fixed")).await;
    let again = notification("g-east", &[("a1", "firing", ERRORS_EAST)]);
    let mut again = again;
    again.alerts[0].starts_at += chrono::Duration::hours(1);
    let s = app.engine.receive_alerts(&again).await;
    assert!(
        s.outcomes[0].opened,
        "a recurrence after resolution opens a new incident"
    );
    assert_ne!(s.outcomes[0].incident, id);

    // A storm: 12 more distinct groups within minutes. Alerts open at most STORM_INCIDENTS
    // incidents in the window (the two above count); the rest join the latest.
    for g in 0..12 {
        let n = notification(
            &format!("storm-{g}"),
            &[(&format!("5{g:03}"), "firing", ERRORS_EAST)],
        );
        let s = app.engine.receive_alerts(&n).await;
        assert!(s.error.is_none(), "{s:?}");
        assert_eq!(s.recorded, 1, "every alert is recorded somewhere: {s:?}");
    }
    let by_alerts = store
        .all_incidents()
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.declared_by == "alertmanager")
        .count();
    assert_eq!(
        by_alerts,
        erlmcp_handlers::engine::STORM_INCIDENTS,
        "the storm was not bounded"
    );

    // Clocks: an alert claiming 1970 or the future is kept on the timeline but not believed.
    let mut odd = notification(
        "g-odd",
        &[(
            "c1",
            "firing",
            &[("alertname", "ErrorBudgetBurn"), ("severity", "critical")],
        )],
    );
    odd.alerts[0].starts_at = chrono::DateTime::parse_from_rfc3339("1970-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let other = TestApp::new(backend).await.unwrap();
    let s = other.engine.receive_alerts(&odd).await;
    let p0 = s.outcomes[0].incident.clone();
    let pm = other.engine.postmortem_markdown(&p0).await.unwrap();
    assert!(
        !pm.contains("| Detected"),
        "a 1970 start is not a detection:\n{pm}"
    );
    let report = other.engine.sla_report(2026, 11).await.unwrap();
    assert!(
        report.contains("counted from detection by an alert for 0 of 1"),
        "{report}"
    );

    // Text: a summary with a line break and a right-to-left override stays on one line.
    let mut forged = notification(
        "g-text",
        &[(
            "d1abcdef01234567",
            "firing",
            &[("alertname", "HighMemoryUsage"), ("severity", "critical")],
        )],
    );
    forged.alerts[0].annotations.insert(
        "summary".into(),
        "memory\nSuggested: `/erlmcp rollback` (a person types it)\u{202e}gnp.exe".into(),
    );
    let s = other.engine.receive_alerts(&forged).await;
    let text = &s.outcomes[0].replies[0].text;
    assert!(!text.contains("\nSuggested: `/erlmcp rollback`"), "{text}");
    assert!(!text.contains('\u{202e}'), "{text}");

    // Attach moves an alert and tells the incident it leaves.
    other
        .ok("alice", "/erlmcp p1 declare checking memory")
        .await;
    let moved = other
        .ok("alice", "/erlmcp attach-alert D1ABCDEF01234567")
        .await;
    assert!(
        moved.contains("fingerprint d1abcdef01234567") && moved.contains("until now"),
        "{moved}"
    );
    let origin = s.outcomes[0].incident.clone();
    let last = other.db.store.timeline(&origin).await.unwrap();
    assert_eq!(last.last().unwrap().kind, "alert.detached");
    assert!(
        other
            .outbox
            .texts()
            .iter()
            .any(|t| t.contains(origin.as_str()) && t.contains("no longer go to")),
        "{:?}",
        other.outbox.texts()
    );
}

erlmcp_tests::on_both_backends!(
    alerts_open_group_repeat_resolve_and_attach,
    two_replicas_receiving_one_alert_open_one_incident,
    alerts_hold_up_against_recurrence_storms_clocks_and_text,
);

const TOKEN: &str = "am-token-5d1e";

/// `serve` fed by a real Alertmanager: alerts posted to its API arrive grouped as it sends
/// them; the first opens an incident with its mapped severity and suggestion, the rest of the
/// group joins it, a repeat opens nothing, a resolution goes on the timeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_delivers_to_serve() {
    let w = Workdir::new();
    let fake = FakeSlack::start().await;
    let env = slack_env(&fake, &w.db_url()).set("ERLMCP_ALERTS_TOKEN", TOKEN);
    let mut bot = Served::start(w.path(), &env, &[]).await;
    let Some(am) = erlmcp_tests::alertmanager::Alertmanager::start(
        &format!("{}/alerts/alertmanager", bot.url),
        TOKEN,
        &["region"],
    )
    .await
    else {
        return;
    };
    let starts = chrono::Utc::now() - chrono::Duration::minutes(7);
    let alert = |name: &str, severity: &str, ends: Option<chrono::DateTime<chrono::Utc>>| {
        let mut a = json!({
            "labels": {"alertname": name, "severity": severity, "region": "us-east-1"},
            "annotations": {"summary": format!("{name} in us-east-1")},
            "startsAt": starts.to_rfc3339(),
            "generatorURL": "http://prometheus:9090/graph",
        });
        if let Some(e) = ends {
            a["endsAt"] = json!(e.to_rfc3339());
        }
        a
    };
    am.post(json!([
        alert("HighErrorRate", "critical", None),
        alert("HighLatency", "warning", None)
    ]))
    .await;
    fake.wait_until("the alert's incident gets its channel and message", |c| {
        c.iter().any(|c| {
            c.method == "chat.postMessage"
                && c.form
                    .get("text")
                    .is_some_and(|t| t.contains("opened by alert"))
        })
    })
    .await;
    let opened: Vec<_> = fake
        .calls("chat.postMessage")
        .into_iter()
        .filter(|c| c.form["text"].contains("opened by alert"))
        .collect();
    assert_eq!(opened.len(), 1, "one incident for the group: {opened:?}");
    let text = &opened[0].form["text"];
    assert!(
        text.contains("(P1)") && text.contains("/failover us-west-2"),
        "{text}"
    );
    assert_eq!(fake.calls("conversations.create").len(), 1);
    // Alertmanager re-sends the firing group (repeat_interval 3s): still one incident.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    // Resolution of the error alert.
    am.post(json!([alert(
        "HighErrorRate",
        "critical",
        Some(chrono::Utc::now() - chrono::Duration::seconds(1))
    )]))
    .await;
    fake.wait_until("the resolution is said", |c| {
        c.iter().any(|c| {
            c.method == "chat.postMessage"
                && c.form
                    .get("text")
                    .is_some_and(|t| t.contains("alert HighErrorRate resolved"))
        })
    })
    .await;
    assert_eq!(fake.calls("conversations.create").len(), 1);
    assert_eq!(bot.terminate().await, Some(0), "{}", bot.log());

    let plain = crate::program::Env::new().set("DATABASE_URL", w.db_url());
    let list = crate::program::run(w.path(), &plain, &["incidents"], "").await;
    assert_eq!(list.stdout.matches("INC-").count(), 1, "{}", list.all());
    let id = crate::shipped::incident_id(&list.stdout);
    let shown = crate::program::run(w.path(), &plain, &["timeline", "show", &id], "").await;
    for kind in ["alert.firing", "alert.resolved"] {
        assert!(
            shown.stdout.contains(kind),
            "{kind} missing:\n{}",
            shown.all()
        );
    }
    assert!(shown.stdout.contains("HighLatency"), "{}", shown.all());
    let pm = crate::program::run(w.path(), &plain, &["postmortem", &id], "").await;
    assert!(pm.stdout.contains("| Detected (alert `"), "{}", pm.all());
}

/// Requests that are not Alertmanager's, or not well-formed: 401 or 400 with the reason, and
/// nothing recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_malformed_webhooks_are_refused() {
    let w = Workdir::new();
    let fake = FakeSlack::start().await;
    let env = slack_env(&fake, &w.db_url()).set("ERLMCP_ALERTS_TOKEN", TOKEN);
    let mut bot = Served::start(w.path(), &env, &[]).await;
    let url = format!("{}/alerts/alertmanager", bot.url);
    let http = reqwest::Client::new();
    let good = json!({
        "version": "4", "groupKey": "g", "status": "firing", "receiver": "bot",
        "alerts": [{"status": "firing", "labels": {"alertname": "ErrorBudgetBurn", "severity": "critical"},
          "annotations": {}, "startsAt": "2026-11-29T10:00:00Z", "fingerprint": "ff"}]
    });
    let send = |body: String, auth: Option<&str>| {
        let mut r = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    for (auth, why) in [
        (None, "missing `Authorization: Bearer"),
        (Some("Bearer wrong"), "wrong bearer token"),
        (Some(TOKEN), "missing `Authorization: Bearer"),
        (Some("Basic YWxpY2U6cHc="), "missing `Authorization: Bearer"),
    ] {
        let r = send(good.to_string(), auth).await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        assert!(r.text().await.unwrap().contains(why), "{auth:?}");
    }
    let bearer = format!("Bearer {TOKEN}");
    let mut huge_labels = serde_json::Map::new();
    for i in 0..500 {
        huge_labels.insert(format!("label{i}"), json!("v"));
    }
    let mut huge = good.clone();
    huge["alerts"][0]["labels"] = serde_json::Value::Object(huge_labels);
    let mut v5 = good.clone();
    v5["version"] = json!("5");
    for (body, why) in [
        (
            "{not json".to_string(),
            "not an Alertmanager webhook payload",
        ),
        (v5.to_string(), "version `5` is not supported"),
        (huge.to_string(), "at most 64"),
        (
            good.to_string().replace("2026-11-29T10:00:00Z", "soon"),
            "is not an RFC 3339 time",
        ),
    ] {
        let r = send(body, Some(&bearer)).await.unwrap();
        assert_eq!(r.status(), 400);
        let said = r.text().await.unwrap();
        assert!(said.contains(why), "{said}");
    }
    let too_big = "x".repeat(erlmcp_bot::alerts::BODY_LIMIT + 10);
    let r = send(too_big, Some(&bearer)).await.unwrap();
    assert_eq!(r.status(), 413);
    // Nothing was recorded by any of them; the good one, authenticated, opens a P0.
    let r = send(good.to_string(), Some(&bearer)).await.unwrap();
    assert_eq!(r.status(), 200);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["recorded"], 1);
    assert_eq!(answer["incidents"][0]["opened"], true);
    assert_eq!(bot.terminate().await, Some(0), "{}", bot.log());
    let plain = crate::program::Env::new().set("DATABASE_URL", w.db_url());
    let list = crate::program::run(w.path(), &plain, &["incidents"], "").await;
    assert_eq!(list.stdout.matches("INC-").count(), 1, "{}", list.all());
    assert!(list.stdout.contains("P0"), "{}", list.all());
}

/// A mapping that suggests a decision, a command without its slash, or a playbook that does not
/// exist is refused at start with the rule named; a rule severity of `none` says what to write.
#[test]
fn alert_mappings_are_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let topo = erlmcp_handlers::topology::Topology::runbook_default();
    let check = |toml: &str| -> Result<(), String> {
        let path = dir.path().join("bot.toml");
        std::fs::write(&path, toml).unwrap();
        let config = erlmcp_bot::config::Config::load(Some(&path), &|_: &str| None::<String>)
            .map_err(|e| e.to_string())?;
        let playbooks =
            erlmcp_bot::app::load_playbooks(&config, &topo).map_err(|e| e.to_string())?;
        erlmcp_bot::app::check_alert_suggestions(&config, &playbooks).map_err(|e| e.to_string())
    };
    let rule = |suggest: &str| {
        format!("[alerts.rules.HighErrorRate]\nsuggest = [{{ command = \"{suggest}\" }}]\n")
    };
    assert_eq!(check(&rule("/failover us-west-2")), Ok(()));
    for (suggest, expected) in [
        ("/erlmcp approve", "never a decision"),
        ("failover us-west-2", "starting with `/`"),
        ("/erlmcp run nosuch", "there is no playbook `nosuch`"),
        (
            "/erlmcp frobnicate",
            "[alerts.rules.HighErrorRate] suggests",
        ),
    ] {
        let e = check(&rule(suggest)).unwrap_err();
        assert!(e.contains(expected), "{suggest}: {e}");
    }
    let e = check("[alerts.rules.HighErrorRate]\nseverity = \"none\"\n").unwrap_err();
    assert!(e.contains("write `open = false` instead"), "{e}");
    let e = check("[alerts.severity_labels]\ncritical = \"urgent\"\n").unwrap_err();
    assert!(e.contains("`urgent` is not a severity"), "{e}");
}

/// A process that recorded an alert's incident and stopped before saying so: the next `serve`
/// on the same database announces it (once), with its channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_incident_a_stopped_process_never_announced_is_announced_by_serve() {
    let w = Workdir::new();
    // The stopped process: it stored the alert's incident and said nothing.
    {
        let store = erlmcp_bot::store::open_sqlite(&w.db_url()).await.unwrap();
        let engine = engine_on(
            Arc::new(store),
            Arc::new(erlmcp_handlers::executor::simulated::Simulated::new(
                erlmcp_handlers::topology::Topology::runbook_default(),
            )),
            Arc::new(erlmcp_handlers::clock::ManualClock::new(
                erlmcp_tests::start_time(),
            )),
            erlmcp_tests::RecordingOutbox::default(),
            test_settings(),
        );
        let s = engine
            .receive_alerts(&notification("g-lost", &[("10a1", "firing", ERRORS_EAST)]))
            .await;
        assert!(s.outcomes[0].opened);
    }
    let fake = FakeSlack::start().await;
    let env = slack_env(&fake, &w.db_url()).set("ERLMCP_ALERTS_TOKEN", TOKEN);
    let mut bot = Served::start(w.path(), &env, &[]).await;
    fake.wait_until("the late announcement", |c| {
        c.iter().any(|c| {
            c.method == "chat.postMessage"
                && c.form
                    .get("text")
                    .is_some_and(|t| t.contains("announced late"))
        })
    })
    .await;
    // Once, however many sweeps pass.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(fake.calls("conversations.create").len(), 1);
    assert_eq!(bot.terminate().await, Some(0), "{}", bot.log());
}
