//! The HTTP endpoints Slack calls, and the probes. Each Slack request is verified (signature,
//! then workspace and app), answered at once (Slack wants an answer within 3 seconds), and its
//! work continues in a spawned task. Socket Mode hands its envelopes to the same `take`.

use super::Slack;
use super::inbound::{self, Parsed};
use super::poster::PLATFORM;
use super::verify::Verifier;
use crate::http::SmallBody;
use crate::store::futures_ping::PingFuture;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub slack: Slack,
    pub verifier: Arc<Verifier>,
    pub ping: Arc<dyn Fn() -> PingFuture + Send + Sync>,
}

impl AppState {
    pub fn new(
        slack: Slack,
        signing_secret: &str,
        ping: Arc<dyn Fn() -> PingFuture + Send + Sync>,
    ) -> Self {
        Self {
            slack,
            verifier: Arc::new(Verifier::new(signing_secret)),
            ping,
        }
    }
}

pub fn router(state: AppState) -> Router {
    let slack = crate::http::guarded(
        Router::new()
            .route("/slack/commands", post(commands))
            .route("/slack/interactions", post(interactions))
            .route("/slack/events", post(events))
            .with_state(state.clone()),
    );
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(state)
        .merge(slack)
}

fn unauthorized(why: String) -> Response {
    tracing::warn!(%why, "refused a request that is not from Slack");
    (
        StatusCode::UNAUTHORIZED,
        format!("invalid Slack request signature: {why}"),
    )
        .into_response()
}

fn bad_request(why: &str) -> Response {
    (StatusCode::BAD_REQUEST, why.to_string()).into_response()
}

/// The body as text, if it is genuine; otherwise the answer to give (boxed: it is large).
fn verified(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<String, Box<Response>> {
    let text = std::str::from_utf8(body).map_err(|_| Box::new(bad_request("body is not UTF-8")))?;
    state
        .verifier
        .check(headers, text)
        .map_err(|why| Box::new(unauthorized(why)))?;
    Ok(text.to_string())
}

/// Why a request was not taken.
enum NotTaken {
    /// A replay, or otherwise not from Slack: the answer to give.
    Refused(Box<Response>),
    /// The database did not record it: nothing happened; the person must be told.
    DatabaseDown(String),
}

/// Slack never re-sends a slash command or a button press, so a second request with the same
/// signature is a replay (a signature stays valid for the 5-minute window): refused.
async fn not_replayed(state: &AppState, headers: &HeaderMap) -> Result<(), NotTaken> {
    let signature = headers
        .get("x-slack-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let recorded = tokio::time::timeout(
        DATABASE_PATIENCE,
        state
            .slack
            .poster
            .chat
            .first_delivery("slack-signature", signature),
    )
    .await
    .unwrap_or_else(|_| {
        Err(crate::error::Error::Database(format!(
            "no answer within {} s",
            DATABASE_PATIENCE.as_secs()
        )))
    });
    match recorded {
        Ok(true) => Ok(()),
        Ok(false) => Err(NotTaken::Refused(Box::new(unauthorized(
            "replayed request: this signature was already used".into(),
        )))),
        Err(e) => {
            tracing::error!(error = %e, "the database is unreachable; a request was refused unrecorded");
            Err(NotTaken::DatabaseDown(e.to_string()))
        }
    }
}

/// How long the request path waits for the database before telling the person it is down:
/// Slack gives up on an answer after 3 seconds.
const DATABASE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// What the person is told when the database could not record their request.
fn database_down_text(why: &str) -> String {
    format!(
        "⚠ erlmcp-bot cannot reach its database ({why}). Nothing was recorded and nothing was changed. Try again in a moment; if it persists, run `erlmcp-bot console` against the standby database (`DATABASE_URL=...`)."
    )
}

/// An answer Slack shows to the person only (a 200's body; a 5xx would show Slack's generic error).
fn ephemeral(text: &str) -> Response {
    axum::Json(json!({ "response_type": "ephemeral", "text": text })).into_response()
}

fn form(text: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect()
}

/// What became of a parsed payload.
pub enum Taken {
    /// The work started in the background.
    Acting,
    /// Nothing for the bot to do (another kind of event or interaction).
    Ignored,
    /// Signed by Slack, but for another workspace or app: refused, with the reason.
    NotOurs(String),
}

/// Admits a parsed payload (its workspace and app must be the bot's own) and starts its work in
/// a task. Event callbacks count once per event id, whichever delivery arrives first.
pub fn take(slack: &Slack, parsed: Parsed) -> Taken {
    if let Some(why) = slack
        .workspace
        .refuses(parsed.origin.team.as_deref(), parsed.origin.app.as_deref())
    {
        tracing::warn!(%why, "refused a request for another workspace or app");
        return Taken::NotOurs(why);
    }
    let Some(inbound) = parsed.inbound else {
        return Taken::Ignored;
    };
    let slack = slack.clone();
    tokio::spawn(async move {
        if let Some(event_id) = &parsed.event_id {
            match slack.poster.chat.first_delivery(PLATFORM, event_id).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::debug!(event_id, "repeated delivery ignored");
                    return;
                }
                Err(e) => {
                    tracing::error!(event_id, error = %e, "cannot record the event; not handling it twice is safer");
                    return;
                }
            }
        }
        slack.handle(inbound).await;
    });
    Taken::Acting
}

