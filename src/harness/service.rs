//! Purser as a child process: started from this same executable with `serve`, on a port and a database of the
//! harness's choosing, killed with SIGKILL when the harness wants a crash.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Service {
    env: Vec<(String, String)>,
    config: PathBuf,
    pub base: String,
    child: Option<Child>,
}

/// A port nobody listens on now. Nothing holds it once returned, so another call may return it too until its user
/// binds it: bind it before the next port is chosen (the chaos SMTP sink and haproxy's front, which bind later, hold
/// theirs bound instead).
pub fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

impl Service {
    /// `env` overrides the configuration file (`PURSER_<SECTION>__<KEY>`); the port is chosen here.
    pub fn new(config: &Path, mut env: Vec<(String, String)>) -> Result<Self, String> {
        let port = free_port()?;
        env.push(("PURSER_SERVER__HOST".into(), "127.0.0.1".into()));
        env.push(("PURSER_SERVER__PORT".into(), port.to_string()));
        Ok(Self { env, config: config.to_owned(), base: format!("http://127.0.0.1:{port}"), child: None })
    }

    /// Starts the service and waits until `/readyz` answers 200: migrations run and unfinished purchases are back
    /// under their actors by then. Returns how long that took.
    pub async fn start(&mut self, http: &reqwest::Client) -> Result<Duration, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let started = Instant::now();
        let child = Command::new(exe)
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", std::env::var("PURSER_HARNESS_LOG").unwrap_or_else(|_| "error".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the service: {e}"))?;
        self.child = Some(child);
        let deadline = started + Duration::from_secs(600);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("the service exited during start: {status}"));
            }
            let ready = http.get(format!("{}/readyz", self.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err("the service did not become ready within 10 minutes".into())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGSTOP (`stopped`) or SIGCONT: a node frozen as by a long GC pause or a hung VM, then thawed.
    pub fn freeze(&self, stopped: bool) {
        if let Some(pid) = self.pid() {
            let signal = if stopped { "-STOP" } else { "-CONT" };
            let _ = Command::new("kill").arg(signal).arg(pid.to_string()).status();
        }
    }

    /// SIGKILL: no shutdown hook runs, as in a power cut or an OOM kill.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// CPU time the service has used, user and system, from `/proc/<pid>/stat` (in clock ticks of 1/100 s, the
    /// `USER_HZ` Linux reports in on every architecture it runs on).
    pub fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        // The command name may hold spaces; the fields after its closing parenthesis do not.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
    }

    /// (resident now, peak resident) in bytes, from `/proc`.
    pub fn memory(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok().map(|kb| kb * 1024))
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}
