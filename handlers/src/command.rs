//! The chat command grammar shared by every transport: text in, a closed `Command` out, or a
//! specific `ParseError` that says what was wrong and what to type instead.

use crate::ids::{IncidentId, RequestId};
use crate::severity::Severity;
use regex::Regex;
use std::fmt;
use std::sync::LazyLock;

/// Incident roles (runbook §8.1 war room: incident commander, communications, scribe).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Ic,
    Comms,
    Scribe,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Ic, Role::Comms, Role::Scribe];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ic => "ic",
            Role::Comms => "comms",
            Role::Scribe => "scribe",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Role::Ic => "Incident commander",
            Role::Comms => "Communications lead",
            Role::Scribe => "Scribe",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(text))
    }
}

/// Every command the bot understands, whatever transport it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Declare {
        severity: Severity,
        title: String,
    },
    Ack,
    Sev(Severity),
    Role {
        role: Role,
        user: String,
    },
    Note(String),
    Status,
    Incidents,
    Mitigated,
    Resolve {
        summary: Option<String>,
    },
    Close,
    Timeline,
    Postmortem,
    Help(Option<String>),
    Approve {
        request: Option<RequestId>,
    },
    Deny {
        request: Option<RequestId>,
        reason: Option<String>,
    },
    Cancel {
        request: Option<RequestId>,
    },
    Requests,
    Playbooks,
    Run {
        playbook: String,
        params: Vec<(String, String)>,
    },
    Failover {
        region: String,
    },
    Isolate {
        region: Option<String>,
    },
    ReadOnly {
        on: bool,
    },
    Rollback {
        version: Option<String>,
        region: Option<String>,
    },
    Scale {
        region: String,
        replicas: u32,
    },
    Resume {
        run: Option<String>,
        decision: ResumeDecision,
    },
    /// Stop a running run before its next step (the step in progress finishes).
    Stop {
        run: Option<String>,
        reason: Option<String>,
    },
    /// Alerts (one fingerprint, or every alert with these labels) update this incident.
    AttachAlert {
        fingerprint: Option<String>,
        labels: Vec<(String, String)>,
    },
    /// The monthly SLA report; `None` is the current month.
    Report {
        month: Option<(i32, u32)>,
    },
}

/// What a person decides about a run that stopped in the middle of a non-idempotent step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumeDecision {
    /// The step did complete: mark it done and go on.
    Done,
    /// Run the step again.
    Retry,
    /// Stop the run here; nothing more is done.
    Abort,
}

/// A parsed line: the command, and the incident it names explicitly, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub incident: Option<IncidentId>,
    pub command: Command,
}

/// Why a line is not a valid command, with the usage to type instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The command word as typed, if one was recognised.
    pub command: Option<&'static str>,
    pub problem: String,
    /// A corrected line to type, e.g. `/erlmcp sev p1`.
    pub try_instead: String,
}

impl Command {
    /// The command's name as metrics and logs label it (a closed set).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Declare { .. } => "declare",
            Self::Ack => "ack",
            Self::Sev(_) => "sev",
            Self::Role { .. } => "role",
            Self::Note(_) => "note",
            Self::Status => "status",
            Self::Incidents => "incidents",
            Self::Mitigated => "mitigated",
            Self::Resolve { .. } => "resolve",
            Self::Close => "close",
            Self::Timeline => "timeline",
            Self::Postmortem => "postmortem",
            Self::Help(_) => "help",
            Self::Approve { .. } => "approve",
            Self::Deny { .. } => "deny",
            Self::Cancel { .. } => "cancel",
            Self::Requests => "requests",
            Self::Playbooks => "playbooks",
            Self::Run { .. } => "run",
            Self::Failover { .. } => "failover",
            Self::Isolate { .. } => "isolate",
            Self::ReadOnly { .. } => "read-only",
            Self::Rollback { .. } => "rollback",
            Self::Scale { .. } => "scale",
            Self::Resume { .. } => "resume",
            Self::Stop { .. } => "stop",
            Self::Report { .. } => "report",
            Self::AttachAlert { .. } => "attach-alert",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.command {
            Some(cmd) => write!(f, "`{cmd}`: {}", self.problem)?,
            None => f.write_str(&self.problem)?,
        }
        write!(f, "\nTry: `{}`", self.try_instead)
    }
}

