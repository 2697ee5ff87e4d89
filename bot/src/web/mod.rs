//! The read-only web view under `/ui/`, served by `serve` when `ERLMCP_WEB_TOKEN` is set:
//! open incidents, one incident (timeline, chain check, requests, runs, postmortem, picture)
//! and the monthly report. Nothing here writes; every page reads through the `Store` the
//! read-only subcommands use.
//!
//! Access: `Authorization: Bearer <token>`, or the sign-in form, which sets a session cookie
//! (HttpOnly, SameSite=Strict) whose value is an HMAC of the token: valid on every replica, and
//! void as soon as the token changes. Anything else gets 401 and the form, no data.

mod pages;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use erlmcp_handlers::ids::IncidentId;
use erlmcp_handlers::store::Store;
use erlmcp_handlers::timeline::TimelineKey;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Entries an incident page lists; the chain check still reads them all.
pub const PAGE_ENTRIES: usize = 2000;
const COOKIE: &str = "erlmcp_session";

#[derive(Clone)]
struct Web {
    store: Arc<dyn Store>,
    key: Option<TimelineKey>,
    token_digest: [u8; 32],
    session: String,
    secure_cookie: bool,
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// The session cookie's value for `token`.
fn session_of(token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes())
        .unwrap_or_else(|_| Hmac::<Sha256>::new_from_slice(b"-").expect("HMAC takes any key"));
    mac.update(b"erlmcp-bot web session v1");
    hex::encode(mac.finalize().into_bytes())
}

/// The web view's routes; `None` (no routes, so 404) unless a token is configured.
pub fn router(
    store: Arc<dyn Store>,
    key: Option<TimelineKey>,
    token: Option<&str>,
    public_url: Option<&str>,
) -> Option<Router> {
    let token = token.map(str::trim).filter(|t| !t.is_empty())?;
    let web = Web {
        store,
        key,
        token_digest: digest(token),
        session: session_of(token),
        secure_cookie: public_url.is_some_and(|u| u.starts_with("https://")),
    };
    Some(crate::http::guarded(
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
            .route("/ui/incidents/{id}", axum::routing::get(incident))
            .route(
                "/ui/incidents/{id}/timeline.svg",
                axum::routing::get(picture),
            )
            .route("/ui/report/{month}", axum::routing::get(report))
            .with_state(Arc::new(web)),
    ))
}

/// Whether the request carries the token or a session made from it.
fn allowed(web: &Web, headers: &HeaderMap) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .is_some_and(|(_, t)| digest(t.trim()) == web.token_digest);
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .any(|(name, value)| name == COOKIE && digest(value) == digest(&web.session));
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

fn refused() -> Response {
    html(StatusCode::UNAUTHORIZED, pages::sign_in(None))
}

async fn sign_in_form() -> Response {
    html(StatusCode::OK, pages::sign_in(None))
}

async fn sign_in(State(web): State<Arc<Web>>, req: Request) -> Response {
    let body = match axum::body::to_bytes(req.into_body(), 8 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return html(
                StatusCode::PAYLOAD_TOO_LARGE,
                pages::sign_in(Some("too long")),
            );
        }
    };
    let token = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if digest(token.trim()) != web.token_digest {
        tracing::warn!("web view: sign-in with a wrong token");
        return html(
            StatusCode::UNAUTHORIZED,
            pages::sign_in(Some("That is not the web view's token.")),
        );
    }
    let secure = if web.secure_cookie { "; Secure" } else { "" };
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                format!(
                    "{COOKIE}={}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=43200{secure}",
                    web.session
                ),
            ),
            (header::LOCATION, "/ui/".to_string()),
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
        return refused();
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
        return refused();
    }
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
        return refused();
    }
    let id = IncidentId::new(id);
    match erlmcp_handlers::reads::incident_view(
        web.store.as_ref(),
        &id,
        web.key.as_ref(),
        0,
        chrono::Utc::now(),
    )
    .await
    {
        Ok(Some(view)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "image/svg+xml")],
            view.svg,
        )
            .into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, "no such incident").into_response(),
        Err(e) => failed(e),
    }
}

async fn report(
    State(web): State<Arc<Web>>,
    Path(month): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !allowed(&web, &headers) {
        return refused();
    }
    let Some((y, m)) = month
        .split_once('-')
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
    fn sessions_follow_the_token() {
        assert_eq!(session_of("a"), session_of("a"));
        assert_ne!(session_of("a"), session_of("b"));
        assert_eq!(session_of("a").len(), 64);
    }
}
