//! Lenient server-side decoding of `camtrail.v1.EventBatch`.
//!
//! In the public schema every text field is a proto3 `string`, and prost refuses a whole
//! message when one string is not valid UTF-8. A gateway's batch must instead get a
//! per-event `REJECTION_CODE_INVALID_UTF8`, so the ingest server decodes batches into these
//! wire-compatible mirrors, where each `string` is `bytes` (same wire type, same field
//! numbers), and validates UTF-8 itself. [`lenient_ingest_server`](crate::lenient_ingest_server)
//! is the tonic server generated for them; clients and reflection use the public types.
//!
//! Every camtrail.v1 service decodes with [`StrictCodec`]: bytes that are not a protobuf
//! encoding of the request answer INVALID_ARGUMENT (`undecodable_message`), not tonic's
//! INTERNAL, so a client does not retry garbage forever. The lenient ingest server uses
//! [`IngestCodec`], which also counts a batch's events before decoding them: a message of
//! more than [`MAX_EVENTS_PER_MESSAGE`] events is refused (`batch_too_large`) without
//! allocating them (16 MiB of empty events would otherwise decode into ~1.4 GB).

use std::marker::PhantomData;

use bytes::Buf;
use camtrail_model::{Error, ErrorCode};
use prost::encoding::{DecodeContext, WireType, decode_key, skip_field};
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstEncoder};

/// The most events one ingest message may hold, whatever `ingest.max_batch_events` says
/// (that limit, 5,000 by default, is checked after decoding and may not exceed this).
pub const MAX_EVENTS_PER_MESSAGE: usize = 50_000;

/// Prost encoding, with decode failures answered INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct StrictCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for StrictCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for StrictCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = StrictDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        StrictDecoder(PhantomData)
    }
}

/// Decodes `U`; a malformed message is INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct StrictDecoder<U>(PhantomData<U>);

impl<U: prost::Message + Default> Decoder for StrictDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf)
            .map(Some)
            .map_err(|error| undecodable(&error))
    }
}

/// [`StrictCodec`] for the lenient ingest server, which first counts the events.
#[derive(Debug, Clone)]
pub struct IngestCodec<T>(PhantomData<T>);

impl<T> Default for IngestCodec<T> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T: prost::Message + Send + 'static> Codec for IngestCodec<T> {
    type Encode = T;
    type Decode = RawEventBatch;
    type Encoder = ProstEncoder<T>;
    type Decoder = IngestDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, RawEventBatch>::raw_encoder(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        IngestDecoder
    }
}

/// Decodes a [`RawEventBatch`] once its event count is known to be bounded.
#[derive(Debug, Clone)]
pub struct IngestDecoder;

impl Decoder for IngestDecoder {
    type Item = RawEventBatch;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<RawEventBatch>, Status> {
        let remaining = buf.remaining();
        let chunk = buf.chunk();
        // A DecodeBuf holds the whole message contiguously; if not, decoding still works,
        // only without the early count.
        let events = if chunk.len() >= remaining {
            count_events(&chunk[..remaining]).unwrap_or(0)
        } else {
            0
        };
        if events > MAX_EVENTS_PER_MESSAGE {
            return Err(too_many_events(events));
        }
        // Sized once from the count: growing it by doubling while decoding touched fresh
        // pages for every batch (a tenth of the node's CPU in the issue-14 profile).
        let mut batch = RawEventBatch {
            events: Vec::with_capacity(events),
            ..RawEventBatch::default()
        };
        prost::Message::merge(&mut batch, buf).map_err(|error| undecodable(&error))?;
        Ok(Some(batch))
    }
}

/// How many `events` (field 3) an encoded `EventBatch` holds, without decoding them;
/// `None` when the bytes are not a well-formed message (decoding then says why).
pub fn count_events(mut bytes: &[u8]) -> Option<usize> {
    let mut events = 0;
    while bytes.has_remaining() {
        let (tag, wire_type) = decode_key(&mut bytes).ok()?;
        if tag == 3 && wire_type == WireType::LengthDelimited {
            events += 1;
        }
        skip_field(wire_type, tag, &mut bytes, DecodeContext::default()).ok()?;
    }
    Some(events)
}

/// The status of a message prost cannot decode (the same text form as
/// `camtrail_common::grpc::status`: `code: message`).
pub fn undecodable(error: &prost::DecodeError) -> Status {
    let error = Error::new(
        ErrorCode::UndecodableMessage,
        format!(
            "the message is not a valid protobuf encoding of the request ({error}); \
             resending it will not help"
        ),
    );
    Status::new(tonic::Code::InvalidArgument, error.to_string())
}

fn too_many_events(events: usize) -> Status {
    let error = Error::new(
        ErrorCode::BatchTooLarge,
        format!(
            "the batch holds {events} events, limit {MAX_EVENTS_PER_MESSAGE} per message; \
             split it and resend"
        ),
    );
    Status::new(tonic::Code::InvalidArgument, error.to_string())
}

/// Wire-compatible mirror of `camtrail.v1.EventBatch` with text as raw bytes.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct RawEventBatch {
    /// `gateway_id` (UTF-8 not yet checked).
    #[prost(bytes = "vec", tag = "1")]
    pub gateway_id: Vec<u8>,
    /// `batch_seq`.
    #[prost(uint64, tag = "2")]
    pub batch_seq: u64,
    /// `events`.
    #[prost(message, repeated, tag = "3")]
    pub events: Vec<RawDetectionEvent>,
}

