//! The live executor: the same actions the simulated world rehearses, carried out for real on
//! Kubernetes (kube-rs), Route53 (aws-sdk-route53), PostgreSQL (sqlx) and HTTP (reqwest).
//! Every remote failure becomes an `ExecError` carrying the remote system's own message, marked
//! transient (worth a retry) or permanent.

mod http;
mod kube_ops;
mod postgres;
mod route53;

pub use kube_ops::KubeRegion;

use crate::config::{Config, LiveSettings};
use erlmcp_handlers::executor::{Action, ExecError, Executor, Mode, Observation};
use erlmcp_handlers::topology::{RegionRole, Topology};
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct Live {
    pub(crate) topo: Arc<Topology>,
    pub(crate) settings: LiveSettings,
    pub(crate) kube: BTreeMap<String, KubeRegion>,
    pub(crate) route53: aws_sdk_route53::Client,
    pub(crate) http: reqwest::Client,
}

impl Live {
    /// Builds the executor from already-made clients (tests point them at local stand-ins).
    pub fn new(
        topo: Arc<Topology>,
        settings: LiveSettings,
        kube: BTreeMap<String, kube::Client>,
        route53: aws_sdk_route53::Client,
    ) -> Self {
        let kube = kube
            .into_iter()
            .filter_map(|(name, client)| {
                let r = topo.region(&name)?;
                Some((
                    name,
                    KubeRegion::new(
                        client,
                        r.namespace.clone(),
                        r.statefulset.clone(),
                        settings.container.clone(),
                        settings.poll_ms,
                    ),
                ))
            })
            .collect();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(
                settings.health.timeout_seconds.max(1),
            ))
            .user_agent(concat!("erlmcp-bot/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            topo,
            settings,
            kube,
            route53,
            http,
        }
    }

    /// Connects for production: a kube client per region context from the kubeconfig, and the
    /// standard AWS credential chain. Fails naming every missing piece of configuration.
    pub async fn connect(config: &Config) -> Result<Self, crate::error::Error> {
        Self::try_connect(config)
            .await
            .map_err(crate::error::Error::Config)
    }

