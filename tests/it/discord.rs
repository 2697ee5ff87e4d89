//! Discord through the shipped binary: `serve` with `DISCORD_*` pointed at a local REST stand-in
//! and a fake gateway (`erlmcp_tests::discord`), driven by interactions signed with a test Ed25519
//! key in Discord's documented payload formats, and by gateway reactions.

use crate::program::{Env, Served, Workdir, run};
use crate::shipped::incident_id;
use erlmcp_tests::discord::{
    self as dc, APP_ID, BOT_TOKEN, DEFAULT_CHANNEL_ID, DiscordFake, FakeGateway, GUILD_ID,
    InteractionSigner, Signing,
};
use serde_json::{Value, json};
use std::time::Duration;

const ALICE: u64 = 1_300_000_000_000_001_001;
const BOB: u64 = 1_300_000_000_000_001_002;
const HELPER_BOT: u64 = 1_300_000_000_000_001_003;
const SECURITY_ROLE: u64 = 1_300_000_000_000_004_242;
const WAIT: Duration = Duration::from_secs(20);

struct Bench {
    w: Workdir,
    fake: DiscordFake,
    gateway: FakeGateway,
    signer: InteractionSigner,
    bot: Served,
}

fn discord_env(fake: &DiscordFake, signer: &InteractionSigner, db_url: &str) -> Env {
    Env::new()
        .set("DISCORD_TOKEN", BOT_TOKEN)
        .set("DISCORD_APPLICATION_ID", APP_ID.to_string())
        .set("DISCORD_PUBLIC_KEY", signer.public_key_hex())
        .set("DISCORD_GUILD_ID", GUILD_ID.to_string())
        .set("DISCORD_API_URL", fake.url())
        .set("DATABASE_URL", db_url)
        .set(
            "ERLMCP_GROUPS",
            format!("security:discord-role:{SECURITY_ROLE}"),
        )
}

impl Bench {
    async fn start(extra: &[(&str, &str)]) -> Bench {
        let w = Workdir::new();
        let fake = DiscordFake::start().await;
        let gateway = FakeGateway::start(&fake).await;
        let signer = InteractionSigner::new();
        let mut env = discord_env(&fake, &signer, &w.db_url());
        for (k, v) in extra {
            env = env.set(k, *v);
        }
        let bot = Served::start(w.path(), &env, &[]).await;
        Bench {
            w,
            fake,
            gateway,
            signer,
            bot,
        }
    }

    /// `who` reacts with `emoji` to `message`, heard over the gateway.
    fn react(&self, who: u64, name: &str, bot: bool, channel: u64, message: u64, emoji: &str) {
        self.gateway.dispatch(
            "MESSAGE_REACTION_ADD",
            dc::reaction_add(
                &dc::user(who, name, bot),
                &[],
                channel,
                message,
                GUILD_ID,
                emoji,
            ),
        );
    }

    /// The next request card posted in `channel`: its request id, the message as the stand-in
    /// keeps it, and the content the bot sent.
    async fn card(&self, channel: u64) -> (String, Value, String) {
        let path = format!("/channels/{channel}/messages");
        let call = self
            .fake
            .wait_for(
                |c| {
                    c.is("POST", &path)
                        && c.body["components"].to_string().contains("erlmcp:approve:")
                },
                WAIT,
            )
            .await;
        let content = call.body["content"].as_str().unwrap().to_string();
        let request = regex::Regex::new(r"REQ-\d{8}-\d+")
            .unwrap()
            .find(&content)
            .unwrap()
            .as_str()
            .to_string();
        let card = self
            .fake
            .messages_in(channel)
            .into_iter()
            .find(|m| m["content"].as_str().is_some_and(|c| c.contains(&request)))
            .expect("the card is in the channel");
        (request, card, content)
    }

    fn endpoint(&self) -> String {
        format!("{}/discord/interactions", self.bot.url)
    }

