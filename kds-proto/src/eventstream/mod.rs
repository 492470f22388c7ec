//! The `application/vnd.amazon.eventstream` framing that carries SubscribeToShard responses, and
//! the classification of its messages.
//!
//! [`MessageDecoder`] turns a byte stream, fed in chunks of any size, into [`Message`]s; it checks
//! the prelude CRC before it trusts any length, caps frames at a configurable size and their
//! headers at 128 KiB, and hands out payloads as [`bytes::Bytes`] slices of the input. [`SubscribeToShardDecoder`] sits on top and
//! turns messages into [`SubscribeToShardItem`]s: events with their decoded payload, typed
//! exceptions and errors, while unknown events are skipped and counted.

mod frame;
mod subscribe;

pub use frame::{DEFAULT_MAX_FRAME_LEN, Decoded, Header, HeaderValue, Message, MessageDecoder};
pub use subscribe::{SubscribeToShardDecoder, SubscribeToShardItem, SubscribeToShardVisit};
