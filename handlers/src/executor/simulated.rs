//! A simulated erlmcp deployment that changes as steps run: the runbook's six regions with their
//! pods, PostgreSQL primaries and standbys, the Route53 record, network policies, config maps,
//! image versions and backups. Drills and tests run playbooks against it.

use super::{Action, ExecError, Executor, Mode, Observation};
use crate::topology::{RegionRole, Topology};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRegion {
    pub replicas: u32,
    pub ready: u32,
    pub db_in_recovery: bool,
    /// Whether the region's infrastructure answers at all (a drill can take it down).
    pub reachable: bool,
    pub image_version: String,
    /// Versions rolled out before, oldest first; `previous` is the last one.
    pub image_history: Vec<String>,
    pub network_policies: BTreeSet<String>,
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    pub restarts: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimBackup {
    pub name: String,
    pub passed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct World {
    pub regions: BTreeMap<String, SimRegion>,
    /// The region `erlmcp.io` currently points at.
    pub dns_region: String,
    pub status_page: String,
    pub pages: Vec<String>,
    pub webhooks: Vec<(String, String)>,
    pub backups: Vec<SimBackup>,
    pub restored_from: Option<String>,
    /// Every change applied, in order: what a test or a drill can assert on.
    pub applied: Vec<String>,
}

impl World {
    /// The deployment of runbook §1.3 on a normal day.
    pub fn from_topology(topo: &Topology) -> Self {
        let regions = topo
            .regions
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    SimRegion {
                        replicas: r.replicas,
                        ready: r.replicas,
                        db_in_recovery: r.role.is_dr(),
                        reachable: true,
                        image_version: "3.0.2".into(),
                        image_history: vec!["3.0.0".into(), "3.0.1".into()],
                        network_policies: BTreeSet::new(),
                        config_maps: BTreeMap::new(),
                        restarts: 0,
                    },
                )
            })
            .collect();
        let dns_region = topo
            .regions
            .iter()
            .find(|r| r.role == RegionRole::Primary)
            .map(|r| r.name.clone())
            .unwrap_or_default();
        Self {
            regions,
            dns_region,
            status_page: "operational".into(),
            pages: Vec::new(),
            webhooks: Vec::new(),
            backups: vec![
                SimBackup {
                    name: "backup-20261127-1800".into(),
                    passed: true,
                },
                SimBackup {
                    name: "backup-20261128-0000".into(),
                    passed: true,
                },
                SimBackup {
                    name: "backup-20261128-0600".into(),
                    passed: false,
                },
            ],
            restored_from: None,
            applied: Vec::new(),
        }
    }

    fn healthy(&self, region: &str) -> bool {
        self.regions
            .get(region)
            .is_some_and(|r| r.reachable && r.ready > 0 && !r.db_in_recovery)
    }
}

/// Faults a test or drill arms for the next calls of a step kind.
#[derive(Default)]
struct Faults {
    by_kind: BTreeMap<String, Vec<ExecError>>,
}

/// The simulated executor. Cloning shares the same world.
#[derive(Clone)]
pub struct Simulated {
    topo: Arc<Topology>,
    world: Arc<Mutex<World>>,
    faults: Arc<Mutex<Faults>>,
    /// Successful applies per step kind.
    applies: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl Simulated {
    pub fn new(topo: Topology) -> Self {
        let world = World::from_topology(&topo);
        Self {
            topo: Arc::new(topo),
            world: Arc::new(Mutex::new(world)),
            faults: Arc::default(),
            applies: Arc::default(),
        }
    }

    pub fn world(&self) -> World {
        self.world.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        f(&mut self.world.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The next `apply` of `kind` fails with `error` (queue several for several calls).
    pub fn fail_next(&self, kind: &str, error: ExecError) {
        let mut f = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        f.by_kind.entry(kind.to_string()).or_default().push(error);
    }

    /// How many times `apply` succeeded, all kinds together (failed calls are not counted).
    pub fn apply_count(&self) -> u64 {
        self.applies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }

    /// How many times `apply` of one step kind succeeded.
    pub fn applies_of(&self, kind: &str) -> u64 {
        self.applies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(kind)
            .copied()
            .unwrap_or(0)
    }

    fn take_fault(&self, kind: &str) -> Option<ExecError> {
        let mut f = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        let q = f.by_kind.get_mut(kind)?;
        if q.is_empty() {
            None
        } else {
            Some(q.remove(0))
        }
    }

    fn region<'w>(&self, world: &'w mut World, name: &str) -> Result<&'w mut SimRegion, ExecError> {
        let region = world
            .regions
            .get_mut(name)
            .ok_or_else(|| ExecError::permanent(self.topo.unknown_region_message(name)))?;
        if !region.reachable {
            return Err(ExecError::transient(format!(
                "Unable to connect to the server: dial tcp: lookup api.{name}.erlmcp.internal: i/o timeout"
            )));
        }
        Ok(region)
    }
}

fn obs(from: impl Into<String>, to: impl Into<String>) -> Observation {
    Observation {
        from: Some(from.into()),
        to: Some(to.into()),
        resolved: None,
    }
}

fn last_good_backup(world: &World) -> Option<String> {
    world
        .backups
        .iter()
        .rev()
        .find(|b| b.passed)
        .map(|b| b.name.clone())
}

#[async_trait::async_trait]
impl Executor for Simulated {
    fn mode(&self) -> Mode {
        Mode::Simulated
    }

