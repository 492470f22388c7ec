//! SubscribeToShard messages: which kind each frame is, and its decoded payload.

use bytes::Bytes;

use super::frame::{Decoded, HeaderValue, Message, MessageDecoder};
use crate::Protocol;
use crate::codec::encode_with;
use crate::error::{DecodeError, DecodeErrorKind};
use crate::model::{RecordRef, RecordsPage, Shape, SubscribeToShardEvent};
use crate::service_error::{ServiceError, error_message};

/// One meaningful message of a SubscribeToShard response.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum SubscribeToShardItem {
    /// The `initial-response` event that real Kinesis sends first. Optional: emulators omit it.
    InitialResponse,
    /// A `SubscribeToShardEvent` with its decoded payload.
    Event(SubscribeToShardEvent),
    /// An `exception` message: a modeled error such as `ResourceInUseException`, typed by its
    /// `:exception-type`. The subscription is over.
    Exception(ServiceError),
    /// An `error` message: an unmodeled server error with `:error-code` and `:error-message`.
    /// The subscription is over.
    Error(ServiceError),
}

impl SubscribeToShardItem {
    /// Classifies one message. `protocol` is the request's, used for payloads that carry no
    /// `:content-type` (after sniffing the first byte). Returns `None` for messages of unknown
    /// kind, which callers skip.
    ///
    /// # Errors
    ///
    /// `MissingHeader` when `:message-type` (or the header its kind needs) is absent, or the
    /// payload's [`DecodeError`].
    pub fn from_message(
        message: &Message,
        protocol: Protocol,
    ) -> Result<Option<Self>, DecodeError> {
        Ok(match Kind::of(message, protocol)? {
            Kind::Event(payload_protocol) => Some(Self::Event(SubscribeToShardEvent::decode_body(
                message.payload.clone(),
                payload_protocol,
            )?)),
            Kind::InitialResponse => Some(Self::InitialResponse),
            Kind::Exception(error) => Some(Self::Exception(error)),
            Kind::Error(error) => Some(Self::Error(error)),
            Kind::Unknown => None,
        })
    }
}

impl SubscribeToShardItem {
    /// The message that carries this item, its payload in `protocol`: the mirror of
    /// [`from_message`](Self::from_message), for servers, test peers and benchmarks. An
    /// exception's payload holds its message; an error's code and message travel in the
    /// `:error-code` and `:error-message` headers.
    ///
    /// ```
    /// use kds_proto::Protocol;
    /// use kds_proto::eventstream::SubscribeToShardItem;
    /// use kds_proto::model::SubscribeToShardEvent;
    ///
    /// let item = SubscribeToShardItem::Event(SubscribeToShardEvent::new(Vec::new(), 0));
    /// let message = item.to_message(Protocol::Cbor);
    /// assert_eq!(message.header_str(":event-type"), Some("SubscribeToShardEvent"));
    /// assert_eq!(SubscribeToShardItem::from_message(&message, Protocol::Cbor)?, Some(item));
    /// # Ok::<(), kds_proto::DecodeError>(())
    /// ```
    pub fn to_message(&self, protocol: Protocol) -> Message {
        let text = |value: &str| HeaderValue::String(value.to_owned().into());
        // As the service labels event payloads: plain JSON, or CBOR 1.1.
        let content_type = text(match protocol {
            Protocol::Json => "application/json",
            Protocol::Cbor => protocol.content_type(),
        });
        match self {
            Self::InitialResponse => Message::new(encode_with(protocol, |w| {
                w.begin_map(0);
                w.end_map();
            }))
            .with_header(":message-type", text("event"))
            .with_header(":event-type", text("initial-response"))
            .with_header(":content-type", content_type),
            Self::Event(event) => Message::new(event.encode_body(protocol))
                .with_header(":message-type", text("event"))
                .with_header(":event-type", text("SubscribeToShardEvent"))
                .with_header(":content-type", content_type),
            Self::Exception(error) => {
                Message::new(encode_with(protocol, |w| match error.message() {
                    Some(message) => {
                        w.begin_map(1);
                        w.key("message");
                        w.string(message);
                        w.end_map();
                    }
                    None => {
                        w.begin_map(0);
                        w.end_map();
                    }
                }))
                .with_header(":message-type", text("exception"))
                .with_header(":exception-type", text(error.code()))
                .with_header(":content-type", content_type)
            }
            Self::Error(error) => {
                let message = Message::new(Bytes::new())
                    .with_header(":message-type", text("error"))
                    .with_header(":error-code", text(error.code()));
                match error.message() {
                    Some(text_) => message.with_header(":error-message", text(text_)),
                    None => message,
                }
            }
        }
    }
}

