//! Processes under measurement: starting them, their readiness, their memory (VmRSS while they
//! run; the peak from `wait4` when they end), and the machine they run on.

use erlmcp_handlers::ids::IncidentId;
use erlmcp_handlers::store::Store;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The released binary (`cargo build --release -p erlmcp-bot`), or `ERLMCP_BOT_BIN`.
pub fn bot_binary() -> String {
    std::env::var("ERLMCP_BOT_BIN").unwrap_or_else(|_| {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/erlmcp-bot");
        assert!(
            std::path::Path::new(p).exists(),
            "build the bot first: cargo build --release -p erlmcp-bot (bench/run does)"
        );
        p.to_string()
    })
}

/// The machine, in a line.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!(
        "erlmcp-bot benchmark, {} UTC: {cpu}, {cores} cores, {mem_gb:.0} GiB",
        chrono::Utc::now().format("%Y-%m-%d %H:%M")
    )
}

/// The machine's CPU time so far, and how much of it the hypervisor took for other guests
/// (`steal` in /proc/stat): on a shared virtual machine that is what makes two runs differ.
pub fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    (
        fields.iter().take(8).sum(),
        fields.get(7).copied().unwrap_or(0),
    )
}

/// The share of CPU time stolen since `before` (from `cpu_ticks`), in percent.
pub fn stolen_since(before: (u64, u64)) -> f64 {
    let now = cpu_ticks();
    let total = now.0.saturating_sub(before.0);
    if total == 0 {
        return 0.0;
    }
    100.0 * now.1.saturating_sub(before.1) as f64 / total as f64
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Writes out what earlier work left for the disk before a load starts: a build just before
/// the benchmark leaves hundreds of megabytes to write back, and the syncs every acknowledgement
/// waits for then queue behind them (measured: 9,705 acks/s at 32 connections with a p99 of
/// 7.0 ms straight after a build, 12,957 and 5.2 ms after a `sync`).
pub fn settle_disk() {
    // SAFETY: sync takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// A child process, killed when dropped.
pub struct Child {
    child: std::process::Child,
}

impl Child {
    /// Starts `program`; what it writes to stderr goes to `log` (so a peer that fails can say
    /// why), or nowhere.
    pub fn spawn(
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> Child {
        let mut cmd = std::process::Command::new(program);
        let stderr = log
            .and_then(|p| std::fs::File::create(p).ok())
            .map_or_else(std::process::Stdio::null, std::process::Stdio::from);
        cmd.args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Child {
            child: cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {program}: {e}")),
        }
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The memory lines of /proc/PID/status.
    pub fn memory(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("Rss") || l.starts_with("Threads"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Resident memory now and at its peak (kB), of the process and its children (gunicorn's
    /// workers are children of its master).
    pub fn rss_kb(&self) -> (u64, u64) {
        let mut pids = vec![self.child.id()];
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for e in dir.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                let parent = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|s| {
                        // The command may hold spaces: the fields after its closing parenthesis.
                        let rest = s.rsplit_once(')')?.1.to_string();
                        rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                    });
                if parent == Some(self.child.id()) {
                    pids.push(pid);
                }
            }
        }
        let field = |pid: u32, name: &str| -> u64 {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with(name))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                })
                .unwrap_or(0)
        };
        (
            pids.iter().map(|p| field(*p, "VmRSS:")).sum(),
            pids.iter().map(|p| field(*p, "VmHWM:")).sum(),
        )
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a command to its end; returns its wall time, its peak RSS (kB, from `wait4`), its exit
/// code and what it printed.
pub fn measure(program: &str, args: &[&str], env: &[(&str, &str)]) -> (Duration, u64, i32, String) {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let pid = child.id() as libc::pid_t;
    // Read the output on threads so the child never blocks on a full pipe.
    let mut child = child;
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        let mut e = String::new();
        let _ = err.read_to_string(&mut e);
        s + &e
    });
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child, with valid pointers to locals.
    unsafe {
        libc::wait4(pid, &mut status, 0, &mut usage);
    }
    let elapsed = started.elapsed();
    let printed = reader.join().unwrap_or_default();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (elapsed, usage.ru_maxrss as u64, code, printed)
}

async fn get(addr: &str, path: &str) -> Option<u16> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    String::from_utf8_lossy(&buf).get(9..12)?.parse().ok()
}

/// Polls `path` every millisecond until it answers 200.
pub async fn wait_ready(addr: &str, path: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if get(addr, path).await == Some(200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("{addr}{path} never answered 200");
}

pub async fn wait_listening(addr: &str, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Declares the incident the notes go to (its channel is `C_INC1`, from the stand-in).
pub async fn declare(t: &crate::load::Target) {
    let declare = crate::load::Target {
        channel: "C_GENERAL".into(),
        ..t.clone()
    };
    let body = "token=x&team_id=T1&channel_id=C_GENERAL&user_id=U_BENCH&user_name=bench&command=%2Ferlmcp&text=p1+declare+benchmark&api_app_id=A1&trigger_id=declare";
    let ts = chrono::Utc::now().timestamp();
    let sig = {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(declare.secret.as_bytes()).expect("key");
        mac.update(format!("v0:{ts}:{body}").as_bytes());
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    };
    let mut s = tokio::net::TcpStream::connect(&declare.addr)
        .await
        .expect("connect");
    let req = format!(
        "POST /slack/commands HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nX-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: {sig}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("send");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
}

/// The declared incident, once the bot has it tied to its channel.
pub async fn incident(store: &dyn Store) -> IncidentId {
    for _ in 0..3000 {
        if let Ok(open) = store.incidents_in_channel("slack:C_INC1").await
            && let Some(i) = open.first()
        {
            return i.id.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the benchmark incident was never declared");
}

/// The length of the incident's timeline (one indexed read; counting notes would be a row each).
pub async fn timeline_len(store: &dyn Store, id: &IncidentId) -> i64 {
    store
        .timeline_head(id)
        .await
        .ok()
        .flatten()
        .map_or(0, |h| h.len)
}
