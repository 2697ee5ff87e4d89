//! Configuration: an optional TOML file, then environment variables on top. Secrets (tokens,
//! database passwords) come only from the environment and are never printed.

use crate::error::Error;
use erlmcp_handlers::approval::Groups;
use erlmcp_handlers::engine::Settings;
use erlmcp_handlers::executor::Mode;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://erlmcp-bot.db";
pub const DEFAULT_CONFIG_FILE: &str = "erlmcp-bot.toml";

/// The file's shape. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub database_url: Option<String>,
    pub executor: Option<String>,
    pub approval_expiry: Option<String>,
    pub playbooks_dir: Option<PathBuf>,
    /// How long a claim on a run holds without renewal (default 30s).
    pub run_lease: Option<String>,
    /// How often the severity clocks and request expiry are checked (default 15s).
    pub tick_every: Option<String>,
    #[serde(default)]
    pub bots: Vec<String>,
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// Per-region overrides of the runbook topology, and live-executor settings.
    #[serde(default)]
    pub regions: BTreeMap<String, RegionFile>,
    #[serde(default)]
    pub dns: DnsFile,
    #[serde(default)]
    pub notify: NotifySettings,
    #[serde(default)]
    pub backup: BackupSettings,
    #[serde(default)]
    pub health: HealthSettings,
    #[serde(default)]
    pub kube: KubeFile,
    /// Alert intake: what Alertmanager's alerts open and suggest.
    #[serde(default)]
    pub alerts: crate::alerts::config::AlertsFile,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionFile {
    pub kube_context: Option<String>,
    pub namespace: Option<String>,
    pub statefulset: Option<String>,
    pub health_url: Option<String>,
    pub dns_target: Option<String>,
    /// A DSN without a password (the password belongs in the environment: prefer `database_dsn_env`).
    pub database_dsn: Option<String>,
    /// Name of the environment variable holding the region's PostgreSQL DSN.
    pub database_dsn_env: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsFile {
    pub hosted_zone_id: Option<String>,
    pub record_name: Option<String>,
    /// Hosted zone of the load balancers the alias points at (default: the hosted zone, as in §6.3).
    pub alias_zone_id: Option<String>,
    /// The failover record's set identifier (default `primary`).
    pub set_identifier: Option<String>,
    /// Route53 API endpoint (tests, gateways); the standard `AWS_ENDPOINT_URL` works too.
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeFile {
    /// Kubeconfig path (default: `KUBECONFIG`, then ~/.kube/config).
    pub kubeconfig: Option<PathBuf>,
    /// Container to set the image of (default `erlmcp`).
    pub container: Option<String>,
    /// Poll interval while waiting for pods or rollouts, in milliseconds (default 2000).
    pub poll_ms: Option<u64>,
}

/// Paging, status page and other webhooks. Secrets (routing keys) come from the environment.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// PagerDuty Events API v2 endpoint (`https://events.pagerduty.com/v2/enqueue`) or compatible.
    pub page_url: Option<String>,
    /// Environment variable with the PagerDuty routing key (default `PAGERDUTY_ROUTING_KEY`).
    pub page_routing_key_env: Option<String>,
    /// Generic JSON webhook for status page updates.
    pub status_page_url: Option<String>,
    /// Named generic JSON webhooks used by `notify.webhook` steps (forensics, rotate-secrets, ...).
    #[serde(default)]
    pub webhooks: BTreeMap<String, String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSettings {
    /// Base URL of the backup service: GET /backups, POST /verify, /restore, /validate.
    pub api_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    #[serde(default = "default_status")]
    pub expect_status: u16,
    /// Text the health answer must contain, if set.
    pub expect_body: Option<String>,
    #[serde(default = "default_health_timeout")]
    pub timeout_seconds: u64,
}

fn default_status() -> u16 {
    200
}

fn default_health_timeout() -> u64 {
    10
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            expect_status: 200,
            expect_body: None,
            timeout_seconds: 10,
        }
    }
}

