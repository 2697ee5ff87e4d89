//! What can be read about incidents without acting: the postmortem, the chain check and the SLA
//! report. They need only a `Store`, so read-only tools (`timeline verify`, `postmortem`,
//! `report`) open the database and nothing else: holding no executor, they cannot execute a step.

use crate::error::Error;
use crate::facts;
use crate::ids::IncidentId;
use crate::postmortem::{self, RequestRecord};
use crate::store::Store;
use crate::timeline::{self, Break, Keying, TimelineKey};
use chrono::{DateTime, Utc};

/// The postmortem draft of an incident, in Markdown.
pub async fn postmortem_markdown(store: &dyn Store, id: &IncidentId) -> crate::Result<String> {
    let inc = store
        .incident(id)
        .await?
        .ok_or_else(|| Error::NotFound(id.to_string()))?;
    let entries = store.timeline(id).await?;
    let mut records = Vec::new();
    for request in store.requests_for_incident(id).await? {
        let approvals = store.approvals(&request.id).await?;
        let run = match store.run_for_request(&request.id).await? {
            Some(run) => {
                let steps = store.steps(&run.id).await?;
                Some((run, steps))
            }
            None => None,
        };
        records.push(RequestRecord {
            request,
            approvals,
            run,
        });
    }
    let mut md = postmortem::render(&inc, &entries, &records);
    // A postmortem of a tampered record says so at the top, before anyone reads on.
    let check = verify_timeline(store, id, None).await?;
    if !check.breaks.is_empty() {
        let reasons: Vec<String> = check
            .breaks
            .iter()
            .map(|b| format!("> - {}", crate::markdown::text(&b.to_string())))
            .collect();
        let warning = format!(
            "> ⚠ **This incident's record fails verification**; what follows may not be what happened:\n{}\n\n",
            reasons.join("\n")
        );
        if let Some(end) = md.find('\n') {
            md.insert_str(end + 2, &warning);
        }
    }
    Ok(md)
}

/// What checking an incident's timeline found.
#[derive(Clone, Debug)]
pub struct ChainCheck {
    /// Every break, first one first; empty means intact.
    pub breaks: Vec<Break>,
    /// What the keyed MACs showed.
    pub keying: Keying,
    pub entries: i64,
}

/// Checks an incident's hash chain (and with a key its MACs), that its row says what its
/// timeline says, and that the requests, approvals, runs and steps tables say what the
/// timeline's facts say.
pub async fn verify_timeline(
    store: &dyn Store,
    id: &IncidentId,
    key: Option<&TimelineKey>,
) -> crate::Result<ChainCheck> {
    let entries = store.timeline(id).await?;
    let head = store.timeline_head(id).await?;
    let (mut breaks, keying) = timeline::verify(&entries, head.as_ref(), key);
    if breaks.is_empty()
        && let Some(inc) = store.incident(id).await?
    {
        breaks.extend(timeline::verify_row(&inc, &entries));
        let mut held = Vec::new();
        for request in store.requests_for_incident(id).await? {
            let approvals = store.approvals(&request.id).await?;
            let run = match store.run_for_request(&request.id).await? {
                Some(run) => {
                    let steps = store.steps(&run.id).await?;
                    Some((run, steps))
                }
                None => None,
            };
            held.push((request, approvals, run));
        }
        let recorded: Vec<facts::Recorded<'_>> = held
            .iter()
            .map(|(request, approvals, run)| facts::Recorded {
                request,
                approvals,
                run: run.as_ref().map(|(r, s)| (r, s.as_slice())),
            })
            .collect();
        breaks.extend(
            facts::check_tables(&entries, &recorded)
                .into_iter()
                .map(|what| Break::Table { what }),
        );
    }
    Ok(ChainCheck {
        breaks,
        keying,
        entries: entries.len() as i64,
    })
}

/// The monthly SLA report over every recorded incident.
pub async fn sla_report(
    store: &dyn Store,
    year: i32,
    month: u32,
    now: DateTime<Utc>,
) -> crate::Result<String> {
    let incidents = store.all_incidents().await?;
    Ok(crate::report::sla_report(&incidents, year, month, now))
}
