//! Issue 6: Slack, end to end: requests signed as Slack signs them, in Slack's documented payload
//! formats, against the real HTTP server; a stand-in Web API behind `SLACK_API_URL`.

use erlmcp_bot::slack::SlackConfig;
use erlmcp_handlers::approval::RequestState;
use erlmcp_handlers::ids::{IncidentId, RequestId};
use erlmcp_tests::slack_fake::{Call, FakeSlack, bot_config, sign};
use serde_json::{Value, json};
use std::sync::Arc;

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

struct Bot {
    url: String,
    slack: FakeSlack,
    app: erlmcp_bot::app::App,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start() -> Bot {
    erlmcp_bot::cli::install_crypto_provider();
    let slack = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("bot.db").display());
    let (config, slack_config) = bot_config(&db, &slack.api_url(), SECRET);
    let (router, app) = erlmcp_bot::serve::build(&config, &slack_config)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Bot {
        url,
        slack,
        app,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Bot {
    async fn post_signed(
        &self,
        path: &str,
        body: &str,
        content_type: &str,
        ts: i64,
        secret: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", sign(secret, ts, body))
            .body(body.to_string());
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// Whether no incident is open: nothing a refused request could have declared.
    async fn nothing_declared(&self) -> bool {
        self.app
            .engine
            .store()
            .open_incidents()
            .await
            .unwrap()
            .is_empty()
    }

    /// A slash command's form body, signed with `secret` at `ts`.
    async fn post_command_body(&self, body: &str, ts: i64, secret: &str) -> reqwest::Response {
        self.post_signed(
            "/slack/commands",
            body,
            "application/x-www-form-urlencoded",
            ts,
            secret,
            &[],
        )
        .await
    }

    /// A slash command in Slack's form encoding.
    async fn command(
        &self,
        user: &str,
        channel: &str,
        command: &str,
        text: &str,
    ) -> reqwest::StatusCode {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", "deprecated")
            .append_pair("team_id", "T1")
            .append_pair("api_app_id", "A1")
            .append_pair("channel_id", channel)
            .append_pair("channel_name", "general")
            .append_pair("user_id", user)
            .append_pair("user_name", &user.to_lowercase())
            .append_pair("command", command)
            .append_pair("text", text)
            .append_pair(
                "response_url",
                &format!("{}/response/{user}", self.slack.url),
            )
            .append_pair("trigger_id", "13345224609.738474920.8088930838d88f008e0")
            .finish();
        self.post_command_body(&body, now(), SECRET).await.status()
    }

    async fn event(
        &self,
        event_id: &str,
        event: Value,
        retry: Option<&str>,
    ) -> reqwest::StatusCode {
        let body = json!({ "token": "x", "team_id": "T1", "api_app_id": "A1", "type": "event_callback", "event_id": event_id, "event_time": now(), "event": event }).to_string();
        let extra: Vec<(&str, &str)> = retry
            .map(|n| {
                vec![
                    ("x-slack-retry-num", n),
                    ("x-slack-retry-reason", "http_timeout"),
                ]
            })
            .unwrap_or_default();
        self.post_signed(
            "/slack/events",
            &body,
            "application/json",
            now(),
            SECRET,
            &extra,
        )
        .await
        .status()
    }

    async fn reaction(
        &self,
        event_id: &str,
        user: &str,
        reaction: &str,
        channel: &str,
        ts: &str,
    ) -> reqwest::StatusCode {
        let event = json!({ "type": "reaction_added", "user": user, "reaction": reaction, "item_user": "UBOT",
                            "item": { "type": "message", "channel": channel, "ts": ts }, "event_ts": "1700000001.000100" });
        self.event(event_id, event, None).await
    }

    async fn button(
        &self,
        user: &str,
        channel: &str,
        action: &str,
        request: &str,
    ) -> reqwest::StatusCode {
        let payload = json!({
            "type": "block_actions", "user": { "id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": "T1" },
            "api_app_id": "A1", "container": { "type": "message", "message_ts": "1700000000.000001", "channel_id": channel },
            "channel": { "id": channel, "name": "inc" }, "response_url": format!("{}/response/{user}", self.slack.url),
            "actions": [ { "action_id": action, "block_id": format!("request:{request}"), "value": request, "type": "button", "action_ts": "1700000002.1" } ]
        });
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish();
        self.post_signed(
            "/slack/interactions",
            &body,
            "application/x-www-form-urlencoded",
            now(),
            SECRET,
            &[],
        )
        .await
        .status()
    }

    /// The channel the bot created for the incident (where it pinned the summary).
    async fn incident_channel(&self) -> String {
        self.slack
            .wait_until("the incident channel is created", |c| {
                c.iter().any(|c| c.method == "pins.add")
            })
            .await;
        self.slack.calls("pins.add")[0].form["channel"].clone()
    }

    async fn request_state(&self, id: &str) -> RequestState {
        self.app
            .engine
            .store()
            .request(&RequestId::new(id))
            .await
            .unwrap()
            .unwrap()
            .state
    }
}

fn texts(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .map(|c| c.form.get("text").cloned().unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stale_or_unsigned_requests_get_401_and_change_nothing() {
    let bot = start().await;
    let body = "command=%2Ferlmcp&text=p0+declare+forged&user_id=U_EVE&channel_id=C1";
    let forged = bot.post_command_body(body, now(), "not-the-secret").await;
    assert_eq!(forged.status(), 401);
    assert!(
        forged
            .text()
            .await
            .unwrap()
            .starts_with("invalid Slack request signature")
    );
    let stale = bot.post_command_body(body, now() - 6 * 60, SECRET).await;
    assert_eq!(stale.status(), 401);
    let unsigned = bot
        .http
        .post(format!("{}/slack/events", bot.url))
        .body("{\"type\":\"url_verification\",\"challenge\":\"x\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    // A body changed after signing is refused too.
    let ts = now();
    let tampered = bot
        .http
        .post(format!("{}/slack/commands", bot.url))
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", sign(SECRET, ts, body))
        .body(body.replace("forged", "forgeD"))
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 401);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(bot.nothing_declared().await);
    assert!(
        bot.slack.calls("users.info").is_empty() && bot.slack.calls("chat.postMessage").is_empty()
    );
}

/// During an upgrade an older process may have taken a command under the key it used, the
/// signature alone: the same request sent to this version is a replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_an_older_version_took_is_refused_as_a_replay() {
    let bot = start().await;
    let body = "command=%2Ferlmcp&text=p2+declare+Upgraded&user_id=U_ALICE&channel_id=C_GENERAL&trigger_id=1.2.4&team_id=T1&api_app_id=A1";
    let ts = now();
    let taken = bot
        .app
        .engine
        .store()
        .record_receipts(&[erlmcp_handlers::store::NewReceipt {
            key: format!("slack:sig:{}", sign(SECRET, ts, body)),
            platform: "slack".into(),
            received_at: chrono::Utc::now(),
            payload: "{}".into(),
            note: None,
            former_key: None,
        }])
        .await
        .unwrap();
    assert!(matches!(
        taken[0],
        erlmcp_handlers::store::ReceiptFate::Stored(_)
    ));
    let replay = bot.post_command_body(body, ts, SECRET).await;
    assert_eq!(replay.status(), 401);
    assert!(replay.text().await.unwrap().contains("replayed request"));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(bot.nothing_declared().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_command_changes_nothing() {
    let bot = start().await;
    let body = "command=%2Ferlmcp&text=p2+declare+Once&user_id=U_ALICE&channel_id=C_GENERAL&trigger_id=1.2.3&team_id=T1&api_app_id=A1";
    let ts = now();
    let first = bot.post_command_body(body, ts, SECRET).await;
    assert_eq!(first.status(), 200);
    let replay = bot.post_command_body(body, ts, SECRET).await;
    assert_eq!(replay.status(), 401);
    assert!(replay.text().await.unwrap().contains("replayed request"));
    bot.slack
        .wait_until("the first one was handled", |c| {
            c.iter().any(|c| c.method == "pins.add")
        })
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        bot.app.engine.store().open_incidents().await.unwrap().len(),
        1,
        "declared once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_verification_and_probes() {
    let bot = start().await;
    let body = json!({ "token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification" }).to_string();
    let r = bot
        .post_signed(
            "/slack/events",
            &body,
            "application/json",
            now(),
            SECRET,
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    assert_eq!(
        bot.http
            .get(format!("{}/healthz", bot.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready = bot
        .http
        .get(format!("{}/readyz", bot.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (ready.status().as_u16(), ready.text().await.unwrap()),
        (200, "ready".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declaring_creates_announces_and_pins_the_incident_channel() {
    let bot = start().await;
    bot.slack.state.lock().unwrap().taken_names.push(
        "inc-".to_string() + &chrono::Utc::now().format("%Y%m%d").to_string() + "-1-api-down",
    );
    assert_eq!(
        bot.command("U_ALICE", "C_GENERAL", "/erlmcp", "p0 declare API down")
            .await,
        200
    );
    let channel = bot.incident_channel().await;
    let creates = bot.slack.calls("conversations.create");
    assert_eq!(creates.len(), 2, "name_taken is handled by a new name");
    assert!(
        creates[1].form["name"].ends_with("-1-api-down-2"),
        "{:?}",
        creates[1].form
    );
    let invite = &bot.slack.calls("conversations.invite")[0];
    assert_eq!(
        (
            invite.form["channel"].as_str(),
            invite.form["users"].as_str()
        ),
        (channel.as_str(), "U_ALICE")
    );
    let posts = bot.slack.calls("chat.postMessage");
    let summary = posts
        .iter()
        .find(|c| c.form["channel"] == channel)
        .expect("summary in the incident channel");
    assert!(
        summary.form["text"].contains("P0 API down")
            && summary.form["text"].contains("acknowledge within 5m 00s"),
        "{:?}",
        summary.form
    );
    assert!(
        posts
            .iter()
            .any(|c| c.form["channel"] == "C_GENERAL" && c.form["text"].starts_with("🚨 INC-")),
        "announced where declared"
    );
    bot.slack
        .wait_until("the channel link is announced", |c| {
            c.iter().any(|c| {
                c.method == "chat.postMessage"
                    && c.form["channel"] == "C_GENERAL"
                    && c.form["text"].contains(&format!("<#{channel}>"))
            })
        })
        .await;
    // Commands in the incident channel address the incident; users appear by display name.
    assert_eq!(bot.command("U_BOB", &channel, "/erlmcp", "ack").await, 200);
    bot.slack
        .wait_until("the ack is announced", |c| {
            c.iter().any(|c| {
                c.method == "chat.postMessage" && c.form["text"].contains("Acknowledged by bob")
            })
        })
        .await;
    let inc = bot
        .app
        .engine
        .store()
        .open_incidents()
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (inc.channel.as_str(), inc.acknowledged_by.as_deref()),
        (format!("slack:{channel}").as_str(), Some("bob"))
    );
    let timeline = bot.app.engine.store().timeline(&inc.id).await.unwrap();
    let ack = timeline.iter().find(|e| e.kind == "acknowledged").unwrap();
    assert_eq!(
        (
            ack.actor.as_str(),
            ack.actor_id.as_str(),
            ack.source.as_str()
        ),
        ("bob", "slack:U_BOB", "slack")
    );
    // A lifecycle change made from elsewhere is announced in the incident channel.
    assert_eq!(
        bot.command(
            "U_BOB",
            "C_GENERAL",
            "/erlmcp",
            &format!("{} sev p1", inc.id)
        )
        .await,
        200
    );
    bot.slack
        .wait_until("severity change announced in the incident channel", |c| {
            c.iter().any(|c| {
                c.method == "chat.postMessage"
                    && c.form["channel"] == channel
                    && c.form["text"].contains("Severity P0 -&gt; P1")
            })
        })
        .await;
    // Errors go only to the person, through the response_url.
    assert_eq!(
        bot.command("U_BOB", &channel, "/erlmcp", "sev p9").await,
        200
    );
    bot.slack
        .wait_until("an ephemeral error", |c| {
            c.iter().any(|c| {
                c.method == "response_url/U_BOB"
                    && c.form["text"].contains("`p9` is not a severity")
                    && c.form["response_type"] == "ephemeral"
            })
        })
        .await;
}

/// Declares in C_GENERAL, requests a failover in the incident channel; returns (channel, card ts).
async fn failover_card(bot: &Bot) -> (String, String) {
    bot.command("U_ALICE", "C_GENERAL", "/erlmcp", "p0 declare API down")
        .await;
    let channel = bot.incident_channel().await;
    assert_eq!(
        bot.command("U_ALICE", &channel, "/failover", "us-west-2")
            .await,
        200
    );
    bot.slack
        .wait_until("the approval card", |c| {
            c.iter().any(|c| {
                c.method == "chat.postMessage"
                    && c.form
                        .get("blocks")
                        .is_some_and(|b| b.contains("erlmcp_approve"))
            })
        })
        .await;
    let card = bot
        .slack
        .calls("chat.postMessage")
        .into_iter()
        .find(|c| c.form.contains_key("blocks"))
        .unwrap();
    assert_eq!(card.form["channel"], channel);
    let blocks: Value = serde_json::from_str(&card.form["blocks"]).unwrap();
    let actions = blocks
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap();
    assert_eq!(actions["elements"][0]["text"]["text"], "Approve");
    assert_eq!(actions["elements"][1]["action_id"], "erlmcp_deny");
    assert!(
        card.form["text"].contains("plan digest ")
            && card.form["blocks"].contains("UPSERT Route53 record erlmcp.io"),
        "{:?}",
        card.form
    );
    // The message ts the fake gave the card.
    let idx = bot
        .slack
        .state
        .lock()
        .unwrap()
        .calls
        .iter()
        .filter(|c| c.method == "chat.postMessage")
        .position(|c| c.form.contains_key("blocks"))
        .unwrap();
    (channel, format!("1700000000.{:06}", idx + 1))
}

fn req_id() -> String {
    format!("REQ-{}-1", chrono::Utc::now().format("%Y%m%d"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_approve_but_never_the_requesters_own_and_the_card_shows_progress() {
    let bot = start().await;
    let (channel, ts) = failover_card(&bot).await;
    assert_eq!(
        bot.reaction("Ev1", "U_ALICE", "white_check_mark", &channel, &ts)
            .await,
        200
    );
    bot.slack
        .wait_until("the requester's reaction is refused privately", |c| {
            c.iter().any(|c| {
                c.method == "chat.postEphemeral"
                    && c.form["user"] == "U_ALICE"
                    && c.form["text"].contains("a second person must approve")
            })
        })
        .await;
    assert_eq!(bot.request_state(&req_id()).await, RequestState::Pending);
    assert_eq!(
        bot.reaction("Ev2", "U_BOB", "white_check_mark", &channel, &ts)
            .await,
        200
    );
    bot.slack
        .wait_until("the run finishes", |c| {
            c.iter()
                .any(|c| c.method == "chat.postMessage" && c.form["text"].contains("🏁"))
        })
        .await;
    assert_eq!(bot.request_state(&req_id()).await, RequestState::Done);
    let updates = bot.slack.calls("chat.update");
    assert!(
        updates
            .iter()
            .all(|u| u.form["ts"] == ts && u.form["channel"] == channel),
        "updated in place"
    );
    assert!(
        updates.len() >= 12,
        "one update per step start and end: {}",
        updates.len()
    );
    let last = &updates.last().unwrap().form;
    assert!(
        last["text"].contains("✔") && !last["blocks"].contains("erlmcp_approve"),
        "buttons gone once decided: {last:?}"
    );
    // Another reaction after the fact changes nothing more.
    assert_eq!(
        bot.reaction("Ev3", "U_CAROL", "white_check_mark", &channel, &ts)
            .await,
        200
    );
    bot.slack
        .wait_until("carol is told it already ran", |c| {
            c.iter().any(|c| {
                c.method == "chat.postEphemeral"
                    && c.form["user"] == "U_CAROL"
                    && c.form["text"].contains("runs only once")
            })
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_approve_and_deny_through_the_same_rules() {
    let bot = start().await;
    let (channel, _ts) = failover_card(&bot).await;
    assert_eq!(
        bot.button("U_ALICE", &channel, "erlmcp_approve", &req_id())
            .await,
        200
    );
    bot.slack
        .wait_until("self-approval by button refused", |c| {
            c.iter().any(|c| {
                c.method == "response_url/U_ALICE"
                    && texts(std::slice::from_ref(c))[0].contains("a second person must approve")
            })
        })
        .await;
    assert_eq!(
        bot.button("U_BOT2", &channel, "erlmcp_approve", &req_id())
            .await,
        200
    );
    bot.slack
        .wait_until("a bot's approval refused", |c| {
            c.iter().any(|c| {
                c.method == "response_url/U_BOT2"
                    && c.form["text"].contains("bots and apps cannot approve")
            })
        })
        .await;
    assert_eq!(
        bot.button("U_CAROL", &channel, "erlmcp_deny", &req_id())
            .await,
        200
    );
    bot.slack
        .wait_until("denied", |c| {
            c.iter().any(|c| {
                c.method == "chat.postMessage" && c.form["text"].contains("⛔ carol denied")
            })
        })
        .await;
    assert_eq!(bot.request_state(&req_id()).await, RequestState::Denied);
    assert_eq!(
        bot.button("U_BOB", &channel, "erlmcp_approve", &req_id())
            .await,
        200
    );
    bot.slack
        .wait_until("approval after denial refused", |c| {
            c.iter().any(|c| {
                c.method == "response_url/U_BOB" && c.form["text"].contains("was denied by carol")
            })
        })
        .await;
    assert_eq!(bot.request_state(&req_id()).await, RequestState::Denied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_and_repeated_events_count_once() {
    let bot = start().await;
    let (channel, ts) = failover_card(&bot).await;
    // Slack's retry of a delivery whose first attempt never arrived is handled...
    assert_eq!(bot.event("EvRetry", json!({ "type": "reaction_added", "user": "U_BOB", "reaction": "white_check_mark", "item": { "type": "message", "channel": channel, "ts": ts } }), Some("1")).await, 200);
    // ...and further deliveries of the same event are not.
    for n in ["2", "3"] {
        bot.event("EvRetry", json!({ "type": "reaction_added", "user": "U_BOB", "reaction": "white_check_mark", "item": { "type": "message", "channel": channel, "ts": ts } }), Some(n)).await;
    }
    bot.slack
        .wait_until("the run finishes", |c| {
            c.iter()
                .any(|c| c.method == "chat.postMessage" && c.form["text"].contains("🏁"))
        })
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let inc = bot
        .app
        .engine
        .store()
        .open_incidents()
        .await
        .unwrap()
        .remove(0);
    let timeline = bot.app.engine.store().timeline(&inc.id).await.unwrap();
    assert_eq!(
        timeline
            .iter()
            .filter(|e| e.kind == "approval.granted")
            .count(),
        1
    );
    assert_eq!(
        timeline
            .iter()
            .filter(|e| e.kind == "approval.refused")
            .count(),
        0,
        "the repeats were not even judged"
    );
    assert_eq!(timeline.iter().filter(|e| e.kind == "run.done").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushpin_puts_the_message_on_the_timeline() {
    let bot = start().await;
    bot.command("U_ALICE", "C_GENERAL", "/erlmcp", "p1 declare Latency")
        .await;
    let channel = bot.incident_channel().await;
    {
        let mut s = bot.slack.state.lock().unwrap();
        s.history_text = "p99 is back under 200 ms after the cache flush".into();
        s.history_user = "U_CAROL".into();
    }
    assert_eq!(
        bot.reaction("EvPin", "U_BOB", "pushpin", &channel, "1700000123.000200")
            .await,
        200
    );
    bot.slack
        .wait_until("the pinner is told", |c| {
            c.iter().any(|c| {
                c.method == "chat.postEphemeral" && c.form["text"].contains("Added carol's message")
            })
        })
        .await;
    let history = &bot.slack.calls("conversations.history")[0].form;
    assert_eq!(
        (
            history["channel"].as_str(),
            history["latest"].as_str(),
            history["inclusive"].as_str()
        ),
        (channel.as_str(), "1700000123.000200", "true")
    );
    let id = IncidentId::new(format!("INC-{}-1", chrono::Utc::now().format("%Y%m%d")));
    let timeline = bot.app.engine.store().timeline(&id).await.unwrap();
    let pinned = timeline
        .iter()
        .find(|e| e.kind == "pinned")
        .expect("pinned entry");
    assert_eq!(
        (pinned.actor.as_str(), pinned.text.as_str()),
        (
            "bob",
            "📌 carol (slack:U_CAROL): p99 is back under 200 ms after the cache flush"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_api_rate_limits_are_waited_out_and_outages_do_not_lose_the_timeline() {
    let bot = start().await;
    bot.slack.fail("chat.postMessage", 429, "", Some(1));
    bot.command("U_ALICE", "C_GENERAL", "/erlmcp", "p2 declare Slow pages")
        .await;
    bot.slack
        .wait_until("posted after the rate limit", |c| {
            c.iter().filter(|c| c.method == "chat.postMessage").count() >= 2
        })
        .await;
    let posts = bot.slack.calls("chat.postMessage");
    assert_eq!(
        posts[0].form["text"], posts[1].form["text"],
        "the same message, sent again after Retry-After"
    );
    let channel = bot.incident_channel().await;
    // Slack answers a post with a 5xx: it may have posted it, so it is not sent again (no
    // duplicate message). The acknowledgement is on the timeline anyway and the person is told.
    bot.slack
        .fail("chat.postMessage", 503, "upstream connect error", None);
    let posts_before = bot.slack.calls("chat.postMessage").len();
    assert_eq!(bot.command("U_BOB", &channel, "/erlmcp", "ack").await, 200);
    bot.slack
        .wait_until("the person is told Slack failed", |c| {
            c.iter().any(|c| {
                c.method == "response_url/U_BOB"
                    && c.form["text"].contains(
                        "could not post to this channel (Slack chat.postMessage: HTTP 503",
                    )
            })
        })
        .await;
    assert_eq!(
        bot.slack.calls("chat.postMessage").len(),
        posts_before + 1,
        "a post answered with a 5xx is not repeated"
    );
    let inc = bot
        .app
        .engine
        .store()
        .open_incidents()
        .await
        .unwrap()
        .remove(0);
    assert!(
        bot.app
            .engine
            .store()
            .timeline(&inc.id)
            .await
            .unwrap()
            .iter()
            .any(|e| e.kind == "acknowledged" && e.actor == "bob")
    );
    // A channel the bot is not in: it joins and posts.
    bot.slack.fail(
        "chat.postMessage",
        200,
        "{\"ok\":false,\"error\":\"not_in_channel\"}",
        None,
    );
    bot.command("U_BOB", &channel, "/erlmcp", "mitigated").await;
    bot.slack
        .wait_until("joined and posted", |c| {
            c.iter().any(|c| c.method == "conversations.join")
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_acknowledged_before_the_work_is_done() {
    let bot = start().await;
    let gate = Arc::new(tokio::sync::Notify::new());
    bot.slack.state.lock().unwrap().hold_users_info = Some(gate.clone());
    // users.info is held until the test lets it go: if the handler waited for the work, this
    // request could never be answered first.
    let status = bot
        .command(
            "U_ALICE",
            "C_GENERAL",
            "/erlmcp",
            "p3 declare Typo on the status page",
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        bot.app
            .engine
            .store()
            .open_incidents()
            .await
            .unwrap()
            .is_empty(),
        "answered before the work"
    );
    gate.notify_waiters();
    gate.notify_one();
    bot.slack
        .wait_until("the work completes afterwards", |c| {
            c.iter()
                .any(|c| c.method == "chat.postMessage" && c.form["text"].contains("declared: P3"))
        })
        .await;
}

#[tokio::test]
async fn an_invalid_token_stops_serve_at_start_with_slacks_reason() {
    erlmcp_bot::cli::install_crypto_provider();
    let slack = FakeSlack::start().await;
    slack.fail(
        "auth.test",
        200,
        "{\"ok\":false,\"error\":\"invalid_auth\"}",
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("bot.db").display());
    let (config, slack_config) = bot_config(&db, &slack.api_url(), SECRET);
    let err = erlmcp_bot::serve::build(&config, &slack_config)
        .await
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "Slack refused the bot token (auth.test: invalid_auth); check SLACK_BOT_TOKEN (the xoxb- token of this app's installation)"
    );
    assert_eq!(
        SlackConfig::from_env(&|_| None).unwrap_err().to_string(),
        "`serve` needs SLACK_BOT_TOKEN (the bot's xoxb- token) and SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN for Socket Mode)"
    );
}

/// The manifest asks for exactly the scopes the code needs: every Web API method the adapter
/// calls, plus the events it subscribes to and the slash commands.
#[test]
fn the_app_manifest_grants_exactly_the_scopes_used() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let manifest: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(format!("{root}/deploy/slack-app-manifest.yaml")).unwrap(),
    )
    .unwrap();
    let granted: std::collections::BTreeSet<String> = manifest["oauth_config"]["scopes"]["bot"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let scope_of = |method: &str| match method {
        "chat.postMessage" | "chat.update" | "chat.postEphemeral" => "chat:write",
        "conversations.create" | "conversations.invite" => "channels:manage",
        "conversations.join" => "channels:join",
        "conversations.history" | "conversations.replies" => "channels:history",
        "pins.add" => "pins:write",
        "users.info" | "bots.info" => "users:read",
        "auth.test" => "",
        other => panic!("no scope known for {other}: add it here and to the manifest"),
    };
    let call = regex::Regex::new(r#"call\(\s*"([a-zA-Z.]+)""#).unwrap();
    let mut needed = std::collections::BTreeSet::from([
        "commands".to_string(),
        "reactions:read".to_string(),
        "app_mentions:read".to_string(),
    ]);
    for file in std::fs::read_dir(format!("{root}/bot/src/slack")).unwrap() {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
        for c in call.captures_iter(&text) {
            let scope = scope_of(&c[1]);
            if !scope.is_empty() {
                needed.insert(scope.to_string());
            }
        }
    }
    assert_eq!(granted, needed);
    let events: Vec<&str> = manifest["settings"]["event_subscriptions"]["bot_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        vec!["reaction_added", "reaction_removed", "app_mention"]
    );
    let commands: Vec<&str> = manifest["features"]["slash_commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands, vec!["/erlmcp", "/failover"]);
    assert!(
        manifest["settings"]["interactivity"]["request_url"]
            .as_str()
            .unwrap()
            .ends_with("/slack/interactions")
    );
}
