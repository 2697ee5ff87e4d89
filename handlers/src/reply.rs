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
    /// Set on the message that presents an approval request, so chat adapters can attach
    /// Approve/Deny buttons and map reactions on it back to the request.
    pub approval_request: Option<crate::ids::RequestId>,
}

impl Reply {
    pub fn channel(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            audience: Audience::Channel,
            is_error: false,
            approval_request: None,
        }
    }

    pub fn private(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            audience: Audience::Requester,
            is_error: false,
            approval_request: None,
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            audience: Audience::Requester,
            is_error: true,
            approval_request: None,
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
