//! CBOR 1.1 bodies (`application/x-amz-cbor-1.1`): a pull reader over [`Bytes`] and a writer.
//!
//! The reader accepts definite and indefinite maps, arrays, byte and text strings; any tag
//! (unwrapped and ignored); integers of every width; half, single and double floats; `undefined` as
//! absent; blobs as byte strings (sliced from the body without copying) or as base64 text.
//! Timestamps are epoch milliseconds when integral, with or without tag 1. Every length is checked
//! against the bytes that remain before it is used.
//!
//! The writer emits definite lengths and minimal integers, blobs as byte strings and timestamps
//! as tag 1 + integer milliseconds, as the AWS Java SDK does.

use std::borrow::Cow;

use bytes::{BufMut, Bytes};
use bytestring::ByteString;

use super::{
    BlobArena, MAX_DEPTH, MAX_LEN_HINT, Reader, RecordFields, Writer, float_timestamp_millis,
};
use crate::error::{DecodeError, DecodeErrorKind};
use crate::types::Timestamp;

const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_NEGATIVE: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const MAJOR_SIMPLE: u8 = 7;

const BREAK: u8 = 0xFF;
const FALSE: u8 = 0xF4;
const TRUE: u8 = 0xF5;
const NULL: u8 = 0xF6;
const UNDEFINED: u8 = 0xF7;
/// Tag 1: epoch-based date/time, in seconds by RFC 8949 §3.4.2. Kinesis puts milliseconds in it,
/// as the AWS Java SDK's `SdkCborGenerator` does.
const TAG_EPOCH: u8 = 0xC1;

/// The argument of an item head: a number, or "indefinite length".
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arg {
    Value(u64),
    Indefinite,
}

pub(crate) struct CborReader {
    buf: Bytes,
    pos: usize,
    /// Items left in each open container (pairs for maps); `None` for indefinite ones.
    stack: Vec<Option<u64>>,
    /// Where base64-text blobs are decoded to.
    arena: BlobArena,
}

impl CborReader {
    pub(crate) fn new(buf: Bytes) -> Self {
        Self {
            buf,
            pos: 0,
            stack: Vec::with_capacity(8),
            arena: BlobArena::default(),
        }
    }

    fn error(
        &self,
        kind: DecodeErrorKind,
        at: usize,
        detail: impl Into<Cow<'static, str>>,
    ) -> DecodeError {
        DecodeError::new(kind, at, detail)
    }

    fn eof(&self) -> DecodeError {
        self.error(DecodeErrorKind::UnexpectedEof, self.buf.len(), "")
    }

