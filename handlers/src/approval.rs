//! Two-person confirmation: approval requests bound to the digest of an exact plan, and the
//! rules that decide whether a person may approve or deny. The rules are pure; the engine
//! applies them and the store makes the state changes atomic.

use crate::ids::{IncidentId, RequestId};
use crate::telemetry::ApprovalRefusal;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestState {
    Pending,
    Approved,
    Denied,
    Expired,
    Cancelled,
    /// The plan would no longer render the same: nobody approved what would run now.
    Void,
    Executing,
    Done,
    Failed,
}

impl RequestState {
    pub const ALL: [RequestState; 9] = [
        Self::Pending,
        Self::Approved,
        Self::Denied,
        Self::Expired,
        Self::Cancelled,
        Self::Void,
        Self::Executing,
        Self::Done,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Void => "void",
            Self::Executing => "executing",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many people beyond the requester must approve, from which groups, and for how long
/// the request stays open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Approvals needed beyond the requester (1 = two persons in total).
    pub approvals: u32,
    /// Groups each of which must supply at least one approver.
    pub groups: Vec<String>,
    pub expiry_seconds: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            approvals: 1,
            groups: Vec::new(),
            expiry_seconds: 15 * 60,
        }
    }
}

impl Policy {
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} approval{} from someone other than the requester",
            self.approvals,
            if self.approvals == 1 { "" } else { "s" }
        );
        if !self.groups.is_empty() {
            s.push_str(&format!(
                ", including a member of {}",
                self.groups.join(" and ")
            ));
        }
        s.push_str(&format!(
            "; expires after {}",
            crate::severity::human_duration(Duration::seconds(self.expiry_seconds))
        ));
        s
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub id: RequestId,
    pub incident: IncidentId,
    pub channel: String,
    pub requester_id: String,
    pub requester_name: String,
    /// The command as typed, e.g. `/failover us-west-2`.
    pub command: String,
    pub playbook: String,
    pub params: BTreeMap<String, String>,
    pub severity: crate::severity::Severity,
    /// The exact plan, as people read it.
    pub plan_text: String,
    /// SHA-256 of the plan text: what approvals are bound to.
    pub plan_digest: String,
    pub policy: Policy,
    pub state: RequestState,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    pub reason: Option<String>,
    /// Set when the request is to run a stopped run's interrupted step again (`resume retry` of a
    /// step that is not safe to run twice): the run and the step's position.
    pub retry_of: Option<(crate::ids::RunId, i64)>,
    /// The executor mode the plan was made for (`live`, `dry-run`, `simulated`); `None` for
    /// requests from before it was kept.
    pub mode: Option<String>,
}

impl ApprovalRequest {
    pub fn short_digest(&self) -> &str {
        &self.plan_digest[..12.min(self.plan_digest.len())]
    }
}

/// One person's approval of one request, bound to the digest they saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    pub request: RequestId,
    pub approver_id: String,
    pub approver_name: String,
    /// Where the approver's id comes from (`None` for approvals recorded before it was kept).
    pub approver_platform: Option<Platform>,
    /// The platform roles the approver held when approving (Discord role ids), which approver
    /// groups may name.
    pub approver_roles: Vec<String>,
    pub digest: String,
    pub at: DateTime<Utc>,
}

/// Where a user id comes from: ids are unique only within their platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Platform {
    Console,
    Slack,
    Discord,
}

impl Platform {
    pub const ALL: [Platform; 3] = [Platform::Console, Platform::Slack, Platform::Discord];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Console => "console",
            Platform::Slack => "slack",
            Platform::Discord => "discord",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Who is acting, as the transport identified them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// Stable id within its platform (Slack `U…`, Discord snowflake, console login name).
    pub id: String,
    /// Display name: shown to people, never used to authorize anything.
    pub name: String,
    /// Bots and apps never count as a person.
    pub is_bot: bool,
    pub platform: Platform,
    /// Role ids the platform reports for this user (Discord); approver groups may name them.
    pub roles: Vec<String>,
    /// Set when the transport could not tell whether this is a person or a bot (its user
    /// lookup failed): such an actor's approvals and decisions are refused, with this reason.
    pub unverified: Option<String>,
}

impl Actor {
    /// Someone at the console: the console's operator is trusted to say who they are.
    pub fn person(name: &str) -> Self {
        Self::on(Platform::Console, name, name)
    }

