//! User text inside the Markdown the bot writes (postmortem, SLA report): shown as the text it
//! is, never as structure. A title with a newline and `## Root cause` stays inside the title; a
//! note with `|` stays in its table cell; `[x](url)` and `<a>` are not links or HTML.

/// One line of literal text: line breaks become spaces, Markdown punctuation is escaped, `<`
/// and `&` become entities.
pub fn text(s: &str) -> String {
    escape(s, false)
}

/// Literal text that begins a line of its own (a summary paragraph): also what only a line's
/// start makes structure of (`>`, `-`, `+`, `=`, `1.`, and `[x]:`, a link definition that turns
/// every `[x]` elsewhere into a link) is escaped.
pub fn line(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, line_start: bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut prev = ' ';
    // Until the first visible character, and while only digits follow it: a line that starts
    // with `>`, `-`, `+`, `=` or `1.` would be a quote, list, rule or heading.
    let mut at_start = line_start;
    let mut only_digits = true;
    for c in s.chars() {
        match c {
            '\r' | '\n' | '\u{2028}' | '\u{2029}' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '|' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            // `[y][ref]` and `[y][]` are links; `[y]: url` at a line's start defines one.
            '[' if at_start || prev == ']' => {
                out.push('\\');
                out.push(c);
            }
            '-' | '+' | '=' | '>' if at_start => {
                out.push('\\');
                out.push(c);
            }
            '.' | ')' if line_start && !at_start && only_digits => {
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
        if !c.is_whitespace() {
            only_digits = only_digits && (at_start || c.is_ascii_digit()) && c.is_ascii_digit();
            at_start = false;
        }
        prev = c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::text;

    #[test]
    fn links_definitions_and_line_starts_stay_text() {
        use super::line;
        assert_eq!(text("[DRILL] failover"), "[DRILL] failover");
        assert_eq!(text("[y][] and [y][ref]"), "[y]\\[] and [y]\\[ref]");
        assert_eq!(
            text("1. not a list inside a cell"),
            "1. not a list inside a cell"
        );
        assert_eq!(
            line("[y]: http://evil.example/phish"),
            "\\[y]: http://evil.example/phish"
        );
        assert_eq!(text("![img](http://x)"), "![img]\\(http://x)");
        assert_eq!(line("> quoted"), "\\> quoted");
        assert_eq!(line("- item"), "\\- item");
        assert_eq!(line("  --- rule"), "  \\--- rule");
        assert_eq!(line("12. twelve"), "12\\. twelve");
        assert_eq!(line("in 2026. a-b+c=d"), "in 2026. a-b+c=d");
    }

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
