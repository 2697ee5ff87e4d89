//! Reading playbook files: YAML into raw structs (with source lines), then checked into `Playbook`s.
//! Every problem is reported with its file and line, all of them at once.

use super::template::{placeholders, render};
use super::{Param, ParamType, Playbook, Step};
use crate::approval::Policy;
use crate::executor::{Action, step_kind};
use crate::severity::Severity;
use crate::topology::Topology;
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::fmt;

/// The playbooks that ship with the bot, compiled in so the binary runs from anywhere.
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    (
        "p0-outage.yaml",
        include_str!("../../../playbooks/p0-outage.yaml"),
    ),
    (
        "security-isolation.yaml",
        include_str!("../../../playbooks/security-isolation.yaml"),
    ),
    (
        "data-corruption.yaml",
        include_str!("../../../playbooks/data-corruption.yaml"),
    ),
    (
        "failover.yaml",
        include_str!("../../../playbooks/failover.yaml"),
    ),
    (
        "failback.yaml",
        include_str!("../../../playbooks/failback.yaml"),
    ),
    (
        "rollback.yaml",
        include_str!("../../../playbooks/rollback.yaml"),
    ),
    ("scale.yaml", include_str!("../../../playbooks/scale.yaml")),
    (
        "read-only.yaml",
        include_str!("../../../playbooks/read-only.yaml"),
    ),
];

/// Placeholders every playbook may use besides its parameters.
pub const BUILTIN_VARS: &[&str] = &["incident", "title", "severity", "primary"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    name: Spanned<String>,
    description: String,
    #[serde(default)]
    runbook: String,
    severities: Spanned<Vec<String>>,
    #[serde(default)]
    by_severity: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    parameters: Vec<Spanned<RawParam>>,
    #[serde(default)]
    approval: Option<Spanned<RawApproval>>,
    steps: Spanned<Vec<Spanned<RawStep>>>,
    #[serde(default)]
    offer: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    default: Option<Value>,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApproval {
    #[serde(default = "one")]
    approvals: u32,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    expiry: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: String,
    kind: Spanned<String>,
    #[serde(default)]
    with: BTreeMap<String, Value>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    changes_state: Option<bool>,
    #[serde(default)]
    idempotent: Option<bool>,
    #[serde(default)]
    retries: Option<u32>,
    #[serde(default)]
    when: Option<String>,
}

/// Parses `30s`, `5m`, `2h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, mul) = match s.char_indices().last()? {
        (i, 's') => (&s[..i], 1),
        (i, 'm') => (&s[..i], 60),
        (i, 'h') => (&s[..i], 3600),
        _ => (s, 1),
    };
    let n: i64 = num.trim().parse().ok()?;
    // Anything longer than a year is a mistake, and would overflow time arithmetic later.
    n.checked_mul(mul)
        .filter(|&secs| n > 0 && secs <= MAX_DURATION_SECONDS)
}

/// The longest duration a playbook or setting may give (a year).
pub const MAX_DURATION_SECONDS: i64 = 366 * 24 * 3600;

const DEFAULT_STEP_TIMEOUT: i64 = 300;

