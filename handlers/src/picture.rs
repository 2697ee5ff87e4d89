//! The timeline picture: an incident's span on a time axis, its key moments, the §8.1 target
//! lines of its severity, and each run's steps as bars coloured by outcome. Plain SVG text made
//! here, so the postmortem can carry it without a browser; every piece of user text is escaped.

use crate::incident::Incident;
use crate::postmortem::RequestRecord;
use crate::run::StepState;
use crate::severity::human_duration;
use chrono::{DateTime, Utc};
use std::fmt::Write;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 20.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 70.0;
const ROW: f64 = 22.0;

/// Text for XML: `& < > " '` escaped, control characters dropped.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 has no place for control characters or U+FFFE/U+FFFF.
            c if c.is_control() || c == '\u{fffe}' || c == '\u{ffff}' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The picture of `inc` as it stands at `now`.
pub fn timeline_svg(inc: &Incident, records: &[RequestRecord], now: DateTime<Utc>) -> String {
    let start = inc.declared_at;
    let response_due = start + inc.severity.response_target();
    let resolution_due = start + inc.severity.resolution_target();
    let mut last = inc.closed_at.or(inc.resolved_at).unwrap_or(now);
    let steps: Vec<_> = records
        .iter()
        .filter_map(|r| r.run.as_ref())
        .flat_map(|(run, steps)| steps.iter().map(move |s| (run, s)))
        .collect();
    for (_, s) in &steps {
        if let Some(t) = s.finished_at.or(s.started_at) {
            last = last.max(t);
        }
    }
    for t in [inc.acknowledged_at, inc.mitigated_at]
        .into_iter()
        .flatten()
    {
        last = last.max(t);
    }
    // A little room after the last moment; at least a minute so a short drill is readable.
    let span = ((last - start).num_milliseconds().max(60_000) as f64) * 1.08;
    let x = |t: DateTime<Utc>| {
        let ms = (t - start).num_milliseconds().max(0) as f64;
        LEFT + (ms / span).min(1.0) * (WIDTH - LEFT - RIGHT)
    };
    let height = TOP + ROW * (steps.len() as f64 + 1.0) + 60.0;
    let mut o = String::new();
    let _ = write!(
        o,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12" role="img" aria-label="Timeline of {id}">"##,
        id = xml(inc.id.as_str())
    );
    let _ = write!(
        o,
        r##"<rect width="100%" height="100%" fill="#ffffff"/><text x="{LEFT}" y="20" font-size="15" font-weight="bold">{} — {} {}</text>"##,
        xml(inc.id.as_str()),
        inc.severity,
        xml(&inc.title)
    );
    // The axis, with its start and end times.
    let axis_y = height - 40.0;
    let _ = write!(
        o,
        r##"<line x1="{LEFT}" y1="{axis_y}" x2="{}" y2="{axis_y}" stroke="#333"/><text x="{LEFT}" y="{}" fill="#333">{} UTC</text><text x="{}" y="{}" fill="#333" text-anchor="end">+{}</text>"##,
        WIDTH - RIGHT,
        axis_y + 16.0,
        start.format("%Y-%m-%d %H:%M:%S"),
        WIDTH - RIGHT,
        axis_y + 16.0,
        xml(&human_duration(chrono::Duration::milliseconds(span as i64)))
    );
    // Target lines: drawn where they fall, or named at the right edge when beyond the span.
    for (name, due) in [("respond", response_due), ("resolve", resolution_due)] {
        let beyond = (due - start).num_milliseconds() as f64 > span;
        let label = format!("{name} target {}", human_duration(due - start));
        if beyond {
            let _ = write!(
                o,
                r##"<text x="{}" y="{}" fill="#b00020" text-anchor="end" class="target">{} (beyond) →</text>"##,
                WIDTH - RIGHT,
                if name == "respond" { 38.0 } else { 52.0 },
                xml(&label)
            );
        } else {
            let tx = x(due);
            let _ = write!(
                o,
                r##"<line x1="{tx}" y1="30" x2="{tx}" y2="{axis_y}" stroke="#b00020" stroke-dasharray="6 4" class="target"/><text x="{}" y="{}" fill="#b00020" class="target">{}</text>"##,
                tx + 3.0,
                if name == "respond" { 38.0 } else { 52.0 },
                xml(&label)
            );
        }
    }
    // Key moments.
    let moments = [
        ("declared", Some(inc.declared_at)),
        ("acknowledged", inc.acknowledged_at),
        ("mitigated", inc.mitigated_at),
        ("resolved", inc.resolved_at),
    ];
    for (i, (name, t)) in moments.iter().enumerate() {
        let Some(t) = t else { continue };
        let mx = x(*t);
        let _ = write!(
            o,
            r##"<line x1="{mx}" y1="{}" x2="{mx}" y2="{axis_y}" stroke="#1a5fb4" class="moment"/><circle cx="{mx}" cy="{axis_y}" r="4" fill="#1a5fb4"/><text x="{}" y="{}" fill="#1a5fb4" class="moment">{name} {}</text>"##,
            TOP - 8.0,
            mx + 3.0,
            axis_y - 6.0 - 12.0 * i as f64,
            t.format("%H:%M:%S")
        );
    }
    // One row per step: a bar from its start to its end (or now), coloured by outcome.
    for (row, (run, s)) in steps.iter().enumerate() {
        let y = TOP + ROW * row as f64;
        let Some(began) = s.started_at else {
            let _ = write!(
                o,
                r##"<text x="{LEFT}" y="{}" fill="#777" class="step">{} step {} {}: not started</text>"##,
                y + 14.0,
                xml(run.id.as_str()),
                s.idx,
                xml(&s.name)
            );
            continue;
        };
        let ended = s.finished_at.unwrap_or(now);
        let (fill, word) = match s.state {
            StepState::Done => ("#2e7d32", "done"),
            StepState::Failed => ("#c62828", "failed"),
            StepState::Skipped => ("#9e9e9e", "skipped"),
            StepState::Running => ("#f9a825", "running"),
            StepState::Pending => ("#9e9e9e", "pending"),
        };
        let bx = x(began);
        let bw = (x(ended) - bx).max(3.0);
        let _ = write!(
            o,
            r##"<rect x="{bx}" y="{y}" width="{bw}" height="{}" fill="{fill}" rx="2" class="step {word}"><title>{} step {} {}: {word} in {}</title></rect><text x="{}" y="{}" fill="#222" class="step-label">{} {}. {} ({word}, {})</text>"##,
            ROW - 6.0,
            xml(run.id.as_str()),
            s.idx,
            xml(&s.name),
            xml(&human_duration(ended - began)),
            (bx + bw + 4.0).min(WIDTH - 300.0),
            y + 12.0,
            xml(run.id.as_str()),
            s.idx,
            xml(&s.name),
            xml(&human_duration(ended - began))
        );
    }
    o.push_str("</svg>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_escaped() {
        assert_eq!(
            xml("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
