//! Durable acknowledgements. A command is stored (as a receipt) before it is acknowledged, so an
//! acknowledged command survives a crash; and many commands arriving together share one
//! transaction and one sync to disk (group commit), which is what lets thousands a second be
//! acknowledged durably. One writer task owns the writing: requests hand it their receipt and
//! wait for the answer; it drains whatever has queued up meanwhile into one batch.

use erlmcp_handlers::store::{NewReceipt, ReceiptFate, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most receipts in one transaction.
pub(crate) const MAX_BATCH: usize = 1024;
/// Receipts waiting for the writer; when full, a request waits (it is still within its deadline).
const QUEUE: usize = 8192;

/// A receipt stored: its id and what it carries, for the processor.
#[derive(Clone, Debug)]
pub struct Stored {
    pub id: i64,
    pub receipt: NewReceipt,
}

/// What became of a submitted receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Stored: it will be processed.
    Stored(i64),
    /// Stored with its note on this incident's timeline: processed already.
    Applied(erlmcp_handlers::ids::IncidentId),
    /// Its key was stored before: a replay, or a redelivery already taken.
    Duplicate,
    /// Not stored (the database refused or is unreachable): nothing was recorded.
    Failed(String),
    /// No answer in time: it may yet be stored (and then processed) or not.
    Unknown(String),
}

struct Submission {
    receipt: NewReceipt,
    answer: oneshot::Sender<Outcome>,
}

/// The writer's front door.
#[derive(Clone)]
pub struct Intake {
    queue: mpsc::Sender<Submission>,
    activity: crate::memory::Activity,
}

impl Intake {
    /// Starts the writer; stored receipts go to `stored`, in order.
    pub fn start(store: Arc<dyn Store>, stored_tx: mpsc::UnboundedSender<Stored>) -> Intake {
        let (queue, mut incoming) = mpsc::channel::<Submission>(QUEUE);
        let activity = crate::memory::Activity::default();
        let counted = activity.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            loop {
                if incoming.is_empty() {
                    store.receipts_paused().await;
                }
                if incoming.recv_many(&mut batch, MAX_BATCH).await == 0 {
                    break;
                }
                counted.count(batch.len());
                let (receipts, answers): (Vec<NewReceipt>, Vec<_>) =
                    batch.drain(..).map(|s| (s.receipt, s.answer)).unzip();
                let written = store.record_receipts(&receipts).await;
                for (i, (receipt, answer)) in receipts.into_iter().zip(answers).enumerate() {
                    let outcome = match &written {
                        Ok(fates) => match fates.get(i).copied() {
                            Some(ReceiptFate::Stored(id)) => {
                                let _ = stored_tx.send(Stored { id, receipt });
                                Outcome::Stored(id)
                            }
                            Some(ReceiptFate::Applied(_)) => match receipt.note {
                                Some(note) => {
                                    // A note written with its receipt never reaches the
                                    // engine's handler: it is counted here.
                                    erlmcp_handlers::telemetry::command(
                                        "note",
                                        erlmcp_handlers::telemetry::CommandOutcome::Ok,
                                    );
                                    Outcome::Applied(note.incident)
                                }
                                None => Outcome::Failed(
                                    "the database applied a note it was not given".into(),
                                ),
                            },
                            Some(ReceiptFate::Duplicate) => Outcome::Duplicate,
                            None => Outcome::Failed(
                                "the database answered for fewer commands than it was given".into(),
                            ),
                        },
                        Err(e) => Outcome::Failed(e.to_string()),
                    };
                    let _ = answer.send(outcome);
                }
            }
        });
        Intake { queue, activity }
    }

    /// How many receipts have come in, for `memory::give_back_after_bursts`.
    pub fn activity(&self) -> crate::memory::Activity {
        self.activity.clone()
    }

    /// Stores one receipt (with whatever else arrives meanwhile); waits at most `patience`.
    pub async fn submit(&self, receipt: NewReceipt, patience: Duration) -> Outcome {
        let (answer, outcome) = oneshot::channel();
        let sent =
            tokio::time::timeout(patience, self.queue.send(Submission { receipt, answer })).await;
        if !matches!(sent, Ok(Ok(()))) {
            return Outcome::Failed("the bot is overloaded".into());
        }
        match tokio::time::timeout(patience, outcome).await {
            Ok(Ok(o)) => o,
            Ok(Err(_)) => Outcome::Failed("the writer stopped".into()),
            Err(_) => Outcome::Unknown(format!(
                "no answer from the database within {} s",
                patience.as_secs()
            )),
        }
    }
}