/// One meaningful message of a SubscribeToShard response, read by
/// [`SubscribeToShardDecoder::next_visit`]: an event's records were lent to the visitor.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum SubscribeToShardVisit {
    /// The `initial-response` event.
    InitialResponse,
    /// A `SubscribeToShardEvent`: everything but its records, which were visited.
    Event(RecordsPage),
    /// An `exception` message; the subscription is over.
    Exception(ServiceError),
    /// An `error` message; the subscription is over.
    Error(ServiceError),
}

/// What a message is, before its payload is read.
enum Kind {
    /// An event, with its payload's protocol.
    Event(Protocol),
    InitialResponse,
    Exception(ServiceError),
    Error(ServiceError),
    Unknown,
}

impl Kind {
    fn of(message: &Message, protocol: Protocol) -> Result<Self, DecodeError> {
        let header = |name: &'static str| {
            message.header_str(name).ok_or_else(|| {
                DecodeError::without_offset(
                    DecodeErrorKind::MissingHeader,
                    format!("no string header `{name}`"),
                )
            })
        };
        let payload_protocol = || {
            let declared = message.header_str(":content-type");
            Protocol::detect(declared, &message.payload, protocol).ok_or_else(|| {
                DecodeError::without_offset(
                    DecodeErrorKind::UnknownContentType,
                    format!(
                        "event payload with content type {declared:?} is neither JSON nor CBOR"
                    ),
                )
            })
        };
        Ok(match header(":message-type")? {
            "event" => match header(":event-type")? {
                "SubscribeToShardEvent" => Self::Event(payload_protocol()?),
                "initial-response" => Self::InitialResponse,
                _ => Self::Unknown,
            },
            "exception" => {
                let code = header(":exception-type")?;
                let text = payload_protocol()
                    .ok()
                    .and_then(|p| error_message(&message.payload, p));
                Self::Exception(ServiceError::new(code, text, None, None))
            }
            "error" => {
                let code = header(":error-code")?;
                let text = message.header_str(":error-message").map(str::to_owned);
                Self::Error(ServiceError::new(code, text, Some(500), None))
            }
            _ => Self::Unknown,
        })
    }
}

/// Decodes a SubscribeToShard response body into [`SubscribeToShardItem`]s.
///
/// Feed the body's chunks with [`SubscribeToShardDecoder::feed`] and call
/// [`SubscribeToShardDecoder::next_item`] until it returns `Ok(None)`. Messages of unknown kind
/// are skipped and counted ([`SubscribeToShardDecoder::skipped`]).
///
/// # Examples
///
/// ```
/// use kds_proto::eventstream::{HeaderValue, Message, SubscribeToShardDecoder, SubscribeToShardItem};
/// use kds_proto::Protocol;
///
/// let event = Message::new(&br#"{"Records":[],"MillisBehindLatest":0,"ContinuationSequenceNumber":"1"}"#[..])
///     .with_header(":message-type", HeaderValue::String("event".into()))
///     .with_header(":event-type", HeaderValue::String("SubscribeToShardEvent".into()))
///     .with_header(":content-type", HeaderValue::String("application/json".into()));
/// let mut decoder = SubscribeToShardDecoder::new(Protocol::Cbor);
/// decoder.feed(event.to_bytes()?);
/// let Some(SubscribeToShardItem::Event(event)) = decoder.next_item()? else { panic!("an event") };
/// assert_eq!(event.continuation_sequence_number.unwrap().as_str(), "1");
/// assert_eq!(decoder.next_item()?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SubscribeToShardDecoder {
    frames: MessageDecoder,
    protocol: Protocol,
    skipped: u64,
}

impl SubscribeToShardDecoder {
    /// A decoder for the response to a request sent in `protocol`, with the default frame cap.
    pub fn new(protocol: Protocol) -> Self {
        Self::with_frames(MessageDecoder::new(), protocol)
    }

    /// A decoder over a configured [`MessageDecoder`] (a different frame cap, say).
    pub fn with_frames(frames: MessageDecoder, protocol: Protocol) -> Self {
        Self {
            frames,
            protocol,
            skipped: 0,
        }
    }

    /// Adds the next chunk of the response body.
    pub fn feed(&mut self, chunk: Bytes) {
        self.frames.feed(chunk);
    }

