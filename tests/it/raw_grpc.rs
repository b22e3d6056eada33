//! Sending bytes that are not a protobuf message to a gRPC method, as a hostile client
//! would (issue 13, fault 5): every camtrail service must answer INVALID_ARGUMENT with
//! `undecodable_message`, never INTERNAL.

use bytes::{Buf, BufMut};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;

/// Undecodable request bodies: a length-delimited field claiming more bytes than follow,
/// a varint key that never ends, a wire type that does not exist.
pub const GARBAGE: [&[u8]; 3] = [
    &[0x1a, 0xff, 0x01, 0x00],
    &[0xff, 0xff, 0xff, 0xff, 0xff],
    &[0x0f],
];

/// Sends raw bytes as the request; the answer's bytes are returned undecoded.
#[derive(Default)]
pub struct RawCodec;

pub struct RawEncoder;
pub struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Send each of [`GARBAGE`] to `method` at `url` (requests made by `authed`) and check the
/// status.
pub async fn assert_garbage_is_invalid_argument(
    url: &str,
    method: &'static str,
    authed: impl Fn(Vec<u8>) -> tonic::Request<Vec<u8>>,
) {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    for bytes in GARBAGE {
        grpc.ready().await.expect("ready");
        let status = grpc
            .unary(
                authed(bytes.to_vec()),
                PathAndQuery::from_static(method),
                RawCodec,
            )
            .await
            .expect_err("garbage");
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{method} {bytes:?}: {status:?}"
        );
        assert!(
            status.message().starts_with("undecodable_message: "),
            "{method}: {status:?}"
        );
    }
}
