//! Tests of packing: documents round trip, dictionaries are trained and digested, frames
//! are stored as `packing` says.

use std::io::Write;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use serde_json::json;

use super::*;
use crate::state::Store;

fn packer_and_db() -> (Packer, Connection) {
    let db = Connection::open_in_memory().unwrap();
    let mut db = db;
    crate::state::schema::migrate(&mut db, ":memory:").unwrap();
    (Packer::default(), db)
}

/// An order of `shape` `a` or `b`, each with its own field names and values.
fn order(shape: char, i: usize) -> Json {
    let lines: Vec<Json> = (0..3)
        .map(|line| match shape {
            'a' => json!({
                "spec_no": format!("WY-{:03}", (i * 7 + line) % 40),
                "goods_name": "加绒连帽卫衣", "num": "2.0000", "rec_id": format!("{}", i * 977 + line),
            }),
            _ => json!({
                "sku": format!("Z{:05}", (i * 13 + line) % 97), "title": "wireless headphones",
                "quantity": line + 1, "line_ref": format!("L-{}-{line}", i * 31),
            }),
        })
        .collect();
    match shape {
        'a' => json!({"order_no": format!("RK{i:08}"), "shop_name": "天猫旗舰店",
                      "remark": "赠品未退回", "details_list": lines}),
        _ => json!({"id": i, "channel": "web-store-eu", "customer": format!("C{}", i % 50),
                    "items": lines}),
    }
}

/// A dictionary's digest has small tables: its whole context is less than half the size
/// of the digest zstd makes of a 64 KB dictionary at level 3 (212 KB against 474 KB), and
/// documents pack to within a percent of what the large tables give.
#[test]
fn a_dictionary_is_digested_with_small_tables_that_pack_as_well() {
    let text = |i| serde_json::to_vec(&order(if i % 2 == 0 { 'a' } else { 'b' }, i)).unwrap();
    let mut content = Vec::new();
    let mut i = 0;
    while content.len() < 64 * 1024 {
        content.extend(text(i));
        i += 1;
    }
    let ours = Dictionary::new(1, &content);
    let theirs = zstd::zstd_safe::CDict::create(&content, LEVEL);
    let mut with_theirs = compressor();
    let (mut small, mut large) = (0, 0);
    for i in 10_000..10_200 {
        let document = text(i);
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(document.len()));
        let mut encoder = ours.encoder.lock().unwrap();
        small += encoder.compress2(&mut out, &document).unwrap();
        out.clear();
        with_theirs.ref_cdict(&theirs).unwrap();
        large += with_theirs.compress2(&mut out, &document).unwrap();
    }
    let digest = ours.encoder.lock().unwrap().sizeof();
    assert!(digest * 2 < theirs.sizeof(), "{digest} {}", theirs.sizeof());
    assert!(small * 100 <= large * 101, "{small} {large}");
}

#[test]
fn a_packed_document_unpacks_to_what_was_packed() {
    let (mut packer, db) = packer_and_db();
    let source = json!({"order_no": "RK1", "memo": "退货", "lines": [{"num": 1}]});
    let sent = json!({"FBillNo": "RK1", "FHeadNote": "退货"});
    let cases = [(source.clone(), Some(sent)), (source, None)];
    for (source, sent) in cases {
        // Given parsed, or as the text it was read as (pretty-printed, escaped: as an
        // answer may hold it).
        let text: Arc<str> = Arc::from(serde_json::to_string_pretty(&source).unwrap());
        let escaped = Source::Text(Arc::from(
            r#"{"order_no":"RK1","memo":"\u9000\u8d27","lines":[{"num":1}]}"#,
        ));
        for given in [Source::from(source.clone()), Source::Text(text), escaped] {
            let packed = packer
                .pack(&db, "refund", (&given).into(), sent.as_ref().map(Doc::from))
                .unwrap();
            assert_eq!(packed.dictionary, NO_DICTIONARY);
            let kept = packer.unpack(&db, Some(packed.dictionary), &packed.bytes);
            let expected = Kept {
                source: source.clone(),
                sent: sent.clone(),
            };
            assert_eq!(kept.unwrap(), expected, "{given:?}");
            assert_eq!(given.whole().unwrap(), source);
        }
    }
    // A damaged row is an error, whatever it was packed with, never another document.
    let packed = packer
        .pack(&db, "refund", (&json!({"a": "bcdefg"})).into(), None)
        .unwrap();
    let mut damaged = packed.bytes.clone();
    let last = damaged.len() - 6;
    damaged[last] ^= 1;
    for (dictionary, bytes) in [
        (None, b"not zlib".as_slice()),
        (Some(NO_DICTIONARY), b"not zstd".as_slice()),
        (Some(NO_DICTIONARY), &damaged),
        (Some(7), &packed.bytes),
    ] {
        assert!(
            packer.unpack(&db, dictionary, bytes).is_err(),
            "{dictionary:?}"
        );
    }
}

