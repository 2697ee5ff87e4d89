//! Text for Discord messages. The core's text is shown as text: the characters that would make a
//! masked link (`[x](https://…)`), a mention (`<@…>`, `<#…>`, `@everyone`) or a quote are
//! escaped, and every message is sent with `allowed_mentions` empty (or naming only the person
//! the bot means to mention), so nothing anyone typed can ping a channel.

/// Discord's limit on a message's content.
pub const MESSAGE_LIMIT: usize = 2000;

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        escape_line(line, &mut out);
    }
    out
}

/// One line: text between two lone backticks on the line is code, which Discord shows as it is
/// (escapes there would show as backslashes); everything else is escaped. Discord pairs runs of
/// backticks of equal length, so only runs of exactly one count here: a longer run, and a lone
/// backtick without a partner, are escaped, so the only code spans Discord sees are the ones
/// kept raw here (and they hold no backtick).
fn escape_line(line: &str, out: &mut String) {
    // What is never shown goes first, so it cannot change how backticks pair.
    let line: String = line.chars().filter(|&c| shown(c)).collect();
    let bytes = line.as_bytes();
    let ticks: Vec<usize> = line.match_indices('`').map(|(i, _)| i).collect();
    let lone = |k: usize| {
        let i = ticks[k];
        (i == 0 || bytes[i - 1] != b'`') && bytes.get(i + 1) != Some(&b'`')
    };
    // A span kept raw: a lone backtick at the line's start or after a space (nothing can make
    // it part of a word or a URL), whose very next backtick is lone too, with something between.
    let mut spans = Vec::new();
    let mut k = 0;
    while k + 1 < ticks.len() {
        let (open, close) = (ticks[k], ticks[k + 1]);
        if lone(k) && lone(k + 1) && opens_cleanly(&line, open) && close > open + 1 {
            spans.push((open, close));
            k += 2;
        } else {
            k += 1;
        }
    }
    let mut at = 0;
    for (open, close) in spans {
        escape_plain(&line[at..open], out);
        out.push('`');
        out.push_str(&line[open + 1..close]);
        out.push('`');
        at = close + 1;
    }
    escape_plain(&line[at..], out);
}

