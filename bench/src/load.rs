//! The load generator: N connections, each sending distinct, correctly signed `/erlmcp note`
//! slash commands one after another for a fixed time, over plain HTTP/1.1 (keep-alive when the
//! server allows it; a new connection per request when it does not, as Bolt's server). It runs
//! on one thread, like `wrk -t1`, and records every latency.

use hmac::{Hmac, Mac};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where to send, and how to sign.
#[derive(Clone)]
pub struct Target {
    pub addr: String,
    pub path: String,
    pub secret: String,
    pub channel: String,
}

/// What a load run measured.
#[derive(Debug, Default, Clone)]
pub struct Measured {
    pub acks: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

impl Measured {
    pub fn per_second(&self) -> f64 {
        self.acks as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let mut l = self.latencies.clone();
        l.sort();
        l[((l.len() - 1) as f64 * p).round() as usize]
    }
}

fn sign(secret: &str, ts: i64, body: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// One slash command, as Slack sends it.
fn request(t: &Target, n: u64, run: &str) -> Vec<u8> {
    let body = format!(
        "token=x&team_id=T1&team_domain=bench&channel_id={}&channel_name=inc&user_id=U_BENCH&user_name=bench&command=%2Ferlmcp&text=note+{run}-{n}&api_app_id=A1&is_enterprise_install=false&response_url=http%3A%2F%2F127.0.0.1%3A9%2Fr&trigger_id={run}.{n}",
        t.channel
    );
    let ts = chrono::Utc::now().timestamp();
    format!(
        "POST {} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-www-form-urlencoded\r\nX-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: {}\r\nContent-Length: {}\r\n\r\n{body}",
        t.path,
        sign(&t.secret, ts, &body),
        body.len()
    )
    .into_bytes()
}

/// Reads one response; returns its status and whether the connection may be reused.
async fn response(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(u16, bool)> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head.get(9..12)?.parse().ok()?;
    let http10 = head.starts_with("http/1.0");
    let close = head.contains("connection: close") || (http10 && !head.contains("keep-alive"));
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match length {
        Some(len) => {
            while buf.len() < head_end + len {
                let n = s.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        }
        // No length: the body ends when the server closes.
        None => loop {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
        },
    }
    Some((status, !close && length.is_some()))
}

/// Runs `connections` senders for `duration`; `run` makes the notes of this run distinct.
pub async fn run(t: &Target, connections: usize, duration: Duration, run: &str) -> Measured {
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (t, counter, run) = (t.clone(), counter.clone(), run.to_string());
        tasks.push(tokio::spawn(async move {
            let mut m = Measured::default();
            let mut conn: Option<TcpStream> = None;
            let mut buf = Vec::with_capacity(8192);
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let req = request(&t, n, &run);
                let sent = Instant::now();
                if conn.is_none() {
                    match TcpStream::connect(&t.addr).await {
                        Ok(s) => {
                            let _ = s.set_nodelay(true);
                            conn = Some(s);
                        }
                        Err(_) => {
                            m.errors += 1;
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            continue;
                        }
                    }
                }
                let s = conn.as_mut().expect("connected above");
                let answer = match s.write_all(&req).await {
                    Ok(()) => response(s, &mut buf).await,
                    Err(_) => None,
                };
                match answer {
                    Some((200, reuse)) => {
                        m.acks += 1;
                        m.latencies.push(sent.elapsed());
                        if !reuse {
                            conn = None;
                        }
                    }
                    Some((_, reuse)) => {
                        m.errors += 1;
                        if !reuse {
                            conn = None;
                        }
                    }
                    None => {
                        m.errors += 1;
                        conn = None;
                    }
                }
            }
            m
        }));
    }
    let mut total = Measured::default();
    for t in tasks {
        if let Ok(m) = t.await {
            total.acks += m.acks;
            total.errors += m.errors;
            total.latencies.extend(m.latencies);
        }
    }
    total.elapsed = start.elapsed();
    total
}
