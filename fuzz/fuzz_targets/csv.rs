#![no_main]
//! Any text given to the relevance lab's CSV reader must yield `Ok` or `Err`, never a panic; on
//! `Ok` the table is rectangular, has at least one row and holds only finite numbers.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(table) = latent_lab::relevance::data::parse_csv(&text, "fuzz.csv") {
        assert!(!table.columns.is_empty(), "a table without columns");
        assert!(table.rows() > 0, "a table without rows");
        assert_eq!(table.values.len() % table.columns.len(), 0, "ragged table");
        assert!(
            table.values.iter().all(|v| v.is_finite()),
            "NaN or inf accepted"
        );
    }
});
