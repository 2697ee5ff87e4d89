//! How fast Slack gets its answer: round trips of signed slash commands and events to the real
//! server (Web API stand-in on loopback). Slack allows 3 s. `cargo bench -p erlmcp-tests --bench slack_ack`.

use erlmcp_tests::slack_fake::{FakeSlack, bot_config, sign};
use std::time::{Duration, Instant};

const SECRET: &str = "bench-secret";

fn report(what: &str, mut d: Vec<Duration>) {
    d.sort();
    let at = |p: f64| d[((d.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{what:<44} n={:<4} p50={:>9.3?} p99={:>9.3?} max={:>9.3?}",
        d.len(),
        at(0.5),
        at(0.99),
        d[d.len() - 1]
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        erlmcp_bot::cli::install_crypto_provider();
        let slack = FakeSlack::start().await;
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("bot.db").display());
        let (config, slack_config) = bot_config(&db, &slack.api_url(), SECRET);
        let (router, _app) = erlmcp_bot::serve::build(&config, &slack_config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let http = reqwest::Client::new();
        let post = |path: &'static str, body: String| {
            let ts = chrono::Utc::now().timestamp();
            http.post(format!("{url}{path}"))
                .header("x-slack-request-timestamp", ts.to_string())
                .header("x-slack-signature", sign(SECRET, ts, &body))
                .body(body)
                .send()
        };
        let mut commands = Vec::new();
        for i in 0..300 {
            let body = format!("command=%2Ferlmcp&text=note+n{i}&user_id=U_BOB&channel_id=C1&trigger_id=t{i}&team_id=T1&api_app_id=A1");
            let start = Instant::now();
            assert_eq!(post("/slack/commands", body).await.unwrap().status(), 200);
            commands.push(start.elapsed());
        }
        report("slash command -> HTTP answer", commands);
        let mut events = Vec::new();
        for i in 0..300 {
            let body = serde_json::json!({ "type": "event_callback", "event_id": format!("Ev{i}"),
                "event": { "type": "reaction_added", "user": "U_BOB", "reaction": "eyes", "item": { "type": "message", "channel": "C1", "ts": "1.1" } } })
            .to_string();
            let start = Instant::now();
            assert_eq!(post("/slack/events", body).await.unwrap().status(), 200);
            events.push(start.elapsed());
        }
        report("event callback -> HTTP answer", events);
        let mut forged = Vec::new();
        for i in 0..300 {
            let start = Instant::now();
            let r = http.post(format!("{url}/slack/commands")).header("x-slack-request-timestamp", "1").header("x-slack-signature", "v0=00").body(format!("x={i}")).send().await.unwrap();
            assert_eq!(r.status(), 401);
            forged.push(start.elapsed());
        }
        report("forged request -> 401", forged);
    });
}
