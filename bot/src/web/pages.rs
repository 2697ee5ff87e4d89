//! The web view's pages (maud templates: everything interpolated is escaped unless marked
//! `PreEscaped`, which only the bot's own SVG and Markdown-made HTML are).

use chrono::{DateTime, Utc};
use erlmcp_handlers::approval::ApprovalRequest;
use erlmcp_handlers::incident::{Incident, IncidentStatus};
use erlmcp_handlers::reads::IncidentView;
use erlmcp_handlers::severity::human_duration;
use maud::{DOCTYPE, Markup, PreEscaped, html};

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}th{background:#f3f3f3}.missed{color:#b00020;font-weight:bold}.met{color:#2e7d32}.due{color:#8a5a00}code{background:#f3f3f3}.p0,.p1{font-weight:bold}nav a{margin-right:1em}.ok{color:#2e7d32}.broken{color:#b00020;font-weight:bold}details summary{cursor:pointer}";

fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " — erlmcp-bot" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                nav {
                    a href="/ui/" { "Incidents" }
                    a href={ "/ui/report/" (Utc::now().format("%Y-%m")) } { "This month's report" }
                    form method="post" action="/ui/sign-out" style="display:inline" { button type="submit" { "Sign out" } }
                }
                (body)
            }
        }
    }
}

pub fn sign_in(problem: Option<&str>, next: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Sign in — erlmcp-bot" } style { (PreEscaped(STYLE)) } }
            body {
                h1 { "erlmcp-bot" }
                p { "The web view is read-only and needs its token (ERLMCP_WEB_TOKEN)." }
                @if let Some(p) = problem { p.missed id="problem" { (p) } }
                form method="post" action="/ui/sign-in" {
                    input type="hidden" name="next" value=(next);
                    label { "Token " input type="password" name="token" id="token" autocomplete="current-password"; }
                    " "
                    button type="submit" id="sign-in" { "Sign in" }
                }
            }
        }
    }
}

pub fn problem(text: &str) -> Markup {
    page("Problem", html! { h1 { "Problem" } p.missed { (text) } })
}

