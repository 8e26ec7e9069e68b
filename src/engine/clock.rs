//! The engine's clock for data. Reads the system clock; no other I/O.

/// Milliseconds since the Unix epoch (the engine's only clock for data: expiry is absolute).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
