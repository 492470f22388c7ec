//! The two body encodings, behind one pull-reader and one writer interface.
//!
//! Every shape is written once against [`Reader`] and [`Writer`] (by the `shape!` macro in
//! `model`), and the JSON 1.1 and CBOR 1.1 implementations below supply the encoding rules:
//! blobs are base64 text in JSON and byte strings in CBOR, timestamps are fractional epoch
//! seconds in JSON and tag-1 epoch milliseconds in CBOR.

pub(crate) mod cbor;
pub(crate) mod json;

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;

use crate::error::{DecodeError, DecodeErrorKind};
use crate::types::Timestamp;

/// Documents nested deeper than this are refused (`TooDeep`), so hostile input cannot exhaust
/// the stack.
pub(crate) const MAX_DEPTH: usize = 64;

/// The most elements [`Reader::len_hint`] reports. A count declared by the input is not trusted
/// for more: longer arrays grow as their elements are read.
pub(crate) const MAX_LEN_HINT: usize = 4096;

/// The body encoding of requests and responses.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// `application/x-amz-json-1.1`: base64 blobs, epoch-second timestamps.
    #[default]
    Json,
    /// `application/x-amz-cbor-1.1`, as the AWS Java SDK sends it: byte-string blobs, tag-1
    /// epoch-millisecond timestamps.
    Cbor,
}

impl Protocol {
    /// The `Content-Type` of requests in this protocol.
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/x-amz-json-1.1",
            Self::Cbor => "application/x-amz-cbor-1.1",
        }
    }

    /// The protocol a `Content-Type` names, ignoring parameters and case. `application/json`
    /// counts as JSON (event payloads and emulators use it); `application/cbor` as CBOR.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/x-amz-json-1.1")
            || essence.eq_ignore_ascii_case("application/x-amz-json-1.0")
            || essence.eq_ignore_ascii_case("application/json")
        {
            Some(Self::Json)
        } else if essence.eq_ignore_ascii_case("application/x-amz-cbor-1.1")
            || essence.eq_ignore_ascii_case("application/cbor")
        {
            Some(Self::Cbor)
        } else {
            None
        }
    }

    /// The protocol of `body`, from its `Content-Type` when the first byte agrees, else from the
    /// first byte alone (`{` is JSON, `0xA0..=0xBF` a CBOR map).
    ///
    /// Kinesis has been seen answering CBOR requests with JSON error bodies under a CBOR
    /// content type, so the first byte always gets the last word. Returns `None` for a body that
    /// is neither (HTML or XML, say). An empty body gives the content type's protocol, or `fallback`.
    pub fn detect(content_type: Option<&str>, body: &[u8], fallback: Self) -> Option<Self> {
        let declared = content_type.and_then(Self::from_content_type);
        let first = body.iter().copied().find(|b| !b.is_ascii_whitespace());
        let Some(first) = first else {
            return Some(declared.unwrap_or(fallback));
        };
        let sniffed = match first {
            b'{' => Some(Self::Json),
            0xA0..=0xBF => Some(Self::Cbor),
            _ => None,
        };
        match (declared, sniffed) {
            (_, Some(sniffed)) => Some(sniffed),
            // A CBOR document need not start with a map byte when the CBOR is tagged.
            (Some(Self::Cbor), None) if first >> 5 == 6 => Some(Self::Cbor),
            _ => None,
        }
    }
}

