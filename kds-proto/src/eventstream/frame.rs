//! Event-stream frames: the incremental decoder and the encoder.
//!
//! ```text
//! offset  size  field
//! 0       4     total length (u32, big-endian), the whole frame
//! 4       4     headers length (u32)
//! 8       4     prelude CRC: CRC-32 of bytes 0..8
//! 12      H     headers
//! 12+H    P     payload, P = total - H - 16
//! end-4   4     message CRC: CRC-32 of bytes 0..total-4
//! ```
//!
//! Header records are `name_len: u8`, the name (UTF-8, 1..=255 bytes), a type byte and the value
//! (smithy-rs `aws-smithy-eventstream/src/frame.rs` lists the ten types).

use std::borrow::Cow;
use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, DecodeErrorKind, ValidationError, ValidationErrorKind};

/// The frame size cap of a new [`MessageDecoder`]: 24 MiB, the largest the AWS libraries accept.
pub const DEFAULT_MAX_FRAME_LEN: usize = 24 * 1024 * 1024;

const PRELUDE_LEN: usize = 12;
const MIN_FRAME_LEN: usize = 16;
/// The most header bytes a frame may carry: 128 KiB, as in the AWS C event-stream library.
const MAX_HEADERS_LEN: usize = 128 * 1024;
/// How far a frame's buffer is reserved ahead of its bytes, at least: past that, the room
/// reserved at most doubles what arrived, so a prelude alone cannot reserve its declared length.
const RESERVE_AHEAD: usize = 1024 * 1024;

/// One event-stream message.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Message {
    /// The headers, in wire order.
    pub headers: Vec<Header>,
    /// The payload; a slice of the decoder's input, not a copy.
    pub payload: Bytes,
}

/// A message header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The name, 1 to 255 bytes of UTF-8.
    pub name: Cow<'static, str>,
    /// The value.
    pub value: HeaderValue,
}

/// A header value, one of the ten wire types.
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Types 0 and 1.
    Bool(bool),
    /// Type 2.
    Byte(i8),
    /// Type 3.
    Int16(i16),
    /// Type 4.
    Int32(i32),
    /// Type 5.
    Int64(i64),
    /// Type 6: at most 65535 bytes.
    ByteArray(Bytes),
    /// Type 7: at most 65535 bytes of UTF-8.
    String(Cow<'static, str>),
    /// Type 8: milliseconds since the epoch.
    Timestamp(i64),
    /// Type 9.
    Uuid(u128),
}

impl fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(v) => write!(f, "Bool({v})"),
            Self::Byte(v) => write!(f, "Byte({v})"),
            Self::Int16(v) => write!(f, "Int16({v})"),
            Self::Int32(v) => write!(f, "Int32({v})"),
            Self::Int64(v) => write!(f, "Int64({v})"),
            Self::ByteArray(v) => write!(f, "ByteArray({} bytes)", v.len()),
            Self::String(v) => write!(f, "String({v:?})"),
            Self::Timestamp(v) => write!(f, "Timestamp({v})"),
            Self::Uuid(v) => write!(f, "Uuid({v:032x})"),
        }
    }
}

impl Message {
    /// A message with `payload` and no headers.
    pub fn new(payload: impl Into<Bytes>) -> Self {
        Self {
            headers: Vec::new(),
            payload: payload.into(),
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<Cow<'static, str>>, value: HeaderValue) -> Self {
        self.headers.push(Header {
            name: name.into(),
            value,
        });
        self
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| &h.value)
    }

