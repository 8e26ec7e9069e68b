//! The checks the cluster scrape case makes (tests/metrics_support, tests/e2e/metrics.rs), run
//! on loopback first: two engine processes (a semi-sync master with its write log and a
//! continuous archive to a directory, and its replica) scraped over HTTP and parsed as
//! OpenMetrics, every family checked by type and labels; the operator's endpoint (its axum
//! router on a loopback port) through a pair's life: created, failed over, deleted. Also that
//! the checks refuse what they must refuse (a stale role series, a pair's series left after
//! its deletion, a wrong term). Does I/O: engine processes, HTTP on loopback.

mod metrics_support;
mod repl_support;
mod support;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use metrics_support::{
    check_engine, check_operator_pair, check_pair_gone, scrape, Archive, EngineExpect, PairExpect,
    Scrape,
};
use redis::AsyncCommands;
use redispair::operator::http::{router, HttpState};
use redispair::operator::metrics::{Metrics, PairSnapshot};
use repl_support::{info_field, replicaof, start_process_pair, stop_and_remove_dirs};
use support::{free_port, temp_dir};

/// Poll `check` until it holds; on timeout fail with its last complaint.
async fn until_ok<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let last = check().await;
        match last {
            Ok(()) => return,
            Err(e) if std::time::Instant::now() >= deadline => {
                panic!("timed out waiting for {what}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test]
async fn both_engines_show_every_family_with_its_type_and_labels() {
    let archive = temp_dir("metrics-expo-archive");
    let url = format!("file://{}", archive.display());
    let (mport, rport) = (free_port(), free_port());
    let (mp, rp, mut mc, mut rc) = start_process_pair(
        "metrics-expo",
        &[
            ("metrics-port", &mport.to_string()),
            ("replication-mode", "semi-sync"),
            ("admin-user", "op"),
            ("admin-password", "secret"),
            ("archive-url", &url),
            ("archive-timeout", "50"),
        ],
        &[
            ("metrics-port", &rport.to_string()),
            ("replication-mode", "semi-sync"),
        ],
    )
    .await;
    replicaof(&mut rc, mp.port).await;
    let (maddr, raddr) = (format!("127.0.0.1:{mport}"), format!("127.0.0.1:{rport}"));
    until_ok("the replica attached", || async {
        let s = scrape(&maddr).await?;
        (s.number("redispair_engine_connected_replicas", &[])? == 1.0)
            .then_some(())
            .ok_or_else(|| "no replica yet".to_string())
    })
    .await;
    let _: () = mc.set("a", "1").await.unwrap();
    let _: () = mc.set_ex("b", "2", 1000).await.unwrap();
    let _: Option<String> = mc.get("a").await.unwrap();

    // The term each engine is at, from INFO: what the term series must say.
    let term = |c: &mut redis::aio::MultiplexedConnection| {
        let mut c = c.clone();
        async move {
            info_field(&mut c, "replication", "term")
                .await
                .expect("INFO replication has the term")
                .parse::<i64>()
                .unwrap()
        }
    };
    let master = EngineExpect {
        role: "master",
        term: term(&mut mc).await,
        commands: vec!["set", "setex", "get"],
        min_keys: 2,
        min_volatile_keys: 1,
        mode: "semi-sync",
        reply_waits: true,
        log: true,
        archive: Archive::Uploading,
    };
    until_ok("the master's families", || async {
        check_engine(&scrape(&maddr).await?, &master)
    })
    .await;
    let replica = EngineExpect {
        role: "replica",
        term: term(&mut rc).await,
        commands: vec!["replicaof"],
        min_keys: 2,
        min_volatile_keys: 1,
        mode: "semi-sync",
        reply_waits: false,
        log: true,
        archive: Archive::Off,
    };
    until_ok("the replica's families", || async {
        check_engine(&scrape(&raddr).await?, &replica)
    })
    .await;

    // The checks catch a wrong role, term or archive.
    let s = scrape(&maddr).await.unwrap();
    for (what, wrong) in [
        (
            "role",
            EngineExpect {
                role: "replica",
                ..master.clone()
            },
        ),
        (
            "term",
            EngineExpect {
                term: master.term + 1,
                ..master.clone()
            },
        ),
        (
            "archive",
            EngineExpect {
                archive: Archive::Off,
                ..master.clone()
            },
        ),
    ] {
        assert!(check_engine(&s, &wrong).is_err(), "a wrong {what} passed");
    }
    stop_and_remove_dirs([rp, mp]);
    let _ = std::fs::remove_dir_all(archive);
}

/// The operator's registry served by its own router on loopback, as a pair is created, fails
/// over and is deleted (the controller calls these same methods).
#[tokio::test]
async fn the_operator_shows_a_pair_across_a_failover_and_forgets_it() {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let state = Arc::new(HttpState {
        registry,
        ready: AtomicBool::new(true),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move { axum::serve(listener, router(state)).await });

    let key = "ns/cache";
    let pass = |phase: &str, term, master: &str, replica: &str| {
        metrics.reconciles.inc();
        metrics.reconcile_duration.observe(0.004);
        metrics.set_phase(key, "uid-1", Some(phase));
        metrics.set_pair(
            key,
            "uid-1",
            PairSnapshot {
                phase: phase.into(),
                term,
                lag_bytes: 0,
                master: Some(master.into()),
                replica: Some(replica.into()),
            },
        );
    };
    let mut want = PairExpect {
        namespace: "ns".into(),
        pair: "cache".into(),
        phase: "Ready",
        term: 1,
        master: "cache-a".into(),
        replica: "cache-b".into(),
        failovers: 0,
    };
    pass("Ready", 1, "cache-a", "cache-b");
    let s = scrape(&addr).await.unwrap();
    check_operator_pair(&s, &want).unwrap();
    assert!(check_pair_gone(&s, "ns", "cache").is_err());

    // A failover: roles swap, the term grows, the counters count it.
    metrics.failover_completed(1_800);
    metrics.pair_failover_completed(key, "uid-1", 1_800);
    pass("Ready", 2, "cache-b", "cache-a");
    let s = scrape(&addr).await.unwrap();
    // The view from before the failover no longer holds.
    assert!(check_operator_pair(&s, &want).is_err());
    want = PairExpect {
        term: 2,
        master: "cache-b".into(),
        replica: "cache-a".into(),
        failovers: 1,
        ..want
    };
    check_operator_pair(&s, &want).unwrap();

    // Deleted: nothing of the pair is left.
    metrics.forget_pair(key, "uid-1");
    let s = scrape(&addr).await.unwrap();
    check_pair_gone(&s, "ns", "cache").unwrap();
    assert!(check_operator_pair(&s, &want).is_err());
    // A pass still running when the pair was deleted, ending after: nothing comes back.
    pass("Ready", 2, "cache-b", "cache-a");
    let s = scrape(&addr).await.unwrap();
    check_pair_gone(&s, "ns", "cache").unwrap();
    server.abort();
}

#[test]
fn the_parser_refuses_what_is_not_openmetrics() {
    // No `# EOF`: a truncated scrape.
    assert!(Scrape::parse("# TYPE a gauge\na 1\n").is_err());
    // A counter sample without `_total`.
    assert!(Scrape::parse("# TYPE a counter\na 1\n# EOF\n").is_err());
    // A histogram whose buckets are not cumulative parses, and the check refuses it.
    let s = Scrape::parse(
        "# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n# EOF\n",
    );
    if let Ok(s) = s {
        assert!(s.histogram("h", &[]).is_err());
    }
    // A family shown twice.
    assert!(Scrape::parse(
        "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\na 2\n# EOF\n"
    )
    .is_err());
    // A family without samples before another (valid; the crate alone refuses it), and a
    // label value with a comma.
    let ok = Scrape::parse(
        "# HELP k Keys.\n# TYPE k gauge\n# HELP k_with_expiry Keys.\n# TYPE k_with_expiry gauge\nk_with_expiry{x=\"1,2\"} 5\n# EOF\n",
    )
    .unwrap();
    assert_eq!(ok.number("k_with_expiry", &[("x", "1,2")]).unwrap(), 5.0);
    ok.expect_family("k", metrics_support::Kind::Gauge, &[])
        .unwrap();
    assert!(ok.samples("k").unwrap().is_empty());
}
