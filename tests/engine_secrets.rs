//! Passwords given to the real `redispair-engine` binary in files, as the operator's pods do:
//! AUTH with them, nothing secret in `/proc/PID/cmdline` or `/proc/PID/environ`, rotation by
//! CONFIG SET without breaking the admin-authenticated replication link, and the readiness
//! probe and preStop hook reading the admin password from its file. Does I/O: spawns
//! processes, loopback sockets, temporary files.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod support;

use support::{redis_conn_to, wait_for};

const ADMIN: &str = "redispair-admin";

/// A directory of its own per test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d =
            std::env::temp_dir().join(format!("rp-engine-secrets-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn file(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The engine binary, killed on drop.
struct Engine {
    child: Child,
    port: u16,
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the engine with the operator's password flags and wait until it accepts the admin
/// password from the file.
async fn start(dir: &TempDir, admin_password: &str, extra: &[&str]) -> Engine {
    let pw_file = dir.file("password", "client-secret-1\n");
    let admin_file = dir.file("admin-password", &format!("{admin_password}\n"));
    let port = support::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_redispair-engine"))
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--persistence", "off"])
        .args(["--requirepass-file", &pw_file])
        .args(["--admin-user", ADMIN, "--admin-password-file", &admin_file])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("engine binary starts");
    let e = Engine { child, port };
    let url = admin_url(port, admin_password);
    wait_for(
        Duration::from_secs(20),
        "the engine to accept the admin password",
        || {
            let url = url.clone();
            async move { redis_conn_to(&url).await.is_ok() }
        },
    )
    .await;
    e
}

fn admin_url(port: u16, password: &str) -> String {
    format!("redis://{ADMIN}:{password}@127.0.0.1:{port}/")
}

fn default_url(port: u16, password: &str) -> String {
    format!("redis://:{password}@127.0.0.1:{port}/")
}

async fn q<T: redis::FromRedisValue>(
    con: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> redis::RedisResult<T> {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query_async(con).await
}

fn proc_text(pid: u32, what: &str) -> String {
    let bytes = std::fs::read(Path::new("/proc").join(pid.to_string()).join(what)).unwrap();
    String::from_utf8_lossy(&bytes).replace('\0', " ")
}

#[tokio::test]
async fn passwords_from_files_authenticate_and_never_show_in_the_process() {
    let dir = TempDir::new("auth");
    let e = start(&dir, "admin-secret", &[]).await;
    // The trailing newline of the files is not part of the passwords.
    let mut client = redis_conn_to(&default_url(e.port, "client-secret-1"))
        .await
        .expect("AUTH with the file's password");
    let pong: String = q(&mut client, &["PING"]).await.unwrap();
    assert_eq!(pong, "PONG");
    assert!(redis_conn_to(&default_url(e.port, "wrong")).await.is_err());
    // Unauthenticated: refused.
    let mut anon = redis_conn_to(&format!("redis://127.0.0.1:{}/", e.port))
        .await
        .unwrap();
    let err = q::<String>(&mut anon, &["GET", "k"]).await.unwrap_err();
    assert_eq!(err.code(), Some("NOAUTH"), "{err}");
    // What anyone on the node can read about the process names the files, not the secrets.
    let cmdline = proc_text(e.child.id(), "cmdline");
    let environ = proc_text(e.child.id(), "environ");
    for secret in ["client-secret-1", "admin-secret"] {
        assert!(!cmdline.contains(secret), "{cmdline}");
        assert!(!environ.contains(secret));
    }
    assert!(cmdline.contains("--requirepass-file"), "{cmdline}");
}

#[tokio::test]
async fn config_set_requirepass_rotates_without_cutting_clients_or_replication() {
    let dir_m = TempDir::new("rot-master");
    let dir_r = TempDir::new("rot-replica");
    let master = start(&dir_m, "admin-secret", &["--replication-mode", "async"]).await;
    let replica = start(&dir_r, "admin-secret", &[]).await;
    let mut ra = redis_conn_to(&admin_url(replica.port, "admin-secret"))
        .await
        .unwrap();
    let () = q(
        &mut ra,
        &["REPLICAOF", "127.0.0.1", &master.port.to_string()],
    )
    .await
    .unwrap();
    let link_up = || {
        let url = admin_url(replica.port, "admin-secret");
        async move {
            let mut c = redis_conn_to(&url).await.unwrap();
            let info: String = q(&mut c, &["INFO", "replication"]).await.unwrap();
            info.contains("master_link_status:up")
        }
    };
    // The replica authenticates to its master as the admin user (from its file).
    wait_for(Duration::from_secs(20), "the replication link", link_up).await;

    let mut old_client = redis_conn_to(&default_url(master.port, "client-secret-1"))
        .await
        .unwrap();
    let () = q(&mut old_client, &["SET", "before", "1"]).await.unwrap();
    // A default-user client can neither read nor replace the admin's credentials.
    let seen: Vec<String> = q(&mut old_client, &["CONFIG", "GET", "admin-*"])
        .await
        .unwrap();
    assert!(seen.is_empty(), "{seen:?}");
    let err = q::<()>(
        &mut old_client,
        &["CONFIG", "SET", "admin-password", "mine"],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some("NOPERM"), "{err}");
    let mut admin = redis_conn_to(&admin_url(master.port, "admin-secret"))
        .await
        .unwrap();
    let seen: Vec<String> = q(&mut admin, &["CONFIG", "GET", "admin-password"])
        .await
        .unwrap();
    assert_eq!(seen, ["admin-password", "admin-secret"]);
    // What the operator sends, on both engines, as the admin user.
    for port in [master.port, replica.port] {
        let mut admin = redis_conn_to(&admin_url(port, "admin-secret"))
            .await
            .unwrap();
        let () = q(
            &mut admin,
            &["CONFIG", "SET", "requirepass", "client-secret-2"],
        )
        .await
        .unwrap();
    }
    // New connections need the new password; the old one is refused.
    assert!(redis_conn_to(&default_url(master.port, "client-secret-1"))
        .await
        .is_err());
    let mut new_client = redis_conn_to(&default_url(master.port, "client-secret-2"))
        .await
        .expect("AUTH with the rotated password");
    // A connection authenticated before the rotation keeps working.
    let () = q(&mut old_client, &["SET", "after", "2"]).await.unwrap();
    let () = q(&mut new_client, &["SET", "new", "3"]).await.unwrap();
    // Replication never noticed: the writes reach the replica.
    wait_for(Duration::from_secs(20), "the writes on the replica", || {
        let url = admin_url(replica.port, "admin-secret");
        async move {
            let mut c = redis_conn_to(&url).await.unwrap();
            let n: i64 = q(&mut c, &["EXISTS", "before", "after", "new"])
                .await
                .unwrap();
            n == 3
        }
    })
    .await;
    let info: String = q(&mut ra, &["INFO", "replication"]).await.unwrap();
    assert!(info.contains("master_link_status:up"), "{info}");
    // The replica took the new password too.
    assert!(redis_conn_to(&default_url(replica.port, "client-secret-2"))
        .await
        .is_ok());
}

#[tokio::test]
async fn readiness_probe_and_pre_stop_hook_read_the_admin_password_file() {
    let dir = TempDir::new("probe");
    let e = start(&dir, "admin-secret", &[]).await;
    // A replica (of nothing reachable): the hook has no hand-over to wait for.
    let mut admin = redis_conn_to(&admin_url(e.port, "admin-secret"))
        .await
        .unwrap();
    let () = q(&mut admin, &["REPLICAOF", "127.0.0.1", "1"])
        .await
        .unwrap();
    let admin_file = dir.0.join("admin-password");
    let probe = |file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_redispair-operator"))
            .args(["probe", "--port", &e.port.to_string(), "--password-file"])
            .arg(file)
            .env_remove("REDISPAIR_ADMIN_PASSWORD")
            .output()
            .unwrap()
    };
    let ok = probe(&admin_file);
    assert!(ok.status.success(), "{ok:?}");
    let wrong = dir.file("wrong", "nope\n");
    assert!(!probe(Path::new(&wrong)).status.success());
    // The hook returns at once on a replica (nothing to hand over), having authenticated.
    let hook = Command::new(env!("CARGO_BIN_EXE_redispair-engine"))
        .args([
            "wait-handover",
            "--port",
            &e.port.to_string(),
            "--timeout",
            "10",
        ])
        .arg("--password-file")
        .arg(&admin_file)
        .env_remove("REDISPAIR_ADMIN_PASSWORD")
        .output()
        .unwrap();
    assert!(hook.status.success(), "{hook:?}");
    let stderr = String::from_utf8_lossy(&hook.stderr);
    assert!(
        !stderr.contains("WRONGPASS") && !stderr.contains("deadline"),
        "{stderr}"
    );
}
