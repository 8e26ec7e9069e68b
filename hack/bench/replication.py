#!/usr/bin/env python3
"""Replication and durability benchmark (not a test): real engine processes on loopback.

Run through hack/bench/replication.sh, which builds the release binary and passes its path.
Sections (each prints its figures; ratios are what to read, both sides measured in one run):

  modes     semi-sync vs async SET throughput at -P 1 and -P 16 (target >= 0.8 at P16)
  lag       replication lag p50/p99 (bytes, and ms at the offered rate) under a paced writer
            at RATE writes/s (default 50k), async and semi-sync
  snapshot  p99 latency of SET/GET while snapshots run back to back, over p99 without
            (target <= 2.0); the dataset is KEYS keys
  fullsync  the same while a fresh replica full-syncs from the master, again and again
  fullsync-sink
            the same, the replica replaced by a sink that only reads the full sync (the
            replica's loading runs on another machine in a pair; on this one it takes the
            cores the master is measured on): the master's own cost of serving a full sync
  restart   time from start to serving all KEYS keys: after a clean SHUTDOWN (snapshot) and
            after kill -9 (snapshot + log tail); redis-server's RDB load as the reference

--pin gives the master being measured core 0 to itself and puts everything else (replicas,
sinks, redis-benchmark) on core 1, both servers alike: in a pair the replica runs on another
node, so its loading should not take the master's core. Needs at least 2 cores.
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import redis


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """One server process on loopback, stopped on exit."""

    def __init__(self, argv, port, name):
        self.argv, self.port, self.name = argv, port, name
        self.proc = None

    def start(self, deadline_s=120.0):
        started = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = redis.Redis(port=self.port, socket_timeout=30)
        while True:
            try:
                if self.client.ping():
                    return time.monotonic() - started
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                pass
            except redis.ResponseError as e:  # -LOADING while recovering
                if "LOADING" not in str(e):
                    raise
            if self.proc.poll() is not None:
                sys.exit(f"{self.name} exited with {self.proc.returncode}")
            if time.monotonic() - started > deadline_s:
                sys.exit(f"{self.name} did not answer within {deadline_s} s")
            time.sleep(0.01)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()


# Settings added to every engine started (--engine-args), e.g. "--repl-fullsync-max-rate 0".
ENGINE_ARGS = []


def engine(binary, workdir, name, *extra):
    port = free_port()
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)
    argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", d, "--loglevel", "warning", *extra,
            *ENGINE_ARGS]
    return Server(argv, port, name)


def info(client, section):
    return client.info(section)


# CPU placement (--pin): the measured master's command prefix, and everything else's.
MASTER_CPU = []
OTHER_CPU = []


def bench(port, test, n, pipeline, clients=50, keyspace=100000, size=3):
    """redis-benchmark one test -> (ops/s, p99 ms)."""
    out = subprocess.run(
        [*OTHER_CPU, "redis-benchmark", "-p", str(port), "-t", test, "-n", str(n), "-c", str(clients),
         "-P", str(pipeline), "-r", str(keyspace), "-d", str(size), "--csv"],
        check=True, capture_output=True, text=True).stdout.strip().splitlines()
    header = [h.strip('"') for h in out[0].split(",")]
    rows = [[c.strip('"') for c in line.split(",")] for line in out[1:]]
    return {r[0]: (float(r[header.index("rps")]), float(r[header.index("p99_latency_ms")])) for r in rows}


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p / 100))]


def wait_for(what, cond, deadline_s=120.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    sys.exit(f"timed out waiting for {what}")


def attach(replica, master):
    replica.client.execute_command("REPLICAOF", "127.0.0.1", master.port)
    wait_for("replica link up", lambda: info(replica.client, "replication").get("master_link_status") == "up")


def load_keys(port, keys, size):
    subprocess.run([*OTHER_CPU, "redis-benchmark", "-p", str(port), "-t", "set", "-n", str(keys * 2), "-r", str(keys),
                    "-d", str(size), "-P", "64", "-c", "20", "-q"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------------
def section_modes(args, work):
    print("\n## semi-sync vs async throughput (SET, 50 clients)")
    m = engine(args.engine, work, "modes-m")
    r = engine(args.engine, work, "modes-r")
    m.start(), r.start()
    attach(r, m)
    print(f"{'P':>3} {'async ops/s':>12} {'semi-sync ops/s':>16} {'ratio':>6}")
    for p in (1, 16):
        res = {}
        for mode in ("async", "semi-sync"):
            m.client.config_set("replication-mode", mode)
            res[mode] = bench(m.port, "set", args.n, p)["SET"][0]
        print(f"{p:>3} {res['async']:>12.0f} {res['semi-sync']:>16.0f} {res['semi-sync'] / res['async']:>6.2f}")
        print(f"ratio semi-sync/async ops/s = {res['semi-sync'] / res['async']:.2f} (P{p})")
    m.stop(), r.stop()


def paced_writer(port, rate, seconds, stop_evt):
    """SETs at `rate` per second in 10 ms chunks over one pipelined connection; replies are
    read by a second thread so the offered rate does not depend on the reply latency."""
    chunk = max(1, rate // 100)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sent = [0]

    def reader():
        need = 0
        buf = b""
        while not (stop_evt.is_set() and need >= sent[0]):
            data = sock.recv(1 << 16)
            if not data:
                return
            buf += data
            lines = buf.count(b"\r\n")
            need += lines
            buf = buf[buf.rfind(b"\r\n") + 2:]
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < seconds:
        payload = b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$8\r\nxxxxxxxx\r\n" % (len(k), k)
                           for k in (b"lag:%d" % (j % 100000) for j in range(i, i + chunk)))
        sock.sendall(payload)
        i += chunk
        sent[0] = i
        next_at = start + i / rate
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    achieved = i / (time.monotonic() - start)
    stop_evt.set()
    sock.close()
    return achieved


def section_lag(args, work):
    print(f"\n## replication lag under a paced writer ({args.rate} SET/s, 8-byte values)")
    m = engine(args.engine, work, "lag-m")
    r = engine(args.engine, work, "lag-r")
    m.start(), r.start()
    attach(r, m)
    for mode in ("async", "semi-sync"):
        m.client.config_set("replication-mode", mode)
        stop = threading.Event()
        samples = []

        def sample():
            c = redis.Redis(port=m.port)
            while not stop.is_set():
                rep = c.info("replication")
                slave = rep.get("slave0")
                if isinstance(slave, dict) and "offset" in slave:
                    samples.append(rep["master_repl_offset"] - int(slave["offset"]))
                time.sleep(0.01)
        s = threading.Thread(target=sample)
        s.start()
        achieved = paced_writer(m.port, args.rate, args.seconds, stop)
        s.join()
        bytes_per_write = 40  # one SET record of this writer on the stream, roughly
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        ms = lambda b: b / bytes_per_write / achieved * 1000  # noqa: E731
        print(f"{mode:>9}: offered {achieved:.0f}/s, lag p50 {p50} B (~{ms(p50):.2f} ms), "
              f"p99 {p99} B (~{ms(p99):.2f} ms), {len(samples)} samples")
    m.stop(), r.stop()


def redis_server(work, name):
    port = free_port()
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    return Server(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "",
                   "--appendonly", "no", "--repl-diskless-sync-delay", "0", "--loglevel", "warning"], port, name)


def settle(server):
    """Wait until no snapshot (compaction, BGSAVE) is running on `server`."""
    wait_for("background snapshots to finish",
             lambda: info(server.client, "persistence").get("rdb_bgsave_in_progress") in (0, "0"))


def p99_under(args, work, label, background):
    """p99 of SET and GET at P1 without, then with `background` running, on the engine and on
    redis-server doing the same (BGSAVE with fork; a replica's full sync by RDB): the
    redis-server ratio is the reference for what the same background work costs there."""
    print(f"{'server':>12} {'test':>4} {'p99 quiet ms':>13} {'p99 during ms':>14} {'ratio':>6} "
          f"{'ops/s quiet':>12} {'ops/s during':>13} {label + 's':>10}")
    for kind in ("engine", "redis-server"):
        name = f"{label.replace(' ', '')}-{kind}"
        m = engine(args.engine, work, name) if kind == "engine" else redis_server(work, name)
        m.argv = [*MASTER_CPU, *m.argv]
        m.start()
        load_keys(m.port, args.keys, args.size)
        # Warm-up (discarded): right after loading, the first run also measures the
        # allocator and page faults settling, which would flatter the "during" ratio.
        bench(m.port, "set,get", args.n // 2, 1, keyspace=args.keys, size=args.size)
        # Loading grows the engine's log past auto-aof-rewrite-min-size several times over:
        # the compactions it starts must be over, or the "quiet" run measures one of them;
        # a fresh snapshot then keeps the runs below (~40 MB of log) from starting another.
        if kind == "engine":
            settle(m)
            m.client.bgsave()
            settle(m)
        quiet = bench(m.port, "set,get", args.n, 1, keyspace=args.keys, size=args.size)
        stop = threading.Event()
        count = [0]
        t = threading.Thread(target=background, args=(m, stop, count, work, kind))
        t.start()
        busy = bench(m.port, "set,get", args.n, 1, keyspace=args.keys, size=args.size)
        stop.set()
        t.join()
        for test in ("SET", "GET"):
            (q_rps, q99), (b_rps, b99) = quiet[test], busy[test]
            print(f"{kind:>12} {test:>4} {q99:>13.3f} {b99:>14.3f} {b99 / q99:>6.2f} {q_rps:>12.0f} "
                  f"{b_rps:>13.0f} {count[0]:>10}")
            print(f"ratio p99 during {label}/quiet = {b99 / q99:.2f} ({kind}, {test})")
        m.stop()


def section_snapshot(args, work):
    print(f"\n## p99 while snapshots run back to back ({args.keys} keys, {args.size}-byte values)")

    def snapshots(m, stop, count, _work, _kind):
        c = redis.Redis(port=m.port)
        while not stop.is_set():
            if info(c, "persistence").get("rdb_bgsave_in_progress") in (0, "0"):
                try:
                    c.bgsave()
                    count[0] += 1
                except redis.ResponseError:
                    pass
            time.sleep(0.05)
    p99_under(args, work, "snapshot", snapshots)


# Runs a command in the background of this machine (the scheduler's idle class).
IDLE = ["chrt", "--idle", "0"]


def section_fullsync(args, work):
    print(f"\n## p99 while a new replica full-syncs, again and again ({args.keys} keys)")

    def fullsyncs(m, stop, count, work, kind):
        n = 0
        while not stop.is_set():
            n += 1
            name = f"fullsync-{kind}-r{n}"
            r = engine(args.engine, work, name) if kind == "engine" else redis_server(work, name)
            # The replica stands for another machine: under SCHED_IDLE its loading only takes
            # time this machine's cores would idle away, not time from the master being
            # measured (both servers alike). At nice 19 it still cost the master's clients a
            # time slice of waiting whenever it held a core they woke up for.
            r.argv = [*OTHER_CPU, *IDLE, *r.argv]
            r.start()
            r.client.execute_command("REPLICAOF", "127.0.0.1", m.port)
            end = time.monotonic() + 120
            while not stop.is_set() and time.monotonic() < end:
                if info(r.client, "replication").get("master_link_status") == "up":
                    count[0] += 1
                    break
                time.sleep(0.02)
            r.kill9()
            shutil.rmtree(os.path.join(work, name), ignore_errors=True)
    p99_under(args, work, "full sync", fullsyncs)


# A full sync read and thrown away, for the engine: PSYNC without a position, allowing a full
# sync; the snapshot is streamed as commands and ends with REPLCONF SNAPEND.
ENGINE_SINK = r"""
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"*4\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n$10\r\nALLOW-FULL\r\n")
tail = b""
while True:
    b = s.recv(1 << 20)
    if not b:
        sys.exit(1)
    if b"SNAPEND" in tail + b:
        sys.exit(0)
    tail = b[-16:]
