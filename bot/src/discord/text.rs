//! Text for Discord messages. The core's text is shown as text: the characters that would make a
//! masked link (`[x](https://…)`), a mention (`<@…>`, `<#…>`, `@everyone`) or a quote are
//! escaped, and every message is sent with `allowed_mentions` empty (or naming only the person
//! the bot means to mention), so nothing anyone typed can ping a channel.

/// Discord's limit on a message's content.
pub const MESSAGE_LIMIT: usize = 2000;

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' | '<' | '>' | '[' | ']' | '|' | '~' | '*' | '_' => {
                out.push('\\');
                out.push(c);
            }
            // `@everyone` and `@here` shown, never read.
            '@' => out.push_str("@\u{200B}"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            // Direction overrides would make text read other than it is.
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => {}
            c => out.push(c),
        }
    }
    out
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

/// A code block holding `text` as it is (a ``` inside cannot end it).
pub fn code_block(text: &str) -> String {
    format!("```\n{}\n```", text.replace("```", "`\u{200B}``"))
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
        let b = code_block("a\n```\nb");
        assert_eq!(b.matches("```").count(), 2);
    }
}