impl std::error::Error for ParseError {}

static LEADING_ERLMCP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^/erlmcp\b\s*").expect("static regex"));
static INCIDENT_PREFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^(INC-\d{8}-\d{1,6})(?:\s+|$)").expect("static regex"));
static VERB_REST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)^/?(\S+)(?:\s+(.*))?$").expect("static regex"));
static DECLARE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)^(p[0-3])\s+declare(?:\s+(.*))?$").expect("static regex"));
static DECLARE_SWAPPED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)^declare\s+(p[0-3])(?:\s+(.*))?$").expect("static regex"));
static SEVERITY_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^p\d+$").expect("static regex"));
static REQUEST_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^REQ-\d{8}-\d{1,6}$").expect("static regex"));
static RUN_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^RUN-\d{8}-\d{1,6}$").expect("static regex"));
static REGION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z]{2}-[a-z]+-\d{1,2}$").expect("static regex"));
static VERSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$").expect("static regex")
});
static PARAM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([a-z][a-z0-9_]*)=(.+)$").expect("static regex"));
static PLAYBOOK_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9-]*$").expect("static regex"));

/// Longest title or note accepted; longer text is refused rather than cut, so nothing is lost silently.
pub const MAX_TEXT_CHARS: usize = 2000;
/// An incident title is a line people scan in lists and channel names.
pub const MAX_TITLE_CHARS: usize = 200;
/// A user name or id given as an argument (roles).
pub const MAX_NAME_CHARS: usize = 80;
/// A playbook parameter's value (`key=value`).
pub const MAX_PARAM_CHARS: usize = 200;
/// Upper bound for `scale`: a typo such as `scale us-east-1 300` should not reach the cluster.
pub const MAX_REPLICAS: u32 = 50;

/// Parses one line of chat text. Accepts it with or without the leading `/erlmcp`.
pub fn parse(input: &str) -> Result<Parsed, ParseError> {
    let text = input.trim();
    let text = LEADING_ERLMCP.replace(text, "");
    let mut text = text.trim();
    let mut incident = None;
    if let Some(caps) = INCIDENT_PREFIX.captures(text) {
        incident = Some(IncidentId::new(caps[1].to_ascii_uppercase()));
        text = text[caps[0].len()..].trim();
    }
    if text.is_empty() {
        return Err(ParseError {
            command: None,
            problem: if incident.is_some() {
                "an incident id needs a command after it".into()
            } else {
                "empty command".into()
            },
            try_instead: "/erlmcp help".into(),
        });
    }
    let command = parse_command(text)?;
    Ok(Parsed { incident, command })
}

