//! Placeholder replaced by the idx-format branch (issue 13).

/// Push.
pub fn push(bytes: &mut Vec<u8>, last: Option<u32>, ordinal: u32) {
    let mut delta = match last {
        Some(last) => {
            assert!(ordinal > last, "segment lists ascend");
            ordinal - last
        }
        None => ordinal,
    };
    loop {
        let byte = (delta & 0x7f) as u8;
        delta >>= 7;
        if delta == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
}

/// Iter.
pub fn iter(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    let mut at = 0;
    let mut last: Option<u32> = None;
    std::iter::from_fn(move || {
        if at >= bytes.len() {
            return None;
        }
        let mut value = 0u32;
        let mut shift = 0;
        while at < bytes.len() {
            let byte = bytes[at];
            at += 1;
            value |= u32::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let ordinal = last.map_or(value, |l| l + value);
        last = Some(ordinal);
        Some(ordinal)
    })
}
