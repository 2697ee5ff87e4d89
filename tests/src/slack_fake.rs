//! A stand-in for the Slack Web API (reached through `SLACK_API_URL`): it answers like Slack
//! (`ok`, `error`, `ts`, HTTP 429 with `Retry-After`), records every call with its form fields,
//! and also serves `response_url`s. Plus request signing as Slack does it.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub form: HashMap<String, String>,
}

#[derive(Default)]
pub struct FakeSlackState {
    pub calls: Vec<Call>,
    /// Responses to give to the next calls of a method, before the normal answer: (status, body, retry-after).
    pub faults: BTreeMap<String, VecDeque<(u16, String, Option<u64>)>>,
    pub taken_names: Vec<String>,
    pub history_text: String,
    pub history_user: String,
    /// Messages as Slack keeps them, when a test sets them: (channel, ts, user, text, thread_ts).
    pub messages: Vec<(String, String, String, String, Option<String>)>,
    next_ts: u64,
    next_channel: u64,
    /// users.info waits for this before answering, when set.
    pub hold_users_info: Option<Arc<tokio::sync::Notify>>,
    /// What `apps.connections.open` hands out (Socket Mode), when a socket is running.
    pub socket_url: Option<String>,
    /// One-shot holds: the first call matching a predicate waits until released.
    pub holds: Vec<Hold>,
}

/// A call that waits (see `FakeSlack::hold`).
pub struct Hold {
    pub matches: Box<dyn Fn(&Call) -> bool + Send>,
    pub released: tokio::sync::watch::Receiver<bool>,
    /// Tells the test the held call has arrived.
    pub arrived: Option<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Clone)]
pub struct FakeSlack {
    pub url: String,
    pub state: Arc<Mutex<FakeSlackState>>,
}

fn user(id: &str) -> Value {
    let (name, is_bot) = match id {
        "U_ALICE" => ("alice", false),
        "U_BOB" => ("bob", false),
        "U_CAROL" => ("carol", false),
        "U_SAM" => ("sam", false),
        "U_BOT2" => ("deploybot", true),
        // Someone who set their display name to the security approver's id.
        "U_EVE" => ("U_SAM", false),
        other => (other, false),
    };
    let team = if id.starts_with("U_EXT") {
        "T0OTHER"
    } else {
        "T1"
    };
    json!({ "id": id, "team_id": team, "name": name, "is_bot": is_bot, "profile": { "display_name": name, "real_name": name.to_uppercase() } })
}

