//! `erlmcp-bot serve`: the Slack adapter over HTTP, wired to the engine.

use crate::app;
use crate::config::Config;
use crate::error::Error;
use crate::slack::api::WebApi;
use crate::slack::poster::{Poster, SlackOutbox};
use crate::slack::server::{AppState, router};
use crate::slack::{Slack, SlackConfig};
use erlmcp_handlers::clock::SystemClock;
use erlmcp_handlers::reply::Outbox;
use std::sync::{Arc, OnceLock};

/// Everything `serve` runs, built but not yet listening (tests serve it on their own port).
pub async fn build(
    config: &Config,
    slack: &SlackConfig,
) -> Result<(axum::Router, app::App), Error> {
    build_parts(config, slack)
        .await
        .map(|(router, app, _)| (router, app))
}

async fn build_parts(
    config: &Config,
    slack: &SlackConfig,
) -> Result<(axum::Router, app::App, Slack), Error> {
    let api = WebApi::new(&slack.api_url, &slack.bot_token);
    // Fails at start, clearly, on a wrong token or an unreachable API.
    let me = api
        .call("auth.test", &[])
        .await
        .map_err(|e| Error::Config(format!("cannot use the Slack bot token: {e}")))?;
    let bot_user = me["user_id"].as_str().unwrap_or_default().to_string();
    let poster_cell: OnceLock<Poster> = OnceLock::new();
    let make_outbox = |chat| -> Arc<dyn Outbox> {
        let poster = poster_cell
            .get_or_init(|| Poster::new(api.clone(), chat))
            .clone();
        Arc::new(SlackOutbox(poster))
    };
    let app = app::build(config, &make_outbox, Arc::new(SystemClock)).await?;
    let poster = poster_cell
        .get()
        .cloned()
        .ok_or_else(|| Error::Config("the outbox was not built".into()))?;
    let adapter = Slack::new(app.engine.clone(), poster, bot_user);
    let state = AppState::new(adapter.clone(), &slack.signing_secret, app.ping.clone());
    Ok((router(state), app, adapter))
}

pub async fn run(
    config: &Config,
    listen: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Error> {
    let slack = SlackConfig::from_env(env)?;
    let (router, app, state_adapter) = build_parts(config, &slack).await?;
    match app.engine.resume_unfinished().await {
        Ok(r) if !r.is_empty() => tracing::info!(runs = r.len(), "resumed unfinished runs"),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "could not resume unfinished runs"),
    }
    // The severity clocks (reminders and missed targets) and approval expiry, in the background.
    let ticking = app.engine.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(15));
        loop {
            every.tick().await;
            // Requests left alone expire, and say so, even when nobody types anything.
            ticking.expire_due().await;
            if let Err(e) = ticking.tick().await {
                tracing::warn!(error = %e, "severity clock check failed");
            }
        }
    });
    let addr = listen.unwrap_or(slack.listen.clone());
    if let Some(token) = &slack.app_token {
        // Socket Mode: no public endpoint; the probes are still served.
        let adapter = state_adapter.clone();
        let api_url = slack.api_url.clone();
        let token = token.clone();
        let probes = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| Error::Io(format!("cannot listen on {addr}: {e}")))?;
        tokio::spawn(async move {
            let _ = axum::serve(probes, router).await;
        });
        eprintln!(
            "erlmcp-bot connected to Slack in Socket Mode; probes on http://{addr} ({})",
            app.store_description
        );
        return crate::slack::socket_mode::run(adapter, &token, &api_url).await;
    }
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| Error::Io(format!("cannot listen on {addr}: {e}")))?;
    eprintln!(
        "erlmcp-bot serving Slack on http://{addr} ({}, executor {})",
        app.store_description,
        config.mode.as_str()
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Error::Io(format!("server stopped: {e}")))
}
