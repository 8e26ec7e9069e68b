//! Redis's HyperLogLog, byte for byte: the `HYLL` string layout (16-byte header with the cached
//! cardinality, sparse and dense register encodings), MurmurHash64A element hashing and the
//! Ertl cardinality estimator, so PFCOUNT results and the stored strings equal redis-server's.
//! Pure.
//!
//! Layout: `"HYLL"`, encoding (0 dense, 1 sparse), 3 unused zero bytes, 8 bytes of cached
//! cardinality (little endian; the top bit of the last byte set means "stale"), then the
//! registers. 16384 registers of 6 bits each. Dense: the registers packed LSB first. Sparse: a
//! run-length code of opcodes ZERO `00xxxxxx` (1..64 zero registers), XZERO `01xxxxxx yyyyyyyy`
//! (1..16384 zero registers) and VAL `1vvvvvxx` (1..4 registers of value 1..32).

/// Number of index bits taken from the hash.
const P: u32 = 14;
/// Bits of the hash left for the run of zeros.
const Q: u32 = 64 - P;
pub const REGISTERS: usize = 1 << P;
const REGISTER_MAX: u8 = 63;
pub const HEADER_LEN: usize = 16;
pub const DENSE_LEN: usize = HEADER_LEN + (REGISTERS * 6).div_ceil(8);
const ENCODING_DENSE: u8 = 0;
const ENCODING_SPARSE: u8 = 1;
const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;
/// 0.5 / ln(2): the estimator's bias constant for m → ∞.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// The string is not a well-formed HyperLogLog (Redis: "INVALIDOBJ Corrupted HLL object").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// Redis's `MurmurHash64A` (little-endian block reads, as on the x86/ARM builds).
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        let mut word = [0u8; 8];
        word.copy_from_slice(block);
        let mut k = u64::from_le_bytes(word).wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element goes to and the length of its run of zeros plus one (1..=Q+1).
pub fn register_and_rank(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, 0xadc8_3b19);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // The sentinel bit bounds the count at Q+1 for hashes whose high bits are all zero.
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// Whether `s` passes Redis's `isHLLObjectOrReply` checks.
pub fn is_valid(s: &[u8]) -> bool {
    s.len() >= HEADER_LEN
        && s.starts_with(b"HYLL")
        && s[4] <= ENCODING_SPARSE
        && (s[4] != ENCODING_DENSE || s.len() == DENSE_LEN)
}

/// An empty HyperLogLog as PFADD creates it: sparse, one XZERO covering every register, and a
/// valid cached cardinality of 0.
pub fn new_sparse() -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + 2);
    v.extend_from_slice(b"HYLL");
    v.push(ENCODING_SPARSE);
    v.extend_from_slice(&[0; 11]);
    push_xzero(&mut v, REGISTERS);
    v
}

fn is_dense(s: &[u8]) -> bool {
    s.get(4) == Some(&ENCODING_DENSE)
}

/// The cached cardinality, if it is not stale.
pub fn cached_cardinality(s: &[u8]) -> Option<u64> {
    let card: [u8; 8] = s.get(8..16)?.try_into().ok()?;
    (card[7] & 0x80 == 0).then(|| u64::from_le_bytes(card))
}

pub fn set_cached_cardinality(s: &mut [u8], card: u64) {
    if let Some(dst) = s.get_mut(8..16) {
        dst.copy_from_slice(&card.to_le_bytes());
    }
}

pub fn invalidate_cache(s: &mut [u8]) {
    if let Some(b) = s.get_mut(15) {
        *b |= 0x80;
    }
}

fn dense_get(regs: &[u8], index: usize) -> u8 {
    let bit = index * 6;
    let (byte, shift) = (bit / 8, bit % 8);
    let b0 = regs.get(byte).copied().unwrap_or(0) as u16;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u16;
    (((b0 | (b1 << 8)) >> shift) as u8) & REGISTER_MAX
}