    #[inline]
    fn peek(&self) -> Result<u8, DecodeError> {
        self.buf.get(self.pos).copied().ok_or_else(|| self.eof())
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.buf.len());
        let Some(end) = end else {
            return Err(self.eof());
        };
        let start = self.pos;
        self.pos = end;
        Ok(&self.buf[start..end])
    }

    /// Reads an item head: (major type, additional info, argument).
    #[inline]
    fn head(&mut self) -> Result<(u8, u8, Arg), DecodeError> {
        let at = self.pos;
        let initial = self.peek()?;
        self.pos += 1;
        let (major, info) = (initial >> 5, initial & 0x1F);
        let arg = match info {
            0..=23 => Arg::Value(u64::from(info)),
            24 => Arg::Value(u64::from(self.take(1)?[0])),
            25 => Arg::Value(u64::from(u16::from_be_bytes(self.array()?))),
            26 => Arg::Value(u64::from(u32::from_be_bytes(self.array()?))),
            27 => Arg::Value(u64::from_be_bytes(self.array()?)),
            // A break (major 7) is consumed where an indefinite item may end, never here.
            31 if matches!(major, MAJOR_BYTES | MAJOR_TEXT | MAJOR_ARRAY | MAJOR_MAP) => {
                Arg::Indefinite
            }
            31 if major == MAJOR_SIMPLE => {
                return Err(self.error(DecodeErrorKind::Syntax, at, "unexpected break"));
            }
            _ => {
                return Err(self.error(
                    DecodeErrorKind::Syntax,
                    at,
                    format!("reserved additional information {info}"),
                ));
            }
        };
        Ok((major, info, arg))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Steps over any tags before the next item.
    #[inline]
    fn skip_tags(&mut self) -> Result<(), DecodeError> {
        while self.peek()? >> 5 == MAJOR_TAG {
            self.head()?;
        }
        Ok(())
    }

    fn type_error(&self, at: usize, wanted: &'static str, major: u8) -> DecodeError {
        let found = match major {
            MAJOR_UNSIGNED | MAJOR_NEGATIVE => "an integer",
            MAJOR_BYTES => "a byte string",
            MAJOR_TEXT => "a text string",
            MAJOR_ARRAY => "an array",
            MAJOR_MAP => "a map",
            MAJOR_TAG => "a tag",
            _ => "a simple value or float",
        };
        self.error(
            DecodeErrorKind::TypeMismatch,
            at,
            format!("expected {wanted}, found {found}"),
        )
    }

    #[inline]
    fn length(&self, arg: u64, at: usize) -> Result<usize, DecodeError> {
        usize::try_from(arg)
            .ok()
            .filter(|&len| len <= self.buf.len() - self.pos)
            .ok_or_else(|| {
                self.error(
                    DecodeErrorKind::UnexpectedEof,
                    at,
                    format!("length {arg} exceeds the input"),
                )
            })
    }

    /// Reads a string of major type `major` (2 or 3): its range in the body when definite, the
    /// concatenated chunks when indefinite.
    #[inline]
    fn read_string_of(&mut self, major: u8, arg: Arg, at: usize) -> Result<Text, DecodeError> {
        match arg {
            Arg::Value(len) => {
                let len = self.length(len, at)?;
                let start = self.pos;
                self.pos += len;
                Ok(Text::Range(start, self.pos))
            }
            Arg::Indefinite => {
                let mut joined = Vec::new();
                loop {
                    if self.peek()? == BREAK {
                        self.pos += 1;
                        return Ok(Text::Joined(joined));
                    }
                    let chunk_at = self.pos;
                    let (chunk_major, _, chunk_arg) = self.head()?;
                    let Arg::Value(len) = chunk_arg else {
                        return Err(self.error(
                            DecodeErrorKind::Syntax,
                            chunk_at,
                            "nested indefinite string",
                        ));
                    };
                    if chunk_major != major {
                        return Err(self.error(
                            DecodeErrorKind::Syntax,
                            chunk_at,
                            "string chunk of another type",
                        ));
                    }
                    let len = self.length(len, chunk_at)?;
                    joined.extend_from_slice(self.take(len)?);
                }
            }
        }
    }

    fn bytes_of<'t>(&'t self, text: &'t Text) -> &'t [u8] {
        match text {
            Text::Range(start, end) => &self.buf[*start..*end],
            Text::Joined(joined) => joined,
        }
    }

    #[inline]
    fn text(&mut self) -> Result<(Text, usize), DecodeError> {
        let at = self.pos;
        // Fast path: a definite text string shorter than 256 bytes, as keys and most values are.
        if let Some(&initial) = self.buf.get(at) {
            let short = match initial {
                0x60..=0x77 => Some((1, usize::from(initial & 0x1F))),
                0x78 => self.buf.get(at + 1).map(|&len| (2, usize::from(len))),
                _ => None,
            };
            if let Some((head_len, len)) = short {
                let start = at + head_len;
                if start + len <= self.buf.len() {
                    self.pos = start + len;
                    return Ok((Text::Range(start, self.pos), at));
                }
            }
        }
        self.skip_tags()?;
        let at = self.pos;
        let (major, _, arg) = self.head()?;
        if major != MAJOR_TEXT {
            return Err(self.type_error(at, "a text string", major));
        }
        Ok((self.read_string_of(MAJOR_TEXT, arg, at)?, at))
    }

    fn open(&mut self, count: Option<u64>) -> Result<(), DecodeError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.error(
                DecodeErrorKind::TooDeep,
                self.pos,
                format!("more than {MAX_DEPTH} levels"),
            ));
        }
        self.stack.push(count);
        Ok(())
    }

    /// Advances the innermost container to its next item; false at its end.
    #[inline]
    fn next_item(&mut self) -> Result<bool, DecodeError> {
        match self.stack.last_mut() {
            Some(Some(0)) => {
                self.stack.pop();
                Ok(false)
            }
            Some(Some(left)) => {
                *left -= 1;
                Ok(true)
            }
            Some(None) => {
                if self.peek()? == BREAK {
                    self.pos += 1;
                    self.stack.pop();
                    Ok(false)
                } else {
                    Ok(true)
                }
            }
            None => Err(self.error(DecodeErrorKind::Syntax, self.pos, "no open container")),
        }
    }

    #[inline]
    fn container(&mut self, want: u8, wanted: &'static str) -> Result<(), DecodeError> {
        self.skip_tags()?;
        let at = self.pos;
        let (major, _, arg) = self.head()?;
        if major != want {
            return Err(self.type_error(at, wanted, major));
        }
        self.open(match arg {
            Arg::Value(n) => Some(n),
            Arg::Indefinite => None,
        })
    }

    /// A number: an integer, or a float (half, single or double).
    #[inline]
    fn number(&mut self) -> Result<(Number, usize), DecodeError> {
        self.skip_tags()?;
        let at = self.pos;
        let (major, info, arg) = self.head()?;
        let number = match (major, arg) {
            (MAJOR_UNSIGNED, Arg::Value(v)) => Number::Int(i128::from(v)),
            (MAJOR_NEGATIVE, Arg::Value(v)) => Number::Int(-1 - i128::from(v)),
            (MAJOR_SIMPLE, Arg::Value(bits)) if (25..=27).contains(&info) => {
                Number::Float(match info {
                    25 => f16_to_f64(u16::try_from(bits).unwrap_or(0)),
                    26 => f64::from(f32::from_bits(u32::try_from(bits).unwrap_or(0))),
                    _ => f64::from_bits(bits),
                })
            }
            _ => return Err(self.type_error(at, "a number", major)),
        };
        Ok((number, at))
    }

    fn skip_item(&mut self, depth: usize) -> Result<(), DecodeError> {
        if depth > MAX_DEPTH {
            return Err(self.error(
                DecodeErrorKind::TooDeep,
                self.pos,
                format!("more than {MAX_DEPTH} levels"),
            ));
        }
        let at = self.pos;
        let (major, _, arg) = self.head()?;
        match (major, arg) {
            (MAJOR_UNSIGNED | MAJOR_NEGATIVE | MAJOR_SIMPLE, Arg::Value(_)) => Ok(()),
            (MAJOR_BYTES | MAJOR_TEXT, _) => self.read_string_of(major, arg, at).map(drop),
            (MAJOR_TAG, _) => self.skip_item(depth + 1),
            (MAJOR_ARRAY | MAJOR_MAP, Arg::Value(n)) => {
                let per_item = if major == MAJOR_MAP { 2 } else { 1 };
                for _ in 0..n {
                    for _ in 0..per_item {
                        self.skip_item(depth + 1)?;
                    }
                }
                Ok(())
            }
            (MAJOR_ARRAY | MAJOR_MAP, Arg::Indefinite) => loop {
                if self.peek()? == BREAK {
                    self.pos += 1;
                    return Ok(());
                }
                self.skip_item(depth + 1)?;
                if major == MAJOR_MAP {
                    self.skip_item(depth + 1)?;
                }
            },
            _ => Err(self.error(DecodeErrorKind::Syntax, at, "indefinite length on a number")),
        }
    }
}

