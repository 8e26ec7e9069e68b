//! The `redis` crate, unchanged, against a real engine on loopback.

mod support;

use std::time::Duration;

use redis::AsyncCommands;
use support::{redis_conn, redis_conn_to, start_engine, wait_for, RawClient};

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

/// A field of INFO (any section) as a number.
async fn info_field(con: &mut redis::aio::MultiplexedConnection, field: &str) -> i64 {
    let info: String = q(con, &["INFO", "all"]).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn redis_crate_basic_commands() {
    let h = start_engine(&[]).await;
    let mut con = redis_conn(&h).await;
    let _: () = con.set("a", "1").await.unwrap();
    let v: String = con.get("a").await.unwrap();
    assert_eq!(v, "1");
    let n: i64 = con.incr("a", 41).await.unwrap();
    assert_eq!(n, 42);
    let missing: Option<String> = con.get("nope").await.unwrap();
    assert_eq!(missing, None);
    let (x, y): (i64, Option<String>) = redis::pipe()
        .atomic()
        .incr("c", 1)
        .get("d")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!((x, y), (1, None));
    h.stop().await;
}

#[tokio::test]
async fn redis_crate_resp3_connection() {
    let h = start_engine(&[]).await;
    let mut con = redis_conn_to(&format!("redis://{}/?protocol=resp3", h.addr()))
        .await
        .unwrap();
    let _: () = con.set("k3", "v").await.unwrap();
    let v: String = con.get("k3").await.unwrap();
    assert_eq!(v, "v");
    let info: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(info.contains("resp=3"), "{info}");
    // Maps arrive as RESP3 maps and still convert to pairs.
    let cfg: Vec<(String, String)> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(cfg, vec![("maxmemory".to_string(), "0".to_string())]);
    h.stop().await;
}

#[tokio::test]
async fn redis_crate_large_pipeline_and_info() {
    let h = start_engine(&[]).await;
    let mut con = redis_conn(&h).await;
    let mut pipe = redis::pipe();
    for i in 0..2000 {
        pipe.set(format!("p:{i}"), i).ignore();
    }
    pipe.get("p:1999");
    let (last,): (i64,) = pipe.query_async(&mut con).await.unwrap();
    assert_eq!(last, 1999);
    let n: i64 = redis::cmd("DBSIZE").query_async(&mut con).await.unwrap();
    assert_eq!(n, 2000);
    let info: redis::InfoDict = redis::cmd("INFO").query_async(&mut con).await.unwrap();
    assert_eq!(info.get::<String>("role").as_deref(), Some("master"));
    assert!(info.get::<i64>("connected_clients").unwrap_or(0) >= 1);
    assert_eq!(info.get::<i64>("loading"), Some(0));
    h.stop().await;
}

#[tokio::test]
async fn redis_crate_sync_connection_from_a_thread() {
    let h = start_engine(&[]).await;
    let url = format!("redis://{}/", h.addr());
    let got = tokio::task::spawn_blocking(move || {
        let client = redis::Client::open(url).unwrap();
        let mut con = client.get_connection().unwrap();
        redis::cmd("SET")
            .arg("sync")
            .arg("yes")
            .exec(&mut con)
            .unwrap();
        let v: String = redis::cmd("GET").arg("sync").query(&mut con).unwrap();
        let e = redis::cmd("GET")
            .arg("a")
            .arg("b")
            .query::<String>(&mut con)
            .unwrap_err();
        (v, e.to_string())
    })
    .await
    .unwrap();
    assert_eq!(got.0, "yes");
    assert!(got.1.contains("wrong number of arguments"), "{}", got.1);
    h.stop().await;
}

/// CLIENT PAUSE WRITE holds writes and may-replicate commands (PUBLISH, PFCOUNT, EVAL) as
/// blocked clients, lets reads and `no-writes` scripts run, and holds expiry by access: an
/// expired key reads as missing but is only deleted (and counted) once the pause ends.
#[tokio::test]
async fn client_pause_write_holds_may_replicate_commands_and_lazy_expiry() {
    let h = start_engine(&[]).await;
    let mut admin = redis_conn(&h).await;
    let _: () = q(&mut admin, &["PFADD", "hll", "a"]).await.unwrap();
    let _: () = q(&mut admin, &["SET", "gone", "v", "PX", "1"])
        .await
        .unwrap();
    let expired_before = info_field(&mut admin, "expired_keys").await;
    let _: () = q(&mut admin, &["CLIENT", "PAUSE", "100000", "WRITE"])
        .await
        .unwrap();
    let mut held = Vec::new();
    for args in [
        vec!["SET", "k", "v"],
        vec!["PUBLISH", "ch", "m"],
        vec!["PFCOUNT", "hll"],
        vec!["EVAL", "return 1", "0"],
    ] {
        let mut c = RawClient::connect(&h).await;
        c.cmd(&args).await;
        held.push(c);
    }
    wait_for(Duration::from_secs(10), "4 paused clients", || {
        let mut admin = admin.clone();
        async move { info_field(&mut admin, "blocked_clients").await == 4 }
    })
    .await;
    // Reads and a script that declared no-writes run meanwhile.
    let ro: i64 = q(
        &mut admin,
        &["EVAL", "#!lua flags=no-writes\nreturn 7", "0"],
    )
    .await
    .unwrap();
    assert_eq!(ro, 7);
    // The expired key reads as missing, and is not deleted while paused.
    wait_for(Duration::from_secs(10), "the key to expire", || {
        let mut admin = admin.clone();
        async move {
            q::<Option<String>>(&mut admin, &["GET", "gone"])
                .await
                .unwrap()
                .is_none()
        }
    })
    .await;
    assert_eq!(q::<i64>(&mut admin, &["DBSIZE"]).await.unwrap(), 2);
    assert_eq!(info_field(&mut admin, "expired_keys").await, expired_before);
    let still: Option<String> = q(&mut admin, &["GET", "k"]).await.unwrap();
    assert_eq!(still, None, "the held SET did not run");
    let _: () = q(&mut admin, &["CLIENT", "UNPAUSE"]).await.unwrap();
    let want: [&[u8]; 4] = [b"+OK\r\n", b":0\r\n", b":1\r\n", b":1\r\n"];
    for (c, want) in held.iter_mut().zip(want) {
        c.expect(want).await;
    }
    assert_eq!(info_field(&mut admin, "blocked_clients").await, 0);
    let gone: Option<String> = q(&mut admin, &["GET", "gone"]).await.unwrap();
    assert_eq!(gone, None);
    assert_eq!(
        info_field(&mut admin, "expired_keys").await,
        expired_before + 1
    );
    h.stop().await;
}

/// Read-only scripts may not run may-replicate commands either (CLIENT PAUSE WRITE lets them
/// run), as in Redis.
#[tokio::test]
async fn read_only_scripts_refuse_publish() {
    let h = start_engine(&[]).await;
    let mut con = redis_conn(&h).await;
    for args in [
        vec!["EVAL_RO", "return redis.call('publish','ch','m')", "0"],
        vec![
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('publish','ch','m')",
            "0",
        ],
    ] {
        let e = q::<i64>(&mut con, &args).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("Write commands are not allowed from read-only scripts"),
            "{e}"
        );
    }
    let n: i64 = q(
        &mut con,
        &["EVAL", "return redis.call('publish','ch','m')", "0"],
    )
    .await
    .unwrap();
    assert_eq!(n, 0);
    // The may-replicate flag is internal: COMMAND INFO does not show it (Redis hides it).
    let info: redis::Value = q(&mut con, &["COMMAND", "INFO", "publish", "pfcount"])
        .await
        .unwrap();
    let text = format!("{info:?}");
    assert!(
        text.contains("pubsub") && !text.contains("may_replicate"),
        "{text}"
    );
    h.stop().await;
}