/// Whether a backtick at `at` can only open code: at the line's start, or after a space or an
/// opening parenthesis that is not inside a URL (a URL runs to the next space and would take
/// the backtick with it).
fn opens_cleanly(line: &str, at: usize) -> bool {
    let before = &line[..at];
    let word = before
        .rsplit([' ', '\t'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match before.chars().last() {
        None | Some(' ' | '\t') => true,
        Some('(') => !word.contains("://") && !word.contains("www."),
        _ => false,
    }
}

/// Characters that are never shown: control characters and direction overrides (which would
/// make text read other than it is).
fn shown(c: char) -> bool {
    let hidden = (c.is_control() && c != '\t')
        || matches!(
            c,
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
        );
    !hidden
}

fn escape_plain(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' | '<' | '>' | '[' | ']' | '|' | '~' | '*' | '_' | '`' | '#' => {
                out.push('\\');
                out.push(c);
            }
            // `@everyone` and `@here` shown, never read.
            '@' => out.push_str("@\u{200B}"),
            c if !shown(c) => {}
            c => out.push(c),
        }
    }
}

/// `text` in pieces Discord accepts (at most `limit` characters each), cut at line ends where
/// possible; nothing is dropped.
pub fn pieces(text: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut count = 0;
    for line in text.split_inclusive('\n') {
        let n = line.chars().count();
        if count + n > limit && !current.is_empty() {
            out.push(std::mem::take(&mut current));
            count = 0;
        }
        if n > limit {
            for c in line.chars() {
                if count == limit {
                    out.push(std::mem::take(&mut current));
                    count = 0;
                }
                current.push(c);
                count += 1;
            }
        } else {
            current.push_str(line);
            count += n;
        }
    }
    if !current.is_empty() || out.is_empty() {
        out.push(current);
    }
    out
}

/// The core's plain `text` as Discord messages: cut into pieces first, then each escaped, so a
/// cut can never leave part of a code span unpaired and raw.
pub fn messages(text: &str) -> Vec<String> {
    // Escaping at most doubles a piece.
    pieces(text, MESSAGE_LIMIT / 2 - 10)
        .iter()
        .map(|p| escape(p))
        .collect()
}

/// A code block holding `text` as it is: no run of backticks inside can end it (a zero-width
/// space goes between any two), and characters never shown are dropped.
pub fn code_block(text: &str) -> String {
    let mut inner = String::with_capacity(text.len() + 8);
    let mut previous = '\0';
    for c in text.chars().filter(|&c| c == '\n' || shown(c)) {
        if c == '`' && previous == '`' {
            inner.push('\u{200B}');
        }
        inner.push(c);
        previous = c;
    }
    format!("```\n{inner}\n```")
}

/// Text with nothing that could format, link or hide (a channel topic, a one-line field).
pub fn flat(text: &str) -> String {
    text.chars()
        .filter(|&c| shown(c) && c != '\n')
        .map(|c| match c {
            '[' | ']' | '<' | '>' | '`' | '*' | '_' | '~' | '|' => ' ',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_cannot_mention_link_or_format() {
        let e = escape("@everyone [click](https://evil.example) <@123> **bold** \u{202E}x");
        assert!(!e.contains("@everyone"));
        assert!(e.contains("\\[click\\]"));
        assert!(e.contains("\\<@\u{200B}123\\>"));
        assert!(e.contains("\\*\\*bold\\*\\*"));
        assert!(!e.contains('\u{202E}'));
    }

    #[test]
    fn code_spans_stay_as_they_are_and_stray_backticks_cannot_open_one() {
        assert_eq!(
            escape("Roles: none yet (`/erlmcp role ic <user>`)"),
            "Roles: none yet (`/erlmcp role ic <user>`)"
        );
        // A title's lone backtick is escaped, so what follows it is still escaped text.
        let e = escape("title ` [x](https://evil.example) <@1>");
        assert!(
            e.contains("\\`") && e.contains("\\[x\\]") && e.contains("\\<@"),
            "{e}"
        );
        // Spans are paired per line: a backtick on another line is no partner.
        let e = escape("a `b\nc` [x](y)");
        assert!(e.contains("\\[x\\]"), "{e}");
        assert!(!escape("`\u{202E}x`").contains('\u{202E}'));
    }

    #[test]
    fn long_text_is_cut_into_pieces_without_loss() {
        let text = (0..500).map(|i| format!("line {i}\n")).collect::<String>();
        let p = pieces(&text, 2000);
        assert!(p.len() > 1);
        assert!(p.iter().all(|x| x.chars().count() <= 2000));
        assert_eq!(p.concat(), text);
        let long = "x".repeat(4500);
        let p = pieces(&long, 2000);
        assert_eq!(p.len(), 3);
        assert_eq!(p.concat(), long);
    }

    #[test]
    fn a_code_block_cannot_be_closed_from_inside() {
        for ticks in 2..=7 {
            let b = code_block(&format!(
                "a\n{}[x](https://evil.example){}",
                "`".repeat(ticks),
                "\u{202E}\u{7}"
            ));
            assert_eq!(b.matches("``").count(), 2, "{ticks}: {b}");
            assert!(!b.contains('\u{202E}') && !b.contains('\u{7}'));
        }
    }

    #[test]
    fn hidden_characters_and_urls_cannot_change_how_backticks_pair() {
        // An "empty" span of an invisible character would become a double backtick.
        // Dropped first, it leaves a double backtick, escaped (so Discord reads no opener in
        // it); the later span is code, shown as it is.
        let e = escape("DB down `\u{200E}` x `[Reset](https://evil.example/e1) <@1>`");
        assert_eq!(
            e,
            "DB down \\`\\` x `[Reset](https://evil.example/e1) <@1>`"
        );
        let e = escape("see (https://x.example/a(`[V](https://evil.example)`");
        assert!(e.contains("\\[V\\]"), "{e}");
        // A URL running into a backtick takes it: such a backtick opens nothing.
        let e = escape("see https://status.example.com/x` [Verify](https://evil.example/u1)`");
        assert!(e.contains("\\[Verify\\]"), "{e}");
        // In a fence, dropped characters cannot join backticks into a closing run.
        let b = code_block("a`\u{200E}`\u{200E}`[x](https://evil.example)");
        assert_eq!(b.matches("``").count(), 2, "{b}");
        assert_eq!(
            flat("a [x](https://e) <@1> `c`\u{202E}"),
            "a  x (https://e)  @1   c "
        );
    }

    #[test]
    fn runs_of_backticks_never_pair_as_code() {
        // Discord would read ``x`y`` as code and then a live link.
        let e = escape("API down ``x`y``[verify](https://evil.example) ` ");
        assert!(e.contains("\\[verify\\]"), "{e}");
        let e = escape("```[a](https://evil.example)```");
        assert!(e.contains("\\[a\\]"), "{e}");
    }
}