    /// The value of the first header called `name`, if it is a string.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        match self.header(name) {
            Some(HeaderValue::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The frame's length on the wire.
    pub fn encoded_len(&self) -> usize {
        MIN_FRAME_LEN + self.headers_len() + self.payload.len()
    }

    fn headers_len(&self) -> usize {
        self.headers
            .iter()
            .map(|h| {
                2 + h.name.len()
                    + match &h.value {
                        HeaderValue::Bool(_) => 0,
                        HeaderValue::Byte(_) => 1,
                        HeaderValue::Int16(_) => 2,
                        HeaderValue::Int32(_) => 4,
                        HeaderValue::Int64(_) | HeaderValue::Timestamp(_) => 8,
                        HeaderValue::ByteArray(b) => 2 + b.len(),
                        HeaderValue::String(s) => 2 + s.len(),
                        HeaderValue::Uuid(_) => 16,
                    }
            })
            .sum()
    }

    /// Appends the message's frame to `out`.
    ///
    /// # Errors
    ///
    /// A [`ValidationError`] when a header name is empty or over 255 bytes, a string or byte
    /// array value is over 65535 bytes, the headers take more than 128 KiB (what decoders,
    /// this one and AWS's, accept), or the frame would exceed `u32::MAX` bytes. Nothing is
    /// written then.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ValidationError> {
        for (i, header) in self.headers.iter().enumerate() {
            if header.name.is_empty() || header.name.len() > 255 {
                return Err(ValidationError::new(
                    ValidationErrorKind::Length,
                    format!("headers[{i}].name"),
                    format!("header names are 1..=255 bytes, got {}", header.name.len()),
                ));
            }
            let value_len = match &header.value {
                HeaderValue::ByteArray(b) => b.len(),
                HeaderValue::String(s) => s.len(),
                _ => 0,
            };
            if value_len > usize::from(u16::MAX) {
                return Err(ValidationError::new(
                    ValidationErrorKind::Length,
                    format!("headers[{i}].value"),
                    format!("header values are at most 65535 bytes, got {value_len}"),
                ));
            }
        }
        let headers_len = self.headers_len();
        if headers_len > MAX_HEADERS_LEN {
            return Err(ValidationError::new(
                ValidationErrorKind::Length,
                "headers",
                format!(
                    "headers take at most {MAX_HEADERS_LEN} bytes on the wire, these {headers_len}"
                ),
            ));
        }
        let total = self.encoded_len();
        let (Ok(total32), Ok(headers32)) = (u32::try_from(total), u32::try_from(headers_len))
        else {
            return Err(ValidationError::new(
                ValidationErrorKind::Length,
                "payload",
                format!("a frame is at most 4 GiB, this one would be {total} bytes"),
            ));
        };
        let start = out.len();
        out.reserve(total);
        out.put_u32(total32);
        out.put_u32(headers32);
        let prelude_crc = crc32fast::hash(&out[start..start + 8]);
        out.put_u32(prelude_crc);
        for header in &self.headers {
            // Lengths were checked above.
            out.put_u8(u8::try_from(header.name.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(header.name.as_bytes());
            match &header.value {
                HeaderValue::Bool(true) => out.put_u8(0),
                HeaderValue::Bool(false) => out.put_u8(1),
                HeaderValue::Byte(v) => {
                    out.put_u8(2);
                    out.put_i8(*v);
                }
                HeaderValue::Int16(v) => {
                    out.put_u8(3);
                    out.put_i16(*v);
                }
                HeaderValue::Int32(v) => {
                    out.put_u8(4);
                    out.put_i32(*v);
                }
                HeaderValue::Int64(v) => {
                    out.put_u8(5);
                    out.put_i64(*v);
                }
                HeaderValue::ByteArray(b) => {
                    out.put_u8(6);
                    out.put_u16(u16::try_from(b.len()).unwrap_or(u16::MAX));
                    out.extend_from_slice(b);
                }
                HeaderValue::String(s) => {
                    out.put_u8(7);
                    out.put_u16(u16::try_from(s.len()).unwrap_or(u16::MAX));
                    out.extend_from_slice(s.as_bytes());
                }
                HeaderValue::Timestamp(v) => {
                    out.put_u8(8);
                    out.put_i64(*v);
                }
                HeaderValue::Uuid(v) => {
                    out.put_u8(9);
                    out.put_u128(*v);
                }
            }
        }
        out.extend_from_slice(&self.payload);
        let message_crc = crc32fast::hash(&out[start..]);
        out.put_u32(message_crc);
        Ok(())
    }

    /// The message's frame as [`Bytes`].
    ///
    /// # Errors
    ///
    /// As [`Message::encode`].
    pub fn to_bytes(&self) -> Result<Bytes, ValidationError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out)?;
        Ok(Bytes::from(out))
    }
}

/// What [`MessageDecoder::decode`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The buffered bytes do not hold a whole frame yet: feed more.
    Incomplete,
    /// A whole, checked message.
    Message(Message),
}

