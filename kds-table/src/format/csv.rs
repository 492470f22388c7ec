//! The `csv` format: one CSV row per record, without a header or a line terminator.
//!
//! Fields are split by csv-core (which, unlike arrow-csv's reader, can turn quoting off, as
//! `csv.disable-quote-character` asks) and turned into typed columns by arrow-cast; rows are
//! written by the `csv` crate from arrow-cast's value formatter. As Flink's CSV format:
//! `csv.field-delimiter`, `csv.quote-character`, `csv.escape-character` (inside quoted fields),
//! `csv.allow-comments` (`#` lines; such first fields are written quoted) and
//! `csv.null-literal` apply both ways; ARRAY fields are their elements joined by
//! `csv.array-element-delimiter`; BYTES are base64; an empty field is an empty string, binary
//! or array in such columns and NULL in any other; NULL is written as
//! the null literal, or as an empty field without one (so without a null literal, NULL strings
//! and arrays read back as empty ones, as in Flink). NULL array elements are written the same
//! way, so a one-element array holding NULL reads back as a NULL array with a null literal and
//! as an empty array without one. With `csv.disable-quote-character`, a value that would need
//! quotes (the delimiter, a line break) cannot be written and is an error naming the row. MAP and ROW columns, and arrays of anything but scalars, have no CSV form
//! and are refused when the table is defined. An unterminated quote runs to the end of the data
//! (csv-core's reading), which then usually lacks fields.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::builder::{ArrayBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BinaryArray, ListArray, RecordBatch, StringArray};
use arrow_buffer::OffsetBuffer;
use arrow_cast::CastOptions;
use arrow_cast::display::{ArrayFormatter, FormatOptions as DisplayOptions};
use arrow_schema::{DataType, Field, FieldRef, SchemaRef};
use csv_core::ReadRecordResult;

use super::text::from_text;
use super::{RowReader, RowWriter, unsupported};
use crate::ddl::DataType as FlinkType;
use crate::error::Error;
use crate::options::FormatOptions;

/// How timestamps are written (Flink's SQL form); reading takes this form and ISO-8601.
const TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.f";
const TIMESTAMP_TZ_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.fZ";

pub(super) fn check_columns(columns: &[(&str, &FlinkType)]) -> Result<(), Error> {
    for (name, data_type) in columns {
        let refuse = |what: &str| {
            Err(unsupported(format!(
                "format `csv` cannot hold column `{name}` of type {data_type}: {what}"
            )))
        };
        match data_type {
            FlinkType::Map(..) | FlinkType::Row(_) => {
                return refuse("MAP and ROW have no CSV form");
            }
            FlinkType::Array(element) => match element.data_type {
                FlinkType::Array(_)
                | FlinkType::Map(..)
                | FlinkType::Row(_)
                | FlinkType::Binary(_)
                | FlinkType::Varbinary(_) => {
                    return refuse("array elements must be scalars other than binaries");
                }
                _ => {}
            },
            _ => {}
        }
    }
    Ok(())
}

/// The settings both directions share.
struct Dialect {
    delimiter: u8,
    quote: Option<u8>,
    escape: Option<u8>,
    comment: Option<u8>,
    null_literal: Option<String>,
    array_delimiter: String,
}

impl Dialect {
    fn new(options: &FormatOptions) -> Self {
        let FormatOptions::Csv {
            field_delimiter,
            quote_character,
            allow_comments,
            array_element_delimiter,
            escape_character,
            null_literal,
            ..
        } = options
        else {
            unreachable!("a CSV dialect is made from CSV options")
        };
        // The options are checked to be ASCII characters.
        let byte = |c: char| u8::try_from(c).unwrap_or(b'?');
        Self {
            delimiter: byte(*field_delimiter),
            quote: quote_character.map(byte),
            escape: escape_character.map(byte),
            comment: allow_comments.then_some(b'#'),
            null_literal: null_literal.clone(),
            array_delimiter: array_element_delimiter.clone(),
        }
    }
}

