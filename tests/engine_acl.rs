//! ACL users against a real engine on loopback, through the `redis` crate and redis-cli:
//! SETUSER rules (passwords, categories, subcommands, key and channel patterns, selectors),
//! the refusals and their ACL LOG entries, DRYRUN, `requirepass` as the default user's
//! password, the admin user as an ACL user only the admin may change, clients of a deleted
//! user or of revoked channels disconnected, and ACL SAVE / LOAD with `aclfile`. Does I/O:
//! sockets, processes (redis-cli), temporary files.

use std::time::Duration;
use tokio::process::Command;

mod support;

use redis::{AsyncCommands, Value};
use support::{redis_conn, redis_conn_to, start_engine, wait_for, RawClient};

async fn cmd<T: redis::FromRedisValue>(
    c: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> redis::RedisResult<T> {
    let mut q = redis::cmd(args[0]);
    for a in &args[1..] {
        q.arg(*a);
    }
    q.query_async(c).await
}

fn err_text(e: redis::RedisError) -> String {
    // The crate splits "CODE detail"; join them back as the server sent them.
    format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or(""))
        .trim()
        .to_string()
}

#[tokio::test]
async fn users_rules_and_refusals_follow_redis() {
    let h = start_engine(&[]).await;
    let mut admin = redis_conn(&h).await;
    let _: () = cmd(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "alice",
            "on",
            ">s3cret",
            "+@all",
            "-@dangerous",
            "~app:*",
            "%R~ro:*",
            "&news.*",
        ],
    )
    .await
    .unwrap();
    let listed: Vec<String> = cmd(&mut admin, &["ACL", "LIST"]).await.unwrap();
    let hash = redispair::engine::acl::hash_password(b"s3cret");
    assert!(
        listed.contains(&format!(
            "user alice on #{hash} ~app:* %R~ro:* resetchannels &news.* +@all -@dangerous"
        )),
        "{listed:?}"
    );
    assert!(listed.contains(&"user default on nopass ~* &* +@all".to_string()));

    let url = format!("redis://alice:s3cret@{}/", h.addr());
    let mut alice = redis_conn_to(&url).await.unwrap();
    // ACL WHOAMI is not @dangerous: allowed.
    let me: String = cmd(&mut alice, &["ACL", "WHOAMI"]).await.unwrap();
    assert_eq!(me, "alice");
    let _: () = alice.set("app:1", "v").await.unwrap();
    let e = alice.set::<_, _, ()>("other", "v").await.unwrap_err();
    assert_eq!(
        err_text(e),
        "NOPERM this user has no permissions to access one of the keys used as arguments"
    );
    // Read-only pattern: GET is allowed, SET is not.
    let v: Option<String> = alice.get("ro:1").await.unwrap();
    assert_eq!(v, None);
    assert!(alice.set::<_, _, ()>("ro:1", "v").await.is_err());
    let e = cmd::<()>(&mut alice, &["FLUSHALL"]).await.unwrap_err();
    assert_eq!(
        err_text(e),
        "NOPERM this user has no permissions to run the 'flushall' command"
    );
    let e = cmd::<i64>(&mut alice, &["PUBLISH", "sports", "x"])
        .await
        .unwrap_err();
    assert_eq!(
        err_text(e),
        "NOPERM this user has no permissions to access one of the channels used as arguments"
    );
    let n: i64 = cmd(&mut alice, &["PUBLISH", "news.uk", "x"]).await.unwrap();
    assert_eq!(n, 0);

    // The refusals are in ACL LOG, newest first, with Redis's fields.
    let log: Vec<Vec<Value>> = cmd(&mut admin, &["ACL", "LOG"]).await.unwrap();
    assert_eq!(log.len(), 4, "{log:?}");
    let field = |entry: &Vec<Value>, name: &str| -> String {
        let i = entry
            .iter()
            .position(|v| matches!(v, Value::BulkString(b) if b == name.as_bytes()))
            .unwrap();
        match &entry[i + 1] {
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            Value::Int(n) => n.to_string(),
            other => format!("{other:?}"),
        }
    };
    assert_eq!(field(&log[0], "reason"), "channel");
    assert_eq!(field(&log[0], "object"), "sports");
    assert_eq!(field(&log[1], "reason"), "command");
    assert_eq!(field(&log[1], "object"), "flushall");
    assert_eq!(field(&log[3], "reason"), "key");
    assert_eq!(field(&log[3], "object"), "other");
    assert_eq!(field(&log[3], "username"), "alice");
    assert_eq!(field(&log[3], "context"), "toplevel");

    // A wrong password: WRONGPASS, logged as an auth failure.
    let e = cmd::<()>(&mut admin, &["AUTH", "alice", "nope"])
        .await
        .unwrap_err();
    assert_eq!(
        err_text(e),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    let log: Vec<Vec<Value>> = cmd(&mut admin, &["ACL", "LOG", "1"]).await.unwrap();
    assert_eq!(field(&log[0], "reason"), "auth");
    assert_eq!(field(&log[0], "object"), "AUTH");

    // DRYRUN answers without running.
    let ok: String = cmd(&mut admin, &["ACL", "DRYRUN", "alice", "SET", "app:2", "x"])
        .await
        .unwrap();
    assert_eq!(ok, "OK");
    let no: String = cmd(&mut admin, &["ACL", "DRYRUN", "alice", "SET", "ro:2", "x"])
        .await
        .unwrap();
    assert_eq!(no, "This user has no permissions to access the 'ro:2' key");
    let exists: i64 = admin.exists("app:2").await.unwrap();
    assert_eq!(exists, 0);

    // Subcommands: everything but CLIENT KILL.
    let _: () = cmd(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "bob",
            "on",
            "nopass",
            "+@all",
            "-client|kill",
        ],
    )
    .await
    .unwrap();
    let user: Vec<Value> = cmd(&mut admin, &["ACL", "GETUSER", "bob"]).await.unwrap();
    assert_eq!(field(&user, "commands"), "+@all -client|kill");
    let mut bob = redis_conn_to(&format!("redis://bob:any@{}/", h.addr()))
        .await
        .unwrap();
    let _: i64 = cmd(&mut bob, &["CLIENT", "ID"]).await.unwrap();
    let e = cmd::<()>(&mut bob, &["CLIENT", "KILL", "ID", "999"])
        .await
        .unwrap_err();
    assert!(err_text(e).contains("'client|kill'"));

    // Bad modifiers are refused whole, with the modifier named.
    let e = cmd::<()>(&mut admin, &["ACL", "SETUSER", "carol", "on", "+nosuch"])
        .await
        .unwrap_err();
    assert_eq!(
        err_text(e),
        "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"
    );
    let carol: Value = cmd(&mut admin, &["ACL", "GETUSER", "carol"]).await.unwrap();
    assert_eq!(carol, Value::Nil);
    h.stop().await;
}

