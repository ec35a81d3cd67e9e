use annals::{Durability, EventData, ExpectedVersion, Options, Store};

fn small() -> Options {
    Options::default()
        .segment_size_bytes(64 * 1024)
        .durability(Durability::None)
}

#[test]
fn append_read_reopen_across_many_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small()).unwrap();
    for i in 0..3000u64 {
        let stream = format!("s-{}", i % 7);
        let data = vec![(i % 251) as u8; (i % 300) as usize];
        let r = store
            .append(&stream, ExpectedVersion::Any, &[EventData::new("T", data)])
            .unwrap();
        assert_eq!(r.first_position, i);
    }
    let all = store.read_all(0, usize::MAX).unwrap();
    assert_eq!(all.len(), 3000);
    store.close().unwrap();
    let store = Store::open(dir.path(), small()).unwrap();
    assert_eq!(store.read_all(0, usize::MAX).unwrap(), all);
    let back = store.read_all_backward(u64::MAX, usize::MAX).unwrap();
    assert_eq!(back.len(), 3000);
    assert!(back.iter().rev().eq(all.iter()));
    assert_eq!(store.read_all(1234, 3).unwrap(), all[1234..1237].to_vec());
    let s3: Vec<_> = all.iter().filter(|e| e.stream == "s-3").cloned().collect();
    assert_eq!(store.read_stream("s-3", 1, usize::MAX).unwrap(), s3);
    let ro = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.read_all(0, usize::MAX).unwrap(), all);
}
