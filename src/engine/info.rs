//! INFO rendering with Redis's section and field names (clients parse them: ioredis waits on
//! `loading`, redis-benchmark and monitoring read `redis_version`, `used_memory` ...). Pure.

use std::fmt::Write;

use crate::engine::cmd::Ctx;
use crate::engine::state::CommandStats;
use crate::engine::REDIS_VERSION;

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];

/// `INFO all` / `INFO everything`: Redis's order, with the per-command sections.
const ALL_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
];

/// Render the requested sections ("default", "all", "everything" or names).
pub fn render(ctx: &mut Ctx<'_>, requested: &[String]) -> String {
    let wanted: Vec<&str> = if requested.is_empty()
        || requested
            .iter()
            .any(|s| s == "default" || s == "all" || s == "everything")
    {
        if requested.iter().any(|s| s == "all" || s == "everything") {
            ALL_SECTIONS.to_vec()
        } else {
            DEFAULT_SECTIONS.to_vec()
        }
    } else {
        requested.iter().map(|s| s.as_str()).collect()
    };
    let mut out = String::new();
    for section in wanted {
        let body = match section {
            "server" => server(ctx),
            "clients" => clients(ctx),
            "memory" => memory(ctx),
            "persistence" => persistence(ctx),
            "stats" => stats(ctx),
            "replication" => replication(ctx),
            "cpu" => cpu(),
            "modules" => String::new(),
            "errorstats" => errorstats(ctx),
            "commandstats" => commandstats(ctx),
            "latencystats" => latencystats(ctx),
            "cluster" => "cluster_enabled:0\r\n".to_string(),
            "keyspace" => keyspace(ctx),
            _ => continue,
        };
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let mut title = section.to_string();
        if section == "cpu" {
            title.make_ascii_uppercase();
        } else if let Some(c) = title.get_mut(0..1) {
            c.make_ascii_uppercase();
        }
        let _ = write!(out, "# {title}\r\n{body}");
    }
    out
}

fn server(ctx: &mut Ctx<'_>) -> String {
    let uptime = (ctx.now_ms - ctx.state.start_ms).max(0) / 1000;
    format!(
        "redis_version:{REDIS_VERSION}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nredispair_version:{}\r\nos:{} {}\r\narch_bits:64\r\nmonotonic_clock:quanta (TSC when stable, else clock_gettime)\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nlru_clock:{}\r\nexecutable:redispair-engine\r\nconfig_file:{}\r\nio_threads_active:0\r\n",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH,
        std::process::id(),
        ctx.state.run_id,
        ctx.state.port,
        ctx.now_ms * 1000,
        uptime / 86400,
        ctx.state.config.settings.hz,
        ctx.state.config.settings.hz,
        // Redis's LRU clock: seconds, 24 bits.
        (ctx.now_ms / 1000) & ((1 << 24) - 1),
        ctx.state.config.file.as_deref().unwrap_or(""),
    )
}

fn clients(ctx: &mut Ctx<'_>) -> String {
    let in_timeout_table = ctx.state.blocking.clients.len();
    // Clients held by CLIENT PAUSE count as blocked, as in Redis.
    let blocked = in_timeout_table + ctx.state.clients.values().filter(|c| c.paused).count();
    let pubsub = ctx
        .state
        .clients
        .values()
        .filter(|c| c.sub + c.psub > 0)
        .count();
    let tracking = ctx.state.tracking.clients.len();
    format!(
        "connected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:{blocked}\r\ntracking_clients:{tracking}\r\npubsub_clients:{pubsub}\r\nclients_in_timeout_table:{in_timeout_table}\r\n",
        ctx.state.clients.len(),
        ctx.state.config.settings.maxclients,
    )
}

fn human(bytes: usize) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}G", b / (1024.0 * 1024.0 * 1024.0))
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.2}M", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else {
        format!("{bytes}B")
    }
}

/// Resident set size from `/proc/self/statm` (0 where it cannot be read).
pub fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<usize>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn memory(ctx: &mut Ctx<'_>) -> String {
    let used = crate::engine::memory::used_memory();
    let peak = crate::engine::memory::peak_memory();
    let rss = rss_bytes();
    let s = &ctx.state.config.settings;
    format!(
        "used_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nused_memory_dataset:{used}\r\nmaxmemory:{}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_allocator:libc\r\nlazyfree_pending_objects:{}\r\n",
        human(used),
        human(rss),
        human(peak),
        s.maxmemory,
        human(s.maxmemory as usize),
        s.maxmemory_policy,
        if used > 0 { rss as f64 / used as f64 } else { 1.0 },
        ctx.state.lazyfree.pending(),
    ) + &memory_details(used, peak, rss, &ctx.state.scripting, ctx.state.lazyfree.freed())
}

