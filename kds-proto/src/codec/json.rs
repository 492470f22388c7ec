//! awsJson 1.1 bodies: a pull parser over a byte slice and a writer into a `Vec<u8>`.
//!
//! The parser is strict about structure (RFC 8259 grammar for containers, strings and numbers)
//! and finds string ends with `memchr`, so long base64 blobs cost a vectorised scan and one
//! vectorised base64 decode. Timestamps are epoch seconds in any JSON number form, converted to
//! milliseconds from the decimal text, never through a float.

use std::borrow::Cow;

use bytes::Bytes;

use super::{
    BlobArena, MAX_DEPTH, Reader, RecordFields, Writer, decimal_to_i64_floor, parse_decimal,
};
use crate::error::{DecodeError, DecodeErrorKind};
use crate::types::Timestamp;

pub(crate) struct JsonReader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// One entry per open container.
    stack: Vec<Container>,
    /// Where base64 blobs are decoded to.
    arena: BlobArena,
}

#[derive(Clone, Copy)]
struct Container {
    object: bool,
    /// Whether the next item is the container's first (no `,` before it).
    first: bool,
}

impl<'a> JsonReader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            stack: Vec::with_capacity(8),
            arena: BlobArena::default(),
        }
    }

    fn error(&self, kind: DecodeErrorKind, detail: impl Into<Cow<'static, str>>) -> DecodeError {
        DecodeError::new(kind, self.pos, detail)
    }

    fn eof(&self) -> DecodeError {
        self.error(DecodeErrorKind::UnexpectedEof, "")
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.buf.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next non-whitespace byte, not consumed.
    fn peek(&mut self) -> Result<u8, DecodeError> {
        self.skip_ws();
        self.buf.get(self.pos).copied().ok_or_else(|| self.eof())
    }

    /// Consumes a structural byte (`{`, `[`, `:`), or fails.
    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), DecodeError> {
        let found = self.peek()?;
        if found == byte {
            self.pos += 1;
            Ok(())
        } else if matches!(byte, b'{' | b'[') {
            // A value of another type where an object or array belongs.
            Err(self.unexpected(found, what))
        } else {
            Err(self.syntax(found, what))
        }
    }

    fn syntax(&self, found: u8, wanted: &'static str) -> DecodeError {
        self.error(
            DecodeErrorKind::Syntax,
            format!("expected {wanted}, found {:?}", char::from(found)),
        )
    }

    fn unexpected(&self, found: u8, wanted: &'static str) -> DecodeError {
        let kind = if matches!(
            found,
            b'{' | b'[' | b'"' | b't' | b'f' | b'n' | b'-' | b'0'..=b'9'
        ) {
            DecodeErrorKind::TypeMismatch
        } else {
            DecodeErrorKind::Syntax
        };
        self.error(
            kind,
            format!("expected {wanted}, found {:?}", char::from(found)),
        )
    }

    fn open(&mut self, object: bool) -> Result<(), DecodeError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.error(
                DecodeErrorKind::TooDeep,
                format!("more than {MAX_DEPTH} levels"),
            ));
        }
        self.stack.push(Container {
            object,
            first: true,
        });
        Ok(())
    }

    /// Handles the separator before the next item of the innermost container. Returns false at
    /// its end (consuming the closing bracket).
    fn next_item(&mut self) -> Result<bool, DecodeError> {
        let b = self.peek()?;
        let pos = self.pos;
        let top = self
            .stack
            .last_mut()
            .ok_or_else(|| DecodeError::new(DecodeErrorKind::Syntax, pos, "no open container"))?;
        let close = if top.object { b'}' } else { b']' };
        if b == close {
            self.pos += 1;
            self.stack.pop();
            return Ok(false);
        }
        if top.first {
            top.first = false;
            return Ok(true);
        }
        if b == b',' {
            self.pos += 1;
            Ok(true)
        } else {
            Err(self.syntax(b, "`,` or the end of the container"))
        }
    }

    /// Reads a string, returning its raw bytes when it has no escapes.
    fn read_str_bytes(&mut self) -> Result<Cow<'a, [u8]>, DecodeError> {
        let found = self.peek()?;
        if found != b'"' {
            return Err(self.unexpected(found, "a string"));
        }
        let start = self.pos + 1;
        let rest = &self.buf[start..];
        match memchr::memchr2(b'"', b'\\', rest) {
            None => {
                self.pos = self.buf.len();
                Err(self.eof())
            }
            Some(end) if rest[end] == b'"' => {
                self.pos = start + end + 1;
                Ok(Cow::Borrowed(&rest[..end]))
            }
            Some(_) => self.read_escaped(start).map(Cow::Owned),
        }
    }

    fn read_escaped(&mut self, start: usize) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        let mut i = start;
        loop {
            let rest = &self.buf[i..];
            let Some(at) = memchr::memchr2(b'"', b'\\', rest) else {
                self.pos = self.buf.len();
                return Err(self.eof());
            };
            out.extend_from_slice(&rest[..at]);
            i += at;
            if self.buf[i] == b'"' {
                self.pos = i + 1;
                return Ok(out);
            }
            let Some(&esc) = self.buf.get(i + 1) else {
                self.pos = self.buf.len();
                return Err(self.eof());
            };
            i += 2;
            let simple = match esc {
                b'"' => Some(b'"'),
                b'\\' => Some(b'\\'),
                b'/' => Some(b'/'),
                b'b' => Some(0x08),
                b'f' => Some(0x0C),
                b'n' => Some(b'\n'),
                b'r' => Some(b'\r'),
                b't' => Some(b'\t'),
                b'u' => None,
                _ => {
                    self.pos = i - 2;
                    return Err(self.error(DecodeErrorKind::Syntax, "invalid escape"));
                }
            };
            if let Some(byte) = simple {
                out.push(byte);
                continue;
            }
            let unit = self.hex4(i)?;
            i += 4;
            let code = if (0xD800..0xDC00).contains(&unit) {
                if self.buf.get(i..i + 2) != Some(b"\\u") {
                    self.pos = i;
                    return Err(self.error(DecodeErrorKind::InvalidUtf8, "unpaired surrogate"));
                }
                let low = self.hex4(i + 2)?;
                if !(0xDC00..0xE000).contains(&low) {
                    self.pos = i;
                    return Err(self.error(DecodeErrorKind::InvalidUtf8, "unpaired surrogate"));
                }
                i += 6;
                0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
            } else {
                unit
            };
            let Some(c) = char::from_u32(code) else {
                self.pos = i;
                return Err(self.error(DecodeErrorKind::InvalidUtf8, "unpaired surrogate"));
            };
            let mut utf8 = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }

    fn hex4(&mut self, at: usize) -> Result<u32, DecodeError> {
        let Some(digits) = self.buf.get(at..at + 4) else {
            self.pos = self.buf.len();
            return Err(self.eof());
        };
        let mut value = 0;
        for &d in digits {
            let Some(v) = char::from(d).to_digit(16) else {
                self.pos = at;
                return Err(self.error(DecodeErrorKind::Syntax, "invalid \\u escape"));
            };
            value = value * 16 + v;
        }
        Ok(value)
    }

    /// A number, split by [`parse_decimal`], and the offset where it starts.
    fn decimal(&mut self) -> Result<(bool, u128, i32, usize), DecodeError> {
        let found = self.peek()?;
        if !(found == b'-' || found.is_ascii_digit()) {
            return Err(self.unexpected(found, "a number"));
        }
        let start = self.pos;
        let len = self.buf[start..]
            .iter()
            .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .unwrap_or(self.buf.len() - start);
        self.pos = start + len;
        let text = &self.buf[start..start + len];
        parse_decimal(text)
            .map(|(n, m, e)| (n, m, e, start))
            .ok_or_else(|| {
                DecodeError::new(DecodeErrorKind::InvalidNumber, start, "malformed number")
            })
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), DecodeError> {
        if self.buf.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else if self.buf.len() - self.pos < word.len() && word.starts_with(&self.buf[self.pos..])
        {
            self.pos = self.buf.len();
            Err(self.eof())
        } else {
            Err(self.error(DecodeErrorKind::Syntax, "invalid literal"))
        }
    }

    fn to_string(&self, raw: Cow<'a, [u8]>, start: usize) -> Result<String, DecodeError> {
        let invalid = |e: std::str::Utf8Error| {
            DecodeError::new(
                DecodeErrorKind::InvalidUtf8,
                start + 1 + e.valid_up_to(),
                "",
            )
        };
        match raw {
            Cow::Borrowed(b) => std::str::from_utf8(b).map(str::to_owned).map_err(invalid),
            Cow::Owned(v) => String::from_utf8(v).map_err(|e| invalid(e.utf8_error())),
        }
    }
}

