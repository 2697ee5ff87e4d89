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

/// The postmortem draft of an incident, in Markdown. The timeline is read once, a page at a
/// time: each entry is checked and added to the table, so a huge incident costs a page of memory.
pub async fn postmortem_markdown(store: &dyn Store, id: &IncidentId) -> crate::Result<String> {
    let inc = store
        .incident(id)
        .await?
        .ok_or_else(|| Error::NotFound(id.to_string()))?;
    let mut draft = PostmortemDraft::new(&inc);
    let (check, held) = walk(store, id, None, |e| draft.add(e)).await?;
    let records = records_of(held);
    Ok(draft.finish(&inc, &check, &records))
}

/// What the postmortem gathers from the timeline as it is read.
struct PostmortemDraft {
    table: postmortem::TimelineTable,
    severity_changed: bool,
    detection: postmortem::Detection,
}

impl PostmortemDraft {
    fn new(inc: &crate::incident::Incident) -> Self {
        Self {
            table: postmortem::TimelineTable::new(inc.id.as_str()),
            severity_changed: false,
            detection: postmortem::Detection::of(inc),
        }
    }

    fn add(&mut self, e: &timeline::Entry) {
        self.severity_changed |= e.kind == "severity";
        self.detection.add(e);
        self.table.add(e);
    }

    fn finish(
        self,
        inc: &crate::incident::Incident,
        check: &ChainCheck,
        records: &[RequestRecord],
    ) -> String {
        let mut md = postmortem::render(
            inc,
            self.table,
            self.severity_changed,
            records,
            &self.detection,
        );
        // A postmortem of a tampered record says so at the top, before anyone reads on.
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
        md
    }
}

fn records_of(held: Vec<Held>) -> Vec<RequestRecord> {
    held.into_iter()
        .map(|(request, approvals, run)| RequestRecord {
            request,
            approvals,
            run,
        })
        .collect()
}

/// An incident's requests with their approvals and runs, from the tables (no timeline read):
/// what the picture needs.
pub async fn requests_of(store: &dyn Store, id: &IncidentId) -> crate::Result<Vec<RequestRecord>> {
    let mut out = Vec::new();
    for request in store.requests_for_incident(id).await? {
        let approvals = store.approvals(&request.id).await?;
        let run = match store.run_for_request(&request.id).await? {
            Some(run) => {
                let steps = store.steps(&run.id).await?;
                Some((run, steps))
            }
            None => None,
        };
        out.push(RequestRecord {
            request,
            approvals,
            run,
        });
    }
    Ok(out)
}

/// The timeline picture of an incident, from its row and tables alone.
pub async fn picture(
    store: &dyn Store,
    id: &IncidentId,
    now: DateTime<Utc>,
) -> crate::Result<Option<String>> {
    let Some(inc) = store.incident(id).await? else {
        return Ok(None);
    };
    let records = requests_of(store, id).await?;
    Ok(Some(crate::picture::timeline_svg(&inc, &records, now)))
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
    Ok(walk(store, id, key, |_| {}).await?.0)
}

/// Everything a page about one incident shows, read in one pass over its timeline.
pub struct IncidentView {
    pub incident: crate::incident::Incident,
    /// The first `limit` entries.
    pub entries: Vec<timeline::Entry>,
    /// How many more there are.
    pub more: i64,
    pub check: ChainCheck,
    pub records: Vec<RequestRecord>,
    pub postmortem: String,
    pub svg: String,
}

/// Reads an incident for the web view: at most `limit` timeline entries are kept (the check
/// reads them all), `None` if there is no such incident.
pub async fn incident_view(
    store: &dyn Store,
    id: &IncidentId,
    key: Option<&TimelineKey>,
    limit: usize,
    now: DateTime<Utc>,
) -> crate::Result<Option<IncidentView>> {
    let Some(incident) = store.incident(id).await? else {
        return Ok(None);
    };
    let mut entries = Vec::new();
    let mut more = 0i64;
    let mut draft = PostmortemDraft::new(&incident);
    // One pass: the listed entries, the chain check and the postmortem's table together.
    let (check, held) = walk(store, id, key, |e| {
        draft.add(e);
        if entries.len() < limit {
            entries.push(e.clone());
        } else {
            more += 1;
        }
    })
    .await?;
    let records = records_of(held);
    let postmortem = draft.finish(&incident, &check, &records);
    let svg = crate::picture::timeline_svg(&incident, &records, now);
    Ok(Some(IncidentView {
        incident,
        entries,
        more,
        check,
        records,
        postmortem,
        svg,
    }))
}

