//! The read-only web view under `/ui/`, served by `serve` when `ERLMCP_WEB_TOKEN` is set:
//! open incidents, one incident (timeline, chain check, requests, runs, postmortem, picture)
//! and the monthly report. Nothing here writes; every page reads through the `Store` the
//! read-only subcommands use.
//!
//! Access: `Authorization: Bearer <token>`, or the sign-in form, which sets a session cookie
//! (HttpOnly, SameSite=Strict) whose value is an HMAC of the token: valid on every replica, and
//! void as soon as the token changes. Anything else gets 401 and the form, no data.

mod pages;

use crate::http::digest;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use erlmcp_handlers::ids::IncidentId;
use erlmcp_handlers::store::Store;
use erlmcp_handlers::timeline::TimelineKey;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;

/// Entries an incident page lists; the chain check still reads them all.
pub const PAGE_ENTRIES: usize = 2000;
const COOKIE: &str = "erlmcp_session";

/// Incident pages rendered at once (each reads the incident's whole chain to verify it).
const HEAVY_AT_ONCE: usize = 2;
/// How long a session lasts, checked by the server (the cookie carries when it was issued).
const SESSION_HOURS: i64 = 12;
/// The shortest token accepted: a guessable one would open every incident record.
pub const MIN_TOKEN_CHARS: usize = 16;

struct Web {
    store: Arc<dyn Store>,
    key: Option<TimelineKey>,
    token: String,
    token_digest: [u8; 32],
    secure_cookie: bool,
    heavy: tokio::sync::Semaphore,
    /// Failed sign-ins wait their turn here, half a second each: guessing runs at two a second.
    failures: tokio::sync::Mutex<()>,
}

/// The session cookie's value for `token`, issued at `issued` (Unix seconds):
/// `issued.hex(HMAC(token, "erlmcp-bot web session v2:" issued))`.
fn session_of(token: &str, issued: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes())
        .unwrap_or_else(|_| Hmac::<Sha256>::new_from_slice(b"-").expect("HMAC takes any key"));
    mac.update(format!("erlmcp-bot web session v2:{issued}").as_bytes());
    format!("{issued}.{}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether a cookie value is a session made from `token` that has not expired.
fn session_valid(token: &str, value: &str, now: i64) -> bool {
    let Some((issued, _)) = value.split_once('.') else {
        return false;
    };
    let Ok(issued) = issued.parse::<i64>() else {
        return false;
    };
    let fresh = issued <= now + 60 && now - issued < SESSION_HOURS * 3600;
    fresh && digest(value) == digest(&session_of(token, issued))
}

/// The web view's routes; `None` (no routes, so 404) unless a token is configured.
/// `Err` when the token is too short to be safe.
pub fn router(
    store: Arc<dyn Store>,
    key: Option<TimelineKey>,
    token: Option<&str>,
    public_url: Option<&str>,
) -> Result<Option<Router>, String> {
    let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if token.chars().count() < MIN_TOKEN_CHARS {
        return Err(format!(
            "ERLMCP_WEB_TOKEN is {} characters; the web view needs at least {MIN_TOKEN_CHARS} (`openssl rand -hex 24`)",
            token.chars().count()
        ));
    }
    let web = Web {
        store,
        key,
        token: token.to_string(),
        token_digest: digest(token),
        secure_cookie: public_url.is_some_and(|u| u.starts_with("https://")),
        heavy: tokio::sync::Semaphore::new(HEAVY_AT_ONCE),
        failures: tokio::sync::Mutex::new(()),
    };
    Ok(Some(crate::http::guarded(
        Router::new()
            .route(
                "/ui",
                axum::routing::get(|| async { axum::response::Redirect::to("/ui/") }),
            )
            .route("/ui/", axum::routing::get(list))
            .route(
                "/ui/sign-in",
                axum::routing::get(sign_in_form).post(sign_in),
            )
            .route("/ui/sign-out", axum::routing::post(sign_out))
            .route("/ui/incidents/{id}", axum::routing::get(incident))
            .route(
                "/ui/incidents/{id}/timeline.svg",
                axum::routing::get(picture),
            )
            .route("/ui/report/{month}", axum::routing::get(report))
            .with_state(Arc::new(web)),
    )))
}

/// Whether the request carries the token or a session made from it.
fn allowed(web: &Web, headers: &HeaderMap) -> bool {
    let bearer = crate::http::bearer_digest(headers) == Some(web.token_digest);
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .any(|(name, value)| {
            name == COOKIE && session_valid(&web.token, value, chrono::Utc::now().timestamp())
        });
    bearer || cookie
}

fn html(status: StatusCode, body: maud::Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Nothing on these pages runs script or may be framed.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.into_string(),
    )
        .into_response()
}

/// 401 with the sign-in form, which brings the person back to `next` afterwards.
fn refused(next: &str) -> Response {
    let mut r = html(StatusCode::UNAUTHORIZED, pages::sign_in(None, next));
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer realm=\"erlmcp-bot web view\""),
    );
    r
}

/// Where to go after signing in: a path of the web view only (no other site, no `//host`).
fn safe_next(next: &str) -> &str {
    if next.starts_with("/ui/") && !next.starts_with("/ui//") && !next.contains(['\\', '\r', '\n'])
    {
        next
    } else {
        "/ui/"
    }
}

async fn sign_in_form(
    axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>,
) -> Response {
    let next = q
        .iter()
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.as_str())
        .unwrap_or("/ui/");
    html(StatusCode::OK, pages::sign_in(None, safe_next(next)))
}

async fn sign_out() -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Lax; Max-Age=0"),
            ),
            (header::LOCATION, "/ui/sign-in".to_string()),
        ],
    )
        .into_response()
}