/// Wire-compatible mirror of `camtrail.v1.DetectionEvent` with text as raw bytes.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct RawDetectionEvent {
    /// `event_id`.
    #[prost(bytes = "vec", tag = "1")]
    pub event_id: Vec<u8>,
    /// `camera_id` (UTF-8 not yet checked).
    #[prost(bytes = "vec", tag = "2")]
    pub camera_id: Vec<u8>,
    /// `captured_at_ms`.
    #[prost(int64, tag = "3")]
    pub captured_at_ms: i64,
    /// `object_class` (enum number, not yet checked).
    #[prost(int32, tag = "4")]
    pub object_class: i32,
    /// `plate` (UTF-8 not yet checked).
    #[prost(bytes = "vec", tag = "5")]
    pub plate: Vec<u8>,
    /// `plate_confidence`.
    #[prost(float, tag = "6")]
    pub plate_confidence: f32,
    /// `subject_key` (UTF-8 not yet checked).
    #[prost(bytes = "vec", tag = "7")]
    pub subject_key: Vec<u8>,
    /// `vehicle_color` (enum number).
    #[prost(int32, tag = "8")]
    pub vehicle_color: i32,
    /// `vehicle_type` (enum number).
    #[prost(int32, tag = "9")]
    pub vehicle_type: i32,
    /// `bbox`.
    #[prost(message, optional, tag = "10")]
    pub bbox: Option<crate::v1::BoundingBox>,
    /// `snapshot` (JPEG, not yet checked).
    #[prost(bytes = "vec", tag = "11")]
    pub snapshot: Vec<u8>,
    /// `plate_color` (enum number).
    #[prost(int32, tag = "12")]
    pub plate_color: i32,
    /// `vehicle_brand` (UTF-8 not yet checked).
    #[prost(bytes = "vec", tag = "13")]
    pub vehicle_brand: Vec<u8>,
    /// `direction` (enum number).
    #[prost(int32, tag = "14")]
    pub direction: i32,
    /// `speed_kmh`.
    #[prost(float, tag = "15")]
    pub speed_kmh: f32,
    /// `plate_char_confidence`.
    #[prost(bytes = "vec", tag = "16")]
    pub plate_char_confidence: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1;
    use prost::Message;

    fn event(plate: &str) -> v1::DetectionEvent {
        v1::DetectionEvent {
            event_id: vec![9; 16],
            camera_id: "44030000001310000001".into(),
            captured_at_ms: 1_764_000_000_000,
            object_class: v1::ObjectClass::Vehicle as i32,
            plate: plate.into(),
            plate_confidence: 0.5,
            subject_key: "k".into(),
            vehicle_color: 2,
            vehicle_type: 1,
            bbox: Some(v1::BoundingBox {
                x: 1,
                y: 2,
                width: 3,
                height: 4,
            }),
            snapshot: vec![0xff, 0xd8],
            plate_color: 1,
            vehicle_brand: "大众".into(),
            direction: 3,
            speed_kmh: 48.5,
            plate_char_confidence: vec![90, 80, 99, 99, 99, 99, 70],
        }
    }

    #[test]
    fn mirrors_the_public_encoding_field_for_field() {
        let batch = v1::EventBatch {
            gateway_id: "gw-1".into(),
            batch_seq: 42,
            events: vec![event("粤S·12345"), event("")],
        };
        let bytes = batch.encode_to_vec();
        let raw = RawEventBatch::decode(bytes.as_slice()).expect("decode raw");
        assert_eq!(raw.gateway_id, b"gw-1");
        assert_eq!(raw.batch_seq, 42);
        assert_eq!(raw.events[0].plate, "粤S·12345".as_bytes());
        // And back: the raw form re-encodes to the very same bytes.
        assert_eq!(raw.encode_to_vec(), bytes);
    }

    #[test]
    fn garbage_is_invalid_argument_with_the_code_name() {
        // A length-delimited field 3 that claims more bytes than follow.
        let garbage = [0x1a, 0xff, 0x01, 0x00];
        let error = RawEventBatch::decode(garbage.as_slice()).expect_err("not a batch");
        let status = undecodable(&error);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().starts_with("undecodable_message: "),
            "{}",
            status.message()
        );
        assert_eq!(
            ErrorCode::UndecodableMessage.grpc_code() as i32,
            tonic::Code::InvalidArgument as i32
        );
    }

    #[test]
    fn events_are_counted_without_decoding_them() {
        let batch = v1::EventBatch {
            gateway_id: "gw".into(),
            batch_seq: 9,
            events: vec![event("A"), v1::DetectionEvent::default(), event("B")],
        };
        assert_eq!(count_events(&batch.encode_to_vec()), Some(3));
        assert_eq!(count_events(&[]), Some(0));
        assert_eq!(count_events(&[0x1a, 0xff, 0x01]), None, "truncated");
        // 16 MiB of empty events: counted in place, refused before any is allocated.
        let empty_events = [0x1a, 0x00].repeat(MAX_EVENTS_PER_MESSAGE + 1);
        assert_eq!(
            count_events(&empty_events),
            Some(MAX_EVENTS_PER_MESSAGE + 1)
        );
        let status = too_many_events(MAX_EVENTS_PER_MESSAGE + 1);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().starts_with("batch_too_large: "));
    }

    #[test]
    fn invalid_utf8_in_one_event_does_not_fail_the_batch() {
        let mut raw = RawEventBatch::decode(
            v1::EventBatch {
                gateway_id: "gw".into(),
                batch_seq: 1,
                events: vec![event("A")],
            }
            .encode_to_vec()
            .as_slice(),
        )
        .expect("decode");
        raw.events[0].plate = vec![0xff, 0xfe, b'A'];
        let bytes = raw.encode_to_vec();
        assert!(
            v1::EventBatch::decode(bytes.as_slice()).is_err(),
            "public type refuses it"
        );
        let lenient = RawEventBatch::decode(bytes.as_slice()).expect("lenient accepts");
        assert_eq!(lenient.events[0].plate, vec![0xff, 0xfe, b'A']);
    }
}