/// An incremental event-stream decoder.
///
/// Call [`MessageDecoder::feed`] with each chunk as it arrives, then [`MessageDecoder::decode`]
/// until it returns [`Decoded::Incomplete`]. Chunks may split frames anywhere. When the
/// stream ends, [`MessageDecoder::finish`] tells whether a partial frame was left over.
///
/// Whole frames inside one chunk are sliced from it without copying; only a frame that spans
/// chunks is copied, into a buffer that grows with the bytes that arrive (never sized from the
/// prelude alone). Frames carry at most 128 KiB of headers.
///
/// An error means the stream is corrupt: nothing after it can be trusted, so the decoder keeps
/// returning the same error.
///
/// # Examples
///
/// ```
/// use kds_proto::eventstream::{Decoded, HeaderValue, Message, MessageDecoder};
///
/// let frame = Message::new(&b"{}"[..])
///     .with_header(":message-type", HeaderValue::String("event".into()))
///     .to_bytes()?;
/// let mut decoder = MessageDecoder::new();
/// decoder.feed(frame.slice(..5));
/// assert_eq!(decoder.decode()?, Decoded::Incomplete);
/// decoder.feed(frame.slice(5..));
/// let Decoded::Message(message) = decoder.decode()? else { panic!("whole frame") };
/// assert_eq!(message.header_str(":message-type"), Some("event"));
/// assert_eq!(&message.payload[..], b"{}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MessageDecoder {
    max_frame_len: usize,
    /// Unread bytes of the last chunk, kept without copying.
    chunk: Bytes,
    /// Bytes of a frame that spans chunks, copied together.
    spanning: BytesMut,
    /// Stream offset of the first buffered byte, for error reports.
    offset: usize,
    failed: Option<DecodeError>,
}

impl Default for MessageDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl MessageDecoder {
    /// A decoder with the default 24 MiB frame cap.
    pub fn new() -> Self {
        Self::with_max_frame_len(DEFAULT_MAX_FRAME_LEN)
    }

    /// A decoder that refuses frames longer than `max_frame_len` bytes (at least 16).
    pub fn with_max_frame_len(max_frame_len: usize) -> Self {
        Self {
            max_frame_len: max_frame_len.max(MIN_FRAME_LEN),
            chunk: Bytes::new(),
            spanning: BytesMut::new(),
            offset: 0,
            failed: None,
        }
    }

    /// The frame cap.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Bytes fed but not yet returned as messages.
    pub fn buffered_len(&self) -> usize {
        self.chunk.len() + self.spanning.len()
    }

    /// Adds the next chunk of the stream.
    pub fn feed(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        if self.spanning.is_empty() && self.chunk.is_empty() {
            self.chunk = chunk;
        } else {
            self.move_chunk_to_spanning(0);
            self.spanning.extend_from_slice(&chunk);
        }
    }

    fn move_chunk_to_spanning(&mut self, frame_len: usize) {
        if !self.chunk.is_empty() {
            let arrived = self.spanning.len() + self.chunk.len();
            let room = frame_room(frame_len, arrived, self.max_frame_len);
            self.spanning
                .reserve(room.saturating_sub(self.spanning.len()));
            self.spanning.extend_from_slice(&self.chunk);
            self.chunk = Bytes::new();
        }
    }

    /// Decodes the next message from the buffered bytes.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] of kind `PreludeCrcMismatch`, `MessageCrcMismatch`, `FrameTooLarge`,
    /// `InvalidFrameLength` (also for more than 128 KiB of headers), `InvalidHeader`,
    /// `InvalidHeaderValueType` or `InvalidUtf8`, with the stream offset of the fault.
    pub fn decode(&mut self) -> Result<Decoded, DecodeError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.decode_inner();
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }

    fn decode_inner(&mut self) -> Result<Decoded, DecodeError> {
        let from_chunk = self.spanning.is_empty();
        let buffered: &[u8] = if from_chunk {
            &self.chunk
        } else {
            &self.spanning
        };
        let Some(total_len) =
            check_prelude(buffered, self.max_frame_len).map_err(|e| e.shift_offset(self.offset))?
        else {
            if from_chunk && !self.chunk.is_empty() {
                self.move_chunk_to_spanning(0);
            }
            return Ok(Decoded::Incomplete);
        };
        if buffered.len() < total_len {
            if from_chunk {
                self.move_chunk_to_spanning(total_len);
            } else {
                let arrived = self.spanning.len();
                let room = frame_room(total_len, arrived, self.max_frame_len);
                self.spanning.reserve(room.saturating_sub(arrived));
            }
            return Ok(Decoded::Incomplete);
        }
        let frame = if from_chunk {
            self.chunk.split_to(total_len)
        } else {
            self.spanning.split_to(total_len).freeze()
        };
        let message = parse_frame(frame).map_err(|e| e.shift_offset(self.offset))?;
        self.offset += total_len;
        Ok(Decoded::Message(message))
    }

    /// Checks the end of the stream: an error if a partial frame is buffered.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` with the number of bytes left over, or the decoder's earlier error.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        match self.buffered_len() {
            0 => Ok(()),
            n => Err(DecodeError::new(
                DecodeErrorKind::UnexpectedEof,
                self.offset + n,
                format!("the stream ended inside a frame, {n} bytes buffered"),
            )),
        }
    }
}