async fn api(
    State(state): State<Arc<Mutex<FakeSlackState>>>,
    Path(method): Path<String>,
    body: Bytes,
) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let held = {
        let mut s = state.lock().unwrap();
        let call = Call {
            method: method.clone(),
            form: form.clone(),
        };
        let i = s.holds.iter().position(|h| (h.matches)(&call));
        i.map(|i| s.holds.remove(i))
    };
    if let Some(mut hold) = held {
        if let Some(tx) = hold.arrived.take() {
            let _ = tx.send(());
        }
        // If the caller dies meanwhile, this future is dropped with its connection.
        let _ = hold.released.wait_for(|r| *r).await;
    }
    let hold = {
        let mut s = state.lock().unwrap();
        s.calls.push(Call {
            method: method.clone(),
            form: form.clone(),
        });
        if let Some((status, body, retry_after)) =
            s.faults.get_mut(&method).and_then(|q| q.pop_front())
        {
            let mut resp = (StatusCode::from_u16(status).unwrap(), body).into_response();
            if let Some(secs) = retry_after {
                resp.headers_mut()
                    .insert("retry-after", secs.to_string().parse().unwrap());
            }
            return resp;
        }
        if method == "users.info" {
            s.hold_users_info.clone()
        } else {
            None
        }
    };
    if let Some(n) = hold {
        n.notified().await;
    }
    let mut s = state.lock().unwrap();
    let answer = match method.as_str() {
        "auth.test" => {
            json!({ "ok": true, "user_id": "UBOT", "team": "acme", "team_id": "T1", "bot_id": "B1" })
        }
        "bots.info" => {
            json!({ "ok": true, "bot": { "id": form.get("bot"), "app_id": "A1", "user_id": "UBOT", "name": "erlmcp-bot" } })
        }
        "apps.connections.open" => match &s.socket_url {
            Some(url) => json!({ "ok": true, "url": url }),
            None => json!({ "ok": false, "error": "not_allowed_token_type" }),
        },
        "users.info" => {
            json!({ "ok": true, "user": user(form.get("user").map(String::as_str).unwrap_or("")) })
        }
        "conversations.create" => {
            let name = form.get("name").cloned().unwrap_or_default();
            if s.taken_names.contains(&name) {
                json!({ "ok": false, "error": "name_taken" })
            } else {
                s.taken_names.push(name.clone());
                s.next_channel += 1;
                json!({ "ok": true, "channel": { "id": format!("C_INC{}", s.next_channel), "name": name } })
            }
        }
        "chat.postMessage" => {
            s.next_ts += 1;
            json!({ "ok": true, "channel": form.get("channel"), "ts": format!("1700000000.{:06}", s.next_ts) })
        }
        "conversations.history" if !s.messages.is_empty() => {
            // Top-level messages of the channel between oldest and latest (inclusive), newest first.
            let (latest, oldest) = (
                form.get("latest").cloned().unwrap_or_default(),
                form.get("oldest").cloned().unwrap_or_default(),
            );
            let channel = form.get("channel").cloned().unwrap_or_default();
            let mut found: Vec<Value> = s.messages.iter()
                .filter(|(c, ts, _, _, thread)| *c == channel && thread.as_ref().is_none_or(|t| t == ts) && (latest.is_empty() || *ts <= latest) && (oldest.is_empty() || *ts >= oldest))
                .map(|(_, ts, user, text, _)| json!({ "type": "message", "ts": ts, "user": user, "text": text }))
                .collect();
            found.reverse();
            found.truncate(
                form.get("limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(100),
            );
            json!({ "ok": true, "messages": found })
        }
        "conversations.replies" if !s.messages.is_empty() => {
            let (ts, channel) = (
                form.get("ts").cloned().unwrap_or_default(),
                form.get("channel").cloned().unwrap_or_default(),
            );
            let root = s
                .messages
                .iter()
                .find(|m| m.0 == channel && m.1 == ts)
                .map(|m| m.4.clone().unwrap_or(m.1.clone()));
            match root {
                None => json!({ "ok": false, "error": "thread_not_found" }),
                Some(root) => {
                    let thread: Vec<Value> = s.messages.iter()
                        .filter(|m| m.0 == channel && (m.1 == root || m.4.as_deref() == Some(root.as_str())))
                        .map(|(_, ts, user, text, thread)| json!({ "type": "message", "ts": ts, "user": user, "text": text, "thread_ts": thread }))
                        .collect();
                    json!({ "ok": true, "messages": thread })
                }
            }
        }
        "conversations.history" => {
            json!({ "ok": true, "messages": [ { "type": "message", "user": s.history_user, "text": s.history_text, "ts": form.get("latest") } ] })
        }
        _ => json!({ "ok": true }),
    };
    axum::Json(answer).into_response()
}

async fn response_url(
    State(state): State<Arc<Mutex<FakeSlackState>>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut form = HashMap::new();
    form.insert(
        "text".to_string(),
        v["text"].as_str().unwrap_or("").to_string(),
    );
    form.insert(
        "response_type".to_string(),
        v["response_type"].as_str().unwrap_or("").to_string(),
    );
    state.lock().unwrap().calls.push(Call {
        method: format!("response_url/{id}"),
        form,
    });
    StatusCode::OK.into_response()
}

impl FakeSlack {
    pub async fn start() -> FakeSlack {
        let state: Arc<Mutex<FakeSlackState>> = Arc::default();
        let router = Router::new()
            .route("/api/{method}", axum::routing::post(api))
            .route("/response/{id}", axum::routing::post(response_url))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeSlack { url, state }
    }

    pub fn api_url(&self) -> String {
        format!("{}/api", self.url)
    }