fn dense_set(regs: &mut [u8], index: usize, value: u8) {
    let bit = index * 6;
    let (byte, shift) = (bit / 8, bit % 8);
    let window = (REGISTER_MAX as u16) << shift;
    let v = ((value & REGISTER_MAX) as u16) << shift;
    if let Some(b) = regs.get_mut(byte) {
        *b = (*b & !(window as u8)) | v as u8;
    }
    if let Some(b) = regs.get_mut(byte + 1) {
        *b = (*b & !((window >> 8) as u8)) | (v >> 8) as u8;
    }
}

/// Raise a dense register to `value`; true if it changed.
fn dense_raise(regs: &mut [u8], index: usize, value: u8) -> bool {
    if value > dense_get(regs, index) {
        dense_set(regs, index, value);
        true
    } else {
        false
    }
}

/// One decoded sparse opcode.
#[derive(Debug, Clone, Copy)]
enum Op {
    Zero(usize),
    XZero(usize),
    Val(u8, usize),
}

impl Op {
    fn len_bytes(self) -> usize {
        match self {
            Op::XZero(_) => 2,
            _ => 1,
        }
    }
    fn span(self) -> usize {
        match self {
            Op::Zero(n) | Op::XZero(n) | Op::Val(_, n) => n,
        }
    }
}

/// Decode the opcode at the start of `s` (None if `s` is empty). An XZERO cut off by the end
/// of the string reads its second byte as 0, as Redis does (it reads the sds terminator), so
/// even corrupted values behave the same.
fn decode(s: &[u8]) -> Option<Op> {
    let b = *s.first()?;
    Some(if b & 0x80 != 0 {
        Op::Val(((b >> 2) & 0x1f) + 1, (b & 3) as usize + 1)
    } else if b & 0x40 == 0 {
        Op::Zero((b & 0x3f) as usize + 1)
    } else {
        let lo = s.get(1).copied().unwrap_or(0);
        Op::XZero((((b & 0x3f) as usize) << 8 | lo as usize) + 1)
    })
}

fn val_byte(value: u8, len: usize) -> u8 {
    0x80 | ((value - 1) << 2) | (len as u8 - 1)
}

fn push_xzero(out: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    out.push(0x40 | (l >> 8) as u8);
    out.push((l & 0xff) as u8);
}

/// A run of `len` zero registers as ZERO or XZERO, as Redis chooses.
fn push_zeros(out: &mut Vec<u8>, len: usize) {
    if len > SPARSE_ZERO_MAX_LEN {
        push_xzero(out, len);
    } else {
        out.push((len - 1) as u8);
    }
}

/// Walk the sparse opcodes, calling `f(first_register, op)`; fails on a cut-off opcode or when
/// the runs do not cover exactly all registers (VAL runs past the end stop the walk, as in
/// Redis's merge).
fn walk_sparse(s: &[u8], mut f: impl FnMut(usize, Op)) -> Result<(), Corrupt> {
    let mut pos = HEADER_LEN;
    let mut index = 0usize;
    while pos < s.len() {
        let op = decode(&s[pos..]).ok_or(Corrupt)?;
        if let Op::Val(..) = op {
            if index + op.span() > REGISTERS {
                break;
            }
        }
        f(index, op);
        index += op.span();
        pos += op.len_bytes();
    }
    if index == REGISTERS {
        Ok(())
    } else {
        Err(Corrupt)
    }
}

/// Convert a sparse HyperLogLog to dense in place (the header, cached value included, is kept).
pub fn to_dense(s: &mut Vec<u8>) -> Result<(), Corrupt> {
    if is_dense(s) {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_LEN];
    dense[..HEADER_LEN].copy_from_slice(&s[..HEADER_LEN]);
    dense[4] = ENCODING_DENSE;
    let regs = &mut dense[HEADER_LEN..];
    walk_sparse(s, |first, op| {
        if let Op::Val(v, n) = op {
            for i in first..first + n {
                dense_set(regs, i, v);
            }
        }
    })?;
    *s = dense;
    Ok(())
}

