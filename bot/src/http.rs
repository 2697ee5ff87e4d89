//! Serving HTTP with the limits a public endpoint needs. Anyone on the internet can reach the
//! Slack endpoints before a signature is checked, so a slow or huge request must not hold memory
//! or connections: headers must arrive within `READ_TIMEOUT`, a request (its body included) is
//! answered within it or cut, bodies are read only up to `BODY_LIMIT`, at most
//! `MAX_UNVERIFIED` requests are read at once (more get a 503 at once), and connections are
//! bounded.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::IntoResponse;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Headers, and a whole request with its body, must arrive within this.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Slack's payloads are a few kilobytes; a large interaction stays well under this.
pub const BODY_LIMIT: usize = 256 * 1024;
/// Requests being read and checked at once; their bodies are what costs memory.
pub const MAX_UNVERIFIED: usize = 256;
/// Open connections at once.
pub const MAX_CONNECTIONS: usize = 4096;

/// A request body read chunk by chunk into memory that grows with what actually arrives, up
/// to `BODY_LIMIT` (a `Content-Length` above it is refused before anything is read, and a body
/// that keeps coming is cut at the limit).
pub struct SmallBody(pub Vec<u8>);

impl<S: Send + Sync> axum::extract::FromRequest<S> for SmallBody {
    type Rejection = axum::response::Response;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        use futures_util::StreamExt;
        let too_large = || {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {BODY_LIMIT} bytes"),
            )
                .into_response()
        };
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > BODY_LIMIT) {
            return Err(too_large());
        }
        let mut body = req.into_body().into_data_stream();
        let mut buf = Vec::with_capacity(declared.unwrap_or(4096).min(16 * 1024));
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("reading the body failed: {e}"),
                )
                    .into_response()
            })?;
            if buf.len() + chunk.len() > BODY_LIMIT {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(SmallBody(buf))
    }
}

/// Wraps the Slack routes: a body limit applied while reading, a deadline, and a bound on how
/// many are in progress.
pub fn guarded(routes: Router) -> Router {
    guarded_within(routes, READ_TIMEOUT, BODY_LIMIT)
}

/// `guarded`, with a deadline and body limit of the route's own: a platform that sends its
/// whole body at once and gives up after a few seconds (Discord) lets a slow sender hold a
/// place for no longer than that.
pub fn guarded_within(routes: Router, deadline: Duration, body_limit: usize) -> Router {
    let permits = Arc::new(Semaphore::new(MAX_UNVERIFIED));
    routes
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let permits = permits.clone();
                async move {
                    let Ok(_permit) = permits.try_acquire_owned() else {
                        return (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "too many requests in progress; try again",
                        )
                            .into_response();
                    };
                    match tokio::time::timeout(deadline, next.run(req)).await {
                        Ok(r) => r,
                        Err(_) => (
                            StatusCode::REQUEST_TIMEOUT,
                            "the request did not arrive in time",
                        )
                            .into_response(),
                    }
                }
            },
        ))
        .layer(DefaultBodyLimit::max(body_limit))
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(READ_TIMEOUT)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    // Open requests get a moment to finish; new ones are no longer accepted.
    let _ = tokio::time::timeout(READ_TIMEOUT, graceful.shutdown()).await;
    Ok(())
}

/// SHA-256 of a secret: tokens are compared digest to digest, so how long a comparison takes
/// says nothing about the token.
pub fn digest(s: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes()).into()
}

/// The digest of the `Authorization: Bearer <token>` a request carries (the scheme in any
/// case, RFC 7235), if it carries one.
pub fn bearer_digest(headers: &axum::http::HeaderMap) -> Option<[u8; 32]> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| digest(t.trim()))
}
