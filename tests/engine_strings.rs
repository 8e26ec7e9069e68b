//! Black-box tests of the string, bitmap and HyperLogLog commands: raw RESP over TCP against a
//! real engine on loopback. Expected bytes were taken from redis-server 7.0.15.

mod support;

use support::{start_engine, RawClient};

#[tokio::test]
async fn string_family_replies_and_errors() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["SETNX", "k", "hello"]).await;
    c.cmd(&["SETNX", "k", "other"]).await;
    c.cmd(&["APPEND", "k", " world"]).await;
    c.cmd(&["STRLEN", "k"]).await;
    c.cmd(&["GETRANGE", "k", "-5", "-1"]).await;
    c.cmd(&["SUBSTR", "k", "-1", "-5"]).await;
    c.cmd(&["SETRANGE", "k", "12", "!"]).await;
    c.cmd(&["GET", "k"]).await;
    c.expect(
        b":1\r\n:0\r\n:11\r\n:11\r\n$5\r\nworld\r\n$0\r\n\r\n:13\r\n$13\r\nhello world\x00!\r\n",
    )
    .await;
    c.cmd(&["SETRANGE", "k", "536870911", "ab"]).await;
    c.cmd(&["SETRANGE", "k", "-1", "x"]).await;
    c.cmd(&["SETRANGE", "missing", "5", ""]).await;
    c.cmd(&["EXISTS", "missing"]).await;
    c.expect(b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n-ERR offset is out of range\r\n:0\r\n:0\r\n")
        .await;
    c.cmd(&["GETSET", "k", "v2"]).await;
    c.cmd(&["GETDEL", "k"]).await;
    c.cmd(&["GETDEL", "k"]).await;
    c.cmd(&["MSETNX", "a", "1", "b", "2"]).await;
    c.cmd(&["MSETNX", "b", "3", "c", "4"]).await;
    c.cmd(&["MGET", "a", "b", "c"]).await;
    c.expect(b"$13\r\nhello world\x00!\r\n$2\r\nv2\r\n$-1\r\n:1\r\n:0\r\n*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n")
        .await;
    h.stop().await;
}

#[tokio::test]
async fn expiry_variants_and_getex() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["SETEX", "k", "100", "v"]).await;
    c.cmd(&["TTL", "k"]).await;
    c.cmd(&["SETEX", "k", "0", "v"]).await;
    c.cmd(&["PSETEX", "k", "x", "v"]).await;
    c.expect(b"+OK\r\n:100\r\n-ERR invalid expire time in 'setex' command\r\n-ERR value is not an integer or out of range\r\n")
        .await;
    c.cmd(&["GETEX", "k", "PERSIST"]).await;
    c.cmd(&["TTL", "k"]).await;
    c.cmd(&["GETEX", "k", "PX", "200000"]).await;
    c.cmd(&["TTL", "k"]).await;
    c.cmd(&["GETEX", "k", "PERSIST", "EX", "1"]).await;
    c.cmd(&["GETEX", "k", "EXAT", "1"]).await;
    c.cmd(&["EXISTS", "k"]).await;
    c.expect(b"$1\r\nv\r\n:-1\r\n$1\r\nv\r\n:200\r\n-ERR syntax error\r\n$1\r\nv\r\n:0\r\n")
        .await;
    c.cmd(&["SET", "k", "v", "EX", "10", "PX", "100"]).await;
    c.cmd(&["SET", "k", "v", "EX", "abc", "NX", "XX"]).await;
    c.cmd(&["SET", "k", "v", "EX", "10", "EX", "20"]).await;
    c.cmd(&["TTL", "k"]).await;
    c.expect(b"-ERR syntax error\r\n-ERR syntax error\r\n+OK\r\n:20\r\n")
        .await;
    h.stop().await;
}

#[tokio::test]
async fn incrbyfloat_matches_redis_text() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["SET", "f", "10.50"]).await;
    c.cmd(&["INCRBYFLOAT", "f", "0.1"]).await;
    c.cmd(&["INCRBYFLOAT", "f", "-5"]).await;
    c.cmd(&["INCRBYFLOAT", "g", "0.1"]).await;
    c.cmd(&["INCRBYFLOAT", "g", "0.2"]).await;
    c.cmd(&["SET", "e", "5.0e3"]).await;
    c.cmd(&["INCRBYFLOAT", "e", "2.0e2"]).await;
    c.cmd(&["INCRBYFLOAT", "e", "inf"]).await;
    c.cmd(&["INCRBYFLOAT", "e", "nan"]).await;
    c.expect(b"+OK\r\n$4\r\n10.6\r\n$3\r\n5.6\r\n$3\r\n0.1\r\n$3\r\n0.3\r\n+OK\r\n$4\r\n5200\r\n-ERR increment would produce NaN or Infinity\r\n-ERR value is not a valid float\r\n")
        .await;
    h.stop().await;
}

