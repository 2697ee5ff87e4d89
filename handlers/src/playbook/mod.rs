//! Playbooks as data: YAML files loaded and validated with file and line in every error, then
//! resolved against the current state into the exact plan that people approve.

mod load;
mod plan;
mod template;

pub use load::{BUILTIN_FILES, LoadError, PlaybookSet, parse_duration, parse_file};
pub use plan::{Plan, PlanContext, PlanError, PlannedStep, make_plan};

use crate::approval::Policy;
use crate::severity::Severity;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    Region,
    /// A disaster-recovery region (hot or cold DR): what a failover may target.
    DrRegion,
    Int,
    Bool,
    String,
    Version,
}

impl ParamType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::Region => "region",
            ParamType::DrRegion => "dr-region",
            ParamType::Int => "int",
            ParamType::Bool => "bool",
            ParamType::String => "string",
            ParamType::Version => "version",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: String,
    pub ty: ParamType,
    pub default: Option<String>,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub name: String,
    pub kind: String,
    /// Arguments, with `{{param}}` templates still in them.
    pub with: BTreeMap<String, Value>,
    pub timeout_seconds: i64,
    pub changes_state: bool,
    pub idempotent: bool,
    pub retries: u32,
    /// Runs only if this bool parameter is true (`!name`: only if false).
    pub when: Option<String>,
    pub line: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Playbook {
    pub name: String,
    pub description: String,
    /// Runbook section it follows, e.g. `§6.3`.
    pub runbook: String,
    pub severities: Vec<Severity>,
    /// Values that depend on the incident's severity, available to templates as `{{sev.NAME}}`.
    pub by_severity: BTreeMap<Severity, BTreeMap<String, String>>,
    pub params: Vec<Param>,
    pub policy: Policy,
    pub steps: Vec<Step>,
    /// What to suggest once the run is done (the runbook's next decision, e.g. "offer failover").
    pub offer: Option<String>,
    /// Where it was loaded from (`builtin:failover.yaml` or a path).
    pub file: String,
}

impl Playbook {
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }

    pub fn usage(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| match &p.default {
                Some(d) => format!("[{}={}]", p.name, d),
                None => format!("{}=<{}>", p.name, p.ty.as_str()),
            })
            .collect();
        format!("/erlmcp run {} {}", self.name, params.join(" "))
            .trim_end()
            .to_string()
    }
}

#[cfg(test)]
mod tests;