/// A pull reader over one JSON or CBOR document.
///
/// Maps are read with [`Reader::begin_map`] then [`Reader::next_key`] until it returns `None`;
/// arrays with [`Reader::begin_array`] then [`Reader::next_element`] until `false`. Every value a
/// caller does not want must be passed over with [`Reader::skip_value`].
pub(crate) trait Reader {
    /// Byte offset of the next value, for error reports.
    fn offset(&self) -> usize;
    fn begin_map(&mut self) -> Result<(), DecodeError>;
    /// The next key looked up in `keys`: `Some(Some(t))` for a known key, `Some(None)` for an
    /// unknown one (the caller skips its value), `None` at the end of the map.
    fn next_key<T: Copy>(
        &mut self,
        keys: &[(&'static str, T)],
    ) -> Result<Option<Option<T>>, DecodeError>;
    /// The next key of a map with free-form keys (tags).
    fn next_key_owned(&mut self) -> Result<Option<String>, DecodeError>;
    fn begin_array(&mut self) -> Result<(), DecodeError>;
    fn next_element(&mut self) -> Result<bool, DecodeError>;
    /// After `begin_array`, how many elements to reserve room for (0 when unknown): never more
    /// than [`MAX_LEN_HINT`], nor than the elements the remaining input could hold.
    fn len_hint(&self) -> usize {
        0
    }
    /// Consumes a `null` (or CBOR `undefined`) and returns true, or returns false.
    fn take_null(&mut self) -> Result<bool, DecodeError>;
    fn read_string(&mut self) -> Result<String, DecodeError>;
    fn read_blob(&mut self) -> Result<Bytes, DecodeError>;
    fn read_bool(&mut self) -> Result<bool, DecodeError>;
    fn read_i64(&mut self) -> Result<i64, DecodeError>;
    fn read_timestamp(&mut self) -> Result<Timestamp, DecodeError>;
    fn skip_value(&mut self) -> Result<(), DecodeError>;
    /// Checks that nothing but whitespace follows the document.
    fn finish(&mut self) -> Result<(), DecodeError>;
    /// Reads a `Record` map in its common encoding, without the general machinery; `false`
    /// (with nothing consumed) when the encoding is not the common one or anything is wrong, and
    /// the general path takes over.
    fn read_record_fast(&mut self, _out: &mut RecordFields) -> bool {
        false
    }
    /// Records are lent one at a time from here on: a record's blobs are dropped before the
    /// next is read, so their buffer can be used again (see [`BlobArena::lend`]).
    fn lend_records(&mut self);
}

/// The members of a `Record`, reused from record to record by the record visitors.
#[derive(Default)]
pub(crate) struct RecordFields {
    /// Checked; shares the response's buffer (CBOR) or the blob arena's (JSON).
    pub(crate) sequence_number: ByteString,
    /// Checked; shared as the sequence number is.
    pub(crate) partition_key: ByteString,
    pub(crate) data: Bytes,
    pub(crate) approximate_arrival_timestamp: Option<Timestamp>,
    pub(crate) encryption_type: Option<crate::types::EncryptionType>,
}

impl RecordFields {
    /// Drops the buffers of the record before, so that a lending reader can use them again.
    pub(crate) fn release(&mut self) {
        self.sequence_number = ByteString::new();
        self.partition_key = ByteString::new();
        self.data = Bytes::new();
    }
}

/// A writer of one JSON or CBOR document. Callers write well-formed sequences.
pub(crate) trait Writer {
    fn begin_map(&mut self, len: usize);
    fn key(&mut self, key: &str);
    fn end_map(&mut self);
    fn begin_array(&mut self, len: usize);
    /// Called before each array element.
    fn element(&mut self);
    fn end_array(&mut self);
    fn string(&mut self, value: &str);
    fn blob(&mut self, value: &[u8]);
    fn bool(&mut self, value: bool);
    fn int(&mut self, value: i64);
    fn timestamp(&mut self, value: Timestamp);
}

/// A member value that both codecs can read and write.
pub(crate) trait Value: Sized {
    fn decode<R: Reader>(r: &mut R) -> Result<Self, DecodeError>;
    fn encode<W: Writer>(&self, w: &mut W);
}

impl Value for String {
    fn decode<R: Reader>(r: &mut R) -> Result<Self, DecodeError> {
        r.read_string()
    }
    fn encode<W: Writer>(&self, w: &mut W) {
        w.string(self);
    }
}

impl Value for Bytes {
    fn decode<R: Reader>(r: &mut R) -> Result<Self, DecodeError> {
        r.read_blob()
    }
    fn encode<W: Writer>(&self, w: &mut W) {
        w.blob(self);
    }
}

impl Value for bool {
    fn decode<R: Reader>(r: &mut R) -> Result<Self, DecodeError> {
        r.read_bool()
    }
    fn encode<W: Writer>(&self, w: &mut W) {
        w.bool(*self);
    }
}

impl Value for i64 {
    fn decode<R: Reader>(r: &mut R) -> Result<Self, DecodeError> {
        r.read_i64()
    }
    fn encode<W: Writer>(&self, w: &mut W) {
        w.int(*self);
    }
}

impl Value for i32 {
    fn decode<R: Reader>(r: &mut R) -> Result<Self, DecodeError> {
        let offset = r.offset();
        let wide = r.read_i64()?;
        Self::try_from(wide).map_err(|_| {
            DecodeError::new(
                DecodeErrorKind::InvalidNumber,
                offset,
                format!("{wide} does not fit a 32-bit integer"),
            )
        })
    }
    fn encode<W: Writer>(&self, w: &mut W) {
        w.int(i64::from(*self));
    }
}

impl Value for Timestamp {
    fn decode<R: Reader>(r: &mut R) -> Result<Self, DecodeError> {
        r.read_timestamp()
    }
    fn encode<W: Writer>(&self, w: &mut W) {
        w.timestamp(*self);
    }
}

impl<T: Value> Value for Vec<T> {
    fn decode<R: Reader>(r: &mut R) -> Result<Self, DecodeError> {
        r.begin_array()?;
        // Capped here too: the hint comes from a count the input declares.
        let mut out = Self::with_capacity(r.len_hint().min(MAX_LEN_HINT));
        while r.next_element()? {
            let item = T::decode(r).map_err(|e| e.at_index(out.len()))?;
            out.push(item);
        }
        Ok(out)
    }
    fn encode<W: Writer>(&self, w: &mut W) {
        w.begin_array(self.len());
        for item in self {
            w.element();
            item.encode(w);
        }
        w.end_array();
    }
}

impl Value for BTreeMap<String, String> {
    fn decode<R: Reader>(r: &mut R) -> Result<Self, DecodeError> {
        r.begin_map()?;
        let mut out = Self::new();
        while let Some(key) = r.next_key_owned()? {
            let value = r.read_string()?;
            out.insert(key, value);
        }
        Ok(out)
    }
    fn encode<W: Writer>(&self, w: &mut W) {
        w.begin_map(self.len());
        for (k, v) in self {
            w.key(k);
            w.string(v);
        }
        w.end_map();
    }
}

/// Decoded blobs, carved out of shared allocations.
///
/// Each base64 blob is decoded into the free tail of one buffer and split off as [`Bytes`], so a
/// response of a thousand records costs one allocation for their data instead of a thousand.
/// The records share that buffer: it is freed when the last of them is dropped.
///
/// When records are only lent ([`lend`](Self::lend)), one small buffer serves them all: once
/// a record's blobs are dropped, the buffer is taken back rather than a new one allocated
/// for the rest of the response, which kept a response-sized allocation per page.
#[derive(Default)]
pub(crate) struct BlobArena {
    free: BytesMut,
    lending: bool,
}

/// The buffer a lending arena starts with, and grows from when a record needs more.
const LENT_BUFFER: usize = 64 * 1024;

impl BlobArena {
    /// Blobs are lent one record at a time from here on, each dropped before the next record
    /// is read.
    pub(crate) fn lend(&mut self) {
        self.lending = true;
    }

    /// Room for `len` more bytes at the free tail; a new buffer is sized for `upcoming`.
    fn make_room(&mut self, len: usize, upcoming: usize) {
        if self.free.capacity() >= len {
            return;
        }
        if self.lending {
            // `reserve` takes the buffer back when no blob split off it is held any more, and
            // allocates only when it is still held or too small.
            self.free.clear();
            self.free.reserve(len.max(LENT_BUFFER));
        } else {
            self.free = BytesMut::with_capacity(len.max(upcoming));
        }
    }

    /// Decodes standard base64, padded or not. `upcoming` bounds the bytes of blobs still to
    /// come in the document and sizes a new buffer. Error offsets are relative to `text`.
    pub(crate) fn decode_base64(
        &mut self,
        text: &[u8],
        upcoming: usize,
    ) -> Result<Bytes, DecodeError> {
        let engine = if text.len().is_multiple_of(4) {
            base64_simd::STANDARD
        } else {
            base64_simd::STANDARD_NO_PAD
        };
        let invalid = || {
            let at = text
                .iter()
                .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')))
                .unwrap_or(0);
            DecodeError::new(DecodeErrorKind::InvalidBase64, at, "")
        };
        let len = engine.decoded_length(text).map_err(|_| invalid())?;
        self.make_room(len, upcoming);
        self.free.resize(len, 0);
        if engine
            .decode(text, base64_simd::Out::from_slice(&mut self.free[..]))
            .is_err()
        {
            // The free tail stays empty, so the next text or blob starts where it should.
            self.free.clear();
            return Err(invalid());
        }
        Ok(self.free.split_to(len).freeze())
    }

    /// A copy of `text` in the arena (sized for `upcoming` bytes when a new buffer is needed),
    /// shared like the blobs: no allocation per string.
    pub(crate) fn copy_text(&mut self, text: &str, upcoming: usize) -> Option<ByteString> {
        self.make_room(text.len(), upcoming);
        self.free.extend_from_slice(text.as_bytes());
        ByteString::try_from(self.free.split_to(text.len()).freeze()).ok()
    }
}

/// Decodes a whole document of type `T`. An empty body (unit responses) reads as an empty map.
pub(crate) fn decode_document<T: Value>(body: Bytes, protocol: Protocol) -> Result<T, DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return match protocol {
            Protocol::Json => decode_with(&mut json::JsonReader::new(b"{}")),
            Protocol::Cbor => decode_with(&mut cbor::CborReader::new(Bytes::from_static(&[0xA0]))),
        };
    }
    match protocol {
        Protocol::Json => decode_with(&mut json::JsonReader::new(&body)),
        Protocol::Cbor => decode_with(&mut cbor::CborReader::new(body)),
    }
}