#[tokio::test]
async fn selectors_allow_what_any_of_them_allows() {
    let h = start_engine(&[]).await;
    let mut admin = redis_conn(&h).await;
    let _: () = cmd(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "sel",
            "on",
            "nopass",
            "-@all",
            "(+@write ~w:*)",
            "(+@read ~r:*)",
        ],
    )
    .await
    .unwrap();
    let mut c = redis_conn_to(&format!("redis://sel:x@{}/", h.addr()))
        .await
        .unwrap();
    let _: () = c.set("w:1", "v").await.unwrap();
    let _: Option<String> = c.get("r:1").await.unwrap();
    assert!(c.get::<_, Option<String>>("w:1").await.is_err());
    assert!(c.set::<_, _, ()>("r:1", "v").await.is_err());
    let listed: Vec<String> = cmd(&mut admin, &["ACL", "LIST"]).await.unwrap();
    assert!(
        listed.contains(&"user sel on nopass resetchannels -@all (~w:* resetchannels -@all +@write) (~r:* resetchannels -@all +@read)".to_string()),
        "{listed:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn requirepass_is_the_default_users_password() {
    let h = start_engine(&[("requirepass", "pw1")]).await;
    let mut raw = RawClient::connect(&h).await;
    raw.cmd(&["GET", "k"]).await;
    raw.expect(b"-NOAUTH Authentication required.\r\n").await;
    raw.cmd(&["AUTH", "default", "pw1"]).await;
    raw.expect(b"+OK\r\n").await;
    raw.cmd(&["ACL", "WHOAMI"]).await;
    raw.expect(b"$7\r\ndefault\r\n").await;
    // Rotation: CONFIG SET requirepass replaces the default user's passwords.
    raw.cmd(&["CONFIG", "SET", "requirepass", "pw2"]).await;
    raw.expect(b"+OK\r\n").await;
    raw.cmd(&["AUTH", "pw1"]).await;
    raw.expect(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
        .await;
    raw.cmd(&["HELLO", "2", "AUTH", "default", "pw2"]).await;
    raw.skip_until(b"modules\r\n*0\r\n").await;
    // Turning the default user off: new connections are not authenticated.
    raw.cmd(&["ACL", "SETUSER", "default", "nopass"]).await;
    raw.expect(b"+OK\r\n").await;
    let mut fresh = RawClient::connect(&h).await;
    fresh.cmd(&["PING"]).await;
    fresh.expect(b"+PONG\r\n").await;
    raw.cmd(&["ACL", "SETUSER", "default", "off"]).await;
    raw.expect(b"+OK\r\n").await;
    let mut late = RawClient::connect(&h).await;
    late.cmd(&["PING"]).await;
    late.expect(b"-NOAUTH Authentication required.\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn the_admin_user_is_an_acl_user_only_the_admin_may_change() {
    let h = start_engine(&[
        ("requirepass", "client-pw"),
        ("admin-user", "redispair-admin"),
        ("admin-password", "admin-pw"),
    ])
    .await;
    let mut admin = redis_conn_to(&format!("redis://redispair-admin:admin-pw@{}/", h.addr()))
        .await
        .unwrap();
    let users: Vec<String> = cmd(&mut admin, &["ACL", "USERS"]).await.unwrap();
    assert_eq!(users, vec!["default", "redispair-admin"]);
    let mut client = redis_conn_to(&format!("redis://:client-pw@{}/", h.addr()))
        .await
        .unwrap();
    let e = cmd::<()>(&mut client, &["ACL", "SETUSER", "redispair-admin", ">mine"])
        .await
        .unwrap_err();
    assert!(err_text(e).starts_with("NOPERM"));
    let e = cmd::<()>(&mut client, &["ACL", "DELUSER", "redispair-admin"])
        .await
        .unwrap_err();
    assert!(err_text(e).starts_with("NOPERM"));
    // The operator's commands stay the admin's alone.
    let e = cmd::<Value>(&mut client, &["REDISPAIR", "STATE"])
        .await
        .unwrap_err();
    assert!(err_text(e).starts_with("NOPERM"));
    // CONFIG SET admin-password (the operator's rotation) changes the ACL user's password.
    let _: () = cmd(
        &mut admin,
        &["CONFIG", "SET", "admin-password", "admin-pw2"],
    )
    .await
    .unwrap();
    assert!(
        redis_conn_to(&format!("redis://redispair-admin:admin-pw2@{}/", h.addr()))
            .await
            .is_ok()
    );
    assert!(
        redis_conn_to(&format!("redis://redispair-admin:admin-pw@{}/", h.addr()))
            .await
            .is_err()
    );
    h.stop().await;
}

#[tokio::test]
async fn clients_lose_their_connection_with_their_user_or_channels() {
    let h = start_engine(&[]).await;
    let mut admin = redis_conn(&h).await;
    let _: () = cmd(
        &mut admin,
        &[
            "ACL", "SETUSER", "temp", "on", ">pw", "+@all", "~*", "&chan",
        ],
    )
    .await
    .unwrap();
    // A subscriber whose channel is revoked is disconnected.
    let mut sub = RawClient::connect(&h).await;
    sub.cmd(&["AUTH", "temp", "pw"]).await;
    sub.expect(b"+OK\r\n").await;
    sub.cmd(&["SUBSCRIBE", "chan"]).await;
    sub.expect(b"*3\r\n$9\r\nsubscribe\r\n$4\r\nchan\r\n:1\r\n")
        .await;
    let _: () = cmd(&mut admin, &["ACL", "SETUSER", "temp", "resetchannels"])
        .await
        .unwrap();
    sub.expect_closed().await;
    // A deleted user's clients are disconnected; the one that deleted it gets its reply first.
    let mut other = RawClient::connect(&h).await;
    other.cmd(&["AUTH", "temp", "pw"]).await;
    other.expect(b"+OK\r\n").await;
    let mut me = RawClient::connect(&h).await;
    me.cmd(&["AUTH", "temp", "pw"]).await;
    me.expect(b"+OK\r\n").await;
    me.cmd(&["ACL", "DELUSER", "temp"]).await;
    me.expect(b":1\r\n").await;
    me.expect_closed().await;
    other.expect_closed().await;
    h.stop().await;
}

/// A connection keeps the rules of its user between commands (`AclUserCache`): a change to the
/// user, another user's change, AUTH to another user and ACL LOAD must all apply from the very
/// next command, as in Redis.
#[tokio::test]
async fn a_clients_rights_follow_its_user_from_the_next_command() {
    let dir = support::temp_dir("acl-next-command");
    let file = dir.join("users.acl");
    std::fs::write(&file, "user default on nopass ~* &* +@all\n").unwrap();
    let h = start_engine(&[("aclfile", file.to_str().unwrap())]).await;
    let mut admin = redis_conn(&h).await;
    let conn = admin.clone();
    let setuser = move |rules: &'static [&'static str]| {
        let mut admin = conn.clone();
        async move {
            let mut args = vec!["ACL", "SETUSER", "u"];
            args.extend_from_slice(rules);
            let _: () = cmd(&mut admin, &args).await.unwrap();
        }
    };
    setuser(&["on", ">pw", "~*", "+@all"]).await;
    let denied = b"-NOPERM this user has no permissions to run the 'get' command\r\n";
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["AUTH", "u", "pw"]).await;
    c.expect(b"+OK\r\n").await;
    c.cmd(&["GET", "k"]).await;
    c.expect(b"$-1\r\n").await;
    // The user loses GET: the connection's next GET is refused, SET still runs.
    setuser(&["-get"]).await;
    c.cmd(&["GET", "k"]).await;
    c.expect(denied).await;
    c.cmd(&["SET", "k", "v"]).await;
    c.expect(b"+OK\r\n").await;
    // A change to another user leaves it as it is; getting GET back applies at once.
    let _: () = cmd(&mut admin, &["ACL", "SETUSER", "other", "on", "+@all"])
        .await
        .unwrap();
    c.cmd(&["GET", "k"]).await;
    c.expect(denied).await;
    setuser(&["+get"]).await;
    c.cmd(&["GET", "k"]).await;
    c.expect(b"$1\r\nv\r\n").await;
    // AUTH as another user (the default one) and back: each command runs with the rules of
    // the user the client is now.
    setuser(&["-get"]).await;
    c.cmd(&["AUTH", "default", "any"]).await;
    c.expect(b"+OK\r\n").await;
    c.cmd(&["GET", "k"]).await;
    c.expect(b"$1\r\nv\r\n").await;
    c.cmd(&["AUTH", "u", "pw"]).await;
    c.expect(b"+OK\r\n").await;
    c.cmd(&["GET", "k"]).await;
    c.expect(denied).await;
    // The default user's own rules change for the connections that run as it.
    let mut d = RawClient::connect(&h).await;
    d.cmd(&["GET", "k"]).await;
    d.expect(b"$1\r\nv\r\n").await;
    let _: () = cmd(&mut admin, &["ACL", "SETUSER", "default", "-get"])
        .await
        .unwrap();
    d.cmd(&["GET", "k"]).await;
    d.expect(denied).await;
    // ACL LOAD replaces every user: the file's default user has GET again.
    let _: () = cmd(&mut admin, &["ACL", "LOAD"]).await.unwrap();
    d.cmd(&["GET", "k"]).await;
    d.expect(b"$1\r\nv\r\n").await;
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn acl_save_and_load_use_the_acl_file() {
    let dir = support::temp_dir("acl-file");
    let file = dir.join("users.acl");
    std::fs::write(&file, "user reader on nopass ~* resetchannels -@all +get\n").unwrap();
    let h = start_engine(&[("aclfile", file.to_str().unwrap())]).await;
    let mut admin = redis_conn(&h).await;
    let users: Vec<String> = cmd(&mut admin, &["ACL", "USERS"]).await.unwrap();
    assert_eq!(users, vec!["default", "reader"]);
    let _: () = cmd(
        &mut admin,
        &["ACL", "SETUSER", "writer", "on", ">w", "~w:*", "+set"],
    )
    .await
    .unwrap();
    let _: () = cmd(&mut admin, &["ACL", "SAVE"]).await.unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("user reader on nopass ~* resetchannels -@all +get\n"),
        "{text}"
    );
    assert!(text.contains("user writer on #"), "{text}");
    // LOAD replaces the users with the file's; a bad file changes nothing.
    let _: () = cmd(&mut admin, &["ACL", "DELUSER", "writer"])
        .await
        .unwrap();
    let _: () = cmd(&mut admin, &["ACL", "LOAD"]).await.unwrap();
    let users: Vec<String> = cmd(&mut admin, &["ACL", "USERS"]).await.unwrap();
    assert_eq!(users, vec!["default", "reader", "writer"]);
    std::fs::write(&file, "user broken on +nosuch\n").unwrap();
    let e = cmd::<()>(&mut admin, &["ACL", "LOAD"]).await.unwrap_err();
    assert!(err_text(e).contains("+nosuch"));
    let users: Vec<String> = cmd(&mut admin, &["ACL", "USERS"]).await.unwrap();
    assert_eq!(users.len(), 3);
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn redis_cli_authenticates_as_an_acl_user() {
    let h = start_engine(&[]).await;
    let mut admin = redis_conn(&h).await;
    let _: () = cmd(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "cli",
            "on",
            ">clipw",
            "+@read",
            "+@connection",
            "+acl|whoami",
            "~*",
        ],
    )
    .await
    .unwrap();
    let port = h.addr().port().to_string();
    // tokio's Command: the engine runs on this test's runtime and must keep answering.
    let run = |args: &'static [&'static str]| {
        let port = port.clone();
        async move {
            let out = Command::new("redis-cli")
                .args([
                    "-p",
                    &port,
                    "--user",
                    "cli",
                    "--pass",
                    "clipw",
                    "--no-auth-warning",
                ])
                .args(args)
                .output()
                .await
                .expect("redis-cli runs");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        }
    };
    assert_eq!(run(&["ACL", "WHOAMI"]).await, "cli");
    assert_eq!(run(&["GET", "x"]).await, "");
    assert_eq!(
        run(&["SET", "x", "1"]).await,
        "NOPERM this user has no permissions to run the 'set' command"
    );
    wait_for(Duration::from_secs(5), "the refusal in ACL LOG", || {
        let mut admin = admin.clone();
        async move {
            let log: Vec<Value> = cmd(&mut admin, &["ACL", "LOG"]).await.unwrap();
            !log.is_empty()
        }
    })
    .await;
    h.stop().await;
}
