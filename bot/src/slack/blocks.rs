//! Block Kit, and escaping for Slack's mrkdwn. An approval card shows the request's command and
//! plan as plain text (never read as markup, whatever a title or parameter contains) and its
//! digest, policy and expiry in a block of the bot's own words right above the buttons, so no
//! length of plan can push them out of the card. A plan too long for the card is cut there and
//! posted whole in the card's thread.

use erlmcp_handlers::reply::RequestCard;
use serde_json::{Value, json};

pub const APPROVE_ACTION: &str = "erlmcp_approve";
pub const DENY_ACTION: &str = "erlmcp_deny";

/// Slack's limit on a section's text is 3,000 characters; a header's is 150.
const SECTION_LIMIT: usize = 2900;
const HEADER_LIMIT: usize = 140;

/// Text for mrkdwn: `&`, `<` and `>` escaped, as Slack asks, so user text can neither mention
/// (`<!channel>`, `<@U…>`) nor link (`<https://…|…>`).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The first `limit` characters; `None` if nothing was cut.
fn cut(text: &str, limit: usize) -> (String, bool) {
    if text.chars().count() <= limit {
        (text.to_string(), false)
    } else {
        (text.chars().take(limit).collect(), true)
    }
}

fn plain(text: &str) -> Value {
    json!({ "type": "section", "text": { "type": "plain_text", "text": text, "emoji": false } })
}

fn mrkdwn(text: &str) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })
}

/// The notification text of a card (what Slack shows where blocks are not rendered).
pub fn card_text(card: &RequestCard, pending: bool) -> String {
    let (command, _) = cut(&card.command, 200);
    escape(&format!(
        "{}{} `{}` by {} (plan digest {})",
        if pending {
            "🔐 Approval needed: "
        } else {
            ""
        },
        card.request,
        command,
        card.requester,
        &card.digest[..12.min(card.digest.len())]
    ))
}

/// The card's blocks, and whether the plan had to be cut (then it goes whole into the thread).
pub fn request_card(card: &RequestCard, progress: &[String], pending: bool) -> (Value, bool) {
    let (title, _) = cut(
        &format!(
            "{}{} for {}",
            if pending { "🔐 " } else { "" },
            card.request,
            card.incident
        ),
        HEADER_LIMIT,
    );
    let (who, _) = cut(
        &format!("{} — requested by {}", card.command, card.requester),
        SECTION_LIMIT,
    );
    let (plan, plan_cut) = cut(card.plan.trim(), SECTION_LIMIT - 60);
    let plan = if plan_cut {
        format!("{plan}\n… the plan continues in this message's thread.")
    } else {
        plan
    };
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": title, "emoji": true } }),
        plain(&who),
        plain(&plan),
        // The bot's own words: what an approval binds to, who may give it, until when.
        mrkdwn(&format!(
            "*Plan digest:* `{}`\n*Policy:* {}\n*Expires:* {}",
            escape(&card.digest),
            escape(&card.policy),
            escape(&card.expires)
        )),
    ];
    if pending {
        blocks.push(json!({
            "type": "actions",
            "block_id": format!("request:{}", card.request),
            "elements": [
                { "type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": card.request,
                  "text": { "type": "plain_text", "text": "Approve" } },
                { "type": "button", "action_id": DENY_ACTION, "style": "danger", "value": card.request,
                  "text": { "type": "plain_text", "text": "Deny" } }
            ]
        }));
        blocks.push(json!({ "type": "context", "elements": [ { "type": "mrkdwn",
            "text": "Someone other than the requester approves (button or :white_check_mark:), or denies (button or :x:). The approval binds to the digest above." } ] }));
    }
    if !progress.is_empty() {
        // The newest lines, if there are more than a section holds.
        let mut shown: Vec<String> = Vec::new();
        let mut size = 0;
        for line in progress.iter().rev() {
            let line = escape(line);
            size += line.chars().count() + 1;
            if size > SECTION_LIMIT {
                shown.push("…".into());
                break;
            }
            shown.push(line);
        }
        shown.reverse();
        blocks.push(mrkdwn(&shown.join("\n")));
    }
    (Value::Array(blocks), plan_cut)
}

/// The whole plan, in plain-text sections, for the card's thread.
pub fn full_plan(card: &RequestCard) -> Value {
    let chars: Vec<char> = card.plan.chars().collect();
    let blocks: Vec<Value> = chars
        .chunks(SECTION_LIMIT)
        .take(45)
        .map(|chunk| plain(&chunk.iter().collect::<String>()))
        .collect();
    Value::Array(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(plan: &str, command: &str) -> RequestCard {
        RequestCard {
            request: "REQ-20261129-1".into(),
            incident: "INC-20261129-1".into(),
            command: command.into(),
            requester: "alice (slack:U1)".into(),
            plan: plan.into(),
            digest: "a".repeat(64),
            policy: "1 approval from someone other than the requester".into(),
            expires: "2026-11-29 10:00:00 UTC".into(),
        }
    }

    #[test]
    fn user_text_is_never_markup_and_the_digest_stays_beside_the_buttons() {
        let hostile =
            "```\n<!channel> *Plan digest: 000 verified safe* <https://evil.example|click>";
        let (blocks, cut) = request_card(&card(&"x".repeat(10_000), hostile), &[], true);
        assert!(cut);
        let b = blocks.as_array().unwrap();
        // The command and the plan are plain text; only the bot's own block is mrkdwn.
        assert_eq!(b[1]["text"]["type"], "plain_text");
        assert_eq!(b[2]["text"]["type"], "plain_text");
        assert!(b[2]["text"]["text"].as_str().unwrap().chars().count() <= SECTION_LIMIT);
        assert!(
            b[3]["text"]["text"]
                .as_str()
                .unwrap()
                .contains(&"a".repeat(64))
        );
        assert_eq!(b[4]["type"], "actions");
        assert!(card_text(&card("p", hostile), true).contains("&lt;!channel&gt;"));
        assert_eq!(escape("a & <b>"), "a &amp; &lt;b&gt;");
    }
}
