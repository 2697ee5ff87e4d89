//! Property tests of the grammar: whatever a person (or a hostile client) types, `parse`
//! answers with a command or a reason, and never panics.

use super::parse;
use proptest::prelude::*;

/// Words the grammar knows, so generated input reaches deep into it, not only the "unknown
/// command" branch.
const WORDS: &[&str] = &[
    "/erlmcp",
    "p0",
    "p1",
    "p2",
    "p3",
    "p9",
    "declare",
    "ack",
    "sev",
    "role",
    "ic",
    "comms",
    "scribe",
    "note",
    "status",
    "incidents",
    "mitigated",
    "resolve",
    "close",
    "timeline",
    "postmortem",
    "playbooks",
    "run",
    "failover",
    "/failover",
    "isolate",
    "readonly",
    "on",
    "off",
    "rollback",
    "previous",
    "scale",
    "requests",
    "approve",
    "deny",
    "cancel",
    "resume",
    "done",
    "retry",
    "abort",
    "stop",
    "report",
    "help",
    "us-east-1",
    "us-west-2",
    "mars-1",
    "3.0.1",
    "REQ-20261128-1",
    "RUN-20261128-1",
    "INC-20261128-1",
    "region=us-west-2",
    "replicas=4000000000",
    "x=",
    "=y",
    "-1",
    "0",
    "50",
    "51",
    "99999999999999999999",
    "2026-13",
    "2026-11",
];

fn sentence() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(WORDS).prop_map(str::to_string),
            1 => any::<String>(),
            1 => "[ \\t\\n\\r\\u{0}\\u{202e}<>|`*#]{0,4}",
        ],
        0..8,
    )
    .prop_map(|w| w.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn any_text_gets_a_command_or_a_reason(text in any::<String>()) {
        let _ = parse(&text);
    }

    #[test]
    fn near_commands_get_a_command_or_a_reason(text in sentence()) {
        match parse(&text) {
            Ok(_) => {}
            // A refusal always says what was wrong.
            Err(e) => prop_assert!(!e.to_string().trim().is_empty()),
        }
    }
}