#[tokio::test]
async fn watch_sees_only_real_changes() {
    let h = start_engine(&[]).await;
    let mut a = RawClient::connect(&h).await;
    let mut b = RawClient::connect(&h).await;
    a.cmd(&["SETBIT", "bits", "3", "1"]).await;
    a.expect(b":0\r\n").await;
    // Setting a bit to the value it has is not a change: the transaction still runs.
    a.cmd(&["WATCH", "bits"]).await;
    a.expect(b"+OK\r\n").await;
    b.cmd(&["SETBIT", "bits", "3", "1"]).await;
    b.expect(b":1\r\n").await;
    a.send(b"MULTI\r\nGETBIT bits 3\r\nEXEC\r\n").await;
    a.expect(b"+OK\r\n+QUEUED\r\n*1\r\n:1\r\n").await;
    // A real change (INCRBYFLOAT) aborts it.
    a.cmd(&["WATCH", "f"]).await;
    a.expect(b"+OK\r\n").await;
    b.cmd(&["INCRBYFLOAT", "f", "1.5"]).await;
    b.expect(b"$3\r\n1.5\r\n").await;
    a.send(b"MULTI\r\nGET f\r\nEXEC\r\n").await;
    a.expect(b"+OK\r\n+QUEUED\r\n*-1\r\n").await;
    h.stop().await;
}

#[tokio::test]
async fn bitmap_commands() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["SETBIT", "b", "7", "1"]).await;
    c.cmd(&["SETBIT", "b", "9", "1"]).await;
    c.cmd(&["GET", "b"]).await;
    c.cmd(&["BITCOUNT", "b"]).await;
    c.cmd(&["BITCOUNT", "b", "8", "15", "BIT"]).await;
    c.cmd(&["BITPOS", "b", "1", "1"]).await;
    c.cmd(&["BITPOS", "b", "0", "0", "0"]).await;
    c.cmd(&["BITPOS", "b", "1", "8", "-1", "BIT"]).await;
    c.expect(b":0\r\n:0\r\n$2\r\n\x01@\r\n:2\r\n:1\r\n:9\r\n:0\r\n:9\r\n")
        .await;
    c.cmd(&["SETBIT", "b", "-1", "1"]).await;
    c.cmd(&["SETBIT", "b", "4294967296", "1"]).await;
    c.cmd(&["SETBIT", "b", "1", "2"]).await;
    c.cmd(&["BITPOS", "b", "2"]).await;
    c.cmd(&["BITCOUNT", "b", "0"]).await;
    c.expect(b"-ERR bit offset is not an integer or out of range\r\n-ERR bit offset is not an integer or out of range\r\n-ERR bit is not an integer or out of range\r\n-ERR The bit argument must be 1 or 0.\r\n-ERR syntax error\r\n")
        .await;
    c.cmd(&["SET", "x", "\u{7f}"]).await;
    c.cmd(&["BITOP", "AND", "dest", "b", "x"]).await;
    c.cmd(&["GET", "dest"]).await;
    c.cmd(&["BITOP", "NOT", "dest", "b", "x"]).await;
    c.cmd(&["BITOP", "OR", "dest", "nokey"]).await;
    c.cmd(&["EXISTS", "dest"]).await;
    c.expect(b"+OK\r\n:2\r\n$2\r\n\x01\x00\r\n-ERR BITOP NOT must be called with a single source key.\r\n:0\r\n:0\r\n")
        .await;
    h.stop().await;
}

#[tokio::test]
async fn bitfield_and_lcs() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&[
        "BITFIELD", "bf", "SET", "i8", "0", "100", "INCRBY", "i8", "0", "100", "OVERFLOW", "SAT",
        "INCRBY", "i8", "0", "100", "OVERFLOW", "FAIL", "INCRBY", "u4", "#1", "20", "GET", "u8",
        "0", "GET", "i64", "0",
    ])
    .await;
    c.expect(b"*6\r\n:0\r\n:-56\r\n:44\r\n$-1\r\n:44\r\n:3170534137668829184\r\n")
        .await;
    c.cmd(&["GET", "bf"]).await;
    c.cmd(&["BITFIELD_RO", "bf", "SET", "u8", "0", "1"]).await;
    c.cmd(&["BITFIELD", "bf", "GET", "u64", "0"]).await;
    c.expect(b"$1\r\n,\r\n-ERR BITFIELD_RO only supports the GET subcommand\r\n-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n")
        .await;
    c.cmd(&["MSET", "a", "ohmytext", "b", "mynewtext"]).await;
    c.cmd(&["LCS", "a", "b"]).await;
    c.cmd(&["LCS", "a", "b", "LEN"]).await;
    c.cmd(&["LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"])
        .await;
    c.expect(b"+OK\r\n$6\r\nmytext\r\n:6\r\n*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n")
        .await;
    h.stop().await;
}

