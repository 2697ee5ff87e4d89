//! Approval requests: an infrastructure command becomes a request carrying the exact plan and its
//! digest; `requests` lists them; the helpers that find a request and explain its state.

use super::{Engine, Request};
use crate::approval::{ApprovalRequest, Policy, RequestState};
use crate::facts::Fact;
use crate::ids::{IncidentId, RequestId};
use crate::incident::Incident;
use crate::playbook::{Plan, PlanContext, PlanError, make_plan};
use crate::reply::Reply;
use chrono::Duration;

impl Engine {
    pub(crate) async fn plan_for(
        &self,
        inc: &Incident,
        playbook: &str,
        params: &[(String, String)],
    ) -> Result<Plan, String> {
        let Some(pb) = self.playbooks.get(playbook) else {
            let names: Vec<&str> = self
                .playbooks
                .playbooks
                .keys()
                .map(String::as_str)
                .collect();
            return Err(format!(
                "there is no playbook `{playbook}`; playbooks: {}",
                names.join(", ")
            ));
        };
        let ctx = PlanContext {
            incident: inc.id.as_str(),
            title: &inc.title,
            severity: inc.severity,
        };
        make_plan(pb, params, ctx, &self.topo, self.executor.as_ref())
            .await
            .map_err(|e| match e {
                PlanError::Invalid(m) => m,
                other => other.to_string(),
            })
    }

    pub(crate) async fn request_playbook(
        &self,
        req: &Request,
        explicit: Option<IncidentId>,
        playbook: &str,
        params: Vec<(String, String)>,
    ) -> crate::Result<Vec<Reply>> {
        if req.actor.is_bot {
            return Ok(vec![Reply::error(
                "Bots cannot request infrastructure changes.",
            )]);
        }
        let inc = match self.target_incident(req, explicit, false).await? {
            Ok(i) => i,
            Err(_) => {
                return Ok(vec![Reply::error(format!(
                    "`{}`: infrastructure changes run inside an incident, and none is open here. Declare one first: `/erlmcp p1 declare <title>` (or name one: `/erlmcp INC-YYYYMMDD-N {}`).",
                    req.text.trim(),
                    req.text
                        .trim()
                        .trim_start_matches("/erlmcp ")
                        .trim_start_matches('/')
                ))]);
            }
        };
        if inc.status >= crate::incident::IncidentStatus::Resolved {
            return Ok(vec![Reply::error(format!(
                "`{}`: {} is {}; infrastructure changes are not requested for a resolved or closed incident. If the problem is back, declare a new incident: `/erlmcp p1 declare <title>`.",
                req.text.trim(),
                inc.id,
                inc.status
            ))]);
        }
        let plan = match self.plan_for(&inc, playbook, &params).await {
            Ok(p) => p,
            Err(m) => return Ok(vec![Reply::error(format!("`{}`: {m}", req.text.trim()))]),
        };
        let Some(pb) = self.playbooks.get(playbook) else {
            return Ok(vec![Reply::error(format!(
                "there is no playbook `{playbook}`"
            ))]);
        };
        let policy = Policy {
            expiry_seconds: self
                .settings
                .approval_expiry_seconds
                .unwrap_or(pb.policy.expiry_seconds),
            ..pb.policy.clone()
        };
        // A request nobody could ever approve is refused now, with what to configure.
        if let Some(empty) = policy.groups.iter().find(|g| {
            self.settings
                .groups
                .get(g.as_str())
                .is_none_or(|members| members.is_empty())
        }) {
            return Ok(vec![Reply::error(format!(
                "`{}`: playbook {} needs an approver from group `{empty}`, and nobody is in that group, so no one could approve it. Configure the group with platform user ids: `ERLMCP_GROUPS={empty}:U0123ABCD` (or `[groups] {empty} = [\"U0123ABCD\"]` in the configuration file), then ask again.",
                req.text.trim(),
                pb.name
            ))]);
        }
        let now = self.clock.now();
        let request = ApprovalRequest {
            id: RequestId::new(""),
            incident: inc.id.clone(),
            channel: req.channel.clone(),
            requester_id: req.actor.qualified_id(),
            requester_name: req.actor.name.clone(),
            command: req.text.trim().to_string(),
            playbook: plan.playbook.clone(),
            params: plan.params.clone(),
            severity: inc.severity,
            plan_text: plan.text.clone(),
            plan_digest: plan.digest.clone(),
            policy: policy.clone(),
            state: RequestState::Pending,
            created_at: now,
            expires_at: now + Duration::seconds(policy.expiry_seconds),
            decided_at: None,
            decided_by: None,
            reason: None,
            retry_of: None,
            mode: Some(self.executor.mode().as_str().to_string()),
        };
        let draft = self.draft(
            &req.actor,
            req.source,
            "approval.requested",
            format!(
                "{}: requested `{}` (playbook {}, plan digest {}); needs {}",
                crate::store::ID_PLACEHOLDER,
                request.command,
                plan.playbook,
                &plan.digest[..12],
                policy.describe()
            ),
        );
        let draft = draft.with([Fact::Requested {
            request: crate::store::ID_PLACEHOLDER.to_string(),
            requester_id: request.requester_id.clone(),
            command: request.command.clone(),
            playbook: request.playbook.clone(),
            digest: request.plan_digest.clone(),
        }]);
        let saved = self.store.create_request(request, vec![draft]).await?;
        crate::telemetry::request_created(&saved.playbook);
        tracing::info!(request = %saved.id, incident = %saved.incident, playbook = %saved.playbook, "change request created");
        Ok(vec![Reply::card(render_request(&saved, true), &saved)])
    }