    async fn observe(&self, action: &Action) -> Result<Observation, ExecError> {
        let mut guard = self.world.lock().unwrap_or_else(|p| p.into_inner());
        let w = &mut *guard;
        Ok(match action {
            Action::Scale { region, replicas } => {
                let r = self.region(w, region)?;
                obs(
                    format!("{} replicas", r.replicas),
                    format!("{replicas} replicas"),
                )
            }
            Action::IsolateNetwork { region, name } => {
                let r = self.region(w, region)?;
                let present = r.network_policies.contains(name);
                obs(if present { "present" } else { "absent" }, "present")
            }
            Action::RemoveNetworkPolicy { region, name } => {
                let r = self.region(w, region)?;
                obs(
                    if r.network_policies.contains(name) {
                        "present"
                    } else {
                        "absent"
                    },
                    "absent",
                )
            }
            Action::ApplyConfigMap { region, name, data } => {
                let r = self.region(w, region)?;
                let from = match r.config_maps.get(name) {
                    Some(d) => format!("{d:?}"),
                    None => "absent".into(),
                };
                obs(from, format!("{data:?}"))
            }
            Action::DeleteConfigMap { region, name } => {
                let r = self.region(w, region)?;
                obs(
                    if r.config_maps.contains_key(name) {
                        "present"
                    } else {
                        "absent"
                    },
                    "absent",
                )
            }
            Action::SetImage { region, version } => {
                let r = self.region(w, region)?;
                let target = if version == "previous" {
                    r.image_history.last().cloned().ok_or_else(|| {
                        ExecError::permanent(format!(
                            "{region} has no previous version to roll back to"
                        ))
                    })?
                } else {
                    version.clone()
                };
                Observation {
                    from: Some(r.image_version.clone()),
                    to: Some(target.clone()),
                    resolved: Some(Action::SetImage {
                        region: region.clone(),
                        version: target,
                    }),
                }
            }
            Action::PromoteDatabase { region } => {
                let r = self.region(w, region)?;
                obs(
                    if r.db_in_recovery {
                        "standby (in recovery)"
                    } else {
                        "primary (not in recovery)"
                    },
                    "primary",
                )
            }
            Action::PointDns { region } => obs(w.dns_region.clone(), region.clone()),
            Action::StatusPage { state, .. } => obs(w.status_page.clone(), state.clone()),
            Action::RestoreBackup { point } => {
                let chosen = if point == "last-good" {
                    last_good_backup(w)
                        .ok_or_else(|| ExecError::permanent("no backup passed verification"))?
                } else {
                    point.clone()
                };
                if !w.backups.iter().any(|b| b.name == chosen) {
                    return Err(ExecError::permanent(format!(
                        "backup {chosen} does not exist"
                    )));
                }
                Observation {
                    from: w.restored_from.clone().or(Some("live data".into())),
                    to: Some(chosen.clone()),
                    resolved: Some(Action::RestoreBackup { point: chosen }),
                }
            }
            // Reads and notifications: nothing to compare.
            _ => Observation::default(),
        })
    }