impl CborReader {
    /// A byte of input, advancing.
    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// A definite text or byte string (by `major`) shorter than 2^32, as a range.
    fn short_string(&mut self, major: u8) -> Option<(usize, usize)> {
        let initial = self.byte()?;
        if initial >> 5 != major {
            return None;
        }
        let len = match initial & 0x1F {
            n @ 0..=23 => usize::from(n),
            24 => usize::from(self.byte()?),
            25 => usize::from(u16::from_be_bytes(self.array().ok()?)),
            26 => usize::try_from(u32::from_be_bytes(self.array().ok()?)).ok()?,
            _ => return None,
        };
        let start = self.pos;
        let end = start
            .checked_add(len)
            .filter(|&end| end <= self.buf.len())?;
        self.pos = end;
        Some((start, end))
    }

    /// A text string as a slice of the buffer: no copy.
    fn shared_text(&mut self) -> Option<ByteString> {
        let (start, end) = self.short_string(MAJOR_TEXT)?;
        ByteString::try_from(self.buf.slice(start..end)).ok()
    }

    fn short_text(&mut self) -> Option<&str> {
        let (start, end) = self.short_string(MAJOR_TEXT)?;
        std::str::from_utf8(&self.buf[start..end]).ok()
    }

    /// The common encoding of a `Record`: a definite map of text keys, text strings, a byte
    /// string and an unsigned (optionally tag-1) timestamp. See [`Reader::read_record_fast`].
    fn record_fast(&mut self, out: &mut RecordFields) -> Option<()> {
        let initial = self.byte()?;
        if !(0xA0..=0xB7).contains(&initial) {
            return None;
        }
        let (mut sequence_number, mut data, mut partition_key) = (false, false, false);
        out.approximate_arrival_timestamp = None;
        out.encryption_type = None;
        for _ in 0..initial & 0x1F {
            let (start, end) = self.short_string(MAJOR_TEXT)?;
            match &self.buf[start..end] {
                b"SequenceNumber" if !sequence_number => {
                    let text = self.shared_text()?;
                    crate::types::check_sequence_number(&text).ok()?;
                    out.sequence_number = text;
                    sequence_number = true;
                }
                b"PartitionKey" if !partition_key => {
                    let text = self.shared_text()?;
                    crate::types::check_partition_key(&text).ok()?;
                    out.partition_key = text;
                    partition_key = true;
                }
                b"Data" if !data => {
                    let (start, end) = self.short_string(MAJOR_BYTES)?;
                    out.data = self.buf.slice(start..end);
                    data = true;
                }
                b"ApproximateArrivalTimestamp" if out.approximate_arrival_timestamp.is_none() => {
                    let mut head = self.byte()?;
                    if head == TAG_EPOCH {
                        head = self.byte()?;
                    }
                    let millis = match head {
                        n @ 0..=23 => u64::from(n),
                        24 => u64::from(self.byte()?),
                        25 => u64::from(u16::from_be_bytes(self.array().ok()?)),
                        26 => u64::from(u32::from_be_bytes(self.array().ok()?)),
                        27 => u64::from_be_bytes(self.array().ok()?),
                        _ => return None,
                    };
                    out.approximate_arrival_timestamp =
                        Some(Timestamp::from_millis(i64::try_from(millis).ok()?));
                }
                b"EncryptionType" if out.encryption_type.is_none() => {
                    let text = self.short_text()?;
                    out.encryption_type = Some(crate::types::EncryptionType::from(text));
                }
                _ => return None,
            }
        }
        // Duplicates and anything else unusual went to the general path above.
        (sequence_number && data && partition_key).then_some(())
    }
}

