//! `erlmcp-bot serve`: the chat platforms the environment names (Slack over HTTP or Socket Mode,
//! Discord, or both), wired to one engine, with the probes, alert intake, the web view and
//! metrics, and the background duty an executing process owes (`Engine::supervise`): taking
//! over runs whose owner died, the severity clocks and request expiry.

use crate::app;
use crate::chat::{ChatOutbox, Chats};
use crate::config::Config;
use crate::error::Error;
use crate::intake::Intake;
use crate::slack::api::WebApi;
use crate::slack::server::AppState;
use crate::slack::workspace::Workspace;
use crate::slack::{Slack, SlackConfig};
use crate::store::futures_ping::PingFuture;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use erlmcp_handlers::clock::SystemClock;
use erlmcp_handlers::reply::Outbox;
use std::sync::{Arc, OnceLock};

/// What `serve` runs, from the environment (secrets never come from the file).
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub slack: Option<SlackConfig>,
    pub discord: Option<crate::discord::DiscordConfig>,
    /// `ERLMCP_LISTEN`: the public listener (chat endpoints, probes, alerts, web view).
    pub listen: String,
    /// `ERLMCP_METRICS_LISTEN`: serve `/metrics` on this address only, not on the public
    /// listener (which the chat platforms, and so the internet, reach).
    pub metrics_listen: Option<String>,
    /// `ERLMCP_ALERTS_TOKEN`: the bearer token Alertmanager's webhook must send; unset, alert
    /// intake refuses everything.
    pub alerts_token: Option<String>,
    /// `ERLMCP_WEB_TOKEN`: turns the read-only web view (`/ui/`) on; its bearer token.
    pub web_token: Option<String>,
    /// `ERLMCP_PUBLIC_URL`: where people reach `serve` (links in chat to the web view).
    pub public_url: Option<String>,
}

impl ServeConfig {
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let slack_wanted = SlackConfig::wanted(env);
        let discord_wanted = crate::discord::DiscordConfig::wanted(env);
        if !slack_wanted && !discord_wanted {
            return Err(Error::Config(
                "`serve` needs a chat platform: Slack (SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET, or SLACK_APP_TOKEN for Socket Mode) or Discord (DISCORD_TOKEN, DISCORD_APPLICATION_ID, DISCORD_PUBLIC_KEY and DISCORD_GUILD_ID), or both. `erlmcp-bot console` needs none".into(),
            ));
        }
        Ok(Self {
            slack: if slack_wanted {
                Some(SlackConfig::from_env(env)?)
            } else {
                None
            },
            discord: if discord_wanted {
                Some(crate::discord::DiscordConfig::from_env(env)?)
            } else {
                None
            },
            listen: env("ERLMCP_LISTEN").unwrap_or_else(|| "0.0.0.0:3000".to_string()),
            metrics_listen: env("ERLMCP_METRICS_LISTEN"),
            alerts_token: env("ERLMCP_ALERTS_TOKEN"),
            web_token: env("ERLMCP_WEB_TOKEN"),
            public_url: env("ERLMCP_PUBLIC_URL"),
        })
    }

    fn alerts_on(&self) -> bool {
        self.alerts_token
            .as_deref()
            .is_some_and(|t| !t.trim().is_empty())
    }

    fn web_on(&self) -> bool {
        self.web_token
            .as_deref()
            .is_some_and(|t| !t.trim().is_empty())
    }
}

/// Everything `serve` runs, built but not yet listening (tests serve it on their own port).
pub async fn build(config: &Config, serve: &ServeConfig) -> Result<(Router, app::App), Error> {
    build_parts(config, serve)
        .await
        .map(|parts| (parts.router, parts.app))
}

struct Parts {
    router: Router,
    app: app::App,
    slack: Option<Slack>,
    discord: Option<crate::discord::Discord>,
    intake: Intake,
}

