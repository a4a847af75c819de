//! The harness of the tests that run Moat between Linux peers in network
//! namespaces (`tests/e2e/topology.sh`): the topology (up on creation,
//! torn down on drop), commands in its namespaces, and `moat run` in
//! Moat's namespace (stopped on drop).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{cmd, root};

/// A command's status and output, for an assertion message.
pub fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Prints the last `lines` lines of each of `logs` (paths under `dir`),
/// for a failing test: what the daemons said before it failed.
pub fn print_tails(dir: &Path, logs: &[&str], lines: usize) {
    for log in logs {
        let text = fs::read_to_string(dir.join(log)).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(lines).collect();
        eprintln!("--- last lines of {log}");
        tail.iter().rev().for_each(|l| eprintln!("{l}"));
    }
}

/// `SCRIPT down STATE PREFIX` (a `topology.sh`, idempotent), from a drop
/// guard: a failure is printed, never a panic (the test may be panicking
/// already).
pub fn topology_down(script: &Path, state: &Path, prefix: &str) {
    let out = cmd("timeout")
        .args(["-k", "5", "60", "bash"])
        .arg(script)
        .arg("down")
        .args([state.as_os_str(), prefix.as_ref()])
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        r => eprintln!("{} down failed: {r:?}", script.display()),
    }
}

/// Runs `c` with no input; a command that cannot start fails the test.
pub fn output(c: &mut Command) -> Output {
    c.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{c:?}: {e}"))
}

/// The namespaces and the origin's daemons of `topology.sh`, named
/// `moat-TAG-PID-*`; dropping it tears them down (`topology.sh down` is
/// idempotent, so this is safe after a partial `up`).
pub struct Topology {
    script: PathBuf,
    pub state: PathBuf,
    prefix: String,
    /// Files of `state` whose last lines are printed when the test fails.
    failure_logs: &'static [&'static str],
    /// The clients' and attackers' namespace.
    pub inet: String,
    pub moat: String,
    pub origin: String,
}

impl Topology {
    /// `topology.sh up` with its state in `state`.
    pub fn up(tag: &str, state: &Path) -> Topology {
        let prefix = format!("moat-{tag}-{}-", std::process::id());
        let t = Topology {
            script: root().join("tests/e2e/topology.sh"),
            state: state.to_path_buf(),
            inet: format!("{prefix}inet"),
            moat: format!("{prefix}moat"),
            origin: format!("{prefix}origin"),
            prefix,
            failure_logs: &[],
        };
        // The guard exists before anything is created: a failing `up` is
        // cleaned up too.
        let out = output(
            cmd("timeout")
                .args(["-k", "5", "120", "bash"])
                .arg(&t.script)
                .arg("up")
                .args([t.state.as_os_str(), t.prefix.as_ref()]),
        );
        assert!(out.status.success(), "{}", describe("topology.sh up", &out));
        t
    }

    /// Prints the last lines of these files of the state folder (the
    /// origin's daemons' logs) when the test fails.
    pub fn print_on_failure(mut self, logs: &'static [&'static str]) -> Topology {
        self.failure_logs = logs;
        self
    }

    /// `args` in namespace `ns`, killed after `secs` seconds.
    pub fn exec_cmd(&self, ns: &str, secs: u64, args: &[&str]) -> Command {
        let mut c = cmd("timeout");
        c.args(["-k", "2", &secs.to_string(), "ip", "netns", "exec", ns])
            .args(args);
        c
    }

    pub fn exec(&self, ns: &str, secs: u64, args: &[&str]) -> Output {
        output(&mut self.exec_cmd(ns, secs, args))
    }

    /// [`Topology::exec`] that must succeed.
    pub fn exec_ok(&self, ns: &str, secs: u64, args: &[&str]) -> Output {
        let out = self.exec(ns, secs, args);
        assert!(out.status.success(), "{}", describe(&args.join(" "), &out));
        out
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if std::thread::panicking() {
            print_tails(&self.state, self.failure_logs, 15);
        }
        topology_down(&self.script, &self.state, &self.prefix);
    }
}

/// `moat run` in Moat's namespace, its stdout, stderr and `--stats` file
/// in a folder of the test; dropping it stops it (SIGTERM, SIGKILL after
/// 10 s) and, when the test is failing, prints its output.
pub struct Moat {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    stats: PathBuf,
}

impl Moat {
    /// Starts Moat with `config` in namespace `ns` (with `env` set) and
    /// waits up to 30 s for `ready` on its stderr and the first stats.
    pub fn start(ns: &str, config: &Path, dir: &Path, ready: &str, env: &[(&str, &str)]) -> Moat {
        let (stdout, stderr, stats) = (dir.join("moat.out"), dir.join("moat.err"), dir.join("stats.json"));
        let child = cmd("ip")
            .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_moat"), "run", "--config"])
            .arg(config)
            .arg("--stats")
            .arg(&stats)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout).unwrap())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("moat run starts");
        let mut m = Moat {
            child,
            stdout,
            stderr,
            stats,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let err = m.logs();
            if err.contains(ready) && m.stats.exists() {
                return m;
            }
            if let Ok(Some(status)) = m.child.try_wait() {
                panic!("moat run exited at start-up: {status}\n{err}");
            }
            assert!(Instant::now() < deadline, "moat run did not start in 30 s\n{err}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Its standard error so far.
    pub fn logs(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Its standard output so far.
    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// SIGTERM, then waits (SIGKILL after 10 s); returns whether it exited
    /// cleanly, and its standard output.
    pub fn stop(&mut self) -> (bool, String) {
        if let Ok(None) = self.child.try_wait() {
            // `ip netns exec` execs Moat, so the child is Moat itself.
            let _ = cmd("kill").args(["-TERM", &self.child.id().to_string()]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        (status.is_some_and(|s| s.success()), self.stdout())
    }

    /// The latest stats snapshot (retried while Moat rewrites it).
    pub fn stats(&self) -> Value {
        for _ in 0..20 {
            if let Some(v) = fs::read(&self.stats).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
                return v;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no readable stats in {}\n{}", self.stats.display(), self.logs())
    }

    /// A snapshot written at least a second after this call.
    pub fn fresh_stats(&self) -> Value {
        let up = |s: &Value| s["uptime_secs"].as_f64().unwrap_or(0.0);
        let first = up(&self.stats());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.stats();
            if up(&s) >= first + 1.05 {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "stats not rewritten for 10 s\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Moat {
    fn drop(&mut self) {
        let _ = self.stop();
        if std::thread::panicking() {
            eprintln!("--- moat stdout\n{}--- moat stderr\n{}", self.stdout(), self.logs());
        }
    }
}

/// A child process killed on drop, with everything it started.
///
/// The children here are `timeout ... ip netns exec ... CMD`
/// ([`Topology::exec_cmd`]). Killing `timeout` alone would leave CMD running
/// for good, re-parented to init (a leaked echo server did, holding the
/// test's inherited file descriptors). GNU `timeout` puts itself and CMD
/// in a process group of their own, whose id is its pid, so the whole group
/// is killed.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let group = format!("-{}", self.0.id());
            let _ = cmd("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
