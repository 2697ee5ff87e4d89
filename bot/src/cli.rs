//! The command line: parses the subcommands and hands each to its module (`serve`, `console`,
//! `drill` execute; `inspect` only reads).
//! `run` takes its arguments, input and screen as parameters, so tests drive it like a user.

use crate::app::{self, App};
use crate::config::Config;
use crate::console::{self, ConsoleOutbox, Screen, say};
use crate::inspect;
use clap::{Parser, Subcommand};
use erlmcp_handlers::clock::SystemClock;
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
        /// The playbook to rehearse (`erlmcp-bot playbooks list` shows them).
        playbook: String,
        /// Playbook parameters, key=value (e.g. region=us-west-2).
        params: Vec<String>,
        /// Severity of the drill incident (default: the highest the playbook allows).
        #[arg(long)]
        severity: Option<String>,
        /// Who asks for the change.
        #[arg(long, default_value = "alice")]
        requester: String,
        /// Who approves it (a playbook that needs a group needs a member: configure
        /// ERLMCP_GROUPS=security:sam and pass --approver sam).
        #[arg(long, default_value = "bob")]
        approver: String,
    },
    /// The incidents not yet closed, newest first (read-only).
    Incidents,
    /// Timeline tools.
    Timeline {
        #[command(subcommand)]
        command: TimelineCmd,
    },
    /// Print an incident's postmortem draft (Markdown); `--svg FILE` also writes its timeline
    /// picture.
    Postmortem {
        incident: String,
        /// Write the timeline picture (SVG) to this file.
        #[arg(long, value_name = "FILE")]
        svg: Option<std::path::PathBuf>,
    },
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
        /// The month, as in chat: `erlmcp-bot report 2026-11`.
        #[arg(value_name = "YYYY-MM", conflicts_with = "month")]
        month_positional: Option<String>,
    },
    /// Serve Slack, Discord or both (whichever SLACK_* / DISCORD_* variables are set): commands,
    /// buttons, reactions; plus /healthz, /readyz, alert intake, the web view and metrics.
    Serve {
        /// Listen address (default: ERLMCP_LISTEN or 0.0.0.0:3000).
        #[arg(long)]
        listen: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TimelineCmd {
    /// Check the hash chain of one incident's timeline, or of all (with ERLMCP_TIMELINE_KEY also
    /// its keyed MACs), and the tables the postmortem reads; exits 1 if any is broken.
    Verify {
        incident: Option<String>,
        /// Also fail on entries written without the timeline key.
        #[arg(long)]
        require_keyed: bool,
    },
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
    // `serve` is a service: why it cannot start goes to stderr with its logs (as JSON when the
    // logs are), where a log pipeline or `kubectl logs` looks. The others are for a terminal.
    let serving = matches!(cli.command, Cmd::Serve { .. });
    let fail = |message: String| {
        if serving {
            crate::logging::fatal(&message);
        } else {
            say(&screen, &message);
        }
    };
    let mut config = match Config::from_env(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            fail(format!("error: {e}"));
            return 2;
        }
    };
    if let Some(url) = cli.database_url {
        config.database_url = url;
    }
    match cli.command {
        // Read-only: they open the database (or nothing) and never an executor.
        Cmd::Timeline {
            command:
                TimelineCmd::Verify {
                    incident,
                    require_keyed,
                },
        } => inspect::verify(&config, &screen, incident, require_keyed).await,
        Cmd::Timeline {
            command: TimelineCmd::Show { incident },
        } => inspect::show_timeline(&config, &screen, &incident).await,
        Cmd::Postmortem { incident, svg } => {
            inspect::postmortem(&config, &screen, &incident, svg.as_deref()).await
        }
        Cmd::Report {
            month,
            month_positional,
        } => inspect::report(&config, &screen, month.or(month_positional)).await,
        Cmd::Incidents => inspect::incidents(&config, &screen).await,
        Cmd::Playbooks {
            command: PlaybooksCmd::List,
        } => inspect::list_playbooks(&config, &screen),
        Cmd::Playbooks {
            command: PlaybooksCmd::Check { files },
        } => inspect::check_playbooks(&config, &files, &screen),
        // The processes that execute runs.
        Cmd::Serve { listen } => match crate::serve::run(&config, listen, &process_env).await {
            Ok(()) => 0,
            Err(e) => {
                fail(format!("error: {e}"));
                2
            }
        },
        Cmd::Console { user, channel } => {
            console_command(&config, input, &screen, input_is_terminal, user, channel).await
        }
        Cmd::Drill {
            playbook,
            params,
            severity,
            requester,
            approver,
        } => {
            let Some(app) = executing_app(&config, &screen).await else {
                return 2;
            };
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
    }
}

/// The environment as configuration reads it: unset and empty are the same.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Builds the engine of a process that executes (console, drill), printing progress on the
/// screen, and starts its background duty (runs whose owner died, the severity clocks).
async fn executing_app(config: &Config, screen: &Screen) -> Option<App> {
    let console_screen = screen.clone();
    let outbox = move |_| -> Arc<dyn erlmcp_handlers::reply::Outbox> {
        Arc::new(ConsoleOutbox(console_screen.clone()))
    };
    let app = match app::build(config, &outbox, Arc::new(SystemClock)).await {
        Ok(a) => a,
        Err(e) => {
            say(screen, &format!("error: {e}"));
            return None;
        }
    };
    tracing::info!(store = %app.store_description, mode = ?config.mode, "erlmcp-bot ready");
    app::start_supervisor(&app.engine);
    Some(app)
}

async fn console_command<R: AsyncBufRead + Unpin>(
    config: &Config,
    input: R,
    screen: &Screen,
    input_is_terminal: bool,
    user: Option<String>,
    channel: String,
) -> u8 {
    let Some(app) = executing_app(config, screen).await else {
        return 2;
    };
    let user = user.unwrap_or_else(console::login_name);
    if input_is_terminal {
        say(
            screen,
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
            say(screen, &format!("error reading input: {e}"));
            1
        }
    }
}

/// The binary's `main`: logging to stderr, a runtime, stdin and stdout.
pub fn main() -> ExitCode {
    use std::io::IsTerminal;
    if let Err(e) = crate::logging::init(&process_env) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
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
