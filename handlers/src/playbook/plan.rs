//! Resolving a playbook into the exact plan: parameters checked, templates filled, every target
//! named, current and new values read through the executor. The plan's text and its SHA-256
//! digest are what the two-person rule approves.

use super::template::render;
use super::{ParamType, Playbook};
use crate::executor::{Action, ExecError, Executor};
use crate::severity::Severity;
use crate::topology::Topology;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedStep {
    pub idx: i64,
    pub name: String,
    pub action: Action,
    /// The line people read and approve.
    pub line: String,
    pub changes_state: bool,
    pub idempotent: bool,
    pub timeout_seconds: i64,
    pub retries: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub playbook: String,
    pub params: BTreeMap<String, String>,
    pub severity: Severity,
    pub steps: Vec<PlannedStep>,
    pub text: String,
    pub digest: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// The request itself is wrong (bad parameter, severity not allowed): the message says how to fix it.
    Invalid(String),
    /// Reading the current state failed.
    Observe { step: String, error: ExecError },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::Invalid(m) => f.write_str(m),
            PlanError::Observe { step, error } => write!(
                f,
                "could not read the current state for step `{step}`: {error}"
            ),
        }
    }
}

/// Checks a parameter value against its type, returning it normalised.
pub(crate) fn check_param_value(
    ty: ParamType,
    value: &str,
    topo: &Topology,
) -> Result<Value, String> {
    match ty {
        ParamType::Region => {
            if topo.region(value).is_some() {
                Ok(Value::String(value.to_string()))
            } else {
                Err(topo.unknown_region_message(value))
            }
        }
        ParamType::DrRegion => {
            use crate::topology::RegionRole;
            let dr: Vec<&str> = topo
                .regions
                .iter()
                .filter(|r| matches!(r.role, RegionRole::HotDr | RegionRole::ColdDr))
                .map(|r| r.name.as_str())
                .collect();
            match topo.region(value) {
                Some(r) if matches!(r.role, RegionRole::HotDr | RegionRole::ColdDr) => {
                    Ok(Value::String(value.to_string()))
                }
                Some(r) => Err(format!(
                    "{value} is the {} region, not a disaster-recovery one; fail over to {}",
                    r.role.describe(),
                    dr.join(" or ")
                )),
                None => Err(topo.unknown_region_message(value)),
            }
        }
        ParamType::Int => value
            .parse::<u32>()
            .map(Value::from)
            .map_err(|_| format!("`{value}` is not a whole number")),
        ParamType::Bool => match value.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => Ok(Value::Bool(true)),
            "false" | "no" | "off" => Ok(Value::Bool(false)),
            _ => Err(format!("`{value}` is not true or false")),
        },
        ParamType::String => Ok(Value::String(value.to_string())),
        ParamType::Version => {
            let v = value.trim_start_matches('v');
            let ok = v == "previous"
                || regex::Regex::new(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")
                    .expect("static regex")
                    .is_match(v);
            if ok {
                Ok(Value::String(v.to_string()))
            } else {
                Err(format!(
                    "`{value}` is not a version like 3.0.1 (or `previous`)"
                ))
            }
        }
    }
}

/// What the plan is made for: the incident's facts that templates may use.
pub struct PlanContext<'a> {
    pub incident: &'a str,
    pub title: &'a str,
    pub severity: Severity,
}

/// The key of the object an action changes, so a later step's "from" is the earlier step's "to".
fn object_key(a: &Action) -> Option<String> {
    Some(match a {
        Action::Scale { region, .. } => format!("replicas/{region}"),
        Action::SetImage { region, .. } => format!("image/{region}"),
        Action::PointDns { .. } => "dns".into(),
        Action::PromoteDatabase { region } => format!("db/{region}"),
        Action::StatusPage { .. } => "status-page".into(),
        Action::IsolateNetwork { region, name } | Action::RemoveNetworkPolicy { region, name } => {
            format!("netpol/{region}/{name}")
        }
        Action::ApplyConfigMap { region, name, .. } | Action::DeleteConfigMap { region, name } => {
            format!("cm/{region}/{name}")
        }
        _ => return None,
    })
}

