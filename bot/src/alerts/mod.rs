//! Alert intake: `POST /alerts/alertmanager`, Alertmanager's webhook (payload version 4),
//! authenticated with a bearer token (`ERLMCP_ALERTS_TOKEN`, Alertmanager's
//! `http_config.authorization`). The token is checked before the body is read; the alerts are
//! stored before the answer, so a 200 means they are on the timeline (on a database error the
//! answer is 503 and Alertmanager sends them again). Chat messages follow in the background.

pub mod config;

use crate::slack::Slack;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use erlmcp_handlers::alerts::Notification;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Alertmanager batches a group's alerts into one request: larger than a Slack payload.
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;

#[derive(Clone)]
struct Intake {
    slack: Slack,
    /// SHA-256 of the expected token: compared digest to digest, so the comparison's time says
    /// nothing about the token.
    token_digest: Option<[u8; 32]>,
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// The route, served on the `serve` listener. Without a token configured every request is
/// refused, saying how to turn intake on.
pub fn router(slack: Slack, token: Option<&str>) -> Router {
    let state = Intake {
        slack,
        token_digest: token.filter(|t| !t.is_empty()).map(digest),
    };
    crate::http::guarded(
        Router::new()
            .route("/alerts/alertmanager", axum::routing::post(receive))
            .with_state(Arc::new(state)),
    )
}

fn refuse(status: StatusCode, why: impl Into<String>) -> Response {
    let why = why.into();
    tracing::warn!(status = status.as_u16(), %why, "alert webhook refused");
    (status, why).into_response()
}

async fn receive(State(intake): State<Arc<Intake>>, req: Request) -> Response {
    let Some(expected) = intake.token_digest else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "alert intake is off: set ERLMCP_ALERTS_TOKEN and send it as a bearer token",
        );
    };
    let given = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| digest(t.trim()));
    match given {
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
    let summary = match intake.slack.engine.receive_alerts(&notification).await {
        Ok(s) => s,
        Err(e) => {
            // Not stored: Alertmanager retries a notification that was not answered 2xx.
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the alerts could not be stored ({e}); nothing was recorded, send again"),
            );
        }
    };
    let answer = serde_json::json!({
        "recorded": summary.recorded,
        "repeats": summary.repeats,
        "ignored": summary.ignored,
        "incidents": summary.outcomes.iter().map(|o| serde_json::json!({
            "id": o.incident.as_str(),
            "opened": o.opened,
        })).collect::<Vec<_>>(),
    });
    let slack = intake.slack.clone();
    tokio::spawn(async move { slack.deliver_alerts(summary.outcomes).await });
    (StatusCode::OK, axum::Json(answer)).into_response()
}
