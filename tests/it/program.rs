//! The built `erlmcp-bot` program, started as users start it: a clean environment with only
//! what the test gives, a working directory of its own, arguments, standard input. `serve` runs
//! in the background until the test stops it (or kills it with SIGKILL).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The binary Cargo built for these tests.
pub const EXE: &str = env!("CARGO_BIN_EXE_erlmcp-bot");

/// What a finished invocation printed.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Everything, for assertion messages.
    pub fn all(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// An environment for the program: nothing inherited but `PATH` and `HOME`, so a stray
/// `DATABASE_URL` or token on the machine cannot leak into a test.
#[derive(Clone, Default)]
pub struct Env(pub Vec<(String, String)>);

impl Env {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(mut self, k: &str, v: impl Into<String>) -> Self {
        self.0.retain(|(n, _)| n != k);
        self.0.push((k.to_string(), v.into()));
        self
    }

    fn apply(&self, cmd: &mut tokio::process::Command) {
        cmd.env_clear();
        for k in ["PATH", "HOME"] {
            if let Ok(v) = std::env::var(k) {
                cmd.env(k, v);
            }
        }
        cmd.env("USER", "operator");
        for (k, v) in &self.0 {
            cmd.env(k, v);
        }
    }
}

/// Runs `erlmcp-bot ARGS` in `cwd` with `stdin`, waiting at most `limit`.
pub async fn run_in(cwd: &Path, env: &Env, args: &[&str], stdin: &str, limit: Duration) -> Output {
    let mut cmd = tokio::process::Command::new(EXE);
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    env.apply(&mut cmd);
    let mut child = cmd.spawn().expect("start erlmcp-bot");
    let mut input = child.stdin.take().expect("stdin");
    let text = stdin.to_string();
    tokio::spawn(async move {
        let _ = input.write_all(text.as_bytes()).await;
    });
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("erlmcp-bot {args:?} did not finish within {limit:?}"))
        .expect("wait for erlmcp-bot");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `erlmcp-bot ARGS` with a 60 s limit.
pub async fn run(cwd: &Path, env: &Env, args: &[&str], stdin: &str) -> Output {
    run_in(cwd, env, args, stdin, Duration::from_secs(60)).await
}

/// A running `erlmcp-bot` process (a `serve`, or a console in the middle of a run).
pub struct Running {
    child: tokio::process::Child,
    /// Standard input, kept open for `send` when the process was started without a script.
    input: Option<tokio::process::ChildStdin>,
    log: Arc<Mutex<String>>,
    /// Set by the first line that contains the `watch` text given at spawn.
    seen: Option<tokio::sync::oneshot::Receiver<String>>,
}

impl Running {
    /// Starts `erlmcp-bot ARGS`; with `Some(script)` standard input gets the script and closes,
    /// with `None` it stays open for `send`. Output is collected; the first line containing
    /// `watch` can be awaited with `wait_for_line`.
    pub fn spawn(
        cwd: &Path,
        env: &Env,
        args: &[&str],
        stdin: Option<&str>,
        watch: &str,
    ) -> Running {
        let mut cmd = tokio::process::Command::new(EXE);
        cmd.args(args)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        env.apply(&mut cmd);
        let mut child = cmd.spawn().expect("start erlmcp-bot");
        let mut input = child.stdin.take();
        if let Some(script) = stdin
            && let Some(mut pipe) = input.take()
        {
            let text = script.to_string();
            tokio::spawn(async move {
                let _ = pipe.write_all(text.as_bytes()).await;
            });
        }
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        let tx = Arc::new(Mutex::new(Some(tx)));
        let stderr = child.stderr.take().expect("stderr");
        let stdout = child.stdout.take().expect("stdout");
        fn collect<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
            from: R,
            log: Arc<Mutex<String>>,
            watch: String,
            tx: Arc<Mutex<Option<tokio::sync::oneshot::Sender<String>>>>,
        ) {
            tokio::spawn(async move {
                let mut lines = BufReader::new(from).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    {
                        let mut l = log.lock().unwrap();
                        l.push_str(&line);
                        l.push('\n');
                    }
                    if !watch.is_empty()
                        && line.contains(&watch)
                        && let Some(tx) = tx.lock().unwrap().take()
                    {
                        let _ = tx.send(line.clone());
                    }
                }
            });
        }
        collect(stderr, log.clone(), watch.to_string(), tx.clone());
        collect(stdout, log.clone(), watch.to_string(), tx);
        Running {
            child,
            input,
            log,
            seen: Some(rx),
        }
    }

    /// Types a line on standard input (a process started without a script).
    pub async fn send(&mut self, line: &str) {
        let pipe = self.input.as_mut().expect("started without a script");
        pipe.write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write to stdin");
        pipe.flush().await.expect("flush stdin");
    }

    /// Waits (bounded) until the output contains `text`; returns the output.
    pub async fn wait_for_output(&self, text: &str, limit: Duration) -> String {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            let log = self.log();
            if log.contains(text) {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{text:?} never appeared within {limit:?}:\n{}", self.log());
    }

    /// Waits (at most 60 s) for the output line containing the text given at spawn.
    pub async fn wait_for_line(&mut self) -> String {
        let rx = self.seen.take().expect("waited for once");
        match tokio::time::timeout(Duration::from_secs(60), rx).await {
            Ok(Ok(line)) => line,
            _ => {
                let status = self.child.try_wait().ok().flatten();
                panic!(
                    "erlmcp-bot never printed the awaited line (exit {status:?}):\n{}",
                    self.log()
                )
            }
        }
    }

    /// What it printed so far (stderr and stdout).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The operating system process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// SIGKILL: no chance to tidy up, as when a node dies.
    pub async fn kill9(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// SIGTERM, as Kubernetes stops a pod; returns the exit code.
    pub async fn terminate(&mut self) -> Option<i32> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        self.wait(Duration::from_secs(20)).await
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process to end by itself; its exit code, or `None` if it did not end.
    pub async fn wait(&mut self, limit: Duration) -> Option<i32> {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .ok()
            .and_then(|r| r.ok())
            .and_then(|s| s.code())
    }
}

/// A running `erlmcp-bot serve`.
pub struct Served {
    pub process: Running,
    /// `http://127.0.0.1:PORT`, as the program printed it.
    pub url: String,
}

impl std::ops::Deref for Served {
    type Target = Running;
    fn deref(&self) -> &Running {
        &self.process
    }
}

impl std::ops::DerefMut for Served {
    fn deref_mut(&mut self) -> &mut Running {
        &mut self.process
    }
}

impl Served {
    /// Starts `erlmcp-bot serve --listen 127.0.0.1:0` (plus `extra` arguments) and waits for the
    /// line that says where it listens.
    pub async fn start(cwd: &Path, env: &Env, extra: &[&str]) -> Served {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut process = Running::spawn(cwd, env, &args, Some(""), "erlmcp-bot serving");
        let line = process.wait_for_line().await;
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .trim_end_matches([';', ','])
            .to_string();
        Served { process, url }
    }
}

/// A temporary working directory with the SQLite URL of a database file inside it.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db_url(&self) -> String {
        format!("sqlite://{}", self.path().join("bot.db").display())
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }
}

/// Waits (bounded) for `check` to hold, polling; panics with `what` if it never does.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened within {limit:?}: {what}");
}