async fn sign_in(State(web): State<Arc<Web>>, req: Request) -> Response {
    let body = match axum::body::to_bytes(req.into_body(), 8 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return html(
                StatusCode::PAYLOAD_TOO_LARGE,
                pages::sign_in(Some("too long"), "/ui/"),
            );
        }
    };
    let field = |name: &str| {
        url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let next = field("next");
    let next = safe_next(&next).to_string();
    if digest(field("token").trim()) != web.token_digest {
        // One failure at a time, each taking half a second.
        let _turn = web.failures.lock().await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        tracing::warn!("web view: sign-in with a wrong token");
        return html(
            StatusCode::UNAUTHORIZED,
            pages::sign_in(Some("That is not the web view's token."), &next),
        );
    }
    let secure = if web.secure_cookie { "; Secure" } else { "" };
    // Lax, not Strict: a link from chat (another site) must arrive signed in; every page is a
    // read-only GET, and the one POST that matters (sign-in) needs the token itself.
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                format!(
                    "{COOKIE}={}; Path=/ui; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
                    session_of(&web.token, chrono::Utc::now().timestamp()),
                    SESSION_HOURS * 3600
                ),
            ),
            (header::LOCATION, next),
        ],
    )
        .into_response()
}

fn failed(e: impl std::fmt::Display) -> Response {
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::problem(&format!("The database did not answer: {e}")),
    )
}

async fn list(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    if !allowed(&web, &headers) {
        return refused("/ui/");
    }
    let all = match web.store.all_incidents().await {
        Ok(a) => a,
        Err(e) => return failed(e),
    };
    let pending = match web
        .store
        .requests_in_state(erlmcp_handlers::approval::RequestState::Pending)
        .await
    {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    html(
        StatusCode::OK,
        pages::list(&all, &pending, chrono::Utc::now()),
    )
}

async fn incident(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !allowed(&web, &headers) {
        return refused(&format!("/ui/incidents/{}", url_path(&id)));
    }
    let Ok(_turn) = web.heavy.try_acquire() else {
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::problem("Other incident pages are being read right now; reload in a moment."),
        );
    };
    let id = IncidentId::new(id);
    match erlmcp_handlers::reads::incident_view(
        web.store.as_ref(),
        &id,
        web.key.as_ref(),
        PAGE_ENTRIES,
        chrono::Utc::now(),
    )
    .await
    {
        Ok(Some(view)) => html(StatusCode::OK, pages::incident(&view)),
        Ok(None) => html(
            StatusCode::NOT_FOUND,
            pages::problem(&format!("There is no incident {id}.")),
        ),
        Err(e) => failed(e),
    }
}

async fn picture(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !allowed(&web, &headers) {
        return refused("/ui/");
    }
    let id = IncidentId::new(id);
    match erlmcp_handlers::reads::picture(web.store.as_ref(), &id, chrono::Utc::now()).await {
        Ok(Some(svg)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "no-store"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'",
                ),
            ],
            svg,
        )
            .into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, "no such incident").into_response(),
        Err(e) => failed(e),
    }
}

/// An incident id as it may appear in a path (ids are `INC-YYYYMMDD-N`; anything else is cut).
fn url_path(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect()
}

async fn report(
    State(web): State<Arc<Web>>,
    Path(month): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !allowed(&web, &headers) {
        return refused("/ui/");
    }
    let well_formed = month.len() == 7
        && month.as_bytes()[4] == b'-'
        && month
            .bytes()
            .enumerate()
            .all(|(i, b)| i == 4 || b.is_ascii_digit());
    let Some((y, m)) = month
        .split_once('-')
        .filter(|_| well_formed)
        .and_then(|(y, m)| Some((y.parse::<i32>().ok()?, m.parse::<u32>().ok()?)))
        .filter(|(_, m)| (1..=12).contains(m))
    else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::problem(&format!(
                "`{}` is not a month; use YYYY-MM, e.g. /ui/report/2026-11",
                month.chars().take(20).collect::<String>()
            )),
        );
    };
    match erlmcp_handlers::reads::sla_report(web.store.as_ref(), y, m, chrono::Utc::now()).await {
        Ok(md) => html(StatusCode::OK, pages::report(&month, &md)),
        Err(e) => failed(e),
    }
}

/// The page of an incident, for links in chat.
pub fn incident_url(public_url: &str, id: &IncidentId) -> String {
    format!("{}/ui/incidents/{id}", public_url.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_follow_the_token_and_expire() {
        let now = 1_800_000_000;
        let s = session_of("token-0123456789ab", now);
        assert!(session_valid("token-0123456789ab", &s, now + 60));
        assert!(
            !session_valid("another-token-0123", &s, now + 60),
            "a new token voids it"
        );
        assert!(
            !session_valid("token-0123456789ab", &s, now + 13 * 3600),
            "12 hours at most"
        );
        let forged = format!("{}.{}", now + 3600, s.split_once('.').unwrap().1);
        assert!(
            !session_valid("token-0123456789ab", &forged, now + 3600),
            "the time is signed"
        );
        assert!(!session_valid("token-0123456789ab", "00ff", now));
    }

    #[test]
    fn sign_in_returns_only_to_the_web_view() {
        assert_eq!(safe_next("/ui/incidents/INC-1"), "/ui/incidents/INC-1");
        for bad in [
            "//evil.example/ui/",
            "https://evil.example/",
            "/ui//evil",
            "/other",
            "/ui/\r\nx",
        ] {
            assert_eq!(safe_next(bad), "/ui/", "{bad}");
        }
    }
}