/// Positions read per query: big enough that a million entries take a few hundred queries,
/// small enough that a page of long notes stays a few megabytes.
const PAGE: i64 = 2048;

/// Pages read and hashed ahead of the one being checked: the database, the parsing and the
/// hashing of different pages then run side by side on the machine's cores.
const PAGES_AHEAD: usize = 4;

/// An approval request with its approvals and its run's steps.
type Held = (
    crate::approval::ApprovalRequest,
    Vec<crate::approval::Approval>,
    Option<(crate::run::Run, Vec<crate::run::StepRecord>)>,
);

/// A page of entries, each with whether its content still gives its hash.
type HashedPage = crate::Result<(Vec<timeline::Entry>, Vec<bool>)>;

/// Holds each entry of a page to its hash on a blocking thread.
async fn hashed(page: crate::Result<Vec<timeline::Entry>>) -> HashedPage {
    let page = page?;
    tokio::task::spawn_blocking(move || {
        let matches = page.iter().map(|e| e.hash_matches()).collect();
        (page, matches)
    })
    .await
    .map_err(|e| Error::Store(format!("checking the timeline failed: {e}")))
}

/// Reads a timeline in order, for the chain check. First the lowest `PAGE` entries up to #`PAGE`
/// (so rows inserted before #1 are found, and bounded); then key ranges of
/// `PAGE` positions, several requested ahead, but only up to a chain end the incident's row
/// recorded: every entry up to it was committed with that record, so ranges read in any order
/// see all of them. Past that end, at a range that comes back empty (a hole), one `LIMIT` page
/// at a time after the last entry seen finds what follows, in order, so entries appended while
/// the walk runs are neither skipped nor taken for a gap; ranges resume once that is within the
/// recorded end again. Every query either returns entries past the last one seen or ends a
/// stretch, so the reading ends after about one query per `PAGE` entries and a few per hole,
/// whatever the record says.
struct Reader<'a> {
    store: &'a dyn Store,
    id: &'a IncidentId,
    ahead: futures_util::stream::FuturesOrdered<futures_util::future::BoxFuture<'a, HashedPage>>,
    started: bool,
    /// Where the next range starts (exclusive).
    next_after: i64,
    /// The furthest chain end recorded in the incident's row so far.
    recorded: i64,
    /// Ranges are requested up to here: the recorded end, or where a range came back empty.
    until: i64,
}

impl<'a> Reader<'a> {
    fn new(store: &'a dyn Store, id: &'a IncidentId, recorded_end: i64) -> Self {
        Reader {
            store,
            id,
            ahead: futures_util::stream::FuturesOrdered::new(),
            started: false,
            next_after: i64::MIN,
            recorded: recorded_end,
            until: recorded_end,
        }
    }

    /// A chain end recorded since: entries up to it may be read in ranges.
    fn extend_to(&mut self, end: i64) {
        if end > self.recorded {
            self.recorded = end;
            self.until = end;
        }
    }

    /// The next page in order, `None` once nothing is left after `last_seen` (the last
    /// position the caller took; every page returned before was taken).
    async fn next(
        &mut self,
        last_seen: i64,
    ) -> crate::Result<Option<(Vec<timeline::Entry>, Vec<bool>)>> {
        use futures_util::{FutureExt, StreamExt};
        if !self.started {
            self.started = true;
            // Through #PAGE, at most PAGE entries: any rows before #1 first, bounded.
            let page = hashed(
                self.store
                    .timeline_range(self.id, i64::MIN, PAGE, PAGE)
                    .await,
            )
            .await?;
            self.next_after = match page.0.last() {
                Some(last) if page.0.len() as i64 == PAGE => last.seq,
                _ => PAGE,
            };
            if !page.0.is_empty() {
                return Ok(Some(page));
            }
        }
        loop {
            if self.ahead.is_empty() {
                self.next_after = self.next_after.max(last_seen);
            }
            while self.ahead.len() < PAGES_AHEAD && self.next_after < self.until {
                let (store, id, after) = (self.store, self.id, self.next_after);
                let through = after.saturating_add(PAGE).min(self.until);
                self.ahead.push_back(
                    async move {
                        hashed(store.timeline_range(id, after, through, PAGE).await).await
                    }
                        .boxed(),
                );
                self.next_after = through;
            }
            if let Some(page) = self.ahead.next().await {
                let page = page?;
                if page.0.is_empty() {
                    // A hole of a whole range: no more ranges until a page finds what follows.
                    self.until = self.next_after;
                    continue;
                }
                return Ok(Some(page));
            }
            let page = hashed(
                self.store
                    .timeline_range(self.id, last_seen, i64::MAX, PAGE)
                    .await,
            )
            .await?;
            let Some(last) = page.0.last() else {
                return Ok(None);
            };
            self.next_after = last.seq;
            self.until = self.recorded;
            return Ok(Some(page));
        }
    }
}

