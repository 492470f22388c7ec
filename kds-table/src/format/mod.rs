//! Rows from Kinesis records and records from rows.
//!
//! The table's format (`json`, `csv`, `avro` or `raw`) turns record data into the physical
//! columns and back; metadata columns are filled from the record fields. Records are decoded a
//! batch at a time: the whole batch goes through the format's Arrow decoder at once, and only
//! when that fails are records tried apart, to name the one at fault (or skip and
//! count it when the table ignores parse errors): the batch is decoded again in small groups,
//! and failing groups are halved until the bad records stand alone.

mod avro;
mod clock;
mod csv;
mod json;
mod ranges;
mod raw;
mod text;

use std::ops::Range;
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, StringBuilder};
use arrow_array::types::{
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{ArrayRef, PrimitiveArray, RecordBatch, RecordBatchOptions};
use arrow_schema::{DataType, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;

use crate::ddl::{ColumnKind, DataType as FlinkType};
use crate::definition::{MetadataKey, TableDefinition};
use crate::error::{Error, ErrorKind, RecordPosition};
use crate::options::FormatOptions;
use crate::partition::{PartitionKeyGenerator, Partitioners};

/// The most rows a format decoder holds before it is flushed: one GetRecords page.
const CHUNK_ROWS: usize = 10_000;

/// The most record bytes a format decoder holds before it is flushed (unless one record is
/// larger): Arrow's string and binary columns hold at most 2 GiB.
const CHUNK_BYTES: usize = 256 * 1024 * 1024;

/// The most an encoder reserves for a batch up front.
const MAX_RESERVE: usize = 16 * 1024 * 1024;

/// The largest record a decoder takes: Arrow's string and binary columns hold at most 2 GiB.
const MAX_RECORD_BYTES: usize = i32::MAX as usize;

/// `records` cut into chunks of at most [`CHUNK_ROWS`] records and [`CHUNK_BYTES`] of data (a
/// larger record alone).
fn chunks<'r, 'a>(records: &'r [SourceRecord<'a>]) -> Vec<&'r [SourceRecord<'a>]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0usize);
    for (i, record) in records.iter().enumerate() {
        let rows = i - start;
        if rows > 0 && (rows == CHUNK_ROWS || bytes + record.data.len() > CHUNK_BYTES) {
            chunks.push(&records[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += record.data.len();
    }
    chunks.push(&records[start..]);
    chunks
}

/// The group size in which a chunk with bad records is decoded again.
const SEARCH_ROWS: usize = 32;

/// A record read from a shard, as the decoder needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceRecord<'a> {
    /// The shard read from (metadata `shard-id`).
    pub shard_id: &'a str,
    /// The record's sequence number (metadata `sequence-number`).
    pub sequence_number: &'a str,
    /// The user record's position in a KPL aggregate, `None` for records that were not
    /// aggregated (metadata `sub-sequence-number`, 0 then).
    pub sub_sequence_number: Option<u64>,
    /// The (user record's) partition key (metadata `partition-key`).
    pub partition_key: &'a str,
    /// The approximate arrival time in milliseconds since the epoch (metadata `timestamp`).
    pub arrival_millis: i64,
    /// The record's data.
    pub data: &'a [u8],
}

impl SourceRecord<'_> {
    fn position(&self) -> RecordPosition {
        RecordPosition {
            shard_id: self.shard_id.to_owned(),
            sequence_number: self.sequence_number.to_owned(),
            sub_sequence_number: self.sub_sequence_number,
        }
    }
}

/// A record to write: one row in the table's format and its partition key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkRecord {
    /// The partition key the table's partitioner chose.
    pub partition_key: String,
    /// The encoded row; rows of one batch share one buffer.
    pub data: Bytes,
}

/// Reads one format into Arrow: one row per record.
trait RowReader: Send {
    /// Appends the row in `data`. On an error the reader must be [`reset`](Self::reset)
    /// before it is used again.
    fn push(&mut self, data: &[u8]) -> Result<(), String>;