async fn commands(
    State(state): State<AppState>,
    headers: HeaderMap,
    SmallBody(body): SmallBody,
) -> Response {
    let text = match verified(&state, &headers, &body) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let parsed = match inbound::parse_command(&form(&text)) {
        Ok(p) => p,
        Err(why) => return bad_request(why),
    };
    match not_replayed(&state, &headers).await {
        Ok(()) => {}
        Err(NotTaken::Refused(r)) => return *r,
        Err(NotTaken::DatabaseDown(why)) => return ephemeral(&database_down_text(&why)),
    }
    match take(&state.slack, parsed) {
        // An empty 200 acknowledges at once; the answers follow through the Web API.
        Taken::Acting | Taken::Ignored => StatusCode::OK.into_response(),
        Taken::NotOurs(why) => ephemeral(&format!("erlmcp-bot did nothing: {why}.")),
    }
}

async fn interactions(
    State(state): State<AppState>,
    headers: HeaderMap,
    SmallBody(body): SmallBody,
) -> Response {
    let text = match verified(&state, &headers, &body) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let Some(payload) = form(&text).remove("payload") else {
        return bad_request("an interaction needs a payload field");
    };
    let Ok(p) = serde_json::from_str::<Value>(&payload) else {
        return bad_request("the payload is not JSON");
    };
    let parsed = match inbound::parse_interaction(&p) {
        Ok(parsed) => parsed,
        Err(why) => return bad_request(why),
    };
    match not_replayed(&state, &headers).await {
        Ok(()) => {}
        Err(NotTaken::Refused(r)) => return *r,
        Err(NotTaken::DatabaseDown(why)) => {
            // A button's answer body is not shown: tell the person through its response URL.
            if let Some(url) = p["response_url"].as_str().map(str::to_string) {
                let api = state.slack.api().clone();
                tokio::spawn(async move {
                    let body = json!({ "response_type": "ephemeral", "replace_original": false, "text": database_down_text(&why) });
                    if let Err(e) = api.respond(&url, &body).await {
                        tracing::warn!(error = %e, "could not tell the person the database is down");
                    }
                });
            }
            return StatusCode::OK.into_response();
        }
    }
    // Another workspace's button is refused without a word to it.
    let _ = take(&state.slack, parsed);
    StatusCode::OK.into_response()
}

async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    SmallBody(body): SmallBody,
) -> Response {
    let text = match verified(&state, &headers, &body) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        return bad_request("the event is not JSON");
    };
    if v["type"] == "url_verification" {
        return axum::Json(json!({ "challenge": v["challenge"] })).into_response();
    }
    match inbound::parse_event(&v) {
        Ok(parsed) => {
            // Acknowledged whatever it is, so Slack does not retry what we refuse or ignore.
            let _ = take(&state.slack, parsed);
            StatusCode::OK.into_response()
        }
        Err(why) => bad_request(why),
    }
}

/// Readiness answers within a second whatever the database does: a probe that hangs is
/// worse than one that says why it fails.
const READY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

async fn ready(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(READY_PATIENCE, (state.ping)()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: database unreachable: {e}"),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the database did not answer within 1 s",
        )
            .into_response(),
    }
}