fn parse_command(text: &str) -> Result<Command, ParseError> {
    if let Some(caps) = DECLARE
        .captures(text)
        .or_else(|| DECLARE_SWAPPED.captures(text))
    {
        let severity = Severity::parse(&caps[1]).expect("regex admits p0..p3 only");
        let title = caps.get(2).map(|m| m.as_str().trim()).unwrap_or("");
        if title.is_empty() {
            return Err(err(
                "declare",
                "an incident needs a title",
                &format!("/erlmcp {severity} declare API down in us-east-1").to_lowercase(),
            ));
        }
        // A title is one line: line breaks and runs of spaces become one space.
        let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
        let n = title.chars().count();
        if n > MAX_TITLE_CHARS {
            return Err(err(
                "declare",
                &format!("the title is {n} characters; the limit is {MAX_TITLE_CHARS}"),
                "say what is broken in a line; add details with `/erlmcp note <text>`",
            ));
        }
        return Ok(Command::Declare { severity, title });
    }
    let Some(caps) = VERB_REST.captures(text) else {
        return Err(unknown(text, ""));
    };
    let verb_typed = &caps[1];
    let verb = verb_typed.to_ascii_lowercase();
    let rest = caps.get(2).map(|m| m.as_str().trim()).unwrap_or("");
    let args: Vec<&str> = rest.split_whitespace().collect();

    match verb.as_str() {
        "ack" | "acknowledge" => no_args("ack", &args, Command::Ack),
        "sev" | "severity" => match args.as_slice() {
            [s] => Severity::parse(s).map(Command::Sev).ok_or_else(|| {
                err(
                    "sev",
                    &format!("`{s}` is not a severity; use p0, p1, p2 or p3"),
                    "/erlmcp sev p1",
                )
            }),
            [] => Err(err(
                "sev",
                "which severity? one of p0, p1, p2, p3",
                "/erlmcp sev p1",
            )),
            _ => Err(err("sev", "takes exactly one severity", "/erlmcp sev p1")),
        },
        "role" => match args.as_slice() {
            [r, user] => {
                let role = Role::parse(r).ok_or_else(|| {
                    err(
                        "role",
                        &format!("`{r}` is not a role; use ic, comms or scribe"),
                        &format!("/erlmcp role ic {user}"),
                    )
                })?;
                let user = user.trim_start_matches('@');
                if user.is_empty() {
                    return Err(err("role", "which user?", "/erlmcp role ic alice"));
                }
                if user.chars().count() > MAX_NAME_CHARS {
                    return Err(err(
                        "role",
                        &format!("a user name is at most {MAX_NAME_CHARS} characters"),
                        "/erlmcp role ic alice",
                    ));
                }
                Ok(Command::Role {
                    role,
                    user: user.to_string(),
                })
            }
            _ => Err(err(
                "role",
                "needs a role (ic, comms or scribe) and a user",
                "/erlmcp role ic alice",
            )),
        },
        "note" => {
            if rest.is_empty() {
                return Err(err(
                    "note",
                    "a note needs text",
                    "/erlmcp note rolled back the config change",
                ));
            }
            check_length("note", rest)?;
            Ok(Command::Note(rest.to_string()))
        }
        "status" => no_args("status", &args, Command::Status),
        "incidents" | "list" => no_args("incidents", &args, Command::Incidents),
        "mitigated" | "mitigate" => no_args("mitigated", &args, Command::Mitigated),
        "resolve" | "resolved" => {
            check_length("resolve", rest)?;
            Ok(Command::Resolve {
                summary: (!rest.is_empty()).then(|| rest.to_string()),
            })
        }
        "close" => no_args("close", &args, Command::Close),
        "timeline" => no_args("timeline", &args, Command::Timeline),
        "attach-alert" | "attach" => parse_attach_alert(&args),
        "postmortem" => no_args("postmortem", &args, Command::Postmortem),
        "help" | "?" => match args.as_slice() {
            [] => Ok(Command::Help(None)),
            [topic] => {
                let topic = topic.trim_start_matches('/').to_ascii_lowercase();
                let topic = if SEVERITY_WORD.is_match(&topic) {
                    "declare".to_string()
                } else {
                    topic
                };
                if spec(&topic).is_some() {
                    Ok(Command::Help(Some(topic)))
                } else {
                    Err(unknown(&topic, "help"))
                }
            }
            _ => Err(err(
                "help",
                "takes at most one command name",
                "/erlmcp help approve",
            )),
        },
        "approve" | "lgtm" => match args.as_slice() {
            [] => Ok(Command::Approve { request: None }),
            [id] => Ok(Command::Approve {
                request: Some(request_id("approve", id)?),
            }),
            _ => Err(err(
                "approve",
                "takes at most one request id",
                "/erlmcp approve REQ-20261128-1",
            )),
        },
        "deny" | "reject" => {
            let (request, reason) = match args.first() {
                Some(first) if first.to_ascii_uppercase().starts_with("REQ-") => {
                    let reason = rest[first.len()..].trim();
                    (Some(request_id("deny", first)?), reason)
                }
                _ => (None, rest),
            };
            check_length("deny", reason)?;
            Ok(Command::Deny {
                request,
                reason: (!reason.is_empty()).then(|| reason.to_string()),
            })
        }
        "cancel" | "withdraw" => match args.as_slice() {
            [] => Ok(Command::Cancel { request: None }),
            [id] => Ok(Command::Cancel {
                request: Some(request_id("cancel", id)?),
            }),
            _ => Err(err(
                "cancel",
                "takes at most one request id",
                "/erlmcp cancel REQ-20261128-1",
            )),
        },
        "requests" | "pending" => no_args("requests", &args, Command::Requests),
        "playbooks" => no_args("playbooks", &args, Command::Playbooks),
        "run" => {
            let Some((name, params)) = args.split_first() else {
                return Err(err(
                    "run",
                    "which playbook? `/erlmcp playbooks` lists them",
                    "/erlmcp run failover region=us-west-2",
                ));
            };
            let name = name.to_ascii_lowercase();
            if !PLAYBOOK_NAME.is_match(&name) {
                return Err(err(
                    "run",
                    &format!(
                        "`{name}` is not a playbook name (lowercase letters, digits and dashes)"
                    ),
                    "/erlmcp run failover region=us-west-2",
                ));
            }
            let mut pairs = Vec::new();
            for p in params {
                let Some(c) = PARAM.captures(p) else {
                    return Err(err(
                        "run",
                        &format!("`{p}` is not a key=value parameter"),
                        &format!("/erlmcp run {name} region=us-west-2"),
                    ));
                };
                if pairs.iter().any(|(k, _): &(String, String)| k == &c[1]) {
                    return Err(err(
                        "run",
                        &format!("parameter `{}` is given twice", &c[1]),
                        &format!("/erlmcp run {name} region=us-west-2"),
                    ));
                }
                if c[2].chars().count() > MAX_PARAM_CHARS {
                    return Err(err(
                        "run",
                        &format!(
                            "the value of `{}` is longer than {MAX_PARAM_CHARS} characters",
                            &c[1]
                        ),
                        &format!("/erlmcp run {name} region=us-west-2"),
                    ));
                }
                pairs.push((c[1].to_string(), c[2].to_string()));
            }
            Ok(Command::Run {
                playbook: name,
                params: pairs,
            })
        }
        "failover" => match args.as_slice() {
            [r] => Ok(Command::Failover {
                region: region("failover", r, "/failover us-west-2")?,
            }),
            [] => Err(err(
                "failover",
                "which region should take over? (the hot DR region is us-west-2)",
                "/failover us-west-2",
            )),
            _ => Err(err(
                "failover",
                "takes exactly one region",
                "/failover us-west-2",
            )),
        },
        "isolate" => match args.as_slice() {
            [] => Ok(Command::Isolate { region: None }),
            [r] => Ok(Command::Isolate {
                region: Some(region("isolate", r, "/erlmcp isolate us-east-1")?),
            }),
            _ => Err(err(
                "isolate",
                "takes at most one region",
                "/erlmcp isolate us-east-1",
            )),
        },
        "readonly" | "read-only" => match args.as_slice() {
            [v] if v.eq_ignore_ascii_case("on") => Ok(Command::ReadOnly { on: true }),
            [v] if v.eq_ignore_ascii_case("off") => Ok(Command::ReadOnly { on: false }),
            _ => Err(err("readonly", "say `on` or `off`", "/erlmcp readonly on")),
        },
        "rollback" => {
            let (mut version, mut reg) = (None, None);
            for a in &args {
                if VERSION.is_match(a) && version.is_none() {
                    version = Some(a.trim_start_matches('v').to_string());
                } else if REGION.is_match(a) && reg.is_none() {
                    reg = Some(a.to_string());
                } else {
                    return Err(err(
                        "rollback",
                        &format!(
                            "`{a}` is neither a version (like 3.1.2) nor a region (like us-east-1)"
                        ),
                        "/erlmcp rollback 3.1.2 us-east-1",
                    ));
                }
            }
            Ok(Command::Rollback {
                version,
                region: reg,
            })
        }
        "scale" => {
            match args.as_slice() {
                [r, n] => {
                    let region = region("scale", r, "/erlmcp scale us-east-1 5")?;
                    let replicas: u32 = n.parse().map_err(|_| {
                    err("scale", &format!("`{n}` is not a replica count (a whole number from 0 to {MAX_REPLICAS})"), &format!("/erlmcp scale {region} 5"))
                })?;
                    if replicas > MAX_REPLICAS {
                        return Err(err(
                            "scale",
                            &format!(
                                "{replicas} replicas is more than the limit of {MAX_REPLICAS}"
                            ),
                            &format!("/erlmcp scale {region} {MAX_REPLICAS}"),
                        ));
                    }
                    Ok(Command::Scale { region, replicas })
                }
                _ => Err(err(
                    "scale",
                    "needs a region and a replica count",
                    "/erlmcp scale us-east-1 5",
                )),
            }
        }
        "resume" => {
            let (run, decision_word) = match args.as_slice() {
                [d] => (None, *d),
                [id, d] => {
                    if !RUN_ID.is_match(id) {
                        return Err(err(
                            "resume",
                            &format!("`{id}` is not a run id (RUN-YYYYMMDD-N)"),
                            "/erlmcp resume RUN-20261128-1 retry",
                        ));
                    }
                    (Some(id.to_ascii_uppercase()), *d)
                }
                _ => {
                    return Err(err(
                        "resume",
                        "say whether the interrupted step is done, should be retried, or the run aborted",
                        "/erlmcp resume retry",
                    ));
                }
            };
            let decision = match decision_word.to_ascii_lowercase().as_str() {
                "done" => ResumeDecision::Done,
                "retry" => ResumeDecision::Retry,
                "abort" => ResumeDecision::Abort,
                other => {
                    return Err(err(
                        "resume",
                        &format!("`{other}` is not one of done, retry, abort"),
                        "/erlmcp resume retry",
                    ));
                }
            };
            Ok(Command::Resume { run, decision })
        }
        "stop" | "halt" => {
            let (run, reason) = match args.first() {
                Some(id) if id.to_ascii_uppercase().starts_with("RUN-") => {
                    if !RUN_ID.is_match(id) {
                        return Err(err(
                            "stop",
                            &format!("`{id}` is not a run id (RUN-YYYYMMDD-N)"),
                            "/erlmcp stop RUN-20261128-1 wrong region",
                        ));
                    }
                    let rest = rest[id.len()..].trim();
                    (Some(id.to_ascii_uppercase()), rest)
                }
                _ => (None, rest),
            };
            check_length("stop", reason)?;
            Ok(Command::Stop {
                run,
                reason: (!reason.is_empty()).then(|| reason.to_string()),
            })
        }
        "report" => match args.as_slice() {
            [] => Ok(Command::Report { month: None }),
            [m] => crate::report::parse_month(m)
                .map(|ym| Command::Report { month: Some(ym) })
                .ok_or_else(|| {
                    err(
                        "report",
                        &format!("`{m}` is not a month like 2026-11"),
                        "/erlmcp report 2026-11",
                    )
                }),
            _ => Err(err(
                "report",
                "takes at most one month",
                "/erlmcp report 2026-11",
            )),
        },
        "declare" => Err(err(
            "declare",
            "the severity comes first (p0, p1, p2 or p3), then a title",
            "/erlmcp p1 declare API errors in eu-west-1",
        )),
        v if SEVERITY_WORD.is_match(v) => {
            if Severity::parse(v).is_none() {
                Err(err(
                    "declare",
                    &format!("`{v}` is not a severity; use p0, p1, p2 or p3"),
                    "/erlmcp p1 declare API errors in eu-west-1",
                ))
            } else {
                Err(err(
                    "declare",
                    &format!("after `{v}` comes `declare` and a title"),
                    &format!("/erlmcp {v} declare API errors in eu-west-1"),
                ))
            }
        }
        _ => Err(unknown(verb_typed, "")),
    }
}