/// The rest of Redis's memory fields: the engine has no separate Lua VM accounting, allocator
/// arenas or replication buffers yet, so those report 0; the totals and the counts of cached
/// scripts, functions and libraries are real.
fn memory_details(
    used: usize,
    peak: usize,
    rss: usize,
    scripting: &crate::engine::scripting::Scripting,
    lazyfreed: u64,
) -> String {
    let total_system = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0);
    format!(
        "used_memory_overhead:0\r\nused_memory_startup:0\r\nused_memory_dataset_perc:100.00%\r\nused_memory_peak_perc:{:.2}%\r\nallocator_allocated:{used}\r\nallocator_active:{used}\r\nallocator_resident:{rss}\r\nallocator_frag_ratio:1.00\r\nallocator_frag_bytes:0\r\nallocator_rss_ratio:1.00\r\nallocator_rss_bytes:0\r\nrss_overhead_ratio:1.00\r\nrss_overhead_bytes:0\r\nmem_fragmentation_bytes:{}\r\nmem_not_counted_for_evict:0\r\nmem_replication_backlog:0\r\nmem_total_replication_buffers:0\r\nmem_clients_slaves:0\r\nmem_clients_normal:0\r\nmem_cluster_links:0\r\nmem_aof_buffer:0\r\ntotal_system_memory:{total_system}\r\ntotal_system_memory_human:{}\r\nused_memory_lua:0\r\nused_memory_lua_human:0B\r\nused_memory_vm_eval:0\r\nused_memory_vm_functions:0\r\nused_memory_vm_total:0\r\nused_memory_vm_total_human:0B\r\nused_memory_functions:0\r\nused_memory_scripts:0\r\nused_memory_scripts_eval:0\r\nused_memory_scripts_human:0B\r\nnumber_of_cached_scripts:{}\r\nnumber_of_functions:{}\r\nnumber_of_libraries:{}\r\nactive_defrag_running:0\r\nlazyfreed_objects:{lazyfreed}\r\n",
        if peak > 0 { used as f64 * 100.0 / peak as f64 } else { 100.0 },
        rss.saturating_sub(used),
        human(total_system),
        scripting.scripts.len(),
        scripting.functions.len(),
        scripting.libraries.len(),
    )
}

fn persistence(ctx: &mut Ctx<'_>) -> String {
    use std::fmt::Write as _;
    let st = &*ctx.state;
    let p = &st.persist;
    let in_progress = p.snapshot_in_progress as u8;
    let current_secs = if p.snapshot_in_progress {
        (ctx.now_ms - p.snapshot_started_ms) / 1000
    } else {
        -1
    };
    let status = if p.last_snapshot_ok || p.snapshots_done == 0 {
        "ok"
    } else {
        "err"
    };
    let last_secs = if p.snapshots_done > 0 {
        p.last_snapshot_secs
    } else {
        -1
    };
    let mut out = format!(
        "loading:{}\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:{}\r\ncurrent_save_keys_total:{}\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{in_progress}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{status}\r\nrdb_last_bgsave_time_sec:{last_secs}\r\nrdb_current_bgsave_time_sec:{current_secs}\r\nrdb_saves:{}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:0\r\nrdb_last_load_keys_loaded:0\r\naof_enabled:{}\r\naof_rewrite_in_progress:{in_progress}\r\naof_rewrite_scheduled:{}\r\naof_last_rewrite_time_sec:{last_secs}\r\naof_current_rewrite_time_sec:{current_secs}\r\naof_last_bgrewrite_status:{status}\r\naof_rewrites:{}\r\naof_rewrites_consecutive_failures:0\r\naof_last_write_status:{}\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
        p.loading as u8,
        p.keys_processed,
        p.keys_total,
        st.dirty_since_save,
        st.lastsave_secs,
        p.snapshots_done,
        p.enabled as u8,
        p.snapshot_requested as u8,
        p.snapshots_done,
        if st.stream.log.as_ref().is_some_and(|w| w.failed.load(std::sync::atomic::Ordering::Relaxed)) {
            "err"
        } else {
            "ok"
        },
    );
    if let Some(w) = &st.stream.log {
        let written = w.written.load(std::sync::atomic::Ordering::Relaxed);
        let durable = w.durable.load(std::sync::atomic::Ordering::Relaxed);
        let base = p.last_snapshot_offset.unwrap_or(0);
        let _ = write!(
            out,
            "aof_current_size:{}\r\naof_base_size:0\r\naof_pending_rewrite:0\r\naof_buffer_length:{}\r\naof_pending_bio_fsync:0\r\naof_delayed_fsync:0\r\nlog_offset:{}\r\nlog_written_offset:{written}\r\nlog_durable_offset:{durable}\r\nlog_fsyncs:{}\r\nlog_write_errors:{}\r\nlog_write_error:{}\r\nlog_segments:{}\r\nsnapshot_offset:{}\r\n",
            st.stream.offset - base,
            st.stream.offset - written,
            st.stream.offset,
            w.fsyncs.load(std::sync::atomic::Ordering::Relaxed),
            w.write_errors.load(std::sync::atomic::Ordering::Relaxed),
            w.write_error().unwrap_or_default(),
            crate::engine::persistence::list_segments(&p.dir).len(),
            p.last_snapshot_offset.map(|o| o as i64).unwrap_or(-1),
        );
    }
    match &st.archive {
        Some(a) => out.push_str(&a.info(ctx.now_ms)),
        None => out.push_str("archive_enabled:0\r\n"),
    }
    out
}