#[tokio::test]
async fn hyperloglog_strings_and_counts_equal_redis() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    c.cmd(&["PFADD", "s", "a", "b", "c"]).await;
    c.cmd(&["GET", "s"]).await;
    c.expect(b":1\r\n$27\r\nHYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80`\xf3\x80P\xb1\x84K\xfb\x80BZ\r\n")
        .await;
    // PFCOUNT caches the cardinality in the header.
    c.cmd(&["PFCOUNT", "s"]).await;
    c.cmd(&["GET", "s"]).await;
    c.expect(b":3\r\n$27\r\nHYLL\x01\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00`\xf3\x80P\xb1\x84K\xfb\x80BZ\r\n")
        .await;
    let mut batch = Vec::new();
    for i in 0..10_000 {
        let e = format!("e{i}");
        batch.extend_from_slice(
            format!("*3\r\n$5\r\nPFADD\r\n$1\r\nh\r\n${}\r\n{e}\r\n", e.len()).as_bytes(),
        );
    }
    c.send(&batch).await;
    c.send(b"STRLEN h\r\nPFCOUNT h\r\nPFCOUNT h s\r\nPFMERGE m h s\r\nPFCOUNT m\r\n")
        .await;
    // Drain the 10000 PFADD replies (each :0 or :1).
    let mut replies = Vec::new();
    for _ in 0..10_000 {
        replies.push(read_line(&mut c).await);
    }
    assert!(replies.iter().all(|r| r == ":0" || r == ":1"));
    c.expect(b":12304\r\n:9973\r\n:9977\r\n+OK\r\n:9977\r\n")
        .await;
    c.cmd(&["SET", "bad", "foo"]).await;
    c.cmd(&["PFADD", "bad", "x"]).await;
    c.cmd(&["PFCOUNT", "s", "bad"]).await;
    c.expect(b"+OK\r\n-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n")
        .await;
    h.stop().await;
}

/// Read one CRLF-terminated line byte by byte (the replies here are small integers).
async fn read_line(c: &mut RawClient) -> String {
    use tokio::io::AsyncReadExt;
    let mut line = Vec::new();
    loop {
        let mut b = [0u8; 1];
        c.stream.read_exact(&mut b).await.unwrap();
        if b[0] == b'\n' {
            break;
        }
        if b[0] != b'\r' {
            line.push(b[0]);
        }
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// APPEND and SETBIT grow strings in place (amortised, like Redis's sdsMakeRoomFor): 20000
/// appends building a 2 MB value would copy ~20 GB if every append reallocated exactly.
#[tokio::test]
async fn appends_and_growing_bitmaps_are_amortised() {
    let h = start_engine(&[]).await;
    let mut c = RawClient::connect(&h).await;
    let chunk = "x".repeat(100);
    let mut batch = Vec::new();
    for i in 0..20_000 {
        batch.extend_from_slice(
            format!("*3\r\n$6\r\nAPPEND\r\n$3\r\nlog\r\n$100\r\n{chunk}\r\n").as_bytes(),
        );
        let off = (i * 64).to_string();
        batch.extend_from_slice(
            format!(
                "*4\r\n$6\r\nSETBIT\r\n$4\r\nbits\r\n${}\r\n{off}\r\n$1\r\n1\r\n",
                off.len()
            )
            .as_bytes(),
        );
    }
    c.send(&batch).await;
    let mut expected = Vec::new();
    for i in 1..=20_000 {
        expected.extend_from_slice(format!(":{}\r\n:0\r\n", i * 100).as_bytes());
    }
    c.expect(&expected).await;
    c.cmd(&["STRLEN", "bits"]).await;
    c.cmd(&["BITCOUNT", "bits"]).await;
    c.expect(b":159993\r\n:20000\r\n").await;
    h.stop().await;
}

/// Read lookups count keyspace hits and misses as Redis's `lookupKeyRead` does; write lookups
/// (APPEND, SETNX, INCRBYFLOAT, SETBIT, PFADD ...) do not. Expected numbers from redis-server.
#[tokio::test]
async fn keyspace_hits_and_misses_follow_read_lookups() {
    let h = start_engine(&[]).await;
    let mut con = support::redis_conn(&h).await;
    let script: &[&[&str]] = &[
        &["SET", "a", "1"],
        &["MGET", "a", "nx", "a"],
        &["GETRANGE", "nx", "0", "1"],
        &["GETEX", "a"],
        &["APPEND", "a", "x"],
        &["SETNX", "a", "2"],
        &["INCRBYFLOAT", "f", "1"],
        &["BITOP", "AND", "d", "a", "nx"],
        &["BITFIELD", "a", "SET", "u8", "0", "1"],
        &["PFADD", "h", "x"],
        &["PFCOUNT", "h"],
        &["PFMERGE", "h2", "h", "nx"],
    ];
    for args in script {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        let _: redis::Value = cmd.query_async(&mut con).await.unwrap();
    }
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(info.contains("keyspace_hits:6\r\n"), "{info}");
    assert!(info.contains("keyspace_misses:5\r\n"), "{info}");
    h.stop().await;
}