    /// The rows pushed since the last flush, with the physical columns. On an error the reader
    /// must be reset.
    fn flush(&mut self) -> Result<RecordBatch, String>;

    /// Drops whatever was pushed, whatever state it left; at most `rows` rows will be pushed
    /// before the next flush.
    fn reset(&mut self, rows: usize);
}

/// Writes one format from Arrow: one record per row.
trait RowWriter: Send {
    /// Appends each row of `batch` (the physical columns) to `out`, and where in `out` each
    /// row is to `rows`. An error names the row when one row is at fault.
    fn write(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        rows: &mut Vec<Range<usize>>,
    ) -> Result<(), (Option<usize>, String)>;
}

/// Where a column of the decoded rows comes from.
#[derive(Clone, Debug)]
enum ColumnSource {
    /// The physical column with this index.
    Physical(usize),
    /// A record field.
    Metadata(MetadataKey),
}

/// Decodes records into rows of a table: physical columns from the data, metadata columns from
/// the record fields.
///
/// Made by [`TableDefinition::decoder`].
pub struct RowDecoder {
    reader: Box<dyn RowReader>,
    physical: SchemaRef,
    schema: SchemaRef,
    columns: Vec<ColumnSource>,
    ignore_parse_errors: bool,
    skipped: u64,
}

impl std::fmt::Debug for RowDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowDecoder")
            .field("schema", &self.schema)
            .field("ignore_parse_errors", &self.ignore_parse_errors)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