/// How many bytes of room to hold for a `frame_len`-byte frame of which `arrived` bytes are
/// buffered: the whole frame, but never more than twice what arrived, or `RESERVE_AHEAD` past it
/// while that is more.
fn frame_room(frame_len: usize, arrived: usize, max_frame_len: usize) -> usize {
    let ahead = arrived.max(RESERVE_AHEAD);
    frame_len
        .min(max_frame_len)
        .min(arrived.saturating_add(ahead))
        .max(arrived)
}

/// Reads and checks a prelude: `Ok(None)` when fewer than 12 bytes are buffered.
fn check_prelude(buf: &[u8], max_frame_len: usize) -> Result<Option<usize>, DecodeError> {
    let Some(prelude) = buf.get(..PRELUDE_LEN) else {
        return Ok(None);
    };
    let mut p = prelude;
    let total = p.get_u32();
    let headers = p.get_u32();
    let wire_crc = p.get_u32();
    // The prelude CRC first: no length is trusted before it matches.
    let crc = crc32fast::hash(&prelude[..8]);
    if crc != wire_crc {
        return Err(DecodeError::new(
            DecodeErrorKind::PreludeCrcMismatch,
            8,
            format!("computed {crc:#010x}, frame says {wire_crc:#010x}"),
        ));
    }
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let headers = usize::try_from(headers).unwrap_or(usize::MAX);
    if total < MIN_FRAME_LEN {
        return Err(DecodeError::new(
            DecodeErrorKind::InvalidFrameLength,
            0,
            format!("total length {total} is under the 16-byte minimum"),
        ));
    }
    if total > max_frame_len {
        return Err(DecodeError::new(
            DecodeErrorKind::FrameTooLarge,
            0,
            format!("total length {total} exceeds the {max_frame_len}-byte cap"),
        ));
    }
    if headers > total - MIN_FRAME_LEN {
        return Err(DecodeError::new(
            DecodeErrorKind::InvalidFrameLength,
            4,
            format!("headers length {headers} does not fit a {total}-byte frame"),
        ));
    }
    // Millions of tiny headers would cost far more memory than the frame's bytes.
    if headers > MAX_HEADERS_LEN {
        return Err(DecodeError::new(
            DecodeErrorKind::InvalidFrameLength,
            4,
            format!("headers length {headers} exceeds the {MAX_HEADERS_LEN}-byte cap"),
        ));
    }
    Ok(Some(total))
}

/// Checks the message CRC and parses the headers of a whole frame whose prelude was checked.
fn parse_frame(frame: Bytes) -> Result<Message, DecodeError> {
    let total = frame.len();
    let body_end = total - 4;
    let wire_crc = u32::from_be_bytes([
        frame[body_end],
        frame[body_end + 1],
        frame[body_end + 2],
        frame[body_end + 3],
    ]);
    let crc = crc32fast::hash(&frame[..body_end]);
    if crc != wire_crc {
        return Err(DecodeError::new(
            DecodeErrorKind::MessageCrcMismatch,
            body_end,
            format!("computed {crc:#010x}, frame says {wire_crc:#010x}"),
        ));
    }
    let headers_len = u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]) as usize;
    let headers_end = PRELUDE_LEN + headers_len;
    let headers = parse_headers(&frame, PRELUDE_LEN, headers_end)?;
    Ok(Message {
        headers,
        payload: frame.slice(headers_end..body_end),
    })
}