/// Raise register `index` to `value` (Redis `hllSparseSet` / `hllDenseSet`), converting to
/// dense when the value does not fit a VAL opcode or the string would pass `sparse_max_bytes`.
/// Returns whether the register changed.
pub fn raise_register(
    s: &mut Vec<u8>,
    index: usize,
    value: u8,
    sparse_max_bytes: usize,
) -> Result<bool, Corrupt> {
    if is_dense(s) {
        return Ok(dense_raise(&mut s[HEADER_LEN..], index, value));
    }
    if value > SPARSE_VAL_MAX_VALUE {
        return promote(s, index, value);
    }
    // Step 1: find the opcode covering `index`, and the one before it.
    let mut pos = HEADER_LEN;
    let mut first = 0usize;
    let mut prev: Option<usize> = None;
    let mut found = None;
    while pos < s.len() {
        let op = decode(&s[pos..]).ok_or(Corrupt)?;
        if index < first + op.span() {
            found = Some(op);
            break;
        }
        prev = Some(pos);
        pos += op.len_bytes();
        first += op.span();
    }
    let Some(op) = found else {
        return Err(Corrupt);
    };
    // Step 2: the cheap in-place cases, else build the replacement sequence.
    match op {
        Op::Val(current, _) if current >= value => return Ok(false),
        Op::Val(_, 1) | Op::Zero(1) => {
            s[pos] = val_byte(value, 1);
            merge_adjacent_vals(s, prev.unwrap_or(HEADER_LEN));
            invalidate_cache(s);
            return Ok(true);
        }
        _ => {}
    }
    let last = first + op.span() - 1;
    let mut seq = Vec::with_capacity(5);
    match op {
        Op::Val(current, _) => {
            if index != first {
                seq.push(val_byte(current, index - first));
            }
            seq.push(val_byte(value, 1));
            if index != last {
                seq.push(val_byte(current, last - index));
            }
        }
        Op::Zero(_) | Op::XZero(_) => {
            if index != first {
                push_zeros(&mut seq, index - first);
            }
            seq.push(val_byte(value, 1));
            if index != last {
                push_zeros(&mut seq, last - index);
            }
        }
    }
    // Step 3: splice it in, unless that makes the sparse form too big.
    let old_len = op.len_bytes();
    if seq.len() > old_len && s.len() + seq.len() - old_len > sparse_max_bytes {
        return promote(s, index, value);
    }
    let old_end = (pos + old_len).min(s.len());
    s.splice(pos..old_end, seq);
    // Step 4: merge runs of equal VALs the split may have made adjacent.
    merge_adjacent_vals(s, prev.unwrap_or(HEADER_LEN));
    invalidate_cache(s);
    Ok(true)
}

fn promote(s: &mut Vec<u8>, index: usize, value: u8) -> Result<bool, Corrupt> {
    to_dense(s)?;
    Ok(dense_raise(&mut s[HEADER_LEN..], index, value))
}

/// Redis's step 4: scanning up to five opcodes from `from`, merge adjacent VAL opcodes with the
/// same value while the run fits one opcode.
fn merge_adjacent_vals(s: &mut Vec<u8>, from: usize) {
    let mut p = from;
    let mut budget = 5;
    while p < s.len() && budget > 0 {
        budget -= 1;
        let b = s[p];
        if b & 0xc0 == 0x40 {
            p += 2;
            continue;
        }
        if b & 0x80 == 0 {
            p += 1;
            continue;
        }
        if let Some(Op::Val(v2, l2)) = s
            .get(p + 1)
            .filter(|n| *n & 0x80 != 0)
            .and_then(|_| decode(&s[p + 1..]))
        {
            if let Some(Op::Val(v1, l1)) = decode(&s[p..]) {
                if v1 == v2 && l1 + l2 <= SPARSE_VAL_MAX_LEN {
                    s[p + 1] = val_byte(v1, l1 + l2);
                    s.remove(p);
                    // Stay on the merged opcode: it may merge with the next one too.
                    continue;
                }
            }
        }
        p += 1;
    }
}