impl Reader for JsonReader<'_> {
    fn offset(&self) -> usize {
        let skipped = self.buf[self.pos..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        self.pos + skipped
    }

    fn begin_map(&mut self) -> Result<(), DecodeError> {
        self.expect(b'{', "an object")?;
        self.open(true)
    }

    fn next_key<T: Copy>(
        &mut self,
        keys: &[(&'static str, T)],
    ) -> Result<Option<Option<T>>, DecodeError> {
        if !self.next_item()? {
            return Ok(None);
        }
        let key = self.read_str_bytes()?;
        self.expect(b':', "`:`")?;
        Ok(Some(
            keys.iter()
                .find(|(name, _)| name.as_bytes() == &*key)
                .map(|&(_, t)| t),
        ))
    }

    fn next_key_owned(&mut self) -> Result<Option<String>, DecodeError> {
        if !self.next_item()? {
            return Ok(None);
        }
        let start = self.offset();
        let raw = self.read_str_bytes()?;
        let key = self.to_string(raw, start)?;
        self.expect(b':', "`:`")?;
        Ok(Some(key))
    }

    fn begin_array(&mut self) -> Result<(), DecodeError> {
        self.expect(b'[', "an array")?;
        self.open(false)
    }

    fn next_element(&mut self) -> Result<bool, DecodeError> {
        self.next_item()
    }

    fn take_null(&mut self) -> Result<bool, DecodeError> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn read_string(&mut self) -> Result<String, DecodeError> {
        let start = self.offset();
        let raw = self.read_str_bytes()?;
        self.to_string(raw, start)
    }

    fn read_blob(&mut self) -> Result<Bytes, DecodeError> {
        let start = self.offset();
        let text = self.read_str_bytes()?;
        // Blobs take at most 3/4 of the bytes that remain: one arena holds them all.
        let upcoming = self.upcoming();
        self.arena
            .decode_base64(&text, upcoming)
            .map_err(|e| e.shift_offset(start + 1))
    }

    fn read_bool(&mut self) -> Result<bool, DecodeError> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| true),
            b'f' => self.literal(b"false").map(|()| false),
            other => Err(self.unexpected(other, "a boolean")),
        }
    }

    fn read_i64(&mut self) -> Result<i64, DecodeError> {
        let (negative, mantissa, exponent, start) = self.decimal()?;
        // Integral values only: `5`, `5.0` and `5e0` are fine, `2.5` is not.
        let integral = exponent >= 0
            || 10u128
                .checked_pow(exponent.unsigned_abs())
                .map_or(mantissa == 0, |scale| mantissa.is_multiple_of(scale));
        match decimal_to_i64_floor(negative, mantissa, exponent) {
            Some(v) if integral => Ok(v),
            _ => Err(DecodeError::new(
                DecodeErrorKind::InvalidNumber,
                start,
                "expected an integer within the 64-bit range",
            )),
        }
    }

    fn read_timestamp(&mut self) -> Result<Timestamp, DecodeError> {
        // Epoch seconds with a fraction, as awsJson1_1 sends them; millis = floor(seconds * 1000).
        let (negative, mantissa, exponent, start) = self.decimal()?;
        decimal_to_i64_floor(negative, mantissa, exponent.saturating_add(3))
            .map(Timestamp::from_millis)
            .ok_or_else(|| {
                DecodeError::new(
                    DecodeErrorKind::InvalidNumber,
                    start,
                    "timestamp out of range",
                )
            })
    }

    fn skip_value(&mut self) -> Result<(), DecodeError> {
        let depth = self.stack.len();
        loop {
            match self.peek()? {
                open @ (b'{' | b'[') => {
                    self.pos += 1;
                    self.open(open == b'{')?;
                }
                b'"' => {
                    self.read_str_bytes()?;
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => {
                    self.decimal()?;
                }
                other => return Err(self.unexpected(other, "a value")),
            }
            // Close finished containers and step to the next item, until back at `depth`.
            loop {
                if self.stack.len() == depth {
                    return Ok(());
                }
                let object = self.stack.last().is_some_and(|c| c.object);
                if !self.next_item()? {
                    continue;
                }
                if object {
                    self.read_str_bytes()?;
                    self.expect(b':', "`:`")?;
                }
                break;
            }
        }
    }

    fn finish(&mut self) -> Result<(), DecodeError> {
        self.skip_ws();
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(self.error(DecodeErrorKind::TrailingData, ""))
        }
    }

    fn read_record_fast(&mut self, out: &mut RecordFields) -> bool {
        let start = self.pos;
        if self.record_fast(out).is_some() {
            true
        } else {
            self.pos = start;
            false
        }
    }

    fn lend_records(&mut self) {
        self.arena.lend();
    }
}

