//! The RedisPair API (group `redispair.io`, version `v1alpha1`): CRD types, labels and names
//! shared by the operator, the kubectl plugin and `crdgen`. Pure: no client, no I/O.

pub mod backup;
pub mod constants;
pub mod redis_pair;

pub use backup::*;
pub use redis_pair::*;