    /// Picks the request a decision is about: the one named, or the only pending one of the incident.
    pub(super) async fn target_request(
        &self,
        req: &Request,
        incident: Option<IncidentId>,
        explicit: Option<RequestId>,
        verb: &str,
    ) -> crate::Result<Result<ApprovalRequest, Reply>> {
        if let Some(id) = explicit {
            return Ok(match self.store.request(&id).await? {
                Some(r) => {
                    // The lines about this decision name the incident too.
                    tracing::Span::current().record("incident", r.incident.as_str());
                    Ok(r)
                }
                None => Err(Reply::error(format!(
                    "There is no request {id}. `/erlmcp requests` lists the pending ones."
                ))),
            });
        }
        let inc = match self.target_incident(req, incident, false).await? {
            Ok(i) => i,
            Err(reply) => return Ok(Err(reply)),
        };
        let all = self.store.requests_for_incident(&inc.id).await?;
        let pending: Vec<ApprovalRequest> = all
            .iter()
            .filter(|r| r.state == RequestState::Pending)
            .cloned()
            .collect();
        Ok(match pending.as_slice() {
            [one] => {
                tracing::Span::current().record("request", one.id.as_str());
                Ok(one.clone())
            }
            [] => Err(Reply::error(match all.last() {
                Some(latest) => format!(
                    "Nothing is waiting for a decision in {}. Latest request: {}",
                    inc.id,
                    self.not_pending(latest)
                ),
                None => format!(
                    "Nothing is waiting for a decision in {}: no infrastructure change has been requested.",
                    inc.id
                ),
            })),
            several => {
                let list: Vec<String> = several
                    .iter()
                    .map(|r| format!("{} `{}` by {}", r.id, r.command, r.requester_name))
                    .collect();
                Err(Reply::error(format!(
                    "Several requests are pending in {}: {}. Say which: `/erlmcp {verb} {}`.",
                    inc.id,
                    list.join("; "),
                    several[0].id
                )))
            }
        })
    }

