//! A fast stand-in for the Slack Web API: every method answers `ok` at once (the bot's start-up
//! calls and its user look-ups are all it sees during the load; notes need no Web API call).

use axum::Router;
use axum::extract::Path;
use axum::response::IntoResponse;
use serde_json::json;

async fn api(Path(method): Path<String>) -> impl IntoResponse {
    let answer = match method.as_str() {
        "auth.test" => json!({ "ok": true, "user_id": "UBOT", "team_id": "T1", "bot_id": "B1" }),
        "bots.info" => json!({ "ok": true, "bot": { "app_id": "A1" } }),
        "users.info" => {
            json!({ "ok": true, "user": { "id": "U_BENCH", "team_id": "T1", "name": "bench", "is_bot": false, "profile": { "display_name": "bench" } } })
        }
        "conversations.create" => json!({ "ok": true, "channel": { "id": "C_INC1" } }),
        "chat.postMessage" => json!({ "ok": true, "ts": "1700000000.000100" }),
        _ => json!({ "ok": true }),
    };
    axum::Json(answer)
}

/// Serves on a free port; returns its `/api` base URL.
pub async fn start() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the stand-in");
    let url = format!("http://{}/api", listener.local_addr().expect("address"));
    let router = Router::new()
        .route("/api/{method}", axum::routing::post(api))
        .fallback(|| async { "ok" });
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    url
}
