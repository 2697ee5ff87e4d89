//! Logs to stderr: text for a person (default), or one JSON object per line for a log pipeline
//! (`ERLMCP_LOG_FORMAT=json`). `RUST_LOG` filters what is printed (default `warn`); the
//! statement timer behind `/metrics` sees the driver's statement events whatever that filter is.
//!
//! In JSON, the fields of the span an event happens in are on its line (`span`): a command's
//! `command`, `actor`, `channel` and `incident`, a run's `run`, `request` and `incident`.
//! No secret is ever a field: tokens, the signing secret, the timeline key and database URLs
//! are not logged (`tests/it/operations.rs` checks this at `RUST_LOG=trace`).

use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl Format {
    pub fn parse(value: Option<&str>) -> Result<Format, String> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("text") => Ok(Format::Text),
            Some("json") => Ok(Format::Json),
            Some(other) => Err(format!(
                "ERLMCP_LOG_FORMAT `{other}` is not a log format; use `text` or `json`"
            )),
        }
    }
}

static FORMAT: std::sync::OnceLock<Format> = std::sync::OnceLock::new();

/// A line `serve` always prints (where it listens, that it stops), whatever `RUST_LOG` says: as
/// text, or as a JSON object like every other line when the logs are JSON, so a log pipeline
/// never meets a line it cannot parse.
pub fn announce(message: &str) {
    stderr_line("INFO", message);
}

/// Why the process stops, on stderr: a JSON line at level ERROR when the logs are JSON.
pub fn fatal(message: &str) {
    stderr_line("ERROR", message);
}

fn stderr_line(level: &str, message: &str) {
    match FORMAT.get() {
        Some(Format::Json) => {
            let line = serde_json::json!({
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "level": level,
                "message": message,
                "target": "erlmcp_bot",
            });
            eprintln!("{line}");
        }
        _ => eprintln!("{message}"),
    }
}

/// Installs the process's logger. Fails only on a misspelt `ERLMCP_LOG_FORMAT`.
pub fn init(env: &dyn Fn(&str) -> Option<String>) -> Result<(), String> {
    use std::io::IsTerminal;
    let format = Format::parse(env("ERLMCP_LOG_FORMAT").as_deref())?;
    let _ = FORMAT.set(format);
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => match tracing_subscriber::EnvFilter::try_new(&v) {
            Ok(f) => f,
            Err(e) => {
                // Said, not silently replaced: someone asked for more logs and gets fewer.
                announce(&format!(
                    "RUST_LOG `{v}` is not a log filter ({e}); logging at `warn` instead"
                ));
                tracing_subscriber::EnvFilter::new("warn")
            }
        },
        _ => tracing_subscriber::EnvFilter::new("warn"),
    };
    // slack-morphism logs Socket Mode URLs (with their connection ticket) and, at trace, every
    // envelope with its response_url (a capability to post as the bot): off unless asked for
    // by name.
    // serenity and the WebSocket crates beneath it log the gateway's frames (the Identify frame
    // carries the bot token) at debug and trace, and a shard that cannot connect warns every
    // few seconds; the bot says what matters about the gateway itself. Off unless named.
    let asked = std::env::var("RUST_LOG").unwrap_or_default();
    let mut filter = filter;
    for noisy in [
        "slack_morphism",
        "serenity",
        "tungstenite",
        "tokio_tungstenite",
    ] {
        if !asked.contains(noisy) {
            filter = filter.add_directive(
                format!("{noisy}=off")
                    .parse()
                    .expect("a constant, valid directive"),
            );
        }
    }
    let printed = match format {
        Format::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            // Colour only for a person at a terminal, never into a log file.
            .with_ansi(std::io::stderr().is_terminal())
            .boxed(),
        Format::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    }
    .with_filter(filter);
    let statements = crate::metrics::StatementTimer.with_filter(
        tracing_subscriber::filter::Targets::new()
            .with_target("sqlx::query", tracing::Level::DEBUG),
    );
    tracing_subscriber::registry()
        .with(printed)
        .with(statements)
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_a_typo_is_named() {
        assert_eq!(Format::parse(None), Ok(Format::Text));
        assert_eq!(Format::parse(Some("JSON")), Ok(Format::Json));
        let e = Format::parse(Some("jsno")).unwrap_err();
        assert!(e.contains("`jsno`") && e.contains("`json`"), "{e}");
    }
}
