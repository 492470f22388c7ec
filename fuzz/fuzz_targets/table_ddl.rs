#![no_main]

//! Statements for the DDL parser and the whole table definition check.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let sql = String::from_utf8_lossy(data);
    if let Err(error) = kds_table::ddl::parse_create_table(&sql) {
        // Syntax errors always say where.
        if error.kind() == kds_table::ErrorKind::Syntax {
            assert!(error.location().is_some());
        }
    }
    let _ = kds_table::TableDefinition::parse(&sql, &["custom"]);
});