/// What the live executor needs beyond the topology.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    pub kubeconfig: Option<PathBuf>,
    pub container: String,
    pub poll_ms: u64,
    pub alias_zone_id: String,
    pub set_identifier: String,
    pub route53_endpoint: Option<String>,
    /// Region -> PostgreSQL DSN, resolved from the environment.
    pub dsns: BTreeMap<String, String>,
    /// Region -> where its DSN was expected to come from (for the missing-field message).
    pub dsn_sources: BTreeMap<String, String>,
    pub notify: NotifySettings,
    pub page_routing_key: Option<String>,
    pub backup: BackupSettings,
    pub health: HealthSettings,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    /// The runbook's topology with this configuration's overrides.
    pub topology: erlmcp_handlers::topology::Topology,
    pub live: LiveSettings,
    pub mode: Mode,
    pub playbooks_dir: Option<PathBuf>,
    pub settings: Settings,
    /// Where the configuration came from, for the start-up line.
    pub sources: Vec<String>,
    /// `ERLMCP_TIMELINE_KEY`: keys the timeline chain (environment only: it is a secret).
    pub timeline_key: Option<erlmcp_handlers::timeline::TimelineKey>,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    match s {
        "simulated" => Ok(Mode::Simulated),
        "dry-run" | "dryrun" => Ok(Mode::DryRun),
        "live" => Ok(Mode::Live),
        other => Err(format!(
            "executor `{other}` is not one of simulated, dry-run, live"
        )),
    }
}

/// `ERLMCP_GROUPS=security:sam,U0SEC;dba:ann`
fn parse_groups_env(s: &str) -> Result<Groups, String> {
    let mut groups = Groups::new();
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, members) = part.split_once(':').ok_or_else(|| {
            format!("ERLMCP_GROUPS entry `{part}` should look like group:user1,user2")
        })?;
        let members: BTreeSet<String> = members
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect();
        groups.insert(name.trim().to_string(), members);
    }
    Ok(groups)
}