    /// Why a request that is not pending cannot be decided now.
    pub(super) fn not_pending(&self, r: &ApprovalRequest) -> String {
        let when = r
            .decided_at
            .map(|t| format!(" at {} UTC", t.format("%H:%M:%S")))
            .unwrap_or_default();
        let by = r
            .decided_by
            .as_ref()
            .map(|b| format!(" by {b}"))
            .unwrap_or_default();
        match r.state {
            RequestState::Expired => format!(
                "{} expired at {} UTC; ask again: `{}`.",
                r.id,
                r.expires_at.format("%H:%M"),
                r.command
            ),
            RequestState::Denied => format!(
                "{} was denied{by}{when}{}; it cannot be approved. Ask again if the situation changed.",
                r.id,
                r.reason
                    .as_ref()
                    .map(|x| format!(" ({x})"))
                    .unwrap_or_default()
            ),
            RequestState::Cancelled => format!("{} was cancelled{by}{when}.", r.id),
            RequestState::Void => format!(
                "{} is void: its plan no longer matches what would run{}. Request it again to see the new plan: `{}`.",
                r.id, when, r.command
            ),
            RequestState::Approved | RequestState::Executing => format!(
                "{} is already approved and executing; nothing more is needed.",
                r.id
            ),
            RequestState::Done => format!(
                "{} was already approved and executed{when}; it runs only once.",
                r.id
            ),
            RequestState::Failed => format!(
                "{} was approved and ran, but failed{when}; see `/erlmcp timeline`.",
                r.id
            ),
            RequestState::Pending => format!("{} is pending.", r.id),
        }
    }

    /// Marks the request expired if its time is up. `true` if it is (now) expired.
    pub(crate) async fn list_requests(
        &self,
        req: &Request,
        incident: Option<IncidentId>,
    ) -> crate::Result<Vec<Reply>> {
        let inc = match self.target_incident(req, incident, true).await? {
            Ok(i) => i,
            Err(reply) => return Ok(vec![reply]),
        };
        let all = self.store.requests_for_incident(&inc.id).await?;
        let pending: Vec<&ApprovalRequest> = all
            .iter()
            .filter(|r| r.state == RequestState::Pending)
            .collect();
        if pending.is_empty() {
            let recent: Vec<String> = all
                .iter()
                .rev()
                .take(5)
                .map(|r| format!("{} `{}`: {}", r.id, r.command, r.state))
                .collect();
            let mut s = format!("No pending requests in {}.", inc.id);
            if !recent.is_empty() {
                s.push_str(&format!(" Recent: {}", recent.join("; ")));
            }
            return Ok(vec![Reply::private(s)]);
        }
        let mut replies = Vec::new();
        for r in pending {
            let approvals = self.store.approvals(&r.id).await?;
            let mut text = render_request(r, false);
            if !approvals.is_empty() {
                let names: Vec<&str> = approvals.iter().map(|a| a.approver_name.as_str()).collect();
                text.push_str(&format!("\nApproved so far by: {}", names.join(", ")));
            }
            let mut reply = Reply::card(text, r);
            reply.audience = crate::reply::Audience::Requester;
            replies.push(reply);
        }
        Ok(replies)
    }
}

/// An approval request as people read it: who asks for what, the exact plan, its digest, the policy.
pub fn render_request(r: &ApprovalRequest, fresh: bool) -> String {
    format!(
        "{} {} `{}` by {} for {}\n{}Plan digest: {}\nPolicy: {}\nExpires: {} UTC\n{}",
        if fresh {
            "🔐 Approval needed:"
        } else {
            "🔐"
        },
        r.id,
        r.command,
        r.requester_name,
        r.incident,
        r.plan_text,
        r.plan_digest,
        r.policy.describe(),
        r.expires_at.format("%Y-%m-%d %H:%M:%S"),
        format_args!(
            "Someone other than {} approves with `/erlmcp approve {}` or denies with `/erlmcp deny {} <reason>`.",
            r.requester_name, r.id, r.id
        )
    )
}
