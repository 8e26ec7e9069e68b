//! Random identifiers: the run id, replication ids, ACL GENPASS passwords. Does no I/O (reads
//! the thread's random generator).

/// `n` random lowercase hexadecimal digits.
pub fn random_hex(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).expect("digit < 16"))
        .collect()
}
