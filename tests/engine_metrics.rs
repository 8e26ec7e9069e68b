//! The engine's Prometheus endpoint, scraped over HTTP from real engines on loopback: every
//! family is there with its type and labels, and values move after commands, expiries,
//! evictions and semi-sync writes; a replica shows its role and link.

mod repl_support;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use redis::AsyncCommands;
use repl_support::{replicaof, start_pair, EngineProcess};
use support::{free_port, temp_dir, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GET /metrics (or `path`) with a bare HTTP/1.1 request: (status line, content type, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> (String, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().to_string();
    let ctype = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or_default()
        .to_string();
    (status, ctype, body.to_string())
}

/// A scrape: sample (`name{labels}`) → value, and family → type.
struct Scrape {
    samples: BTreeMap<String, f64>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    async fn of(addr: std::net::SocketAddr) -> Scrape {
        let (status, ctype, body) = get(addr, "/metrics").await;
        assert!(status.contains("200"), "{status}");
        assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
        assert!(body.ends_with("# EOF\n"), "no EOF in\n{body}");
        let mut samples = BTreeMap::new();
        let mut types = BTreeMap::new();
        for line in body.lines() {
            if let Some(t) = line.strip_prefix("# TYPE ") {
                let (name, kind) = t.split_once(' ').unwrap();
                types.insert(name.to_string(), kind.to_string());
            } else if !line.starts_with('#') {
                let (series, value) = line.rsplit_once(' ').unwrap();
                samples.insert(series.to_string(), value.parse().unwrap());
            }
        }
        Scrape { samples, types }
    }

    fn value(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("{series} missing; have {:#?}", self.samples.keys()))
    }

    fn kind(&self, family: &str) -> &str {
        self.types
            .get(family)
            .unwrap_or_else(|| panic!("family {family} missing"))
    }
}

#[tokio::test]
async fn a_master_shows_commands_keys_memory_log_and_semi_sync_waits() {
    let dir_path = temp_dir("metrics-master");
    let dir = dir_path.to_str().unwrap();
    let mport = free_port().to_string();
    let (m, r, mut mc, mut rc) = start_pair(
        &[
            ("metrics-port", &mport),
            ("persistence", "on"),
            ("dir", dir),
            ("appendfsync", "always"),
            ("replication-mode", "semi-sync"),
        ],
        &[("metrics-port", &free_port().to_string())],
    )
    .await;
    assert_eq!(m.metrics_addrs.len(), 1);
    let maddr = m.metrics_addrs[0];
    let raddr = r.metrics_addrs[0];

    let before = Scrape::of(maddr).await;
    for (family, kind) in [
        ("redispair_engine_build_info", "gauge"),
        ("redispair_engine_commands", "counter"),
        ("redispair_engine_command_failures", "counter"),
        ("redispair_engine_command_rejections", "counter"),
        ("redispair_engine_command_duration_seconds", "histogram"),
        ("redispair_engine_keys", "gauge"),
        ("redispair_engine_keys_with_expiry", "gauge"),
        ("redispair_engine_expired_keys", "counter"),
        ("redispair_engine_evicted_keys", "counter"),
        ("redispair_engine_memory_used_bytes", "gauge"),
        ("redispair_engine_memory_rss_bytes", "gauge"),
        ("redispair_engine_connected_clients", "gauge"),
        ("redispair_engine_role", "gauge"),
        ("redispair_engine_term", "gauge"),
        ("redispair_engine_replication_offset_bytes", "gauge"),
        ("redispair_engine_connected_replicas", "gauge"),
        ("redispair_engine_replica_lag_bytes", "gauge"),
        ("redispair_engine_semi_sync_degraded", "gauge"),
        ("redispair_engine_reply_wait_seconds", "histogram"),
        ("redispair_engine_log_bytes", "gauge"),
        ("redispair_engine_log_fsync_duration_seconds", "histogram"),
        ("redispair_engine_log_write_ok", "gauge"),
        ("redispair_engine_log_write_errors", "counter"),
    ] {
        assert_eq!(before.kind(family), kind, "{family}");
    }
    assert_eq!(before.value("redispair_engine_role{role=\"master\"}"), 1.0);
    assert_eq!(before.value("redispair_engine_log_write_ok"), 1.0);
    assert_eq!(
        before.value("redispair_engine_replication_mode{mode=\"semi-sync\"}"),
        1.0
    );

    // Attach the replica: semi-sync writes now wait for its acknowledgement.
    replicaof(&mut rc, m.addr().port()).await;
    wait_for(Duration::from_secs(20), "the replica attached", || async {
        Scrape::of(maddr)
            .await
            .value("redispair_engine_connected_replicas")
            == 1.0
    })
    .await;

    let _: () = mc.set("a", "1").await.unwrap();
    let _: () = mc.set("b", "2").await.unwrap();
    let _: () = mc.set_ex("c", "3", 1000).await.unwrap();
    let _: Option<String> = mc.get("a").await.unwrap();
    let _: Option<String> = mc.get("missing").await.unwrap();
    let _: i64 = mc.incr("a", 1).await.unwrap();
    let _: redis::RedisResult<i64> = mc.lpush("a", 1).await;
    // A key with a past expiry is removed on access: an expiry.
    let _: () = redis::cmd("SET")
        .arg("gone")
        .arg("x")
        .arg("PX")
        .arg(1)
        .query_async(&mut mc)
        .await
        .unwrap();
    wait_for(Duration::from_secs(10), "the key expired", || {
        let mut mc = mc.clone();
        async move { !mc.exists::<_, bool>("gone").await.unwrap() }
    })
    .await;

    let after = Scrape::of(maddr).await;
    // SET a, SET b, SET gone (set_ex sends SETEX).
    let set = "redispair_engine_commands_total{command=\"set\"}";
    assert_eq!(after.value(set), 3.0);
    assert_eq!(
        after.value("redispair_engine_commands_total{command=\"setex\"}"),
        1.0
    );
    assert_eq!(
        after.value("redispair_engine_command_duration_seconds_count{command=\"set\"}"),
        3.0
    );
    assert_eq!(
        after
            .value("redispair_engine_command_duration_seconds_bucket{le=\"+Inf\",command=\"set\"}"),
        3.0
    );
    assert_eq!(
        after.value("redispair_engine_command_failures_total{command=\"lpush\"}"),
        1.0
    );
    assert_eq!(after.value("redispair_engine_keys{db=\"db0\"}"), 3.0);
    assert_eq!(
        after.value("redispair_engine_keys_with_expiry{db=\"db0\"}"),
        1.0
    );
    assert!(after.value("redispair_engine_expired_keys_total") >= 1.0);
    assert!(after.value("redispair_engine_keyspace_hits_total") >= 1.0);
    assert!(after.value("redispair_engine_keyspace_misses_total") >= 1.0);
    // (used_memory counts through the binary's allocator: checked in the binary test below.)
    assert!(after.value("redispair_engine_memory_rss_bytes") > 0.0);
    assert!(after.value("redispair_engine_connected_clients") >= 1.0);
    assert!(
        after.value("redispair_engine_replication_offset_bytes")
            > before.value("redispair_engine_replication_offset_bytes")
    );
    // Writes waited for the replica (semi-sync) and the disk (appendfsync always).
    assert!(after.value("redispair_engine_reply_wait_seconds_count") >= 1.0);
    assert!(after.value("redispair_engine_log_fsync_duration_seconds_count") >= 1.0);
    assert!(after.value("redispair_engine_log_bytes") > 0.0);
    let lag = after
        .samples
        .keys()
        .find(|k| k.starts_with("redispair_engine_replica_lag_bytes{replica=\"127.0.0.1:"))
        .expect("a lag series for the replica");
    assert!(after.value(lag) >= 0.0);

    // The replica's own view.
    let rs = Scrape::of(raddr).await;
    assert_eq!(rs.value("redispair_engine_role{role=\"replica\"}"), 1.0);
    assert_eq!(rs.value("redispair_engine_role{role=\"master\"}"), 0.0);
    assert_eq!(rs.value("redispair_engine_master_link_up"), 1.0);
    assert_eq!(rs.value("redispair_engine_persistence_enabled"), 0.0);

    // Anything but /metrics is not found.
    let (status, _, _) = get(maddr, "/").await;
    assert!(status.contains("404"), "{status}");
    r.stop().await;
    m.stop().await;
    let _ = std::fs::remove_dir_all(&dir_path);
}

/// The engine binary (its `--metrics-port` flag, and the counting allocator that maxmemory
/// needs: the test process does not install it).
#[tokio::test]
async fn the_binary_serves_metrics_and_counts_evictions() {
    let mport = free_port();
    let dir = temp_dir("metrics-evict");
    let mut p = EngineProcess::start(
        free_port(),
        &dir,
        &[
            ("metrics-port", &mport.to_string()),
            ("maxmemory-policy", "allkeys-random"),
        ],
    )
    .await;
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], mport).into();
    let mut c = p.conn().await;
    // A limit 1 MB above what the engine uses now, so a few hundred values overflow it.
    let used = Scrape::of(addr)
        .await
        .value("redispair_engine_memory_used_bytes") as u64;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(used + (1 << 20))
        .query_async(&mut c)
        .await
        .unwrap();
    let value = "x".repeat(10_000);
    let mut i = 0u64;
    while Scrape::of(addr)
        .await
        .value("redispair_engine_evicted_keys_total")
        == 0.0
    {
        for _ in 0..50 {
            let _: () = c.set(format!("k{i}"), &value).await.unwrap();
            i += 1;
        }
        assert!(i < 100_000, "nothing was evicted after {i} writes");
    }
    let s = Scrape::of(addr).await;
    assert!(s.value("redispair_engine_memory_max_bytes") > 0.0);
    assert_eq!(s.value("redispair_engine_persistence_enabled"), 1.0);
    p.child.kill().unwrap();
    let _ = p.child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_endpoint_is_off_by_default() {
    let m = support::start_engine(&[]).await;
    assert!(m.metrics_addrs.is_empty());
    m.stop().await;
}