fn stats(ctx: &mut Ctx<'_>) -> String {
    let s = &ctx.state.stats;
    let uptime = ((ctx.now_ms - ctx.state.start_ms).max(1000) / 1000) as u64;
    let tracked = ctx.state.tracking.totals();
    format!(
        "total_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\nsync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\nexpired_keys:{}\r\nevicted_keys:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\nlatest_fork_usec:0\r\ntotal_forks:0\r\ntotal_error_replies:{}\r\nunexpected_error_replies:{}\r\ntotal_blocking_keys:{}\r\ninstantaneous_input_kbps:0.00\r\ninstantaneous_output_kbps:0.00\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\nexpired_stale_perc:0.00\r\nexpired_time_cap_reached_count:0\r\nexpire_cycle_cpu_milliseconds:0\r\nevicted_clients:0\r\nclient_output_buffer_limit_disconnections:{}\r\ntotal_eviction_exceeded_time:0\r\ncurrent_eviction_exceeded_time:0\r\npubsubshard_channels:0\r\nmigrate_cached_sockets:0\r\nslave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:{}\r\ntracking_total_items:{}\r\ntracking_total_prefixes:{}\r\ndump_payload_sanitizations:0\r\ntotal_reads_processed:{}\r\ntotal_writes_processed:{}\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\nreply_buffer_shrinks:0\r\nreply_buffer_expands:0\r\n",
        s.total_connections_received,
        s.total_commands_processed,
        s.total_commands_processed / uptime,
        s.total_net_input_bytes,
        s.total_net_output_bytes,
        s.rejected_connections,
        ctx.state.repl.sync_full,
        ctx.state.repl.sync_partial_ok,
        ctx.state.repl.sync_partial_err,
        s.expired_keys,
        s.evicted_keys,
        s.keyspace_hits,
        s.keyspace_misses,
        ctx.state.pubsub.channels.len(),
        ctx.state.pubsub.patterns.len(),
        s.total_error_replies,
        s.unexpected_error_replies,
        ctx.state.blocking.by_key.len(),
        s.client_output_buffer_limit_disconnections,
        tracked.0,
        tracked.1,
        tracked.2,
        s.total_commands_processed,
        s.total_commands_processed,
    )
}