    async fn send(&self, body: &Value) -> (u16, Value) {
        let r = self
            .signer
            .signed_post(&self.endpoint(), &body.to_string())
            .await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn erlmcp(&self, who: u64, name: &str, roles: &[u64], channel: u64, text: &str) -> Value {
        let body = dc::slash_command(
            APP_ID,
            GUILD_ID,
            channel,
            &dc::user(who, name, false),
            roles,
            "erlmcp",
            json!([{ "name": "command", "type": 3, "value": text }]),
        );
        let (status, answer) = self.send(&body).await;
        assert_eq!(status, 200, "{answer}\n{}", self.bot.log());
        body
    }

    /// Messages the bot posted in `channel` (content).
    fn posted(&self, channel: &str) -> Vec<String> {
        self.fake
            .calls_to("POST", &format!("/channels/{channel}/messages"))
            .into_iter()
            .map(|c| c.body["content"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    async fn wait_posted(&self, channel: &str, needle: &str) -> Value {
        let path = format!("/channels/{channel}/messages");
        self.fake
            .wait_for(
                |c| {
                    c.is("POST", &path)
                        && c.body["content"]
                            .as_str()
                            .is_some_and(|t| t.contains(needle))
                },
                WAIT,
            )
            .await
            .body
    }

    /// Follow-ups (ephemeral answers) and edits of the deferred answer, for one interaction.
    async fn wait_private(&self, token: &str, needle: &str) -> Value {
        self.fake
            .wait_for(
                |c| {
                    c.route()
                        .starts_with(&format!("/webhooks/{APP_ID}/{token}"))
                        && c.body["content"]
                            .as_str()
                            .is_some_and(|t| t.contains(needle))
                },
                WAIT,
            )
            .await
            .body
    }
}

fn token_of(interaction: &Value) -> String {
    interaction["token"].as_str().unwrap().to_string()
}

/// The whole failover on Discord: commands registered, declare → channel with the summary
/// pinned and the declarer mentioned → `/failover us-west-2` → card with buttons → the
/// requester's own button and ✅, and a bot's ✅, refused → a second person's ✅ over the
/// gateway → steps on the card → postmortem naming the Discord approver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_runs_on_discord_from_declaration_to_postmortem() {
    let b = Bench::start(&[]).await;
    // Commands for the guild, with the topology's regions as choices.
    let commands = b.fake.commands(GUILD_ID);
    let names: Vec<&str> = commands.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(
        names,
        ["erlmcp", "failover", "Add to timeline"],
        "{commands:?}"
    );
    let regions: Vec<&str> = commands[1]["options"][0]["choices"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["value"].as_str())
        .collect();
    assert!(
        regions.contains(&"us-west-2") && regions.len() == 6,
        "{regions:?}"
    );
    // The gateway session asks for guilds and reactions, nothing privileged.
    let identify = b.gateway.wait_identified(WAIT).await;
    assert_eq!(identify.intents, dc::INTENTS);

    // A PING is answered with a PONG.
    let (status, pong) = b.send(&dc::ping()).await;
    assert_eq!((status, pong["type"].as_i64()), (200, Some(1)));

    let declare = b
        .erlmcp(
            ALICE,
            "alice",
            &[],
            DEFAULT_CHANNEL_ID,
            "p0 declare API down in us-east-1",
        )
        .await;
    // The incident's channel: created, the summary posted mentioning the declarer, pinned.
    let created = b
        .fake
        .wait_for(
            |c| c.is("POST", &format!("/guilds/{GUILD_ID}/channels")),
            WAIT,
        )
        .await;
    assert!(
        created.body["name"].as_str().unwrap().starts_with("inc-"),
        "{}",
        created.body
    );
    let pin = b
        .fake
        .wait_for(|c| c.method == "PUT" && c.route().contains("/pins/"), WAIT)
        .await;
    let channel = pin.route().split('/').nth(2).unwrap().to_string();
    let summary = b.posted(&channel).remove(0);
    assert!(
        summary.starts_with(&format!("<@{ALICE}> INC-")),
        "{summary}"
    );
    let summary_call = &b
        .fake
        .calls_to("POST", &format!("/channels/{channel}/messages"))[0];
    assert_eq!(
        summary_call.body["allowed_mentions"],
        json!({ "parse": [], "users": [ALICE.to_string()] }),
        "only the declarer is mentioned"
    );
    let announced = b
        .wait_posted(&DEFAULT_CHANNEL_ID.to_string(), "is being handled in")
        .await;
    assert!(
        announced["content"]
            .as_str()
            .unwrap()
            .contains(&format!("<#{channel}>")),
        "{announced}"
    );
    // The deferred answer is completed.
    b.fake
        .wait_for(
            |c| {
                c.is(
                    "PATCH",
                    &format!(
                        "/webhooks/{APP_ID}/{}/messages/@original",
                        token_of(&declare)
                    ),
                )
            },
            WAIT,
        )
        .await;

    // A replay of the same interaction (signed anew) is refused and changes nothing.
    let (status, _) = b.send(&declare).await;
    assert_eq!(status, 401);

    // `/failover us-west-2` in the incident's channel: the card, with its buttons.
    let failover = dc::slash_command(
        APP_ID,
        GUILD_ID,
        channel.parse().unwrap(),
        &dc::user(ALICE, "alice", false),
        &[],
        "failover",
        json!([{ "name": "region", "type": 3, "value": "us-west-2" }]),
    );
    let (status, answer) = b.send(&failover).await;
    assert_eq!(
        (status, answer["type"].as_i64()),
        (200, Some(5)),
        "{answer}"
    );
    let (request, card, content) = b.card(channel.parse().unwrap()).await;
    assert!(content.contains("Plan digest"), "{content}");
    let card_id: u64 = card["id"].as_str().unwrap().parse().unwrap();

    // The requester's own button: refused, to her only.
    let press = dc::button(
        APP_ID,
        GUILD_ID,
        channel.parse().unwrap(),
        &dc::user(ALICE, "alice", false),
        &[],
        &format!("erlmcp:approve:{request}"),
        &card,
    );
    let (status, answer) = b.send(&press).await;
    assert_eq!(
        (status, answer["type"].as_i64()),
        (200, Some(6)),
        "{answer}"
    );
    let refusal = b
        .wait_private(&token_of(&press), "a second person must approve it")
        .await;
    assert_eq!(
        refusal["flags"].as_u64().unwrap() & 64,
        64,
        "ephemeral: {refusal}"
    );

    // Her own ✅ and another bot's ✅ over the gateway: refused.
    b.react(
        ALICE,
        "alice",
        false,
        channel.parse().unwrap(),
        card_id,
        "✅",
    );
    b.wait_posted(&channel, "a second person must approve it")
        .await;
    b.react(
        HELPER_BOT,
        "ci-bot",
        true,
        channel.parse().unwrap(),
        card_id,
        "✅",
    );
    b.wait_posted(&channel, "bots and apps cannot approve")
        .await;

    // Bob's ✅: the run goes, step by step on the card, and its outcome is posted.
    b.react(BOB, "bob", false, channel.parse().unwrap(), card_id, "✅");
    b.wait_posted(&channel, "🏁 RUN-").await;
    let edits = b
        .fake
        .calls_to("PATCH", &format!("/channels/{channel}/messages/{card_id}"));
    assert!(
        edits.iter().any(|c| c.body["content"]
            .as_str()
            .is_some_and(|t| t.contains("✔ RUN-"))),
        "progress is shown on the card: {edits:?}"
    );
    assert!(
        edits.last().unwrap().body["components"] == json!([]),
        "a decided card has no buttons"
    );
    // The same reaction heard again (another replica's session, a resend) is taken once.
    b.react(BOB, "bob", false, channel.parse().unwrap(), card_id, "✅");

    // "Add to timeline" on a person's message.
    let said = dc::message(
        dc::snowflake(),
        channel.parse().unwrap(),
        &dc::user(BOB, "bob", false),
        "Standby lag was 40 s before promotion",
        json!([]),
    );
    let add = dc::message_command(
        APP_ID,
        GUILD_ID,
        channel.parse().unwrap(),
        &dc::user(ALICE, "alice", false),
        &[],
        "Add to timeline",
        &said,
    );
    let (status, _) = b.send(&add).await;
    assert_eq!(status, 200);
    b.wait_private(&token_of(&add), "timeline").await;

    // Every call the story made needs only what deploy/discord-app.md grants.
    let mut needed = std::collections::BTreeSet::new();
    for c in b.fake.calls() {
        let route = format!("{} {}", c.method, template(c.route()));
        let Some(perms) = erlmcp_bot::discord::permissions::for_route(&route) else {
            panic!("{route} is not in the permission table (bot/src/discord/permissions.rs)");
        };
        needed.extend(perms);
    }
    let granted: std::collections::BTreeSet<&str> = erlmcp_bot::discord::permissions::NEEDED
        .iter()
        .map(|(name, ..)| *name)
        .collect();
    assert!(needed.is_subset(&granted), "{needed:?} vs {granted:?}");
    for used in [
        "MANAGE_CHANNELS",
        "SEND_MESSAGES",
        "PIN_MESSAGES",
        "VIEW_CHANNEL",
    ] {
        assert!(needed.contains(used), "the story used {used}: {needed:?}");
    }
    let app_md = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/discord-app.md"
    ))
    .unwrap();
    let integer = erlmcp_bot::discord::permissions::integer();
    assert!(
        app_md.contains(&format!("permissions={integer}")),
        "deploy/discord-app.md's install URL carries {integer}"
    );
    for name in &granted {
        assert!(
            app_md.contains(&format!("`{name}`")),
            "{name} is explained in deploy/discord-app.md"
        );
    }

    let mut bot = b.bot;
    assert_eq!(bot.terminate().await, Some(0), "{}", bot.log());
    let plain = Env::new().set("DATABASE_URL", b.w.db_url());
    let verify = run(b.w.path(), &plain, &["timeline", "verify"], "").await;
    assert_eq!(verify.code, 0, "{}", verify.all());
    let inc = incident_id(&verify.stdout);
    let pm = run(b.w.path(), &plain, &["postmortem", &inc], "").await;
    for expected in [
        "# Postmortem: API down in us-east-1",
        &format!("### {request} `/failover us-west-2`: done"),
        &format!("bob (discord:{BOB})"),
        "| alice | discord | Declared P0",
        "Standby lag was 40 s before promotion",
    ] {
        assert!(
            pm.stdout.contains(expected),
            "postmortem lacks {expected:?}:\n{}",
            pm.stdout
        );
    }
    // Bob's approval counted once, whatever the repeats.
    let timeline = run(b.w.path(), &plain, &["timeline", "show", &inc], "")
        .await
        .stdout;
    assert_eq!(
        timeline
            .matches(&format!("bob approved {request} ("))
            .count(),
        1,
        "{timeline}"
    );
}

/// Forged, stale, tampered, unsigned and replayed interactions get 401 and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stale_and_replayed_interactions_are_refused() {
    let b = Bench::start(&[]).await;
    let declare = dc::slash_command(
        APP_ID,
        GUILD_ID,
        DEFAULT_CHANNEL_ID,
        &dc::user(ALICE, "alice", false),
        &[],
        "erlmcp",
        json!([{ "name": "command", "type": 3, "value": "p1 declare forged" }]),
    );
    let body = declare.to_string();
    for signing in [
        Signing::NoHeaders,
        Signing::WrongKey,
        Signing::TamperedBody,
        Signing::Stale,
        Signing::At(InteractionSigner::now() + 900),
    ] {
        let r = b.signer.post(&b.endpoint(), &body, signing).await;
        assert_eq!(r.status(), 401, "{signing:?}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let plain = Env::new().set("DATABASE_URL", b.w.db_url());
    let listed = run(b.w.path(), &plain, &["incidents"], "").await;
    assert!(!listed.stdout.contains("forged"), "{}", listed.all());
    // Genuine once, then the same interaction again: 401, one incident.
    assert_eq!(
        b.signer.signed_post(&b.endpoint(), &body).await.status(),
        200
    );
    assert_eq!(
        b.signer.signed_post(&b.endpoint(), &body).await.status(),
        401
    );
    b.fake
        .wait_for(
            |c| c.is("POST", &format!("/guilds/{GUILD_ID}/channels")),
            WAIT,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        b.fake
            .calls_to("POST", &format!("/guilds/{GUILD_ID}/channels"))
            .len(),
        1
    );
    // Another server's command is refused, saying which one is served.
    let other = dc::slash_command(
        APP_ID,
        42,
        DEFAULT_CHANNEL_ID,
        &dc::user(ALICE, "alice", false),
        &[],
        "erlmcp",
        json!([{ "name": "command", "type": 3, "value": "status" }]),
    );
    let (status, answer) = b.send(&other).await;
    assert_eq!(status, 200);
    assert!(
        answer["data"]["content"]
            .as_str()
            .unwrap()
            .contains("serves one Discord server"),
        "{answer}"
    );
}

/// Discord's 429 is waited out as its `retry_after` says; a missing permission reaches the
/// person with Discord's own message; approver groups by role id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_waited_out_and_refusals_are_said() {
    let b = Bench::start(&[]).await;
    // The first message post is rate limited twice: it still arrives.
    b.fake.fail_next(
        "POST",
        "/channels/",
        429,
        dc::rate_limited_body(0.3, false),
        2,
    );
    // Pinning is not allowed to the bot's role.
    b.fake
        .fail_next("PUT", "/channels/", 403, dc::missing_permissions_body(), 1);
    b.erlmcp(
        ALICE,
        "alice",
        &[],
        DEFAULT_CHANNEL_ID,
        "p1 declare Latency in eu-west-1",
    )
    .await;
    let pin = b
        .fake
        .wait_for(|c| c.method == "PUT" && c.route().contains("/pins/"), WAIT)
        .await;
    let channel = pin.route().split('/').nth(2).unwrap().to_string();
    let said = b.wait_posted(&channel, "Could not pin the summary").await;
    let text = said["content"].as_str().unwrap();
    assert!(
        text.contains("Missing Permissions") && text.contains("50013"),
        "{text}"
    );
    let posts = b.fake.calls_to("POST", "/channels/");
    assert!(
        posts.len() >= 3,
        "the rate-limited post was sent again: {posts:?}"
    );

    // A security isolation needs the security group: a person without the role is refused,
    // one with the role (read from the interaction's member roles) counts.
    b.erlmcp(ALICE, "alice", &[], channel.parse().unwrap(), "isolate")
        .await;
    let (request, card, _) = b.card(channel.parse().unwrap()).await;
    let no_role = dc::button(
        APP_ID,
        GUILD_ID,
        channel.parse().unwrap(),
        &dc::user(BOB, "bob", false),
        &[],
        &format!("erlmcp:approve:{request}"),
        &card,
    );
    // Its answer's webhook is gone (as after Discord's 15 minutes): said in the channel instead.
    b.fake.fail_next(
        "POST",
        &format!("/webhooks/{APP_ID}/"),
        404,
        dc::error_body(10015, "Unknown Webhook"),
        1,
    );
    b.send(&no_role).await;
    let said = b.wait_posted(&channel, "group security").await;
    assert!(
        said["content"]
            .as_str()
            .unwrap()
            .starts_with(&format!("<@{BOB}>")),
        "{said}"
    );
    let carol = 1_300_000_000_000_001_004;
    let with_role = dc::button(
        APP_ID,
        GUILD_ID,
        channel.parse().unwrap(),
        &dc::user(carol, "carol", false),
        &[SECURITY_ROLE],
        &format!("erlmcp:approve:{request}"),
        &card,
    );
    b.send(&with_role).await;
    b.wait_posted(&channel, "🏁 RUN-").await;
}

/// `/channels/123/messages/456` -> `/channels/{channel}/messages/{message}`.
fn template(route: &str) -> String {
    let mut out = Vec::new();
    let mut previous = "";
    let mut after_webhook = 0;
    for seg in route.split('/') {
        let numeric = !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit());
        let named = if after_webhook == 2 {
            after_webhook = 0;
            "{token}".to_string()
        } else if numeric {
            match previous {
                "applications" => "{app}".into(),
                "guilds" => "{guild}".into(),
                "channels" => "{channel}".into(),
                "messages" | "pins" => "{message}".into(),
                "members" | "thread-members" | "users" => "{user}".into(),
                "webhooks" => {
                    after_webhook = 2;
                    "{app}".into()
                }
                _ => seg.to_string(),
            }
        } else {
            seg.to_string()
        };
        previous = seg;
        out.push(named);
    }
    out.join("/")
}