impl<'a> JsonReader<'a> {
    /// A record object in the common form, into `out`'s reused buffers: members at most once
    /// each, strings without escapes, and nothing else. `None` on anything unusual (the
    /// caller then reads the record again with the general decoder, which also reports
    /// errors).
    fn record_fast(&mut self, out: &mut RecordFields) -> Option<()> {
        self.skip_ws();
        if *self.buf.get(self.pos)? != b'{' {
            return None;
        }
        self.pos += 1;
        let (mut sequence_number, mut partition_key) = (false, false);
        // Decoded once the whole object has been read: a record the general decoder reads
        // again does not leave a first copy of its data in the arena.
        let mut data: Option<(&[u8], usize)> = None;
        out.approximate_arrival_timestamp = None;
        out.encryption_type = None;
        let mut first = true;
        loop {
            self.skip_ws();
            match *self.buf.get(self.pos)? {
                b'}' => {
                    self.pos += 1;
                    break;
                }
                b',' if !first => {
                    self.pos += 1;
                    self.skip_ws();
                }
                _ if first => {}
                _ => return None,
            }
            first = false;
            let name = self.plain_str()?;
            self.skip_ws();
            if *self.buf.get(self.pos)? != b':' {
                return None;
            }
            self.pos += 1;
            self.skip_ws();
            match name {
                b"SequenceNumber" if !sequence_number => {
                    let text = std::str::from_utf8(self.plain_str()?).ok()?;
                    crate::types::check_sequence_number(text).ok()?;
                    out.sequence_number = self.arena.copy_text(text, self.upcoming())?;
                    sequence_number = true;
                }
                b"PartitionKey" if !partition_key => {
                    let text = std::str::from_utf8(self.plain_str()?).ok()?;
                    crate::types::check_partition_key(text).ok()?;
                    out.partition_key = self.arena.copy_text(text, self.upcoming())?;
                    partition_key = true;
                }
                b"Data" if data.is_none() => {
                    let upcoming = self.upcoming();
                    data = Some((self.plain_str()?, upcoming));
                }
                b"ApproximateArrivalTimestamp" if out.approximate_arrival_timestamp.is_none() => {
                    out.approximate_arrival_timestamp = Some(self.read_timestamp().ok()?);
                }
                b"EncryptionType" if out.encryption_type.is_none() => {
                    let text = std::str::from_utf8(self.plain_str()?).ok()?;
                    out.encryption_type = Some(crate::types::EncryptionType::from(text));
                }
                _ => return None,
            }
        }
        if !(sequence_number && partition_key) {
            return None;
        }
        let (text, upcoming) = data?;
        out.data = self.arena.decode_base64(text, upcoming).ok()?;
        Some(())
    }

