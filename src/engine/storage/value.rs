//! The value stored under a key, one variant per Redis type, and what TYPE and OBJECT ENCODING
//! report for it. Pure.

use super::compact::CompactBytes;
use super::hash::HashValue;
use super::list::ListValue;
use super::set::SetValue;
use super::stream::StreamValue;
use super::zset::ZSetValue;

#[derive(Debug, Clone)]
pub enum Value {
    Str(CompactBytes),
    List(Box<ListValue>),
    // Held inline, not boxed: each is 16 bytes that fit beside `Str`'s tag (the enum stays 24
    // bytes), and a small collection then costs one allocation, its packed buffer.
    Hash(HashValue),
    Set(SetValue),
    ZSet(ZSetValue),
    Stream(Box<StreamValue>),
}

/// The Redis type of a value, as TYPE and SCAN TYPE name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    String,
    List,
    Hash,
    Set,
    ZSet,
    Stream,
}

impl ValueType {
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::List => "list",
            ValueType::Hash => "hash",
            ValueType::Set => "set",
            ValueType::ZSet => "zset",
            ValueType::Stream => "stream",
        }
    }
    pub fn from_name(name: &[u8]) -> Option<ValueType> {
        Some(match name.to_ascii_lowercase().as_slice() {
            b"string" => ValueType::String,
            b"list" => ValueType::List,
            b"hash" => ValueType::Hash,
            b"set" => ValueType::Set,
            b"zset" => ValueType::ZSet,
            b"stream" => ValueType::Stream,
            _ => return None,
        })
    }
}

impl Value {
    /// Where reading this value starts: a string's bytes, or the box of a collection (for
    /// prefetching; see [`super::prefetch`]).
    pub fn first_heap_byte(&self) -> *const u8 {
        match self {
            Value::Str(s) => s.as_slice().as_ptr(),
            Value::List(b) => (&**b as *const ListValue).cast(),
            Value::Hash(h) => h.heap_ptr(),
            Value::Set(s) => s.heap_ptr(),
            Value::ZSet(z) => z.heap_ptr(),
            Value::Stream(b) => (&**b as *const StreamValue).cast(),
        }
    }

    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Str(_) => ValueType::String,
            Value::List(_) => ValueType::List,
            Value::Hash(_) => ValueType::Hash,
            Value::Set(_) => ValueType::Set,
            Value::ZSet(_) => ValueType::ZSet,
            Value::Stream(_) => ValueType::Stream,
        }
    }

    pub fn str(b: &[u8]) -> Value {
        Value::Str(CompactBytes::new(b))
    }

    /// About how many allocations freeing this value walks (Redis's `lazyfreeGetFreeEffort`):
    /// 1 for a string or a packed collection (one block), the element count of a big hash,
    /// set or sorted set, the list's length over 128 (Redis counts quicklist nodes, ~128 small
    /// elements each), and a stream's entries plus, for each consumer group, one and the first
    /// group's pending entries (Redis's estimate too).
    pub fn free_effort(&self) -> usize {
        match self {
            Value::Str(_) => 1,
            Value::List(l) => l.len() / 128 + 1,
            Value::Hash(h) if h.is_packed() => 1,
            Value::Hash(h) => h.len(),
            Value::Set(s) if s.is_intset() => 1,
            Value::Set(s) => s.len(),
            Value::ZSet(z) if z.is_packed() => 1,
            Value::ZSet(z) => z.len(),
            Value::Stream(st) => {
                let pel = st.groups.values().next().map_or(0, |g| g.pel.len());
                st.entries.len() + st.groups.len() * (1 + pel)
            }
        }
    }

    /// An estimate of the bytes this value occupies (for MEMORY USAGE and eviction).
    pub fn memory_estimate(&self) -> usize {
        match self {
            Value::Str(s) => 24 + s.heap_size(),
            Value::List(l) => l.memory_estimate(),
            Value::Hash(h) => h.memory_estimate(),
            Value::Set(s) => s.memory_estimate(),
            Value::ZSet(z) => z.memory_estimate(),
            Value::Stream(s) => s.memory_estimate(),
        }
    }
}

/// What OBJECT ENCODING reports for a string, following Redis's rules: `int` for canonical
/// integers that fit a long, `embstr` up to 44 bytes, `raw` beyond.
pub fn string_encoding(s: &[u8]) -> &'static str {
    if s.len() <= 20 && crate::engine::storage::number::parse_i64_strict(s).is_some() {
        "int"
    } else if s.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_stay_three_words() {
        // Every key's entry holds one; collections inline must not grow it.
        assert_eq!(std::mem::size_of::<super::Value>(), 24);
    }
}
