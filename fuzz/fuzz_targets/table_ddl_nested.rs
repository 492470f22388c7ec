#![no_main]

//! Column types nested as deep as the input reaches: each byte opens an ARRAY, a MAP or a ROW,
//! or closes the branch with a scalar type. Checks that the parser takes exactly the types
//! at most `MAX_TYPE_DEPTH` levels deep (refusing deeper ones with a syntax error, never
//! overflowing the stack), that a parsed type prints as text that parses back to itself, and
//! that the table built on it describes, decodes and drops without trouble.

use kds_table::ddl::{self, DataType, MAX_TYPE_DEPTH};
use kds_table::{ErrorKind, SourceRecord, TableDefinition};

const SCALARS: [&str; 12] = [
    "INT",
    "STRING",
    "DECIMAL(12, 2)",
    "TIMESTAMP(3)",
    "BYTES",
    "BOOLEAN",
    "CHAR(4)",
    "TIME(0)",
    "DOUBLE",
    "TIMESTAMP_LTZ(9)",
    "VARCHAR(3)",
    "DATE",
];

/// Writes the type the next bytes describe, inside `depth` nested types, and returns the
/// deepest nesting it reached (counting itself when nested).
fn write_type(bytes: &mut std::slice::Iter<'_, u8>, depth: usize, out: &mut String) -> usize {
    let Some(&byte) = bytes.next() else {
        out.push_str("INT");
        return depth;
    };
    let deepest = match byte % 8 {
        0 | 1 => {
            out.push_str("ARRAY<");
            let deepest = write_type(bytes, depth + 1, out);
            out.push('>');
            deepest
        }
        2 => {
            out.push_str("MAP<");
            out.push_str(SCALARS[usize::from(byte / 8) % SCALARS.len()]);
            out.push_str(", ");
            let deepest = write_type(bytes, depth + 1, out);
            out.push('>');
            deepest
        }
        3 => {
            // A field name that needs quoting, then one that does not.
            out.push_str("ROW<`a ``b`");
            out.push(' ');
            let deepest = write_type(bytes, depth + 1, out);
            out.push_str(", c ");
            out.push_str(SCALARS[usize::from(byte / 8) % SCALARS.len()]);
            out.push('>');
            deepest
        }
        _ => {
            out.push_str(SCALARS[usize::from(byte / 8) % SCALARS.len()]);
            depth
        }
    };
    if byte & 0x80 != 0 {
        out.push_str(" NOT NULL");
    }
    deepest
}

fn create_table(column_type: &str) -> String {
    format!(
        "CREATE TABLE t (c {column_type}) WITH ('connector' = 'kinesis', 'stream' = 's', \
         'aws.region' = 'us-east-1', 'format' = 'json')"
    )
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut text = String::new();
    let deepest = write_type(&mut data.iter(), 0, &mut text);
    let sql = create_table(&text);

    let create = match ddl::parse_create_table(&sql) {
        Ok(create) => {
            assert!(deepest <= MAX_TYPE_DEPTH, "{deepest} levels parsed");
            create
        }
        Err(error) => {
            assert!(deepest > MAX_TYPE_DEPTH, "{error}: {sql}");
            assert_eq!(error.kind(), ErrorKind::Syntax);
            assert!(error.location().is_some());
            return;
        }
    };
    let field = create.columns[0].field.clone().expect("a typed column");
    let printed = ddl::parse_create_table(&create_table(&field.to_string()))
        .unwrap_or_else(|e| panic!("{field} does not parse back: {e}"));
    assert_eq!(printed.columns[0].field.as_ref(), Some(&field));

    let table = match TableDefinition::new(create, &[]) {
        Ok(table) => table,
        Err(error) => {
            // JSON keys are text: a MAP keyed by anything else has no JSON form.
            assert_eq!(error.kind(), ErrorKind::InvalidDefinition, "{error}");
            assert!(matches!(
                field.data_type,
                DataType::Array(_) | DataType::Map(..) | DataType::Row(_)
            ));
            return;
        }
    };
    let _ = format!("{table:?}");
    let mut decoder = table.decoder().expect("a decoder");
    let rows = decoder
        .decode(&[SourceRecord {
            shard_id: "shardId-000000000000",
            sequence_number: "1",
            sub_sequence_number: None,
            partition_key: "k",
            arrival_millis: 0,
            data: b"{}",
        }])
        .map(|rows| rows.num_rows());
    // A missing field is NULL, which a NOT NULL column refuses.
    assert!(
        matches!(rows, Ok(1)) || (!field.nullable && rows.is_err()),
        "{rows:?}"
    );
});