impl RowDecoder {
    /// The schema of the decoded rows: [`TableDefinition::arrow_schema`].
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Records skipped so far because they did not parse (only when the table ignores parse
    /// errors: `json.ignore-parse-errors`, `csv.ignore-parse-errors`).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Decodes `records` into rows, one per record, in order.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Decode`] naming the first record whose data is not a row in the table's
    /// format ([`Error::record`]), unless the table ignores parse errors: such records are then
    /// skipped and counted in [`skipped`](Self::skipped).
    pub fn decode(&mut self, records: &[SourceRecord<'_>]) -> Result<RecordBatch, Error> {
        let chunks = chunks(records);
        if let [chunk] = chunks.as_slice() {
            return self.decode_chunk(chunk);
        }
        let batches = chunks
            .into_iter()
            .map(|chunk| self.decode_chunk(chunk))
            .collect::<Result<Vec<_>, _>>()?;
        arrow_select::concat::concat_batches(&self.schema, &batches).map_err(|e| {
            Error::new(
                ErrorKind::Decode,
                None,
                format!("the rows do not fit one Arrow batch (decode fewer records at once): {e}"),
            )
        })
    }

    fn decode_chunk(&mut self, records: &[SourceRecord<'_>]) -> Result<RecordBatch, Error> {
        if let Some(record) = records.iter().find(|r| r.data.len() > MAX_RECORD_BYTES) {
            return Err(Error::decode(
                record.position(),
                &format!(
                    "the record's {} bytes are more than a row's column can hold",
                    record.data.len()
                ),
            ));
        }
        if let Ok(physical) = self.read_all(records, SEARCH_ROWS) {
            return self.assemble(&physical, records.iter());
        }
        // Some record is bad: decode groups of records, and halve the groups that fail until
        // their bad records stand alone. A chunk with bad records costs about two decodes
        // plus 2·SEARCH_ROWS records per bad one.
        let mut pieces = Vec::new();
        let mut kept = Vec::with_capacity(records.len());
        let searched = records
            .chunks(SEARCH_ROWS)
            .try_for_each(|group| self.bisect(group, &mut pieces, &mut kept));
        // Back to the capacity of a whole chunk.
        self.reader.reset(CHUNK_ROWS);
        searched?;
        let physical = arrow_select::concat::concat_batches(&self.physical, &pieces)
            .map_err(|e| Error::new(ErrorKind::Decode, None, e.to_string()))?;
        self.assemble(&physical, kept.into_iter())
    }

    /// Decodes `records` (at most [`SEARCH_ROWS`]), or its halves when it fails, down to
    /// single bad records, which are errors or skipped.
    fn bisect<'r, 'a: 'r>(
        &mut self,
        records: &'r [SourceRecord<'a>],
        pieces: &mut Vec<RecordBatch>,
        kept: &mut Vec<&'r SourceRecord<'a>>,
    ) -> Result<(), Error> {
        match self.read_all(records, SEARCH_ROWS) {
            Ok(batch) => {
                pieces.push(batch);
                kept.extend(records);
                Ok(())
            }
            Err(cause) => {
                if let [record] = records {
                    if !self.ignore_parse_errors {
                        return Err(Error::decode(record.position(), &cause));
                    }
                    self.skipped += 1;
                    return Ok(());
                }
                let (left, right) = records.split_at(records.len() / 2);
                self.bisect(left, pieces, kept)?;
                self.bisect(right, pieces, kept)
            }
        }
    }

    /// The rows of `records`; on an error the reader is reset for at most `capacity` rows.
    fn read_all(
        &mut self,
        records: &[SourceRecord<'_>],
        capacity: usize,
    ) -> Result<RecordBatch, String> {
        for record in records {
            if let Err(cause) = self.reader.push(record.data) {
                self.reader.reset(capacity);
                return Err(cause);
            }
        }
        let batch = self
            .reader
            .flush()
            .inspect_err(|_| self.reader.reset(capacity))?;
        for (column, field) in batch.columns().iter().zip(self.physical.fields()) {
            ranges::check(field.name(), column.as_ref()).map_err(|(_, message)| message)?;
        }
        Ok(batch)
    }

    fn assemble<'r, 'a: 'r>(
        &self,
        physical: &RecordBatch,
        records: impl Iterator<Item = &'r SourceRecord<'a>> + Clone,
    ) -> Result<RecordBatch, Error> {
        let rows = physical.num_rows();
        let columns = self
            .columns
            .iter()
            .zip(self.schema.fields())
            .map(|(source, field)| match source {
                ColumnSource::Physical(i) => Ok(Arc::clone(physical.column(*i))),
                ColumnSource::Metadata(key) => {
                    metadata_column(*key, field.data_type(), records.clone(), rows)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .map_err(|e| Error::new(ErrorKind::Decode, None, e.to_string()))
    }
}

/// A metadata column of `rows` records.
fn metadata_column<'r, 'a: 'r>(
    key: MetadataKey,
    data_type: &DataType,
    records: impl Iterator<Item = &'r SourceRecord<'a>> + Clone,
    rows: usize,
) -> Result<ArrayRef, Error> {
    let strings = |value: fn(&'r SourceRecord<'a>) -> &'a str| {
        let mut builder = StringBuilder::with_capacity(rows, rows * 24);
        for record in records.clone() {
            builder.append_value(value(record));
        }
        Ok(Arc::new(builder.finish()) as ArrayRef)
    };
    match key {
        MetadataKey::ShardId => strings(|r| r.shard_id),
        MetadataKey::SequenceNumber => strings(|r| r.sequence_number),
        MetadataKey::PartitionKey => strings(|r| r.partition_key),
        MetadataKey::SubSequenceNumber => {
            let mut builder = Int64Builder::with_capacity(rows);
            for record in records {
                let sub = i64::try_from(record.sub_sequence_number.unwrap_or(0)).map_err(|_| {
                    Error::decode(record.position(), "the sub-sequence number is over BIGINT")
                })?;
                builder.append_value(sub);
            }
            Ok(Arc::new(builder.finish()))
        }
        MetadataKey::Timestamp => {
            let DataType::Timestamp(unit, zone) = data_type else {
                unreachable!("timestamp metadata columns are checked to be timestamps")
            };
            let (multiplier, divisor) = match unit {
                TimeUnit::Second => (1, 1000),
                TimeUnit::Millisecond => (1, 1),
                TimeUnit::Microsecond => (1000, 1),
                TimeUnit::Nanosecond => (1_000_000, 1),
            };
            let mut values = Vec::with_capacity(rows);
            for record in records {
                let value = record
                    .arrival_millis
                    .checked_mul(multiplier)
                    .map(|v| v.div_euclid(divisor))
                    .ok_or_else(|| {
                        Error::decode(
                            record.position(),
                            &format!(
                                "the arrival time {} ms does not fit {data_type}",
                                record.arrival_millis
                            ),
                        )
                    })?;
                values.push(value);
            }
            Ok(match unit {
                TimeUnit::Second => timestamps::<TimestampSecondType>(values, zone),
                TimeUnit::Millisecond => timestamps::<TimestampMillisecondType>(values, zone),
                TimeUnit::Microsecond => timestamps::<TimestampMicrosecondType>(values, zone),
                TimeUnit::Nanosecond => timestamps::<TimestampNanosecondType>(values, zone),
            })
        }
    }
}

fn timestamps<T: arrow_array::types::ArrowTimestampType>(
    values: Vec<i64>,
    zone: &Option<Arc<str>>,
) -> ArrayRef {
    Arc::new(PrimitiveArray::<T>::from_iter_values(values).with_timezone_opt(zone.clone()))
}

/// Encodes rows of a table into records: the physical columns in the table's format, the
/// partition key from the table's partitioner.
///
/// Made by [`TableDefinition::encoder`].
pub struct RowEncoder {
    writer: Box<dyn RowWriter>,
    physical: SchemaRef,
    partitioner: Box<dyn PartitionKeyGenerator>,
    /// The average size of the rows encoded last.
    bytes_per_row: usize,
}

impl std::fmt::Debug for RowEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowEncoder")
            .field("physical", &self.physical)
            .finish_non_exhaustive()
    }
}