/// `met`, `due in …` or `missed` for a clock that started at `from`, is due `target` later,
/// and stopped at `stopped`, if it did.
fn clock(
    from: DateTime<Utc>,
    target: chrono::Duration,
    stopped: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Markup {
    let due = from + target;
    match stopped {
        Some(t) if t <= due => html! { span.met { "met (" (human_duration(t - from)) ")" } },
        Some(t) => html! { span.missed { "missed (" (human_duration(t - from)) ")" } },
        None if now > due => {
            html! { span.missed { "missed by " (human_duration(now - due)) } }
        }
        None => html! { span.due { "due in " (human_duration(due - now)) } },
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

pub fn list(all: &[Incident], pending: &[ApprovalRequest], now: DateTime<Utc>) -> Markup {
    let (open, done): (Vec<&Incident>, Vec<&Incident>) = all
        .iter()
        .partition(|i| !matches!(i.status, IncidentStatus::Resolved | IncidentStatus::Closed));
    let row = |i: &Incident| {
        let waiting = pending.iter().filter(|r| r.incident == i.id).count();
        html! {
            tr.incident {
                td { a href={ "/ui/incidents/" (i.id) } { (i.id) } }
                td class=(i.severity.as_str()) { (i.severity) }
                td.title { (i.title) @if i.drill { " (drill)" } }
                td { (i.status) }
                td { (human_duration(i.closed_at.or(i.resolved_at).unwrap_or(now) - i.declared_at)) }
                td { (clock(i.declared_at, i.severity.response_target(), i.acknowledged_at, now)) }
                td { (clock(i.declared_at, i.severity.resolution_target(), i.resolved_at, now)) }
                td.pending { (waiting) }
            }
        }
    };
    let head = html! {
        tr { th { "Incident" } th { "Severity" } th { "Title" } th { "Status" } th { "Age" } th { "Respond (§8.1)" } th { "Resolve (§8.1)" } th { "Pending requests" } }
    };
    page(
        "Incidents",
        html! {
            h1 { "Open incidents" }
            @if open.is_empty() { p #no-open { "No open incidents." } } @else {
                table #open { (head) @for i in &open { (row(i)) } }
            }
            h2 { "Recently resolved or closed" }
            table #closed { (head) @for i in done.iter().take(20) { (row(i)) } }
        },
    )
}

/// Markdown made by the bot (postmortem, report) as HTML. The bot escapes user text inside it;
/// as a second wall, raw HTML is shown as text and only http(s) and relative links are kept.
fn markdown(md: &str) -> Markup {
    use pulldown_cmark::Tag;
    use pulldown_cmark::{Event, Options, Parser};
    // Only web links survive: `javascript:`, `data:` and the like become an inert `#`.
    let safe = |url: &str| {
        let u = url.trim().to_ascii_lowercase();
        u.starts_with("https://")
            || u.starts_with("http://")
            || u.starts_with('/')
            || u.starts_with('#')
    };
    let events = Parser::new_ext(md, Options::ENABLE_TABLES).map(|e| match e {
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) if !safe(&dest_url) => Event::Start(Tag::Link {
            link_type,
            dest_url: "#".into(),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) if !safe(&dest_url) => Event::Start(Tag::Image {
            link_type,
            dest_url: "#".into(),
            title,
            id,
        }),
        other => other,
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    PreEscaped(out)
}

pub fn incident(v: &IncidentView) -> Markup {
    let i = &v.incident;
    page(
        i.id.as_str(),
        html! {
            h1 { (i.id) " " span class=(i.severity.as_str()) { (i.severity) } " " span #title { (i.title) } }
            p { "Status " b #status { (i.status) } " · declared by " (i.declared_by) " at " (ts(i.declared_at)) " UTC"
                @if i.drill { " · drill" } }
            @if let Some(s) = &i.summary { p #summary { (s) } }
            h2 { "Roles" }
            @if i.roles.is_empty() { p { "None assigned." } } @else {
                ul #roles { @for (role, who) in &i.roles { li { (role.title()) ": " (who) } } }
            }
            h2 { "Timeline chain" }
            @if v.check.breaks.is_empty() {
                p.ok #verify { "Intact: " (v.check.entries) " entries verified; " (keying(&v.check.keying)) "." }
            } @else {
                div.broken #verify { p { "The record fails verification:" } ul { @for b in &v.check.breaks { li { (b.to_string()) } } } }
            }
            h2 { "Picture" }
            div #picture { (PreEscaped(&v.svg)) }
            h2 { "Requests" }
            @if v.records.is_empty() { p { "No infrastructure change was requested." } }
            @for r in &v.records {
                div.request id={ "request-" (r.request.id) } {
                    h3 { (r.request.id) " " code { (r.request.command) } ": " span.state { (r.request.state.as_str()) } }
                    p { "Requested by " (r.request.requester_name) " (" (r.request.requester_id) ") at " (ts(r.request.created_at)) " UTC · plan digest " code { (r.request.plan_digest) } }
                    pre.plan { (r.request.plan_text) }
                    @if !r.approvals.is_empty() {
                        p.approvals { "Approved by: "
                            @for (n, a) in r.approvals.iter().enumerate() {
                                @if n > 0 { ", " }
                                span.approver { (a.approver_name) " (" (a.approver_id) ")" } " at " (ts(a.at))
                            }
                        }
                    }
                    @if let Some((run, steps)) = &r.run {
                        table.steps {
                            tr { th { (run.id) } th { "Step" } th { "State" } th { "Took" } th { "Result" } }
                            @for s in steps {
                                tr.step {
                                    td { (s.idx) }
                                    td { (s.name) }
                                    td.state { (s.state.as_str()) }
                                    td.took { @match (s.started_at, s.finished_at) {
                                        (Some(a), Some(b)) => (human_duration(b - a)),
                                        (Some(_), None) => "running",
                                        _ => "-",
                                    } }
                                    td { (s.result.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Timeline" }
            table #timeline {
                tr { th { "Time (UTC)" } th { "Who" } th { "Source" } th { "What" } th { "Kind" } }
                @for e in &v.entries {
                    tr.entry {
                        td { (ts(e.at)) }
                        td { (e.actor) " (" (e.actor_id) ")" }
                        td { (e.source.as_str()) }
                        td.text { (e.text) }
                        td { details { summary { (e.kind) } code { "#" (e.seq) " " (e.hash) } } }
                    }
                }
            }
            @if v.more > 0 { p { (v.more) " more entries are not listed here; " code { "erlmcp-bot timeline show " (i.id) } " prints them all." } }
            h2 { "Postmortem draft" }
            div #postmortem { (markdown(&v.postmortem)) }
        },
    )
}

fn keying(k: &erlmcp_handlers::timeline::Keying) -> String {
    use erlmcp_handlers::timeline::Keying;
    match k {
        Keying::Keyed { .. } => "keyed: every entry's MAC checked".into(),
        Keying::Unkeyed { .. } => {
            "unkeyed (written without ERLMCP_TIMELINE_KEY): it proves nothing against someone who can write the database".into()
        }
        Keying::KeyedFrom { until, .. } => format!("keyed from entry {}", until + 1),
        Keying::NotChecked { .. } => "MACs present but not checked (no key given)".into(),
    }
}

pub fn report(month: &str, md: &str) -> Markup {
    page(
        &format!("SLA report {month}"),
        html! { div #report { (markdown(md)) } },
    )
}