/// `INFO memory` of an engine process (the counting allocator is installed in the binary only).
async fn memory_field(c: &mut redis::aio::MultiplexedConnection, field: &str) -> u64 {
    repl_support::info_field(c, "memory", field)
        .await
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO memory has no {field}"))
}

/// Memory comes back after big requests and big values, measured by `used_memory` (the
/// allocator's live bytes): a connection that sent a 1 MB value, or a 100 000-member SADD,
/// gives back the buffers that grew for it once it is idle (it kept ~2 MB for its whole life,
/// so Redis's own "UNLINK can reclaim memory" test failed), and UNLINK / FLUSHALL ASYNC free big
/// values on the lazyfree thread, counted in `lazyfreed_objects` as Redis counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_requests_and_values_give_their_memory_back() {
    let dir = temp_dir("memory-back");
    let e = EngineProcess::start(free_port(), &dir, &[]).await;
    let mut c = e.conn().await;
    let base = memory_field(&mut c, "used_memory").await;

    // The same connection stays open throughout.
    let _: () = c.set("big", vec![b'x'; 1 << 20]).await.unwrap();
    let members: Vec<u32> = (0..100_000).collect();
    let added: i64 = c.sadd("myset", &members).await.unwrap();
    assert_eq!(added, 100_000);
    let peak = memory_field(&mut c, "used_memory").await;
    assert!(
        peak > base + 3_000_000,
        "the values take room: {base} → {peak}"
    );
    let _: i64 = c.del("big").await.unwrap();
    let unlinked: i64 = c.unlink("myset").await.unwrap();
    assert_eq!(unlinked, 1);
    // Within 256 KiB of where it started (the requests' buffers and the values are gone).
    let what = format!("used_memory back within 256 KiB of {base} (peak {peak})");
    wait_for(Duration::from_secs(20), &what, || {
        let mut c = c.clone();
        async move { memory_field(&mut c, "used_memory").await < base + 256 * 1024 }
    })
    .await;
    assert_eq!(
        memory_field(&mut c, "lazyfreed_objects").await,
        1,
        "UNLINK of the set"
    );
    assert_eq!(memory_field(&mut c, "lazyfree_pending_objects").await, 0);

    // A connection whose last request was the big one, then quiet: it keeps its buffer for the
    // next batch a while (RECLAIM_AFTER), then gives it back by itself.
    let mut quiet = e.conn().await;
    let _: () = quiet.set("big2", vec![b'y'; 1 << 20]).await.unwrap();
    let _: i64 = c.del("big2").await.unwrap();
    let what = format!("the quiet connection's buffer given back (within 256 KiB of {base})");
    wait_for(Duration::from_secs(20), &what, || {
        let mut c = c.clone();
        async move { memory_field(&mut c, "used_memory").await < base + 256 * 1024 }
    })
    .await;

    // FLUSHALL ASYNC counts the keys it hands over.
    let _: () = redis::cmd("DEBUG")
        .arg(&["POPULATE", "1000"])
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = redis::cmd("FLUSHALL")
        .arg("ASYNC")
        .query_async(&mut c)
        .await
        .unwrap();
    wait_for(Duration::from_secs(20), "the flushed keys freed", || {
        let mut c = c.clone();
        async move { memory_field(&mut c, "lazyfreed_objects").await == 1001 }
    })
    .await;
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(memory_field(&mut c, "lazyfreed_objects").await, 0);
    drop(e);
    let _ = std::fs::remove_dir_all(&dir);
}
