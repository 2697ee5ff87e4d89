//! The engine: one entry point (`handle`) that every transport calls with who said what where,
//! and the replies to show. It applies the lifecycle, approval and playbook rules, and talks to
//! storage, infrastructure and chat only through traits.

mod alerts;
pub use alerts::{AlertOutcome, AlertSummary, STORM_INCIDENTS, STORM_WINDOW};
mod approvals;
mod execute;
mod incidents;
mod notes;
mod reminders;
mod requests;
mod resume;
mod supervise;

pub use notes::{NoteFate, NoteItem, as_note};
pub use supervise::TakeOver;

use crate::approval::{Actor, Groups};
use crate::clock::Clock;
use crate::command::{self, Command};
use crate::executor::Executor;
use crate::ids::IncidentId;
use crate::incident::Incident;
use crate::playbook::PlaybookSet;
use crate::reply::{Outbox, Reply};
use crate::store::Store;
use crate::telemetry::CommandOutcome;
use crate::timeline::{Draft, Source};
use crate::topology::Topology;
use std::collections::BTreeSet;
use std::sync::Arc;
use tracing::Instrument;

/// Knobs from configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// When set, every approval request expires after this many seconds, whatever the playbook says.
    pub approval_expiry_seconds: Option<i64>,
    /// Approver groups (`security`, ...) and their members (ids or names).
    pub groups: Groups,
    /// Names or ids that are bots, on transports that cannot tell (the console).
    pub bots: BTreeSet<String>,
    /// First retry delay for transient step failures; doubles on each retry.
    pub retry_base_ms: u64,
    /// Who this process is, as a run owner: `host/pid/token`, unique per process start.
    pub owner: String,
    /// How long a claim on a run holds without renewal; another process takes the run over only
    /// after that. The owner renews it every third of it while it executes.
    pub lease_seconds: i64,
    /// How often the periodic work (severity clocks, request expiry) runs.
    pub tick_seconds: u64,
    /// What alerts open, at which severity, and what they suggest.
    pub alerts: crate::alerts::rules::AlertRules,
}

/// The default lease: at most 30 s, so a run of a dead replica continues within half a minute.
pub const DEFAULT_LEASE_SECONDS: i64 = 30;

impl Default for Settings {
    fn default() -> Self {
        static ENGINES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Self {
            approval_expiry_seconds: None,
            groups: Groups::new(),
            bots: BTreeSet::new(),
            retry_base_ms: 500,
            owner: format!(
                "local/{}/e{}",
                std::process::id(),
                ENGINES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ),
            lease_seconds: DEFAULT_LEASE_SECONDS,
            tick_seconds: 15,
            alerts: crate::alerts::rules::AlertRules::default(),
        }
    }
}

/// One message from a person (or an adapter acting for one).
#[derive(Clone, Debug)]
pub struct Request {
    pub actor: Actor,
    pub source: Source,
    /// Channel id, or `console`.
    pub channel: String,
    pub text: String,
}

#[derive(Clone)]
pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) executor: Arc<dyn Executor>,
    pub(crate) outbox: Arc<dyn Outbox>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) topo: Arc<Topology>,
    pub(crate) playbooks: Arc<PlaybookSet>,
    pub(crate) settings: Arc<Settings>,
    /// Runs this process is executing, and whether it is shutting down (see `hand_over`).
    pub(crate) runs_here: Arc<RunsHere>,
    /// Which incident a channel's notes go to, remembered briefly (see `notes::ready_note`).
    pub(crate) note_targets: Arc<notes::NoteTargets>,
}

/// What a process knows of its own executions, for a clean shutdown.
#[derive(Default)]
pub(crate) struct RunsHere {
    pub(crate) executing: std::sync::atomic::AtomicUsize,
    pub(crate) stopping: std::sync::atomic::AtomicBool,
    pub(crate) idle: tokio::sync::Notify,
}

