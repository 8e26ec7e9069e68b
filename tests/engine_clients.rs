//! The `redis` crate, unchanged, against a real engine on loopback.

mod support;

use redis::AsyncCommands;
use support::{redis_conn, start_engine};

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