impl RowEncoder {
    /// The physical columns a batch must have (by name; other columns are ignored).
    pub fn physical_schema(&self) -> &SchemaRef {
        &self.physical
    }

    /// Encodes each row of `batch` into a record. `batch` holds the table's physical columns
    /// by name, with the table's types (the rows [`RowDecoder::decode`] gives will do).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Encode`] when a physical column is missing or of another type, or a row
    /// cannot be written in the format (the message names the row).
    pub fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<SinkRecord>, Error> {
        let physical = self.project(batch)?;
        let failed = |(row, cause): (Option<usize>, String)| match row {
            Some(row) => encode_error(format!("row {row}: {cause}")),
            None => encode_error(cause),
        };
        for (column, field) in physical.columns().iter().zip(self.physical.fields()) {
            ranges::check(field.name(), column.as_ref()).map_err(failed)?;
        }
        let rows = physical.num_rows();
        // Sized from the rows of the batch before, so that the buffer is not grown row by row
        // (within reason: one large row must not reserve gigabytes for the next batch).
        let reserve = rows
            .saturating_mul(self.bytes_per_row + self.bytes_per_row / 8)
            .min(MAX_RESERVE);
        let mut out = Vec::with_capacity(reserve);
        let mut ranges = Vec::with_capacity(rows);
        self.writer
            .write(&physical, &mut out, &mut ranges)
            .map_err(failed)?;
        if let Some(bytes_per_row) = out.len().checked_div(rows) {
            self.bytes_per_row = bytes_per_row;
        }
        let data = Bytes::from(out);
        Ok(ranges
            .into_iter()
            .enumerate()
            .map(|(row, range)| SinkRecord {
                partition_key: self.partitioner.partition_key(&physical, row),
                data: data.slice(range),
            })
            .collect())
    }