/// A row's frame is stored without zstd's magic number (since schema 8), and a frame
/// stored with it (before) still unpacks, with a dictionary or without.
#[test]
fn frames_are_stored_without_the_magic_and_frames_stored_with_it_still_unpack() {
    let (mut packer, db) = packer_and_db();
    let documents: Vec<Json> = (0..SAMPLES + 1).map(|i| order('a', i)).collect();
    let store = |packer: &mut Packer, document: &Json| {
        let packed = packer.pack(&db, "refund", document.into(), None).unwrap();
        db.execute(
            "INSERT INTO flows (name) VALUES ('refund') ON CONFLICT DO NOTHING",
            [],
        )
        .unwrap();
        db.execute(
            "INSERT INTO kept (dictionary, packed) VALUES (?1, ?2)",
            params![packed.dictionary, packed.bytes],
        )
        .unwrap();
        db.execute(
            "INSERT INTO ledger (flow_id, key, status, first_seen, updated, kept)
             VALUES (1, ?1, 'in_flight', 1, 1, last_insert_rowid())",
            [document["order_no"].as_str().unwrap()],
        )
        .unwrap();
        packed
    };
    let mut packed: Vec<Packed> = documents.iter().map(|d| store(&mut packer, d)).collect();
    let with_dictionary = packed.pop().unwrap();
    let without = packed.pop().unwrap();
    assert_eq!(without.dictionary, NO_DICTIONARY);
    assert!(with_dictionary.dictionary > NO_DICTIONARY);
    for (packed, document) in [
        (&without, &documents[SAMPLES - 1]),
        (&with_dictionary, &documents[SAMPLES]),
    ] {
        assert!(!packed.bytes.starts_with(&MAGIC));
        assert_eq!(packed.bytes[0] & 0x04, 0x04, "the checksum bit");
        let unpacked = packer
            .unpack(&db, Some(packed.dictionary), &packed.bytes)
            .unwrap();
        assert_eq!(unpacked.source, *document);
        // As rows were stored before: the same frame with the magic.
        let framed = [&MAGIC, &packed.bytes[..]].concat();
        let unpacked = packer
            .unpack(&db, Some(packed.dictionary), &framed)
            .unwrap();
        assert_eq!(unpacked.source, *document);
    }
}

#[test]
fn a_zlib_row_of_schema_version_3_stays_readable() {
    let (mut packer, db) = packer_and_db();
    let text = br#"{"source":{"order_no":"RK1"},"sent":{"FBillNo":"RK1"}}"#;
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(text).unwrap();
    let bytes = encoder.finish().unwrap();
    assert_eq!(
        packer.unpack(&db, None, &bytes).unwrap(),
        Kept {
            source: json!({"order_no": "RK1"}),
            sent: Some(json!({"FBillNo": "RK1"})),
        }
    );
}

/// Mark `orders` in flight as one batch of `store`'s flow `refund`, keeping them.
fn keep(store: &Store, orders: &[(usize, Json)]) {
    let pending: Vec<crate::state::Pending> = orders
        .iter()
        .map(|(i, order)| crate::state::Pending {
            key: format!("K{i:06}"),
            hash: format!("{i:032x}"),
            source: Source::from(order.clone()),
            target: Some(Doc::from(json!({"bill": order}))),
            modified: None,
        })
        .collect();
    store
        .mark_in_flight("refund", &pending, chrono::Utc::now())
        .unwrap();
}

#[test]
fn a_dictionary_trained_in_a_write_that_panics_goes_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Store::open(&path).unwrap();
    let orders: Vec<(usize, Json)> = (0..SAMPLES + 60).map(|i| (i, order('a', i))).collect();
    keep(&store, &orders[..SAMPLES - 1]);
    // The next document trains the flow's dictionary; then the write panics (a bug), and
    // its transaction rolls back, dictionary and all.
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.write("refund", "test", crate::state::Durability::Full, |tx| {
            let mut packer = store.packer();
            packer.pack(tx, "refund", (&orders[SAMPLES].1).into(), None)?;
            panic!("a bug while the packer is held");
        })
    }));
    assert!(panicked.is_err());
    assert_eq!(dictionaries(&store).0, vec![]);
    // The next batch trains it again and stores the dictionary it packs with: every row
    // stays readable after a restart.
    keep(&store, &orders[SAMPLES - 1..]);
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(dictionaries(&store).0.len(), 1);
    assert_every_seventh_is_kept(&store, &orders);
}

