//! What the core says back. Transports decide how to show it (a console block, a Slack message,
//! an ephemeral error), never what it says.

/// Who should see a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// Everyone in the channel.
    Channel,
    /// Only the person who sent the command (an error, a refusal, help).
    Requester,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub audience: Audience,
    /// A refusal or a failure, as opposed to an acknowledgement of success.
    pub is_error: bool,
    /// The approval request this message is about: its card, or the progress of its run. Chat
    /// adapters use it to update the request's message in place.
    pub request: Option<crate::ids::RequestId>,
    /// This message presents the request itself (plan, digest, policy): adapters attach
    /// Approve/Deny buttons and map reactions on it back to the request.
    pub is_request_card: bool,
    /// Set on the reply that declares an incident (adapters open its channel).
    pub declared: Option<crate::ids::IncidentId>,
    /// The request a card presents, field by field, so adapters can lay it out with the digest,
    /// policy and expiry always beside the buttons, and user text never read as markup.
    pub card: Option<RequestCard>,
}

/// An approval request as a card shows it. Every field is plain text; `plan` and `command` carry
/// user text (titles, parameters) and must never be rendered as markup.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RequestCard {
    pub request: String,
    pub incident: String,
    /// The command as typed.
    pub command: String,
    /// `name (platform:id)`.
    pub requester: String,
    pub plan: String,
    /// The full SHA-256 digest approvals bind to.
    pub digest: String,
    pub policy: String,
    /// `YYYY-MM-DD HH:MM:SS UTC`.
    pub expires: String,
}

impl RequestCard {
    pub fn of(r: &crate::approval::ApprovalRequest) -> Self {
        Self {
            request: r.id.to_string(),
            incident: r.incident.to_string(),
            command: r.command.clone(),
            requester: format!("{} ({})", r.requester_name, r.requester_id),
            plan: r.plan_text.clone(),
            digest: r.plan_digest.clone(),
            policy: r.policy.describe(),
            expires: r.expires_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        }
    }
}

impl Reply {
    /// The message that presents a request for approval (adapters add buttons and map reactions).
    pub fn card(text: impl Into<String>, request: &crate::approval::ApprovalRequest) -> Self {
        let mut r = Self::channel(text).about(&request.id);
        r.is_request_card = true;
        r.card = Some(RequestCard::of(request));
        r
    }

    /// Marks the message as being about a request.
    pub fn about(mut self, request: &crate::ids::RequestId) -> Self {
        self.request = Some(request.clone());
        self
    }

    pub fn channel(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            audience: Audience::Channel,
            is_error: false,
            request: None,
            is_request_card: false,
            declared: None,
            card: None,
        }
    }

    pub fn private(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            audience: Audience::Requester,
            is_error: false,
            request: None,
            is_request_card: false,
            declared: None,
            card: None,
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            audience: Audience::Requester,
            is_error: true,
            request: None,
            is_request_card: false,
            declared: None,
            card: None,
        }
    }
}

/// Where messages produced outside a command's immediate reply go: step progress during a
/// playbook run, expiry notices. Each transport implements it.
#[async_trait::async_trait]
pub trait Outbox: Send + Sync {
    async fn post(&self, channel: &str, reply: Reply);
}

/// An outbox that drops everything (for tools that only need the immediate replies).
pub struct NoOutbox;

#[async_trait::async_trait]
impl Outbox for NoOutbox {
    async fn post(&self, _channel: &str, _reply: Reply) {}
}