"""


def section_fullsync_sink(args, work):
    print(f"\n## p99 while full syncs to a sink run again and again ({args.keys} keys)")

    def fullsyncs(m, stop, count, work, kind):
        while not stop.is_set():
            if kind == "engine":
                argv = [sys.executable, "-c", ENGINE_SINK, str(m.port)]
            else:
                # redis-cli --rdb: SYNC, the RDB read into a file and nothing loaded.
                argv = ["redis-cli", "-p", str(m.port), "--rdb", os.path.join(work, "sink.rdb")]
            r = subprocess.run([*OTHER_CPU, *IDLE, *argv], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=120, check=False)
            if r.returncode == 0:
                count[0] += 1
    p99_under(args, work, "full sync", fullsyncs)


def shutdown(server, *how):
    """SHUTDOWN: the reply is the connection closing."""
    try:
        server.client.execute_command("SHUTDOWN", *how)
    except redis.ConnectionError:
        pass
    server.proc.wait()


def section_restart(args, work):
    print(f"\n## restart time with {args.keys} keys ({args.size}-byte values)")
    e = engine(args.engine, work, "restart")
    e.start()
    load_keys(e.port, args.keys, args.size)
    n = e.client.dbsize()
    shutdown(e)
    t_clean = e.start(deadline_s=600)
    wait_for("all keys", lambda: e.client.dbsize() == n, 600)
    t_clean_all = t_clean
    # kill -9 after more writes: recovery = newest snapshot + log tail.
    load_keys(e.port, args.keys, args.size)
    n = e.client.dbsize()
    e.kill9()
    t_crash = e.start(deadline_s=600)
    wait_for("all keys", lambda: e.client.dbsize() == n, 600)
    e.stop()
    rport = free_port()
    rdir = os.path.join(work, "redis-restart")
    os.makedirs(rdir)
    rs = Server(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--dir", rdir,
                 "--appendonly", "no", "--save", "", "--loglevel", "warning"], rport, "redis-server")
    rs.start()
    load_keys(rport, args.keys, args.size)
    rn = rs.client.dbsize()
    rs.client.save()
    shutdown(rs, "NOSAVE")
    t_redis = rs.start(deadline_s=600)
    wait_for("all keys", lambda: rs.client.dbsize() == rn, 600)
    rs.stop()
    print(f"engine after SHUTDOWN:   {t_clean_all:.2f} s to serve {n} keys")
    print(f"engine after kill -9:    {t_crash:.2f} s (snapshot + log tail)")
    print(f"redis-server (RDB load): {t_redis:.2f} s to serve {rn} keys")
    print(f"ratio restart engine/redis-server = {t_clean_all / t_redis:.2f} (clean), {t_crash / t_redis:.2f} (kill -9)")


SECTIONS = {"modes": section_modes, "lag": section_lag, "snapshot": section_snapshot,
            "fullsync": section_fullsync, "fullsync-sink": section_fullsync_sink,
            "restart": section_restart}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", required=True)
    ap.add_argument("--n", type=int, default=200000, help="requests per redis-benchmark run")
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--size", type=int, default=64, help="value size for the loaded dataset")
    ap.add_argument("--rate", type=int, default=50000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--engine-args", default="", help="settings added to every engine started")
    ap.add_argument("--pin", action="store_true",
                    help="master on core 0, replicas, sinks and redis-benchmark on core 1")
    ap.add_argument("sections", nargs="*", default=list(SECTIONS))
    args = ap.parse_args()
    ENGINE_ARGS.extend(args.engine_args.split())
    if args.pin:
        if (os.cpu_count() or 1) < 2:
            sys.exit("--pin needs at least 2 cores")
        MASTER_CPU.extend(["taskset", "-c", "0"])
        OTHER_CPU.extend(["taskset", "-c", "1"])
        # On the load generator's core the idle class would starve the replica outright
        # (redis-benchmark never leaves that core idle): share it at nice 19 instead.
        IDLE[:] = ["nice", "-n", "19"]
    print(f"machine: {os.cpu_count()} cores; redis-server {subprocess.run(['redis-server', '--version'], capture_output=True, text=True).stdout.split()[2]}")
    work = tempfile.mkdtemp(prefix="redispair-bench-")
    try:
        for s in args.sections:
            SECTIONS[s](args, work)
    finally:
        subprocess.run(["pkill", "-f", work], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