/// PFADD of one element. Returns whether a register changed.
pub fn add(s: &mut Vec<u8>, element: &[u8], sparse_max_bytes: usize) -> Result<bool, Corrupt> {
    let (index, rank) = register_and_rank(element);
    raise_register(s, index, rank, sparse_max_bytes)
}

/// Fold the registers of `s` into `max` (one byte per register), taking the maximum.
pub fn merge_into(max: &mut [u8], s: &[u8]) -> Result<(), Corrupt> {
    if is_dense(s) {
        let regs = &s[HEADER_LEN..];
        for (i, m) in max.iter_mut().enumerate().take(REGISTERS) {
            *m = (*m).max(dense_get(regs, i));
        }
        return Ok(());
    }
    walk_sparse(s, |first, op| {
        if let Op::Val(v, n) = op {
            for m in max.iter_mut().skip(first).take(n) {
                *m = (*m).max(v);
            }
        }
    })
}

/// The cardinality estimate of a HyperLogLog string (ignoring its cache).
pub fn count(s: &[u8]) -> Result<u64, Corrupt> {
    let mut histogram = [0u32; 64];
    if is_dense(s) {
        let regs = &s[HEADER_LEN..];
        for i in 0..REGISTERS {
            histogram[dense_get(regs, i) as usize] += 1;
        }
    } else {
        let mut index = 0usize;
        let mut pos = HEADER_LEN;
        while pos < s.len() {
            let op = decode(&s[pos..]).ok_or(Corrupt)?;
            index += op.span();
            // Past the last register the string is corrupt whatever follows; stopping here
            // also keeps the 32-bit histogram from overflowing on a long forged string.
            if index > REGISTERS {
                return Err(Corrupt);
            }
            match op {
                Op::Zero(n) | Op::XZero(n) => histogram[0] += n as u32,
                Op::Val(v, n) => histogram[v as usize] += n as u32,
            }
            pos += op.len_bytes();
        }
        if index != REGISTERS {
            return Err(Corrupt);
        }
    }
    Ok(estimate(&histogram))
}

/// The cardinality estimate of raw registers (one byte each), as multi-key PFCOUNT computes.
pub fn count_registers(max: &[u8]) -> u64 {
    let mut histogram = [0u32; 64];
    for &r in max.iter().take(REGISTERS) {
        histogram[(r & REGISTER_MAX) as usize] += 1;
    }
    estimate(&histogram)
}

/// Ertl's improved estimator ("New cardinality estimation algorithms for HyperLogLog
/// sketches", arXiv:1702.01284), evaluated in the same order as Redis so the doubles agree.
fn estimate(histogram: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - histogram[Q as usize + 1] as f64) / m);
    for j in (1..=Q as usize).rev() {
        z += histogram[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histogram[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let z_prev = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if z_prev == z {
            return z / 3.0;
        }
    }
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let z_prev = z;
        z += x * y;
        y += y;
        if z_prev == z {
            return z;
        }
    }
}

/// Whether the HyperLogLog uses the sparse encoding (PFDEBUG ENCODING).
pub fn is_sparse(s: &[u8]) -> bool {
    !is_dense(s)
}

/// All register values of a dense HyperLogLog (PFDEBUG GETREG).
pub fn dense_registers(s: &[u8]) -> Vec<u8> {
    let regs = s.get(HEADER_LEN..).unwrap_or(&[]);
    (0..REGISTERS).map(|i| dense_get(regs, i)).collect()
}

/// The sparse opcodes as PFDEBUG DECODE prints them: `z:len`, `Z:len`, `v:value,len`.
pub fn describe_sparse(s: &[u8]) -> String {
    let mut out = Vec::new();
    let mut pos = HEADER_LEN;
    while let Some(op) = s.get(pos..).and_then(decode) {
        out.push(match op {
            Op::Zero(n) => format!("z:{n}"),
            Op::XZero(n) => format!("Z:{n}"),
            Op::Val(v, n) => format!("v:{v},{n}"),
        });
        pos += op.len_bytes();
    }
    out.join(" ")
}