/// Reads one CSV row per record.
pub(super) struct CsvReader {
    physical: SchemaRef,
    dialect: Dialect,
    parser: csv_core::Reader,
    /// The fields of every row so far, as text, per column.
    columns: Vec<StringBuilder>,
    /// The current record's fields, unquoted, one after the other, and where each ends.
    unquoted: Vec<u8>,
    ends: Vec<usize>,
}

impl CsvReader {
    pub(super) fn new(physical: SchemaRef, options: &FormatOptions) -> Self {
        let dialect = Dialect::new(options);
        let parser = csv_core::ReaderBuilder::new()
            .delimiter(dialect.delimiter)
            .quoting(dialect.quote.is_some())
            .quote(dialect.quote.unwrap_or(b'"'))
            .escape(dialect.escape)
            .double_quote(dialect.escape.is_none())
            .comment(dialect.comment)
            .build();
        let columns = physical
            .fields()
            .iter()
            .map(|_| StringBuilder::new())
            .collect();
        Self {
            ends: vec![0; physical.fields().len()],
            physical,
            dialect,
            parser,
            columns,
            unquoted: Vec::new(),
        }
    }

    /// Splits `data` into its fields; returns how many there are.
    fn split(&mut self, data: &[u8]) -> Result<usize, String> {
        self.parser.reset();
        // Unquoted fields are never longer than the input.
        self.unquoted.clear();
        self.unquoted.resize(data.len(), 0);
        let (mut input, mut written, mut fields) = (data, 0, 0);
        loop {
            let (result, read, out, ends) = self.parser.read_record(
                input,
                &mut self.unquoted[written..],
                &mut self.ends[fields..],
            );
            input = &input[read..];
            written += out;
            fields += ends;
            match result {
                // The rest of the input follows; an empty input marks its end.
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::Record => break,
                ReadRecordResult::End => return Err("the data holds no CSV row".to_owned()),
                ReadRecordResult::OutputEndsFull => {
                    return Err(format!(
                        "the row has more than {} fields, one per physical column",
                        self.columns.len()
                    ));
                }
                ReadRecordResult::OutputFull => {
                    return Err("a field is longer than the data".to_owned());
                }
            }
        }
        if input.iter().any(|b| !matches!(b, b'\r' | b'\n')) {
            return Err("the data holds more than one CSV row".to_owned());
        }
        Ok(fields)
    }
}

/// Names the first field of `all` (split at `ends`) that is not UTF-8.
fn not_utf8(all: &[u8], ends: &[usize]) -> String {
    let mut start = 0;
    for (i, &end) in ends.iter().enumerate() {
        if let Err(e) = std::str::from_utf8(&all[start..end]) {
            return format!("field {} is not UTF-8: {e}", i + 1);
        }
        start = end;
    }
    "the fields are not UTF-8".to_owned()
}