pub async fn make_plan(
    pb: &Playbook,
    given: &[(String, String)],
    ctx: PlanContext<'_>,
    topo: &Topology,
    executor: &dyn Executor,
) -> Result<Plan, PlanError> {
    if !pb.severities.contains(&ctx.severity) {
        let allowed: Vec<String> = pb.severities.iter().map(|s| s.to_string()).collect();
        return Err(PlanError::Invalid(format!(
            "playbook `{}` may not run under {}: it is for {} incidents. Change the severity first (`/erlmcp sev {}`) if that is right.",
            pb.name,
            ctx.severity,
            allowed.join(", "),
            pb.severities.first().map(|s| s.as_str()).unwrap_or("p0")
        )));
    }
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    let mut vars: BTreeMap<String, Value> = BTreeMap::new();
    for (k, v) in given {
        let Some(p) = pb.param(k) else {
            let known: Vec<&str> = pb.params.iter().map(|p| p.name.as_str()).collect();
            return Err(PlanError::Invalid(format!(
                "playbook `{}` has no parameter `{k}` (it takes: {}). Usage: `{}`",
                pb.name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                },
                pb.usage()
            )));
        };
        let value = check_param_value(p.ty, v, topo).map_err(|e| {
            PlanError::Invalid(format!(
                "parameter `{k}` of playbook `{}`: {e}. Usage: `{}`",
                pb.name,
                pb.usage()
            ))
        })?;
        params.insert(k.clone(), v.clone());
        vars.insert(k.clone(), value);
    }
    for p in &pb.params {
        if vars.contains_key(&p.name) {
            continue;
        }
        let Some(d) = &p.default else {
            return Err(PlanError::Invalid(format!(
                "playbook `{}` needs `{}=<{}>` ({}). Usage: `{}`",
                pb.name,
                p.name,
                p.ty.as_str(),
                p.description,
                pb.usage()
            )));
        };
        let value = check_param_value(p.ty, d, topo).map_err(PlanError::Invalid)?;
        params.insert(p.name.clone(), d.clone());
        vars.insert(p.name.clone(), value);
    }
    vars.insert("incident".into(), Value::String(ctx.incident.to_string()));
    vars.insert("title".into(), Value::String(ctx.title.to_string()));
    vars.insert("severity".into(), Value::String(ctx.severity.to_string()));
    vars.insert(
        "primary".into(),
        Value::String(topo.primary().map(|r| r.name.clone()).unwrap_or_default()),
    );
    if let Some(sev_vars) = pb.by_severity.get(&ctx.severity) {
        for (k, v) in sev_vars {
            vars.insert(format!("sev.{k}"), Value::String(v.clone()));
        }
    }

    let mut steps = Vec::new();
    let mut projected: BTreeMap<String, String> = BTreeMap::new();
    for step in &pb.steps {
        if let Some(w) = &step.when {
            let (negate, name) = match w.strip_prefix('!') {
                Some(n) => (true, n),
                None => (false, w.as_str()),
            };
            let on = matches!(vars.get(name), Some(Value::Bool(true)));
            if on == negate {
                continue;
            }
        }
        let mut args = match render(
            &Value::Object(step.with.clone().into_iter().collect()),
            &vars,
        ) {
            Ok(Value::Object(o)) => o,
            Ok(other) => {
                return Err(PlanError::Invalid(format!(
                    "step `{}`: its arguments rendered to {other}, not a mapping",
                    step.name
                )));
            }
            Err(e) => return Err(PlanError::Invalid(format!("step `{}`: {e}", step.name))),
        };
        args.insert("kind".into(), Value::String(step.kind.clone()));
        let action: Action = serde_json::from_value(Value::Object(args))
            .map_err(|e| PlanError::Invalid(format!("step `{}`: {e}", step.name)))?;
        // The same ceiling whichever way a scale is asked for (`scale`, `run scale replicas=…`).
        if let Action::Scale { replicas, .. } = &action
            && *replicas > crate::command::MAX_REPLICAS
        {
            return Err(PlanError::Invalid(format!(
                "step `{}`: {replicas} replicas is more than the limit of {}",
                step.name,
                crate::command::MAX_REPLICAS
            )));
        }
        if let Some(r) = action.region()
            && topo.region(r).is_none()
        {
            return Err(PlanError::Invalid(format!(
                "step `{}`: {}",
                step.name,
                topo.unknown_region_message(r)
            )));
        }
        let observed = executor
            .observe(&action)
            .await
            .map_err(|error| PlanError::Observe {
                step: step.name.clone(),
                error,
            })?;
        let action = observed.resolved.clone().unwrap_or(action);
        let key = object_key(&action);
        let from = key
            .as_ref()
            .and_then(|k| projected.get(k).cloned())
            .or(observed.from.clone());
        if let (Some(k), Some(to)) = (&key, &observed.to) {
            projected.insert(k.clone(), to.clone());
        }
        let idx = steps.len() as i64 + 1;
        let mut line = format!("{idx}. {}: {}", step.name, action.describe(topo));
        if step.changes_state {
            match (&from, &observed.to) {
                (Some(f), Some(t)) if f == t => line.push_str(&format!(" [already {t}]")),
                (Some(f), Some(t)) => line.push_str(&format!(" [{f} -> {t}]")),
                _ => {}
            }
        } else {
            line.push_str(" [read-only]");
        }
        steps.push(PlannedStep {
            idx,
            name: step.name.clone(),
            action,
            line,
            changes_state: step.changes_state,
            idempotent: step.idempotent,
            timeout_seconds: step.timeout_seconds,
            retries: step.retries,
        });
    }

    let param_text: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut text = format!(
        "Playbook {} ({}) under {}, executor {}\nParameters: {}\n",
        pb.name,
        if pb.runbook.is_empty() {
            "operator playbook"
        } else {
            pb.runbook.as_str()
        },
        ctx.severity,
        executor.mode().as_str(),
        if param_text.is_empty() {
            "none".to_string()
        } else {
            param_text.join(" ")
        }
    );
    for s in &steps {
        text.push_str(&s.line);
        text.push('\n');
    }
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    Ok(Plan {
        playbook: pb.name.clone(),
        params,
        severity: ctx.severity,
        steps,
        text,
        digest,
    })
}