#[test]
fn a_dictionary_trained_in_a_batch_that_is_refused_goes_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Store::open(&path).unwrap();
    let orders: Vec<(usize, Json)> = (0..SAMPLES + 60).map(|i| (i, order('a', i))).collect();
    // One document short of a dictionary, the last of them written.
    keep(&store, &orders[..SAMPLES]);
    let done = crate::state::Outcome::Done {
        key: format!("K{:06}", SAMPLES - 1),
        target_id: Some("1".to_string()),
        target_number: None,
        hash: None,
    };
    store
        .record_outcomes("refund", &[done], chrono::Utc::now())
        .unwrap();
    // The next document trains the flow's dictionary, then the written key is refused
    // and the batch rolls back, dictionary and all.
    let refused: Vec<(usize, Json)> = vec![orders[SAMPLES].clone(), orders[SAMPLES - 1].clone()];
    let pending: Vec<crate::state::Pending> = refused
        .iter()
        .map(|(i, order)| crate::state::Pending {
            key: format!("K{i:06}"),
            hash: format!("{i:032x}"),
            source: Source::from(order.clone()),
            target: None,
            modified: None,
        })
        .collect();
    let err = store.mark_in_flight("refund", &pending, chrono::Utc::now());
    assert!(err.is_err());
    assert_eq!(dictionaries(&store).0, vec![]);
    // The next batch trains it again, and stores the dictionary it packs with.
    keep(&store, &orders[SAMPLES..]);
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(dictionaries(&store).0.len(), 1);
    assert_every_seventh_is_kept(&store, &orders);
}

/// (id, samples, ratio measured) of each dictionary.
type Made = Vec<(i64, i64, bool)>;

/// How many kept rows use each dictionary.
type Used = Vec<(Option<i64>, i64)>;

fn dictionaries(store: &Store) -> (Made, Used) {
    let connection = store.lock();
    let made = connection
        .prepare("SELECT id, samples, ratio IS NOT NULL FROM dictionaries ORDER BY id")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let used = connection
        .prepare("SELECT dictionary, COUNT(*) FROM kept GROUP BY dictionary ORDER BY 1")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    (made, used)
}

/// A batch packs its documents before storing them; the dictionary trained in its middle
/// still learns from the documents packed before it (stored first), and every row of the
/// batch ends up packed with it.
#[test]
fn a_dictionary_due_in_the_middle_of_a_batch_is_trained_on_the_documents_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let orders: Vec<(usize, Json)> = (0..SAMPLES + 60).map(|i| (i, order('a', i))).collect();
    keep(&store, &orders[..SAMPLES / 2]);
    // The next batch holds the document that makes the first dictionary due.
    keep(&store, &orders[SAMPLES / 2..]);
    assert_eq!(
        dictionaries(&store),
        (
            vec![(1, SAMPLES as i64, false)],
            vec![(Some(1), (SAMPLES + 60) as i64)]
        )
    );
    assert_every_seventh_is_kept(&store, &orders);
}

#[test]
fn a_flow_gets_a_dictionary_after_its_first_documents_and_a_new_one_only_when_it_packs_poorly() {
    let store = Store::in_memory().unwrap();
    let orders: Vec<(usize, Json)> = (0..SAMPLES + 2 * WINDOW)
        .map(|i| (i, order('a', i)))
        .collect();
    // Until SAMPLES are kept, none; then one, and the first rows are packed with it too.
    keep(&store, &orders[..SAMPLES - 1]);
    let first = SAMPLES as i64;
    assert_eq!(dictionaries(&store), (vec![], vec![(Some(0), first - 1)]));
    for batch in orders[SAMPLES - 1..].chunks(50) {
        keep(&store, batch);
    }
    let total = orders.len() as i64;
    assert_eq!(
        dictionaries(&store),
        (vec![(1, first, true)], vec![(Some(1), total)])
    );
    // Documents of another shape pack poorly with it: after a window, a new dictionary
    // learns them; the rows packed before keep theirs.
    let others: Vec<(usize, Json)> = (0..2 * WINDOW)
        .map(|i| (orders.len() + i, order('b', i)))
        .collect();
    for batch in others.chunks(50) {
        keep(&store, batch);
    }
    let (made, used) = dictionaries(&store);
    assert_eq!(made.len(), 2, "{made:?}");
    let window = WINDOW as i64;
    assert_eq!(used, [(Some(1), total + window), (Some(2), window)]);
    // The new shape packs smaller with the new dictionary than with the first.
    let sizes: Vec<f64> = store
        .lock()
        .prepare(
            "SELECT AVG(length(k.packed)) FROM ledger AS l JOIN kept AS k ON k.id = l.kept
             WHERE l.key >= ?1 GROUP BY k.dictionary ORDER BY k.dictionary",
        )
        .unwrap()
        .query_map([format!("K{:06}", orders.len())], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(sizes[1] < sizes[0], "{sizes:?}");
    // Every row reads back, whichever dictionary packed it.
    for (i, order) in orders.iter().chain(&others).step_by(97) {
        let kept = store.kept("refund", &format!("K{i:06}")).unwrap().unwrap();
        assert_eq!(kept.source, *order);
    }
}

/// Every seventh of `orders` (stored under `K` and its number) reads back as it was kept.
#[track_caller]
fn assert_every_seventh_is_kept(store: &Store, orders: &[(usize, Json)]) {
    for (i, order) in orders.iter().step_by(7) {
        let kept = store.kept("refund", &format!("K{i:06}")).unwrap().unwrap();
        assert_eq!(kept.source, *order);
    }
}
