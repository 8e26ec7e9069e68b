//! Unmodified Redis tools against the real `redispair-engine` binary: redis-cli (arguments,
//! stdin, `--pipe`, interactive mode in a tmux pane), redis-benchmark, redis-py, and SHUTDOWN
//! ending the process with status 0. Does I/O: spawns processes, loopback sockets.

use std::io::Write;
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;

/// The engine binary on a free loopback port, killed on drop unless it already exited.
struct Engine {
    child: Child,
    port: u16,
}

impl Engine {
    /// Start the engine binary and wait until *it* answers on its port: a connection alone
    /// could reach another process that took the port after `free_port` checked it (the CI
    /// once sent SIGTERM to an engine still starting up, before its handler existed). If the
    /// port was taken, the engine exits at start, and another port is tried.
    fn start(extra: &[&str]) -> Engine {
        for _ in 0..3 {
            if let Some(e) = Engine::try_start(extra) {
                return e;
            }
        }
        panic!("the engine exited at start on three ports");
    }

    fn try_start(extra: &[&str]) -> Option<Engine> {
        let port = support::free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_redispair-engine"))
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            // A pure cache: these tests must not share (or leave) a data directory.
            .args(["--persistence", "off"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("engine binary starts");
        let own_pid = format!("process_id:{}", child.id());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if child.try_wait().unwrap().is_some() {
                return None;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                let info = Command::new("redis-cli")
                    .args(["-p", &port.to_string(), "INFO", "server"])
                    .output()
                    .expect("redis-cli runs");
                if String::from_utf8_lossy(&info.stdout)
                    .lines()
                    .any(|l| l.trim_end() == own_pid)
                {
                    return Some(Engine { child, port });
                }
            }
            assert!(Instant::now() < deadline, "engine did not answer on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs")
    }

    fn cli_stdout(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "redis-cli {args:?} failed: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn cli_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("redis-cli runs");
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Wait until the process exits, at most `timeout` after `what` (SHUTDOWN, SIGTERM), and
    /// return its exit status.
    fn wait_exit(&mut self, timeout: Duration, what: &str) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "engine still running after {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the engine has `name` (families land at different times).
    fn has_command(&self, name: &str) -> bool {
        let out = self.cli_stdout(&["COMMAND", "INFO", name]);
        !out.trim().is_empty()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn tool_available(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn redis_cli_arguments_and_stdin() {
    let e = Engine::start(&[]);
    assert_eq!(e.cli_stdout(&["PING"]), "PONG\n");
    assert_eq!(e.cli_stdout(&["SET", "greeting", "hello world"]), "OK\n");
    assert_eq!(e.cli_stdout(&["GET", "greeting"]), "hello world\n");
    assert_eq!(e.cli_stdout(&["INCR", "n"]), "1\n");
    assert_eq!(e.cli_stdout(&["--raw", "GET", "missing"]), "\n");
    let err = e.cli_stdout(&["GET", "a", "b"]);
    assert!(
        err.contains("wrong number of arguments for 'get' command"),
        "{err}"
    );
    // Commands read from stdin, one per line (no tty: non-interactive mode).
    let out = e.cli_stdin(
        &[],
        b"SET a 1\nINCRBY a 41\nGET a\nCLIENT SETNAME cli\nCLIENT GETNAME\n",
    );
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "OK\n42\n42\nOK\ncli\n"
    );
    // -x: the last argument from stdin.
    let out = e.cli_stdin(&["-x", "SET", "fromstdin"], b"payload");
    assert!(out.status.success());
    assert_eq!(e.cli_stdout(&["GET", "fromstdin"]), "payload\n");
    // INFO and CONFIG GET as monitoring scripts use them.
    assert!(e.cli_stdout(&["INFO", "server"]).contains("redis_version:"));
    assert_eq!(
        e.cli_stdout(&["CONFIG", "GET", "maxmemory"]),
        "maxmemory\n0\n"
    );
}

#[test]
fn redis_cli_pipe_mass_insertion() {
    let e = Engine::start(&[]);
    let n = 5000;
    let mut input = Vec::new();
    for i in 0..n {
        let (k, v) = (format!("key:{i}"), format!("value:{i}"));
        input.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n",
                k.len(),
                v.len()
            )
            .as_bytes(),
        );
    }
    let out = e.cli_stdin(&["--pipe"], &input);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains(&format!("errors: 0, replies: {n}")),
        "unexpected --pipe output: {stdout}"
    );
    assert_eq!(e.cli_stdout(&["DBSIZE"]), format!("{n}\n"));
    assert_eq!(e.cli_stdout(&["GET", "key:4999"]), "value:4999\n");
}

/// Interactive redis-cli needs a terminal (linenoise queries the cursor position), so it runs in
/// a detached tmux pane; the test types into it and reads the screen back.
#[test]
fn redis_cli_interactive_session() {
    if !tool_available("tmux") {
        eprintln!("tmux not installed: interactive redis-cli check skipped");
        return;
    }
    let e = Engine::start(&[]);
    let socket = format!("rp-tools-{}", std::process::id());
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(["-L", &socket])
            .args(args)
            .output()
            .expect("tmux runs")
    };
    /// Kills the private tmux server even when an assertion fails.
    struct TmuxServer(String);
    impl Drop for TmuxServer {
        fn drop(&mut self) {
            let _ = Command::new("tmux")
                .args(["-L", &self.0, "kill-server"])
                .output();
        }
    }
    let _guard = TmuxServer(socket.clone());
    let started = tmux(&[
        "new-session",
        "-d",
        "-x",
        "200",
        "-y",
        "50",
        &format!("redis-cli -p {}", e.port),
    ]);
    assert!(started.status.success(), "{started:?}");
    let screen = || String::from_utf8_lossy(&tmux(&["capture-pane", "-p"]).stdout).into_owned();
    let wait_screen = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = screen();
            if s.contains(what) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "screen never showed {what:?}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let prompt = format!("127.0.0.1:{}>", e.port);
    wait_screen(&prompt);
    for (line, expect) in [
        ("SET interactive yes", "OK"),
        ("GET interactive", "\"yes\""),
        ("HELP GET", "group: string"),
        ("HELP CLIENT KILL", "Terminates open connections."),
        ("CLIENT INFO", "cmd=client|info"),
        ("SELECT 2", &format!("127.0.0.1:{}[2]>", e.port) as &str),
    ] {
        tmux(&["send-keys", "-l", line]);
        tmux(&["send-keys", "Enter"]);
        wait_screen(expect);
    }
    // Typing hints come from COMMAND DOCS arguments.
    tmux(&["send-keys", "-l", "SET k v "]);
    wait_screen("[NX|XX]");
    let s = screen();
    assert!(
        !s.contains("(error)"),
        "interactive session shows an error:\n{s}"
    );
}

#[test]
fn redis_benchmark_runs_without_errors() {
    let e = Engine::start(&[]);
    // Only the tests whose commands this engine has (families land at different times).
    let wanted = [
        ("set", "set"),
        ("get", "get"),
        ("incr", "incr"),
        ("lpush", "lpush"),
        ("lpop", "lpop"),
        ("sadd", "sadd"),
        ("hset", "hset"),
        ("zadd", "zadd"),
        ("mset", "mset"),
    ];
    let tests: Vec<&str> = wanted
        .iter()
        .filter(|(_, cmd)| e.has_command(cmd))
        .map(|(t, _)| *t)
        .collect();
    let out = Command::new("redis-benchmark")
        .args(["-p", &e.port.to_string(), "-n", "2000", "-c", "10", "-q"])
        .args(["-t", &tests.join(",")])
        .output()
        .expect("redis-benchmark runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        !stdout.to_lowercase().contains("error"),
        "{stdout}\n{stderr}"
    );
    for t in &tests {
        let label = if *t == "mset" {
            "MSET (10 keys)".to_string()
        } else {
            t.to_uppercase()
        };
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(&format!("{label}: ")) && l.contains("requests per second")),
            "no result for {t}:\n{stdout}\n{stderr}"
        );
    }
}

