//! Command-line entry points: `console`, `drill`, `timeline verify`, `postmortem`, `playbooks check`.
//! `run` takes its arguments, input and screen as parameters, so tests drive it like a user.

use crate::app::{self, App};
use crate::config::Config;
use crate::console::{self, ConsoleOutbox, Screen, print_reply};
use clap::{Parser, Subcommand};
use erlmcp_handlers::clock::SystemClock;
use erlmcp_handlers::ids::IncidentId;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::io::AsyncBufRead;

#[derive(Parser, Debug)]
#[command(
    name = "erlmcp-bot",
    version,
    about = "Incident response bot for erlmcp v3: incidents, two-person approvals, playbooks, postmortems"
)]
pub struct Cli {
    /// Configuration file (default: ./erlmcp-bot.toml if it exists).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://FILE (default sqlite://erlmcp-bot.db) or postgres://...
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// A chat in the terminal: each line is a command; `as <user>` switches user.
    Console {
        /// Who you are at the start (default: your login name).
        #[arg(long)]
        user: Option<String>,
        /// The channel this console stands for.
        #[arg(long, default_value = "console")]
        channel: String,
    },
    /// Rehearse a playbook on the simulated world: declare a drill incident, request, approve as a
    /// second person, execute, resolve, and print the postmortem.
    Drill {
        playbook: String,
        /// Playbook parameters, key=value.
        params: Vec<String>,
        /// Severity of the drill incident (default: the highest the playbook allows).
        #[arg(long)]
        severity: Option<String>,
        #[arg(long, default_value = "alice")]
        requester: String,
        #[arg(long, default_value = "bob")]
        approver: String,
    },
    /// Timeline tools.
    Timeline {
        #[command(subcommand)]
        command: TimelineCmd,
    },
    /// Print an incident's postmortem draft (Markdown).
    Postmortem { incident: String },
    /// Playbook tools.
    Playbooks {
        #[command(subcommand)]
        command: PlaybooksCmd,
    },
    /// The monthly SLA report (runbook §5.5) from the recorded incidents, in Markdown.
    Report {
        /// The month, YYYY-MM (default: this month).
        #[arg(long)]
        month: Option<String>,
    },
    /// Serve Slack: slash commands, buttons and events over HTTP (or Socket Mode when
    /// SLACK_APP_TOKEN is set), plus /healthz and /readyz.
    Serve {
        /// Listen address (default: ERLMCP_LISTEN or 0.0.0.0:3000).
        #[arg(long)]
        listen: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TimelineCmd {
    /// Check the hash chain of one incident's timeline, or of all; exits 1 if any is broken.
    Verify { incident: Option<String> },
    /// Print an incident's timeline with hashes.
    Show { incident: String },
}

#[derive(Subcommand, Debug)]
pub enum PlaybooksCmd {
    /// Validate playbook files (default: the built-ins and the configured directory); exits 1 on any error.
    Check { files: Vec<PathBuf> },
    /// List the playbooks in force.
    List,
}

pub(crate) fn say(screen: &Screen, text: &str) {
    let mut out = screen.lock().unwrap_or_else(|p| p.into_inner());
    let _ = writeln!(out, "{text}");
}

/// Runs one invocation. Returns the process exit code.
pub async fn run<R: AsyncBufRead + Unpin>(
    args: Vec<String>,
    input: R,
    screen: Screen,
    input_is_terminal: bool,
) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            say(&screen, e.to_string().trim_end());
            return code;
        }
    };
    let mut config = match Config::from_env(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            say(&screen, &format!("error: {e}"));
            return 2;
        }
    };
    if let Some(url) = cli.database_url {
        config.database_url = url;
    }
    if let Cmd::Playbooks {
        command: PlaybooksCmd::Check { files },
    } = &cli.command
    {
        return check_playbooks(&config, files, &screen);
    }
    let console_screen = screen.clone();
    let outbox = move |_| -> Arc<dyn erlmcp_handlers::reply::Outbox> {
        Arc::new(ConsoleOutbox(console_screen.clone()))
    };
    let app = match app::build(&config, &outbox, Arc::new(SystemClock)).await {
        Ok(a) => a,
        Err(e) => {
            say(&screen, &format!("error: {e}"));
            return 2;
        }
    };
    tracing::info!(store = %app.store_description, mode = ?config.mode, "erlmcp-bot ready");
    // A run interrupted by a crash continues before anything else happens.
    match app.engine.resume_unfinished().await {
        Ok(replies) => replies.iter().for_each(|r| print_reply(&screen, r)),
        Err(e) => say(
            &screen,
            &format!("warning: could not resume unfinished runs: {e}"),
        ),
    }
    match cli.command {
        Cmd::Console { user, channel } => {
            let user = user.unwrap_or_else(console::login_name);
            if input_is_terminal {
                say(
                    &screen,
                    &format!(
                        "erlmcp-bot console — {} — executor {} — you are {user}. Type `help`; `as <user>` switches user; Ctrl-D ends.\n",
                        app.store_description,
                        config.mode.as_str()
                    ),
                );
            }
            match console::run(
                &app.engine,
                input,
                screen.clone(),
                user,
                channel,
                !input_is_terminal,
            )
            .await
            {
                Ok(()) => 0,
                Err(e) => {
                    say(&screen, &format!("error reading input: {e}"));
                    1
                }
            }
        }
        Cmd::Drill {
            playbook,
            params,
            severity,
            requester,
            approver,
        } => {
            crate::drill::run(
                &app,
                &screen,
                &playbook,
                &params,
                severity.as_deref(),
                &requester,
                &approver,
            )
            .await
        }
        Cmd::Timeline {
            command: TimelineCmd::Verify { incident },
        } => verify(&app, &screen, incident).await,
        Cmd::Timeline {
            command: TimelineCmd::Show { incident },
        } => show_timeline(&app, &screen, &incident).await,
        Cmd::Postmortem { incident } => match app
            .engine
            .postmortem_markdown(&IncidentId::new(incident.to_ascii_uppercase()))
            .await
        {
            Ok(md) => {
                say(&screen, &md);
                0
            }
            Err(e) => {
                say(&screen, &format!("error: {e}"));
                1
            }
        },
        Cmd::Report { month } => {
            let now = chrono::Utc::now();
            let ym = match month {
                Some(m) => match erlmcp_handlers::report::parse_month(&m) {
                    Some(ym) => ym,
                    None => {
                        say(
                            &screen,
                            &format!("error: `{m}` is not a month like 2026-11"),
                        );
                        return 2;
                    }
                },
                None => (chrono::Datelike::year(&now), chrono::Datelike::month(&now)),
            };
            match app.engine.sla_report(ym.0, ym.1).await {
                Ok(r) => {
                    say(&screen, &r);
                    0
                }
                Err(e) => {
                    say(&screen, &format!("error: {e}"));
                    1
                }
            }
        }
        Cmd::Playbooks {
            command: PlaybooksCmd::List,
        } => {
            for p in app.engine.playbooks().playbooks.values() {
                say(
                    &screen,
                    &format!(
                        "{:<20} {:<6} {}  ({})",
                        p.name, p.runbook, p.description, p.file
                    ),
                );
            }
            0
        }
        Cmd::Playbooks {
            command: PlaybooksCmd::Check { .. },
        }
        | Cmd::Serve { .. } => unreachable!("handled before the store is opened"),
    }
}

