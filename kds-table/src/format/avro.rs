//! The `avro` format: each record is one Avro binary datum of a record schema derived from the
//! table's physical columns (no container file, no schema registry prefix), as Flink's `avro`
//! format writes it. Nullable columns are unions with `null` first, as in Flink.
//!
//! arrow-avro's streaming decoder reads single-object-encoded messages; each record is handed
//! to it behind the single-object header of the table's own schema, so it decodes exactly that
//! one datum.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_avro::reader::{Decoder, ReaderBuilder};
use arrow_avro::schema::{
    AvroSchema, Fingerprint, SCHEMA_METADATA_KEY, SINGLE_OBJECT_MAGIC, SchemaStore,
};
use arrow_avro::writer::format::AvroSoeFormat;
use arrow_avro::writer::{Encoder, WriterBuilder};
use arrow_cast::CastOptions;
use arrow_schema::{Schema, SchemaRef};

use super::{CHUNK_ROWS, RowReader, RowWriter, unsupported};
use crate::ddl::DataType as FlinkType;
use crate::error::Error;

pub(super) fn check_columns(columns: &[(&str, &FlinkType)]) -> Result<(), Error> {
    fn check(name: &str, data_type: &FlinkType) -> Result<(), Error> {
        match data_type {
            FlinkType::Map(key, value) => {
                if !matches!(key.data_type, FlinkType::Varchar(_) | FlinkType::Char(_)) {
                    return Err(unsupported(format!(
                        "format `avro` cannot hold column `{name}`: Avro map keys are strings, not {}",
                        key.data_type
                    )));
                }
                check(name, &value.data_type)
            }
            // Avro's time types count milliseconds or microseconds (Flink's limits).
            FlinkType::Time(p) if *p > 3 => Err(unsupported(format!(
                "format `avro` cannot hold column `{name}`: Avro times have millisecond precision, not TIME({p})"
            ))),
            FlinkType::Timestamp(p) | FlinkType::TimestampLtz(p) if *p > 6 => {
                Err(unsupported(format!(
                    "format `avro` cannot hold column `{name}`: Avro timestamps have at most microsecond precision, not {data_type}"
                )))
            }
            FlinkType::Array(element) => check(name, &element.data_type),
            FlinkType::Row(fields) => fields
                .iter()
                .try_for_each(|(_, f)| check(name, &f.data_type)),
            _ => Ok(()),
        }
    }
    columns.iter().try_for_each(|(name, t)| check(name, t))
}

/// The table's Avro schema and its single-object header.
struct TableSchema {
    avro: AvroSchema,
    store: SchemaStore,
    header: Vec<u8>,
}

impl TableSchema {
    fn new(physical: &Schema) -> Result<Self, Error> {
        let avro = AvroSchema::try_from(physical)
            .map_err(|e| unsupported(format!("no Avro schema for the table: {e}")))?;
        let mut store = SchemaStore::new();
        let fingerprint = store
            .register(avro.clone())
            .map_err(|e| unsupported(format!("no Avro schema for the table: {e}")))?;
        let Fingerprint::Rabin(rabin) = fingerprint else {
            unreachable!("a new schema store fingerprints with Rabin")
        };
        let mut header = SINGLE_OBJECT_MAGIC.to_vec();
        header.extend_from_slice(&rabin.to_le_bytes());
        Ok(Self {
            avro,
            store,
            header,
        })
    }

    /// A decoder for at most `rows` rows between flushes.
    fn decoder(&self, rows: usize) -> Result<Decoder, Error> {
        ReaderBuilder::new()
            .with_writer_schema_store(self.store.clone())
            .with_batch_size(rows + 1)
            .build_decoder()
            .map_err(|e| unsupported(format!("no Avro decoder for the table: {e}")))
    }
}

/// Reads one Avro datum per record.
///
/// The decoder is always handed the next record's single-object header as soon as a datum is
/// read: a record whose datum is followed by anything (another datum, a header, stray bytes)
/// makes that header fail to read as one, so trailing bytes are caught in the record that
/// carries them.
pub(super) struct AvroReader {
    physical: SchemaRef,
    schema: TableSchema,
    decoder: Decoder,
    /// Whether the decoder has read the header of the record to come.
    header_read: bool,
}