/// Parses and checks one playbook file. `file` names it in errors.
pub fn parse_file(file: &str, text: &str, topo: &Topology) -> Result<Playbook, Vec<LoadError>> {
    let raw: RawPlaybook = serde_saphyr::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line() as usize).unwrap_or(0);
        // The library's message is precise; keep its first line (the rest is a source excerpt).
        let msg = e.to_string();
        let first = msg.lines().next().unwrap_or("invalid YAML").to_string();
        vec![LoadError {
            file: file.to_string(),
            line,
            message: first,
        }]
    })?;
    let mut errors = Vec::new();
    let mut fail = |line: u64, message: String| {
        errors.push(LoadError {
            file: file.to_string(),
            line: line as usize,
            message,
        })
    };

    let name = raw.name.value.clone();
    if !regex::Regex::new(r"^[a-z][a-z0-9-]*$")
        .expect("static regex")
        .is_match(&name)
    {
        fail(
            raw.name.referenced.line(),
            format!("playbook name `{name}` must be lowercase letters, digits and dashes"),
        );
    }

    let mut severities = Vec::new();
    for s in &raw.severities.value {
        match Severity::parse(s) {
            Some(sev) => severities.push(sev),
            None => fail(
                raw.severities.referenced.line(),
                format!("bad severity `{s}`: use p0, p1, p2 or p3"),
            ),
        }
    }
    if raw.severities.value.is_empty() {
        fail(
            raw.severities.referenced.line(),
            "severities: list at least one of p0, p1, p2, p3".into(),
        );
    }

    let mut by_severity = BTreeMap::new();
    for (k, vars) in &raw.by_severity {
        match Severity::parse(k) {
            Some(s) => {
                by_severity.insert(s, vars.clone());
            }
            None => fail(
                raw.severities.referenced.line(),
                format!("by_severity: bad severity `{k}`: use p0, p1, p2 or p3"),
            ),
        }
    }

    let mut params = Vec::new();
    for p in &raw.parameters {
        let line = p.referenced.line();
        let rp = &p.value;
        let ty = match rp.ty.as_str() {
            "region" => ParamType::Region,
            "dr-region" => ParamType::DrRegion,
            "int" => ParamType::Int,
            "bool" => ParamType::Bool,
            "string" => ParamType::String,
            "version" => ParamType::Version,
            other => {
                fail(
                    line,
                    format!(
                        "parameter `{}`: unknown type `{other}` (use region, dr-region, int, bool, string or version)",
                        rp.name
                    ),
                );
                continue;
            }
        };
        let default = rp.default.as_ref().map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        if let Some(d) = &default
            && let Err(e) = super::plan::check_param_value(ty, d, topo)
        {
            fail(line, format!("parameter `{}`: default {e}", rp.name));
        }
        if params.iter().any(|x: &Param| x.name == rp.name) {
            fail(line, format!("parameter `{}` is declared twice", rp.name));
        }
        params.push(Param {
            name: rp.name.clone(),
            ty,
            default,
            description: rp.description.clone(),
        });
    }

    let mut policy = Policy::default();
    if let Some(a) = &raw.approval {
        let line = a.referenced.line();
        if a.value.approvals == 0 {
            fail(line, "approval.approvals must be at least 1: every infrastructure change needs a second person".into());
        }
        policy.approvals = a.value.approvals.max(1);
        policy.groups = a.value.groups.clone();
        if let Some(e) = &a.value.expiry {
            match parse_duration(e) {
                Some(s) => policy.expiry_seconds = s,
                None => fail(
                    line,
                    format!("approval.expiry `{e}` is not a duration (like 15m; at most a year)"),
                ),
            }
        }
    }

    // Values placeholders may take, for checking steps now: a sample of each parameter's type.
    let sample_region = topo
        .regions
        .first()
        .map(|r| r.name.clone())
        .unwrap_or_default();
    let mut vars: BTreeMap<String, Value> = BTreeMap::new();
    for b in BUILTIN_VARS {
        vars.insert(
            b.to_string(),
            Value::String(if *b == "primary" {
                sample_region.clone()
            } else {
                "x".into()
            }),
        );
    }
    for p in &params {
        let v = match p.ty {
            ParamType::Region | ParamType::DrRegion => Value::String(sample_region.clone()),
            ParamType::Int => Value::from(1),
            ParamType::Bool => Value::Bool(true),
            ParamType::String => Value::String("x".into()),
            ParamType::Version => Value::String("1.0.0".into()),
        };
        vars.insert(p.name.clone(), v);
    }
    // A `sev.X` variable must exist for every severity the playbook allows.
    let sev_keys: Vec<String> = by_severity
        .values()
        .flat_map(|m| m.keys().cloned())
        .collect();
    for key in &sev_keys {
        for s in &severities {
            if !by_severity.get(s).is_some_and(|m| m.contains_key(key)) {
                fail(
                    raw.severities.referenced.line(),
                    format!("by_severity: `{key}` has no value for {s}"),
                );
            }
        }
        vars.insert(format!("sev.{key}"), Value::String("x".into()));
    }

    let mut steps = Vec::new();
    if raw.steps.value.is_empty() {
        fail(
            raw.steps.referenced.line(),
            "steps: a playbook needs at least one step".into(),
        );
    }
    for s in &raw.steps.value {
        let line = s.referenced.line();
        let rs = &s.value;
        let kind_line = rs.kind.referenced.line();
        let Some(kind) = step_kind(&rs.kind.value) else {
            let known: Vec<&str> = crate::executor::STEP_KINDS.iter().map(|k| k.name).collect();
            fail(
                kind_line,
                format!(
                    "step `{}`: unknown step kind `{}` (known: {})",
                    rs.name,
                    rs.kind.value,
                    known.join(", ")
                ),
            );
            continue;
        };
        let with = Value::Object(rs.with.clone().into_iter().collect());
        for ph in placeholders(&with) {
            if !vars.contains_key(&ph) {
                fail(
                    line,
                    format!(
                        "step `{}`: `{{{{{ph}}}}}` is not a parameter of this playbook",
                        rs.name
                    ),
                );
            }
        }
        if let Ok(Value::Object(mut probe)) = render(&with, &vars) {
            probe.insert("kind".into(), Value::String(kind.name.to_string()));
            match serde_json::from_value::<Action>(Value::Object(probe)) {
                Ok(action) => {
                    if let Some(r) = action.region()
                        && topo.region(r).is_none()
                    {
                        fail(
                            line,
                            format!("step `{}`: {}", rs.name, topo.unknown_region_message(r)),
                        );
                    }
                }
                Err(e) => fail(
                    line,
                    format!(
                        "step `{}` ({}): {}",
                        rs.name,
                        kind.name,
                        e.to_string()
                            .replace("missing field", "missing argument")
                            .replace("unknown field", "unknown argument")
                    ),
                ),
            }
        }
        let timeout_seconds = match &rs.timeout {
            Some(t) => parse_duration(t).unwrap_or_else(|| {
                fail(
                    line,
                    format!(
                        "step `{}`: timeout `{t}` is not a duration (like 30s or 10m; at most a year)",
                        rs.name
                    ),
                );
                DEFAULT_STEP_TIMEOUT
            }),
            None => DEFAULT_STEP_TIMEOUT,
        };
        if rs.changes_state == Some(false) && kind.changes_state {
            fail(
                line,
                format!(
                    "step `{}`: {} changes state; it cannot be declared changes_state: false",
                    rs.name, kind.name
                ),
            );
        }
        if rs.idempotent == Some(true) && !kind.idempotent {
            fail(
                line,
                format!(
                    "step `{}`: {} is not safe to re-run; it cannot be declared idempotent",
                    rs.name, kind.name
                ),
            );
        }
        if let Some(w) = &rs.when {
            let p = w.trim_start_matches('!');
            if !params
                .iter()
                .any(|x| x.name == p && x.ty == ParamType::Bool)
            {
                fail(
                    line,
                    format!("step `{}`: when `{w}` must name a bool parameter", rs.name),
                );
            }
        }
        steps.push(Step {
            name: rs.name.clone(),
            kind: kind.name.to_string(),
            with: rs.with.clone(),
            timeout_seconds,
            changes_state: rs.changes_state.unwrap_or(kind.changes_state),
            idempotent: rs.idempotent.unwrap_or(kind.idempotent),
            retries: rs.retries.unwrap_or(if kind.idempotent { 2 } else { 0 }),
            when: rs.when.clone(),
            line: line as usize,
        });
    }

    if errors.is_empty() {
        Ok(Playbook {
            name,
            description: raw.description,
            runbook: raw.runbook,
            severities,
            by_severity,
            params,
            policy,
            steps,
            offer: raw.offer,
            file: file.to_string(),
        })
    } else {
        Err(errors)
    }
}

