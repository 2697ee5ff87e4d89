//! The local console: a chat in the terminal. Each line is a command by the current user;
//! `as <user>` switches user. It reads any `BufRead`, so it can be scripted and tested.

use erlmcp_handlers::approval::Actor;
use erlmcp_handlers::engine::{Engine, Request};
use erlmcp_handlers::reply::{Audience, Outbox, Reply};
use erlmcp_handlers::timeline::Source;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Where the console writes; shared with its outbox so progress and replies interleave in order.
pub type Screen = Arc<Mutex<dyn Write + Send>>;

/// Text for a terminal: control characters (escape sequences that could recolour the screen,
/// retitle the window or move the cursor) and bidirectional overrides (which can make a line read
/// other than it is) become U+FFFD. Line breaks and tabs stay.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
    };
    if text.chars().any(unsafe_char) {
        std::borrow::Cow::Owned(
            text.chars()
                .map(|c| if unsafe_char(c) { '\u{FFFD}' } else { c })
                .collect(),
        )
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Writes one line.
pub fn say(screen: &Screen, text: &str) {
    let mut out = screen.lock().unwrap_or_else(|p| p.into_inner());
    let _ = writeln!(out, "{}", terminal_safe(text));
    let _ = out.flush();
}

pub fn print_reply(screen: &Screen, reply: &Reply) {
    let mut out = screen.lock().unwrap_or_else(|p| p.into_inner());
    let marker = match (reply.is_error, reply.audience) {
        (true, _) => "⚠ ",
        (false, Audience::Requester) => "(only you) ",
        _ => "",
    };
    let _ = writeln!(out, "{marker}{}\n", terminal_safe(reply.text.trim_end()));
    let _ = out.flush();
}

/// Prints messages the engine sends outside a command's own reply (step progress, expiries).
pub struct ConsoleOutbox(pub Screen);

#[async_trait::async_trait]
impl Outbox for ConsoleOutbox {
    async fn post(&self, _channel: &str, reply: Reply) {
        print_reply(&self.0, &reply);
    }
}

/// The login name, for the default console user.
pub fn login_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "operator".into())
}

/// Runs the console until end of input. `echo` repeats each input line (for scripted runs, so the
/// transcript shows who said what).
pub async fn run<R: AsyncBufRead + Unpin>(
    engine: &Engine,
    input: R,
    screen: Screen,
    user: String,
    channel: String,
    echo: bool,
) -> std::io::Result<()> {
    let mut user = user;
    let mut input = input;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        if input.read_until(b'\n', &mut raw).await? == 0 {
            break;
        }
        // A line that is not UTF-8 is read as well as it can be, not the end of the session.
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if echo {
            let mut out = screen.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(out, "{user}> {line}");
        }
        if let Some(rest) = line
            .strip_prefix("as ")
            .or_else(|| (line == "as").then_some(""))
        {
            let name = rest.trim().trim_start_matches('@');
            if name.is_empty() || name.contains(char::is_whitespace) {
                print_reply(
                    &screen,
                    &Reply::error("`as` needs one user name, e.g. `as bob`."),
                );
            } else {
                user = name.to_string();
                print_reply(&screen, &Reply::private(format!("Now acting as {user}.")));
            }
            continue;
        }
        if matches!(line, "quit" | "exit") {
            break;
        }
        // The severity clocks are checked as the console is used.
        if let Err(e) = engine.tick().await {
            tracing::warn!(error = %e, "severity clock check failed");
        }
        let request = Request {
            actor: Actor::person(&user),
            source: Source::Console,
            channel: channel.clone(),
            text: line.to_string(),
        };
        for reply in engine.handle(&request).await {
            print_reply(&screen, &reply);
        }
    }
    Ok(())
}