/// PFSELFTEST: register packing round-trips and the estimate of a known set stays within the
/// expected error. Returns a description of the first failure.
pub fn self_test() -> Result<(), String> {
    let mut regs = vec![0u8; DENSE_LEN - HEADER_LEN];
    for i in 0..REGISTERS {
        dense_set(&mut regs, i, (i * 7 % 64) as u8);
    }
    for i in 0..REGISTERS {
        if dense_get(&regs, i) != (i * 7 % 64) as u8 {
            return Err(format!("TESTFAILED Register error at index {i}"));
        }
    }
    let mut sparse = new_sparse();
    let mut dense = new_sparse();
    to_dense(&mut dense).map_err(|_| "TESTFAILED dense conversion".to_string())?;
    for i in 0..100_000u32 {
        let e = i.to_le_bytes();
        let a = add(&mut sparse, &e, 3000).map_err(|_| "TESTFAILED sparse add".to_string())?;
        let b = add(&mut dense, &e, usize::MAX).map_err(|_| "TESTFAILED dense add".to_string())?;
        if a != b {
            return Err(format!(
                "TESTFAILED sparse and dense disagree at element {i}"
            ));
        }
    }
    let estimate = count(&dense).map_err(|_| "TESTFAILED count".to_string())?;
    let error = (estimate as f64 - 100_000.0).abs() / 100_000.0;
    // 1.04/sqrt(m) is the standard error; five of them is far outside normal variation.
    if error > 5.0 * 1.04 / (REGISTERS as f64).sqrt() {
        return Err(format!(
            "TESTFAILED too big error. card:100000 estimate:{estimate}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_test_passes() {
        assert_eq!(self_test(), Ok(()));
    }

    #[test]
    fn empty_hll_is_the_redis_bytes() {
        let h = new_sparse();
        assert_eq!(h.len(), 18);
        assert_eq!(&h[..5], b"HYLL\x01");
        assert_eq!(&h[16..], &[0x7f, 0xff]);
        assert_eq!(count(&h), Ok(0));
        assert_eq!(cached_cardinality(&h), Some(0));
    }

    #[test]
    fn dense_registers_round_trip() {
        let mut regs = vec![0u8; DENSE_LEN - HEADER_LEN];
        for i in 0..REGISTERS {
            dense_set(&mut regs, i, (i % 64) as u8);
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&regs, i), (i % 64) as u8);
        }
    }

    #[test]
    fn sparse_and_dense_agree() {
        let mut sparse = new_sparse();
        let mut dense = new_sparse();
        to_dense(&mut dense).unwrap();
        for i in 0..2000 {
            let e = format!("element:{i}");
            assert_eq!(
                add(&mut sparse, e.as_bytes(), 1 << 20).unwrap(),
                add(&mut dense, e.as_bytes(), 1 << 20).unwrap()
            );
        }
        assert!(!is_dense(&sparse));
        assert_eq!(count(&sparse), count(&dense));
        let mut converted = sparse.clone();
        to_dense(&mut converted).unwrap();
        assert_eq!(converted[HEADER_LEN..], dense[HEADER_LEN..]);
        let estimate = count(&dense).unwrap();
        assert!((1900..2100).contains(&estimate), "{estimate}");
    }

    #[test]
    fn counting_a_sparse_string_of_too_many_registers_fails_without_overflow() {
        // 2^18 XZERO opcodes of 16384 registers each: 2^32 zero registers, which a 32-bit
        // histogram slot cannot hold (a client can SET such a 512 KiB string).
        let mut s = new_sparse();
        s.truncate(HEADER_LEN);
        for _ in 0..1 << 18 {
            push_xzero(&mut s, REGISTERS);
        }
        assert!(is_valid(&s));
        assert_eq!(count(&s), Err(Corrupt));
    }
}