/// The playbooks in force: the built-ins, then operators' files (which may replace a built-in).
#[derive(Clone, Debug, Default)]
pub struct PlaybookSet {
    pub playbooks: BTreeMap<String, Playbook>,
}

impl PlaybookSet {
    pub fn builtin(topo: &Topology) -> Result<Self, Vec<LoadError>> {
        let mut set = Self::default();
        let files: Vec<(String, String)> = BUILTIN_FILES
            .iter()
            .map(|(n, t)| (format!("builtin:{n}"), t.to_string()))
            .collect();
        set.add_files(&files, topo)?;
        Ok(set)
    }

    /// Adds files (name, text); all errors of all files are returned together.
    pub fn add_files(
        &mut self,
        files: &[(String, String)],
        topo: &Topology,
    ) -> Result<(), Vec<LoadError>> {
        let mut errors = Vec::new();
        for (name, text) in files {
            match parse_file(name, text, topo) {
                Ok(p) => {
                    self.playbooks.insert(p.name.clone(), p);
                }
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    pub fn get(&self, name: &str) -> Option<&Playbook> {
        self.playbooks.get(name)
    }

    /// Playbooks allowed under a severity, for suggestions when an incident is declared.
    pub fn for_severity(&self, s: Severity) -> Vec<&Playbook> {
        self.playbooks
            .values()
            .filter(|p| p.severities.contains(&s))
            .collect()
    }
}