/// A thread per incident when configured: made in the channel where it was declared, the
/// declarer added to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_can_live_in_threads() {
    let b = Bench::start(&[("DISCORD_INCIDENT_PLACE", "thread")]).await;
    b.erlmcp(
        ALICE,
        "alice",
        &[],
        DEFAULT_CHANNEL_ID,
        "p2 declare Slow dashboards",
    )
    .await;
    let thread = b
        .fake
        .wait_for(
            |c| c.is("POST", &format!("/channels/{DEFAULT_CHANNEL_ID}/threads")),
            WAIT,
        )
        .await;
    assert_eq!(thread.body["type"], 11, "{}", thread.body);
    b.fake
        .wait_for(
            |c| c.method == "PUT" && c.route().contains(&format!("/thread-members/{ALICE}")),
            WAIT,
        )
        .await;
    b.fake
        .wait_for(|c| c.method == "PUT" && c.route().contains("/pins/"), WAIT)
        .await;
    assert!(
        b.fake
            .calls_to("POST", &format!("/guilds/{GUILD_ID}/channels"))
            .is_empty()
    );
    let thread_id: u64 = b
        .fake
        .calls_to("PUT", "/channels/")
        .iter()
        .find(|c| c.route().contains("/thread-members/"))
        .and_then(|c| c.route().split('/').nth(2).map(str::to_string))
        .unwrap()
        .parse()
        .unwrap();

    // ❌ on a card denies it, with who denied it.
    b.erlmcp(ALICE, "alice", &[], thread_id, "scale us-east-1 4")
        .await;
    let (request, card, _) = b.card(thread_id).await;
    let card_id: u64 = card["id"].as_str().unwrap().parse().unwrap();
    b.react(BOB, "bob", false, thread_id, card_id, "❌");
    b.wait_posted(&thread_id.to_string(), "denied").await;

    // 📌 on a person's message puts it on the timeline, by its author.
    let said = dc::message(
        dc::snowflake(),
        thread_id,
        &dc::user(BOB, "bob", false),
        "Dashboards slow since the 14:02 deploy",
        json!([]),
    );
    let said_id: u64 = said["id"].as_str().unwrap().parse().unwrap();
    b.fake.insert_message(said);
    // The first read fails; reacting again (remove, then add: how Discord reacts again) retries.
    b.fake.fail_next(
        "GET",
        &format!("/channels/{thread_id}/messages/{said_id}"),
        500,
        dc::error_body(0, "Internal Server Error"),
        1,
    );
    b.react(ALICE, "alice", false, thread_id, said_id, "📌");
    b.wait_posted(&thread_id.to_string(), "React again to retry")
        .await;
    b.gateway.dispatch(
        "MESSAGE_REACTION_REMOVE",
        json!({ "user_id": ALICE.to_string(), "channel_id": thread_id.to_string(),
                "message_id": said_id.to_string(), "guild_id": GUILD_ID.to_string(),
                "emoji": { "id": null, "name": "📌" }, "burst": false, "type": 0 }),
    );
    b.react(ALICE, "alice", false, thread_id, said_id, "📌");
    b.wait_posted(&thread_id.to_string(), "timeline").await;
    let plain = Env::new().set("DATABASE_URL", b.w.db_url());
    let listed = run(b.w.path(), &plain, &["incidents"], "").await;
    let inc = incident_id(&listed.stdout);
    let timeline = run(b.w.path(), &plain, &["timeline", "show", &inc], "")
        .await
        .stdout;
    assert!(
        timeline.contains("Dashboards slow since the 14:02 deploy"),
        "{timeline}"
    );
    assert!(
        timeline.contains(&request) && timeline.contains("denied"),
        "{timeline}"
    );
}

