//! Property tests of the Slack payload parsers: arbitrary forms and JSON (and valid payloads
//! with fields replaced by anything) give a parsed input or a reason, never a panic.

use super::inbound::{parse_command, parse_event, parse_interaction};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::HashMap;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
        prop::sample::select(
            &[
                "block_actions",
                "event_callback",
                "reaction_added",
                "app_mention",
                "message",
                "erlmcp_approve",
                "erlmcp_deny",
                "pushpin",
                "REQ-20261128-1",
                "U1",
                "C1",
                "T1",
                "A1"
            ][..]
        )
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(
                    &[
                        "type",
                        "actions",
                        "action_id",
                        "value",
                        "user",
                        "id",
                        "channel",
                        "container",
                        "channel_id",
                        "team",
                        "team_id",
                        "api_app_id",
                        "event",
                        "event_id",
                        "item",
                        "ts",
                        "reaction",
                        "text",
                        "bot_id",
                        "response_url",
                        "0"
                    ][..]
                )
                .prop_map(str::to_string),
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid button payload with one field (at some depth) replaced by an arbitrary value.
fn mutated_button() -> impl Strategy<Value = Value> {
    (json_value(), 0usize..8).prop_map(|(v, at)| {
        let mut p = json!({
            "type": "block_actions", "api_app_id": "A1", "team": { "id": "T1" },
            "user": { "id": "U1", "name": "bob", "team_id": "T1" },
            "channel": { "id": "C1" }, "container": { "channel_id": "C1" },
            "response_url": "https://hooks.slack.com/x",
            "actions": [ { "action_id": "erlmcp_approve", "value": "REQ-20261128-1" } ]
        });
        match at {
            0 => p["type"] = v,
            1 => p["user"] = v,
            2 => p["user"]["id"] = v,
            3 => p["actions"] = v,
            4 => p["actions"][0]["value"] = v,
            5 => p["channel"] = v,
            6 => p["team"] = v,
            _ => p = v,
        }
        p
    })
}

/// A valid reaction event with one field replaced by an arbitrary value.
fn mutated_event() -> impl Strategy<Value = Value> {
    (json_value(), 0usize..7).prop_map(|(v, at)| {
        let mut e = json!({
            "type": "event_callback", "event_id": "Ev1", "team_id": "T1", "api_app_id": "A1",
            "event": { "type": "reaction_added", "user": "U1", "reaction": "white_check_mark",
                       "item": { "type": "message", "channel": "C1", "ts": "1.2" } }
        });
        match at {
            0 => e["event"] = v,
            1 => e["event"]["item"] = v,
            2 => e["event"]["type"] = v,
            3 => e["event_id"] = v,
            4 => e["event"]["user"] = v,
            5 => e["event"]["reaction"] = v,
            _ => e = v,
        }
        e
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn any_form_is_a_command_or_a_reason(
        fields in prop::collection::hash_map(
            prop_oneof![
                prop::sample::select(&["command", "text", "user_id", "channel_id", "team_id", "api_app_id", "response_url", "user_name"][..]).prop_map(str::to_string),
                any::<String>(),
            ],
            any::<String>(),
            0..10,
        )
    ) {
        let f: HashMap<String, String> = fields;
        if let Ok(p) = parse_command(&f) {
            // What was parsed is what was sent, never something made up.
            prop_assert!(p.inbound.is_some());
        }
    }

    #[test]
    fn any_json_is_an_interaction_or_a_reason(v in json_value()) {
        let _ = parse_interaction(&v);
    }

    #[test]
    fn any_json_is_an_event_or_a_reason(v in json_value()) {
        let _ = parse_event(&v);
    }

    #[test]
    fn damaged_buttons_are_refused_or_read_exactly(p in mutated_button()) {
        if let Ok(parsed) = parse_interaction(&p)
            && let Some(super::inbound::Inbound::Button { request, user, .. }) = parsed.inbound
        {
            prop_assert_eq!(Some(request.as_str()), p["actions"][0]["value"].as_str());
            prop_assert_eq!(Some(user.as_str()), p["user"]["id"].as_str());
        }
    }

    #[test]
    fn damaged_events_are_refused_or_read_exactly(e in mutated_event()) {
        if let Ok(parsed) = parse_event(&e)
            && let Some(super::inbound::Inbound::Reaction { user, channel, ts, .. }) = parsed.inbound
        {
            prop_assert_eq!(Some(user.as_str()), e["event"]["user"].as_str());
            prop_assert_eq!(Some(channel.as_str()), e["event"]["item"]["channel"].as_str());
            prop_assert_eq!(Some(ts.as_str()), e["event"]["item"]["ts"].as_str());
        }
    }
}
