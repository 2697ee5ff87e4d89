//! Every infrastructure action behind one trait: `observe` reads what is there now (for the plan),
//! `apply` changes it. Implementations: the simulated world (rehearsal and tests), dry-run (reads,
//! never writes), and live (Kubernetes, Route53, PostgreSQL, HTTP; in the bot crate).

pub mod dry_run;
pub mod simulated;

use crate::topology::Topology;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One concrete infrastructure action, as a playbook step resolves to. The `kind` strings are the
/// step kinds playbook files use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum Action {
    #[serde(rename = "kube.scale")]
    Scale { region: String, replicas: u32 },
    #[serde(rename = "kube.wait-ready")]
    WaitReady { region: String },
    #[serde(rename = "kube.pods")]
    PodsReady { region: String },
    #[serde(rename = "kube.network-policy.apply")]
    IsolateNetwork { region: String, name: String },
    #[serde(rename = "kube.network-policy.delete")]
    RemoveNetworkPolicy { region: String, name: String },
    #[serde(rename = "kube.config-map.apply")]
    ApplyConfigMap {
        region: String,
        name: String,
        data: BTreeMap<String, String>,
    },
    #[serde(rename = "kube.config-map.delete")]
    DeleteConfigMap { region: String, name: String },
    /// `version: previous` is resolved to a concrete version when the plan is made.
    #[serde(rename = "kube.set-image")]
    SetImage { region: String, version: String },
    #[serde(rename = "kube.wait-rollout")]
    WaitRollout { region: String },
    #[serde(rename = "kube.restart")]
    RestartRollout { region: String },
    #[serde(rename = "pg.promote")]
    PromoteDatabase { region: String },
    #[serde(rename = "dns.point")]
    PointDns { region: String },
    #[serde(rename = "dns.check")]
    CheckDns {},
    #[serde(rename = "http.health")]
    CheckHealth { region: String },
    #[serde(rename = "health.all-regions")]
    CheckAllRegions {},
    #[serde(rename = "notify.page")]
    Page { summary: String },
    #[serde(rename = "notify.status-page")]
    StatusPage { state: String, message: String },
    #[serde(rename = "notify.webhook")]
    Webhook { hook: String, message: String },
    #[serde(rename = "backup.verify")]
    VerifyBackups {},
    /// `point: last-good` is resolved to a concrete backup when the plan is made.
    #[serde(rename = "backup.restore")]
    RestoreBackup { point: String },
    #[serde(rename = "data.validate")]
    ValidateData {},
}

/// The kinds playbooks may use, with whether they change state by default and are safe to re-run.
pub struct StepKind {
    pub name: &'static str,
    pub changes_state: bool,
    pub idempotent: bool,
}

pub const STEP_KINDS: &[StepKind] = &[
    StepKind {
        name: "kube.scale",
        changes_state: true,
        idempotent: true,
    },
    StepKind {
        name: "kube.wait-ready",
        changes_state: false,
        idempotent: true,
    },
    StepKind {
        name: "kube.pods",
        changes_state: false,
        idempotent: true,
    },
    StepKind {
        name: "kube.network-policy.apply",
        changes_state: true,
        idempotent: true,
    },
    StepKind {
        name: "kube.network-policy.delete",
        changes_state: true,
        idempotent: true,
    },
    StepKind {
        name: "kube.config-map.apply",
        changes_state: true,
        idempotent: true,
    },
    StepKind {
        name: "kube.config-map.delete",
        changes_state: true,
        idempotent: true,
    },
    StepKind {
        name: "kube.set-image",
        changes_state: true,
        idempotent: true,
    },
    StepKind {
        name: "kube.wait-rollout",
        changes_state: false,
        idempotent: true,
    },
    StepKind {
        name: "kube.restart",
        changes_state: true,
        idempotent: false,
    },
    StepKind {
        name: "pg.promote",
        changes_state: true,
        idempotent: false,
    },
    StepKind {
        name: "dns.point",
        changes_state: true,
        idempotent: true,
    },
    StepKind {
        name: "dns.check",
        changes_state: false,
        idempotent: true,
    },
    StepKind {
        name: "http.health",
        changes_state: false,
        idempotent: true,
    },
    StepKind {
        name: "health.all-regions",
        changes_state: false,
        idempotent: true,
    },
    StepKind {
        name: "notify.page",
        changes_state: true,
        idempotent: false,
    },
    StepKind {
        name: "notify.status-page",
        changes_state: true,
        idempotent: true,
    },
    StepKind {
        name: "notify.webhook",
        changes_state: true,
        idempotent: false,
    },
    StepKind {
        name: "backup.verify",
        changes_state: false,
        idempotent: true,
    },
    StepKind {
        name: "backup.restore",
        changes_state: true,
        idempotent: false,
    },
    StepKind {
        name: "data.validate",
        changes_state: false,
        idempotent: true,
    },
];

