//! `erlmcp-bot drill`: a game day on the simulated world. It declares a drill incident, requests a
//! playbook as one person, approves it as another, runs it, resolves and closes, and prints the
//! postmortem and the world it left behind.

use crate::app::App;
use crate::console::{Screen, print_reply, say};
use erlmcp_handlers::approval::Actor;
use erlmcp_handlers::engine::Request;
use erlmcp_handlers::reply::Reply;
use erlmcp_handlers::severity::Severity;
use erlmcp_handlers::timeline::Source;

pub async fn run(
    app: &App,
    screen: &Screen,
    playbook: &str,
    params: &[String],
    severity: Option<&str>,
    requester: &str,
    approver: &str,
) -> u8 {
    let Some(pb) = app.engine.playbooks().get(playbook) else {
        let names: Vec<&str> = app
            .engine
            .playbooks()
            .playbooks
            .keys()
            .map(String::as_str)
            .collect();
        say(
            screen,
            &format!(
                "error: there is no playbook `{playbook}`; playbooks: {}",
                names.join(", ")
            ),
        );
        return 2;
    };
    let severity = match severity {
        Some(s) => match Severity::parse(s) {
            Some(s) => s,
            None => {
                say(
                    screen,
                    &format!("error: `{s}` is not a severity; use p0, p1, p2 or p3"),
                );
                return 2;
            }
        },
        None => pb.severities.iter().min().copied().unwrap_or(Severity::P1),
    };
    if app.simulated.is_none() {
        say(
            screen,
            "error: drills run on the simulated world only; unset ERLMCP_EXECUTOR or set it to `simulated`.",
        );
        return 2;
    }
    if requester == approver {
        say(
            screen,
            "error: the requester and the approver must be two different people.",
        );
        return 2;
    }
    let channel = format!("drill-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"));
    let ask = |who: &str, text: String| Request {
        actor: Actor::person(who),
        source: Source::Console,
        channel: channel.clone(),
        text,
    };
    // The prompt goes out before the command runs, so the transcript is in the order things
    // happened: progress a command causes comes after it.
    let prompt = |who: &str, text: &str| say(screen, &format!("{who}> {text}"));
    let show = |replies: &[Reply]| replies.iter().for_each(|r| print_reply(screen, r));
    let params_text = if params.is_empty() {
        String::new()
    } else {
        format!(" {}", params.join(" "))
    };
    let declare = ask(requester, format!("{}{params_text}", pb.name));
    prompt(
        requester,
        &format!("{} declare [DRILL] {}", severity.as_str(), pb.name),
    );
    match app.engine.declare_drill(&declare, severity).await {
        Ok(replies) => show(&replies),
        Err(e) => {
            say(screen, &format!("error: {e}"));
            return 1;
        }
    }
    let run_text = format!("/erlmcp run {playbook} {}", params.join(" "))
        .trim_end()
        .to_string();
    prompt(requester, &run_text);
    let replies = app.engine.handle(&ask(requester, run_text.clone())).await;
    show(&replies);
    if replies.iter().any(|r| r.is_error) || !replies.iter().any(|r| r.is_request_card) {
        // The drill did not get going: its incident is closed, not left open to catch later
        // commands and set off severity clocks.
        for text in [
            format!("/erlmcp resolve Drill of {playbook} not started: the request was refused"),
            "/erlmcp close".to_string(),
        ] {
            prompt(requester, &text);
            show(&app.engine.handle(&ask(requester, text.clone())).await);
        }
        return 2;
    }
    prompt(approver, "/erlmcp approve");
    let replies = app
        .engine
        .handle(&ask(approver, "/erlmcp approve".into()))
        .await;
    show(&replies);
    let ok = !replies.iter().any(|r| r.is_error);
    let outcome = if ok { "completed" } else { "failed" };
    for text in [
        format!("/erlmcp resolve Drill of {playbook} {outcome}"),
        "/erlmcp close".to_string(),
        "/erlmcp postmortem".to_string(),
    ] {
        prompt(requester, &text);
        let replies = app.engine.handle(&ask(requester, text.clone())).await;
        show(&replies);
    }
    if let Some(sim) = &app.simulated {
        let w = sim.world();
        let mut lines = vec![format!(
            "Simulated world after the drill: erlmcp.io -> {}; status page {}",
            w.dns_region, w.status_page
        )];
        for (name, r) in &w.regions {
            lines.push(format!(
                "  {name:<15} {}/{} pods ready, image {}, database {}{}",
                r.ready,
                r.replicas,
                r.image_version,
                if r.db_in_recovery {
                    "standby"
                } else {
                    "primary"
                },
                if r.network_policies.is_empty() {
                    String::new()
                } else {
                    format!(", policies {:?}", r.network_policies)
                }
            ));
        }
        say(screen, &lines.join("\n"));
    }
    if ok { 0 } else { 1 }
}
