//! Every decoder of a fixed-layout record over arbitrary bytes: the segment
//! header, the footer, event and commit bodies, and one frame (the first 8
//! bytes are the salt). None may panic; whatever decodes must re-encode to
//! something that decodes the same.
#![no_main]

use annals::format::body;
use annals::format::footer::{FooterState, SegmentFooter};
use annals::format::frame::{self, FrameRead};
use annals::format::header::SegmentHeader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = SegmentHeader::decode(data) {
        assert_eq!(SegmentHeader::decode(&header.encode()), Ok(header));
    }
    if let FooterState::Sealed(footer) = SegmentFooter::decode(data) {
        assert_eq!(
            SegmentFooter::decode(&footer.encode()),
            FooterState::Sealed(footer)
        );
    }
    if let Ok(event) = body::decode_event(data) {
        let mut out = Vec::new();
        body::encode_event(&mut out, &event);
        assert_eq!(body::decode_event(&out), Ok(event));
    }
    if let Ok(commit) = body::decode_commit(data) {
        let mut out = Vec::new();
        body::encode_commit(&mut out, &commit);
        assert_eq!(body::decode_commit(&out), Ok(commit));
    }
    if data.len() >= 8 {
        let salt = u64::from_le_bytes(data[..8].try_into().unwrap());
        let rest = &data[8..];
        for offset in [0, 8, 16] {
            if let FrameRead::Frame(f) = frame::read_frame(rest, salt, offset, rest.len()) {
                assert!(f.next_offset <= rest.len() && f.next_offset > offset);
            }
        }
    }
});
