//! Block Kit for approval requests: the plan, its digest and policy, Approve and Deny buttons
//! while it is pending, and the run's progress once approved.

use serde_json::{Value, json};

pub const APPROVE_ACTION: &str = "erlmcp_approve";
pub const DENY_ACTION: &str = "erlmcp_deny";

fn section(text: &str) -> Value {
    // Slack limits a section's text to 3000 characters.
    let t: String = text.chars().take(2900).collect();
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": t } })
}

/// The request card: its text (plan included) and, while it can still be decided, the buttons.
pub fn request_card(request_id: &str, text: &str, progress: &[String], pending: bool) -> Value {
    let mut blocks = vec![section(&format!("```{}```", text.trim()))];
    if !progress.is_empty() {
        blocks.push(section(&progress.join("\n")));
    }
    if pending {
        blocks.push(json!({
            "type": "actions",
            "block_id": format!("request:{request_id}"),
            "elements": [
                { "type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": request_id,
                  "text": { "type": "plain_text", "text": "Approve" } },
                { "type": "button", "action_id": DENY_ACTION, "style": "danger", "value": request_id,
                  "text": { "type": "plain_text", "text": "Deny" } }
            ]
        }));
        blocks.push(json!({ "type": "context", "elements": [ { "type": "mrkdwn",
            "text": "Someone other than the requester approves (button or :white_check_mark:), or denies (button or :x:)." } ] }));
    }
    Value::Array(blocks)
}