impl AvroReader {
    pub(super) fn new(physical: SchemaRef) -> Result<Self, Error> {
        let schema = TableSchema::new(&physical)?;
        let decoder = schema.decoder(CHUNK_ROWS)?;
        Ok(Self {
            physical,
            schema,
            decoder,
            header_read: false,
        })
    }

    /// Hands the decoder the header of the next record; fails when the decoder was not waiting
    /// for one.
    fn read_header(&mut self) -> Result<(), String> {
        let rows = self.decoder.capacity();
        // A decoder that is not waiting for a header reads it as (part of) a datum: it fails,
        // stops short or decodes a row.
        let read = self
            .decoder
            .decode(&self.schema.header)
            .map_err(|_| "bytes follow the Avro datum".to_owned())?;
        if read != self.schema.header.len() || self.decoder.capacity() != rows {
            return Err("bytes follow the Avro datum".to_owned());
        }
        self.header_read = true;
        Ok(())
    }
}

impl RowReader for AvroReader {
    fn push(&mut self, data: &[u8]) -> Result<(), String> {
        if !self.header_read {
            self.read_header()?;
        }
        let rows = self.decoder.capacity();
        self.header_read = false;
        let read = self.decoder.decode(data).map_err(|e| {
            if self.decoder.capacity() < rows {
                // A datum was read; what follows it is not another one.
                "bytes follow the Avro datum".to_owned()
            } else {
                format!("the data is not an Avro datum of the table's schema: {e}")
            }
        })?;
        if read == 0 || self.decoder.capacity() == rows {
            return Err("the data ends inside the Avro datum".to_owned());
        }
        if read != data.len() || self.decoder.capacity() + 1 != rows {
            return Err("bytes follow the Avro datum".to_owned());
        }
        self.read_header()
    }

    fn flush(&mut self) -> Result<RecordBatch, String> {
        let batch = self
            .decoder
            .flush()
            .map_err(|e| e.to_string())?
            .unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(&self.physical)));
        // arrow-avro reads some types wider or differently zoned (TINYINT as Int32, UTC as
        // "+00:00"): cast to the table's types, refusing values that do not fit.
        let strict = CastOptions {
            safe: false,
            ..CastOptions::default()
        };
        let columns = batch
            .columns()
            .iter()
            .zip(self.physical.fields())
            .map(|(column, field)| {
                if column.data_type() == field.data_type() {
                    Ok(Arc::clone(column))
                } else {
                    arrow_cast::cast_with_options(column, field.data_type(), &strict)
                        .map_err(|e| format!("column `{}`: {e}", field.name()))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new(Arc::clone(&self.physical), columns).map_err(|e| e.to_string())
    }

    fn reset(&mut self, rows: usize) {
        self.decoder = self
            .schema
            .decoder(rows)
            .expect("the schema built a decoder before");
        self.header_read = false;
    }
}

/// Writes one Avro datum per row.
pub(super) struct AvroWriter {
    encoder: Encoder,
    header: usize,
}

impl AvroWriter {
    pub(super) fn new(physical: &Schema) -> Result<Self, Error> {
        let schema = TableSchema::new(physical)?;
        let with_schema = physical.clone().with_metadata(HashMap::from([(
            SCHEMA_METADATA_KEY.to_owned(),
            schema.avro.json_string.clone(),
        )]));
        let encoder = WriterBuilder::new(with_schema)
            .build_encoder::<AvroSoeFormat>()
            .map_err(|e| unsupported(format!("no Avro encoder for the table: {e}")))?;
        Ok(Self {
            encoder,
            header: schema.header.len(),
        })
    }
}

impl RowWriter for AvroWriter {
    fn write(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        rows: &mut Vec<Range<usize>>,
    ) -> Result<(), (Option<usize>, String)> {
        self.encoder
            .encode(batch)
            .map_err(|e| (None, e.to_string()))?;
        let encoded = self.encoder.flush();
        for window in encoded.offsets().windows(2) {
            let start = out.len();
            out.extend_from_slice(&encoded.bytes()[window[0] + self.header..window[1]]);
            rows.push(start..out.len());
        }
        Ok(())
    }
}
