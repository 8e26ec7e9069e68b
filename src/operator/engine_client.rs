//! The operator's side of the engine protocol, in one small module: probing an engine (INFO
//! replication with Redis's field names plus `term`) and the admin commands (`REDISPAIR
//! PROMOTE/DEMOTE/LEASE/AUTHORIZE-DEGRADE`). Parsing is pure; [`EngineClient`] does I/O (RESP
//! over TCP with the `redis` crate, admin user, short timeouts).
//!
//! Only standard INFO fields and `term` are read, not the shape of `REDISPAIR STATE`, so the
//! engine can evolve its admin report freely.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

use crate::api::constants::{ADMIN_USER, ENGINE_PORT, ENGINE_TLS_PORT};
use crate::failover::Role;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("engine {addr}: {source}")]
    Redis {
        addr: String,
        #[source]
        source: redis::RedisError,
    },
    #[error("engine {addr}: INFO replication has no {field}")]
    MissingField { addr: String, field: &'static str },
}

impl EngineError {
    pub fn category(&self) -> &'static str {
        match self {
            EngineError::Redis { .. } => "EngineUnreachable",
            EngineError::MissingField { .. } => "EngineProtocol",
        }
    }
}

/// What the operator reads from INFO replication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    pub role: Role,
    pub term: i64,
    /// master_repl_offset (a replica reports the offset it applied there too).
    pub offset: i64,
    /// Replica: master_link_status:up.
    pub link_up: bool,
    /// Replica: the master it follows.
    pub master_host: Option<String>,
    /// Master: semi-sync degraded to async (the replica may lack acknowledged writes).
    pub degraded: bool,
    /// Master: offset acknowledged by its replica (slave0), if one is connected.
    pub replica_ack_offset: Option<i64>,
    /// Master: seconds since the replica last acknowledged.
    pub replica_lag_seconds: Option<i64>,
    /// Replica: it refused to follow its master because the master's history does not hold
    /// its position (it stays detached until told to full-sync).
    pub detached_no_history: bool,
    /// Its log cannot be written (`aof_last_write_status:err`: a full or failing disk): it
    /// refuses writes with MISCONF, so as a master it is failed over, as a replica it cannot
    /// acknowledge. An engine that does not report the field is taken to persist.
    pub cannot_persist: bool,
    /// Its archiver (INFO persistence, `archive_*`), when archiving is on.
    pub archive: Option<ArchiveInfo>,
}

/// The archiver's state, from INFO persistence (docs/backup.md, "The archiver").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArchiveInfo {
    /// starting, ok or failing.
    pub status: String,
    pub archived_offset: i64,
    pub lag_bytes: i64,
    pub lag_ms: i64,
    pub last_error: Option<String>,
}

/// What `REDISPAIR BACKUP-STATUS` says of one base backup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EngineBackup {
    /// snapshotting, uploading, completed or failed.
    pub phase: String,
    pub start_offset: Option<i64>,
    pub end_offset: Option<i64>,
    pub start_time_ms: Option<i64>,
    pub end_time_ms: Option<i64>,
    pub size: Option<i64>,
    pub error: Option<String>,
}

