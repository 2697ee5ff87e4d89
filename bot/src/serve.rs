//! `erlmcp-bot serve`: the Slack adapter over HTTP (or Socket Mode), wired to the engine, with the
//! background duty an executing process owes (`Engine::supervise`): taking over runs whose owner
//! died, the severity clocks and request expiry.

use crate::app;
use crate::config::Config;
use crate::error::Error;
use crate::intake::Intake;
use crate::slack::api::WebApi;
use crate::slack::poster::{Poster, SlackOutbox};
use crate::slack::server::{AppState, router};
use crate::slack::workspace::Workspace;
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
        .map(|(router, app, _, _)| (router, app))
}

async fn build_parts(
    config: &Config,
    slack: &SlackConfig,
) -> Result<(axum::Router, app::App, Slack, Intake), Error> {
    let api = WebApi::new(&slack.api_url, &slack.bot_token);
    // Fails at start, clearly, on a wrong token or an unreachable API.
    let workspace = Workspace::discover(
        &api,
        slack.team_id.as_deref(),
        slack.app_id.as_deref(),
        slack.allowed_teams.clone(),
    )
    .await?;
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
    // Links to the web view only when there is one.
    let links = slack.public_url.clone().filter(|_| {
        slack
            .web_token
            .as_deref()
            .is_some_and(|t| !t.trim().is_empty())
    });
    let adapter = Slack::new(app.engine.clone(), poster, workspace).with_public_url(links);
    // Receipts: stored by one writer before each acknowledgement, processed from there; the
    // sweep picks up what a process that died left behind.
    let (stored_tx, stored_rx) = tokio::sync::mpsc::unbounded_channel();
    let intake = Intake::start(app.engine.store().clone(), stored_tx.clone());
    tokio::spawn(crate::slack::process::run(adapter.clone(), stored_rx));
    tokio::spawn(crate::slack::process::sweep(adapter.clone(), stored_tx));
    tokio::spawn(crate::memory::give_back_after_bursts(intake.activity()));
    if slack
        .alerts_token
        .as_deref()
        .is_some_and(|t| !t.trim().is_empty())
    {
        // What a stopped process recorded from alerts but never said, said by a live one.
        let announcer = adapter.clone();
        let announce = config.settings.alerts.channel.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(2));
            loop {
                every.tick().await;
                announcer
                    .announce_missed_alert_incidents(announce.as_deref())
                    .await;
            }
        });
    }
    let state = AppState::new(
        adapter.clone(),
        intake.clone(),
        &slack.signing_secret,
        app.ping.clone(),
    );
    let mut routes = router(state).merge(crate::alerts::router(
        adapter.clone(),
        slack.alerts_token.as_deref(),
    ));
    if let Some(web) = crate::web::router(
        app.engine.store().clone(),
        config.timeline_key.clone(),
        slack.web_token.as_deref(),
        slack.public_url.as_deref(),
    )
    .map_err(Error::Config)?
    {
        routes = routes.merge(web);
    }
    // Without a metrics address of its own, /metrics is served beside the probes.
    if slack.metrics_listen.is_none() {
        routes = routes.merge(crate::metrics::router(app.engine.store().clone()));
    }
    Ok((routes, app, adapter, intake))
}

/// Runs until SIGINT or SIGTERM (HTTP), or until the Socket Mode connection ends.
pub async fn run(
    config: &Config,
    listen: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Error> {
    let slack = SlackConfig::from_env(env)?;
    let (router, app, adapter, intake) = build_parts(config, &slack).await?;
    let addr = listen.unwrap_or(slack.listen.clone());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| Error::Io(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener.local_addr().map(|a| a.to_string()).unwrap_or(addr);
    if let Some(metrics_addr) = &slack.metrics_listen {
        let metrics_listener = tokio::net::TcpListener::bind(metrics_addr)
            .await
            .map_err(|e| {
                Error::Io(format!(
                    "cannot listen on {metrics_addr} (ERLMCP_METRICS_LISTEN): {e}"
                ))
            })?;
        let metrics_bound = metrics_listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| metrics_addr.clone());
        let routes = crate::metrics::router(app.engine.store().clone());
        tokio::spawn(async move {
            if let Err(e) =
                crate::http::serve(metrics_listener, routes, std::future::pending::<()>()).await
            {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
        crate::logging::announce(&format!(
            "erlmcp-bot metrics on http://{metrics_bound}/metrics"
        ));
    }
    // Listening first: the probes answer while runs of dead owners continue in the background.
    app::start_supervisor(&app.engine);
    if let Some(token) = &slack.app_token {
        // Socket Mode: no public endpoint; the probes are still served.
        tokio::spawn(async move {
            if let Err(e) = crate::http::serve(listener, router, std::future::pending::<()>()).await
            {
                tracing::error!(error = %e, "the probe listener stopped");
            }
        });
        crate::logging::announce(&format!(
            "erlmcp-bot serving Slack in Socket Mode; probes on http://{bound} ({}, executor {})",
            app.store_description,
            config.mode.as_str()
        ));
        return crate::slack::socket_mode::run(adapter, intake, token, &slack.api_url).await;
    }
    crate::logging::announce(&format!(
        "erlmcp-bot serving Slack on http://{bound} ({}, executor {}, alert intake {}, web view {})",
        app.store_description,
        config.mode.as_str(),
        if slack
            .alerts_token
            .as_deref()
            .is_some_and(|t| !t.trim().is_empty())
        {
            "on at /alerts/alertmanager"
        } else {
            "off: set ERLMCP_ALERTS_TOKEN"
        },
        if slack
            .web_token
            .as_deref()
            .is_some_and(|t| !t.trim().is_empty())
        {
            "on at /ui/"
        } else {
            "off: set ERLMCP_WEB_TOKEN"
        }
    ));
    if slack.alerts_token.is_some() && config.settings.alerts.channel.is_none() {
        tracing::warn!(
            "alert intake is on but [alerts] channel is not set: an incident an alert opens is announced only in its own new channel, which nobody has joined"
        );
    }
    let engine = app.engine.clone();
    let stopping = engine.clone();
    let result = crate::http::serve(listener, router, async move {
        shutdown_signal().await;
        stopping.begin_stop();
        crate::logging::announce(
            "erlmcp-bot: stopping; runs in progress finish their step and are handed over",
        );
    })
    .await
    .map_err(|e| Error::Io(format!("server stopped: {e}")));
    // Kubernetes waits 30 s after SIGTERM before it kills: hand the runs over well inside that.
    engine.hand_over(HAND_OVER_GRACE).await;
    result
}

/// How long a stopping process waits for its runs' steps in progress to finish.
const HAND_OVER_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// Ctrl-C, or the SIGTERM Kubernetes sends before it stops a pod.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