    pub fn calls(&self, method: &str) -> Vec<Call> {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// The first call for which `matches` holds waits until the returned sender says `true`;
    /// the receiver fires when it arrives.
    pub fn hold(
        &self,
        matches: impl Fn(&Call) -> bool + Send + 'static,
    ) -> (
        tokio::sync::watch::Sender<bool>,
        tokio::sync::oneshot::Receiver<()>,
    ) {
        let (release, released) = tokio::sync::watch::channel(false);
        let (arrived_tx, arrived) = tokio::sync::oneshot::channel();
        self.state.lock().unwrap().holds.push(Hold {
            matches: Box::new(matches),
            released,
            arrived: Some(arrived_tx),
        });
        (release, arrived)
    }

    pub fn fail(&self, method: &str, status: u16, body: &str, retry_after: Option<u64>) {
        self.state
            .lock()
            .unwrap()
            .faults
            .entry(method.to_string())
            .or_default()
            .push_back((status, body.to_string(), retry_after));
    }

    /// Waits (bounded) until `check` holds on the calls so far; panics with them if it never does.
    pub async fn wait_until(&self, what: &str, check: impl Fn(&[Call]) -> bool) {
        // 30 s: generous, for a loaded 2-core machine; a pass returns as soon as it holds.
        for _ in 0..1200 {
            if check(&self.state.lock().unwrap().calls) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        let calls: Vec<String> = self
            .state
            .lock()
            .unwrap()
            .calls
            .iter()
            .map(|c| format!("{} {:?}", c.method, c.form))
            .collect();
        panic!("never happened: {what}\ncalls:\n{}", calls.join("\n"));
    }
}

/// `v0=` + hex(HMAC-SHA256(secret, "v0:{ts}:{body}")), as Slack signs requests.
pub fn sign(secret: &str, ts: i64, body: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// The configuration a bot under test runs with: SQLite at `db_url`, the Web API at `api_url`,
/// requests signed with `secret`, `U_SAM` in the `security` group, and fast retries.
pub fn bot_config(
    db_url: &str,
    api_url: &str,
    secret: &str,
) -> (erlmcp_bot::config::Config, erlmcp_bot::serve::ServeConfig) {
    let (db, api, secret) = (db_url.to_string(), api_url.to_string(), secret.to_string());
    let env = move |k: &str| match k {
        "DATABASE_URL" => Some(db.clone()),
        "SLACK_SIGNING_SECRET" => Some(secret.clone()),
        "SLACK_BOT_TOKEN" => Some("xoxb-test".to_string()),
        "SLACK_API_URL" => Some(api.clone()),
        "ERLMCP_GROUPS" => Some("security:U_SAM".to_string()),
        "ERLMCP_RETRY_BASE_MS" => Some("1".to_string()),
        _ => None,
    };
    let config = erlmcp_bot::config::Config::load(Some(std::path::Path::new("/dev/null")), &env)
        .expect("test configuration");
    let slack = erlmcp_bot::serve::ServeConfig::from_env(&env).expect("test Slack configuration");
    (config, slack)
}

/// Slack gives every command and interaction a trigger id of its own, so no two bodies are alike.
fn unique_trigger() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    format!(
        "{}.{}.{:x}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
}

/// Sends requests to a bot as Slack does: signed, in Slack's documented payload formats
/// (form-encoded slash commands, `payload=` interactions, JSON event callbacks).
#[derive(Clone)]
pub struct SignedSlack {
    pub http: reqwest::Client,
    /// The bot's base URL, `http://127.0.0.1:PORT`.
    pub bot_url: String,
    /// The Web API stand-in's base URL (response URLs point there).
    pub fake_url: String,
    pub secret: String,
    pub team_id: String,
    pub app_id: String,
}

impl SignedSlack {
    pub fn new(bot_url: &str, fake: &FakeSlack, secret: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            bot_url: bot_url.to_string(),
            fake_url: fake.url.clone(),
            secret: secret.to_string(),
            team_id: "T1".into(),
            app_id: "A1".into(),
        }
    }

    pub fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    /// Posts `body` to `path` signed with the secret at time `ts`.
    pub async fn post_signed(
        &self,
        path: &str,
        body: &str,
        content_type: &str,
        ts: i64,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}{path}", self.bot_url))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", sign(&self.secret, ts, body))
            .body(body.to_string());
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        req.send().await.expect("the bot answers")
    }

    /// The form body of a slash command.
    pub fn command_body(&self, user: &str, channel: &str, command: &str, text: &str) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", "deprecated")
            .append_pair("team_id", &self.team_id)
            .append_pair("team_domain", "acme")
            .append_pair("channel_id", channel)
            .append_pair("channel_name", "general")
            .append_pair("user_id", user)
            .append_pair("user_name", &user.to_lowercase())
            .append_pair("command", command)
            .append_pair("text", text)
            .append_pair("api_app_id", &self.app_id)
            .append_pair("is_enterprise_install", "false")
            .append_pair(
                "response_url",
                &format!("{}/response/{user}", self.fake_url),
            )
            .append_pair("trigger_id", &unique_trigger())
            .finish()
    }

    /// A slash command; returns the whole HTTP answer.
    pub async fn command(
        &self,
        user: &str,
        channel: &str,
        command: &str,
        text: &str,
    ) -> reqwest::Response {
        let body = self.command_body(user, channel, command, text);
        self.post_signed(
            "/slack/commands",
            &body,
            "application/x-www-form-urlencoded",
            Self::now(),
            &[],
        )
        .await
    }

    /// A `block_actions` button press on a request card.
    pub async fn button(
        &self,
        user: &str,
        channel: &str,
        action: &str,
        request: &str,
    ) -> reqwest::Response {
        let payload = json!({
            "type": "block_actions",
            "user": { "id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": self.team_id },
            "api_app_id": self.app_id, "team": { "id": self.team_id, "domain": "acme" },
            "container": { "type": "message", "message_ts": "1700000000.000001", "channel_id": channel },
            "channel": { "id": channel, "name": "inc" },
            "response_url": format!("{}/response/{user}", self.fake_url),
            "actions": [ { "action_id": action, "block_id": format!("request:{request}"), "value": request, "type": "button", "action_ts": "1700000002.1" } ],
            "trigger_id": unique_trigger()
        });
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish();
        self.post_signed(
            "/slack/interactions",
            &body,
            "application/x-www-form-urlencoded",
            Self::now(),
            &[],
        )
        .await
    }

    /// An Events API callback carrying `event`.
    pub async fn event(&self, event_id: &str, event: Value) -> reqwest::Response {
        let body = json!({ "token": "x", "team_id": self.team_id, "api_app_id": self.app_id, "type": "event_callback",
                           "event_id": event_id, "event_time": Self::now(), "event": event })
        .to_string();
        self.post_signed("/slack/events", &body, "application/json", Self::now(), &[])
            .await
    }

    /// A `reaction_added` event on the message `ts` of `channel`.
    pub async fn reaction(
        &self,
        event_id: &str,
        user: &str,
        reaction: &str,
        channel: &str,
        ts: &str,
    ) -> reqwest::Response {
        let event = json!({ "type": "reaction_added", "user": user, "reaction": reaction, "item_user": "UBOT",
                            "item": { "type": "message", "channel": channel, "ts": ts }, "event_ts": "1700000001.000100" });
        self.event(event_id, event).await
    }
}