    /// What blobs and strings still to come, from here on, need at most: sizes the arena's
    /// next buffer.
    fn upcoming(&self) -> usize {
        (self.buf.len() - self.pos) / 4 * 3
    }

    /// A string without escapes at the current position, consumed; `None` otherwise.
    fn plain_str(&mut self) -> Option<&'a [u8]> {
        if *self.buf.get(self.pos)? != b'"' {
            return None;
        }
        let start = self.pos + 1;
        let rest = &self.buf[start..];
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[end] != b'"' {
            return None;
        }
        self.pos = start + end + 1;
        Some(&rest[..end])
    }
}

pub(crate) struct JsonWriter {
    out: Vec<u8>,
}

impl JsonWriter {
    pub(crate) fn new() -> Self {
        Self {
            out: Vec::with_capacity(256),
        }
    }

    pub(crate) fn into_inner(self) -> Vec<u8> {
        self.out
    }

    fn separator(&mut self, opener: u8) {
        if self.out.last().is_some_and(|&b| b != opener) {
            self.out.push(b',');
        }
    }
}

/// Bytes that need an escape in a JSON string.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

fn write_escaped(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    let bytes = value.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xF)]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

impl Writer for JsonWriter {
    fn begin_map(&mut self, _len: usize) {
        self.out.push(b'{');
    }

    fn key(&mut self, key: &str) {
        self.separator(b'{');
        write_escaped(&mut self.out, key);
        self.out.push(b':');
    }

    fn end_map(&mut self) {
        self.out.push(b'}');
    }

    fn begin_array(&mut self, _len: usize) {
        self.out.push(b'[');
    }

    fn element(&mut self) {
        self.separator(b'[');
    }

    fn end_array(&mut self) {
        self.out.push(b']');
    }

    fn string(&mut self, value: &str) {
        write_escaped(&mut self.out, value);
    }

    fn blob(&mut self, value: &[u8]) {
        self.out.reserve(value.len().div_ceil(3) * 4 + 2);
        self.out.push(b'"');
        base64_simd::STANDARD.encode_append(value, &mut self.out);
        self.out.push(b'"');
    }

    fn bool(&mut self, value: bool) {
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn int(&mut self, value: i64) {
        self.out.extend_from_slice(value.to_string().as_bytes());
    }

    fn timestamp(&mut self, value: Timestamp) {
        // Epoch seconds with exactly three fractional digits, from integers (no float artefacts).
        let millis = value.as_millis();
        let sign = if millis < 0 { "-" } else { "" };
        let magnitude = millis.unsigned_abs();
        let text = format!("{sign}{}.{:03}", magnitude / 1000, magnitude % 1000);
        self.out.extend_from_slice(text.as_bytes());
    }
}