impl Engine {
    /// A clean shutdown (SIGTERM): each run this process executes finishes the step in progress,
    /// then gives its lease up so another replica continues at once; resolves when none is left
    /// or `grace` has passed (a step still in progress then counts as interrupted).
    pub async fn hand_over(&self, grace: std::time::Duration) {
        use std::sync::atomic::Ordering;
        self.begin_stop();
        let wait = async {
            while self.runs_here.executing.load(Ordering::SeqCst) > 0 {
                let idle = self.runs_here.idle.notified();
                if self.runs_here.executing.load(Ordering::SeqCst) == 0 {
                    break;
                }
                idle.await;
            }
        };
        let _ = tokio::time::timeout(grace, wait).await;
    }

    /// Who this process is, as an owner of runs and claims.
    pub fn owner(&self) -> &str {
        &self.settings.owner
    }

    /// From now on this process starts no new step and takes no run over.
    pub fn begin_stop(&self) {
        self.runs_here
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether this process is shutting down (it starts no new step, and takes nothing over).
    pub fn is_stopping(&self) -> bool {
        self.runs_here
            .stopping
            .load(std::sync::atomic::Ordering::SeqCst)
    }
    pub fn new(
        store: Arc<dyn Store>,
        executor: Arc<dyn Executor>,
        outbox: Arc<dyn Outbox>,
        clock: Arc<dyn Clock>,
        topo: Arc<Topology>,
        playbooks: Arc<PlaybookSet>,
        settings: Settings,
    ) -> Self {
        Self {
            store,
            executor,
            outbox,
            clock,
            topo,
            playbooks,
            settings: Arc::new(settings),
            runs_here: Arc::default(),
            note_targets: Arc::default(),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn playbooks(&self) -> &PlaybookSet {
        &self.playbooks
    }

    pub fn topology(&self) -> &Topology {
        &self.topo
    }

    /// Handles one line of chat. Never panics on input; every problem becomes a reply.
    pub async fn handle(&self, req: &Request) -> Vec<Reply> {
        let mut actor = req.actor.clone();
        actor.is_bot = self.is_bot(&actor);
        // Any command may declare, move or close an incident: where notes go is looked up anew.
        self.note_targets.forget();
        let req = Request {
            actor,
            ..req.clone()
        };
        self.expire_due().await;
        let span = tracing::info_span!(
            "command",
            command = tracing::field::Empty,
            actor = %req.actor.id,
            channel = %req.channel,
            incident = tracing::field::Empty,
            request = tracing::field::Empty,
        );
        let parsed = match command::parse(&req.text) {
            Ok(p) => p,
            Err(e) => {
                let _entered = span.enter();
                crate::telemetry::command("malformed", CommandOutcome::Malformed);
                // Debug-formatted: user text with control characters cannot reach a terminal
                // reading the logs as escapes, nor split the line.
                tracing::info!(command = ?e.command, problem = ?e.problem, "malformed command");
                return vec![Reply::error(e.to_string())];
            }
        };
        let kind = parsed.command.kind();
        span.record("command", kind);
        match &parsed.command {
            Command::Approve { request: Some(r) }
            | Command::Deny {
                request: Some(r), ..
            }
            | Command::Cancel { request: Some(r) } => {
                span.record("request", r.as_str());
            }
            _ => {}
        }
        if let Some(id) = &parsed.incident {
            span.record("incident", id.as_str());
        }
        let result = self
            .dispatch(&req, parsed.incident, parsed.command)
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        match result {
            Ok(replies) => {
                let outcome = outcome_of(&replies);
                crate::telemetry::command(kind, outcome);
                tracing::info!(outcome = outcome.as_str(), "command handled");
                replies
            }
            Err(e) => {
                crate::telemetry::command(kind, CommandOutcome::Failed);
                tracing::warn!(error = ?e.to_string(), "command failed");
                vec![Reply::error(format!("{} failed: {e}", short(&req.text)))]
            }
        }
    }

    /// A bot or app, by the platform's word or by the operator's `bots` setting.
    pub(crate) fn is_bot(&self, actor: &Actor) -> bool {
        actor.is_bot
            || self.settings.bots.contains(&actor.id)
            || self.settings.bots.contains(&actor.name)
    }

    async fn dispatch(
        &self,
        req: &Request,
        incident: Option<IncidentId>,
        cmd: Command,
    ) -> crate::Result<Vec<Reply>> {
        use Command as C;
        match cmd {
            C::Declare { severity, title } => self.declare(req, severity, title, false).await,
            C::Help(topic) => Ok(vec![Reply::private(help(
                topic.as_deref(),
                &self.playbooks,
            ))]),
            C::Incidents => self.list_incidents().await,
            C::Playbooks => Ok(vec![Reply::private(self.list_playbooks())]),
            C::Report { month } => {
                let now = self.clock.now();
                let (y, m) =
                    month.unwrap_or((chrono::Datelike::year(&now), chrono::Datelike::month(&now)));
                Ok(vec![Reply::private(self.sla_report(y, m).await?)])
            }
            C::Approve { request } => self.approve(req, incident, request).await,
            C::Deny { request, reason } => self.deny(req, incident, request, reason).await,
            C::Cancel { request } => self.cancel(req, incident, request).await,
            C::Requests => self.list_requests(req, incident).await,
            C::Resume { run, decision } => self.resume_command(req, incident, run, decision).await,
            C::Stop { run, reason } => self.stop_command(req, incident, run, reason).await,
            C::Run { playbook, params } => {
                self.request_playbook(req, incident, &playbook, params)
                    .await
            }
            C::Failover { region } => {
                self.request_playbook(req, incident, "failover", vec![("region".into(), region)])
                    .await
            }
            C::Isolate { region } => {
                let params = region
                    .map(|r| vec![("region".to_string(), r)])
                    .unwrap_or_default();
                self.request_playbook(req, incident, "security-isolation", params)
                    .await
            }
            C::ReadOnly { on } => {
                self.request_playbook(
                    req,
                    incident,
                    "read-only",
                    vec![("enabled".into(), on.to_string())],
                )
                .await
            }
            C::Rollback { version, region } => {
                let mut params = Vec::new();
                if let Some(v) = version {
                    params.push(("version".to_string(), v));
                }
                if let Some(r) = region {
                    params.push(("region".to_string(), r));
                }
                self.request_playbook(req, incident, "rollback", params)
                    .await
            }
            C::Scale { region, replicas } => {
                self.request_playbook(
                    req,
                    incident,
                    "scale",
                    vec![
                        ("region".into(), region),
                        ("replicas".into(), replicas.to_string()),
                    ],
                )
                .await
            }
            other => self.incident_command(req, incident, other).await,
        }
    }

    /// Finds the incident a command addresses: the one named; or the only open one in the channel;
    /// or, in a channel tied to no incident, the only open one anywhere. `allow_closed` lets
    /// read-only commands fall back to the channel's latest incident.
    pub(crate) async fn target_incident(
        &self,
        req: &Request,
        explicit: Option<IncidentId>,
        allow_closed: bool,
    ) -> crate::Result<Result<Incident, Reply>> {
        let found = self.find_incident(req, explicit, allow_closed).await;
        // Every log line about this command from here on names the incident.
        if let Ok(Ok(inc)) = &found {
            tracing::Span::current().record("incident", inc.id.as_str());
        }
        found
    }

    async fn find_incident(
        &self,
        req: &Request,
        explicit: Option<IncidentId>,
        allow_closed: bool,
    ) -> crate::Result<Result<Incident, Reply>> {
        if let Some(id) = explicit {
            return Ok(match self.store.incident(&id).await? {
                Some(i) => Ok(i),
                None => Err(Reply::error(format!(
                    "There is no incident {id}. `/erlmcp incidents` lists the open ones."
                ))),
            });
        }
        let here = self.store.incidents_in_channel(&req.channel).await?;
        let open: Vec<&Incident> = here.iter().filter(|i| i.is_open()).collect();
        match open.as_slice() {
            [one] => return Ok(Ok((*one).clone())),
            [] => {}
            several => {
                let list: Vec<String> = several
                    .iter()
                    .map(|i| format!("{} ({} {}, {})", i.id, i.severity, i.title, i.status))
                    .collect();
                return Ok(Err(Reply::error(format!(
                    "Several incidents are open in this channel: {}. Name one, e.g. `/erlmcp {} status`.",
                    list.join("; "),
                    several[0].id
                ))));
            }
        }
        if allow_closed && let Some(latest) = here.first() {
            return Ok(Ok(latest.clone()));
        }
        // A channel that is no incident's (say #general, after the incident moved to its own
        // channel) addresses the only open incident, if there is exactly one.
        if here.is_empty() {
            let open = self.store.open_incidents().await?;
            match open.as_slice() {
                [only] => return Ok(Ok(only.clone())),
                [] => {}
                several => {
                    // Say which, so the person can name one instead of declaring another.
                    let list: Vec<String> = several
                        .iter()
                        .take(5)
                        .map(|i| format!("{} ({} {})", i.id, i.severity, i.title))
                        .collect();
                    return Ok(Err(Reply::error(format!(
                        "This channel is tied to no incident, and {} are open elsewhere: {}{}. Name one, e.g. `/erlmcp {} status`.",
                        several.len(),
                        list.join("; "),
                        if several.len() > 5 { "; …" } else { "" },
                        several[0].id
                    ))));
                }
            }
        }
        Ok(Err(Reply::error(
            "No open incident in this channel. Declare one with `/erlmcp p1 declare <title>`, or name one: `/erlmcp INC-YYYYMMDD-N status` (`/erlmcp incidents` lists them).".to_string(),
        )))
    }

    pub(crate) fn draft(
        &self,
        actor: &Actor,
        source: Source,
        kind: &str,
        text: impl Into<String>,
    ) -> Draft {
        Draft {
            at: self.clock.now(),
            actor: actor.name.clone(),
            actor_id: actor.qualified_id(),
            source,
            kind: kind.to_string(),
            text: text.into(),
            facts: Vec::new(),
        }
    }

    pub(crate) fn system_draft(&self, kind: &str, text: impl Into<String>) -> Draft {
        self.draft(
            &Actor {
                is_bot: true,
                ..Actor::person("system")
            },
            Source::System,
            kind,
            text,
        )
    }

    /// The monthly SLA report over every recorded incident.
    pub async fn sla_report(&self, year: i32, month: u32) -> crate::Result<String> {
        crate::reads::sla_report(self.store.as_ref(), year, month, self.clock.now()).await
    }

    fn list_playbooks(&self) -> String {
        let mut out = String::from("Playbooks (run with `/erlmcp run <name> [key=value ...]`):\n");
        for p in self.playbooks.playbooks.values() {
            let sev: Vec<String> = p.severities.iter().map(|s| s.to_string()).collect();
            out.push_str(&format!(
                "- {} [{}] {}: {}\n  usage: `{}`\n",
                p.name,
                sev.join(","),
                p.runbook,
                p.description,
                p.usage()
            ));
        }
        out
    }
}

fn short(text: &str) -> String {
    let t = text.trim();
    let cut: String = t.chars().take(60).collect();
    if cut.len() < t.len() {
        format!("`{cut}…`")
    } else {
        format!("`{cut}`")
    }
}

/// `help` and `help <command>`.
/// A command answered only with errors was refused (a rule said no, or what it started failed);
/// anything else did what was asked.
pub(crate) fn outcome_of(replies: &[Reply]) -> CommandOutcome {
    if !replies.is_empty() && replies.iter().all(|r| r.is_error) {
        CommandOutcome::Refused
    } else {
        CommandOutcome::Ok
    }
}

pub fn help(topic: Option<&str>, playbooks: &PlaybookSet) -> String {
    match topic.and_then(command::spec) {
        Some(spec) => {
            let mut s = format!("{}\n  {}", spec.usage, spec.summary);
            if spec.name == "run" {
                s.push_str("\n  playbooks: ");
                s.push_str(
                    &playbooks
                        .playbooks
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                );
            }
            s
        }
        None => {
            let mut s = String::from(
                "erlmcp-bot commands (the leading /erlmcp is optional; prefix an incident id to address another incident):\n",
            );
            for c in command::COMMANDS {
                s.push_str(&format!("  {:<40} {}\n", c.usage, c.summary));
            }
            s
        }
    }
}