fn decode_with<T: Value, R: Reader>(r: &mut R) -> Result<T, DecodeError> {
    let value = T::decode(r)?;
    r.finish()?;
    Ok(value)
}

/// Encodes a whole document.
pub(crate) fn encode_document<T: Value>(value: &T, protocol: Protocol) -> Vec<u8> {
    match protocol {
        Protocol::Json => {
            let mut w = json::JsonWriter::new();
            value.encode(&mut w);
            w.into_inner()
        }
        Protocol::Cbor => {
            let mut w = cbor::CborWriter::new();
            value.encode(&mut w);
            w.into_inner()
        }
    }
}

/// Encodes a document written by `write`.
pub(crate) fn encode_with(protocol: Protocol, write: impl FnOnce(&mut dyn Writer)) -> Vec<u8> {
    match protocol {
        Protocol::Json => {
            let mut w = json::JsonWriter::new();
            write(&mut w);
            w.into_inner()
        }
        Protocol::Cbor => {
            let mut w = cbor::CborWriter::new();
            write(&mut w);
            w.into_inner()
        }
    }
}

/// Splits a decimal number's text into digits and a power-of-ten exponent, exactly.
///
/// Accepts the JSON number grammar (and the plain integers and decimals CBOR never needs).
/// Digits past the 38th significant one are dropped (truncation toward zero), which is far
/// below millisecond precision for any timestamp.
pub(crate) fn parse_decimal(text: &[u8]) -> Option<(bool, u128, i32)> {
    let mut i = 0;
    let negative = text.first() == Some(&b'-');
    if negative {
        i += 1;
    }
    let mut mantissa: u128 = 0;
    let mut exponent: i32 = 0;
    let mut digits = 0usize;
    let mut significant = 0usize;
    let mut any = false;
    let mut push = |d: u8, fractional: bool, mantissa: &mut u128, exponent: &mut i32| {
        if *mantissa == 0 && d == 0 {
            if fractional {
                *exponent -= 1;
            }
            return;
        }
        if significant < 38 {
            *mantissa = *mantissa * 10 + u128::from(d);
            significant += 1;
            if fractional {
                *exponent -= 1;
            }
        } else if !fractional {
            *exponent += 1;
        }
    };
    while let Some(&b) = text.get(i) {
        if !b.is_ascii_digit() {
            break;
        }
        push(b - b'0', false, &mut mantissa, &mut exponent);
        digits += 1;
        any = true;
        i += 1;
    }
    if digits > 1 && text.get(usize::from(negative)) == Some(&b'0') {
        return None; // leading zero
    }
    if text.get(i) == Some(&b'.') {
        i += 1;
        let mut frac = 0;
        while let Some(&b) = text.get(i) {
            if !b.is_ascii_digit() {
                break;
            }
            push(b - b'0', true, &mut mantissa, &mut exponent);
            frac += 1;
            i += 1;
        }
        if frac == 0 {
            return None;
        }
    }
    if !any {
        return None;
    }
    if matches!(text.get(i), Some(b'e' | b'E')) {
        i += 1;
        let mut exp_negative = false;
        if let Some(&sign @ (b'+' | b'-')) = text.get(i) {
            exp_negative = sign == b'-';
            i += 1;
        }
        let mut e: i32 = 0;
        let mut exp_digits = 0;
        while let Some(&b) = text.get(i) {
            if !b.is_ascii_digit() {
                break;
            }
            e = e.saturating_mul(10).saturating_add(i32::from(b - b'0'));
            exp_digits += 1;
            i += 1;
        }
        if exp_digits == 0 {
            return None;
        }
        exponent = exponent.saturating_add(if exp_negative { -e } else { e });
    }
    (i == text.len()).then_some((negative, mantissa, exponent))
}

