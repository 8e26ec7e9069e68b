//! The keyspace and the data structures behind each Redis type. Pure: no sockets, no files.

pub mod compact;
pub mod db;
pub mod hash;
pub mod hyperloglog;
pub mod list;
pub mod number;
pub mod packed;
pub mod prefetch;
pub mod rdb;
pub mod rdbfile;
pub mod serialise;
pub mod set;
pub mod stream;
pub mod value;
pub mod zset;

pub use compact::CompactBytes;
pub use db::{Db, Entry, Expiry};
pub use value::{Value, ValueType};
