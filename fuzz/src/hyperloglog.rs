//! Fuzz the HyperLogLog string decoder (storage::hyperloglog) on what a client can store with
//! SET and then hand to PFCOUNT, PFMERGE, PFADD and PFDEBUG: the first byte chooses whether the
//! rest is the whole string (mode 0), or the registers behind a sparse (1) or dense (2, 3)
//! header, and the hll-sparse-max-bytes used by PFADD. Nothing may panic. On a string PFCOUNT
//! accepts: PFCOUNT of one key (the sparse walk) and of several (the register merge) agree,
//! the dense conversion keeps every register, and PFADD gives the registers an independent
//! model predicts, whether it runs on the sparse or the dense form. Pure.

use redispair::engine::storage::hyperloglog as hll;

/// hll-sparse-max-bytes values: 0 and 16 force promotions to dense, 3000 is the default.
const SPARSE_MAX_BYTES: [usize; 4] = [0, 16, 300, 3000];

fn registers(s: &[u8]) -> Option<Vec<u8>> {
    let mut max = vec![0u8; hll::REGISTERS];
    hll::merge_into(&mut max, s).ok()?;
    Some(max)
}

/// One input: see the module's documentation.
pub fn fuzz_one(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let s = match mode & 3 {
        0 => rest.to_vec(),
        encoding => {
            let mut s = b"HYLL".to_vec();
            s.push(u8::from(encoding == 1));
            // Unused bytes, then the cached cardinality marked stale.
            s.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]);
            s.extend_from_slice(rest);
            if encoding != 1 {
                s.resize(hll::DENSE_LEN, 0);
            }
            s
        }
    };
    if !hll::is_valid(&s) {
        return; // WRONGTYPE before any decoding.
    }
    let sparse_max = SPARSE_MAX_BYTES[(mode >> 2) as usize & 3];
    // What the commands do, on the string as stored.
    let counted = hll::count(&s);
    let merged = registers(&s);
    let _ = hll::describe_sparse(&s);
    let _ = hll::cached_cardinality(&s);
    let mut dense = s.clone();
    let densified = hll::to_dense(&mut dense);
    let _ = hll::dense_registers(&dense);
    let elements: Vec<&[u8]> = rest.chunks(3).take(8).collect();
    let mut added = s.clone();
    let mut add_results = Vec::new();
    for e in &elements {
        let r = hll::add(&mut added, e, sparse_max);
        add_results.push(r);
        if r.is_err() {
            break;
        }
    }
    let _ = hll::count(&added);
    let _ = registers(&added);

    // On a well-formed HyperLogLog (PFCOUNT accepts it), the encodings must agree.
    let Ok(card) = counted else {
        return;
    };
    let max = merged.expect("PFCOUNT of one key accepts what PFCOUNT of several refuses");
    assert_eq!(
        hll::count_registers(&max),
        card,
        "PFCOUNT of one key vs several"
    );
    densified.expect("a HyperLogLog PFCOUNT accepts converts to dense");
    assert_eq!(hll::dense_registers(&dense), max, "dense conversion");
    assert_eq!(hll::count(&dense), Ok(card));

    // PFADD: the model raises each element's register to its rank.
    let mut expected = max.clone();
    let mut dense_added = dense.clone();
    for (e, r) in elements.iter().zip(&add_results) {
        let (index, rank) = hll::register_and_rank(e);
        let changed = rank > expected[index];
        expected[index] = expected[index].max(rank);
        assert_eq!(*r, Ok(changed), "PFADD on the stored form");
        let dense_changed = hll::add(&mut dense_added, e, sparse_max);
        assert_eq!(dense_changed, Ok(changed), "PFADD on the dense form");
    }
    assert_eq!(
        registers(&added).as_ref(),
        Some(&expected),
        "registers after PFADD on the stored form"
    );
    assert_eq!(hll::dense_registers(&dense_added), expected);
    assert_eq!(
        hll::count(&added).ok(),
        Some(hll::count_registers(&expected)),
        "PFCOUNT after PFADD"
    );
    if hll::is_sparse(&added) && added.len() > s.len() {
        assert!(
            added.len() <= sparse_max,
            "a sparse HLL grew past hll-sparse-max-bytes"
        );
    }
}
