//! Harnesses the fuzz targets share.
//!
//! The row-decoder targets (`table_decode_*`) differ only in the tables they pick from, so
//! each format is fuzzed on its own while the checks stay in one place ([`RoundTrip`]).

use kds_table::{ErrorKind, Partitioners, RowDecoder, RowEncoder, SourceRecord, TableDefinition};

/// Parses each `columns', options` pair into a table with two metadata columns (an arrival
/// time and a virtual sequence number) after the physical ones.
///
/// # Panics
/// When a pair is not a valid table: the targets' tables are fixed.
pub fn tables(specs: &[&str]) -> Vec<TableDefinition> {
    specs
        .iter()
        .map(|text| {
            let (columns, options) = text.split_once("', ").expect("columns, then options");
            let sql = format!(
                "CREATE TABLE t ({columns}, arrival TIMESTAMP(9) METADATA FROM 'timestamp', seq VARCHAR(128) METADATA FROM 'sequence-number' VIRTUAL)
                 WITH ('connector' = 'kinesis', 'stream' = 's', 'aws.region' = 'us-east-1', {options}')"
            );
            TableDefinition::parse(&sql, &[]).expect("a valid table")
        })
        .collect()
}

/// The tables of a row-decoder target, each with a decoder, an encoder and a second decoder
/// that live across inputs, as a source's and a sink's do across batches.
pub struct RoundTrip {
    tables: Vec<(RowDecoder, RowEncoder, RowDecoder)>,
}

impl RoundTrip {
    /// The tables `specs` describe (see [`tables`]).
    ///
    /// # Panics
    /// When a table has no decoder or encoder: the targets' tables are fixed.
    pub fn new(specs: &[&str]) -> Self {
        let tables = tables(specs)
            .into_iter()
            .map(|table| {
                let decoder = table.decoder().expect("a decoder");
                let encoder = table.encoder(&Partitioners::new(), 0).expect("an encoder");
                let again = table.decoder().expect("a decoder");
                (decoder, encoder, again)
            })
            .collect();
        Self { tables }
    }

    /// Record data through a table's row decoder, and the decoded rows back through its
    /// encoder and decoder.
    ///
    /// The first byte picks the table; the rest is split into records at each `0xff 0x00`.
    /// Checks: a decode error names one of the records; every record is a row or counted as
    /// skipped; what decodes encodes (but for values that `csv.disable-quote-character`
    /// cannot write), and decodes again, without skips, to the same physical columns. The
    /// decoders and the encoder are reused whatever the previous input did to them.
    pub fn run(&mut self, data: &[u8]) {
        let count = self.tables.len();
        let Some((&pick, rest)) = data.split_first() else {
            return;
        };
        let (decoder, encoder, again_decoder) = &mut self.tables[usize::from(pick) % count];

        let mut parts = Vec::new();
        let mut start = 0;
        for i in 0..rest.len().saturating_sub(1) {
            if rest[i] == 0xff && rest[i + 1] == 0 {
                parts.push(&rest[start..i]);
                start = i + 2;
            }
        }
        parts.push(&rest[start.min(rest.len())..]);
        let sequence_numbers: Vec<String> = (0..parts.len()).map(|i| i.to_string()).collect();
        // Arrival times and sub-sequence numbers from the first bytes of each record.
        let records: Vec<SourceRecord<'_>> = parts
            .iter()
            .zip(&sequence_numbers)
            .map(|(data, seq)| {
                let byte = data.first().copied().unwrap_or_default();
                SourceRecord {
                    shard_id: "shardId-000000000000",
                    sequence_number: seq,
                    sub_sequence_number: (byte % 2 == 1).then_some(u64::from(byte) << 56),
                    partition_key: "k",
                    arrival_millis: i64::from(byte as i8) << (byte % 64),
                    data,
                }
            })
            .collect();

        let skipped_before = decoder.skipped();
        let rows = match decoder.decode(&records) {
            Ok(rows) => rows,
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::Decode, "{error}");
                let record = error.record().expect("decode errors name the record");
                assert!(sequence_numbers.contains(&record.sequence_number));
                return;
            }
        };
        assert_eq!(
            rows.num_rows() as u64 + decoder.skipped() - skipped_before,
            records.len() as u64
        );

        // What was decoded encodes, and decodes to the same rows.
        let encoded = match encoder.encode(&rows) {
            Ok(encoded) => encoded,
            // The one refusal the formats document: without quoting, some values have no CSV form.
            Err(error)
                if error.kind() == ErrorKind::Encode
                    && error.to_string().contains("csv.disable-quote-character") =>
            {
                return;
            }
            Err(error) => panic!("decoded rows encode: {error}"),
        };
        let again: Vec<SourceRecord<'_>> = encoded
            .iter()
            .zip(&sequence_numbers)
            .map(|(record, seq)| SourceRecord {
                shard_id: "shardId-000000000000",
                sequence_number: seq,
                sub_sequence_number: None,
                partition_key: "k",
                arrival_millis: 0,
                data: &record.data,
            })
            .collect();
        let skipped_before = again_decoder.skipped();
        let decoded_again = again_decoder
            .decode(&again)
            .unwrap_or_else(|e| panic!("encoded rows decode: {e}; records {encoded:?}"));
        assert_eq!(
            again_decoder.skipped(),
            skipped_before,
            "records {encoded:?}"
        );
        assert_eq!(decoded_again.num_rows(), rows.num_rows());
        // The physical columns (the last two are metadata, which differs after skips).
        for (i, column) in rows.columns()[..rows.num_columns() - 2].iter().enumerate() {
            assert_eq!(
                decoded_again.column(i).to_data(),
                column.to_data(),
                "column {i} of {encoded:?}"
            );
        }
    }
}
