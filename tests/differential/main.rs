//! Differential tests: seeded random command sequences against redis-server and the engine,
//! one test per command family (see harness.rs). Replay with DIFF_SEED=<seed>.

#[path = "../support/mod.rs"]
mod support;

mod harness;

mod bitmaps;
mod geo;
mod hashes;
mod hyperloglog;
mod keys;
mod lists;
mod scripting;
mod server;
mod sets;
mod sort;
mod streams;
mod strings;
mod transactions;
mod zsets;

use harness::{run_differential, Generator};

/// Each family alone, then all families mixed on the same keys (type collisions).
async fn family(name: &str, gens: &[Generator]) {
    if gens.is_empty() {
        return;
    }
    run_differential(name, gens, 6, 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strings() {
    family("strings", strings::GENERATORS).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys() {
    family("keys", keys::GENERATORS).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitmaps() {
    family("bitmaps", bitmaps::GENERATORS).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyperloglog() {
    family("hyperloglog", hyperloglog::GENERATORS).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashes() {
    family("hashes", hashes::GENERATORS).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists() {
    family("lists", lists::GENERATORS).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sets() {
    family("sets", sets::GENERATORS).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sort() {
    family("sort", sort::GENERATORS).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams() {
    family("streams", streams::GENERATORS).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zsets() {
    family("zsets", zsets::GENERATORS).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geo() {
    family("geo", geo::GENERATORS).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions() {
    family("transactions", transactions::GENERATORS).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripting() {
    family("scripting", scripting::GENERATORS).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server() {
    family("server", server::GENERATORS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_families_mixed() {
    let all: Vec<Generator> = [
        strings::GENERATORS,
        keys::GENERATORS,
        bitmaps::GENERATORS,
        hyperloglog::GENERATORS,
        hashes::GENERATORS,
        lists::GENERATORS,
        sets::GENERATORS,
        zsets::GENERATORS,
        streams::GENERATORS,
        geo::GENERATORS,
        transactions::GENERATORS,
        scripting::GENERATORS,
        server::GENERATORS,
    ]
    .concat();
    run_differential("all_families_mixed", &all, 6, 600).await;
}
