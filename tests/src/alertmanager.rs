//! A real Alertmanager (Debian's `prometheus-alertmanager`) on a free port, configured with a
//! webhook receiver pointing at the bot; killed when dropped. Alerts are posted to its API as
//! Prometheus would, and it delivers them, grouped and timed as it does, to the bot.

use crate::fakes::{free_port, required};
use std::time::Duration;

pub struct Alertmanager {
    pub url: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    /// Starts one whose only route sends every group (grouped by `group_by`) to `webhook` with
    /// `token` as its bearer token; waits, at short intervals, so tests see deliveries within
    /// seconds. `None` when the program is missing and not required.
    pub async fn start(webhook: &str, token: &str, group_by: &[&str]) -> Option<Alertmanager> {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "route:\n  receiver: bot\n  group_by: [{}]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 3s\nreceivers:\n  - name: bot\n    webhook_configs:\n      - url: {webhook}\n        send_resolved: true\n        http_config:\n          authorization:\n            credentials: {token}\n",
            group_by
                .iter()
                .map(|g| format!("'{g}'"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let config_path = dir.path().join("alertmanager.yml");
        std::fs::write(&config_path, config).unwrap();
        let port = free_port();
        let child = std::process::Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // A single instance: no gossip port.
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if !required("prometheus-alertmanager") => {
                eprintln!("note: cannot start prometheus-alertmanager: {e}");
                return None;
            }
            Err(e) => panic!(
                "prometheus-alertmanager is required but cannot start: {e} (apt-get install prometheus-alertmanager)"
            ),
        };
        let am = Alertmanager {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
        };
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = http.get(format!("{}/-/ready", am.url)).send().await
                && r.status().is_success()
            {
                return Some(am);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("Alertmanager did not become ready on port {port}");
    }

    /// Posts alerts as Prometheus does (`POST /api/v2/alerts`).
    pub async fn post(&self, alerts: serde_json::Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v2/alerts", self.url))
            .json(&alerts)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "Alertmanager refused the alerts: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
}