/// Reads the timeline a page at a time (`Reader`) and checks it as `verify_timeline` says,
/// showing each entry to `visit` in order. Only entries the row and table checks need are kept.
/// An entry at or before the last one checked is a repeat (the look past what was read may
/// overlap a range) and is skipped.
async fn walk(
    store: &dyn Store,
    id: &IncidentId,
    key: Option<&TimelineKey>,
    mut visit: impl FnMut(&timeline::Entry),
) -> crate::Result<(ChainCheck, Vec<Held>)> {
    let mut checker = timeline::ChainChecker::new(key);
    let mut kept = Vec::new();
    // The incident's record of its chain's end is read again after the entries, so an entry
    // appended while they were read is not taken for a cut; a record ahead of what was read
    // sends the reader on, a few times at most. A chain that keeps growing faster (a live
    // incident taking a flood of notes) is held to the record read before the entries.
    let earlier = store.timeline_head(id).await?;
    if let Some(h) = &earlier {
        checker.watch(h.len);
    }
    let mut reader = Reader::new(store, id, earlier.as_ref().map_or(0, |h| h.len));
    let mut head;
    let mut rounds = 0;
    loop {
        while let Some((page, matches)) = reader.next(checker.last_seq()).await? {
            for (e, hash_matches) in page.into_iter().zip(matches) {
                if checker.entries() > 0 && e.seq <= checker.last_seq() {
                    continue;
                }
                checker.check_hashed(&e, hash_matches);
                visit(&e);
                if timeline::kept_for_row_checks(&e) {
                    kept.push(e);
                }
            }
        }
        head = store.timeline_head(id).await?;
        rounds += 1;
        match &head {
            Some(h) if h.len > checker.last_seq() && rounds < 4 => reader.extend_to(h.len),
            _ => break,
        }
    }
    let entries = checker.entries();
    let (mut breaks, keying) = match (&head, &earlier) {
        (Some(now), Some(before)) if now.len > checker.last_seq() => {
            checker.finish_at_earlier(before)
        }
        _ => checker.finish(head.as_ref()),
    };
    let mut held = Vec::new();
    // The row and the tables are held to the timeline only when the chain itself is intact.
    let chain_intact = breaks.is_empty();
    if let Some(inc) = store.incident(id).await? {
        if chain_intact {
            breaks.extend(timeline::verify_row(&inc, &kept));
        }
        held.extend(
            requests_of(store, id)
                .await?
                .into_iter()
                .map(|r| (r.request, r.approvals, r.run)),
        );
        if chain_intact {
            let recorded: Vec<facts::Recorded<'_>> = held
                .iter()
                .map(|(request, approvals, run)| facts::Recorded {
                    request,
                    approvals,
                    run: run.as_ref().map(|(r, s)| (r, s.as_slice())),
                })
                .collect();
            breaks.extend(
                facts::check_tables(&kept, &recorded)
                    .into_iter()
                    .map(|what| Break::Table { what }),
            );
        }
    }
    Ok((
        ChainCheck {
            breaks,
            keying,
            entries,
        },
        held,
    ))
}

/// The monthly SLA report over every recorded incident.
pub async fn sla_report(
    store: &dyn Store,
    year: i32,
    month: u32,
    now: DateTime<Utc>,
) -> crate::Result<String> {
    let incidents = store.all_incidents().await?;
    // Downtime starts at detection where an alert says when the condition began: only P0
    // incidents count toward downtime, and only those with an alert entry are read.
    let mut detected = std::collections::BTreeMap::new();
    for inc in incidents
        .iter()
        .filter(|i| i.severity == crate::severity::Severity::P0 && !i.drill)
    {
        if !store.has_entry(&inc.id, "alert.firing").await? {
            continue;
        }
        let mut d = postmortem::Detection::of(inc);
        for e in store.timeline(&inc.id).await? {
            d.add(&e);
        }
        if let Some(t) = d.detected {
            detected.insert(inc.id.clone(), t);
        }
    }
    Ok(crate::report::sla_report(
        &incidents, &detected, year, month, now,
    ))
}
