//! User text inside the Markdown the bot writes (postmortem, SLA report): shown as the text it
//! is, never as structure. A title with a newline and `## Root cause` stays inside the title; a
//! note with `|` stays in its table cell; `[x](url)` and `<a>` are not links or HTML.

/// One line of literal text: line breaks become spaces, Markdown punctuation is escaped, `<`
/// and `&` become entities.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut prev = ' ';
    for c in s.chars() {
        match c {
            '\r' | '\n' | '\u{2028}' | '\u{2029}' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '|' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            // `[text](url)` is a link only with `](` unbroken.
            '(' if prev == ']' => out.push_str("\\("),
            c if c.is_control() => out.push(' '),
            // Bidirectional overrides can make a line read other than it is.
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
        prev = c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::text;

    #[test]
    fn structure_in_user_text_stays_text() {
        assert_eq!(
            text("API down\n## Root cause"),
            "API down \\#\\# Root cause"
        );
        assert_eq!(text("a | b"), "a \\| b");
        assert_eq!(
            text("[click](http://x) <script>"),
            "[click]\\(http://x) &lt;script>"
        );
        assert_eq!(
            text("pg_is_in_recovery() [a -> b]"),
            "pg_is_in_recovery() [a -> b]"
        );
        assert_eq!(text("plain words, 0 -> 3"), "plain words, 0 -> 3");
    }
}