#[test]
fn redis_py_resp2_and_resp3() {
    let e = Engine::start(&[]);
    let script = r#"
import sys, redis
port = int(sys.argv[1])
for proto in (2, 3):
    r = redis.Redis(host="127.0.0.1", port=port, protocol=proto, decode_responses=True)
    assert r.ping() is True
    assert r.set(f"py:{proto}", "v") is True
    assert r.get(f"py:{proto}") == "v"
    assert r.incr("py:counter") >= 1
    p = r.pipeline(transaction=True)
    p.set("py:a", "1").incr("py:a").get("py:a")
    assert p.execute() == [True, 2, "2"], proto
    p = r.pipeline(transaction=False)
    for i in range(100):
        p.set(f"py:k{i}", i)
    assert all(p.execute())
    info = r.info()
    assert info["redis_version"] and "used_memory" in info, info.keys()
    assert r.config_get("maxmemory") == {"maxmemory": "0"}
    assert r.client_id() > 0
    assert r.dbsize() >= 102
    try:
        r.execute_command("GET", "a", "b")
        raise SystemExit("no error")
    except redis.ResponseError as e:
        assert "wrong number of arguments" in str(e)
    r.close()
print("ok")
"#;
    let out = Command::new("python3")
        .args(["-c", script, &e.port.to_string()])
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named 'redis'") {
        // hack/install-test-deps.sh installs redis-py in a virtualenv (~/.cache/redispair/python)
        // and hack/test.sh puts its bin/ first on PATH; CI always has it.
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-py missing in CI: {stderr}"
        );
        eprintln!(
            "redis-py not found: skipped (run hack/install-test-deps.sh, then put ~/.cache/redispair/python/bin first on PATH)"
        );
        return;
    }
    assert!(out.status.success(), "redis-py script failed:\n{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}

#[test]
fn shutdown_exits_the_process_with_status_zero() {
    let mut e = Engine::start(&[]);
    assert_eq!(e.cli_stdout(&["SET", "a", "1"]), "OK\n");
    // redis-cli treats the closed connection after SHUTDOWN as success.
    let out = e.cli(&["SHUTDOWN", "NOSAVE"]);
    assert!(out.status.success(), "{out:?}");
    let status = e.wait_exit(Duration::from_secs(10), "SHUTDOWN");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn sigterm_exits_the_process_with_status_zero() {
    let mut e = Engine::start(&[]);
    let pid = e.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = e.wait_exit(Duration::from_secs(10), "SIGTERM");
    assert!(status.success(), "exit status {status:?}");
}