fn replication(ctx: &mut Ctx<'_>) -> String {
    use crate::engine::replication::{lease, semisync, Role};
    use std::fmt::Write as _;
    let st = &*ctx.state;
    let r = &st.repl;
    let now = ctx.now_ms;
    let mut out = String::new();
    let replicas: Vec<_> = {
        let mut v: Vec<_> = r.replicas.values().filter(|x| x.online).collect();
        v.sort_by_key(|x| x.port);
        v
    };
    match r.role {
        Role::Master => {
            out.push_str("role:master\r\n");
        }
        Role::Replica => {
            let (host, port) = r.master.clone().unwrap_or_default();
            let _ = write!(
                out,
                "role:slave\r\nmaster_host:{host}\r\nmaster_port:{port}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\nslave_repl_offset:{}\r\n",
                if r.link.up { "up" } else { "down" },
                if r.link.last_io_ms > 0 { (now - r.link.last_io_ms).max(0) / 1000 } else { -1 },
                r.link.sync_in_progress as u8,
                st.stream.offset,
                st.stream.offset,
            );
            if !r.link.up {
                let since = if r.link.down_since_ms > 0 {
                    (now - r.link.down_since_ms).max(0) / 1000
                } else {
                    -1
                };
                let _ = write!(out, "master_link_down_since_seconds:{since}\r\n");
            }
            let _ = write!(
                out,
                "slave_priority:100\r\nslave_read_only:{}\r\nreplica_announced:1\r\n",
                st.read_only as u8
            );
        }
    }
    let _ = write!(out, "connected_slaves:{}\r\n", replicas.len());
    for (i, x) in replicas.iter().enumerate() {
        let _ = write!(
            out,
            "slave{i}:ip={},port={},state=online,offset={},lag={}\r\n",
            x.ip,
            x.port,
            x.ack_offset,
            (now - x.last_ack_ms).max(0) / 1000
        );
    }
    let retained = crate::engine::cmd::replication::retained_from(st);
    let _ = write!(
        out,
        "master_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:{}\r\nrepl_backlog_active:{}\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:{}\r\nrepl_backlog_histlen:{}\r\n",
        r.replid,
        r.replid2,
        st.stream.offset,
        if r.second_offset >= 0 { r.second_offset + 1 } else { -1 },
        st.stream.backlog.is_active() as u8,
        st.config.get("repl-backlog-size").unwrap_or("0"),
        retained + 1,
        st.stream.offset - retained,
    );
    let mode = match semisync::mode(st.config.get("replication-mode")) {
        semisync::Mode::Async => "async",
        semisync::Mode::SemiSync => "semi-sync",
        semisync::Mode::Sync => "sync",
    };
    let _ = write!(
        out,
        "term:{}\r\nlink_down_reason:{}\r\nsync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\ndiscarded_tail_bytes:{}\r\ndiscarded_tail_commands:{}\r\nreplication_mode:{mode}\r\nsemi_sync_degraded:{}\r\nsemi_sync_degraded_since_seconds:{}\r\nwrite_lease_remaining_ms:{}\r\nmaster_acked_offset:{}\r\n",
        r.term,
        r.link.reason,
        r.sync_full,
        r.sync_partial_ok,
        r.sync_partial_err,
        r.discarded_tail_bytes,
        r.discarded_tail_commands,
        r.semi.degraded as u8,
        if r.semi.degraded { (now - r.semi.degraded_since_ms).max(0) / 1000 } else { -1 },
        lease::remaining_ms(&st.repl),
        r.best_ack(),
    );
    out
}

fn cpu() -> String {
    // /proc/self/stat fields 14 and 15: user and system time in clock ticks (100 Hz).
    let (user, sys) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((
                f.get(11)?.parse::<f64>().ok()?,
                f.get(12)?.parse::<f64>().ok()?,
            ))
        })
        .unwrap_or((0.0, 0.0));
    format!(
        "used_cpu_sys:{:.6}\r\nused_cpu_user:{:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\nused_cpu_sys_main_thread:{:.6}\r\nused_cpu_user_main_thread:{:.6}\r\n",
        sys / 100.0,
        user / 100.0,
        sys / 100.0,
        user / 100.0
    )
}

fn errorstats(ctx: &mut Ctx<'_>) -> String {
    let mut names: Vec<_> = ctx.state.stats.errors.iter().collect();
    names.sort();
    names
        .into_iter()
        .map(|(k, v)| format!("errorstat_{k}:count={v}\r\n"))
        .collect()
}

/// Every command's statistics, sorted by name.
fn commands_by_name<'a>(ctx: &'a Ctx<'_>) -> Vec<(&'static str, &'a CommandStats)> {
    let mut names: Vec<_> = ctx
        .state
        .stats
        .commands
        .iter()
        .map(|(k, s)| (k.0, s))
        .collect();
    names.sort_by_key(|(k, _)| *k);
    names
}

fn commandstats(ctx: &mut Ctx<'_>) -> String {
    commands_by_name(ctx)
        .into_iter()
        .map(|(k, s)| {
            format!(
                "cmdstat_{k}:calls={},usec={},usec_per_call={:.2},rejected_calls={},failed_calls={}\r\n",
                s.calls,
                s.usec,
                if s.calls > 0 { s.usec as f64 / s.calls as f64 } else { 0.0 },
                s.rejected,
                s.failed
            )
        })
        .collect()
}

/// Per-command latency percentiles. The engine keeps total time and calls per command, not a
/// histogram, so every percentile reports the mean (a flat but well-formed distribution).
fn latencystats(ctx: &mut Ctx<'_>) -> String {
    commands_by_name(ctx)
        .into_iter()
        .filter(|(_, s)| s.calls > 0)
        .map(|(k, s)| {
            let mean = s.usec as f64 / s.calls as f64;
            format!("latency_percentiles_usec_{k}:p50={mean:.3},p99={mean:.3},p99.9={mean:.3}\r\n")
        })
        .collect()
}

fn keyspace(ctx: &mut Ctx<'_>) -> String {
    let mut out = String::new();
    for (i, db) in ctx.state.dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "db{i}:keys={},expires={},avg_ttl=0\r\n",
            db.len(),
            db.volatile_len()
        );
    }
    out
}