    /// The next item, or `None` when more bytes are needed.
    ///
    /// # Errors
    ///
    /// A frame error (the stream is corrupt and must be abandoned) or a payload error.
    pub fn next_item(&mut self) -> Result<Option<SubscribeToShardItem>, DecodeError> {
        loop {
            let Decoded::Message(message) = self.frames.decode()? else {
                return Ok(None);
            };
            match SubscribeToShardItem::from_message(&message, self.protocol)? {
                Some(item) => return Ok(Some(item)),
                None => self.skipped += 1,
            }
        }
    }

    /// The next item, with an event's records lent to `visit` as they are decoded instead of
    /// collected (`SubscribeToShardEvent::visit_records`), or `None` when more bytes are
    /// needed.
    ///
    /// # Errors
    ///
    /// As [`next_item`](Self::next_item).
    pub fn next_visit(
        &mut self,
        mut visit: impl FnMut(RecordRef<'_>),
    ) -> Result<Option<SubscribeToShardVisit>, DecodeError> {
        loop {
            let Decoded::Message(message) = self.frames.decode()? else {
                return Ok(None);
            };
            let item = match Kind::of(&message, self.protocol)? {
                Kind::Event(protocol) => SubscribeToShardVisit::Event(
                    SubscribeToShardEvent::visit_records(message.payload, protocol, &mut visit)?,
                ),
                Kind::InitialResponse => SubscribeToShardVisit::InitialResponse,
                Kind::Exception(error) => SubscribeToShardVisit::Exception(error),
                Kind::Error(error) => SubscribeToShardVisit::Error(error),
                Kind::Unknown => {
                    self.skipped += 1;
                    continue;
                }
            };
            return Ok(Some(item));
        }
    }

    /// How many messages of unknown kind were skipped.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Bytes received but not yet decoded.
    pub fn buffered_len(&self) -> usize {
        self.frames.buffered_len()
    }

    /// Checks the end of the body: an error if it stopped inside a frame.
    ///
    /// # Errors
    ///
    /// As [`MessageDecoder::finish`].
    pub fn finish(&self) -> Result<(), DecodeError> {
        self.frames.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventstream::HeaderValue;
    use crate::service_error::ErrorClass;

    fn string(s: &'static str) -> HeaderValue {
        HeaderValue::String(s.into())
    }

    #[test]
    fn items_encode_to_messages_that_decode_to_the_same_items() {
        use crate::model::Record;
        use crate::types::{PartitionKey, SequenceNumber};
        let mut event = SubscribeToShardEvent::new(
            vec![Record::new(
                SequenceNumber::new("49590338271490256608559692538361571095921575989136588898")
                    .unwrap(),
                Bytes::from_static(b"\x00data\xff"),
                PartitionKey::new("key").unwrap(),
            )],
            1500,
        );
        event.continuation_sequence_number = Some(SequenceNumber::new("7").unwrap());
        let items = [
            SubscribeToShardItem::InitialResponse,
            SubscribeToShardItem::Event(event),
            SubscribeToShardItem::Exception(ServiceError::new(
                "ResourceInUseException",
                Some("another \"subscription\"".into()),
                None,
                None,
            )),
            SubscribeToShardItem::Exception(ServiceError::new("InternalFailure", None, None, None)),
            SubscribeToShardItem::Error(ServiceError::new(
                "InternalError",
                Some("boom".into()),
                Some(500),
                None,
            )),
        ];
        for protocol in [Protocol::Json, Protocol::Cbor] {
            let mut decoder = SubscribeToShardDecoder::new(protocol);
            for item in &items {
                decoder.feed(item.to_message(protocol).to_bytes().unwrap());
            }
            for item in &items {
                assert_eq!(
                    decoder.next_item().unwrap().as_ref(),
                    Some(item),
                    "{protocol:?}"
                );
            }
            assert_eq!(decoder.next_item().unwrap(), None);
            decoder.finish().unwrap();
        }
    }

    #[test]
    fn kinds_are_classified() {
        let mut decoder = SubscribeToShardDecoder::new(Protocol::Json);
        let frames = [
            Message::new(&b"{}"[..])
                .with_header(":message-type", string("event"))
                .with_header(":event-type", string("initial-response")),
            Message::new(&b"{}"[..])
                .with_header(":message-type", string("event"))
                .with_header(":event-type", string("SomethingNew")),
            Message::new(&br#"{"message":"busy"}"#[..])
                .with_header(":message-type", string("exception"))
                .with_header(":exception-type", string("ResourceInUseException"))
                .with_header(":content-type", string("application/json")),
            Message::new(Bytes::new())
                .with_header(":message-type", string("error"))
                .with_header(":error-code", string("InternalError"))
                .with_header(":error-message", string("boom")),
        ];
        for frame in &frames {
            decoder.feed(frame.to_bytes().unwrap());
        }
        assert_eq!(
            decoder.next_item().unwrap(),
            Some(SubscribeToShardItem::InitialResponse)
        );
        let Some(SubscribeToShardItem::Exception(e)) = decoder.next_item().unwrap() else {
            panic!("exception expected")
        };
        assert_eq!(e.code(), "ResourceInUseException");
        assert_eq!(e.message(), Some("busy"));
        assert_eq!(e.class(), ErrorClass::Terminal);
        let Some(SubscribeToShardItem::Error(e)) = decoder.next_item().unwrap() else {
            panic!("error expected")
        };
        assert_eq!(e.code(), "InternalError");
        assert_eq!(e.class(), ErrorClass::Transient);
        assert_eq!(decoder.next_item().unwrap(), None);
        assert_eq!(decoder.skipped(), 1);
    }

    #[test]
    fn visiting_lends_the_records_that_decoding_collects() {
        use crate::model::Record;
        use crate::types::{PartitionKey, SequenceNumber};
        for protocol in [Protocol::Json, Protocol::Cbor] {
            let mut body = Vec::new();
            for e in 0..3u64 {
                let records = (0..4u64)
                    .map(|i| {
                        Record::new(
                            SequenceNumber::new((e * 10 + i + 1).to_string()).unwrap(),
                            Bytes::from(vec![u8::try_from(i).unwrap(); 100]),
                            PartitionKey::new(format!("k{i}")).unwrap(),
                        )
                    })
                    .collect();
                let mut event = SubscribeToShardEvent::new(records, 7);
                event.continuation_sequence_number =
                    SequenceNumber::new((e * 10 + 4).to_string()).ok();
                Message::new(event.encode_body(protocol))
                    .with_header(":message-type", string("event"))
                    .with_header(":event-type", string("SubscribeToShardEvent"))
                    .encode(&mut body)
                    .unwrap();
            }
            let body = Bytes::from(body);
            let mut owned = SubscribeToShardDecoder::new(protocol);
            owned.feed(body.clone());
            let mut expected = Vec::new();
            while let Some(item) = owned.next_item().unwrap() {
                let SubscribeToShardItem::Event(event) = item else {
                    panic!("an event")
                };
                expected.extend(
                    event
                        .records
                        .into_iter()
                        .map(|r| (r.sequence_number.as_str().to_owned(), r.data)),
                );
            }
            // Fed a byte at a time, the visiting decoder lends the same records.
            let mut lending = SubscribeToShardDecoder::new(protocol);
            let mut lent = Vec::new();
            let mut pages = Vec::new();
            for i in 0..body.len() {
                lending.feed(body.slice(i..=i));
                while let Some(item) = lending
                    .next_visit(|r| lent.push((r.sequence_number.to_owned(), r.data.clone())))
                    .unwrap()
                {
                    let SubscribeToShardVisit::Event(page) = item else {
                        panic!("an event")
                    };
                    pages.push(page);
                }
            }
            assert_eq!(lent, expected, "{protocol:?}");
            assert_eq!(pages.len(), 3);
            assert_eq!(
                pages[2]
                    .continuation_sequence_number
                    .as_ref()
                    .unwrap()
                    .as_str(),
                "24"
            );
            assert_eq!(pages[0].millis_behind_latest, Some(7));
        }
    }

    #[test]
    fn missing_message_type_is_an_error() {
        let mut decoder = SubscribeToShardDecoder::new(Protocol::Json);
        decoder.feed(Message::new(&b"{}"[..]).to_bytes().unwrap());
        assert_eq!(
            decoder.next_item().unwrap_err().kind(),
            DecodeErrorKind::MissingHeader
        );
    }

    #[test]
    fn payload_protocol_follows_content_type_then_sniffing() {
        // A CBOR subscriber receiving a JSON payload without :content-type (sniffed).
        let json = Message::new(&br#"{"Records":[],"MillisBehindLatest":5}"#[..])
            .with_header(":message-type", string("event"))
            .with_header(":event-type", string("SubscribeToShardEvent"));
        let item = SubscribeToShardItem::from_message(&json, Protocol::Cbor).unwrap();
        let Some(SubscribeToShardItem::Event(event)) = item else {
            panic!()
        };
        assert_eq!(event.millis_behind_latest, 5);
        assert_eq!(event.continuation_sequence_number, None);
    }
}