    /// A person on a platform, identified by its id.
    pub fn on(platform: Platform, id: &str, name: &str) -> Self {
        Self {
            id: id.to_string(),
            name: name.to_string(),
            is_bot: false,
            platform,
            roles: Vec::new(),
            unverified: None,
        }
    }

    /// `platform:id`: who this is in the database and in every comparison (ids are unique only
    /// within their platform).
    pub fn qualified_id(&self) -> String {
        crate::ids::chat::qualify(self.platform, &self.id)
    }

    /// `name (platform:id)`, as the timeline and postmortem name people.
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.qualified_id())
    }
}

/// Group membership from configuration: group name -> user ids. An entry is a platform user id,
/// bare (`U0SEC`, any platform) or qualified (`slack:U0SEC`, `discord:81234…`), or a platform role
/// (`discord-role:…`). Display names never match: anyone can set theirs.
pub type Groups = BTreeMap<String, BTreeSet<String>>;

/// Whether a group entry names this user (by id, or by a role they hold).
fn member_matches(entry: &str, id: &str, platform: Option<Platform>, roles: &[String]) -> bool {
    if let Some(role) = entry.strip_prefix("discord-role:") {
        return platform == Some(Platform::Discord) && roles.iter().any(|r| r == role);
    }
    match entry
        .split_once(':')
        .and_then(|(p, rest)| Some((Platform::parse(p)?, rest)))
    {
        Some((p, rest)) => platform == Some(p) && rest == id,
        None => entry == id,
    }
}

fn in_group(groups: &Groups, group: &str, actor: &Actor) -> bool {
    groups.get(group).is_some_and(|members| {
        members
            .iter()
            .any(|m| member_matches(m, &actor.id, Some(actor.platform), &actor.roles))
    })
}

/// Whether an approval already recorded fills a group (by the approver's id, or a role they
/// held when approving).
fn approval_in_group(groups: &Groups, group: &str, a: &Approval) -> bool {
    groups.get(group).is_some_and(|members| {
        members.iter().any(|m| {
            let (platform, id) = match crate::ids::chat::split(&a.approver_id) {
                Some((p, local)) => (Some(p), local),
                None => (a.approver_platform, a.approver_id.as_str()),
            };
            member_matches(m, id, platform, &a.approver_roles)
        })
    })
}

/// The result of asking whether `actor` may approve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Count this approval; `complete` says whether the quorum is now reached.
    Counts { complete: bool },
    /// Not counted: why (for the person) and the reason's class (for metrics).
    Refused(String, crate::telemetry::ApprovalRefusal),
}

/// Whether the recorded approvals meet the request's policy: enough of them, and every required
/// group supplied by one.
pub fn quorum_met(req: &ApprovalRequest, approvals: &[Approval], groups: &Groups) -> bool {
    approvals.len() >= req.policy.approvals as usize
        && req
            .policy
            .groups
            .iter()
            .all(|g| approvals.iter().any(|a| approval_in_group(groups, g, a)))
}