    async fn try_connect(config: &Config) -> Result<Self, String> {
        let topo = Arc::new(config.topology.clone());
        let mut missing = check_config(config);
        for warning in placeholders(config) {
            tracing::warn!(%warning, "live configuration uses a placeholder");
        }
        let kubeconfig = match &config.live.kubeconfig {
            Some(p) => kube::config::Kubeconfig::read_from(p)
                .map_err(|e| format!("kubeconfig {}: {e}", p.display())),
            None => kube::config::Kubeconfig::read()
                .map_err(|e| format!("kubeconfig (KUBECONFIG or ~/.kube/config): {e}")),
        };
        let mut clients = BTreeMap::new();
        match kubeconfig {
            Err(e) => missing.push(e),
            Ok(kc) => {
                for r in &topo.regions {
                    if !kc.contexts.iter().any(|c| c.name == r.kube_context) {
                        missing.push(format!(
                            "[regions.{}] kube_context `{}`: no such context in the kubeconfig",
                            r.name, r.kube_context
                        ));
                        continue;
                    }
                    let opts = kube::config::KubeConfigOptions {
                        context: Some(r.kube_context.clone()),
                        ..Default::default()
                    };
                    let client = match kube::Config::from_custom_kubeconfig(kc.clone(), &opts).await
                    {
                        Ok(c) => kube::Client::try_from(c).map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    match client {
                        Ok(c) => {
                            clients.insert(r.name.clone(), c);
                        }
                        Err(e) => missing.push(format!(
                            "[regions.{}] kube context `{}`: {e}",
                            r.name, r.kube_context
                        )),
                    }
                }
            }
        }
        if !missing.is_empty() {
            // Dry-run reads the real systems through the same connections, so it needs them too.
            return Err(format!(
                "{} executor: the configuration is incomplete:\n- {}",
                config.mode.as_str(),
                missing.join("\n- ")
            ));
        }
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"));
        if let Some(url) = &config.live.route53_endpoint {
            loader = loader.endpoint_url(url);
        }
        let route53 = aws_sdk_route53::Client::new(&loader.load().await);
        Ok(Self::new(topo, config.live.clone(), clients, route53))
    }

    fn kube(&self, region: &str) -> Result<&KubeRegion, ExecError> {
        self.kube.get(region).ok_or_else(|| {
            ExecError::permanent(format!("no Kubernetes client for region {region}"))
        })
    }

    fn dsn(&self, region: &str) -> Result<&str, ExecError> {
        self.settings
            .dsns
            .get(region)
            .map(String::as_str)
            .ok_or_else(|| {
                let var = self
                    .settings
                    .dsn_sources
                    .get(region)
                    .cloned()
                    .unwrap_or_default();
                ExecError::permanent(format!("no PostgreSQL DSN for {region}: set {var}"))
            })
    }
}

/// Every field live mode needs that the configuration lacks, named.
/// Settings that let live mode start but would act on made-up values: said as warnings at
/// start (they cannot be errors: a region whose DNS target really is the default is allowed).
pub fn placeholders(config: &Config) -> Vec<String> {
    let defaults = erlmcp_handlers::topology::Topology::runbook_default();
    let mut out = Vec::new();
    for r in &config.topology.regions {
        if let Some(d) = defaults.region(&r.name)
            && d.dns_target == r.dns_target
        {
            out.push(format!(
                "[regions.{}] dns_target is the built-in example `{}`: set the region's load balancer DNS name, or a failover points erlmcp.io at a name that may not exist",
                r.name, r.dns_target
            ));
        }
    }
    if config.live.page_routing_key.is_some() && config.live.notify.page_url.is_none() {
        out.push(
            "a paging routing key is set but [notify] page_url is not: paging steps will be skipped"
                .into(),
        );
    }
    out
}

pub fn check_config(config: &Config) -> Vec<String> {
    let mut missing = Vec::new();
    for r in &config.topology.regions {
        // Only DR regions are ever promoted; their database must be reachable.
        if matches!(r.role, RegionRole::HotDr | RegionRole::ColdDr)
            && !config.live.dsns.contains_key(&r.name)
        {
            let var = config
                .live
                .dsn_sources
                .get(&r.name)
                .cloned()
                .unwrap_or_default();
            missing.push(format!("[regions.{}] database DSN: set the environment variable {var} (or database_dsn_env)", r.name));
        }
        if r.health_url.is_empty() {
            missing.push(format!("[regions.{}] health_url", r.name));
        }
        if r.dns_target.is_empty() {
            missing.push(format!("[regions.{}] dns_target", r.name));
        }
    }
    if config.topology.hosted_zone_id.is_empty() {
        missing.push("[dns] hosted_zone_id".into());
    }
    if config.topology.record_name.is_empty() {
        missing.push("[dns] record_name".into());
    }
    missing
}

#[async_trait::async_trait]
impl Executor for Live {
    fn mode(&self) -> Mode {
        Mode::Live
    }

    async fn observe(&self, action: &Action) -> Result<Observation, ExecError> {
        let obs = |from: String, to: String| Observation {
            from: Some(from),
            to: Some(to),
            resolved: None,
        };
        Ok(match action {
            Action::Scale { region, replicas } => obs(
                format!("{} replicas", self.kube(region)?.replicas().await?),
                format!("{replicas} replicas"),
            ),
            Action::IsolateNetwork { region, name } => obs(
                presence(self.kube(region)?.network_policy_exists(name).await?),
                "present".into(),
            ),
            Action::RemoveNetworkPolicy { region, name } => obs(
                presence(self.kube(region)?.network_policy_exists(name).await?),
                "absent".into(),
            ),
            Action::ApplyConfigMap { region, name, data } => {
                let from = match self.kube(region)?.config_map(name).await? {
                    Some(d) => format!("{d:?}"),
                    None => "absent".into(),
                };
                obs(from, format!("{data:?}"))
            }
            Action::DeleteConfigMap { region, name } => obs(
                presence(self.kube(region)?.config_map(name).await?.is_some()),
                "absent".into(),
            ),
            Action::SetImage { region, version } => {
                let k = self.kube(region)?;
                let (current, previous) = k.image_versions().await?;
                let target = if version == "previous" {
                    previous.ok_or_else(|| {
                        ExecError::permanent(format!(
                            "{region}: no previous version is recorded on the StatefulSet (annotation {}); name the version: `/erlmcp rollback <version> {region}`",
                            kube_ops::PREVIOUS_VERSION_ANNOTATION
                        ))
                    })?
                } else {
                    version.clone()
                };
                Observation {
                    from: Some(current),
                    to: Some(target.clone()),
                    resolved: Some(Action::SetImage {
                        region: region.clone(),
                        version: target,
                    }),
                }
            }
            Action::PromoteDatabase { region } => {
                let in_recovery = postgres::in_recovery(self.dsn(region)?).await?;
                obs(
                    if in_recovery {
                        "standby (in recovery)".into()
                    } else {
                        "primary (not in recovery)".into()
                    },
                    "primary".into(),
                )
            }
            Action::PointDns { region } => obs(self.current_dns_region().await?, region.clone()),
            Action::RestoreBackup { point } => {
                let chosen = if point == "last-good" {
                    self.last_good_backup().await?
                } else {
                    point.clone()
                };
                Observation {
                    from: Some("live data".into()),
                    to: Some(chosen.clone()),
                    resolved: Some(Action::RestoreBackup { point: chosen }),
                }
            }
            _ => Observation::default(),
        })
    }

