//! The `ReceiptStore` implementation, for SQLite and PostgreSQL: many receipts stored in one
//! transaction (group commit: one sync to disk for a burst of commands), claims as
//! compare-and-sets, and notes appended with their receipts marked in the same transaction.

macro_rules! receipt_store {
    ($store:ident, $db:ty) => {
        const _: () = {
            use crate::store::rows::db;
            use chrono::{DateTime, Utc};
            use erlmcp_handlers::error::Result;
            use erlmcp_handlers::ids::IncidentId;
            use erlmcp_handlers::store::{NewReceipt, Receipt, ReceiptFate, ReceiptStore};
            use erlmcp_handlers::timeline::{self, Draft};
            use sqlx::Row;

            type DbRow = <$db as sqlx::Database>::Row;

            fn receipt_from(row: &DbRow) -> Result<Receipt> {
                Ok(Receipt {
                    id: row.try_get("id").map_err(db)?,
                    platform: row.try_get("platform").map_err(db)?,
                    received_at: row.try_get("received_at").map_err(db)?,
                    payload: row.try_get("payload").map_err(db)?,
                })
            }


            impl $store {
                /// Stores receipts, appending their ready notes, in one transaction; if a note
                /// cannot be appended after all (its incident closed meanwhile, or gone), the batch
                /// is stored again as plain receipts, and the processor gives each author the
                /// specific answer.
                pub(crate) async fn record_receipts_plainly(&self, new: &[NewReceipt]) -> Result<Vec<ReceiptFate>> {
                    match self.try_record_receipts(new, true).await {
                        Err(erlmcp_handlers::Error::Conflict(_) | erlmcp_handlers::Error::NotFound(_)) => {
                            self.try_record_receipts(new, false).await
                        }
                        other => other,
                    }
                }

                async fn try_record_receipts(&self, new: &[NewReceipt], with_notes: bool) -> Result<Vec<ReceiptFate>> {
                    // No connection within this: the database is away and nothing was sent, so
                    // the person can be told for certain that nothing was recorded.
                    let mut tx = tokio::time::timeout(crate::store::WRITER_PATIENCE, self.begin())
                        .await
                        .map_err(|_| crate::store::no_writer_in_time())??;
                    let mut stored: std::collections::HashMap<String, i64> = std::collections::HashMap::with_capacity(new.len());
                    // Deliveries an earlier version stored under their former key are
                    // duplicates: not inserted, so they come out below as such.
                    let formers: Vec<&str> = new.iter().filter_map(|r| r.former_key.as_deref()).collect();
                    let mut taken_before: std::collections::HashSet<String> = std::collections::HashSet::new();
                    for chunk in formers.chunks(400) {
                        let sql = format!(
                            "SELECT key FROM receipts WHERE key IN ({})",
                            crate::store::rows::placeholders(chunk.len(), 1)
                        );
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                        for k in chunk {
                            q = q.bind(*k);
                        }
                        for row in q.fetch_all(&mut *tx).await.map_err(db)? {
                            taken_before.insert(row.try_get("key").map_err(db)?);
                        }
                    }
                    let new_here: Vec<&NewReceipt> = new
                        .iter()
                        .filter(|r| r.former_key.as_ref().is_none_or(|k| !taken_before.contains(k)))
                        .collect();
                    // Many rows a statement; a key already stored (before, or earlier in this
                    // batch) comes back with no id: a replay or a redelivery. A receipt whose
                    // note is appended below is stored processed.
                    for chunk in new_here.chunks(400) {
                        let sql = format!(
                            "INSERT INTO receipts (key, platform, received_at, payload, state) VALUES {} ON CONFLICT (key) DO NOTHING RETURNING id, key",
                            crate::store::rows::placeholders(chunk.len(), 5)
                        );
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                        for r in chunk {
                            let state = if with_notes && r.note.is_some() { "done" } else { "new" };
                            q = q
                                .bind(r.key.as_str())
                                .bind(r.platform.as_str())
                                .bind(timeline::normalise_time(r.received_at))
                                .bind(r.payload.as_str())
                                .bind(state);
                        }
                        for row in q.fetch_all(&mut *tx).await.map_err(db)? {
                            stored.insert(row.try_get("key").map_err(db)?, row.try_get("id").map_err(db)?);
                        }
                    }
                    // Only the first submission of a key gets its id (and its note applied).
                    let mut out = Vec::with_capacity(new.len());
                    let mut notes: Vec<(&IncidentId, Vec<Draft>)> = Vec::new();
                    for r in new {
                        let Some(id) = stored.remove(r.key.as_str()) else {
                            out.push(ReceiptFate::Duplicate);
                            continue;
                        };
                        match r.note.as_ref().filter(|_| with_notes) {
                            Some(note) => {
                                match notes.iter_mut().find(|(i, _)| *i == &note.incident) {
                                    Some((_, drafts)) => drafts.push(note.draft.clone()),
                                    None => notes.push((&note.incident, vec![note.draft.clone()])),
                                }
                                out.push(ReceiptFate::Applied(id));
                            }
                            None => out.push(ReceiptFate::Stored(id)),
                        }
                    }
                    for (incident, drafts) in notes {
                        Self::append_checked(&mut tx, self.key.as_deref(), incident, drafts, true).await?;
                    }
                    tx.commit().await.map_err(db)?;
                    Ok(out)
                }
            }

            #[async_trait::async_trait]
            impl ReceiptStore for $store {
                async fn record_receipts(&self, new: &[NewReceipt]) -> Result<Vec<ReceiptFate>> {
                    self.record_receipts_here(new).await
                }

                async fn receipts_paused(&self) {
                    self.pause_receipts().await
                }

                async fn claim_receipt(&self, id: i64, owner: &str) -> Result<bool> {
                    let res = sqlx::query("UPDATE receipts SET state = 'processing', owner = $1, claimed_at = $2 WHERE id = $3 AND state = 'new'")
                        .bind(owner)
                        .bind(timeline::normalise_time(Utc::now()))
                        .bind(id)
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    Ok(res.rows_affected() == 1)
                }

                async fn release_receipt_key(&self, key: &str) -> Result<()> {
                    sqlx::query("UPDATE receipts SET key = key || '#' || CAST(id AS TEXT) WHERE key = $1")
                        .bind(key)
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    Ok(())
                }

                async fn renew_receipt(&self, id: i64, owner: &str) -> Result<bool> {
                    let res = sqlx::query("UPDATE receipts SET claimed_at = $1 WHERE id = $2 AND owner = $3 AND state = 'processing'")
                        .bind(timeline::normalise_time(Utc::now()))
                        .bind(id)
                        .bind(owner)
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    Ok(res.rows_affected() == 1)
                }

                async fn finish_receipt(&self, id: i64) -> Result<()> {
                    sqlx::query("UPDATE receipts SET state = 'done' WHERE id = $1")
                        .bind(id)
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    Ok(())
                }

                async fn append_receipted(&self, incident: &IncidentId, notes: Vec<(i64, Draft)>) -> Result<Vec<i64>> {
                    let mut tx = self.begin().await?;
                    // Only receipts still unprocessed: another process may have applied some.
                    let mut taken = std::collections::HashSet::with_capacity(notes.len());
                    for chunk in notes.chunks(1000) {
                        let sql = format!(
                            "UPDATE receipts SET state = 'done' WHERE id IN ({}) AND state IN ('new', 'processing') RETURNING id",
                            crate::store::rows::placeholders(chunk.len(), 1)
                        );
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                        for (receipt, _) in chunk {
                            q = q.bind(*receipt);
                        }
                        for row in q.fetch_all(&mut *tx).await.map_err(db)? {
                            taken.insert(row.try_get::<i64, _>("id").map_err(db)?);
                        }
                    }
                    let mut applied = Vec::with_capacity(taken.len());
                    let mut drafts = Vec::with_capacity(taken.len());
                    for (receipt, draft) in notes {
                        if taken.contains(&receipt) {
                            applied.push(receipt);
                            drafts.push(draft);
                        }
                    }
                    // Checked open in this transaction: another replica may have closed it since
                    // the engine looked.
                    Self::append_checked(&mut tx, self.key.as_deref(), incident, drafts, true).await?;
                    tx.commit().await.map_err(db)?;
                    Ok(applied)
                }

                async fn unprocessed_receipts(&self, before: DateTime<Utc>, limit: i64) -> Result<Vec<Receipt>> {
                    let rows = sqlx::query("SELECT id, platform, received_at, payload FROM receipts WHERE state = 'new' AND received_at < $1 ORDER BY id LIMIT $2")
                        .bind(timeline::normalise_time(before))
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db)?;
                    rows.iter().map(receipt_from).collect()
                }

                async fn interrupted_receipts(&self, before: DateTime<Utc>) -> Result<Vec<Receipt>> {
                    let rows = sqlx::query("SELECT id, platform, received_at, payload FROM receipts WHERE state = 'processing' AND claimed_at < $1 ORDER BY id LIMIT 100")
                        .bind(timeline::normalise_time(before))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db)?;
                    rows.iter().map(receipt_from).collect()
                }

                async fn abandon_receipt(&self, id: i64, claimed_before: DateTime<Utc>) -> Result<bool> {
                    let res = sqlx::query("UPDATE receipts SET state = 'interrupted' WHERE id = $1 AND state = 'processing' AND claimed_at < $2")
                        .bind(id)
                        .bind(timeline::normalise_time(claimed_before))
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    Ok(res.rows_affected() == 1)
                }

                async fn prune_receipts(&self, before: DateTime<Utc>) -> Result<u64> {
                    let res = sqlx::query("DELETE FROM receipts WHERE state IN ('done', 'interrupted') AND received_at < $1")
                        .bind(timeline::normalise_time(before))
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    Ok(res.rows_affected())
                }
            }
        };
    };
}