enum Number {
    Int(i128),
    Float(f64),
}

/// IEEE 754 half precision to double.
fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1F);
    let fraction = f64::from(bits & 0x3FF);
    sign * match exponent {
        0 => fraction * 2f64.powi(-24),
        31 if fraction == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + fraction / 1024.0) * 2f64.powi(exponent - 15),
    }
}

/// A string item: where it lies in the body, or its chunks joined.
enum Text {
    Range(usize, usize),
    Joined(Vec<u8>),
}

fn utf8(bytes: &[u8], at: usize) -> Result<String, DecodeError> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_owned()),
        Err(e) => Err(DecodeError::new(
            DecodeErrorKind::InvalidUtf8,
            at + e.valid_up_to(),
            "",
        )),
    }
}

impl Reader for CborReader {
    #[inline]
    fn offset(&self) -> usize {
        self.pos
    }

    #[inline]
    fn begin_map(&mut self) -> Result<(), DecodeError> {
        self.container(MAJOR_MAP, "a map")
    }

    #[inline]
    fn next_key<T: Copy>(
        &mut self,
        keys: &[(&'static str, T)],
    ) -> Result<Option<Option<T>>, DecodeError> {
        if !self.next_item()? {
            return Ok(None);
        }
        let (key, _) = self.text()?;
        let key = self.bytes_of(&key);
        Ok(Some(
            keys.iter()
                .find(|(name, _)| name.as_bytes() == key)
                .map(|&(_, t)| t),
        ))
    }

    fn next_key_owned(&mut self) -> Result<Option<String>, DecodeError> {
        if !self.next_item()? {
            return Ok(None);
        }
        let (key, at) = self.text()?;
        utf8(self.bytes_of(&key), at).map(Some)
    }

    #[inline]
    fn begin_array(&mut self) -> Result<(), DecodeError> {
        self.container(MAJOR_ARRAY, "an array")
    }

    #[inline]
    fn next_element(&mut self) -> Result<bool, DecodeError> {
        self.next_item()
    }

    fn len_hint(&self) -> usize {
        // The count is the input's word, not a fact. Every element takes at least one byte, so
        // no more than the remaining bytes, and never more than the cap.
        match self.stack.last() {
            Some(Some(n)) => usize::try_from(*n)
                .unwrap_or(usize::MAX)
                .min(self.buf.len() - self.pos)
                .min(MAX_LEN_HINT),
            _ => 0,
        }
    }

    #[inline]
    fn take_null(&mut self) -> Result<bool, DecodeError> {
        self.skip_tags()?;
        if matches!(self.peek()?, NULL | UNDEFINED) {
            self.pos += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn read_string(&mut self) -> Result<String, DecodeError> {
        let (text, at) = self.text()?;
        utf8(self.bytes_of(&text), at)
    }

    #[inline]
    fn read_blob(&mut self) -> Result<Bytes, DecodeError> {
        self.skip_tags()?;
        let at = self.pos;
        let (major, _, arg) = self.head()?;
        match major {
            MAJOR_BYTES => Ok(match self.read_string_of(MAJOR_BYTES, arg, at)? {
                Text::Range(start, end) => self.buf.slice(start..end),
                Text::Joined(joined) => Bytes::from(joined),
            }),
            // kinesis-mock and kinesalite send blobs as base64 text.
            MAJOR_TEXT => {
                let text = self.read_string_of(MAJOR_TEXT, arg, at)?;
                let upcoming = (self.buf.len() - self.pos) / 4 * 3;
                let text = match &text {
                    Text::Range(start, end) => &self.buf[*start..*end],
                    Text::Joined(joined) => joined,
                };
                self.arena
                    .decode_base64(text, upcoming)
                    .map_err(|e| e.shift_offset(at))
            }
            _ => Err(self.type_error(at, "a byte string", major)),
        }
    }

    fn read_bool(&mut self) -> Result<bool, DecodeError> {
        self.skip_tags()?;
        match self.peek()? {
            TRUE => {
                self.pos += 1;
                Ok(true)
            }
            FALSE => {
                self.pos += 1;
                Ok(false)
            }
            other => Err(self.type_error(self.pos, "a boolean", other >> 5)),
        }
    }

    fn read_i64(&mut self) -> Result<i64, DecodeError> {
        let (number, at) = self.number()?;
        let value = match number {
            Number::Int(v) => i64::try_from(v).ok(),
            #[allow(clippy::cast_possible_truncation)]
            Number::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Some(f as i64),
            Number::Float(_) => None,
        };
        value.ok_or_else(|| {
            self.error(
                DecodeErrorKind::InvalidNumber,
                at,
                "expected an integer within the 64-bit range",
            )
        })
    }

    #[inline]
    fn read_timestamp(&mut self) -> Result<Timestamp, DecodeError> {
        let (number, at) = self.number()?;
        let millis = match number {
            Number::Int(v) => i64::try_from(v).ok(),
            Number::Float(f) => float_timestamp_millis(f),
        };
        millis
            .map(Timestamp::from_millis)
            .ok_or_else(|| self.error(DecodeErrorKind::InvalidNumber, at, "timestamp out of range"))
    }

    fn skip_value(&mut self) -> Result<(), DecodeError> {
        self.skip_item(self.stack.len())
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

    fn finish(&mut self) -> Result<(), DecodeError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(self.error(DecodeErrorKind::TrailingData, self.pos, ""))
        }
    }
}

pub(crate) struct CborWriter {
    out: Vec<u8>,
}

impl CborWriter {
    pub(crate) fn new() -> Self {
        Self {
            out: Vec::with_capacity(256),
        }
    }

    pub(crate) fn into_inner(self) -> Vec<u8> {
        self.out
    }

    fn head(&mut self, major: u8, arg: u64) {
        let major = major << 5;
        if arg < 24 {
            self.out.push(major | u8::try_from(arg).unwrap_or(0));
        } else if let Ok(v) = u8::try_from(arg) {
            self.out.push(major | 24);
            self.out.push(v);
        } else if let Ok(v) = u16::try_from(arg) {
            self.out.push(major | 25);
            self.out.put_u16(v);
        } else if let Ok(v) = u32::try_from(arg) {
            self.out.push(major | 26);
            self.out.put_u32(v);
        } else {
            self.out.push(major | 27);
            self.out.put_u64(arg);
        }
    }

    fn len(&mut self, major: u8, len: usize) {
        self.head(major, len as u64);
    }
}

impl Writer for CborWriter {
    fn begin_map(&mut self, len: usize) {
        self.len(MAJOR_MAP, len);
    }

    fn key(&mut self, key: &str) {
        self.string(key);
    }

    fn end_map(&mut self) {}

    fn begin_array(&mut self, len: usize) {
        self.len(MAJOR_ARRAY, len);
    }

    fn element(&mut self) {}

    fn end_array(&mut self) {}

    fn string(&mut self, value: &str) {
        self.len(MAJOR_TEXT, value.len());
        self.out.extend_from_slice(value.as_bytes());
    }

    fn blob(&mut self, value: &[u8]) {
        self.len(MAJOR_BYTES, value.len());
        self.out.extend_from_slice(value);
    }

    fn bool(&mut self, value: bool) {
        self.out.push(if value { TRUE } else { FALSE });
    }

    fn int(&mut self, value: i64) {
        match u64::try_from(value) {
            Ok(v) => self.head(MAJOR_UNSIGNED, v),
            // -1 - value, which is the bitwise complement, is non-negative here.
            Err(_) => self.head(MAJOR_NEGATIVE, u64::try_from(!value).unwrap_or(0)),
        }
    }

    fn timestamp(&mut self, value: Timestamp) {
        self.out.push(TAG_EPOCH);
        self.int(value.as_millis());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GetRecordsOutput;
    use crate::{Protocol, Shape};

    /// `{"Records": [...]}` whose array head declares `count` elements, followed by `filler`
    /// empty maps.
    fn records_body(count: u32, filler: usize) -> Bytes {
        let mut body: Vec<u8> = vec![0xA1, 0x67];
        body.extend_from_slice(b"Records");
        body.push(0x9A);
        body.extend_from_slice(&count.to_be_bytes());
        body.resize(body.len() + filler, 0xA0);
        Bytes::from(body)
    }

    #[test]
    fn len_hint_is_capped_whatever_the_declared_count() {
        // 2^31 elements declared, a megabyte of one-byte items present.
        let mut body: Vec<u8> = vec![0x9A, 0x80, 0x00, 0x00, 0x00];
        body.resize(body.len() + (1 << 20), 0xA0);
        let mut r = CborReader::new(Bytes::from(body));
        r.begin_array().unwrap();
        assert_eq!(r.len_hint(), MAX_LEN_HINT);

        // Few bytes left: no more elements than they could hold.
        let mut r = CborReader::new(Bytes::from_static(&[
            0x9A, 0xFF, 0xFF, 0xFF, 0xFF, 0xA0, 0xA0,
        ]));
        r.begin_array().unwrap();
        assert_eq!(r.len_hint(), 2);

        // An honest count under the cap is used as it is.
        let mut r = CborReader::new(Bytes::from_static(&[0x83, 0x01, 0x02, 0x03]));
        r.begin_array().unwrap();
        assert_eq!(r.len_hint(), 3);

        // Indefinite arrays give no hint.
        let mut r = CborReader::new(Bytes::from_static(&[0x9F, 0x01, 0xFF]));
        r.begin_array().unwrap();
        assert_eq!(r.len_hint(), 0);
    }

    #[test]
    fn huge_declared_record_count_is_an_error_not_an_allocation() {
        for (count, filler) in [(u32::MAX, 3), (1 << 31, 3), (u32::MAX, 1 << 20)] {
            let body = records_body(count, filler);
            let err = GetRecordsOutput::decode_body(body.clone(), Protocol::Cbor).unwrap_err();
            assert_eq!(
                err.kind(),
                DecodeErrorKind::MissingField,
                "{count} {filler}"
            );
            assert_eq!(err.field(), "Records[0].SequenceNumber");

            let mut visited = 0;
            let err = GetRecordsOutput::visit_records(body, Protocol::Cbor, |_| visited += 1)
                .unwrap_err();
            assert_eq!(err.kind(), DecodeErrorKind::MissingField);
            assert_eq!(visited, 0);
        }
    }

    #[test]
    fn half_floats_decode() {
        assert_eq!(f16_to_f64(0x3C00), 1.0);
        assert_eq!(f16_to_f64(0xC000), -2.0);
        assert_eq!(f16_to_f64(0x0001), 2f64.powi(-24));
        assert_eq!(f16_to_f64(0x7C00), f64::INFINITY);
        assert!(f16_to_f64(0x7E00).is_nan());
    }

    #[test]
    fn timestamp_is_tag_one_and_millis() {
        // 1718000000123 ms is c1 1b 0000019000c79c7b.
        let mut w = CborWriter::new();
        w.timestamp(Timestamp::from_millis(1_718_000_000_123));
        assert_eq!(hex::encode(w.into_inner()), "c11b0000019000c79c7b");
    }

    #[test]
    fn integers_are_minimal() {
        for (value, expected) in [
            (0, "00"),
            (23, "17"),
            (24, "1818"),
            (256, "190100"),
            (65_536, "1a00010000"),
            (-1, "20"),
            (-500, "3901f3"),
            (i64::MIN, "3b7fffffffffffffff"),
        ] {
            let mut w = CborWriter::new();
            w.int(value);
            assert_eq!(hex::encode(w.into_inner()), expected, "{value}");
        }
    }
}
