//! Throughput of the hashes the format uses or could use, on inputs the size
//! of annals batches: CRC-32 (frame checksums), SHA-256 (the hash chain) and
//! BLAKE3 (the alternative the design considered).
//!
//! ```sh
//! cargo run --release --example hash_speed
//! ```

use std::time::Instant;

use sha2::Digest;

fn gigabytes_per_second(size: usize, mut hash: impl FnMut(&[u8]) -> u8) -> f64 {
    let data = vec![0x5Au8; size];
    let rounds = (400_000_000 / size).max(20);
    let mut sink = 0u8;
    let start = Instant::now();
    for _ in 0..rounds {
        sink ^= hash(&data);
    }
    let seconds = start.elapsed().as_secs_f64();
    std::hint::black_box(sink);
    (size * rounds) as f64 / seconds / 1e9
}

fn main() {
    println!("input bytes   CRC-32 GB/s   SHA-256 GB/s   BLAKE3 GB/s");
    for size in [300usize, 3_400, 34_000, 1 << 20] {
        let crc = gigabytes_per_second(size, |d| crc32fast::hash(d) as u8);
        let sha = gigabytes_per_second(size, |d| {
            let mut hasher = sha2::Sha256::new();
            hasher.update([0u8; 32]);
            hasher.update(d);
            hasher.finalize()[0]
        });
        let blake = gigabytes_per_second(size, |d| {
            let mut hasher = blake3::Hasher::new();
            hasher.update(&[0u8; 32]);
            hasher.update(d);
            hasher.finalize().as_bytes()[0]
        });
        println!("{size:>11}   {crc:>11.2}   {sha:>12.2}   {blake:>11.2}");
    }
}