fn header_error(
    kind: DecodeErrorKind,
    at: usize,
    detail: impl Into<Cow<'static, str>>,
) -> DecodeError {
    DecodeError::new(kind, at, detail)
}

/// Names and string values that recur in every Kinesis frame are shared, not allocated.
fn intern(text: &str) -> Cow<'static, str> {
    const KNOWN: &[&str] = &[
        ":message-type",
        ":event-type",
        ":content-type",
        ":exception-type",
        ":error-code",
        ":error-message",
        "event",
        "exception",
        "error",
        "SubscribeToShardEvent",
        "initial-response",
        "application/json",
        "application/x-amz-json-1.1",
        "application/x-amz-cbor-1.1",
    ];
    match KNOWN.iter().find(|k| **k == text) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(text.to_owned()),
    }
}

fn parse_headers(frame: &Bytes, start: usize, end: usize) -> Result<Vec<Header>, DecodeError> {
    let mut headers = Vec::with_capacity(4);
    let mut at = start;
    let block = &frame[..end];
    let take = |at: &mut usize, n: usize, what: &'static str| -> Result<usize, DecodeError> {
        let from = *at;
        if block.len() - from < n {
            return Err(header_error(
                DecodeErrorKind::InvalidHeader,
                from,
                format!("{what} runs past the end of the headers"),
            ));
        }
        *at += n;
        Ok(from)
    };
    while at < end {
        let name_len = usize::from(block[take(&mut at, 1, "a header name length")?]);
        if name_len == 0 {
            return Err(header_error(
                DecodeErrorKind::InvalidHeader,
                at - 1,
                "empty header name",
            ));
        }
        let name_at = take(&mut at, name_len, "a header name")?;
        let name = std::str::from_utf8(&block[name_at..name_at + name_len]).map_err(|e| {
            header_error(
                DecodeErrorKind::InvalidUtf8,
                name_at + e.valid_up_to(),
                "in a header name",
            )
        })?;
        let name = intern(name);
        let type_at = take(&mut at, 1, "a header value type")?;
        let fixed = |at: &mut usize, n: usize| {
            take(at, n, "a header value").map(|from| &block[from..from + n])
        };
        let value = match block[type_at] {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes([fixed(&mut at, 1)?[0]])),
            3 => HeaderValue::Int16((&mut fixed(&mut at, 2)?).get_i16()),
            4 => HeaderValue::Int32((&mut fixed(&mut at, 4)?).get_i32()),
            5 => HeaderValue::Int64((&mut fixed(&mut at, 8)?).get_i64()),
            8 => HeaderValue::Timestamp((&mut fixed(&mut at, 8)?).get_i64()),
            9 => HeaderValue::Uuid((&mut fixed(&mut at, 16)?).get_u128()),
            kind @ (6 | 7) => {
                let len = usize::from((&mut fixed(&mut at, 2)?).get_u16());
                let value_at = take(&mut at, len, "a header value")?;
                if kind == 6 {
                    HeaderValue::ByteArray(frame.slice(value_at..value_at + len))
                } else {
                    let text =
                        std::str::from_utf8(&block[value_at..value_at + len]).map_err(|e| {
                            header_error(
                                DecodeErrorKind::InvalidUtf8,
                                value_at + e.valid_up_to(),
                                "in a header value",
                            )
                        })?;
                    HeaderValue::String(intern(text))
                }
            }
            other => {
                return Err(header_error(
                    DecodeErrorKind::InvalidHeaderValueType,
                    type_at,
                    format!("header value type {other} is not one of 0..=9"),
                ));
            }
        };
        headers.push(Header { name, value });
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first two are those of awslabs/aws-c-event-stream `tests/message_deserializer_test.c`;
    /// all verified with zlib.
    const NO_HEADERS: &str = "0000001d00000000fd528c5a7b27666f6f273a27626172277dc3653936";
    const ONE_HEADER: &str = "0000003d0000002007fd83960c636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e7b27666f6f273a27626172277d8d9c08b1";
    const INITIAL_RESPONSE: &str = "00000068000000564e6817240d3a6d6573736167652d747970650700056576656e740b3a6576656e742d74797065070010696e697469616c2d726573706f6e73650d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e7b7dfe942c1d";

    fn decode_all(bytes: &[u8]) -> Result<Vec<Message>, DecodeError> {
        let mut decoder = MessageDecoder::new();
        decoder.feed(Bytes::copy_from_slice(bytes));
        let mut out = Vec::new();
        while let Decoded::Message(m) = decoder.decode()? {
            out.push(m);
        }
        decoder.finish()?;
        Ok(out)
    }

    #[test]
    fn golden_vectors_decode_and_reencode() {
        for (vector, headers, payload) in [
            (NO_HEADERS, vec![], &b"{'foo':'bar'}"[..]),
            (
                ONE_HEADER,
                vec![("content-type", "application/json")],
                &b"{'foo':'bar'}"[..],
            ),
            (
                INITIAL_RESPONSE,
                vec![
                    (":message-type", "event"),
                    (":event-type", "initial-response"),
                    (":content-type", "application/json"),
                ],
                &b"{}"[..],
            ),
        ] {
            let bytes = hex::decode(vector).unwrap();
            let messages = decode_all(&bytes).unwrap();
            assert_eq!(messages.len(), 1);
            let m = &messages[0];
            assert_eq!(&m.payload[..], payload);
            let names: Vec<_> = m
                .headers
                .iter()
                .map(|h| match &h.value {
                    HeaderValue::String(s) => (h.name.as_ref(), s.as_ref()),
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
            assert_eq!(names, headers);
            assert_eq!(hex::encode(m.to_bytes().unwrap()), vector);
        }
    }

    #[test]
    fn exception_vector_prelude_and_crc() {
        // exception / ResourceInUseException / application/json, payload
        // {"message":"x"}: total 131, headers 100, prelude 0000008300000064d9bbb06a, CRC e1ecdf10.
        let m = Message::new(&br#"{"message":"x"}"#[..])
            .with_header(":message-type", HeaderValue::String("exception".into()))
            .with_header(
                ":exception-type",
                HeaderValue::String("ResourceInUseException".into()),
            )
            .with_header(
                ":content-type",
                HeaderValue::String("application/json".into()),
            );
        let bytes = m.to_bytes().unwrap();
        assert_eq!(hex::encode(&bytes[..12]), "0000008300000064d9bbb06a");
        assert_eq!(hex::encode(&bytes[bytes.len() - 4..]), "e1ecdf10");
    }

    #[test]
    fn every_header_type_round_trips() {
        let m = Message::new(&b"payload"[..])
            .with_header("t", HeaderValue::Bool(true))
            .with_header("f", HeaderValue::Bool(false))
            .with_header("b", HeaderValue::Byte(-3))
            .with_header("s", HeaderValue::Int16(-300))
            .with_header("i", HeaderValue::Int32(70_000))
            .with_header("l", HeaderValue::Int64(-5_000_000_000))
            .with_header("a", HeaderValue::ByteArray(Bytes::from_static(&[0, 1, 2])))
            .with_header("str", HeaderValue::String("value".into()))
            .with_header("ts", HeaderValue::Timestamp(1_718_000_000_123))
            .with_header(
                "u",
                HeaderValue::Uuid(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            );
        let bytes = m.to_bytes().unwrap();
        assert_eq!(decode_all(&bytes).unwrap(), vec![m]);
    }

    #[test]
    fn payloads_are_slices_of_the_input() {
        let bytes = Message::new(vec![7u8; 100]).to_bytes().unwrap();
        let mut decoder = MessageDecoder::new();
        decoder.feed(bytes.clone());
        let Decoded::Message(m) = decoder.decode().unwrap() else {
            panic!("whole frame")
        };
        assert_eq!(m.payload.as_ptr(), bytes[12..].as_ptr());
    }

    fn corrupt(mut bytes: Vec<u8>, at: usize) -> Vec<u8> {
        bytes[at] ^= 0x01;
        bytes
    }

    /// Rewrites both CRCs so that a change to lengths or headers reaches the parser.
    fn fix_crcs(mut bytes: Vec<u8>) -> Vec<u8> {
        let prelude = crc32fast::hash(&bytes[..8]);
        bytes[8..12].copy_from_slice(&prelude.to_be_bytes());
        let end = bytes.len() - 4;
        let message = crc32fast::hash(&bytes[..end]);
        bytes[end..].copy_from_slice(&message.to_be_bytes());
        bytes
    }

    #[test]
    fn bad_frames_give_typed_errors() {
        let good = hex::decode(ONE_HEADER).unwrap();
        let kind = |bytes: &[u8]| decode_all(bytes).unwrap_err().kind();

        assert_eq!(
            kind(&corrupt(good.clone(), 9)),
            DecodeErrorKind::PreludeCrcMismatch
        );
        assert_eq!(
            kind(&corrupt(good.clone(), 1)),
            DecodeErrorKind::PreludeCrcMismatch
        );
        assert_eq!(
            kind(&corrupt(good.clone(), 40)),
            DecodeErrorKind::MessageCrcMismatch
        );
        assert_eq!(
            kind(&good[..good.len() - 1]),
            DecodeErrorKind::UnexpectedEof
        );

        // Unknown value type 10 instead of 7 (string).
        let mut bad_type = good.clone();
        bad_type[12 + 1 + 12] = 10;
        assert_eq!(
            kind(&fix_crcs(bad_type)),
            DecodeErrorKind::InvalidHeaderValueType
        );

        // A header length of 1 leaves a dangling byte.
        let mut short_headers = good.clone();
        short_headers[4..8].copy_from_slice(&1u32.to_be_bytes());
        assert_eq!(
            kind(&fix_crcs(short_headers)),
            DecodeErrorKind::InvalidHeader
        );

        // Headers longer than the frame allows.
        let mut long_headers = good.clone();
        long_headers[4..8].copy_from_slice(&0x30u32.to_be_bytes());
        assert_eq!(
            kind(&fix_crcs(long_headers)),
            DecodeErrorKind::InvalidFrameLength
        );

        // An empty header name.
        let mut empty_name = good.clone();
        empty_name[12] = 0;
        assert_eq!(kind(&fix_crcs(empty_name)), DecodeErrorKind::InvalidHeader);

        // Invalid UTF-8 in the string value.
        let mut bad_utf8 = good.clone();
        bad_utf8[12 + 1 + 12 + 1 + 2] = 0xFF;
        assert_eq!(kind(&fix_crcs(bad_utf8)), DecodeErrorKind::InvalidUtf8);

        // A total length under the minimum.
        let mut tiny = good.clone();
        tiny[0..4].copy_from_slice(&8u32.to_be_bytes());
        assert_eq!(kind(&fix_crcs(tiny)), DecodeErrorKind::InvalidFrameLength);
    }

    #[test]
    fn oversized_frames_are_refused_from_the_prelude() {
        let frame = Message::new(vec![0u8; 1000]).to_bytes().unwrap();
        let mut decoder = MessageDecoder::with_max_frame_len(512);
        decoder.feed(frame.slice(..12));
        let err = decoder.decode().unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::FrameTooLarge);
        assert_eq!(err.offset(), Some(0));
        // The error sticks.
        decoder.feed(frame.slice(12..));
        assert_eq!(
            decoder.decode().unwrap_err().kind(),
            DecodeErrorKind::FrameTooLarge
        );
    }

    /// A prelude with a correct CRC.
    fn prelude(total: u32, headers: u32) -> Bytes {
        let mut out: Vec<u8> = Vec::with_capacity(PRELUDE_LEN);
        out.put_u32(total);
        out.put_u32(headers);
        let crc = crc32fast::hash(&out);
        out.put_u32(crc);
        Bytes::from(out)
    }

    #[test]
    fn headers_over_128_kib_are_refused_from_the_prelude() {
        let headers = u32::try_from(MAX_HEADERS_LEN + 1).unwrap();
        let mut decoder = MessageDecoder::new();
        decoder.feed(prelude(headers + 16, headers));
        let err = decoder.decode().unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::InvalidFrameLength);
        assert_eq!(err.offset(), Some(4));
        assert!(err.to_string().contains("headers length 131073"), "{err}");
    }

    #[test]
    fn headers_of_exactly_128_kib_decode_and_one_more_byte_does_not() {
        // Each header is 1 + 1 (name) + 1 (type) + 2 (length) + the value: 5 + 65531 bytes.
        let frame = |extra: usize| {
            Message::new(&b"x"[..])
                .with_header("a", HeaderValue::ByteArray(vec![1u8; 65_531].into()))
                .with_header(
                    "b",
                    HeaderValue::ByteArray(vec![2u8; 65_531 + extra].into()),
                )
        };
        let at_limit = frame(0);
        let bytes = at_limit.to_bytes().unwrap();
        assert_eq!(&bytes[4..8], &131_072u32.to_be_bytes()[..]);
        assert_eq!(decode_all(&bytes).unwrap(), vec![at_limit]);

        // One byte more: the encoder refuses to write what no decoder takes (a peer's frame
        // like it is refused from its prelude, above).
        let err = frame(1).to_bytes().unwrap_err();
        assert_eq!(err.field(), "headers");
    }

    #[test]
    fn a_prelude_alone_does_not_reserve_its_declared_length() {
        let payload_len = 16 * 1024 * 1024 - MIN_FRAME_LEN;
        let m = Message::new(vec![5u8; payload_len]);
        let bytes = m.to_bytes().unwrap();
        assert_eq!(bytes.len(), 16 * 1024 * 1024);
        let mut decoder = MessageDecoder::new();

        decoder.feed(bytes.slice(..PRELUDE_LEN));
        assert_eq!(decoder.decode().unwrap(), Decoded::Incomplete);
        assert!(
            decoder.spanning.capacity() < 4 * 1024 * 1024,
            "{} bytes reserved for 12 that arrived",
            decoder.spanning.capacity()
        );

        // More bytes: the room grows with them, still far from the declared length.
        let part = PRELUDE_LEN + 100 * 1024;
        decoder.feed(bytes.slice(PRELUDE_LEN..part));
        assert_eq!(decoder.decode().unwrap(), Decoded::Incomplete);
        assert!(
            decoder.spanning.capacity() < 4 * 1024 * 1024,
            "{} bytes reserved for {part} that arrived",
            decoder.spanning.capacity()
        );

        decoder.feed(bytes.slice(part..));
        assert_eq!(decoder.decode().unwrap(), Decoded::Message(m));
        decoder.finish().unwrap();
    }

    #[test]
    fn frame_room_tracks_the_bytes_that_arrived() {
        let max = DEFAULT_MAX_FRAME_LEN;
        assert_eq!(frame_room(16 << 20, 12, max), 12 + RESERVE_AHEAD);
        assert_eq!(frame_room(16 << 20, 4 << 20, max), 8 << 20);
        assert_eq!(frame_room(100, 12, max), 100);
        assert_eq!(frame_room(0, 30, max), 30);
        assert_eq!(frame_room(usize::MAX, 20 << 20, max), max);
    }

    #[test]
    fn error_offsets_count_from_the_start_of_the_stream() {
        let first = hex::decode(NO_HEADERS).unwrap();
        let second = corrupt(hex::decode(NO_HEADERS).unwrap(), 20);
        let mut stream = first.clone();
        stream.extend_from_slice(&second);
        let err = decode_all(&stream).unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::MessageCrcMismatch);
        assert_eq!(err.offset(), Some(first.len() + second.len() - 4));
    }

    #[test]
    fn encoder_refuses_what_the_wire_cannot_carry() {
        let empty_name = Message::new(Bytes::new()).with_header("", HeaderValue::Bool(true));
        assert!(empty_name.to_bytes().is_err());
        let long = Message::new(Bytes::new())
            .with_header("n", HeaderValue::ByteArray(vec![0u8; 65_536].into()));
        let err = long.to_bytes().unwrap_err();
        assert_eq!(err.field(), "headers[0].value");
        // Each header fits, all of them do not: a decoder would refuse the frame.
        let many = (0..3).fold(Message::new(Bytes::new()), |message, i| {
            message.with_header(
                format!("h{i}"),
                HeaderValue::ByteArray(vec![0u8; 60_000].into()),
            )
        });
        let err = many.to_bytes().unwrap_err();
        assert_eq!(err.field(), "headers");
        assert!(err.to_string().contains("131072"), "{err}");
        let at_cap = (0..2).fold(Message::new(Bytes::new()), |message, i| {
            message.with_header(
                format!("h{i}"),
                HeaderValue::ByteArray(vec![0u8; 60_000].into()),
            )
        });
        assert!(at_cap.to_bytes().is_ok());
    }
}
