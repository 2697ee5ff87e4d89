//! Wiring: configuration in, a ready engine out (store opened and migrated, playbooks loaded and
//! checked, the executor of the configured mode).

use crate::config::Config;
use crate::error::Error;
use crate::live::Live;
use crate::store;
use erlmcp_handlers::clock::Clock;
use erlmcp_handlers::engine::Engine;
use erlmcp_handlers::executor::dry_run::DryRun;
use erlmcp_handlers::executor::simulated::Simulated;
use erlmcp_handlers::executor::{Executor, Mode};
use erlmcp_handlers::playbook::{LoadError, PlaybookSet};
use erlmcp_handlers::reply::Outbox;
use erlmcp_handlers::topology::Topology;
use std::path::Path;
use std::sync::Arc;

pub struct App {
    pub engine: Engine,
    /// Chat adapters' bookkeeping in the same database.
    pub chat: Arc<dyn crate::store::chat::ChatStore>,
    /// The simulated world, when the executor is simulated (drills print it).
    pub simulated: Option<Simulated>,
    pub store_description: String,
    pub ping: Arc<dyn Fn() -> store::futures_ping::PingFuture + Send + Sync>,
}

/// Reads every `.yaml`/`.yml` file of a directory, sorted by name.
pub fn read_playbook_dir(dir: &Path) -> Result<Vec<(String, String)>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::Io(format!(
            "cannot read playbooks directory {}: {e}",
            dir.display()
        ))
    })?;
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))?;
            files.push((path.display().to_string(), text));
        }
    }
    files.sort();
    Ok(files)
}

pub fn format_load_errors(errors: &[LoadError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every command an alert rule suggests parses, and names a playbook that is loaded: said at
/// start, not when the alert fires.
pub fn check_alert_suggestions(config: &Config, playbooks: &PlaybookSet) -> Result<(), Error> {
    use erlmcp_handlers::command::{self, Command};
    config
        .settings
        .alerts
        .check(&|text| match command::parse(text) {
            Ok(p) => match p.command {
                Command::Run { playbook, .. } if playbooks.get(&playbook).is_none() => {
                    Err(format!("there is no playbook `{playbook}`"))
                }
                // An alert suggests what to request, never a decision about a request.
                Command::Approve { .. }
                | Command::Deny { .. }
                | Command::Cancel { .. }
                | Command::Resume { .. }
                | Command::Stop { .. } => Err(
                    "an alert may suggest a command that requests or reports, never a decision (approve, deny, cancel, resume, stop)".into(),
                ),
                _ => Ok(()),
            },
            Err(e) => Err(e.to_string()),
        })
        .map_err(Error::Config)
}

/// The built-in playbooks plus the operator's directory, all checked.
pub fn load_playbooks(config: &Config, topo: &Topology) -> Result<PlaybookSet, Error> {
    let mut set = PlaybookSet::builtin(topo).map_err(|e| {
        Error::Playbooks(format!(
            "built-in playbooks are invalid:\n{}",
            format_load_errors(&e)
        ))
    })?;
    if let Some(dir) = &config.playbooks_dir {
        let files = read_playbook_dir(dir)?;
        set.add_files(&files, topo).map_err(|e| {
            Error::Playbooks(format!(
                "playbooks in {} are invalid:\n{}",
                dir.display(),
                format_load_errors(&e)
            ))
        })?;
    }
    Ok(set)
}

/// Builds the engine. `outbox` makes the message sink once the database is open (chat adapters
/// keep their bookkeeping there).
pub async fn build(
    config: &Config,
    outbox: &dyn Fn(Arc<dyn crate::store::chat::ChatStore>) -> Arc<dyn Outbox>,
    clock: Arc<dyn Clock>,
) -> Result<App, Error> {
    let topo = config.topology.clone();
    let playbooks = load_playbooks(config, &topo)?;
    check_alert_suggestions(config, &playbooks)?;
    let opened = store::open(&config.database_url, config.timeline_key.clone()).await?;
    let (executor, simulated): (Arc<dyn Executor>, Option<Simulated>) = match config.mode {
        Mode::Simulated => {
            let sim = Simulated::new(topo.clone());
            (Arc::new(sim.clone()), Some(sim))
        }
        // Dry-run reads the real systems (so its plans show real current values) and writes nothing.
        Mode::DryRun => (
            Arc::new(DryRun::new(
                Arc::new(Live::connect(config).await?),
                Arc::new(topo.clone()),
            )),
            None,
        ),
        Mode::Live => (Arc::new(Live::connect(config).await?), None),
    };
    let settings = erlmcp_handlers::engine::Settings {
        owner: process_owner(),
        ..config.settings.clone()
    };
    let engine = Engine::new(
        opened.store,
        executor,
        outbox(opened.chat.clone()),
        clock,
        Arc::new(topo),
        Arc::new(playbooks),
        settings,
    );
    Ok(App {
        engine,
        simulated,
        store_description: opened.description,
        ping: opened.ping,
        chat: opened.chat,
    })
}

/// This process as a run owner: `host/pid/token`. The host and pid tell people where a run
/// executes; the token (the start time) tells a restarted process with a reused pid (pid 1 in a
/// container) from the one before it.
pub fn process_owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && !h.contains('/'))
        .unwrap_or_else(|| "localhost".to_string());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{host}/{}/{started:x}", std::process::id())
}

/// Starts the background duty of a process that executes: taking over the runs of dead owners,
/// the severity clocks, request expiry.
pub fn start_supervisor(engine: &Engine) {
    tokio::spawn(engine.clone().supervise());
}