fn err(command: &'static str, problem: &str, try_instead: &str) -> ParseError {
    ParseError {
        command: Some(spec(command).map(|s| s.name).unwrap_or(command)),
        problem: problem.to_string(),
        try_instead: try_instead.to_string(),
    }
}

/// `attach-alert <fingerprint>` or `attach-alert k=v [k=v ...]`.
fn parse_attach_alert(args: &[&str]) -> Result<Command, ParseError> {
    let example = "/erlmcp attach-alert region=us-east-1";
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/'))
    };
    match args {
        [] => Err(err(
            "attach-alert",
            "needs an alert fingerprint or label=value pairs",
            example,
        )),
        [one] if !one.contains('=') => {
            // Alertmanager's fingerprints are 16 hex digits.
            let hex = (8..=32).contains(&one.len()) && one.chars().all(|c| c.is_ascii_hexdigit());
            if hex {
                Ok(Command::AttachAlert {
                    fingerprint: Some(one.to_ascii_lowercase()),
                    labels: Vec::new(),
                })
            } else {
                Err(err(
                    "attach-alert",
                    &format!(
                        "`{}` is neither an alert fingerprint (16 hex digits, shown in each alert message) nor label=value",
                        shorten_arg(one)
                    ),
                    example,
                ))
            }
        }
        pairs => {
            let mut labels = Vec::new();
            for p in pairs {
                match p.split_once('=') {
                    Some((k, v)) if name_ok(k) && name_ok(v) => {
                        labels.push((k.to_string(), v.to_string()))
                    }
                    _ => {
                        return Err(err(
                            "attach-alert",
                            &format!(
                                "`{}` is not a label=value pair (letters, digits, `_-.:/`)",
                                shorten_arg(p)
                            ),
                            example,
                        ));
                    }
                }
            }
            if labels.len() > 8 {
                return Err(err("attach-alert", "at most 8 labels", example));
            }
            let mut names: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
            names.sort_unstable();
            if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
                return Err(err(
                    "attach-alert",
                    &format!(
                        "label `{}` is given twice; an alert has one value for it",
                        w[0]
                    ),
                    example,
                ));
            }
            Ok(Command::AttachAlert {
                fingerprint: None,
                labels,
            })
        }
    }
}

