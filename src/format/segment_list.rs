//! A compact, strictly ascending list of `u32` segment ordinals, as stored
//! per stream in the index checkpoint (`checkpoint`).
//!
//! ```text
//! varint(first ordinal) varint(second - first) varint(third - second) ...
//! ```
//!
//! Each varint is unsigned LEB128: seven bits per byte, least significant
//! group first, the high bit set on every byte but the last. A `u32` takes
//! one to five bytes. A valid list has no overlong varint (a last byte of
//! zero after a first one), none above `u32::MAX`, no difference of zero,
//! and no partial varint at the end. The empty byte string is the empty list.

/// The most bytes a `u32` varint takes.
const MAX_VARINT_LEN: usize = 5;

/// Appends `ordinal` to the list in `bytes`, whose last ordinal is `last`
/// (`None` for an empty list).
///
/// # Panics
/// When `ordinal` is not greater than `last`: the list is strictly ascending.
pub fn push(bytes: &mut Vec<u8>, last: Option<u32>, ordinal: u32) {
    let delta = match last {
        None => ordinal,
        Some(last) => {
            assert!(
                ordinal > last,
                "segment list must ascend: {ordinal} after {last}"
            );
            ordinal - last
        }
    };
    push_varint(bytes, delta);
}

/// The ordinals of a list that [`validate`] accepted. On other bytes it
/// stops at the first malformed varint (it never panics).
pub fn iter(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    let mut at = 0usize;
    let mut current: Option<u32> = None;
    std::iter::from_fn(move || {
        let (delta, len) = read_varint(bytes.get(at..)?).ok()?;
        at += len;
        let next = match current {
            None => delta,
            Some(previous) => previous.checked_add(delta)?,
        };
        current = Some(next);
        Some(next)
    })
}

/// Checks a list: well-formed varints, strictly ascending, every ordinal
/// below `below`. Returns the number of ordinals and the last one.
///
/// # Errors
/// A description of the first rule the bytes break.
pub fn validate(bytes: &[u8], below: u32) -> Result<(u32, Option<u32>), &'static str> {
    let mut at = 0usize;
    let mut count = 0u32;
    let mut last: Option<u32> = None;
    while at < bytes.len() {
        let (delta, len) = read_varint(&bytes[at..])?;
        at += len;
        let ordinal = match last {
            None => delta,
            Some(_) if delta == 0 => return Err("segment list repeats an ordinal"),
            Some(previous) => previous
                .checked_add(delta)
                .ok_or("segment list ordinal overflows u32")?,
        };
        if ordinal >= below {
            return Err("segment list names a segment beyond the checkpoint's");
        }
        // Each ordinal takes at least one byte, so the count fits like the length.
        count += 1;
        last = Some(ordinal);
    }
    Ok((count, last))
}

fn push_varint(bytes: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        bytes.push((value as u8 & 0x7F) | 0x80);
        value >>= 7;
    }
    bytes.push(value as u8);
}

/// Reads one varint at the start of `bytes`: its value and length.
fn read_varint(bytes: &[u8]) -> Result<(u32, usize), &'static str> {
    let mut value = 0u32;
    for (i, &byte) in bytes.iter().take(MAX_VARINT_LEN).enumerate() {
        let group = u32::from(byte & 0x7F);
        if i == MAX_VARINT_LEN - 1 && (byte & 0x80 != 0 || group > 0x0F) {
            return Err("segment list varint overflows u32");
        }
        value |= group << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return Err("segment list varint is overlong");
            }
            return Ok((value, i + 1));
        }
    }
    Err("segment list ends inside a varint")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(ordinals: &[u32]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut last = None;
        for &ordinal in ordinals {
            push(&mut bytes, last, ordinal);
            last = Some(ordinal);
        }
        bytes
    }

    #[test]
    fn known_encodings() {
        assert_eq!(encode(&[]), Vec::<u8>::new());
        assert_eq!(encode(&[0]), vec![0]);
        assert_eq!(encode(&[0, 1, 129]), vec![0, 1, 0x80, 0x01]);
        assert_eq!(encode(&[u32::MAX]), vec![0xFF, 0xFF, 0xFF, 0xFF, 0x0F]);
        assert_eq!(validate(&[], 0), Ok((0, None)));
        assert_eq!(validate(&[0, 1, 0x80, 0x01], 130), Ok((3, Some(129))));
        assert_eq!(
            validate(&[0xFF, 0xFF, 0xFF, 0xFF, 0x0F], u32::MAX),
            Err("segment list names a segment beyond the checkpoint's")
        );
    }

    #[test]
    fn malformed_lists_are_rejected() {
        let cases: [(&[u8], &str); 6] = [
            (&[0x80], "segment list ends inside a varint"),
            (&[0x80, 0x00], "segment list varint is overlong"),
            (
                &[0xFF, 0xFF, 0xFF, 0xFF, 0x10],
                "segment list varint overflows u32",
            ),
            (
                &[0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
                "segment list varint overflows u32",
            ),
            (&[3, 0], "segment list repeats an ordinal"),
            (
                &[0xFE, 0xFF, 0xFF, 0xFF, 0x0F, 2],
                "segment list ordinal overflows u32",
            ),
        ];
        for (bytes, error) in cases {
            assert_eq!(validate(bytes, u32::MAX), Err(error), "{bytes:?}");
        }
        assert_eq!(
            validate(&[5], 5),
            Err("segment list names a segment beyond the checkpoint's")
        );
    }

    #[test]
    #[should_panic(expected = "segment list must ascend")]
    fn push_refuses_a_repeat() {
        encode(&[4, 4]);
    }

    proptest! {
        #[test]
        fn round_trip(set in proptest::collection::btree_set(any::<u32>(), 0..64)) {
            let ordinals: Vec<u32> = set.into_iter().collect();
            let bytes = encode(&ordinals);
            let last = ordinals.last().copied();
            prop_assert_eq!(validate(&bytes, u32::MAX), match last {
                Some(u32::MAX) => Err("segment list names a segment beyond the checkpoint's"),
                _ => Ok((ordinals.len() as u32, last)),
            });
            prop_assert_eq!(iter(&bytes).collect::<Vec<_>>(), ordinals);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok((count, last)) = validate(&bytes, u32::MAX) {
                let ordinals: Vec<u32> = iter(&bytes).collect();
                prop_assert_eq!(ordinals.len() as u32, count);
                prop_assert_eq!(ordinals.last().copied(), last);
                prop_assert_eq!(encode(&ordinals), bytes);
            } else {
                let _ = iter(&bytes).count();
            }
        }
    }
}
