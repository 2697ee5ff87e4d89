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
}

impl Reply {
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