/// One `serve` for both platforms: each incident's messages go to the platform it lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_serve_runs_slack_and_discord_side_by_side() {
    let w = Workdir::new();
    let fake = DiscordFake::start().await;
    let _gateway = FakeGateway::start(&fake).await;
    let signer = InteractionSigner::new();
    let slack = erlmcp_tests::slack_fake::FakeSlack::start().await;
    let mut env = discord_env(&fake, &signer, &w.db_url());
    for (k, v) in crate::shipped::slack_env(&slack, &w.db_url()).0 {
        env = env.set(&k, v);
    }
    let bot = Served::start(w.path(), &env, &[]).await;
    assert!(
        bot.log().contains("serving Slack and Discord"),
        "{}",
        bot.log()
    );
    let b = Bench {
        w,
        fake,
        gateway: _gateway,
        signer,
        bot,
    };
    b.erlmcp(
        ALICE,
        "alice",
        &[],
        DEFAULT_CHANNEL_ID,
        "p1 declare On Discord",
    )
    .await;
    let signed =
        erlmcp_tests::slack_fake::SignedSlack::new(&b.bot.url, &slack, crate::shipped::SECRET);
    assert_eq!(
        signed
            .command("U_CAROL", "C_GENERAL", "/erlmcp", "p1 declare On Slack")
            .await
            .status(),
        200
    );
    slack
        .wait_until("the Slack incident's summary is pinned", |c| {
            c.iter().any(|c| c.method == "pins.add")
        })
        .await;
    b.fake
        .wait_for(|c| c.method == "PUT" && c.route().contains("/pins/"), WAIT)
        .await;
    let on_slack: Vec<String> = slack
        .calls("chat.postMessage")
        .iter()
        .map(|c| c.form["text"].clone())
        .collect();
    assert!(
        on_slack.iter().all(|t| !t.contains("On Discord")),
        "{on_slack:?}"
    );
    assert!(
        on_slack.iter().any(|t| t.contains("On Slack")),
        "{on_slack:?}"
    );
    let on_discord: Vec<String> = b
        .fake
        .calls_to("POST", "/channels/")
        .iter()
        .filter_map(|c| c.body["content"].as_str().map(str::to_string))
        .collect();
    assert!(
        on_discord.iter().all(|t| !t.contains("On Slack")),
        "{on_discord:?}"
    );
    assert!(
        on_discord.iter().any(|t| t.contains("On Discord")),
        "{on_discord:?}"
    );
}