pub fn step_kind(name: &str) -> Option<&'static StepKind> {
    STEP_KINDS.iter().find(|k| k.name == name)
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Scale { .. } => "kube.scale",
            Action::WaitReady { .. } => "kube.wait-ready",
            Action::PodsReady { .. } => "kube.pods",
            Action::IsolateNetwork { .. } => "kube.network-policy.apply",
            Action::RemoveNetworkPolicy { .. } => "kube.network-policy.delete",
            Action::ApplyConfigMap { .. } => "kube.config-map.apply",
            Action::DeleteConfigMap { .. } => "kube.config-map.delete",
            Action::SetImage { .. } => "kube.set-image",
            Action::WaitRollout { .. } => "kube.wait-rollout",
            Action::RestartRollout { .. } => "kube.restart",
            Action::PromoteDatabase { .. } => "pg.promote",
            Action::PointDns { .. } => "dns.point",
            Action::CheckDns {} => "dns.check",
            Action::CheckHealth { .. } => "http.health",
            Action::CheckAllRegions {} => "health.all-regions",
            Action::Page { .. } => "notify.page",
            Action::StatusPage { .. } => "notify.status-page",
            Action::Webhook { .. } => "notify.webhook",
            Action::VerifyBackups {} => "backup.verify",
            Action::RestoreBackup { .. } => "backup.restore",
            Action::ValidateData {} => "data.validate",
        }
    }

    /// The region the action touches, if any (checked against the topology when planning).
    pub fn region(&self) -> Option<&str> {
        match self {
            Action::Scale { region, .. }
            | Action::WaitReady { region }
            | Action::PodsReady { region }
            | Action::IsolateNetwork { region, .. }
            | Action::RemoveNetworkPolicy { region, .. }
            | Action::ApplyConfigMap { region, .. }
            | Action::DeleteConfigMap { region, .. }
            | Action::SetImage { region, .. }
            | Action::WaitRollout { region }
            | Action::RestartRollout { region }
            | Action::PromoteDatabase { region }
            | Action::PointDns { region }
            | Action::CheckHealth { region } => Some(region),
            _ => None,
        }
    }

    /// What the action does to which object, with every target resolved: the part of a plan line
    /// that does not depend on current state.
    pub fn describe(&self, topo: &Topology) -> String {
        let sts = |region: &str| match topo.region(region) {
            Some(r) => format!(
                "statefulset {}/{} (context {})",
                r.namespace, r.statefulset, r.kube_context
            ),
            None => format!("statefulset in unknown region {region}"),
        };
        let ns = |region: &str| match topo.region(region) {
            Some(r) => format!("namespace {} (context {})", r.namespace, r.kube_context),
            None => format!("unknown region {region}"),
        };
        match self {
            Action::Scale { region, replicas } => {
                format!("scale {} to {replicas} replicas", sts(region))
            }
            Action::WaitReady { region } => {
                format!("wait until every pod of {} is ready", sts(region))
            }
            Action::PodsReady { region } => format!("read pod readiness of {}", sts(region)),
            Action::IsolateNetwork { region, name } => {
                format!(
                    "apply deny-all NetworkPolicy {name} on pods app=erlmcp in {}",
                    ns(region)
                )
            }
            Action::RemoveNetworkPolicy { region, name } => {
                format!("delete NetworkPolicy {name} in {}", ns(region))
            }
            Action::ApplyConfigMap { region, name, data } => {
                let kv: Vec<String> = data.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!(
                    "apply ConfigMap {name} {{{}}} in {}",
                    kv.join(", "),
                    ns(region)
                )
            }
            Action::DeleteConfigMap { region, name } => {
                format!("delete ConfigMap {name} in {}", ns(region))
            }
            Action::SetImage { region, version } => {
                format!("set image of {} to {}:{version}", sts(region), topo.image)
            }
            Action::WaitRollout { region } => format!("wait for the rollout of {}", sts(region)),
            Action::RestartRollout { region } => {
                format!("restart the pods of {} (rolling)", sts(region))
            }
            Action::PromoteDatabase { region } => {
                format!("promote the PostgreSQL standby in {region} (SELECT pg_promote())")
            }
            Action::PointDns { region } => {
                let target = topo
                    .region(region)
                    .map(|r| r.dns_target.as_str())
                    .unwrap_or("?");
                format!(
                    "UPSERT Route53 record {} in zone {} -> {region} ({target})",
                    topo.record_name, topo.hosted_zone_id
                )
            }
            Action::CheckDns {} => format!("check that {} resolves", topo.record_name),
            Action::CheckHealth { region } => {
                let url = topo
                    .region(region)
                    .map(|r| r.health_url.as_str())
                    .unwrap_or("?");
                format!("check health of {region} (GET {url})")
            }
            Action::CheckAllRegions {} => {
                format!("check health of every region ({})", topo.names().join(", "))
            }
            Action::Page { summary } => format!("page on-call: {summary}"),
            Action::StatusPage { state, message } => {
                format!("set status page to {state}: {message}")
            }
            Action::Webhook { hook, message } => format!("call the {hook} hook: {message}"),
            Action::VerifyBackups {} => "verify backup integrity".to_string(),
            Action::RestoreBackup { point } => format!("restore the database from backup {point}"),
            Action::ValidateData {} => "validate the restored data".to_string(),
        }
    }
}