impl Config {
    /// Reads `path` (or `ERLMCP_CONFIG`, or `erlmcp-bot.toml` if it exists), then the environment.
    /// Precedence, for every setting: the environment (and command-line flags, applied by the
    /// caller) over the file over the default.
    pub fn load(
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, Error> {
        Self::read(path, env).map_err(Error::Config)
    }

    fn read(path: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
        let mut sources = Vec::new();
        let file_path = path
            .map(Path::to_path_buf)
            .or_else(|| env("ERLMCP_CONFIG").map(PathBuf::from))
            .or_else(|| {
                let p = PathBuf::from(DEFAULT_CONFIG_FILE);
                p.exists().then_some(p)
            });
        let file: FileConfig = match &file_path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read configuration {}: {e}", p.display()))?;
                sources.push(p.display().to_string());
                toml::from_str(&text).map_err(|e| format!("configuration {}: {e}", p.display()))?
            }
            None => FileConfig::default(),
        };
        let database_url = env("DATABASE_URL")
            .or(file.database_url)
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
        let mode = parse_mode(
            &env("ERLMCP_EXECUTOR")
                .or(file.executor)
                .unwrap_or_else(|| "simulated".into()),
        )?;
        let expiry = env("ERLMCP_APPROVAL_EXPIRY").or(file.approval_expiry);
        let approval_expiry_seconds =
            match expiry {
                Some(e) => Some(erlmcp_handlers::playbook::parse_duration(&e).ok_or_else(
                    || format!("approval expiry `{e}` is not a duration like 15m, 90s or 1h (at most a year)"),
                )?),
                None => None,
            };
        let mut groups: Groups = file
            .groups
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect();
        if let Some(g) = env("ERLMCP_GROUPS") {
            groups.extend(parse_groups_env(&g)?);
            sources.push("ERLMCP_GROUPS".into());
        }
        let mut bots: BTreeSet<String> = file.bots.into_iter().collect();
        if let Some(b) = env("ERLMCP_BOTS") {
            bots.extend(
                b.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
            );
        }
        let retry_base_ms = match env("ERLMCP_RETRY_BASE_MS") {
            Some(v) => v.parse().map_err(|_| {
                format!("ERLMCP_RETRY_BASE_MS `{v}` is not a number of milliseconds")
            })?,
            None => Settings::default().retry_base_ms,
        };
        let seconds = |name: &str, value: Option<String>, default: i64| -> Result<i64, String> {
            match value {
                Some(v) => erlmcp_handlers::playbook::parse_duration(&v).ok_or_else(|| {
                    format!("{name} `{v}` is not a duration like 30s or 1m (at most a year)")
                }),
                None => Ok(default),
            }
        };
        let lease_seconds = seconds(
            "run lease (ERLMCP_RUN_LEASE / run_lease)",
            env("ERLMCP_RUN_LEASE").or(file.run_lease),
            erlmcp_handlers::engine::DEFAULT_LEASE_SECONDS,
        )?;
        let tick_seconds = seconds(
            "tick interval (ERLMCP_TICK_EVERY / tick_every)",
            env("ERLMCP_TICK_EVERY").or(file.tick_every),
            15,
        )?;
        let mut topology = erlmcp_handlers::topology::Topology::runbook_default();
        for name in file.regions.keys() {
            if topology.region(name).is_none() {
                return Err(format!(
                    "[regions.{name}]: {}",
                    topology.unknown_region_message(name)
                ));
            }
        }
        let mut dsns = BTreeMap::new();
        let mut dsn_sources = BTreeMap::new();
        for region in &mut topology.regions {
            let over = file.regions.get(&region.name).cloned().unwrap_or_default();
            if let Some(v) = over.kube_context {
                region.kube_context = v;
            }
            if let Some(v) = over.namespace {
                region.namespace = v;
            }
            if let Some(v) = over.statefulset {
                region.statefulset = v;
            }
            if let Some(v) = over.health_url {
                region.health_url = v;
            }
            if let Some(v) = over.dns_target {
                region.dns_target = v;
            }
            let var = over.database_dsn_env.unwrap_or_else(|| {
                format!(
                    "ERLMCP_PG_{}",
                    region.name.to_ascii_uppercase().replace('-', "_")
                )
            });
            match env(&var).or(over.database_dsn) {
                Some(dsn) => {
                    dsns.insert(region.name.clone(), dsn);
                }
                None => {
                    dsn_sources.insert(region.name.clone(), var);
                }
            }
        }
        if let Some(v) = &file.dns.hosted_zone_id {
            topology.hosted_zone_id = v.clone();
        }
        if let Some(v) = &file.dns.record_name {
            topology.record_name = v.clone();
        }
        let routing_var = file
            .notify
            .page_routing_key_env
            .clone()
            .unwrap_or_else(|| "PAGERDUTY_ROUTING_KEY".into());
        let live = LiveSettings {
            // One rule everywhere: the environment, then the file, then the default.
            kubeconfig: env("KUBECONFIG")
                .map(PathBuf::from)
                .or_else(|| file.kube.kubeconfig.clone()),
            container: file
                .kube
                .container
                .clone()
                .unwrap_or_else(|| "erlmcp".into()),
            poll_ms: file.kube.poll_ms.unwrap_or(2000),
            alias_zone_id: file
                .dns
                .alias_zone_id
                .clone()
                .unwrap_or_else(|| topology.hosted_zone_id.clone()),
            set_identifier: file
                .dns
                .set_identifier
                .clone()
                .unwrap_or_else(|| "primary".into()),
            route53_endpoint: env("AWS_ENDPOINT_URL_ROUTE_53")
                .or_else(|| env("AWS_ENDPOINT_URL"))
                .or_else(|| file.dns.endpoint_url.clone()),
            dsns,
            dsn_sources,
            page_routing_key: env(&routing_var),
            notify: file.notify.clone(),
            backup: file.backup.clone(),
            health: file.health.clone(),
        };
        let alerts = file.alerts.rules()?;
        let timeline_key = match env("ERLMCP_TIMELINE_KEY") {
            Some(k) => Some(erlmcp_handlers::timeline::TimelineKey::new(&k)?),
            None => None,
        };
        Ok(Config {
            timeline_key,
            database_url,
            topology,
            live,
            mode,
            playbooks_dir: env("ERLMCP_PLAYBOOKS_DIR")
                .map(PathBuf::from)
                .or(file.playbooks_dir),
            settings: Settings {
                approval_expiry_seconds,
                groups,
                bots,
                retry_base_ms,
                lease_seconds,
                tick_seconds: tick_seconds as u64,
                alerts,
                // Who this process is, as a run owner, is set when it starts (`app::build`).
                ..Settings::default()
            },
            sources,
        })
    }

    pub fn from_env(path: Option<&Path>) -> Result<Config, Error> {
        Self::load(path, &|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults_are_the_embedded_ones() {
        let c = Config::load(Some(Path::new("/dev/null")), &env_of(&[])).unwrap();
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.mode, Mode::Simulated);
        assert_eq!(c.settings.approval_expiry_seconds, None);
    }

    /// The one precedence rule: environment over file over default, for every setting that has both.
    #[test]
    fn the_environment_beats_the_file_for_every_setting() {
        let path =
            std::env::temp_dir().join(format!("erlmcp-precedence-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            r#"
database_url = "sqlite://from-file.db"
executor = "dry-run"
approval_expiry = "7m"
playbooks_dir = "/from/file"
bots = ["filebot"]
[groups]
security = ["U0FILE"]
[kube]
kubeconfig = "/from/file/kubeconfig"
[dns]
endpoint_url = "http://from-file:5000"
[regions.us-west-2]
database_dsn = "postgres://file@db/erlmcp"
"#,
        )
        .unwrap();
        let file_only = Config::load(Some(&path), &env_of(&[])).unwrap();
        assert_eq!(file_only.database_url, "sqlite://from-file.db");
        assert_eq!(file_only.mode, Mode::DryRun);
        assert_eq!(file_only.settings.approval_expiry_seconds, Some(420));
        assert_eq!(file_only.playbooks_dir, Some(PathBuf::from("/from/file")));
        assert_eq!(
            file_only.live.kubeconfig,
            Some(PathBuf::from("/from/file/kubeconfig"))
        );
        assert_eq!(
            file_only.live.route53_endpoint.as_deref(),
            Some("http://from-file:5000")
        );
        assert_eq!(
            file_only.live.dsns["us-west-2"],
            "postgres://file@db/erlmcp"
        );
        assert!(file_only.settings.groups["security"].contains("U0FILE"));

        let both = Config::load(
            Some(&path),
            &env_of(&[
                ("DATABASE_URL", "sqlite://from-env.db"),
                ("ERLMCP_EXECUTOR", "simulated"),
                ("ERLMCP_APPROVAL_EXPIRY", "2m"),
                ("ERLMCP_PLAYBOOKS_DIR", "/from/env"),
                ("ERLMCP_GROUPS", "security:U0ENV"),
                ("KUBECONFIG", "/from/env/kubeconfig"),
                ("AWS_ENDPOINT_URL", "http://from-env:5000"),
                ("ERLMCP_PG_US_WEST_2", "postgres://env@db/erlmcp"),
            ]),
        )
        .unwrap();
        std::fs::remove_file(&path).ok();
        assert_eq!(both.database_url, "sqlite://from-env.db");
        assert_eq!(both.mode, Mode::Simulated);
        assert_eq!(both.settings.approval_expiry_seconds, Some(120));
        assert_eq!(both.playbooks_dir, Some(PathBuf::from("/from/env")));
        assert_eq!(
            both.live.kubeconfig,
            Some(PathBuf::from("/from/env/kubeconfig"))
        );
        assert_eq!(
            both.live.route53_endpoint.as_deref(),
            Some("http://from-env:5000")
        );
        assert_eq!(both.live.dsns["us-west-2"], "postgres://env@db/erlmcp");
        assert!(both.settings.groups["security"].contains("U0ENV"));
        assert!(!both.settings.groups["security"].contains("U0FILE"));
    }

    #[test]
    fn environment_overrides_and_bad_values_are_named() {
        let c = Config::load(
            Some(Path::new("/dev/null")),
            &env_of(&[
                ("ERLMCP_APPROVAL_EXPIRY", "5s"),
                ("ERLMCP_GROUPS", "security:sam,U0SEC; dba:ann"),
                ("ERLMCP_EXECUTOR", "dry-run"),
            ]),
        )
        .unwrap();
        assert_eq!(c.settings.approval_expiry_seconds, Some(5));
        assert_eq!(c.mode, Mode::DryRun);
        assert!(c.settings.groups["security"].contains("U0SEC"));
        assert!(c.settings.groups["dba"].contains("ann"));
        let e = Config::load(
            Some(Path::new("/dev/null")),
            &env_of(&[("ERLMCP_EXECUTOR", "yolo")]),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "executor `yolo` is not one of simulated, dry-run, live");
        let e = Config::load(
            Some(Path::new("/dev/null")),
            &env_of(&[("ERLMCP_APPROVAL_EXPIRY", "soon")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`soon` is not a duration"), "{e}");
    }
}
