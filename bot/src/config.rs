//! Configuration: an optional TOML file, then environment variables on top. Secrets (tokens,
//! database passwords) come only from the environment and are never printed.

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
    #[serde(default)]
    pub bots: Vec<String>,
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub mode: Mode,
    pub playbooks_dir: Option<PathBuf>,
    pub settings: Settings,
    /// Where the configuration came from, for the start-up line.
    pub sources: Vec<String>,
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
    /// Reads `path` (or `erlmcp-bot.toml` if it exists), then the environment.
    pub fn load(
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, String> {
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
                    || format!("approval expiry `{e}` is not a duration like 15m, 90s or 1h"),
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
        Ok(Config {
            database_url,
            mode,
            playbooks_dir: env("ERLMCP_PLAYBOOKS_DIR")
                .map(PathBuf::from)
                .or(file.playbooks_dir),
            settings: Settings {
                approval_expiry_seconds,
                groups,
                bots,
                retry_base_ms,
            },
            sources,
        })
    }

    pub fn from_env(path: Option<&Path>) -> Result<Config, String> {
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
        .unwrap_err();
        assert_eq!(e, "executor `yolo` is not one of simulated, dry-run, live");
        let e = Config::load(
            Some(Path::new("/dev/null")),
            &env_of(&[("ERLMCP_APPROVAL_EXPIRY", "soon")]),
        )
        .unwrap_err();
        assert!(e.contains("`soon` is not a duration"), "{e}");
    }
}