async fn build_parts(config: &Config, serve: &ServeConfig) -> Result<Parts, Error> {
    // Fails at start, clearly, on a wrong token or an unreachable API.
    let slack_side = match &serve.slack {
        Some(s) => {
            let api = WebApi::new(&s.api_url, &s.bot_token);
            let workspace = Workspace::discover(
                &api,
                s.team_id.as_deref(),
                s.app_id.as_deref(),
                s.allowed_teams.clone(),
            )
            .await?;
            Some((api, workspace))
        }
        None => None,
    };
    let discord_side = match &serve.discord {
        Some(d) => Some(crate::discord::Connection::open(d).await?),
        None => None,
    };
    let chats_cell: Arc<OnceLock<Chats>> = Arc::default();
    let store_cell: OnceLock<Arc<dyn crate::store::chat::ChatStore>> = OnceLock::new();
    let make_outbox = |chat| -> Arc<dyn Outbox> {
        let _ = store_cell.set(chat);
        Arc::new(ChatOutbox(chats_cell.clone()))
    };
    let app = app::build(config, &make_outbox, Arc::new(SystemClock)).await?;
    let chat_store = store_cell
        .get()
        .cloned()
        .ok_or_else(|| Error::Config("the outbox was not built".into()))?;
    // Links to the web view only when there is one.
    let links = serve.public_url.clone().filter(|_| serve.web_on());
    let slack = slack_side.map(|(api, workspace)| {
        Slack::new(
            app.engine.clone(),
            api,
            workspace,
            chat_store.clone(),
            links.clone(),
        )
    });
    let discord = match discord_side {
        Some(connection) => Some(
            crate::discord::Discord::new(
                app.engine.clone(),
                connection,
                chat_store.clone(),
                links.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let mut chats = Vec::new();
    if let Some(s) = &slack {
        chats.push(s.chat.clone());
    }
    if let Some(d) = &discord {
        chats.push(d.chat.clone());
    }
    let chats = Chats::new(chats);
    let _ = chats_cell.set(chats.clone());
    // Receipts: stored by one writer before each acknowledgement, processed from there; the
    // sweep picks up what a process that died left behind.
    let (stored_tx, stored_rx) = tokio::sync::mpsc::unbounded_channel();
    let intake = Intake::start(app.engine.store().clone(), stored_tx.clone());
    tokio::spawn(crate::chat::process::run(chats.clone(), stored_rx));
    tokio::spawn(crate::chat::process::sweep(chats.clone(), stored_tx));
    tokio::spawn(crate::memory::give_back_after_bursts(intake.activity()));
    if serve.alerts_on() {
        // What a stopped process recorded from alerts but never said, said by a live one.
        let announcer = chats.clone();
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
    let mut routes = probes(app.ping.clone()).merge(crate::alerts::router(
        app.engine.clone(),
        chats.clone(),
        serve.alerts_token.as_deref(),
    ));
    if let (Some(s), Some(sc)) = (&slack, &serve.slack) {
        routes = routes.merge(crate::slack::server::router(AppState::new(
            s.clone(),
            intake.clone(),
            &sc.signing_secret,
        )));
    }
    if let Some(d) = &discord {
        routes = routes.merge(d.router(intake.clone()));
    }
    if let Some(web) = crate::web::router(
        app.engine.store().clone(),
        config.timeline_key.clone(),
        serve.web_token.as_deref(),
        serve.public_url.as_deref(),
    )
    .map_err(Error::Config)?
    {
        routes = routes.merge(web);
    }
    // Without a metrics address of its own, /metrics is served beside the probes.
    if serve.metrics_listen.is_none() {
        routes = routes.merge(crate::metrics::router(app.engine.store().clone()));
    }
    Ok(Parts {
        router: routes,
        app,
        slack,
        discord,
        intake,
    })
}

type Ping = Arc<dyn Fn() -> PingFuture + Send + Sync>;

/// `/healthz` (the process answers; never touches the database) and `/readyz`.
fn probes(ping: Ping) -> Router {
    Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route("/readyz", axum::routing::get(ready))
        .with_state(ping)
}

/// Readiness answers within a second whatever the database does: a probe that hangs is
/// worse than one that says why it fails.
const READY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

async fn ready(State(ping): State<Ping>) -> Response {
    match tokio::time::timeout(READY_PATIENCE, ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: database unreachable: {e}"),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the database did not answer within 1 s",
        )
            .into_response(),
    }
}

/// Runs until SIGINT or SIGTERM (HTTP), or until the Socket Mode connection ends.
pub async fn run(
    config: &Config,
    listen: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Error> {
    let serve = ServeConfig::from_env(env)?;
    let parts = build_parts(config, &serve).await?;
    let (router, app) = (parts.router, parts.app);
    let addr = listen.unwrap_or(serve.listen.clone());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| Error::Io(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener.local_addr().map(|a| a.to_string()).unwrap_or(addr);
    if let Some(metrics_addr) = &serve.metrics_listen {
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
    if let Some(discord) = &parts.discord {
        discord.start_gateway(parts.intake.clone());
    }
    let platforms = [
        parts.slack.as_ref().map(|_| {
            if serve.slack.as_ref().is_some_and(|s| s.app_token.is_some()) {
                "Slack (Socket Mode)"
            } else {
                "Slack"
            }
        }),
        parts.discord.as_ref().map(|_| "Discord"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" and ");
    if let (Some(slack), Some(token)) = (
        parts.slack.clone(),
        serve.slack.as_ref().and_then(|s| s.app_token.clone()),
    ) {
        // Socket Mode: no public endpoint for Slack; the probes (and Discord) are still served.
        tokio::spawn(async move {
            if let Err(e) = crate::http::serve(listener, router, std::future::pending::<()>()).await
            {
                tracing::error!(error = %e, "the probe listener stopped");
            }
        });
        crate::logging::announce(&format!(
            "erlmcp-bot serving {platforms}; probes on http://{bound} ({}, executor {})",
            app.store_description,
            config.mode.as_str()
        ));
        let api_url = serve
            .slack
            .as_ref()
            .map(|s| s.api_url.clone())
            .unwrap_or_default();
        return crate::slack::socket_mode::run(slack, parts.intake, &token, &api_url).await;
    }
    crate::logging::announce(&format!(
        "erlmcp-bot serving {platforms} on http://{bound} ({}, executor {}, alert intake {}, web view {})",
        app.store_description,
        config.mode.as_str(),
        if serve.alerts_on() {
            "on at /alerts/alertmanager"
        } else {
            "off: set ERLMCP_ALERTS_TOKEN"
        },
        if serve.web_on() {
            "on at /ui/"
        } else {
            "off: set ERLMCP_WEB_TOKEN"
        }
    ));
    if serve.alerts_token.is_some() && config.settings.alerts.channel.is_none() {
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