    async fn apply(&self, action: &Action) -> Result<String, ExecError> {
        if let Some(fault) = self.take_fault(action.kind()) {
            return Err(fault);
        }
        let result = self.apply_to_world(action);
        if result.is_ok() {
            *self
                .applies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(action.kind().to_string())
                .or_default() += 1;
        }
        result
    }
}

impl Simulated {
    fn apply_to_world(&self, action: &Action) -> Result<String, ExecError> {
        let mut guard = self.world.lock().unwrap_or_else(|p| p.into_inner());
        let w = &mut *guard;
        let done = match action {
            Action::Scale { region, replicas } => {
                let r = self.region(w, region)?;
                let from = r.replicas;
                r.replicas = *replicas;
                // Scale-down is immediate; scale-up becomes ready when waited for.
                r.ready = r.ready.min(*replicas);
                format!("{region}: replicas {from} -> {replicas}")
            }
            Action::WaitReady { region } => {
                let r = self.region(w, region)?;
                r.ready = r.replicas;
                format!("{region}: {}/{} pods ready", r.ready, r.replicas)
            }
            Action::PodsReady { region } => {
                let r = self.region(w, region)?;
                return Ok(format!("{region}: {}/{} pods ready", r.ready, r.replicas));
            }
            Action::IsolateNetwork { region, name } => {
                self.region(w, region)?
                    .network_policies
                    .insert(name.clone());
                format!(
                    "{region}: NetworkPolicy {name} applied (deny all ingress and egress for app=erlmcp)"
                )
            }
            Action::RemoveNetworkPolicy { region, name } => {
                self.region(w, region)?.network_policies.remove(name);
                format!("{region}: NetworkPolicy {name} deleted")
            }
            Action::ApplyConfigMap { region, name, data } => {
                self.region(w, region)?
                    .config_maps
                    .insert(name.clone(), data.clone());
                format!("{region}: ConfigMap {name} applied")
            }
            Action::DeleteConfigMap { region, name } => {
                self.region(w, region)?.config_maps.remove(name);
                format!("{region}: ConfigMap {name} deleted")
            }
            Action::SetImage { region, version } => {
                let r = self.region(w, region)?;
                let target = if version == "previous" {
                    r.image_history
                        .last()
                        .cloned()
                        .ok_or_else(|| ExecError::permanent("no previous version"))?
                } else {
                    version.clone()
                };
                let from = std::mem::replace(&mut r.image_version, target.clone());
                r.image_history.retain(|v| v != &target);
                r.image_history.push(from.clone());
                r.ready = 0;
                format!("{region}: image {from} -> {target}")
            }
            Action::WaitRollout { region } => {
                let r = self.region(w, region)?;
                r.ready = r.replicas;
                format!(
                    "{region}: rollout complete, {}/{} ready on {}",
                    r.ready, r.replicas, r.image_version
                )
            }
            Action::RestartRollout { region } => {
                let r = self.region(w, region)?;
                r.restarts += 1;
                format!("{region}: rolling restart triggered")
            }
            Action::PromoteDatabase { region } => {
                let r = self.region(w, region)?;
                if !r.db_in_recovery {
                    return Err(ExecError::permanent(format!(
                        "{region}: pg_promote() failed: server is not in standby mode"
                    )));
                }
                r.db_in_recovery = false;
                format!("{region}: PostgreSQL promoted; pg_is_in_recovery() = false")
            }
            Action::PointDns { region } => {
                self.region(w, region)?;
                let from = std::mem::replace(&mut w.dns_region, region.clone());
                format!("{}: {from} -> {region} (INSYNC)", self.topo.record_name)
            }
            Action::CheckDns {} => {
                if w.healthy(&w.dns_region.clone()) {
                    return Ok(format!(
                        "{} -> {} (serving)",
                        self.topo.record_name, w.dns_region
                    ));
                }
                return Err(ExecError::permanent(format!(
                    "{} points at {}, which is not serving",
                    self.topo.record_name, w.dns_region
                )));
            }
            Action::CheckHealth { region } => {
                let r = self.region(w, region)?;
                let (ready, replicas, in_recovery) = (r.ready, r.replicas, r.db_in_recovery);
                if w.healthy(region) {
                    return Ok(format!(
                        "{region}: healthy ({ready}/{replicas} ready, database primary)"
                    ));
                }
                return Err(ExecError::transient(format!(
                    "{region}: /health answered 503 ({ready}/{replicas} ready, database {})",
                    if in_recovery {
                        "in recovery"
                    } else {
                        "primary"
                    }
                )));
            }
            Action::CheckAllRegions {} => {
                let lines: Vec<String> = w
                    .regions
                    .iter()
                    .map(|(name, r)| {
                        let state = if !r.reachable {
                            "UNREACHABLE".to_string()
                        } else {
                            format!("{}/{} ready", r.ready, r.replicas)
                        };
                        format!("{name}: {state}")
                    })
                    .collect();
                return Ok(lines.join("; "));
            }
            Action::Page { summary } => {
                w.pages.push(summary.clone());
                format!("on-call paged: {summary}")
            }
            Action::StatusPage { state, message } => {
                w.status_page = state.clone();
                format!("status page: {state} ({message})")
            }
            Action::Webhook { hook, message } => {
                w.webhooks.push((hook.clone(), message.clone()));
                format!("{hook} hook called")
            }
            Action::VerifyBackups {} => {
                let passed: Vec<&str> = w
                    .backups
                    .iter()
                    .filter(|b| b.passed)
                    .map(|b| b.name.as_str())
                    .collect();
                return Ok(format!(
                    "{} of {} backups pass verification; last good: {}",
                    passed.len(),
                    w.backups.len(),
                    passed.last().unwrap_or(&"none")
                ));
            }
            Action::RestoreBackup { point } => {
                if !w.backups.iter().any(|b| &b.name == point && b.passed) {
                    return Err(ExecError::permanent(format!(
                        "backup {point} is missing or failed verification"
                    )));
                }
                w.restored_from = Some(point.clone());
                format!("database restored from {point}")
            }
            Action::ValidateData {} => {
                return match &w.restored_from {
                    Some(p) => Ok(format!("data validation passed on data restored from {p}")),
                    None => Ok("data validation passed on live data".to_string()),
                };
            }
        };
        w.applied.push(done.clone());
        Ok(done)
    }
}