/// Parse the map `REDISPAIR BACKUP-STATUS` answers (numbers are -1 until known).
pub fn parse_backup_status(fields: &HashMap<String, redis::Value>) -> EngineBackup {
    let text = |k: &str| match fields.get(k) {
        Some(redis::Value::BulkString(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        Some(redis::Value::SimpleString(s)) => Some(s.clone()),
        _ => None,
    };
    let num = |k: &str| match fields.get(k) {
        Some(redis::Value::Int(n)) if *n >= 0 => Some(*n),
        _ => None,
    };
    EngineBackup {
        phase: text("phase").unwrap_or_default(),
        start_offset: num("start_offset"),
        end_offset: num("end_offset"),
        start_time_ms: num("start_time_ms"),
        end_time_ms: num("end_time_ms"),
        size: num("size"),
        error: text("error").filter(|e| !e.is_empty()),
    }
}

/// Parse the text of `INFO replication persistence` (the persistence section is optional).
pub fn parse_info_replication(addr: &str, text: &str) -> Result<EngineInfo, EngineError> {
    let fields: HashMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.trim_end().split_once(':'))
        .collect();
    let missing = |field| EngineError::MissingField {
        addr: addr.to_string(),
        field,
    };
    let int = |k: &str| fields.get(k).and_then(|v| v.trim().parse::<i64>().ok());
    let role = match fields.get("role").copied() {
        Some("master") => Role::Master,
        Some("slave") | Some("replica") => Role::Replica,
        _ => return Err(missing("role")),
    };
    let offset = int("master_repl_offset")
        .or_else(|| int("slave_repl_offset"))
        .ok_or_else(|| missing("master_repl_offset"))?;
    // `slave0:ip=..,port=..,state=online,offset=N,lag=S`
    let slave0: HashMap<&str, &str> = fields
        .get("slave0")
        .map(|v| v.split(',').filter_map(|kv| kv.split_once('=')).collect())
        .unwrap_or_default();
    Ok(EngineInfo {
        role,
        // An engine without terms (a plain Redis) is at term 0.
        term: int("term").unwrap_or(0),
        offset,
        link_up: fields.get("master_link_status").copied() == Some("up"),
        master_host: fields
            .get("master_host")
            .map(|h| h.to_string())
            .filter(|h| !h.is_empty()),
        degraded: int("semi_sync_degraded") == Some(1),
        replica_ack_offset: slave0.get("offset").and_then(|v| v.parse().ok()),
        replica_lag_seconds: slave0.get("lag").and_then(|v| v.parse().ok()),
        detached_no_history: fields
            .get("link_down_reason")
            .is_some_and(|r| r.starts_with("NOHISTORY")),
        cannot_persist: fields
            .get("aof_last_write_status")
            .is_some_and(|s| s.trim() == "err"),
        archive: (int("archive_enabled") == Some(1)).then(|| ArchiveInfo {
            status: fields
                .get("archive_status")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            archived_offset: int("archived_offset").unwrap_or(0),
            lag_bytes: int("archive_lag_bytes").unwrap_or(0),
            lag_ms: int("archive_lag_ms").unwrap_or(0),
            last_error: fields
                .get("archive_last_error")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        }),
    })
}

/// How the operator reaches a pair's engines: the admin password, and the CA when the pair
/// has TLS (the connection then goes to the TLS port and verifies the engine against it).
#[derive(Clone, PartialEq, Eq)]
pub struct EngineAccess {
    pub admin_password: String,
    /// PEM of the pair's `ca.crt`.
    pub tls_ca: Option<Vec<u8>>,
    /// PEM certificate and key the operator presents (the pair's own `tls.crt` and
    /// `tls.key`), so it still gets in with `authClients: yes`.
    pub tls_client: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for EngineAccess {
    // Never print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineAccess")
            .field("tls", &self.tls_ca.is_some())
            .finish_non_exhaustive()
    }
}

/// A connection to one engine as its admin user.
pub struct EngineClient {
    addr: String,
    conn: MultiplexedConnection,
    /// The port replicas are told to follow a master on: the TLS port when the pair has TLS
    /// (its engines run with `tls-replication yes`).
    peer_port: i32,
}

impl EngineClient {
    /// Connect to `host` on the engine port (the TLS port when `access` has a CA),
    /// authenticating as the admin user.
    ///
    /// Over TLS the engine's certificate must chain to the pair's CA, but its names are not
    /// compared with the pod IP the operator dials (as a replica verifies its master, see
    /// the engine's `tls` module): no certificate issued before a pod is scheduled names its
    /// IP, and the CA is the pair's own.
    pub async fn connect(
        host: &str,
        access: &EngineAccess,
        timeout: Duration,
    ) -> Result<EngineClient, EngineError> {
        let port = if access.tls_ca.is_some() {
            ENGINE_TLS_PORT
        } else {
            ENGINE_PORT
        };
        EngineClient::connect_port(host, port, access, timeout).await
    }

    /// [`EngineClient::connect`] to another port (tests run engines on free ports).
    pub async fn connect_port(
        host: &str,
        port: i32,
        access: &EngineAccess,
        timeout: Duration,
    ) -> Result<EngineClient, EngineError> {
        let addr = format!("{host}:{port}");
        let err = |source| EngineError::Redis {
            addr: addr.clone(),
            source,
        };
        let conn_addr = match access.tls_ca {
            Some(_) => ConnectionAddr::TcpTls {
                host: host.to_string(),
                port: port as u16,
                insecure: false,
                tls_params: None,
            },
            None => ConnectionAddr::Tcp(host.to_string(), port as u16),
        };
        let info = conn_addr
            .into_connection_info()
            .map_err(err)?
            .set_redis_settings(
                RedisConnectionInfo::default()
                    .set_username(ADMIN_USER)
                    .set_password(&access.admin_password)
                    .set_skip_set_lib_name(),
            );
        let client = match &access.tls_ca {
            Some(ca) => {
                let certs = redis::TlsCertificates {
                    client_tls: access.tls_client.as_ref().map(|(cert, key)| {
                        redis::ClientTlsConfig {
                            client_cert: cert.clone(),
                            client_key: key.clone(),
                        }
                    }),
                    root_cert: Some(ca.clone()),
                };
                // `build_with_tls` resets the address's TLS parameters: the chain-only check
                // (names not compared with the pod IP) is set on what it built.
                let built = redis::Client::build_with_tls(info, certs).map_err(err)?;
                let mut addr = built.get_connection_info().addr().clone();
                addr.set_danger_accept_invalid_hostnames(true);
                redis::Client::open(built.get_connection_info().clone().set_addr(addr))
            }
            None => redis::Client::open(info),
        }
        .map_err(err)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(err)?;
        Ok(EngineClient {
            addr,
            conn,
            peer_port: port,
        })
    }

    fn err(&self, source: redis::RedisError) -> EngineError {
        EngineError::Redis {
            addr: self.addr.clone(),
            source,
        }
    }

    pub async fn info(&mut self) -> Result<EngineInfo, EngineError> {
        let text: String = redis::cmd("INFO")
            .arg("replication")
            .arg("persistence")
            .query_async(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        parse_info_replication(&self.addr, &text)
    }

    async fn admin(&mut self, args: &[String]) -> Result<(), EngineError> {
        let mut cmd = redis::cmd("REDISPAIR");
        for a in args {
            cmd.arg(a);
        }
        let _: redis::Value = cmd
            .query_async(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Become master with `term` (idempotent at the same term).
    pub async fn promote(&mut self, term: i64) -> Result<(), EngineError> {
        self.admin(&["PROMOTE".into(), term.to_string()]).await
    }

    /// Follow the master at `host` in `term`; the engine cuts its normal clients.
    pub async fn demote(&mut self, host: &str, term: i64) -> Result<(), EngineError> {
        self.admin(&[
            "DEMOTE".into(),
            host.to_string(),
            self.peer_port.to_string(),
            term.to_string(),
        ])
        .await
    }

    /// Follow the master at `host` in `term`, discarding our data for a full sync.
    pub async fn demote_full_sync(&mut self, host: &str, term: i64) -> Result<(), EngineError> {
        self.admin(&[
            "DEMOTE".into(),
            host.to_string(),
            self.peer_port.to_string(),
            term.to_string(),
            "FORCE-FULL-SYNC".into(),
        ])
        .await
    }

    /// Ask for a base backup `id` (idempotent: one in progress or done is left alone).
    pub async fn backup(&mut self, id: &str) -> Result<(), EngineError> {
        self.admin(&["BACKUP".into(), id.to_string()]).await
    }

    /// The state of base backup `id` on this engine (None: it was never asked for it).
    pub async fn backup_status(&mut self, id: &str) -> Result<Option<EngineBackup>, EngineError> {
        let v: redis::Value = redis::cmd("REDISPAIR")
            .arg("BACKUP-STATUS")
            .arg(id)
            .query_async(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        let pairs: Vec<(redis::Value, redis::Value)> = match v {
            redis::Value::Nil => return Ok(None),
            redis::Value::Map(m) => m,
            redis::Value::Array(items) => {
                let mut out = Vec::new();
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    out.push((k, v));
                }
                out
            }
            _ => Vec::new(),
        };
        let fields = pairs
            .into_iter()
            .filter_map(|(k, v)| match k {
                redis::Value::BulkString(b) => Some((String::from_utf8_lossy(&b).into_owned(), v)),
                redis::Value::SimpleString(s) => Some((s, v)),
                _ => None,
            })
            .collect();
        Ok(Some(parse_backup_status(&fields)))
    }

    /// Migration: follow the source Redis (`masteruser`/`masterauth`, `master-tls` when the
    /// source speaks TLS, then `REPLICAOF`), as a stock replica would. Already following it:
    /// nothing changes (a link reads `master-tls` when it connects).
    pub async fn follow_source(
        &mut self,
        host: &str,
        port: i32,
        user: Option<&str>,
        password: Option<&str>,
        tls: bool,
    ) -> Result<(), EngineError> {
        // Only pairs whose source speaks TLS send the setting: an engine of an older image
        // (before master-tls) keeps working for the others.
        if tls {
            self.config_set("master-tls", "yes").await?;
        }
        self.config_set(
            "masteruser",
            user.filter(|_| password.is_some()).unwrap_or(""),
        )
        .await?;
        self.config_set("masterauth", password.unwrap_or(""))
            .await?;
        let _: redis::Value = redis::cmd("REPLICAOF")
            .arg(host)
            .arg(port)
            .query_async(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Migration over: forget the source's credentials, so the next link (to the pair's
    /// master) authenticates as the admin user again, and, for a TLS source, its TLS settings
    /// (the link to the pair's master uses the pair's own, `tls-replication`).
    pub async fn forget_source(&mut self, tls: bool) -> Result<(), EngineError> {
        if tls {
            self.config_set("master-tls", "no").await?;
        }
        self.config_set("masterauth", "").await?;
        self.config_set("masteruser", "").await
    }

    async fn config_set(&mut self, name: &str, value: &str) -> Result<(), EngineError> {
        let _: redis::Value = redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query_async(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Renew the master's write lease.
    pub async fn grant_lease(&mut self, ms: u64) -> Result<(), EngineError> {
        self.admin(&["LEASE".into(), ms.to_string()]).await
    }

    /// Let the master stop waiting for its replica in `term`.
    pub async fn authorize_degrade(&mut self, term: i64) -> Result<(), EngineError> {
        self.admin(&["AUTHORIZE-DEGRADE".into(), term.to_string()])
            .await
    }

    /// Pause writes on a master for a planned switchover (CLIENT PAUSE WRITE).
    pub async fn pause_writes(&mut self, ms: u64) -> Result<(), EngineError> {
        let _: redis::Value = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(ms)
            .arg("WRITE")
            .query_async(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Set the default user's password (rotation: clients authenticated before keep their
    /// connections, new ones need the new password).
    pub async fn set_requirepass(&mut self, password: &str) -> Result<(), EngineError> {
        let _: redis::Value = redis::cmd("CONFIG")
            .arg("SET")
            .arg("requirepass")
            .arg(password)
            .query_async(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Cut every normal client (fencing a master that is still reachable).
    pub async fn kill_normal_clients(&mut self) -> Result<(), EngineError> {
        let _: redis::Value = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .arg("SKIPME")
            .arg("yes")
            .query_async(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_master_with_its_replica() {
        let text = "# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:ip=10.0.0.2,port=6379,state=online,offset=120,lag=0\r\nmaster_replid:abc\r\nmaster_repl_offset:130\r\nterm:4\r\nsemi_sync_degraded:0\r\n";
        let i = parse_info_replication("a", text).unwrap();
        assert_eq!(i.role, Role::Master);
        assert_eq!((i.term, i.offset), (4, 130));
        assert_eq!(i.replica_ack_offset, Some(120));
        assert_eq!(i.replica_lag_seconds, Some(0));
        assert!(!i.degraded && !i.link_up);
    }

    #[test]
    fn parses_a_replica() {
        let text = "role:slave\r\nmaster_host:10.0.0.1\r\nmaster_port:6379\r\nmaster_link_status:up\r\nslave_repl_offset:77\r\nconnected_slaves:0\r\nmaster_repl_offset:77\r\nterm:2\r\n";
        let i = parse_info_replication("b", text).unwrap();
        assert_eq!(i.role, Role::Replica);
        assert!(i.link_up && !i.detached_no_history);
        assert_eq!(i.master_host.as_deref(), Some("10.0.0.1"));
        let detached = parse_info_replication(
            "b",
            "role:slave\nmaster_link_status:down\nslave_repl_offset:5\nlink_down_reason:NOHISTORY master history (x up to 9) does not contain the replica's position (y 5)\n",
        )
        .unwrap();
        assert!(detached.detached_no_history);
        assert_eq!((i.term, i.offset), (2, 77));
    }

    #[test]
    fn degraded_master_and_missing_fields() {
        let i = parse_info_replication(
            "a",
            "role:master\nmaster_repl_offset:5\nsemi_sync_degraded:1\n",
        )
        .unwrap();
        assert!(i.degraded);
        assert_eq!(i.term, 0);
        // No persistence section: taken to persist.
        assert!(!i.cannot_persist);
        let full = parse_info_replication(
            "a",
            "# Replication\r\nrole:master\r\nmaster_repl_offset:5\r\n\r\n# Persistence\r\naof_enabled:1\r\naof_last_write_status:err\r\n",
        )
        .unwrap();
        assert!(full.cannot_persist);
        assert!(matches!(
            parse_info_replication("a", "master_repl_offset:5\n"),
            Err(EngineError::MissingField { field: "role", .. })
        ));
    }
}
