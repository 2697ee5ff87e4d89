//! The README, followed as a new user follows it: every shell block runs against the built
//! binary in one fresh directory (state builds up as it would for them), every TOML block is a
//! configuration the bot accepts. A command this test does not know how to run fails it, so the
//! README cannot gain a command nobody tried.

use crate::program::{EXE, Served, Workdir};
use crate::shipped::slack_env;
use erlmcp_tests::slack_fake::FakeSlack;
use std::time::Duration;

const README: &str = include_str!("../../README.md");

/// Fenced blocks (also indented ones, inside lists): (language, text).
fn blocks(markdown: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String, usize)> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match (&mut current, trimmed.strip_prefix("```")) {
            (None, Some(lang)) => current = Some((lang.trim().to_string(), String::new(), indent)),
            (Some(_), Some(_)) => {
                let (lang, text, _) = current.take().expect("in a block");
                out.push((lang, text));
            }
            (Some((_, text, indent)), None) => {
                text.push_str(line.get(*indent..).unwrap_or(line.trim_start()));
                text.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

/// Shell commands of a block, with `\` continuations joined.
fn commands(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in block.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(cont) = line.strip_suffix('\\') {
            pending.push_str(cont.trim_end());
            pending.push(' ');
        } else {
            pending.push_str(line);
            out.push(std::mem::take(&mut pending));
        }
    }
    out
}

/// Environment variables the README may show in front of a command, and what the test gives
/// for each (the stand-ins' addresses, a test database).
const KNOWN_ENV: &[&str] = &[
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "DATABASE_URL",
];

async fn run_shell(w: &Workdir, command: &str) {
    let cmd = command
        .replace("cargo run -q -p erlmcp-bot --", EXE)
        .replace("cargo run -p erlmcp-bot --", EXE);
    let cmd = if cmd.starts_with("erlmcp-bot ") {
        cmd.replacen("erlmcp-bot", EXE, 1)
    } else {
        cmd
    };
    assert!(
        cmd.contains(EXE),
        "README command {command:?} does not run erlmcp-bot; teach this test how to run it"
    );
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", &cmd])
            .current_dir(w.path())
            .env_remove("DATABASE_URL")
            .env_remove("ERLMCP_CONFIG")
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("README command {command:?} did not finish in 60 s"))
    .expect("bash runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "README command {command:?} failed ({}):\n{text}",
        out.status
    );
    assert!(!text.contains("panicked"), "{command:?}:\n{text}");
}

async fn run_serve(w: &Workdir, command: &str) {
    for word in command.split_whitespace() {
        if let Some((name, _)) = word.split_once('=')
            && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        {
            assert!(
                KNOWN_ENV.contains(&name),
                "README sets {name} for `serve`; teach this test what to give it"
            );
        }
    }
    let fake = FakeSlack::start().await;
    let mut env = slack_env(&fake, &w.db_url());
    if command.contains("SLACK_APP_TOKEN") {
        erlmcp_tests::slack_fake::FakeSocket::start(&fake).await;
        env = env.set("SLACK_APP_TOKEN", "xapp-1-readme");
    }
    let mut bot = Served::start(w.path(), &env, &[]).await;
    let health = reqwest::get(format!("{}/healthz", bot.url)).await.unwrap();
    assert_eq!(health.status(), 200, "{command:?}: {}", bot.log());
    let ready = reqwest::get(format!("{}/readyz", bot.url)).await.unwrap();
    assert_eq!(ready.status(), 200, "{command:?}: {}", bot.log());
    bot.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_readme_command_runs_on_the_built_binary() {
    let w = Workdir::new();
    let mut ran = 0;
    for (lang, text) in blocks(README) {
        match lang.as_str() {
            "sh" | "bash" | "shell" => {
                for command in commands(&text) {
                    if command == "cargo test --workspace" {
                        continue; // that is what is running now
                    }
                    if command.contains(" serve") {
                        run_serve(&w, &command).await;
                    } else {
                        run_shell(&w, &command).await;
                    }
                    ran += 1;
                }
            }
            "toml" => {
                let path = w.file("readme-example.toml");
                std::fs::write(&path, &text).unwrap();
                if let Err(e) =
                    erlmcp_bot::config::Config::load(Some(&path), &|_: &str| None::<String>)
                {
                    panic!("a README configuration example is refused: {e}\n{text}");
                }
            }
            "yaml" if text.contains("\nsteps:") => {
                // A playbook example must be a playbook the bot accepts.
                let topo = erlmcp_handlers::topology::Topology::runbook_default();
                if let Err(e) = erlmcp_handlers::playbook::parse_file("README.md", &text, &topo) {
                    panic!("the README's playbook example is refused: {e:?}\n{text}");
                }
            }
            "" | "text" | "yaml" | "json" | "markdown" | "console" => {}
            other => panic!("README block of language {other:?}: teach this test about it"),
        }
    }
    assert!(ran >= 3, "the README's commands were not found ({ran} ran)");
}

#[test]
fn the_block_parser_reads_indented_blocks_and_continuations() {
    let md =
        "text\n```sh\necho a \\\n  | cat\n```\n1. item\n   ```sh\n   erlmcp-bot serve\n   ```\n";
    let b = blocks(md);
    assert_eq!(b.len(), 2);
    assert_eq!(commands(&b[0].1), vec!["echo a | cat"]);
    assert_eq!(commands(&b[1].1), vec!["erlmcp-bot serve"]);
}
