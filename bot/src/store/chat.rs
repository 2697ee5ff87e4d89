//! Storage for chat adapters (not the core's business): event deduplication and the map between
//! chat messages and approval requests. Both backends, one SQL text.

use crate::error::Error;
use async_trait::async_trait;
use chrono::Utc;
use erlmcp_handlers::ids::RequestId;
use sqlx::Row;

#[async_trait]
pub trait ChatStore: Send + Sync {
    /// `true` the first time an event id is seen on a platform; `false` for every repeat.
    async fn first_delivery(&self, platform: &str, event_id: &str) -> Result<bool, Error>;
    async fn remember_message(
        &self,
        platform: &str,
        channel: &str,
        ts: &str,
        request: &RequestId,
        body: &str,
    ) -> Result<(), Error>;
    async fn request_for_message(
        &self,
        platform: &str,
        channel: &str,
        ts: &str,
    ) -> Result<Option<RequestId>, Error>;
    /// The (channel, ts, body) of the message presenting a request.
    async fn message_for_request(
        &self,
        platform: &str,
        request: &RequestId,
    ) -> Result<Option<(String, String, String)>, Error>;
}

macro_rules! chat_store {
    ($store:ty) => {
        #[async_trait]
        impl ChatStore for $store {
            async fn first_delivery(&self, platform: &str, event_id: &str) -> Result<bool, Error> {
                let now = Utc::now();
                // Forget what can no longer come back: signatures expire after 5 minutes, Slack's
                // event retries stop within the hour.
                let keep = if platform == "slack-signature" { chrono::Duration::minutes(10) } else { chrono::Duration::days(1) };
                sqlx::query("DELETE FROM chat_events WHERE platform = $1 AND received_at < $2")
                    .bind(platform)
                    .bind(now - keep)
                    .execute(self.writer())
                    .await
                    .map_err(|e| Error::Database(e.to_string()))?;
                let r = sqlx::query("INSERT INTO chat_events (platform, event_id, received_at) VALUES ($1, $2, $3) ON CONFLICT (platform, event_id) DO NOTHING")
                    .bind(platform)
                    .bind(event_id)
                    .bind(now)
                    .execute(self.writer())
                    .await
                    .map_err(|e| Error::Database(e.to_string()))?;
                Ok(r.rows_affected() == 1)
            }

            async fn remember_message(&self, platform: &str, channel: &str, ts: &str, request: &RequestId, body: &str) -> Result<(), Error> {
                sqlx::query("INSERT INTO chat_messages (platform, channel, ts, request_id, body) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (platform, channel, ts) DO NOTHING")
                    .bind(platform)
                    .bind(channel)
                    .bind(ts)
                    .bind(request.as_str())
                    .bind(body)
                    .execute(self.writer())
                    .await
                    .map_err(|e| Error::Database(e.to_string()))?;
                Ok(())
            }

            async fn request_for_message(&self, platform: &str, channel: &str, ts: &str) -> Result<Option<RequestId>, Error> {
                let row = sqlx::query("SELECT request_id FROM chat_messages WHERE platform = $1 AND channel = $2 AND ts = $3")
                    .bind(platform)
                    .bind(channel)
                    .bind(ts)
                    .fetch_optional(self.pool())
                    .await
                    .map_err(|e| Error::Database(e.to_string()))?;
                row.map(|r| r.try_get::<String, _>("request_id").map(RequestId::new).map_err(|e| Error::Database(e.to_string()))).transpose()
            }

            async fn message_for_request(&self, platform: &str, request: &RequestId) -> Result<Option<(String, String, String)>, Error> {
                let row = sqlx::query("SELECT channel, ts, body FROM chat_messages WHERE platform = $1 AND request_id = $2 ORDER BY ts LIMIT 1")
                    .bind(platform)
                    .bind(request.as_str())
                    .fetch_optional(self.pool())
                    .await
                    .map_err(|e| Error::Database(e.to_string()))?;
                let text = |r: &_, c: &str| -> Result<String, Error> { sqlx::Row::try_get(r, c).map_err(|e: sqlx::Error| Error::Database(e.to_string())) };
                row.map(|r| Ok((text(&r, "channel")?, text(&r, "ts")?, text(&r, "body")?))).transpose()
            }
        }
    };
}

chat_store!(super::SqliteStore);
chat_store!(super::PgStore);