/// What an executor reads of the current state for a plan line: the value the action changes,
/// before and after, where that can be known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    pub from: Option<String>,
    pub to: Option<String>,
    /// Concrete values chosen at planning time (`version: previous` -> `3.0.1`).
    pub resolved: Option<Action>,
}

/// How an infrastructure call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// Worth retrying (throttling, a dropped connection, a 5xx).
    Transient,
    /// Retrying will not help (403, 404, a conflict, bad input).
    Permanent,
    /// The step ran out of time; the state is whatever it was when time ran out.
    Timeout,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecError {
    pub kind: FailureKind,
    /// The remote system's own message, kept whole.
    pub message: String,
}

impl ExecError {
    pub fn transient(m: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Transient,
            message: m.into(),
        }
    }
    pub fn permanent(m: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Permanent,
            message: m.into(),
        }
    }
    pub fn timeout(m: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Timeout,
            message: m.into(),
        }
    }
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExecError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Simulated,
    DryRun,
    Live,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Simulated => "simulated",
            Mode::DryRun => "dry-run",
            Mode::Live => "live",
        }
    }
}

#[async_trait::async_trait]
pub trait Executor: Send + Sync {
    fn mode(&self) -> Mode;

    /// Reads the current state an action would change. Never changes anything.
    async fn observe(&self, action: &Action) -> Result<Observation, ExecError>;

    /// Carries the action out, returning what happened in a line for the timeline.
    async fn apply(&self, action: &Action) -> Result<String, ExecError>;
}
