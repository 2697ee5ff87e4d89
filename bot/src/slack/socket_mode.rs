//! Socket Mode, for teams whose bot cannot be reached from the internet: slack-morphism keeps the
//! WebSocket to Slack; each envelope is turned back into Slack's documented JSON and handed to the
//! same dispatchers the HTTP endpoints use, so behaviour is identical.

use super::Slack;
use super::inbound;
use super::server::{Taken, take};
use crate::intake::Intake;
use serde_json::Value;
use slack_morphism::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// Slash command fields as the HTTP form would carry them.
pub fn command_fields(event: &SlackCommandEvent) -> HashMap<String, String> {
    let v = serde_json::to_value(event).unwrap_or(Value::Null);
    v.as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// What the callbacks need: the adapter, and the writer that stores receipts.
#[derive(Clone)]
struct Ingest {
    slack: Slack,
    intake: Intake,
}

fn adapter(states: &SlackClientEventsUserStateStorage) -> Option<Ingest> {
    states.get_user_state::<Ingest>().cloned()
}

/// The receipt key of an envelope's content: its event id, or (commands and buttons, which have
/// none) a digest of the payload with its trigger id, unique per invocation.
fn envelope_key(kind: &str, v: &Value) -> String {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(v.to_string().as_bytes()));
    format!("slack:socket:{kind}:{digest}")
}

/// An envelope arrives on the socket this app opened with its own app-level token, so it is for
/// this app even where slack-morphism's types drop `api_app_id`; the workspace is still checked.
fn on_our_socket(slack: &Slack, mut parsed: inbound::Parsed) -> inbound::Parsed {
    parsed
        .origin
        .app
        .get_or_insert_with(|| slack.workspace.app_id.clone());
    parsed
}

fn malformed(why: &str) -> Box<dyn std::error::Error + Send + Sync> {
    Box::<dyn std::error::Error + Send + Sync>::from(why.to_string())
}

async fn on_command(
    event: SlackCommandEvent,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let mut answer = SlackMessageContent::new();
    if let Some(ingest) = adapter(&*states.read().await) {
        let fields = command_fields(&event);
        let key = envelope_key("command", &serde_json::to_value(&fields)?);
        let parsed = inbound::parse_command(&fields).map_err(malformed)?;
        let parsed = on_our_socket(&ingest.slack, parsed);
        let said = match take(&ingest.slack, &ingest.intake, parsed, key).await {
            Taken::Stored | Taken::Applied(_) | Taken::Ignored | Taken::Duplicate => None,
            Taken::NotOurs(why) => Some(format!("erlmcp-bot did nothing: {why}.")),
            Taken::Failed(why) | Taken::Unknown(why) => Some(format!(
                "⚠ erlmcp-bot could not record your command ({why}); check with `/erlmcp status` before you repeat it."
            )),
        };
        if let Some(text) = said {
            answer = answer.with_text(text);
        }
    }
    Ok(SlackCommandEventResponse::new(answer))
}

async fn on_interaction(
    event: SlackInteractionEvent,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    if let Some(ingest) = adapter(&*states.read().await) {
        let v = serde_json::to_value(&event)?;
        let parsed = inbound::parse_interaction(&v).map_err(malformed)?;
        let parsed = on_our_socket(&ingest.slack, parsed);
        let _ = take(
            &ingest.slack,
            &ingest.intake,
            parsed,
            envelope_key("interaction", &v),
        )
        .await;
    }
    Ok(())
}

async fn on_push(
    event: SlackPushEventCallback,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    if let Some(ingest) = adapter(&*states.read().await) {
        let mut v = serde_json::to_value(&event)?;
        v["type"] = Value::String("event_callback".into());
        let parsed = inbound::parse_event(&v).map_err(malformed)?;
        let key = format!(
            "slack:event:{}",
            parsed.event_id.clone().unwrap_or_default()
        );
        let parsed = on_our_socket(&ingest.slack, parsed);
        if let Taken::Failed(why) | Taken::Unknown(why) =
            take(&ingest.slack, &ingest.intake, parsed, key).await
        {
            // Not acknowledged: Slack sends it again (the event id counts it once).
            return Err(malformed(&format!("not recorded: {why}")));
        }
    }
    Ok(())
}

/// Connects with the app-level token (`xapp-…`) and serves until interrupted.
pub async fn run(
    slack: Slack,
    intake: Intake,
    app_token: &str,
    api_url: &str,
) -> Result<(), crate::error::Error> {
    let tls = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| crate::error::Error::Io(format!("Socket Mode: cannot set up TLS: {e}")))?;
    // slack-morphism's own connector speaks HTTPS only; a plain-HTTP base (a gateway, the tests'
    // stand-in) is allowed when configured, never by default.
    let https = if api_url.starts_with("http://") {
        tls.https_or_http().enable_http1().build()
    } else {
        tls.https_only().enable_http1().build()
    };
    let connector = SlackClientHyperConnector::with_connector(https).with_slack_api_url(api_url);
    let client = Arc::new(SlackClient::new(connector));
    let environment = Arc::new(
        SlackClientEventsListenerEnvironment::new(client).with_user_state(Ingest { slack, intake }),
    );
    let callbacks = SlackSocketModeListenerCallbacks::new()
        .with_command_events(on_command)
        .with_interaction_events(on_interaction)
        .with_push_events(on_push);
    let listener = SlackClientSocketModeListener::new(
        &SlackClientSocketModeConfig::new(),
        environment,
        callbacks,
    );
    listener
        .listen_for(&SlackApiToken::new(app_token.to_string().into()))
        .await
        .map_err(|e| {
            crate::error::Error::Config(format!("Socket Mode: Slack refused the app token: {e}"))
        })?;
    listener.serve().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_mode_command_carries_the_fields_the_http_form_does() {
        // The `payload` of a Socket Mode `slash_commands` envelope, as Slack documents it.
        let payload = serde_json::json!({
            "token": "x", "team_id": "T1", "team_domain": "acme", "channel_id": "C123", "channel_name": "inc",
            "user_id": "U_BOB", "user_name": "bob", "command": "/failover", "text": "us-west-2",
            "api_app_id": "A1", "response_url": "https://hooks.slack.com/commands/T1/1/abc", "trigger_id": "1.2.3"
        });
        let event: SlackCommandEvent = serde_json::from_value(payload).unwrap();
        let f = command_fields(&event);
        assert_eq!(f["command"], "/failover");
        assert_eq!(f["text"], "us-west-2");
        assert_eq!(f["user_id"], "U_BOB");
        assert_eq!(f["channel_id"], "C123");
        assert_eq!(
            f["response_url"],
            "https://hooks.slack.com/commands/T1/1/abc"
        );
    }
}
