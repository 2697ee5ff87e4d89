//! The `RunStore` implementation, written once and expanded for SQLite and PostgreSQL: starting
//! a run exactly once, owning it under a lease, fencing each step on that lease, taking over runs
//! whose owner died, and people's decisions on stopped runs. Every change is a compare-and-set on
//! the prior state inside one transaction. PostgreSQL claims with `FOR UPDATE SKIP LOCKED`, so
//! replicas scanning at once claim different runs; SQLite's `BEGIN IMMEDIATE` serialises writers.

macro_rules! run_store {
    ($store:ident, $db:ty, $for_update:literal, $skip_locked:literal) => {
        const _: () = {
            use crate::store::rows::{bad, db, is_unique_violation};
            use chrono::{DateTime, Utc};
            use erlmcp_handlers::approval::RequestState;
            use erlmcp_handlers::error::{Error, Result};
            use erlmcp_handlers::ids::{IncidentId, RequestId, RunId};
            use erlmcp_handlers::run::{Lease, Run, RunState, StepRecord, StepState, TakenOver};
            use erlmcp_handlers::store::{ID_PLACEHOLDER, RunEnd, RunStore, StepStart};
            use erlmcp_handlers::timeline::{self, Draft};
            use sqlx::{AssertSqlSafe, Row};

            type Tx = sqlx::Transaction<'static, $db>;
            type DbRow = <$db as sqlx::Database>::Row;

            const RUN_COLUMNS: &str = "id, request_id, incident_id, playbook, channel, state, started_at, finished_at, owner, lease_until, mode, decided_by, decided_at, stop_requested_by";
            const STEP_COLUMNS: &str = "run_id, idx, name, action, description, changes_state, idempotent, timeout_seconds, retries, state, attempts, started_at, finished_at, result";
            /// How often a per-day id allocation is retried when another replica took the same number.
            const ID_RETRIES: usize = 8;

            fn run_from(row: &DbRow) -> Result<Run> {
                let state: String = row.try_get("state").map_err(db)?;
                Ok(Run {
                    id: RunId::new(row.try_get::<String, _>("id").map_err(db)?),
                    request: RequestId::new(row.try_get::<String, _>("request_id").map_err(db)?),
                    incident: IncidentId::new(row.try_get::<String, _>("incident_id").map_err(db)?),
                    playbook: row.try_get("playbook").map_err(db)?,
                    channel: row.try_get("channel").map_err(db)?,
                    state: RunState::parse(&state).ok_or_else(|| bad("state", &state))?,
                    started_at: row.try_get("started_at").map_err(db)?,
                    finished_at: row.try_get("finished_at").map_err(db)?,
                    owner: row.try_get("owner").map_err(db)?,
                    lease_until: row.try_get("lease_until").map_err(db)?,
                    mode: row.try_get("mode").map_err(db)?,
                    decided_by: row.try_get("decided_by").map_err(db)?,
                    decided_at: row.try_get("decided_at").map_err(db)?,
                    stop_requested_by: row.try_get("stop_requested_by").map_err(db)?,
                })
            }

            fn step_from(row: &DbRow) -> Result<StepRecord> {
                let action: String = row.try_get("action").map_err(db)?;
                let state: String = row.try_get("state").map_err(db)?;
                Ok(StepRecord {
                    run: RunId::new(row.try_get::<String, _>("run_id").map_err(db)?),
                    idx: row.try_get("idx").map_err(db)?,
                    name: row.try_get("name").map_err(db)?,
                    action: serde_json::from_str(&action).map_err(|_| bad("action", &action))?,
                    description: row.try_get("description").map_err(db)?,
                    changes_state: row.try_get("changes_state").map_err(db)?,
                    idempotent: row.try_get("idempotent").map_err(db)?,
                    timeout_seconds: row.try_get("timeout_seconds").map_err(db)?,
                    retries: row.try_get("retries").map_err(db)?,
                    state: StepState::parse(&state).ok_or_else(|| bad("state", &state))?,
                    attempts: row.try_get("attempts").map_err(db)?,
                    started_at: row.try_get("started_at").map_err(db)?,
                    finished_at: row.try_get("finished_at").map_err(db)?,
                    result: row.try_get("result").map_err(db)?,
                })
            }

            impl $store {
                async fn save_step_in(tx: &mut Tx, s: &StepRecord) -> Result<()> {
                    sqlx::query("UPDATE run_steps SET state = $1, attempts = $2, started_at = $3, finished_at = $4, result = $5 WHERE run_id = $6 AND idx = $7")
                        .bind(s.state.as_str())
                        .bind(s.attempts)
                        .bind(s.started_at.map(timeline::normalise_time))
                        .bind(s.finished_at.map(timeline::normalise_time))
                        .bind(&s.result)
                        .bind(s.run.as_str())
                        .bind(s.idx)
                        .execute(&mut **tx)
                        .await
                        .map_err(db)?;
                    Ok(())
                }

                /// The run's row, locked for this transaction on PostgreSQL.
                async fn locked_run(tx: &mut Tx, run: &RunId) -> Result<Option<Run>> {
                    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1{}", $for_update);
                    sqlx::query(AssertSqlSafe(sql))
                        .bind(run.as_str())
                        .fetch_optional(&mut **tx)
                        .await
                        .map_err(db)?
                        .as_ref()
                        .map(run_from)
                        .transpose()
                }

                async fn run_where(&self, clause: &'static str, bind: &str) -> Result<Option<Run>> {
                    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE {clause}");
                    sqlx::query(AssertSqlSafe(sql))
                        .bind(bind.to_string())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db)?
                        .as_ref()
                        .map(run_from)
                        .transpose()
                }
            }

            #[async_trait::async_trait]
            impl RunStore for $store {
                async fn begin_execution(
                    &self,
                    id: &RequestId,
                    at: DateTime<Utc>,
                    by: &str,
                    run: Run,
                    steps: Vec<StepRecord>,
                    drafts: Vec<Draft>,
                ) -> Result<Option<Run>> {
                    for _ in 0..ID_RETRIES {
                        let mut tx = self.begin().await?;
                        // The compare-and-set: of all approvals racing on any replica, one moves the
                        // request; never for an incident resolved or closed meanwhile.
                        let res = sqlx::query(
                            "UPDATE approval_requests SET state = 'executing', decided_at = $1, decided_by = $2 WHERE id = $3 AND state = 'pending' AND EXISTS (SELECT 1 FROM incidents WHERE incidents.id = approval_requests.incident_id AND incidents.status NOT IN ('resolved', 'closed'))",
                        )
                        .bind(timeline::normalise_time(at))
                        .bind(by)
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                        if res.rows_affected() != 1 {
                            return Ok(None);
                        }
                        let day = at.date_naive();
                        let seq = Self::next_day_seq(&mut tx, "runs", day).await?;
                        let run_id = RunId::for_day(day, seq);
                        let inserted = sqlx::query(
                            "INSERT INTO runs (id, day, day_seq, request_id, incident_id, playbook, channel, state, started_at, owner, lease_until, mode) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                        )
                        .bind(run_id.as_str())
                        .bind(day.to_string())
                        .bind(seq)
                        .bind(id.as_str())
                        .bind(run.incident.as_str())
                        .bind(&run.playbook)
                        .bind(&run.channel)
                        .bind(RunState::Running.as_str())
                        .bind(timeline::normalise_time(run.started_at))
                        .bind(&run.owner)
                        .bind(run.lease_until.map(timeline::normalise_time))
                        .bind(&run.mode)
                        .execute(&mut *tx)
                        .await;
                        match inserted {
                            Err(e) if is_unique_violation(&e) => continue,
                            Err(e) => return Err(db(e)),
                            Ok(_) => {}
                        }
                        for s in &steps {
                            let action = serde_json::to_string(&s.action).map_err(|e| Error::Store(e.to_string()))?;
                            sqlx::query(
                                "INSERT INTO run_steps (run_id, idx, name, action, description, changes_state, idempotent, timeout_seconds, retries, state, attempts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0)",
                            )
                            .bind(run_id.as_str())
                            .bind(s.idx)
                            .bind(&s.name)
                            .bind(action)
                            .bind(&s.description)
                            .bind(s.changes_state)
                            .bind(s.idempotent)
                            .bind(s.timeout_seconds)
                            .bind(s.retries)
                            .bind(StepState::Pending.as_str())
                            .execute(&mut *tx)
                            .await
                            .map_err(db)?;
                        }
                        let drafts = drafts.iter().cloned().map(|mut d| {
                            d.text = d.text.replacen(ID_PLACEHOLDER, run_id.as_str(), 1);
                            d.facts = d.facts.into_iter().map(|f| f.with_id(run_id.as_str())).collect();
                            d
                        }).collect();
                        Self::append_in(&mut tx, self.key.as_deref(), &run.incident, drafts).await?;
                        tx.commit().await.map_err(db)?;
                        return Ok(Some(Run {
                            id: run_id,
                            started_at: timeline::normalise_time(run.started_at),
                            lease_until: run.lease_until.map(timeline::normalise_time),
                            ..run
                        }));
                    }
                    Err(Error::Store("could not allocate a run id".into()))
                }

                async fn run(&self, id: &RunId) -> Result<Option<Run>> {
                    self.run_where("id = $1", id.as_str()).await
                }

                async fn run_for_request(&self, request: &RequestId) -> Result<Option<Run>> {
                    self.run_where("request_id = $1", request.as_str()).await
                }

                async fn runs_in_state(&self, state: RunState) -> Result<Vec<Run>> {
                    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE state = $1 ORDER BY started_at, day_seq");
                    let rows = sqlx::query(AssertSqlSafe(sql)).bind(state.as_str()).fetch_all(&self.pool).await.map_err(db)?;
                    rows.iter().map(run_from).collect()
                }

                async fn steps(&self, run: &RunId) -> Result<Vec<StepRecord>> {
                    let sql = format!("SELECT {STEP_COLUMNS} FROM run_steps WHERE run_id = $1 ORDER BY idx");
                    let rows = sqlx::query(AssertSqlSafe(sql)).bind(run.as_str()).fetch_all(&self.pool).await.map_err(db)?;
                    rows.iter().map(step_from).collect()
                }

                async fn claim_expired_run(&self, mode: &str, now: DateTime<Utc>, lease: &Lease) -> Result<Option<TakenOver>> {
                    let mut tx = self.begin().await?;
                    let sql = format!(
                        // Never its own runs: a process that still runs one (its lease lapsed while
                        // the database or Slack was slow) must not start it a second time.
                        "SELECT {RUN_COLUMNS} FROM runs WHERE state = 'running' AND (mode = $1 OR mode IS NULL) AND (lease_until IS NULL OR lease_until < $2) AND (owner IS NULL OR owner <> $3) ORDER BY started_at, day_seq LIMIT 1{}",
                        $skip_locked
                    );
                    let Some(row) = sqlx::query(AssertSqlSafe(sql))
                        .bind(mode)
                        .bind(timeline::normalise_time(now))
                        .bind(&lease.owner)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db)?
                    else {
                        return Ok(None);
                    };
                    let before = run_from(&row)?;
                    let res = sqlx::query("UPDATE runs SET owner = $1, lease_until = $2 WHERE id = $3 AND state = 'running'")
                        .bind(&lease.owner)
                        .bind(timeline::normalise_time(lease.until))
                        .bind(before.id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    if res.rows_affected() != 1 {
                        return Ok(None);
                    }
                    tx.commit().await.map_err(db)?;
                    Ok(Some(TakenOver {
                        run: Run {
                            owner: Some(lease.owner.clone()),
                            lease_until: Some(timeline::normalise_time(lease.until)),
                            ..before.clone()
                        },
                        previous_owner: before.owner,
                        previous_lease: before.lease_until,
                    }))
                }

                async fn renew_lease(&self, run: &RunId, lease: &Lease) -> Result<bool> {
                    let res = sqlx::query("UPDATE runs SET lease_until = $1 WHERE id = $2 AND owner = $3 AND state = 'running'")
                        .bind(timeline::normalise_time(lease.until))
                        .bind(run.as_str())
                        .bind(&lease.owner)
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    Ok(res.rows_affected() == 1)
                }

                async fn start_step(&self, step: &StepRecord, owner: &str, drafts: Vec<Draft>) -> Result<StepStart> {
                    let mut tx = self.begin().await?;
                    let run = Self::locked_run(&mut tx, &step.run).await?;
                    let Some(run) = run.filter(|r| r.state == RunState::Running && r.owner.as_deref() == Some(owner)) else {
                        return Ok(StepStart::Lost);
                    };
                    if let Some(by) = run.stop_requested_by {
                        return Ok(StepStart::StopRequested { by });
                    }
                    Self::save_step_in(&mut tx, step).await?;
                    Self::append_in(&mut tx, self.key.as_deref(), &run.incident, drafts).await?;
                    tx.commit().await.map_err(db)?;
                    Ok(StepStart::Started)
                }

                async fn request_stop(&self, run: &RunId, by: &str, drafts: Vec<Draft>) -> Result<bool> {
                    let mut tx = self.begin().await?;
                    let res = sqlx::query("UPDATE runs SET stop_requested_by = $1 WHERE id = $2 AND state = 'running' AND stop_requested_by IS NULL")
                        .bind(by)
                        .bind(run.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    if res.rows_affected() != 1 {
                        return Ok(false);
                    }
                    let incident = Self::locked_run(&mut tx, run).await?.map(|r| r.incident);
                    if let Some(incident) = incident {
                        Self::append_in(&mut tx, self.key.as_deref(), &incident, drafts).await?;
                    }
                    tx.commit().await.map_err(db)?;
                    Ok(true)
                }

                async fn save_step(&self, s: &StepRecord, drafts: Vec<Draft>) -> Result<()> {
                    let mut tx = self.begin().await?;
                    Self::save_step_in(&mut tx, s).await?;
                    if !drafts.is_empty() {
                        let incident = Self::locked_run(&mut tx, &s.run).await?.map(|r| r.incident);
                        if let Some(incident) = incident {
                            Self::append_in(&mut tx, self.key.as_deref(), &incident, drafts).await?;
                        }
                    }
                    tx.commit().await.map_err(db)
                }

                async fn release_run(&self, run: &RunId, owner: &str, drafts: Vec<Draft>) -> Result<bool> {
                    let mut tx = self.begin().await?;
                    let res = sqlx::query("UPDATE runs SET owner = NULL, lease_until = NULL WHERE id = $1 AND state = 'running' AND owner = $2")
                        .bind(run.as_str())
                        .bind(owner)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    if res.rows_affected() != 1 {
                        return Ok(false);
                    }
                    let incident = Self::locked_run(&mut tx, run).await?.map(|r| r.incident);
                    if let Some(incident) = incident {
                        Self::append_in(&mut tx, self.key.as_deref(), &incident, drafts).await?;
                    }
                    tx.commit().await.map_err(db)?;
                    Ok(true)
                }

                async fn block_run(&self, run: &RunId, owner: &str, drafts: Vec<Draft>) -> Result<bool> {
                    let mut tx = self.begin().await?;
                    let res = sqlx::query("UPDATE runs SET state = 'blocked', owner = NULL, lease_until = NULL WHERE id = $1 AND state = 'running' AND owner = $2")
                        .bind(run.as_str())
                        .bind(owner)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    if res.rows_affected() != 1 {
                        return Ok(false);
                    }
                    let incident = Self::locked_run(&mut tx, run).await?.map(|r| r.incident);
                    if let Some(incident) = incident {
                        Self::append_in(&mut tx, self.key.as_deref(), &incident, drafts).await?;
                    }
                    tx.commit().await.map_err(db)?;
                    Ok(true)
                }

                async fn end_run(&self, end: RunEnd<'_>, drafts: Vec<Draft>) -> Result<bool> {
                    let mut tx = self.begin().await?;
                    let Some(run) = Self::locked_run(&mut tx, end.run).await? else {
                        return Ok(false);
                    };
                    let ours = run.state == end.from
                        && (end.from != RunState::Running || run.owner.as_deref() == end.owner);
                    if !ours {
                        return Ok(false);
                    }
                    let at = timeline::normalise_time(end.at);
                    sqlx::query("UPDATE runs SET state = $1, finished_at = $2, owner = NULL, lease_until = NULL, decided_by = COALESCE($3, decided_by), decided_at = CASE WHEN $3 IS NULL THEN decided_at ELSE $2 END WHERE id = $4")
                        .bind(end.to.as_str())
                        .bind(at)
                        .bind(end.by)
                        .bind(end.run.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    if let Some(step) = end.step {
                        Self::save_step_in(&mut tx, step).await?;
                    }
                    sqlx::query("UPDATE approval_requests SET state = $1, decided_at = COALESCE(decided_at, $2), decided_by = COALESCE($3, decided_by), reason = COALESCE($4, reason) WHERE id = $5 AND state = 'executing'")
                        .bind(end.request_to.as_str())
                        .bind(at)
                        .bind(end.by)
                        .bind(end.reason)
                        .bind(end.request.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    Self::append_in(&mut tx, self.key.as_deref(), &run.incident, drafts).await?;
                    tx.commit().await.map_err(db)?;
                    Ok(true)
                }

                async fn resume_run(&self, run: &RunId, step: &StepRecord, decided_by: &str, at: DateTime<Utc>, lease: &Lease, drafts: Vec<Draft>) -> Result<bool> {
                    let mut tx = self.begin().await?;
                    let res = sqlx::query("UPDATE runs SET state = 'running', owner = $1, lease_until = $2, decided_by = $3, decided_at = $4 WHERE id = $5 AND state = 'blocked'")
                        .bind(&lease.owner)
                        .bind(timeline::normalise_time(lease.until))
                        .bind(decided_by)
                        .bind(timeline::normalise_time(at))
                        .bind(run.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    if res.rows_affected() != 1 {
                        return Ok(false);
                    }
                    Self::save_step_in(&mut tx, step).await?;
                    let incident = Self::locked_run(&mut tx, run).await?.map(|r| r.incident);
                    if let Some(incident) = incident {
                        Self::append_in(&mut tx, self.key.as_deref(), &incident, drafts).await?;
                    }
                    tx.commit().await.map_err(db)?;
                    Ok(true)
                }

                async fn begin_retry(&self, request: &RequestId, at: DateTime<Utc>, by: &str, step: &StepRecord, lease: &Lease, drafts: Vec<Draft>) -> Result<bool> {
                    let mut tx = self.begin().await?;
                    let at = timeline::normalise_time(at);
                    let decided = sqlx::query("UPDATE approval_requests SET state = $1, decided_at = $2, decided_by = $3 WHERE id = $4 AND state = 'pending'")
                        .bind(RequestState::Done.as_str())
                        .bind(at)
                        .bind(by)
                        .bind(request.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    if decided.rows_affected() != 1 {
                        return Ok(false);
                    }
                    let resumed = sqlx::query("UPDATE runs SET state = 'running', owner = $1, lease_until = $2, decided_by = $3, decided_at = $4 WHERE id = $5 AND state = 'blocked'")
                        .bind(&lease.owner)
                        .bind(timeline::normalise_time(lease.until))
                        .bind(by)
                        .bind(at)
                        .bind(step.run.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    if resumed.rows_affected() != 1 {
                        // Dropping the transaction undoes the request's change too.
                        return Ok(false);
                    }
                    Self::save_step_in(&mut tx, step).await?;
                    let incident = Self::locked_run(&mut tx, &step.run).await?.map(|r| r.incident);
                    if let Some(incident) = incident {
                        Self::append_in(&mut tx, self.key.as_deref(), &incident, drafts).await?;
                    }
                    tx.commit().await.map_err(db)?;
                    Ok(true)
                }
            }
        };
    };
}