impl RowReader for CsvReader {
    fn push(&mut self, data: &[u8]) -> Result<(), String> {
        let count = self.split(data)?;
        if count != self.columns.len() {
            return Err(format!(
                "the row has {count} field{}, the table has {} physical column{}",
                if count == 1 { "" } else { "s" },
                self.columns.len(),
                if self.columns.len() == 1 { "" } else { "s" }
            ));
        }
        // One UTF-8 check over all the fields, and each field ending on a character boundary,
        // instead of a check (and a list of slices) per field.
        let ends = &self.ends[..count];
        let all = &self.unquoted[..ends.last().copied().unwrap_or(0)];
        let text = match std::str::from_utf8(all) {
            Ok(text) if ends.iter().all(|&end| text.is_char_boundary(end)) => text,
            _ => return Err(not_utf8(all, ends)),
        };
        let mut start = 0;
        for ((&end, column), field) in ends
            .iter()
            .zip(&mut self.columns)
            .zip(self.physical.fields())
        {
            let text = &text[start..end];
            start = end;
            let is_null = match &self.dialect.null_literal {
                Some(literal) if literal == text => true,
                _ => {
                    text.is_empty()
                        && !matches!(
                            field.data_type(),
                            DataType::Utf8 | DataType::Binary | DataType::List(_)
                        )
                }
            };
            if is_null {
                column.append_null();
            } else {
                column.append_value(text);
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<RecordBatch, String> {
        let columns = self
            .columns
            .iter_mut()
            .zip(self.physical.fields())
            .map(|(column, field)| {
                let text = column.finish();
                typed(text, field, &self.dialect)
                    .map_err(|e| format!("column `{}`: {e}", field.name()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new(Arc::clone(&self.physical), columns).map_err(|e| e.to_string())
    }

    fn reset(&mut self, _rows: usize) {
        for column in &mut self.columns {
            column.finish();
        }
    }
}

const STRICT: CastOptions<'static> = CastOptions {
    safe: false,
    format_options: DisplayOptions::new(),
};

/// A column of text fields as `field`'s type.
fn typed(text: StringArray, field: &FieldRef, dialect: &Dialect) -> Result<ArrayRef, String> {
    let text: ArrayRef = Arc::new(text);
    match field.data_type() {
        DataType::Utf8 => Ok(text),
        DataType::Binary | DataType::Decimal128(..) => from_text(&text, field.data_type()),
        DataType::List(element) => split_array(text.as_string::<i32>(), element, dialect),
        other => arrow_cast::cast_with_options(&text, other, &STRICT).map_err(|e| e.to_string()),
    }
}

/// Array fields: elements joined by the array element delimiter.
fn split_array(
    text: &StringArray,
    element: &Arc<Field>,
    dialect: &Dialect,
) -> Result<ArrayRef, String> {
    let mut elements = StringBuilder::new();
    let mut offsets = vec![0i32];
    let is_string = element.data_type() == &DataType::Utf8;
    for value in text {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            let parts: Box<dyn Iterator<Item = &str>> = if dialect.array_delimiter.is_empty() {
                Box::new(std::iter::once(value))
            } else {
                Box::new(value.split(dialect.array_delimiter.as_str()))
            };
            for part in parts {
                let is_null = match &dialect.null_literal {
                    Some(literal) if literal == part => true,
                    _ => part.is_empty() && !is_string,
                };
                if is_null {
                    elements.append_null();
                } else {
                    elements.append_value(part);
                }
            }
        }
        let count = i32::try_from(elements.len()).map_err(|_| "too many array elements")?;
        offsets.push(count);
    }
    // Elements are scalars (see `check_columns`), typed as a column of them is.
    let values = typed(elements.finish(), element, dialect)?;
    let list = ListArray::try_new(
        Arc::clone(element),
        OffsetBuffer::new(offsets.into()),
        values,
        text.nulls().cloned(),
    )
    .map_err(|e| e.to_string())?;
    Ok(Arc::new(list))
}

/// Writes one CSV row per row.
pub(super) struct CsvWriter {
    dialect: Dialect,
}

impl CsvWriter {
    pub(super) fn new(options: &FormatOptions) -> Self {
        Self {
            dialect: Dialect::new(options),
        }
    }

    /// Without quoting, a field holding the delimiter or a line break, a first field that
    /// starts a comment, or a lone empty field would not read back.
    fn check_unquoted(&self, fields: &[String], batch: &RecordBatch) -> Result<(), String> {
        let schema = batch.schema_ref();
        for (i, field) in fields.iter().enumerate() {
            let bytes = field.as_bytes();
            let problem = if bytes
                .iter()
                .any(|&b| b == self.dialect.delimiter || b == b'\n' || b == b'\r')
            {
                "holds the delimiter or a line break"
            } else if i == 0
                && self
                    .dialect
                    .comment
                    .is_some_and(|c| bytes.first() == Some(&c))
            {
                "starts like a comment"
            } else if fields.len() == 1 && bytes.is_empty() {
                "is empty in a one-column row"
            } else {
                continue;
            };
            return Err(format!(
                "column `{}` {problem}, which cannot be written with csv.disable-quote-character",
                schema.field(i).name()
            ));
        }
        Ok(())
    }
}

/// How a column's values become field text.
enum FieldText<'a> {
    Display(ArrayFormatter<'a>),
    Base64(&'a BinaryArray),
    Array(&'a ListArray, ArrayFormatter<'a>),
}

impl RowWriter for CsvWriter {
    fn write(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        rows: &mut Vec<Range<usize>>,
    ) -> Result<(), (Option<usize>, String)> {
        let null = self.dialect.null_literal.as_deref().unwrap_or("");
        let options = DisplayOptions::new()
            .with_null(null)
            .with_timestamp_format(Some(TIMESTAMP_FORMAT))
            .with_timestamp_tz_format(Some(TIMESTAMP_TZ_FORMAT));
        let columns = batch
            .columns()
            .iter()
            .map(|column| {
                Ok(match column.data_type() {
                    DataType::Binary => FieldText::Base64(column.as_binary::<i32>()),
                    DataType::List(_) => {
                        let list = column.as_list::<i32>();
                        FieldText::Array(list, ArrayFormatter::try_new(list.values(), &options)?)
                    }
                    _ => FieldText::Display(ArrayFormatter::try_new(column, &options)?),
                })
            })
            .collect::<Result<Vec<_>, arrow_schema::ArrowError>>()
            .map_err(|e| (None, e.to_string()))?;
        let mut writer = csv::WriterBuilder::new()
            .delimiter(self.dialect.delimiter)
            .quote(self.dialect.quote.unwrap_or(b'"'))
            .quote_style(if self.dialect.quote.is_some() {
                csv::QuoteStyle::Necessary
            } else {
                csv::QuoteStyle::Never
            })
            .double_quote(self.dialect.escape.is_none())
            .escape(self.dialect.escape.unwrap_or(b'\\'))
            .comment(self.dialect.comment)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(out);
        let mut fields: Vec<String> = batch.columns().iter().map(|_| String::new()).collect();
        for row in 0..batch.num_rows() {
            let start = writer.get_ref().len();
            for ((field, column), array) in fields.iter_mut().zip(&columns).zip(batch.columns()) {
                field.clear();
                if array.is_null(row) {
                    field.push_str(null);
                    continue;
                }
                match column {
                    FieldText::Display(formatter) => formatter
                        .value(row)
                        .write(field)
                        .map_err(|e| (Some(row), e.to_string()))?,
                    FieldText::Base64(binary) => {
                        base64_simd::STANDARD.encode_append(binary.value(row), field);
                    }
                    FieldText::Array(list, elements) => {
                        let range = list.value_offsets()[row]..list.value_offsets()[row + 1];
                        for (n, i) in range.enumerate() {
                            if n > 0 {
                                field.push_str(&self.dialect.array_delimiter);
                            }
                            // Offsets are non-negative.
                            let i = usize::try_from(i).unwrap_or_default();
                            elements
                                .value(i)
                                .write(field)
                                .map_err(|e| (Some(row), e.to_string()))?;
                        }
                    }
                }
            }
            if let (Some(escape), Some(_)) =
                (self.dialect.escape.map(char::from), self.dialect.quote)
            {
                // The writer quotes a field holding the escape character but escapes only the
                // quote character, and a reader takes the escape as escaping what follows it
                // (inside quotes: without them, the escape character is plain text).
                for field in &mut fields {
                    if field.contains(escape) {
                        *field = field.replace(escape, &format!("{escape}{escape}"));
                    }
                }
            }
            if self.dialect.quote.is_none() {
                self.check_unquoted(&fields, batch)
                    .map_err(|cause| (Some(row), cause))?;
            }
            writer
                .write_record(&fields)
                .and_then(|()| writer.flush().map_err(csv::Error::from))
                .map_err(|e| (Some(row), e.to_string()))?;
            // A record is the row without its terminator.
            rows.push(start..writer.get_ref().len() - 1);
        }
        Ok(())
    }
}
