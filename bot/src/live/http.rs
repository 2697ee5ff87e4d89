//! HTTP actions: health checks, paging (PagerDuty Events API v2 body), the status page and named
//! webhooks (generic JSON), and the backup service. A notification with no endpoint configured is
//! skipped and says why; the backup service is required for the steps that restore data.

use super::Live;
use erlmcp_handlers::executor::ExecError;
use serde_json::{Value, json};

fn http_err(what: &str, e: reqwest::Error) -> ExecError {
    if e.is_timeout() || e.is_connect() || e.is_request() {
        ExecError::transient(format!("{what}: {e}"))
    } else {
        ExecError::permanent(format!("{what}: {e}"))
    }
}

/// A non-success answer: its status and (the start of) its body, as the remote system said it.
async fn check_status(what: &str, resp: reqwest::Response) -> Result<String, ExecError> {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if status.is_success() {
        return Ok(body);
    }
    let text = format!(
        "{what} answered {status}: {}",
        body.chars().take(300).collect::<String>()
    );
    if status.as_u16() == 429 || status.is_server_error() {
        Err(ExecError::transient(text))
    } else {
        Err(ExecError::permanent(text))
    }
}

impl Live {
    pub(crate) async fn check_health(&self, region: &str) -> Result<String, ExecError> {
        let r = self
            .topo
            .region(region)
            .ok_or_else(|| ExecError::permanent(self.topo.unknown_region_message(region)))?;
        let what = format!("GET {}", r.health_url);
        let resp = self
            .http
            .get(&r.health_url)
            .send()
            .await
            .map_err(|e| http_err(&what, e))?;
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        let expected = self.settings.health.expect_status;
        let body_ok = self
            .settings
            .health
            .expect_body
            .as_ref()
            .is_none_or(|b| body.contains(b.as_str()));
        if status == expected && body_ok {
            return Ok(format!("{region}: healthy ({what} answered {status})"));
        }
        let short: String = body.chars().take(200).collect();
        Err(ExecError::transient(format!(
            "{region}: {what} answered {status} (expected {expected}{}): {short}",
            self.settings
                .health
                .expect_body
                .as_ref()
                .map(|b| format!(" containing {b:?}"))
                .unwrap_or_default()
        )))
    }

    async fn post(&self, what: &str, url: &str, body: Value) -> Result<String, ExecError> {
        let resp = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| http_err(what, e))?;
        check_status(what, resp).await
    }

    pub(crate) async fn page(&self, summary: &str) -> Result<String, ExecError> {
        let Some(url) = &self.settings.notify.page_url else {
            return Ok("skipped: no paging endpoint configured ([notify] page_url)".into());
        };
        let Some(key) = &self.settings.page_routing_key else {
            return Ok("skipped: no PagerDuty routing key in the environment ([notify] page_routing_key_env, default PAGERDUTY_ROUTING_KEY)".into());
        };
        // PagerDuty Events API v2 "trigger" event.
        let body = json!({
            "routing_key": key,
            "event_action": "trigger",
            "payload": { "summary": summary, "source": "erlmcp-bot", "severity": "critical", "component": "erlmcp" },
            "client": "erlmcp-bot",
        });
        self.post("paging", url, body).await?;
        Ok(format!("on-call paged: {summary}"))
    }

    pub(crate) async fn status_page(
        &self,
        state: &str,
        message: &str,
    ) -> Result<String, ExecError> {
        let Some(url) = &self.settings.notify.status_page_url else {
            return Ok(format!(
                "skipped: no status page endpoint configured ([notify] status_page_url); wanted {state}: {message}"
            ));
        };
        self.post(
            "status page",
            url,
            json!({ "status": state, "message": message, "source": "erlmcp-bot" }),
        )
        .await?;
        Ok(format!("status page: {state} ({message})"))
    }

    pub(crate) async fn webhook(&self, hook: &str, message: &str) -> Result<String, ExecError> {
        let Some(url) = self.settings.notify.webhooks.get(hook) else {
            return Ok(format!(
                "skipped: no `{hook}` webhook configured ([notify.webhooks] {hook} = \"https://...\"); do it by hand: {message}"
            ));
        };
        self.post(
            &format!("{hook} hook"),
            url,
            json!({ "hook": hook, "text": message, "source": "erlmcp-bot" }),
        )
        .await?;
        Ok(format!("{hook} hook called"))
    }

    fn backup_url(&self, path: &str) -> Result<String, ExecError> {
        let base = self.settings.backup.api_url.as_ref().ok_or_else(|| {
            ExecError::permanent("no backup service configured ([backup] api_url); the backup steps cannot run live without it")
        })?;
        Ok(format!("{}/{path}", base.trim_end_matches('/')))
    }

    pub(crate) async fn backup_call(&self, op: &str, body: Value) -> Result<String, ExecError> {
        let url = self.backup_url(op)?;
        let answer = self
            .post(&format!("backup service {op}"), &url, body)
            .await?;
        Ok(format!(
            "backup service {op}: {}",
            answer.chars().take(200).collect::<String>().trim()
        ))
    }

    /// The newest backup that passed verification, from `GET /backups` (`[{"name":…,"passed":…}]`).
    pub(crate) async fn last_good_backup(&self) -> Result<String, ExecError> {
        let url = self.backup_url("backups")?;
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| http_err("backup service", e))?;
        let body = check_status("backup service", resp).await?;
        let list: Vec<Value> = serde_json::from_str(&body)
            .map_err(|e| ExecError::permanent(format!("backup service: unreadable list: {e}")))?;
        list.iter()
            .rev()
            .find(|b| b["passed"].as_bool() == Some(true))
            .and_then(|b| b["name"].as_str().map(str::to_string))
            .ok_or_else(|| ExecError::permanent("backup service: no backup passed verification"))
    }
}