/// `mantissa * 10^exponent`, truncated toward negative infinity to an integer, if it fits `i64`.
pub(crate) fn decimal_to_i64_floor(negative: bool, mantissa: u128, exponent: i32) -> Option<i64> {
    if mantissa == 0 {
        return Some(0);
    }
    let (magnitude, inexact) = if exponent >= 0 {
        let scale = 10u128.checked_pow(u32::try_from(exponent).ok()?)?;
        (mantissa.checked_mul(scale)?, false)
    } else {
        let down = u32::try_from(-i64::from(exponent)).ok()?;
        match 10u128.checked_pow(down) {
            Some(scale) => (mantissa / scale, !mantissa.is_multiple_of(scale)),
            None => (0, true),
        }
    };
    let magnitude = i128::try_from(magnitude).ok()?;
    let value = if negative {
        -magnitude - i128::from(inexact)
    } else {
        magnitude
    };
    i64::try_from(value).ok()
}

/// Milliseconds from a float timestamp whose unit is unknown: magnitudes below 1e11 are seconds
/// (1e11 s is the year 5138), larger ones milliseconds.
pub(crate) fn float_timestamp_millis(value: f64) -> Option<i64> {
    if !value.is_finite() {
        return None;
    }
    let millis = if value.abs() < 1e11 {
        value * 1000.0
    } else {
        value
    };
    let rounded = millis.round();
    // i64 spans ±9.2e18; anything outside is refused rather than saturated.
    if rounded.abs() < 9.0e18 {
        #[allow(clippy::cast_possible_truncation)]
        Some(rounded as i64)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found in review: a blob that failed to decode left its bytes in the free tail, where
    /// the next text was appended after them and split off with them.
    #[test]
    fn a_failed_blob_leaves_nothing_behind() {
        for lending in [false, true] {
            let mut arena = BlobArena::default();
            if lending {
                arena.lend();
            }
            assert!(arena.decode_base64(b"not base64!", 64).is_err());
            let text = arena.copy_text(
                "49590338271490256608559692538361571095921575989136588898",
                64,
            );
            assert_eq!(
                text.as_deref(),
                Some("49590338271490256608559692538361571095921575989136588898")
            );
            assert_eq!(&arena.decode_base64(b"aGk=", 64).unwrap()[..], b"hi");
        }
    }

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(
            parse_decimal(b"1459799926.480"),
            Some((false, 1_459_799_926_480, -3))
        );
        assert_eq!(
            parse_decimal(b"1.548118964772E9"),
            Some((false, 1_548_118_964_772, -3))
        );
        assert_eq!(parse_decimal(b"-0.5"), Some((true, 5, -1)));
        assert_eq!(parse_decimal(b"0"), Some((false, 0, 0)));
        for bad in [
            &b""[..],
            b"-",
            b"01",
            b"1.",
            b".5",
            b"1e",
            b"1e+",
            b"1x",
            b"+1",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn seconds_become_millis_without_float_error() {
        let millis = |t: &[u8]| {
            let (n, m, e) = parse_decimal(t).unwrap();
            decimal_to_i64_floor(n, m, e + 3)
        };
        assert_eq!(millis(b"1459799926.480"), Some(1_459_799_926_480));
        assert_eq!(millis(b"1.548118964772E9"), Some(1_548_118_964_772));
        assert_eq!(millis(b"1718000000.1239"), Some(1_718_000_000_123));
        assert_eq!(millis(b"-1.5"), Some(-1500));
        assert_eq!(millis(b"-0.0001"), Some(-1));
        assert_eq!(millis(b"1e30"), None);
    }

    #[test]
    fn protocol_detection_trusts_the_first_byte() {
        let cbor = Some("application/x-amz-cbor-1.1");
        assert_eq!(
            Protocol::detect(cbor, b"{\"__type\":\"x\"}", Protocol::Cbor),
            Some(Protocol::Json)
        );
        assert_eq!(
            Protocol::detect(cbor, &[0xBF, 0xFF], Protocol::Cbor),
            Some(Protocol::Cbor)
        );
        assert_eq!(
            Protocol::detect(None, &[0xA1], Protocol::Json),
            Some(Protocol::Cbor)
        );
        assert_eq!(Protocol::detect(cbor, b"<html>", Protocol::Cbor), None);
        assert_eq!(
            Protocol::detect(cbor, b"", Protocol::Json),
            Some(Protocol::Cbor)
        );
        assert_eq!(
            Protocol::detect(None, b"  ", Protocol::Json),
            Some(Protocol::Json)
        );
        assert_eq!(
            Protocol::from_content_type("Application/JSON; charset=utf-8"),
            Some(Protocol::Json)
        );
    }
}
