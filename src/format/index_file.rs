//! Placeholder replaced by the idx-format branch (issue 13).

/// Stride.
pub const SPARSE_STRIDE: u64 = 16;

/// Hash.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