/// Decides whether `actor`'s approval counts, given the approvals already recorded.
/// The request's state and expiry are checked before this, by the engine, against the database.
pub fn judge_approval(
    req: &ApprovalRequest,
    existing: &[Approval],
    actor: &Actor,
    groups: &Groups,
) -> Verdict {
    if actor.is_bot {
        return Verdict::Refused(
            "bots and apps cannot approve; a person must.".into(),
            ApprovalRefusal::Bot,
        );
    }
    if let Some(why) = &actor.unverified {
        return Verdict::Refused(
            format!(
                "the bot could not check that you are a person ({why}); your approval was not counted. Try again in a moment.",
            ),
            ApprovalRefusal::Unverified,
        );
    }
    if actor.qualified_id() == req.requester_id || actor.name == req.requester_name {
        return Verdict::Refused(
            format!("you requested {}; a second person must approve it.", req.id,),
            ApprovalRefusal::OwnRequest,
        );
    }
    if existing
        .iter()
        .any(|a| a.approver_id == actor.qualified_id())
    {
        return Verdict::Refused(
            format!(
                "you have already approved {}; one person counts once. It needs {} more.",
                req.id,
                req.policy.approvals as usize - existing.len().min(req.policy.approvals as usize),
            ),
            ApprovalRefusal::AlreadyApproved,
        );
    }
    let unmet: Vec<&String> = req
        .policy
        .groups
        .iter()
        .filter(|g| !existing.iter().any(|a| approval_in_group(groups, g, a)))
        .collect();
    let fills_group = unmet.iter().any(|g| in_group(groups, g, actor));
    let slots_left = (req.policy.approvals as usize).saturating_sub(existing.len());
    // An approver outside the required groups may only take a slot that no required group still needs.
    if !fills_group && slots_left <= unmet.len() && !unmet.is_empty() {
        return Verdict::Refused(
            format!(
                "approver must be in group {} for {}.",
                unmet
                    .iter()
                    .map(|g| g.as_str())
                    .collect::<Vec<_>>()
                    .join(" or "),
                req.id,
            ),
            ApprovalRefusal::NotInGroup,
        );
    }
    let still_unmet = unmet.iter().filter(|g| !in_group(groups, g, actor)).count();
    let complete = slots_left <= 1 && still_unmet == 0;
    Verdict::Counts { complete }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::severity::Severity;

    fn request(policy: Policy) -> ApprovalRequest {
        let now = Utc::now();
        ApprovalRequest {
            id: RequestId::new("REQ-20261128-1"),
            incident: IncidentId::new("INC-20261128-1"),
            channel: "console".into(),
            requester_id: "console:alice".into(),
            requester_name: "alice".into(),
            command: "/failover us-west-2".into(),
            playbook: "failover".into(),
            params: BTreeMap::new(),
            severity: Severity::P0,
            plan_text: "plan".into(),
            plan_digest: "d".repeat(64),
            policy,
            state: RequestState::Pending,
            created_at: now,
            expires_at: now,
            decided_at: None,
            decided_by: None,
            reason: None,
            retry_of: None,
            mode: None,
        }
    }

    fn approval(who: &str) -> Approval {
        Approval {
            request: RequestId::new("REQ-20261128-1"),
            approver_id: crate::ids::chat::qualify(Platform::Console, who),
            approver_name: who.into(),
            approver_platform: Some(Platform::Console),
            approver_roles: Vec::new(),
            digest: "d".repeat(64),
            at: Utc::now(),
        }
    }

    fn groups() -> Groups {
        let mut g = Groups::new();
        g.insert("security".into(), ["sam".to_string()].into_iter().collect());
        g
    }

    #[test]
    fn requester_cannot_approve_by_id_or_by_name() {
        let r = request(Policy::default());
        assert!(
            matches!(judge_approval(&r, &[], &Actor::person("alice"), &groups()), Verdict::Refused(m, _) if m.contains("second person"))
        );
        let same_name_other_id = Actor::on(Platform::Slack, "U999", "alice");
        assert!(matches!(
            judge_approval(&r, &[], &same_name_other_id, &groups()),
            Verdict::Refused(..)
        ));
    }

    #[test]
    fn a_role_held_when_approving_goes_on_filling_its_group() {
        let r = request(Policy {
            approvals: 2,
            groups: vec!["security".into()],
            ..Policy::default()
        });
        let mut g = Groups::new();
        g.insert(
            "security".into(),
            ["discord-role:42".to_string()].into_iter().collect(),
        );
        let mut carol = approval("carol");
        carol.approver_id = "discord:7".into();
        carol.approver_platform = Some(Platform::Discord);
        carol.approver_roles = vec!["42".into()];
        // Bob, without the role, completes the quorum: Carol already filled the group.
        let bob = Actor::on(Platform::Discord, "8", "bob");
        assert_eq!(
            judge_approval(&r, std::slice::from_ref(&carol), &bob, &g),
            Verdict::Counts { complete: true }
        );
        let mut bob_approval = approval("bob");
        bob_approval.approver_id = "discord:8".into();
        assert!(quorum_met(&r, &[carol.clone(), bob_approval.clone()], &g));
        // Without the role kept, the group would be unfilled.
        carol.approver_roles.clear();
        assert!(!quorum_met(&r, &[carol, bob_approval], &g));
    }

    #[test]
    fn bots_never_count() {
        let r = request(Policy::default());
        let bot = Actor {
            is_bot: true,
            ..Actor::on(Platform::Slack, "B1", "deploybot")
        };
        assert!(
            matches!(judge_approval(&r, &[], &bot, &groups()), Verdict::Refused(m, _) if m.contains("bots"))
        );
    }

    #[test]
    fn one_person_counts_once() {
        let r = request(Policy {
            approvals: 2,
            ..Policy::default()
        });
        assert_eq!(
            judge_approval(&r, &[], &Actor::person("bob"), &groups()),
            Verdict::Counts { complete: false }
        );
        assert!(
            matches!(judge_approval(&r, &[approval("bob")], &Actor::person("bob"), &groups()), Verdict::Refused(m, _) if m.contains("already approved"))
        );
        assert_eq!(
            judge_approval(&r, &[approval("bob")], &Actor::person("carol"), &groups()),
            Verdict::Counts { complete: true }
        );
    }

    #[test]
    fn required_group_must_supply_an_approver() {
        let r = request(Policy {
            approvals: 1,
            groups: vec!["security".into()],
            ..Policy::default()
        });
        assert!(
            matches!(judge_approval(&r, &[], &Actor::person("bob"), &groups()), Verdict::Refused(m, _) if m.contains("approver must be in group security"))
        );
        assert_eq!(
            judge_approval(&r, &[], &Actor::person("sam"), &groups()),
            Verdict::Counts { complete: true }
        );
        // With two approvals needed, an outsider may take the slot the group does not need.
        let r2 = request(Policy {
            approvals: 2,
            groups: vec!["security".into()],
            ..Policy::default()
        });
        assert_eq!(
            judge_approval(&r2, &[], &Actor::person("bob"), &groups()),
            Verdict::Counts { complete: false }
        );
        assert!(matches!(
            judge_approval(&r2, &[approval("bob")], &Actor::person("carol"), &groups()),
            Verdict::Refused(..)
        ));
        assert_eq!(
            judge_approval(&r2, &[approval("bob")], &Actor::person("sam"), &groups()),
            Verdict::Counts { complete: true }
        );
    }

    #[test]
    fn groups_match_ids_never_display_names() {
        let r = request(Policy {
            approvals: 1,
            groups: vec!["security".into()],
            ..Policy::default()
        });
        let mut g = Groups::new();
        g.insert(
            "security".into(),
            ["U0SECURITY", "slack:U0SEC2", "discord-role:555"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        );
        // Someone who set their display name to a member's id is not that member.
        let impostor = Actor::on(Platform::Slack, "U0EVE", "U0SECURITY");
        assert!(matches!(
            judge_approval(&r, &[], &impostor, &g),
            Verdict::Refused(m, _) if m.contains("group security")
        ));
        // A bare entry matches the id; a qualified one only on its platform.
        assert_eq!(
            judge_approval(
                &r,
                &[],
                &Actor::on(Platform::Slack, "U0SECURITY", "Sec"),
                &g
            ),
            Verdict::Counts { complete: true }
        );
        assert_eq!(
            judge_approval(&r, &[], &Actor::on(Platform::Slack, "U0SEC2", "Sec2"), &g),
            Verdict::Counts { complete: true }
        );
        assert!(matches!(
            judge_approval(&r, &[], &Actor::on(Platform::Discord, "U0SEC2", "x"), &g),
            Verdict::Refused(..)
        ));
        // A Discord role entry is met by a member holding the role, on Discord only.
        let mut with_role = Actor::on(Platform::Discord, "81234", "dana");
        with_role.roles = vec!["555".into()];
        assert_eq!(
            judge_approval(&r, &[], &with_role, &g),
            Verdict::Counts { complete: true }
        );
        let mut slack_role = Actor::on(Platform::Slack, "U1", "x");
        slack_role.roles = vec!["555".into()];
        assert!(matches!(
            judge_approval(&r, &[], &slack_role, &g),
            Verdict::Refused(..)
        ));
    }

    #[test]
    fn an_unverified_actor_is_refused_with_the_reason() {
        let r = request(Policy::default());
        let mut who = Actor::on(Platform::Slack, "U0BOB", "bob");
        who.unverified = Some("users.info: ratelimited".into());
        assert!(matches!(
            judge_approval(&r, &[], &who, &groups()),
            Verdict::Refused(m, _) if m.contains("users.info: ratelimited") && m.contains("not counted")
        ));
    }
}
