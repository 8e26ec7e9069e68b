//! maxmemory eviction over TCP, with the counting allocator installed so the engine sees real
//! heap use. The allocator counts the whole test process, so every scenario runs in one test,
//! one after the other, with limits set relative to the current use and margins of megabytes.

mod support;

use redis::aio::MultiplexedConnection;
use redis::Value;
use support::{redis_conn, start_engine};

#[global_allocator]
static ALLOC: redispair::engine::memory::CountingAllocator =
    redispair::engine::memory::CountingAllocator;

const VALUE_SIZE: usize = 1024;

async fn q(c: &mut MultiplexedConnection, args: &[&[u8]]) -> Result<Value, String> {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async::<Value>(c)
        .await
        .map_err(|e| format!("{} {}", e.code().unwrap_or("ERR"), e.detail().unwrap_or("")))
}

async fn qs(c: &mut MultiplexedConnection, args: &[&str]) -> Result<Value, String> {
    let v: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    q(c, &v).await
}

async fn info_field(c: &mut MultiplexedConnection, section: &str, field: &str) -> u64 {
    let text = match qs(c, &["INFO", section]).await {
        Ok(Value::BulkString(b)) => String::from_utf8(b).unwrap(),
        Ok(Value::VerbatimString { text, .. }) => text,
        other => panic!("INFO failed: {other:?}"),
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO {section}"))
        .trim()
        .parse()
        .unwrap()
}

async fn exists(c: &mut MultiplexedConnection, key: &str) -> bool {
    qs(c, &["EXISTS", key]).await == Ok(Value::Int(1))
}

/// Start a scenario: empty dataset, the given policy, and a limit `headroom` bytes above the
/// current use.
async fn scenario(c: &mut MultiplexedConnection, policy: &str, headroom: u64) {
    qs(c, &["CONFIG", "SET", "maxmemory", "0"]).await.unwrap();
    qs(c, &["FLUSHALL"]).await.unwrap();
    qs(c, &["CONFIG", "SET", "maxmemory-policy", policy])
        .await
        .unwrap();
    let used = info_field(c, "memory", "used_memory").await;
    let limit = (used + headroom).to_string();
    qs(c, &["CONFIG", "SET", "maxmemory", &limit])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_policies() {
    let h = start_engine(&[]).await;
    let mut c = redis_conn(&h).await;
    let value = "v".repeat(VALUE_SIZE);

    // noeviction: writes fail with Redis's OOM error once over the limit; reads and DEL work.
    scenario(&mut c, "noeviction", 1 << 20).await;
    let mut oom = None;
    for i in 0..10_000 {
        if let Err(e) = qs(&mut c, &["SET", &format!("k{i}"), &value]).await {
            oom = Some((i, e));
            break;
        }
    }
    let (written, e) = oom.expect("writes are refused before 10 MB");
    assert_eq!(e, "OOM command not allowed when used memory > 'maxmemory'.");
    assert!(written > 100, "only {written} keys fitted in 1 MB");
    assert!(exists(&mut c, "k0").await);
    assert_eq!(qs(&mut c, &["DEL", "k0"]).await, Ok(Value::Int(1)));
    assert_eq!(info_field(&mut c, "stats", "evicted_keys").await, 0);

    // volatile-ttl: keys with a TTL go soonest deadline first; persistent keys stay.
    scenario(&mut c, "volatile-ttl", 1 << 20).await;
    for i in 0..200 {
        qs(&mut c, &["SET", &format!("keep{i}"), &value])
            .await
            .unwrap();
    }
    let base = 4_102_444_800_000i64;
    for i in 0..3000 {
        let k = format!("v{i}");
        qs(&mut c, &["SET", &k, &value]).await.unwrap();
        qs(&mut c, &["PEXPIREAT", &k, &(base + i).to_string()])
            .await
            .unwrap();
    }
    assert!(info_field(&mut c, "stats", "evicted_keys").await > 500);
    for i in 0..200 {
        assert!(exists(&mut c, &format!("keep{i}")).await, "keep{i} evicted");
    }
    // The survivors are exactly the latest deadlines.
    let mut seen_alive = false;
    for i in 0..3000 {
        let alive = exists(&mut c, &format!("v{i}")).await;
        assert!(
            !seen_alive || alive,
            "v{i} evicted after a later deadline survived"
        );
        seen_alive |= alive;
    }
    assert!(seen_alive);

    // A volatile policy with only persistent keys cannot free anything: OOM.
    scenario(&mut c, "volatile-lru", 1 << 20).await;
    let mut refused = false;
    for i in 0..10_000 {
        if qs(&mut c, &["SET", &format!("p{i}"), &value])
            .await
            .is_err()
        {
            refused = true;
            break;
        }
    }
    assert!(refused);

    // allkeys-lru: keys idle for a long time go before fresh ones.
    scenario(&mut c, "allkeys-lru", 3 << 20).await;
    qs(&mut c, &["SET", "tmp", &value]).await.unwrap();
    let payload = match qs(&mut c, &["DUMP", "tmp"]).await {
        Ok(Value::BulkString(b)) => b,
        other => panic!("{other:?}"),
    };
    qs(&mut c, &["DEL", "tmp"]).await.unwrap();
    for i in 0..1000 {
        let k = format!("old{i}");
        q(
            &mut c,
            &[
                b"RESTORE",
                k.as_bytes(),
                b"0",
                &payload,
                b"IDLETIME",
                b"100000",
            ],
        )
        .await
        .unwrap();
    }
    for i in 0..2000 {
        qs(&mut c, &["SET", &format!("fresh{i}"), &value])
            .await
            .unwrap();
    }
    assert!(info_field(&mut c, "stats", "evicted_keys").await > 100);
    let mut fresh_alive = 0;
    for i in 0..2000 {
        fresh_alive += exists(&mut c, &format!("fresh{i}")).await as usize;
    }
    let mut old_alive = 0;
    for i in 0..1000 {
        old_alive += exists(&mut c, &format!("old{i}")).await as usize;
    }
    assert!(
        fresh_alive >= 1900,
        "fresh keys evicted: {fresh_alive} left"
    );
    assert!(old_alive < 1000);

    // allkeys-lfu: frequently used keys survive rarely used ones.
    scenario(&mut c, "allkeys-lfu", 2 << 20).await;
    for i in 0..200 {
        let k = format!("hot{i}");
        q(
            &mut c,
            &[b"RESTORE", k.as_bytes(), b"0", &payload, b"FREQ", b"255"],
        )
        .await
        .unwrap();
    }
    for i in 0..4000 {
        qs(&mut c, &["SET", &format!("cold{i}"), &value])
            .await
            .unwrap();
    }
    let mut hot_alive = 0;
    for i in 0..200 {
        hot_alive += exists(&mut c, &format!("hot{i}")).await as usize;
    }
    assert!(hot_alive >= 195, "hot keys evicted: {hot_alive} left");

    // The random policies evict; volatile-random only among keys with a TTL.
    scenario(&mut c, "volatile-random", 1 << 20).await;
    for i in 0..100 {
        qs(&mut c, &["SET", &format!("keep{i}"), &value])
            .await
            .unwrap();
    }
    for i in 0..3000 {
        let k = format!("r{i}");
        qs(&mut c, &["SET", &k, &value, "EX", "100000"])
            .await
            .unwrap();
    }
    for i in 0..100 {
        assert!(exists(&mut c, &format!("keep{i}")).await);
    }
    scenario(&mut c, "allkeys-random", 1 << 20).await;
    let before = info_field(&mut c, "stats", "evicted_keys").await;
    for i in 0..3000 {
        qs(&mut c, &["SET", &format!("x{i}"), &value])
            .await
            .unwrap();
    }
    assert!(info_field(&mut c, "stats", "evicted_keys").await > before);

    // Small keys live inside the keyspace table itself: evicting one frees no heap block, but
    // its slot is reused by the next insert. Eviction must account for that instead of wiping
    // the dataset (or refusing writes) while the table's capacity stays allocated.
    scenario(&mut c, "allkeys-lru", 1 << 20).await;
    let before = info_field(&mut c, "stats", "evicted_keys").await;
    for i in 0..30_000 {
        let r = qs(&mut c, &["SET", &format!("s{i}"), "v"]).await;
        assert!(r.is_ok(), "small write {i} refused: {r:?}");
    }
    let keys = match qs(&mut c, &["DBSIZE"]).await {
        Ok(Value::Int(n)) => n,
        other => panic!("{other:?}"),
    };
    assert!(keys > 3_000, "only {keys} small keys kept in 1 MB");
    assert!(info_field(&mut c, "stats", "evicted_keys").await > before);
    h.stop().await;
}
