//! Every environment variable the bot reads, in one list. Deployment manifests and the README
//! are checked against it (`tests/it/manifests.rs`), and a test below checks that the code reads
//! nothing that is missing here, so a renamed variable cannot leave a manifest setting a name
//! nobody reads.

/// One variable the bot reads.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub name: &'static str,
    /// A secret: it may come only from the environment (a Kubernetes Secret), never a file or a
    /// ConfigMap, and is never logged.
    pub secret: bool,
    pub meaning: &'static str,
}

const fn var(name: &'static str, meaning: &'static str) -> Variable {
    Variable {
        name,
        secret: false,
        meaning,
    }
}

const fn secret(name: &'static str, meaning: &'static str) -> Variable {
    Variable {
        name,
        secret: true,
        meaning,
    }
}

/// Names read by the bot. `ERLMCP_PG_<REGION>` is a family (see `is_read`).
pub const VARIABLES: &[Variable] = &[
    secret(
        "DATABASE_URL",
        "the bot's own database (sqlite:// or postgres://)",
    ),
    var("ERLMCP_CONFIG", "path of the TOML configuration file"),
    var("ERLMCP_EXECUTOR", "simulated, dry-run or live"),
    var(
        "ERLMCP_APPROVAL_EXPIRY",
        "how long a request waits for approval",
    ),
    var("ERLMCP_PLAYBOOKS_DIR", "folder of playbook YAML files"),
    var("ERLMCP_GROUPS", "approver groups: group:user1,user2;..."),
    var("ERLMCP_BOTS", "user ids that are bots (never approvers)"),
    var(
        "ERLMCP_RETRY_BASE_MS",
        "first back-off of a transient step failure",
    ),
    var("ERLMCP_RUN_LEASE", "how long a run's claim holds unrenewed"),
    var(
        "ERLMCP_TICK_EVERY",
        "how often clocks and expiry are checked",
    ),
    secret("ERLMCP_TIMELINE_KEY", "HMAC key of the timeline chain"),
    var(
        "ERLMCP_LISTEN",
        "address of the chat endpoints, /healthz, /readyz",
    ),
    var(
        "ERLMCP_METRICS_LISTEN",
        "separate address for /metrics (default: on ERLMCP_LISTEN)",
    ),
    var("ERLMCP_LOG_FORMAT", "text (default) or json"),
    var(
        "HOSTNAME",
        "this replica's name in run leases when /proc gives none",
    ),
    var("RUST_LOG", "log filter (default warn)"),
    secret("SLACK_BOT_TOKEN", "the bot's xoxb- token"),
    secret(
        "SLACK_SIGNING_SECRET",
        "verifies requests from Slack (HTTP mode)",
    ),
    secret("SLACK_APP_TOKEN", "xapp- token for Socket Mode"),
    var("SLACK_API_URL", "Slack Web API base (tests, proxies)"),
    var("SLACK_TEAM_ID", "the one workspace served"),
    var("SLACK_APP_ID", "the one Slack app served"),
    var(
        "SLACK_ALLOWED_TEAMS",
        "other workspaces whose users may act",
    ),
    secret("DISCORD_TOKEN", "the Discord bot's token"),
    var("DISCORD_APPLICATION_ID", "the Discord application served"),
    var(
        "DISCORD_PUBLIC_KEY",
        "verifies Discord interactions (Ed25519, hex)",
    ),
    var("DISCORD_GUILD_ID", "the one Discord server served"),
    var(
        "DISCORD_API_URL",
        "Discord REST and gateway-URL base (tests, proxies)",
    ),
    var(
        "DISCORD_INCIDENT_PLACE",
        "channel (default) or thread per incident on Discord",
    ),
    var(
        "DISCORD_CATEGORY_ID",
        "category new Discord incident channels go under",
    ),
    secret(
        "ERLMCP_ALERTS_TOKEN",
        "bearer token Alertmanager sends to /alerts/alertmanager",
    ),
    secret(
        "ERLMCP_WEB_TOKEN",
        "turns the web view on; its bearer token and sign-in",
    ),
    var(
        "ERLMCP_PUBLIC_URL",
        "where people reach serve (links in chat)",
    ),
    var("KUBECONFIG", "kubeconfig of the live executor"),
    var("AWS_ENDPOINT_URL_ROUTE_53", "Route53 endpoint override"),
    var("AWS_ENDPOINT_URL", "AWS endpoint override"),
    secret(
        "PAGERDUTY_ROUTING_KEY",
        "paging step's routing key (name configurable)",
    ),
];

/// The per-region replication DSNs: `ERLMCP_PG_US_WEST_2` and so on (secrets).
pub const REGION_DSN_PREFIX: &str = "ERLMCP_PG_";

/// Whether the bot reads `name`. AWS SDK variables (credentials, region, profile) are read by
/// the SDK's own provider chain.
pub fn is_read(name: &str) -> bool {
    VARIABLES.iter().any(|v| v.name == name)
        || name
            .strip_prefix(REGION_DSN_PREFIX)
            .is_some_and(|r| !r.is_empty())
        || name.starts_with("AWS_")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `env("NAME")` / `std::env::var("NAME")` in this crate's source is in the list.
    #[test]
    fn every_variable_the_code_reads_is_listed() {
        let re = regex::Regex::new(r#"(?:\benv|var|process_env)\("([A-Z][A-Z0-9_]*)"\)"#).unwrap();
        let mut seen = 0;
        let mut stack = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                // Test modules set made-up names on purpose.
                let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
                for c in re.captures_iter(code) {
                    let name = &c[1];
                    if matches!(name, "USER" | "LOGNAME") {
                        continue; // the console's default user name, not configuration
                    }
                    seen += 1;
                    assert!(
                        is_read(name),
                        "{} reads {name}, which environment::VARIABLES does not list",
                        path.display()
                    );
                }
            }
        }
        assert!(
            seen > 20,
            "the scan found only {seen} reads: the pattern broke"
        );
    }
}