fn check_playbooks(config: &Config, files: &[PathBuf], screen: &Screen) -> u8 {
    let topo = config.topology.clone();
    if files.is_empty() {
        return match app::load_playbooks(config, &topo) {
            Ok(set) => {
                for p in set.playbooks.values() {
                    say(
                        screen,
                        &format!("ok  {:<20} {} ({} steps)", p.name, p.file, p.steps.len()),
                    );
                }
                say(screen, &format!("{} playbooks valid", set.playbooks.len()));
                0
            }
            Err(e) => {
                say(screen, &e.to_string());
                1
            }
        };
    }
    let mut failed = false;
    for f in files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                say(screen, &format!("{}: cannot read: {e}", f.display()));
                failed = true;
                continue;
            }
        };
        match erlmcp_handlers::playbook::parse_file(&f.display().to_string(), &text, &topo) {
            Ok(p) => say(
                screen,
                &format!(
                    "ok  {:<20} {} ({} steps)",
                    p.name,
                    f.display(),
                    p.steps.len()
                ),
            ),
            Err(errors) => {
                failed = true;
                say(screen, &app::format_load_errors(&errors));
            }
        }
    }
    u8::from(failed)
}

async fn verify(app: &App, screen: &Screen, incident: Option<String>) -> u8 {
    let store = app.engine.store();
    let ids = match incident {
        Some(i) => vec![IncidentId::new(i.to_ascii_uppercase())],
        None => match store.all_incident_ids().await {
            Ok(ids) => ids,
            Err(e) => {
                say(screen, &format!("error: {e}"));
                return 1;
            }
        },
    };
    if ids.is_empty() {
        say(screen, "No incidents to verify.");
        return 0;
    }
    let mut bad = false;
    for id in ids {
        match store.incident(&id).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                say(screen, &format!("{id}: no such incident"));
                bad = true;
                continue;
            }
            Err(e) => {
                say(screen, &format!("{id}: cannot read: {e}"));
                bad = true;
                continue;
            }
        }
        match app.engine.verify_timeline(&id).await {
            Ok(breaks) if breaks.is_empty() => {
                let n = store.timeline(&id).await.map(|t| t.len()).unwrap_or(0);
                say(screen, &format!("{id}: intact ({n} entries)"));
            }
            Ok(breaks) => {
                bad = true;
                for b in breaks {
                    say(screen, &format!("{id}: TAMPERED: {b}"));
                }
            }
            Err(e) => {
                bad = true;
                say(screen, &format!("{id}: TAMPERED or unreadable: {e}"));
            }
        }
    }
    u8::from(bad)
}

async fn show_timeline(app: &App, screen: &Screen, incident: &str) -> u8 {
    match app
        .engine
        .store()
        .timeline(&IncidentId::new(incident.to_ascii_uppercase()))
        .await
    {
        Ok(entries) if entries.is_empty() => {
            say(
                screen,
                &format!("{incident}: no timeline (no such incident?)"),
            );
            1
        }
        Ok(entries) => {
            for e in entries {
                say(
                    screen,
                    &format!(
                        "#{:<3} {} {:<10} {:<8} {:<18} {} [{}]",
                        e.seq,
                        e.at.format("%Y-%m-%d %H:%M:%S%.6f"),
                        e.actor,
                        e.source,
                        e.kind,
                        e.text,
                        &e.hash[..12]
                    ),
                );
            }
            0
        }
        Err(e) => {
            say(screen, &format!("error: {e}"));
            1
        }
    }
}

/// The binary's `main`: logging to stderr, a runtime, stdin and stdout.
pub fn main() -> ExitCode {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    install_crypto_provider();
    let screen: Screen = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let is_terminal = std::io::stdin().is_terminal();
    let code = runtime.block_on(run(
        std::env::args().collect(),
        tokio::io::BufReader::new(tokio::io::stdin()),
        screen,
        is_terminal,
    ));
    ExitCode::from(code)
}

/// rustls sees two crypto backends in this dependency graph and will not pick one by itself.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
