//! The help table: every command word, its usage and what it does. `help` prints it and the
//! parser suggests from it ("did you mean").

/// One row of the help table: the grammar's documentation, and the source of suggestions.
pub struct CommandSpec {
    pub name: &'static str,
    pub usage: &'static str,
    pub summary: &'static str,
}

/// Every command word, its usage and what it does. `help` and "did you mean" both read this.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "declare",
        usage: "/erlmcp p0|p1|p2|p3 declare <title>",
        summary: "open an incident of that severity, tied to this channel",
    },
    CommandSpec {
        name: "ack",
        usage: "/erlmcp ack",
        summary: "acknowledge the incident (stops the response clock)",
    },
    CommandSpec {
        name: "sev",
        usage: "/erlmcp sev <p0|p1|p2|p3>",
        summary: "change the incident's severity",
    },
    CommandSpec {
        name: "role",
        usage: "/erlmcp role <ic|comms|scribe> <user>",
        summary: "assign a role",
    },
    CommandSpec {
        name: "note",
        usage: "/erlmcp note <text>",
        summary: "add a note to the timeline",
    },
    CommandSpec {
        name: "status",
        usage: "/erlmcp status",
        summary: "show the incident's state, roles and clocks",
    },
    CommandSpec {
        name: "incidents",
        usage: "/erlmcp incidents",
        summary: "list the open incidents",
    },
    CommandSpec {
        name: "mitigated",
        usage: "/erlmcp mitigated",
        summary: "mark the impact as mitigated",
    },
    CommandSpec {
        name: "resolve",
        usage: "/erlmcp resolve [summary]",
        summary: "mark the incident resolved",
    },
    CommandSpec {
        name: "close",
        usage: "/erlmcp close",
        summary: "close a resolved incident",
    },
    CommandSpec {
        name: "attach-alert",
        usage: "/erlmcp attach-alert <fingerprint> | <label>=<value> ...",
        summary: "make an alert (or alerts with these labels) update this incident",
    },
    CommandSpec {
        name: "timeline",
        usage: "/erlmcp timeline",
        summary: "show the incident's timeline",
    },
    CommandSpec {
        name: "postmortem",
        usage: "/erlmcp postmortem",
        summary: "render the postmortem draft (Markdown)",
    },
    CommandSpec {
        name: "help",
        usage: "/erlmcp help [command]",
        summary: "list commands, or explain one",
    },
    CommandSpec {
        name: "approve",
        usage: "/erlmcp approve [REQ-id]",
        summary: "approve a pending infrastructure change (not your own)",
    },
    CommandSpec {
        name: "deny",
        usage: "/erlmcp deny [REQ-id] [reason]",
        summary: "deny a pending infrastructure change",
    },
    CommandSpec {
        name: "cancel",
        usage: "/erlmcp cancel [REQ-id]",
        summary: "withdraw your own pending request",
    },
    CommandSpec {
        name: "requests",
        usage: "/erlmcp requests",
        summary: "list pending approval requests with their plans",
    },
    CommandSpec {
        name: "playbooks",
        usage: "/erlmcp playbooks",
        summary: "list the playbooks and the severities they run under",
    },
    CommandSpec {
        name: "run",
        usage: "/erlmcp run <playbook> [key=value ...]",
        summary: "request a playbook run (needs a second person's approval)",
    },
    CommandSpec {
        name: "failover",
        usage: "/failover <region>",
        summary: "request the DR failover playbook to <region>",
    },
    CommandSpec {
        name: "isolate",
        usage: "/erlmcp isolate [region]",
        summary: "request the security isolation playbook",
    },
    CommandSpec {
        name: "readonly",
        usage: "/erlmcp readonly on|off",
        summary: "request read-only mode on or off",
    },
    CommandSpec {
        name: "rollback",
        usage: "/erlmcp rollback [version] [region]",
        summary: "request a rollback to the previous or given version",
    },
    CommandSpec {
        name: "scale",
        usage: "/erlmcp scale <region> <replicas>",
        summary: "request scaling erlmcp-cluster in a region",
    },
    CommandSpec {
        name: "resume",
        usage: "/erlmcp resume [RUN-id] done|retry|abort",
        summary: "decide how a run interrupted mid-step goes on",
    },
    CommandSpec {
        name: "stop",
        usage: "/erlmcp stop [RUN-id] [reason]",
        summary: "stop a running run before its next step (the step in progress finishes)",
    },
    CommandSpec {
        name: "report",
        usage: "/erlmcp report [YYYY-MM]",
        summary: "the monthly SLA report (runbook §5.5) from the recorded incidents",
    },
];

pub fn spec(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}