/// `serve` killed with SIGKILL after it deferred a command's answer, mid-way through it: the
/// command was recorded once, and a restarted `serve` tells the person, through the
/// interaction (whose token still works), that it was interrupted; the "thinking…" ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_interrupted_by_a_kill_is_said_to_its_person() {
    let w = Workdir::new();
    let fake = DiscordFake::start().await;
    let _gateway = FakeGateway::start(&fake).await;
    let signer = InteractionSigner::new();
    let env = discord_env(&fake, &signer, &w.db_url());
    let mut bot = Served::start(w.path(), &env, &[]).await;
    // Creating the incident's channel is rate limited for 25 s: the command is mid-way.
    fake.fail_next(
        "POST",
        &format!("/guilds/{GUILD_ID}/channels"),
        429,
        dc::rate_limited_body(25.0, false),
        1,
    );
    let declare = dc::slash_command(
        APP_ID,
        GUILD_ID,
        DEFAULT_CHANNEL_ID,
        &dc::user(ALICE, "alice", false),
        &[],
        "erlmcp",
        json!([{ "name": "command", "type": 3, "value": "p1 declare Killed mid-way" }]),
    );
    let r = signer
        .signed_post(
            &format!("{}/discord/interactions", bot.url),
            &declare.to_string(),
        )
        .await;
    assert_eq!(r.status(), 200);
    fake.wait_for(
        |c| c.is("POST", &format!("/guilds/{GUILD_ID}/channels")),
        WAIT,
    )
    .await;
    bot.kill9().await;

    let bot = Served::start(w.path(), &env, &[]).await;
    let token = token_of(&declare);
    let told = fake
        .wait_for(
            |c| {
                c.route()
                    .starts_with(&format!("/webhooks/{APP_ID}/{token}"))
                    && c.body["content"]
                        .as_str()
                        .is_some_and(|t| t.contains("was being processed when the bot stopped"))
            },
            Duration::from_secs(90),
        )
        .await;
    assert_eq!(
        told.body["flags"].as_u64().unwrap() & 64,
        64,
        "to the person only: {}",
        told.body
    );
    assert!(
        told.body["content"]
            .as_str()
            .unwrap()
            .contains("p1 declare Killed mid-way"),
        "{}",
        told.body
    );
    // Recorded once, and told once.
    let plain = Env::new().set("DATABASE_URL", w.db_url());
    let listed = run(w.path(), &plain, &["incidents"], "").await;
    assert_eq!(
        listed.stdout.matches("Killed mid-way").count(),
        1,
        "{}",
        listed.all()
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    let notices = fake
        .calls()
        .iter()
        .filter(|c| {
            c.body["content"]
                .as_str()
                .is_some_and(|t| t.contains("was being processed when the bot stopped"))
        })
        .count();
    assert_eq!(notices, 1, "{}", bot.log());
}
