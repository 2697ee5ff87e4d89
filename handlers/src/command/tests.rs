//! The grammar pinned down: every accepted form, and the replies to wrong ones.
use super::*;

fn ok(input: &str) -> Command {
    parse(input)
        .unwrap_or_else(|e| panic!("{input:?}: {e}"))
        .command
}

#[test]
fn the_grammar_accepts_each_command_with_or_without_the_prefix() {
    let cases: Vec<(&str, Command)> = vec![
        (
            "/erlmcp p0 declare API down in us-east-1",
            Command::Declare {
                severity: Severity::P0,
                title: "API down in us-east-1".into(),
            },
        ),
        (
            "P1 DECLARE Checkout slow",
            Command::Declare {
                severity: Severity::P1,
                title: "Checkout slow".into(),
            },
        ),
        (
            "declare p2 Swapped order",
            Command::Declare {
                severity: Severity::P2,
                title: "Swapped order".into(),
            },
        ),
        ("ack", Command::Ack),
        ("/erlmcp sev P2", Command::Sev(Severity::P2)),
        (
            "role comms @dana",
            Command::Role {
                role: Role::Comms,
                user: "dana".into(),
            },
        ),
        (
            "note   spaced   text ",
            Command::Note("spaced   text".into()),
        ),
        ("resolve", Command::Resolve { summary: None }),
        (
            "resolve rolled back 3.0.2",
            Command::Resolve {
                summary: Some("rolled back 3.0.2".into()),
            },
        ),
        ("help approve", Command::Help(Some("approve".into()))),
        ("help p0", Command::Help(Some("declare".into()))),
        (
            "approve req-20261128-3",
            Command::Approve {
                request: Some(RequestId::new("REQ-20261128-3")),
            },
        ),
        (
            "deny REQ-20261128-3 too risky now",
            Command::Deny {
                request: Some(RequestId::new("REQ-20261128-3")),
                reason: Some("too risky now".into()),
            },
        ),
        (
            "deny not now",
            Command::Deny {
                request: None,
                reason: Some("not now".into()),
            },
        ),
        (
            "/failover US-WEST-2",
            Command::Failover {
                region: "us-west-2".into(),
            },
        ),
        (
            "failover us-west-2",
            Command::Failover {
                region: "us-west-2".into(),
            },
        ),
        ("isolate", Command::Isolate { region: None }),
        ("readonly ON", Command::ReadOnly { on: true }),
        (
            "rollback",
            Command::Rollback {
                version: None,
                region: None,
            },
        ),
        (
            "rollback v3.0.1 eu-west-1",
            Command::Rollback {
                version: Some("3.0.1".into()),
                region: Some("eu-west-1".into()),
            },
        ),
        (
            "rollback eu-west-1",
            Command::Rollback {
                version: None,
                region: Some("eu-west-1".into()),
            },
        ),
        (
            "scale us-east-1 5",
            Command::Scale {
                region: "us-east-1".into(),
                replicas: 5,
            },
        ),
        (
            "run failover region=us-west-2 replicas=4",
            Command::Run {
                playbook: "failover".into(),
                params: vec![
                    ("region".into(), "us-west-2".into()),
                    ("replicas".into(), "4".into()),
                ],
            },
        ),
        (
            "resume RUN-20261128-2 done",
            Command::Resume {
                run: Some("RUN-20261128-2".into()),
                decision: ResumeDecision::Done,
            },
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(ok(input), expected, "{input}");
    }
}

#[test]
fn an_incident_id_prefix_addresses_that_incident() {
    let p = parse("/erlmcp inc-20261128-4 status").unwrap();
    assert_eq!(p.incident, Some(IncidentId::new("INC-20261128-4")));
    assert_eq!(p.command, Command::Status);
}

#[test]
fn errors_say_what_was_wrong_and_what_to_type() {
    let e = parse("/erlmcp sev p7").unwrap_err();
    assert_eq!(
        e.to_string(),
        "`sev`: `p7` is not a severity; use p0, p1, p2 or p3\nTry: `/erlmcp sev p1`"
    );
    let e = parse("/erlmcp aprove").unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown command `aprove`; did you mean `approve`? (approve a pending infrastructure change (not your own))\nTry: `/erlmcp approve [REQ-id]`"
    );
    let e = parse("run failover region=us-west-2 region=eu-west-1").unwrap_err();
    assert!(e.problem.contains("given twice"), "{e}");
    let long = format!("note {}", "x".repeat(MAX_TEXT_CHARS + 1));
    assert!(
        parse(&long)
            .unwrap_err()
            .problem
            .contains("the limit is 2000")
    );
}

#[test]
fn no_input_panics() {
    for input in [
        "/",
        "//",
        "/erlmcp /",
        "\u{200b}",
        "INC-20261128-1",
        "p0 declare \u{0}",
        "run -",
        "scale x y z",
        "deny REQ-",
        "rollback 1.2 x",
        "as",
        "\t\n",
    ] {
        let _ = parse(input);
    }
}
