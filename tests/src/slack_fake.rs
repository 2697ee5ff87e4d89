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
    next_ts: u64,
    next_channel: u64,
    /// users.info waits for this before answering, when set.
    pub hold_users_info: Option<Arc<tokio::sync::Notify>>,
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
        other => (other, false),
    };
    json!({ "id": id, "name": name, "is_bot": is_bot, "profile": { "display_name": name, "real_name": name.to_uppercase() } })
}

async fn api(
    State(state): State<Arc<Mutex<FakeSlackState>>>,
    Path(method): Path<String>,
    body: Bytes,
) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
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
        "auth.test" => json!({ "ok": true, "user_id": "UBOT", "team": "T1" }),
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
        for _ in 0..400 {
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
) -> (erlmcp_bot::config::Config, erlmcp_bot::slack::SlackConfig) {
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
    let slack = erlmcp_bot::slack::SlackConfig::from_env(&env).expect("test Slack configuration");
    (config, slack)
}
