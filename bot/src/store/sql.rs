//! The `Store` implementation, written once and expanded for SQLite and PostgreSQL. The two differ
//! only in how a write transaction starts (SQLite takes the write lock up front with
//! `BEGIN IMMEDIATE`) and in row locks (`FOR UPDATE` on PostgreSQL).

macro_rules! sql_store {
    ($store:ident, $db:ty, $begin:literal, $for_update:literal, $alert_lock:literal) => {
        const _: () = {
            use crate::store::rows::{bad, db, is_unique_violation, roles_from_json, roles_to_json};
            use chrono::{DateTime, NaiveDate, Utc};
            use erlmcp_handlers::approval::{Approval, ApprovalRequest, Platform, Policy, RequestState};
            use erlmcp_handlers::error::{Error, Result};
            use erlmcp_handlers::ids::{IncidentId, RequestId, RunId};
            use erlmcp_handlers::incident::{Incident, IncidentStatus};
                        use erlmcp_handlers::severity::Severity;
            use erlmcp_handlers::store::{ID_PLACEHOLDER, NewIncident, Recorded, StateChange, Store};
            use erlmcp_handlers::timeline::{self, Draft, Entry, GENESIS_HASH, Head, Source, TimelineKey};
            use sqlx::{AssertSqlSafe, Row};

            type Tx = sqlx::Transaction<'static, $db>;
            type DbRow = <$db as sqlx::Database>::Row;

            const INCIDENT_COLUMNS: &str = "id, title, severity, status, channel, drill, declared_by, declared_at, acknowledged_at, acknowledged_by, mitigated_at, resolved_at, closed_at, summary, roles, version";
            const REQUEST_COLUMNS: &str = "id, incident_id, channel, requester_id, requester_name, command, playbook, params, severity, plan_text, plan_digest, policy, state, created_at, expires_at, decided_at, decided_by, reason, retry_run, retry_step, mode";

            fn incident_from(row: &DbRow) -> Result<Incident> {
                let sev: String = row.try_get("severity").map_err(db)?;
                let status: String = row.try_get("status").map_err(db)?;
                let roles: String = row.try_get("roles").map_err(db)?;
                Ok(Incident {
                    id: IncidentId::new(row.try_get::<String, _>("id").map_err(db)?),
                    title: row.try_get("title").map_err(db)?,
                    severity: Severity::parse(&sev).ok_or_else(|| bad("severity", &sev))?,
                    status: IncidentStatus::parse(&status).ok_or_else(|| bad("status", &status))?,
                    channel: row.try_get("channel").map_err(db)?,
                    drill: row.try_get("drill").map_err(db)?,
                    declared_by: row.try_get("declared_by").map_err(db)?,
                    declared_at: row.try_get("declared_at").map_err(db)?,
                    acknowledged_at: row.try_get("acknowledged_at").map_err(db)?,
                    acknowledged_by: row.try_get("acknowledged_by").map_err(db)?,
                    mitigated_at: row.try_get("mitigated_at").map_err(db)?,
                    resolved_at: row.try_get("resolved_at").map_err(db)?,
                    closed_at: row.try_get("closed_at").map_err(db)?,
                    summary: row.try_get("summary").map_err(db)?,
                    roles: roles_from_json(&roles)?,
                    version: row.try_get("version").map_err(db)?,
                })
            }

            fn entry_from(row: &DbRow) -> Result<Entry> {
                let source: String = row.try_get("source").map_err(db)?;
                let facts: Option<String> = row.try_get("data").map_err(db)?;
                let facts = match facts {
                    Some(f) => serde_json::from_str(&f).map_err(|_| bad("data", &f))?,
                    None => Vec::new(),
                };
                Ok(Entry {
                    incident: IncidentId::new(row.try_get::<String, _>("incident_id").map_err(db)?),
                    seq: row.try_get("seq").map_err(db)?,
                    at: row.try_get("at").map_err(db)?,
                    actor: row.try_get("actor").map_err(db)?,
                    actor_id: row.try_get("actor_id").map_err(db)?,
                    source: Source::parse(&source).ok_or_else(|| bad("source", &source))?,
                    kind: row.try_get("kind").map_err(db)?,
                    text: row.try_get("text").map_err(db)?,
                    prev_hash: row.try_get("prev_hash").map_err(db)?,
                    hash: row.try_get("hash").map_err(db)?,
                    facts,
                    mac: row.try_get("mac").map_err(db)?,
                })
            }

            fn request_from(row: &DbRow) -> Result<ApprovalRequest> {
                let params: String = row.try_get("params").map_err(db)?;
                let policy: String = row.try_get("policy").map_err(db)?;
                let state: String = row.try_get("state").map_err(db)?;
                let sev: String = row.try_get("severity").map_err(db)?;
                Ok(ApprovalRequest {
                    id: RequestId::new(row.try_get::<String, _>("id").map_err(db)?),
                    incident: IncidentId::new(row.try_get::<String, _>("incident_id").map_err(db)?),
                    channel: row.try_get("channel").map_err(db)?,
                    requester_id: row.try_get("requester_id").map_err(db)?,
                    requester_name: row.try_get("requester_name").map_err(db)?,
                    command: row.try_get("command").map_err(db)?,
                    playbook: row.try_get("playbook").map_err(db)?,
                    params: serde_json::from_str(&params).map_err(|_| bad("params", &params))?,
                    severity: Severity::parse(&sev).ok_or_else(|| bad("severity", &sev))?,
                    plan_text: row.try_get("plan_text").map_err(db)?,
                    plan_digest: row.try_get("plan_digest").map_err(db)?,
                    policy: serde_json::from_str::<Policy>(&policy).map_err(|_| bad("policy", &policy))?,
                    state: RequestState::parse(&state).ok_or_else(|| bad("state", &state))?,
                    created_at: row.try_get("created_at").map_err(db)?,
                    expires_at: row.try_get("expires_at").map_err(db)?,
                    decided_at: row.try_get("decided_at").map_err(db)?,
                    decided_by: row.try_get("decided_by").map_err(db)?,
                    reason: row.try_get("reason").map_err(db)?,
                    retry_of: match (
                        row.try_get::<Option<String>, _>("retry_run").map_err(db)?,
                        row.try_get::<Option<i64>, _>("retry_step").map_err(db)?,
                    ) {
                        (Some(run), Some(step)) => Some((RunId::new(run), step)),
                        _ => None,
                    },
                    mode: row.try_get("mode").map_err(db)?,
                })
            }

            impl $store {
                async fn begin(&self) -> Result<Tx> {
                    self.writer.begin_with($begin).await.map_err(db)
                }

                /// Next per-day sequence number of a table, inside the transaction.
                async fn next_day_seq(tx: &mut Tx, table: &'static str, day: NaiveDate) -> Result<i64> {
                    let sql = format!("SELECT COALESCE(MAX(day_seq), 0) + 1 AS n FROM {table} WHERE day = $1");
                    let row = sqlx::query(AssertSqlSafe(sql)).bind(day.to_string()).fetch_one(&mut **tx).await.map_err(db)?;
                    row.try_get("n").map_err(db)
                }

                /// Seals (and with a key, MACs) and inserts drafts after the incident's current
                /// head, holding its row lock; the incident row keeps the new length, head and head MAC.
                async fn upsert_alert_links(tx: &mut Tx, incident: &IncidentId, links: &[erlmcp_handlers::store::AlertLink]) -> Result<()> {
                    let now = timeline::normalise_time(Utc::now());
                    for link in links {
                        sqlx::query("INSERT INTO alert_links (key, incident_id, status, starts_at, updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO UPDATE SET incident_id = excluded.incident_id, status = excluded.status, starts_at = excluded.starts_at, updated_at = excluded.updated_at")
                            .bind(&link.key)
                            .bind(incident.as_str())
                            .bind(&link.status)
                            .bind(link.starts_at.map(timeline::normalise_time))
                            .bind(now)
                            .execute(&mut **tx)
                            .await
                            .map_err(db)?;
                    }
                    Ok(())
                }

                async fn append_in(tx: &mut Tx, key: Option<&TimelineKey>, incident: &IncidentId, drafts: Vec<Draft>) -> Result<Vec<Entry>> {
                    Self::append_checked(tx, key, incident, drafts, false).await
                }

                /// Appends, refusing (with `Error::Conflict`) a closed incident when `open_only`.
                async fn append_checked(tx: &mut Tx, key: Option<&TimelineKey>, incident: &IncidentId, drafts: Vec<Draft>, open_only: bool) -> Result<Vec<Entry>> {
                    if drafts.is_empty() {
                        return Ok(Vec::new());
                    }
                    let sql = format!("SELECT status, timeline_len, timeline_head, (SELECT mac FROM timeline WHERE incident_id = $1 AND seq = incidents.timeline_len) AS last_mac FROM incidents WHERE id = $1{}", $for_update);
                    let row = sqlx::query(AssertSqlSafe(sql))
                        .bind(incident.as_str())
                        .fetch_optional(&mut **tx)
                        .await
                        .map_err(db)?
                        .ok_or_else(|| Error::NotFound(incident.to_string()))?;
                    if open_only && row.try_get::<String, _>("status").map_err(db)? == "closed" {
                        return Err(Error::Conflict(format!("{incident} is closed")));
                    }
                    let mut len: i64 = row.try_get("timeline_len").map_err(db)?;
                    let mut head: String = row.try_get("timeline_head").map_err(db)?;
                    let mut mac: Option<String> = row.try_get("last_mac").map_err(db)?;
                    let mut out = Vec::with_capacity(drafts.len());
                    for d in drafts {
                        let prev = (len > 0).then_some(timeline::Prev { seq: len, hash: head.as_str(), mac: mac.as_deref() });
                        let e = timeline::seal(incident, prev, d, key);
                        len = e.seq;
                        head = e.hash.clone();
                        mac = e.mac.clone();
                        out.push(e);
                    }
                    // Many rows a statement: a burst of notes costs a few statements, not one each.
                    for chunk in out.chunks(400) {
                        let sql = format!(
                            "INSERT INTO timeline (incident_id, seq, at, actor, actor_id, source, kind, text, prev_hash, hash, data, mac) VALUES {}",
                            crate::store::rows::placeholders(chunk.len(), 12)
                        );
                        let mut q = sqlx::query(AssertSqlSafe(sql));
                        for e in chunk {
                            let facts = if e.facts.is_empty() {
                                None
                            } else {
                                Some(serde_json::to_string(&e.facts).map_err(|e| Error::Store(e.to_string()))?)
                            };
                            q = q
                                .bind(e.incident.as_str())
                                .bind(e.seq)
                                .bind(e.at)
                                .bind(e.actor.clone())
                                .bind(e.actor_id.clone())
                                .bind(e.source.as_str())
                                .bind(e.kind.clone())
                                .bind(e.text.clone())
                                .bind(e.prev_hash.clone())
                                .bind(e.hash.clone())
                                .bind(facts)
                                .bind(e.mac.clone());
                        }
                        q.execute(&mut **tx).await.map_err(db)?;
                    }
                    let head_mac = key.map(|k| k.head_mac(incident.as_str(), len, &head));
                    sqlx::query("UPDATE incidents SET timeline_len = $1, timeline_head = $2, timeline_head_mac = $3 WHERE id = $4")
                        .bind(len)
                        .bind(&head)
                        .bind(head_mac)
                        .bind(incident.as_str())
                        .execute(&mut **tx)
                        .await
                        .map_err(db)?;
                    Ok(out)
                }

                async fn try_create_incident(&self, new: &NewIncident, drafts: &[Draft]) -> std::result::Result<Incident, sqlx::Error> {
                    let mut tx = self.writer.begin_with($begin).await?;
                    let inc = Self::insert_incident(&mut tx, self.key.as_deref(), new, drafts).await?;
                    tx.commit().await?;
                    Ok(inc)
                }

                /// Allocates the day's next id and inserts the incident with its first entries.
                async fn insert_incident(tx: &mut Tx, key: Option<&TimelineKey>, new: &NewIncident, drafts: &[Draft]) -> std::result::Result<Incident, sqlx::Error> {
                    let day = new.declared_at.date_naive();
                    let row = sqlx::query("SELECT COALESCE(MAX(day_seq), 0) + 1 AS n FROM incidents WHERE day = $1")
                        .bind(day.to_string())
                        .fetch_one(&mut **tx)
                        .await?;
                    let seq: i64 = row.try_get("n")?;
                    let id = IncidentId::for_day(day, seq);
                    sqlx::query(
                        "INSERT INTO incidents (id, day, day_seq, title, severity, status, channel, drill, declared_by, declared_at, roles, version, timeline_len, timeline_head) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '{}', 1, 0, $11)",
                    )
                    .bind(id.as_str())
                    .bind(day.to_string())
                    .bind(seq)
                    .bind(&new.title)
                    .bind(new.severity.as_str())
                    .bind(IncidentStatus::Declared.as_str())
                    .bind(&new.channel)
                    .bind(new.drill)
                    .bind(&new.declared_by)
                    .bind(timeline::normalise_time(new.declared_at))
                    .bind(GENESIS_HASH)
                    .execute(&mut **tx)
                    .await?;
                    Self::append_in(tx, key, &id, drafts.to_vec()).await.map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
                    Ok(Incident {
                        id,
                        title: new.title.clone(),
                        severity: new.severity,
                        status: IncidentStatus::Declared,
                        channel: new.channel.clone(),
                        drill: new.drill,
                        declared_by: new.declared_by.clone(),
                        declared_at: timeline::normalise_time(new.declared_at),
                        acknowledged_at: None,
                        acknowledged_by: None,
                        mitigated_at: None,
                        resolved_at: None,
                        closed_at: None,
                        summary: None,
                        roles: Default::default(),
                        version: 1,
                    })
                }

                async fn incidents_where(&self, clause: &'static str, bind: Option<&str>) -> Result<Vec<Incident>> {
                    let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents {clause} ORDER BY declared_at DESC, day_seq DESC");
                    let mut q = sqlx::query(AssertSqlSafe(sql));
                    if let Some(b) = bind {
                        q = q.bind(b.to_string());
                    }
                    q.fetch_all(&self.pool).await.map_err(db)?.iter().map(incident_from).collect()
                }
            }

            /// How often a per-day id allocation is retried when another replica took the same number.
            const ID_RETRIES: usize = 8;

            #[async_trait::async_trait]
            impl Store for $store {
                async fn create_incident(&self, new: NewIncident, drafts: Vec<Draft>) -> Result<Incident> {
                    let mut last = None;
                    for _ in 0..ID_RETRIES {
                        match self.try_create_incident(&new, &drafts).await {
                            Ok(i) => return Ok(i),
                            Err(e) if is_unique_violation(&e) => last = Some(e),
                            Err(e) => return Err(db(e)),
                        }
                    }
                    Err(db(last.expect("loop ran")))
                }

                async fn incident(&self, id: &IncidentId) -> Result<Option<Incident>> {
                    let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1");
                    sqlx::query(AssertSqlSafe(sql))
                        .bind(id.as_str())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db)?
                        .as_ref()
                        .map(incident_from)
                        .transpose()
                }

                async fn incidents_in_channel(&self, channel: &str) -> Result<Vec<Incident>> {
                    self.incidents_where("WHERE channel = $1", Some(channel)).await
                }

                async fn all_incidents(&self) -> Result<Vec<Incident>> {
                    self.incidents_where("", None).await
                }

                async fn open_incidents(&self) -> Result<Vec<Incident>> {
                    self.incidents_where("WHERE status <> 'closed'", None).await
                }

                async fn all_incident_ids(&self) -> Result<Vec<IncidentId>> {
                    let rows = sqlx::query("SELECT id FROM incidents ORDER BY day, day_seq").fetch_all(&self.pool).await.map_err(db)?;
                    rows.iter().map(|r| r.try_get::<String, _>("id").map(IncidentId::new).map_err(db)).collect()
                }

                async fn update_incident(&self, inc: &Incident, drafts: Vec<Draft>) -> Result<Incident> {
                    let mut tx = self.begin().await?;
                    let res = sqlx::query(
                        "UPDATE incidents SET severity = $1, status = $2, acknowledged_at = $3, acknowledged_by = $4, mitigated_at = $5, resolved_at = $6, closed_at = $7, summary = $8, roles = $9, channel = $12, version = version + 1 WHERE id = $10 AND version = $11",
                    )
                    .bind(inc.severity.as_str())
                    .bind(inc.status.as_str())
                    .bind(inc.acknowledged_at.map(timeline::normalise_time))
                    .bind(&inc.acknowledged_by)
                    .bind(inc.mitigated_at.map(timeline::normalise_time))
                    .bind(inc.resolved_at.map(timeline::normalise_time))
                    .bind(inc.closed_at.map(timeline::normalise_time))
                    .bind(&inc.summary)
                    .bind(roles_to_json(&inc.roles))
                    .bind(inc.id.as_str())
                    .bind(inc.version)
                    .bind(&inc.channel)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                    if res.rows_affected() != 1 {
                        return Err(Error::Conflict(inc.id.to_string()));
                    }
                    Self::append_in(&mut tx, self.key.as_deref(), &inc.id, drafts).await?;
                    tx.commit().await.map_err(db)?;
                    Ok(Incident { version: inc.version + 1, ..inc.clone() })
                }

                async fn append(&self, incident: &IncidentId, drafts: Vec<Draft>) -> Result<Vec<Entry>> {
                    let mut tx = self.begin().await?;
                    let out = Self::append_in(&mut tx, self.key.as_deref(), incident, drafts).await?;
                    tx.commit().await.map_err(db)?;
                    Ok(out)
                }

                async fn timeline(&self, incident: &IncidentId) -> Result<Vec<Entry>> {
                    let rows = sqlx::query(
                        "SELECT incident_id, seq, at, actor, actor_id, source, kind, text, prev_hash, hash, data, mac FROM timeline WHERE incident_id = $1 ORDER BY seq",
                    )
                    .bind(incident.as_str())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db)?;
                    rows.iter().map(entry_from).collect()
                }

                async fn timeline_range(
                    &self,
                    incident: &IncidentId,
                    after_seq: i64,
                    through_seq: i64,
                    limit: i64,
                ) -> Result<Vec<Entry>> {
                    <$db as crate::store::pages::TimelineRange>::range(&self.pool, incident, after_seq, through_seq, limit).await
                }

                async fn has_entry(&self, incident: &IncidentId, kind: &str) -> Result<bool> {
                    let row = sqlx::query("SELECT 1 AS found FROM timeline WHERE incident_id = $1 AND kind = $2 LIMIT 1")
                        .bind(incident.as_str())
                        .bind(kind)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db)?;
                    Ok(row.is_some())
                }

                async fn timeline_head(&self, incident: &IncidentId) -> Result<Option<Head>> {
                    let row = sqlx::query("SELECT timeline_len, timeline_head, timeline_head_mac FROM incidents WHERE id = $1")
                        .bind(incident.as_str())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db)?;
                    row.map(|r| Ok(Head {
                        len: r.try_get("timeline_len").map_err(db)?,
                        hash: r.try_get("timeline_head").map_err(db)?,
                        mac: r.try_get("timeline_head_mac").map_err(db)?,
                    }))
                    .transpose()
                }

                async fn create_request(&self, r: ApprovalRequest, drafts: Vec<Draft>) -> Result<ApprovalRequest> {
                    let mut last = None;
                    for _ in 0..ID_RETRIES {
                        let mut tx = self.begin().await?;
                        let day = r.created_at.date_naive();
                        let seq = Self::next_day_seq(&mut tx, "approval_requests", day).await?;
                        let id = RequestId::for_day(day, seq);
                        let params = serde_json::to_string(&r.params).map_err(|e| Error::Store(e.to_string()))?;
                        let policy = serde_json::to_string(&r.policy).map_err(|e| Error::Store(e.to_string()))?;
                        let res = sqlx::query(
                            "INSERT INTO approval_requests (id, day, day_seq, incident_id, channel, requester_id, requester_name, command, playbook, params, severity, plan_text, plan_digest, policy, state, created_at, expires_at, retry_run, retry_step, mode) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
                        )
                        .bind(id.as_str())
                        .bind(day.to_string())
                        .bind(seq)
                        .bind(r.incident.as_str())
                        .bind(&r.channel)
                        .bind(&r.requester_id)
                        .bind(&r.requester_name)
                        .bind(&r.command)
                        .bind(&r.playbook)
                        .bind(params)
                        .bind(r.severity.as_str())
                        .bind(&r.plan_text)
                        .bind(&r.plan_digest)
                        .bind(policy)
                        .bind(r.state.as_str())
                        .bind(timeline::normalise_time(r.created_at))
                        .bind(timeline::normalise_time(r.expires_at))
                        .bind(r.retry_of.as_ref().map(|(run, _)| run.as_str().to_string()))
                        .bind(r.retry_of.as_ref().map(|(_, step)| *step))
                        .bind(&r.mode)
                        .execute(&mut *tx)
                        .await;
                        match res {
                            Err(e) if is_unique_violation(&e) => {
                                last = Some(e);
                                continue;
                            }
                            Err(e) => return Err(db(e)),
                            Ok(_) => {}
                        }
                        let drafts = drafts
                            .iter()
                            .cloned()
                            .map(|mut d| {
                                d.text = d.text.replacen(ID_PLACEHOLDER, id.as_str(), 1);
                                d.facts = d.facts.into_iter().map(|f| f.with_id(id.as_str())).collect();
                                d
                            })
                            .collect();
                        Self::append_in(&mut tx, self.key.as_deref(), &r.incident, drafts).await?;
                        tx.commit().await.map_err(db)?;
                        return Ok(ApprovalRequest {
                            id,
                            created_at: timeline::normalise_time(r.created_at),
                            expires_at: timeline::normalise_time(r.expires_at),
                            ..r
                        });
                    }
                    Err(db(last.expect("loop ran")))
                }

                async fn request(&self, id: &RequestId) -> Result<Option<ApprovalRequest>> {
                    let sql = format!("SELECT {REQUEST_COLUMNS} FROM approval_requests WHERE id = $1");
                    sqlx::query(AssertSqlSafe(sql))
                        .bind(id.as_str())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db)?
                        .as_ref()
                        .map(request_from)
                        .transpose()
                }

                async fn requests_for_incident(&self, incident: &IncidentId) -> Result<Vec<ApprovalRequest>> {
                    let sql = format!("SELECT {REQUEST_COLUMNS} FROM approval_requests WHERE incident_id = $1 ORDER BY created_at, day_seq");
                    let rows = sqlx::query(AssertSqlSafe(sql)).bind(incident.as_str()).fetch_all(&self.pool).await.map_err(db)?;
                    rows.iter().map(request_from).collect()
                }

                async fn add_approval(&self, a: &Approval, drafts: Vec<Draft>) -> Result<Recorded> {
                    let mut tx = self.begin().await?;
                    // A compare-and-set on the request's state: an approval arriving after the
                    // request was decided (on any replica) is not recorded.
                    let sql = format!("SELECT incident_id, state FROM approval_requests WHERE id = $1{}", $for_update);
                    let row = sqlx::query(AssertSqlSafe(sql))
                        .bind(a.request.as_str())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db)?
                        .ok_or_else(|| Error::NotFound(a.request.to_string()))?;
                    let state: String = row.try_get("state").map_err(db)?;
                    if state != RequestState::Pending.as_str() {
                        return Ok(Recorded::NotPending);
                    }
                    let incident: String = row.try_get("incident_id").map_err(db)?;
                    let res = sqlx::query(
                        "INSERT INTO approvals (request_id, approver_id, approver_name, digest, at, approver_platform, approver_roles) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (request_id, approver_id) DO NOTHING",
                    )
                    .bind(a.request.as_str())
                    .bind(&a.approver_id)
                    .bind(&a.approver_name)
                    .bind(&a.digest)
                    .bind(timeline::normalise_time(a.at))
                    .bind(a.approver_platform.map(|p| p.as_str()))
                    .bind((!a.approver_roles.is_empty()).then(|| serde_json::to_string(&a.approver_roles).unwrap_or_default()))
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                    if res.rows_affected() == 0 {
                        return Ok(Recorded::Duplicate);
                    }
                    Self::append_in(&mut tx, self.key.as_deref(), &IncidentId::new(incident), drafts).await?;
                    tx.commit().await.map_err(db)?;
                    Ok(Recorded::Recorded)
                }

                async fn record_notice_once(&self, incident: &IncidentId, key: &str, at: DateTime<Utc>, drafts: Vec<Draft>) -> Result<bool> {
                    let mut tx = self.begin().await?;
                    let res = sqlx::query("INSERT INTO notices (incident_id, kind, sent_at) VALUES ($1, $2, $3) ON CONFLICT (incident_id, kind) DO NOTHING")
                        .bind(incident.as_str())
                        .bind(key)
                        .bind(timeline::normalise_time(at))
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    if res.rows_affected() == 0 {
                        return Ok(false);
                    }
                    Self::append_in(&mut tx, self.key.as_deref(), incident, drafts).await?;
                    tx.commit().await.map_err(db)?;
                    Ok(true)
                }

                async fn alert_links(&self) -> Result<Vec<erlmcp_handlers::store::AlertLink>> {
                    let rows = sqlx::query("SELECT l.key, l.incident_id, l.status, l.starts_at FROM alert_links l JOIN incidents i ON i.id = l.incident_id WHERE i.status NOT IN ('resolved', 'closed') ORDER BY l.updated_at")
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db)?;
                    rows.iter()
                        .map(|r| {
                            Ok(erlmcp_handlers::store::AlertLink {
                                key: r.try_get("key").map_err(db)?,
                                incident: IncidentId::new(r.try_get::<String, _>("incident_id").map_err(db)?),
                                status: r.try_get("status").map_err(db)?,
                                starts_at: r.try_get("starts_at").map_err(db)?,
                            })
                        })
                        .collect()
                }

                async fn record_alert(&self, incident: &IncidentId, links: Vec<erlmcp_handlers::store::AlertLink>, drafts: Vec<Draft>) -> Result<bool> {
                    let mut tx = self.begin().await?;
                    sqlx::query($alert_lock).execute(&mut *tx).await.map_err(db)?;
                    let alert_links: Vec<&erlmcp_handlers::store::AlertLink> = links.iter().filter(|l| l.key.starts_with("fp:")).collect();
                    if !alert_links.is_empty() {
                        let mut unchanged = true;
                        for link in &alert_links {
                            let row = sqlx::query("SELECT incident_id, status, starts_at FROM alert_links WHERE key = $1")
                                .bind(&link.key)
                                .fetch_optional(&mut *tx)
                                .await
                                .map_err(db)?;
                            let same = match row {
                                Some(r) => {
                                    r.try_get::<String, _>("incident_id").map_err(db)? == incident.as_str()
                                        && r.try_get::<String, _>("status").map_err(db)? == link.status
                                        && r.try_get::<Option<DateTime<Utc>>, _>("starts_at").map_err(db)? == link.starts_at
                                }
                                None => false,
                            };
                            unchanged &= same;
                        }
                        if unchanged {
                            return Ok(false);
                        }
                    }
                    Self::upsert_alert_links(&mut tx, incident, &links).await?;
                    if !drafts.is_empty() {
                        Self::append_in(&mut tx, self.key.as_deref(), incident, drafts).await?;
                    }
                    tx.commit().await.map_err(db)?;
                    Ok(true)
                }

                async fn open_for_alert(&self, new: NewIncident, drafts: Vec<Draft>, links: Vec<erlmcp_handlers::store::AlertLink>) -> Result<erlmcp_handlers::store::AlertOpened> {
                    use erlmcp_handlers::store::AlertOpened;
                    let mut last = None;
                    for _ in 0..ID_RETRIES {
                        let mut tx = self.begin().await?;
                        // Alert intake takes turns across replicas (SQLite: the write lock taken at BEGIN).
                        sqlx::query($alert_lock).execute(&mut *tx).await.map_err(db)?;
                        for link in &links {
                            let found = sqlx::query("SELECT l.incident_id FROM alert_links l JOIN incidents i ON i.id = l.incident_id WHERE l.key = $1 AND i.status NOT IN ('resolved', 'closed')")
                                .bind(&link.key)
                                .fetch_optional(&mut *tx)
                                .await
                                .map_err(db)?;
                            if let Some(row) = found {
                                let id: String = row.try_get("incident_id").map_err(db)?;
                                return Ok(AlertOpened::Existing(IncidentId::new(id)));
                            }
                        }
                        match Self::insert_incident(&mut tx, self.key.as_deref(), &new, &drafts).await {
                            Ok(inc) => {
                                Self::upsert_alert_links(&mut tx, &inc.id, &links).await?;
                                tx.commit().await.map_err(db)?;
                                return Ok(AlertOpened::Opened(Box::new(inc)));
                            }
                            Err(e) if is_unique_violation(&e) => last = Some(e),
                            Err(e) => return Err(db(e)),
                        }
                    }
                    Err(db(last.expect("loop ran")))
                }

                async fn approvals(&self, id: &RequestId) -> Result<Vec<Approval>> {
                    let rows = sqlx::query("SELECT request_id, approver_id, approver_name, approver_platform, approver_roles, digest, at FROM approvals WHERE request_id = $1 ORDER BY at, approver_id")
                        .bind(id.as_str())
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db)?;
                    rows.iter()
                        .map(|r| {
                            Ok(Approval {
                                request: RequestId::new(r.try_get::<String, _>("request_id").map_err(db)?),
                                approver_id: r.try_get("approver_id").map_err(db)?,
                                approver_name: r.try_get("approver_name").map_err(db)?,
                                approver_platform: r
                                    .try_get::<Option<String>, _>("approver_platform")
                                    .map_err(db)?
                                    .and_then(|p| Platform::parse(&p)),
                                approver_roles: match r.try_get::<Option<String>, _>("approver_roles").map_err(db)? {
                                    Some(j) => serde_json::from_str(&j).map_err(|_| crate::store::rows::bad("approver_roles", &j))?,
                                    None => Vec::new(),
                                },
                                digest: r.try_get("digest").map_err(db)?,
                                at: r.try_get("at").map_err(db)?,
                            })
                        })
                        .collect()
                }

                async fn requests_in_state(&self, state: RequestState) -> Result<Vec<ApprovalRequest>> {
                    let sql = format!("SELECT {REQUEST_COLUMNS} FROM approval_requests WHERE state = $1 ORDER BY created_at, day_seq");
                    let rows = sqlx::query(AssertSqlSafe(sql)).bind(state.as_str()).fetch_all(&self.pool).await.map_err(db)?;
                    rows.iter().map(request_from).collect()
                }

                async fn transition_request(&self, id: &RequestId, change: StateChange<'_>, drafts: Vec<Draft>) -> Result<bool> {
                    let StateChange { from, to, at, by, reason } = change;
                    // The states are the enum's own words, never user text: safe to inline.
                    let states: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
                    let sql = format!(
                        "UPDATE approval_requests SET state = $1, decided_at = COALESCE(decided_at, $2), decided_by = COALESCE($3, decided_by), reason = COALESCE($4, reason) WHERE id = $5 AND state IN ({})",
                        states.join(", ")
                    );
                    let mut tx = self.begin().await?;
                    let res = sqlx::query(AssertSqlSafe(sql))
                        .bind(to.as_str())
                        .bind(timeline::normalise_time(at))
                        .bind(by)
                        .bind(reason)
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    if res.rows_affected() != 1 {
                        return Ok(false);
                    }
                    let incident: String = sqlx::query("SELECT incident_id FROM approval_requests WHERE id = $1")
                        .bind(id.as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db)?
                        .try_get("incident_id")
                        .map_err(db)?;
                    Self::append_in(&mut tx, self.key.as_deref(), &IncidentId::new(incident), drafts).await?;
                    tx.commit().await.map_err(db)?;
                    Ok(true)
                }
            }
        };
    };
}
