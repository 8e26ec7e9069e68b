//! The `redis` crate, unchanged, against a real engine on loopback.

mod support;

use redis::AsyncCommands;
use support::{redis_conn, redis_conn_to, start_engine};

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
