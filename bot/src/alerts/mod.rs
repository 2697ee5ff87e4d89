//! Alert intake: `POST /alerts/alertmanager`, Alertmanager's webhook (payload version 4),
//! authenticated with a bearer token (`ERLMCP_ALERTS_TOKEN`, Alertmanager's
//! `http_config.authorization`). The token is checked before the body is read; the alerts are
//! stored before the answer, so a 200 means they are on the timeline (on a database error the
//! answer is 503 and Alertmanager sends them again). Chat messages follow in the background.

pub mod config;

use crate::chat::Chats;
use crate::http::digest;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use erlmcp_handlers::alerts::Notification;
use erlmcp_handlers::engine::Engine;
use std::sync::Arc;

/// Alertmanager batches a group's alerts into one request: larger than a Slack payload.
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;

#[derive(Clone)]
struct Intake {
    engine: Engine,
    chats: Chats,
    /// SHA-256 of the expected token: compared digest to digest, so the comparison's time says
    /// nothing about the token.
    token_digest: Option<[u8; 32]>,
}

/// The route, served on the `serve` listener. Without a token configured every request is
/// refused, saying how to turn intake on.
pub fn router(engine: Engine, chats: Chats, token: Option<&str>) -> Router {
    let state = Intake {
        engine,
        chats,
        // A token from a file (a Kubernetes Secret) often ends in a newline.
        token_digest: token.map(str::trim).filter(|t| !t.is_empty()).map(digest),
    };
    crate::http::guarded(
        Router::new()
            .route("/alerts/alertmanager", axum::routing::post(receive))
            .with_state(Arc::new(state)),
    )
}

fn refuse(status: StatusCode, why: impl Into<String>) -> Response {
    let why = why.into();
    counted(status);
    tracing::warn!(status = status.as_u16(), %why, "alert webhook refused");
    (status, why).into_response()
}

/// Webhook deliveries by answer: a broken Alertmanager link (wrong token, refused payloads)
/// shows here.
fn counted(status: StatusCode) {
    let outcome = match status.as_u16() {
        200 => "ok",
        401 => "unauthorized",
        400 => "malformed",
        413 => "too_large",
        503 => "not_stored",
        _ => "other",
    };
    metrics::counter!(crate::metrics::ALERT_WEBHOOKS, "outcome" => outcome).increment(1);
}

async fn receive(State(intake): State<Arc<Intake>>, req: Request) -> Response {
    let Some(expected) = intake.token_digest else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "alert intake is off: set ERLMCP_ALERTS_TOKEN and send it as a bearer token",
        );
    };
    match crate::http::bearer_digest(req.headers()) {
        None => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "missing `Authorization: Bearer <token>` (Alertmanager: http_config.authorization.credentials)",
            );
        }
        Some(d) if d != expected => {
            return refuse(StatusCode::UNAUTHORIZED, "wrong bearer token");
        }
        Some(_) => {}
    }
    let body = match axum::body::to_bytes(req.into_body(), BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body could not be read within {BODY_LIMIT} bytes: {e}"),
            );
        }
    };
    let notification = match Notification::parse(&body) {
        Ok(n) => n,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.0),
    };
    // Taken and said in a task of its own: if this request's deadline cuts the answer, what
    // was stored is still announced (a resend then finds it recorded, as a repeat).
    let (engine, chats) = (intake.engine.clone(), intake.chats.clone());
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let summary = engine.receive_alerts(&notification).await;
        let outcomes = summary.outcomes.clone();
        let _ = tx.send(summary);
        chats.deliver_alerts(outcomes).await;
    });
    let Ok(summary) = rx.await else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the alerts could not be taken; send again",
        );
    };
    if let Some(e) = &summary.error {
        // Alertmanager resends a notification not answered 2xx; what was stored comes back
        // as repeats.
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the database failed part-way ({e}): {} alert(s) were recorded, the rest not; send again",
                summary.recorded
            ),
        );
    }
    let answer = serde_json::json!({
        "recorded": summary.recorded,
        "repeats": summary.repeats,
        "ignored": summary.ignored,
        "incidents": summary.outcomes.iter().map(|o| serde_json::json!({
            "id": o.incident.as_str(),
            "opened": o.opened,
        })).collect::<Vec<_>>(),
    });
    counted(StatusCode::OK);
    (StatusCode::OK, axum::Json(answer)).into_response()
}