    fn project(&self, batch: &RecordBatch) -> Result<RecordBatch, Error> {
        let columns = self
            .physical
            .fields()
            .iter()
            .map(|field| {
                let (i, given) = batch
                    .schema_ref()
                    .column_with_name(field.name())
                    .ok_or_else(|| {
                        encode_error(format!("the batch has no column `{}`", field.name()))
                    })?;
                if given.data_type() != field.data_type() {
                    return Err(encode_error(format!(
                        "column `{}` is {}, the table declares {}",
                        field.name(),
                        given.data_type(),
                        field.data_type()
                    )));
                }
                Ok(Arc::clone(batch.column(i)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new_with_options(
            Arc::clone(&self.physical),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )
        .map_err(|e| encode_error(e.to_string()))
    }
}

fn encode_error(message: String) -> Error {
    Error::new(ErrorKind::Encode, None, message)
}

/// Checks that the table's format can hold its physical columns.
pub(crate) fn check_columns(
    format: &FormatOptions,
    columns: &[(&str, &FlinkType)],
) -> Result<(), Error> {
    match format {
        FormatOptions::Json { .. } => Ok(()),
        FormatOptions::Csv { .. } => csv::check_columns(columns),
        FormatOptions::Avro => avro::check_columns(columns),
        FormatOptions::Raw { .. } => raw::check_columns(columns),
    }
}

fn unsupported(message: String) -> Error {
    Error::new(ErrorKind::InvalidDefinition, Some("format"), message)
}

impl TableDefinition {
    /// The schema of the physical columns, the ones the format reads and writes.
    pub fn physical_schema(&self) -> Schema {
        let schema = self.arrow_schema();
        let fields: Vec<_> = self
            .table
            .columns
            .iter()
            .filter(|c| c.field.is_some())
            .zip(schema.fields())
            .filter(|(c, _)| c.kind == ColumnKind::Physical)
            .map(|(_, f)| Arc::clone(f))
            .collect();
        Schema::new(fields)
    }

    /// A decoder of this table's records into rows of [`arrow_schema`](Self::arrow_schema).
    ///
    /// # Errors
    ///
    /// `InvalidDefinition` when the format cannot be set up for the columns.
    pub fn decoder(&self) -> Result<RowDecoder, Error> {
        let all: Vec<usize> = (0..self.arrow_schema().fields().len()).collect();
        self.projected_decoder(&all)
    }

    /// A decoder of only the columns `projection` names (indexes into
    /// [`arrow_schema`](Self::arrow_schema)), in that order. With `json` and `raw`, the columns
    /// the projection leaves out are not decoded at all; `csv` and `avro` read every field of a
    /// record (their layouts are positional) and keep the projected ones.
    ///
    /// # Errors
    ///
    /// `InvalidDefinition` when an index is out of range or named twice, or the format cannot
    /// be set up for the columns.
    pub fn projected_decoder(&self, projection: &[usize]) -> Result<RowDecoder, Error> {
        let full = self.arrow_schema();
        let physical_full = self.physical_schema();
        // Each arrow column: metadata, or the index of its physical column.
        let mut physical_index = 0;
        let sources: Vec<ColumnSource> = self
            .table
            .columns
            .iter()
            .filter(|c| c.field.is_some())
            .map(|c| match &c.kind {
                ColumnKind::Metadata { .. } => {
                    let (_, key) = self
                        .metadata
                        .iter()
                        .find(|(i, _)| self.table.columns[*i].name == c.name)
                        .copied()
                        .expect("metadata columns are resolved when the table is defined");
                    ColumnSource::Metadata(key)
                }
                _ => {
                    physical_index += 1;
                    ColumnSource::Physical(physical_index - 1)
                }
            })
            .collect();
        let mut seen = vec![false; sources.len()];
        for &i in projection {
            if i >= sources.len() || std::mem::replace(&mut seen[i], true) {
                return Err(Error::new(
                    ErrorKind::InvalidDefinition,
                    None,
                    format!(
                        "projection {projection:?} names column {i} out of range or twice (the table has {} columns)",
                        sources.len()
                    ),
                ));
            }
        }
        // JSON and raw read only the physical columns projected; the others read them all.
        let narrow = matches!(
            self.options.format,
            FormatOptions::Json { .. } | FormatOptions::Raw { .. }
        );
        let read: Vec<usize> = if narrow {
            let mut read: Vec<usize> = projection
                .iter()
                .filter_map(|&i| match sources[i] {
                    ColumnSource::Physical(p) => Some(p),
                    ColumnSource::Metadata(_) => None,
                })
                .collect();
            // No physical column read (`count(*)`, metadata only): one is read anyway, so that
            // records that do not parse are refused or skipped as with any projection, and the
            // rows are counted.
            if read.is_empty() && !physical_full.fields().is_empty() {
                read.push(0);
            }
            read
        } else {
            (0..physical_full.fields().len()).collect()
        };
        let physical = Arc::new(
            physical_full
                .project(&read)
                .map_err(|e| Error::new(ErrorKind::InvalidDefinition, None, e.to_string()))?,
        );
        let columns = projection
            .iter()
            .map(|&i| match sources[i] {
                ColumnSource::Physical(p) => ColumnSource::Physical(
                    read.iter()
                        .position(|&r| r == p)
                        .expect("every projected physical column is read"),
                ),
                ColumnSource::Metadata(key) => ColumnSource::Metadata(key),
            })
            .collect();
        let schema = Arc::new(
            full.project(projection)
                .map_err(|e| Error::new(ErrorKind::InvalidDefinition, None, e.to_string()))?,
        );
        let (reader, ignore_parse_errors): (Box<dyn RowReader>, bool) = match &self.options.format {
            FormatOptions::Json {
                ignore_parse_errors,
                fail_on_missing_field,
                ..
            } => (
                Box::new(json::JsonReader::new(
                    Arc::clone(&physical),
                    *fail_on_missing_field,
                )?),
                *ignore_parse_errors,
            ),
            FormatOptions::Csv {
                ignore_parse_errors,
                ..
            } => (
                Box::new(csv::CsvReader::new(
                    Arc::clone(&physical),
                    &self.options.format,
                )),
                *ignore_parse_errors,
            ),
            FormatOptions::Avro => (
                Box::new(avro::AvroReader::new(Arc::clone(&physical))?),
                false,
            ),
            FormatOptions::Raw { big_endian } => {
                (Box::new(raw::RawReader::new(&physical, *big_endian)), false)
            }
        };
        Ok(RowDecoder {
            reader,
            physical,
            schema,
            columns,
            ignore_parse_errors,
            skipped: 0,
        })
    }

    /// An encoder of rows into this table's records, for the writer with index `writer` (the
    /// `fixed` partitioner's key). `partitioners` holds the custom partitioners registered in
    /// code.
    ///
    /// # Errors
    ///
    /// `InvalidDefinition` when the format cannot be set up for the columns or the partitioner
    /// is not registered.
    pub fn encoder(&self, partitioners: &Partitioners, writer: usize) -> Result<RowEncoder, Error> {
        let physical = Arc::new(self.physical_schema());
        let partitioner =
            partitioners.generator(&self.options.sink.partitioner, &physical, writer)?;
        let row_writer: Box<dyn RowWriter> = match &self.options.format {
            FormatOptions::Json {
                timestamp_standard,
                ignore_null_fields,
                ..
            } => Box::new(json::JsonWriter::new(
                timestamp_standard == "ISO-8601",
                *ignore_null_fields,
            )),
            FormatOptions::Csv { .. } => Box::new(csv::CsvWriter::new(&self.options.format)),
            FormatOptions::Avro => Box::new(avro::AvroWriter::new(&physical)?),
            FormatOptions::Raw { big_endian } => Box::new(raw::RawWriter::new(*big_endian)),
        };
        Ok(RowEncoder {
            writer: row_writer,
            physical,
            partitioner,
            bytes_per_row: 64,
        })
    }
}