fn shorten_arg(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

fn no_args(command: &'static str, args: &[&str], ok: Command) -> Result<Command, ParseError> {
    if args.is_empty() {
        Ok(ok)
    } else {
        let usage = spec(command).map(|s| s.usage).unwrap_or("/erlmcp help");
        Err(err(
            command,
            &format!("takes no arguments (got `{}`)", args.join(" ")),
            usage,
        ))
    }
}

fn check_length(command: &'static str, text: &str) -> Result<(), ParseError> {
    let n = text.chars().count();
    if n > MAX_TEXT_CHARS {
        return Err(err(
            command,
            &format!("text is {n} characters; the limit is {MAX_TEXT_CHARS}"),
            "shorten it, or split it into several notes",
        ));
    }
    Ok(())
}

fn request_id(command: &'static str, id: &str) -> Result<RequestId, ParseError> {
    if REQUEST_ID.is_match(id) {
        Ok(RequestId::new(id.to_ascii_uppercase()))
    } else {
        Err(err(
            command,
            &format!(
                "`{id}` is not a request id (they look like REQ-20261128-1; `/erlmcp requests` lists them)"
            ),
            &format!("/erlmcp {command}"),
        ))
    }
}

fn region(command: &'static str, r: &str, example: &str) -> Result<String, ParseError> {
    let lower = r.to_ascii_lowercase();
    if REGION.is_match(&lower) {
        Ok(lower)
    } else {
        Err(err(
            command,
            &format!("`{r}` is not a region name (like us-west-2)"),
            example,
        ))
    }
}

/// An unknown command word: name the closest known command, if one is close.
fn unknown(word: &str, context: &str) -> ParseError {
    let lower = word.to_ascii_lowercase();
    let best = COMMANDS
        .iter()
        .map(|c| (strsim::damerau_levenshtein(&lower, c.name), c))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, c)| *d <= 2.max(c.name.len() / 3));
    let what = if context == "help" {
        "there is no help topic"
    } else {
        "unknown command"
    };
    match best {
        Some((_, c)) => ParseError {
            command: None,
            problem: format!(
                "{what} `{word}`; did you mean `{}`? ({})",
                c.name, c.summary
            ),
            try_instead: c.usage.to_string(),
        },
        None => ParseError {
            command: None,
            problem: format!("{what} `{word}`"),
            try_instead: "/erlmcp help".to_string(),
        },
    }
}

mod spec;

pub use spec::{COMMANDS, CommandSpec, spec};

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
