//! What can be read about incidents without acting: the postmortem, the chain check and the SLA
//! report. They need only a `Store`, so read-only tools (`timeline verify`, `postmortem`,
//! `report`) open the database and nothing else: holding no executor, they cannot execute a step.

use crate::error::Error;
use crate::ids::IncidentId;
use crate::postmortem::{self, RequestRecord};
use crate::store::Store;
use crate::timeline::{self, Break};
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
    Ok(postmortem::render(&inc, &entries, &records))
}

/// Checks an incident's hash chain, and that its row says what its timeline says; an empty list
/// means intact.
pub async fn verify_timeline(store: &dyn Store, id: &IncidentId) -> crate::Result<Vec<Break>> {
    let entries = store.timeline(id).await?;
    let head = store.timeline_head(id).await?;
    let mut breaks = timeline::verify(&entries, head.as_ref());
    if breaks.is_empty()
        && let Some(inc) = store.incident(id).await?
    {
        breaks.extend(timeline::verify_row(&inc, &entries));
    }
    Ok(breaks)
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