/// Slack's Socket Mode end, for one bot: a WebSocket that says `hello`, carries the envelopes the
/// test sends, and records what the bot answers (acknowledgements carry the envelope id).
#[derive(Clone)]
pub struct FakeSocket {
    to_bot: tokio::sync::broadcast::Sender<String>,
    from_bot: Arc<Mutex<Vec<Value>>>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl FakeSocket {
    /// Starts the socket and makes `apps.connections.open` on `slack` hand out its URL.
    pub async fn start(slack: &FakeSlack) -> FakeSocket {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/link", listener.local_addr().unwrap());
        slack.state.lock().unwrap().socket_url = Some(url);
        let (to_bot, _) = tokio::sync::broadcast::channel::<String>(64);
        let sock = FakeSocket {
            to_bot: to_bot.clone(),
            from_bot: Arc::default(),
            connections: Arc::default(),
        };
        let (from_bot, connections) = (sock.from_bot.clone(), sock.connections.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                    continue;
                };
                let (mut tx, mut rx) = ws.split();
                let mut envelopes = to_bot.subscribe();
                let from_bot = from_bot.clone();
                let hello = json!({ "type": "hello", "num_connections": 1,
                    "debug_info": { "host": "applink-test", "approximate_connection_time": 18060 },
                    "connection_info": { "app_id": "A1" } });
                if tx
                    .send(Message::Text(hello.to_string().into()))
                    .await
                    .is_err()
                {
                    continue;
                }
                connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            out = envelopes.recv() => match out {
                                Ok(text) => if tx.send(Message::Text(text.into())).await.is_err() { break },
                                Err(_) => break,
                            },
                            got = rx.next() => match got {
                                Some(Ok(Message::Text(t))) => {
                                    if let Ok(v) = serde_json::from_str::<Value>(&t) {
                                        from_bot.lock().unwrap().push(v);
                                    }
                                }
                                Some(Ok(Message::Ping(p))) => { let _ = tx.send(Message::Pong(p)).await; }
                                Some(Ok(_)) => {}
                                _ => break,
                            },
                        }
                    }
                });
            }
        });
        sock
    }

    /// Waits (bounded) until the bot has connected.
    pub async fn connected(&self) {
        for _ in 0..400 {
            if self.connections.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the bot never opened the Socket Mode connection");
    }

    /// Sends an envelope as Slack does: `{envelope_id, type, payload, accepts_response_payload}`.
    pub fn send(&self, envelope_id: &str, kind: &str, payload: Value) {
        let envelope = json!({ "envelope_id": envelope_id, "type": kind, "payload": payload,
                               "accepts_response_payload": kind != "events_api", "retry_attempt": 0, "retry_reason": "" });
        let _ = self.to_bot.send(envelope.to_string());
    }

    /// Waits (bounded) for the bot's acknowledgement of an envelope.
    pub async fn acked(&self, envelope_id: &str) -> Value {
        for _ in 0..400 {
            if let Some(v) = self
                .from_bot
                .lock()
                .unwrap()
                .iter()
                .find(|v| v["envelope_id"] == envelope_id)
            {
                return v.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("envelope {envelope_id} was never acknowledged");
    }
}