    async fn apply(&self, action: &Action) -> Result<String, ExecError> {
        match action {
            Action::Scale { region, replicas } => self
                .kube(region)?
                .scale(*replicas)
                .await
                .map(|from| format!("{region}: replicas {from} -> {replicas}")),
            Action::WaitReady { region } => self
                .kube(region)?
                .wait_ready()
                .await
                .map(|(r, n)| format!("{region}: {r}/{n} pods ready")),
            Action::PodsReady { region } => self
                .kube(region)?
                .pods_ready()
                .await
                .map(|(r, n)| format!("{region}: {r}/{n} pods ready")),
            Action::IsolateNetwork { region, name } => {
                self.kube(region)?.apply_deny_all(name).await?;
                Ok(format!(
                    "{region}: NetworkPolicy {name} applied (deny all ingress and egress for app=erlmcp)"
                ))
            }
            Action::RemoveNetworkPolicy { region, name } => self
                .kube(region)?
                .delete_network_policy(name)
                .await
                .map(|existed| {
                    if existed {
                        format!("{region}: NetworkPolicy {name} deleted")
                    } else {
                        format!("{region}: NetworkPolicy {name} was already absent")
                    }
                }),
            Action::ApplyConfigMap { region, name, data } => {
                self.kube(region)?.apply_config_map(name, data).await?;
                Ok(format!("{region}: ConfigMap {name} applied"))
            }
            Action::DeleteConfigMap { region, name } => self
                .kube(region)?
                .delete_config_map(name)
                .await
                .map(|existed| {
                    if existed {
                        format!("{region}: ConfigMap {name} deleted")
                    } else {
                        format!("{region}: ConfigMap {name} was already absent")
                    }
                }),
            Action::SetImage { region, version } => {
                let image = format!("{}:{version}", self.topo.image);
                let from = self.kube(region)?.set_image(&image, version).await?;
                Ok(format!("{region}: image {from} -> {version}"))
            }
            Action::WaitRollout { region } => self
                .kube(region)?
                .wait_rollout()
                .await
                .map(|(r, n)| format!("{region}: rollout complete, {r}/{n} ready")),
            Action::RestartRollout { region } => {
                self.kube(region)?.restart().await?;
                Ok(format!("{region}: rolling restart triggered"))
            }
            Action::PromoteDatabase { region } => postgres::promote(self.dsn(region)?)
                .await
                .map(|()| format!("{region}: PostgreSQL promoted; pg_is_in_recovery() = false")),
            Action::PointDns { region } => self.point_dns(region).await,
            Action::CheckDns {} => {
                let current = self.current_dns_region().await?;
                Ok(format!("{} -> {current}", self.topo.record_name))
            }
            Action::CheckHealth { region } => self.check_health(region).await,
            Action::CheckAllRegions {} => {
                let mut lines = Vec::new();
                for r in &self.topo.regions {
                    let state = match self.kube(&r.name) {
                        Ok(k) => match k.pods_ready().await {
                            Ok((ready, n)) => format!("{ready}/{n} ready"),
                            Err(e) => format!("UNREACHABLE ({e})"),
                        },
                        Err(e) => format!("UNREACHABLE ({e})"),
                    };
                    lines.push(format!("{}: {state}", r.name));
                }
                Ok(lines.join("; "))
            }
            Action::Page { summary } => self.page(summary).await,
            Action::StatusPage { state, message } => self.status_page(state, message).await,
            Action::Webhook { hook, message } => self.webhook(hook, message).await,
            Action::VerifyBackups {} => self.backup_call("verify", serde_json::json!({})).await,
            Action::RestoreBackup { point } => {
                self.backup_call("restore", serde_json::json!({ "point": point }))
                    .await
            }
            Action::ValidateData {} => self.backup_call("validate", serde_json::json!({})).await,
        }
    }
}

fn presence(exists: bool) -> String {
    if exists {
        "present".into()
    } else {
        "absent".into()
    }
}
