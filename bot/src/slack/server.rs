//! The HTTP endpoints Slack calls, and the probes. Each Slack request is verified (signature,
//! then workspace and app), answered at once (Slack wants an answer within 3 seconds), and its
//! work continues in a spawned task. Socket Mode hands its envelopes to the same `take`.

use super::Slack;
use super::inbound::{self, Parsed};
use super::verify::Verifier;
use crate::chat::Inbound;
pub use crate::chat::receive::Taken;
use crate::chat::receive::{database_down_text, database_slow_text};
use crate::http::SmallBody;
use crate::intake::Intake;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub slack: Slack,
    pub intake: Intake,
    pub verifier: Arc<Verifier>,
}

impl AppState {
    pub fn new(slack: Slack, intake: Intake, signing_secret: &str) -> Self {
        Self {
            slack,
            intake,
            verifier: Arc::new(Verifier::new(signing_secret)),
        }
    }
}

/// Slack's endpoints (the probes are `serve`'s, whatever platforms run).
pub fn router(state: AppState) -> Router {
    crate::http::guarded(
        Router::new()
            .route("/slack/commands", post(commands))
            .route("/slack/interactions", post(interactions))
            .route("/slack/events", post(events))
            .with_state(state),
    )
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

/// An answer Slack shows to the person only (a 200's body; a 5xx would show Slack's generic error).
fn ephemeral(text: &str) -> Response {
    axum::Json(json!({ "response_type": "ephemeral", "text": text })).into_response()
}

fn form(text: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect()
}

/// Admits a parsed payload (its workspace and app must be the bot's own) and stores it as a
/// receipt under `key` before anything is acknowledged; processing starts from the receipt.
pub async fn take(
    slack: &Slack,
    intake: &Intake,
    parsed: Parsed,
    key: impl Into<crate::chat::receive::ReceiptKeys>,
) -> Taken {
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
    crate::chat::receive::take(&slack.chat, intake, inbound, key).await
}

/// The receipt key of a command or button press: its signed timestamp and its signature (Slack
/// never sends one twice; a replay carries both unchanged, and a changed timestamp fails the
/// signature). The timestamp leads so that keys arrive in order: each new key goes at the end
/// of the unique index, on a page already in hand, not on a random one of thousands (a random
/// key dirtied a page per command, about half of what each batch wrote to disk). Versions before
/// this one stored the signature alone: that key is kept as the former one, so a replay sent to
/// an older process and to this one during an upgrade is still taken once.
fn signature_key(headers: &HeaderMap) -> crate::chat::receive::ReceiptKeys {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let signature = header("x-slack-signature");
    crate::chat::receive::ReceiptKeys {
        key: format!(
            "slack:sig:{}:{signature}",
            header("x-slack-request-timestamp")
        ),
        former: Some(format!("slack:sig:{signature}")),
    }
}

fn replayed() -> Response {
    unauthorized("replayed request: this signature was already used".into())
}

/// The answer to a note stored but not yet on the timeline: to its author only.
fn note_received() -> Value {
    json!({ "response_type": "ephemeral", "text": "📝 Received and stored; it goes on the incident's timeline in a moment (you will be told here if it cannot)." })
}

/// The body of the answer to a note already on the timeline: shown in the channel, without a
/// Web API call.
fn note_acknowledgement(incident: &erlmcp_handlers::ids::IncidentId) -> Value {
    json!({ "response_type": "in_channel", "text": format!("📝 Noted on {incident}'s timeline.") })
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
    let note = matches!(&parsed.inbound, Some(Inbound::Command { command, text, .. })
        if erlmcp_handlers::engine::as_note(&crate::chat::inbound::command_line(command, text)).is_some());
    match take(&state.slack, &state.intake, parsed, signature_key(&headers)).await {
        // A note already on the timeline is answered in the channel at once, with no Web API
        // call: notes come in bursts.
        Taken::Applied(incident) => axum::Json(note_acknowledgement(&incident)).into_response(),
        // A note only stored may still be refused (no open incident, closed meanwhile): only its
        // author hears it is stored, and hears again if it is refused.
        Taken::Stored if note => axum::Json(note_received()).into_response(),
        // An empty 200 acknowledges at once; the answers follow through the Web API.
        Taken::Stored | Taken::Ignored => StatusCode::OK.into_response(),
        Taken::Duplicate => replayed(),
        Taken::NotOurs(why) => ephemeral(&format!("erlmcp-bot did nothing: {why}.")),
        Taken::Failed(why) => ephemeral(&database_down_text(&why)),
        Taken::Unknown(why) => ephemeral(&database_slow_text(&why)),
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
    let said = match take(&state.slack, &state.intake, parsed, signature_key(&headers)).await {
        Taken::Duplicate => return replayed(),
        Taken::Failed(why) => database_down_text(&why),
        Taken::Unknown(why) => database_slow_text(&why),
        // Another workspace's button is refused without a word to it.
        Taken::Stored | Taken::Applied(_) | Taken::Ignored | Taken::NotOurs(_) => {
            return StatusCode::OK.into_response();
        }
    };
    // A button's answer body is not shown: tell the person through its response URL.
    if let Some(url) = p["response_url"].as_str().map(str::to_string) {
        let api = state.slack.api().clone();
        tokio::spawn(async move {
            let body =
                json!({ "response_type": "ephemeral", "replace_original": false, "text": said });
            if let Err(e) = api.respond(&url, &body).await {
                tracing::warn!(error = %e, "could not tell the person the database is down");
            }
        });
    }
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
    let parsed = match inbound::parse_event(&v) {
        Ok(parsed) => parsed,
        Err(why) => return bad_request(why),
    };
    let key = format!(
        "slack:event:{}",
        parsed.event_id.clone().unwrap_or_default()
    );
    match take(&state.slack, &state.intake, parsed, key).await {
        // Not recorded: a 5xx makes Slack deliver it again (the event id counts it once).
        Taken::Failed(why) | Taken::Unknown(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not recorded, deliver again: {why}"),
        )
            .into_response(),
        // Acknowledged whatever else it is, so Slack does not retry what we refuse or ignore.
        _ => StatusCode::OK.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::signature_key;
    use axum::http::HeaderMap;

    fn signed(ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-slack-request-timestamp", ts.parse().unwrap());
        h.insert("x-slack-signature", sig.parse().unwrap());
        h
    }

    #[test]
    fn a_replay_has_the_same_key_and_later_requests_sort_after_earlier_ones() {
        let key = |ts, sig| signature_key(&signed(ts, sig)).key;
        let first = key("1764445000", "v0=ff01");
        assert_eq!(first, key("1764445000", "v0=ff01"));
        assert_ne!(first, key("1764445000", "v0=ff02"));
        // Whatever the signatures, a later second's keys sort after an earlier second's.
        let later = key("1764445001", "v0=0000");
        assert!(later > first, "{later} <= {first}");
        // The key earlier versions stored, for the replay check across an upgrade.
        assert_eq!(
            signature_key(&signed("1764445000", "v0=ff01"))
                .former
                .as_deref(),
            Some("slack:sig:v0=ff01")
        );
    }
}
