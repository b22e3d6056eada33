//! Text fields of an event (`camera_id`, `plate`, `subject_key`): UTF-8, length and
//! character checks.
//!
//! The wire mirrors carry text as raw bytes ([`camtrail_proto::wire`]) so that one bad field
//! rejects one event, not the batch. Rejection messages name the field and the problem,
//! never the text: plates and subject keys are personal data, and a camera id that failed
//! these checks may hold anything.

use camtrail_model::ErrorCode;
use camtrail_model::camera::MAX_CAMERA_ID_LEN;

use super::EventRejection;

/// Decode a text field as UTF-8 (`INVALID_UTF8` otherwise).
pub(super) fn utf8<'a>(field: &str, bytes: &'a [u8]) -> Result<&'a str, EventRejection> {
    std::str::from_utf8(bytes).map_err(|error| {
        EventRejection::new(
            ErrorCode::InvalidUtf8,
            format!(
                "{field} is not valid utf-8 (bad byte at offset {})",
                error.valid_up_to()
            ),
        )
    })
}

/// A free-text field such as the plate or the upstream subject key: UTF-8, at most
/// `max_bytes` bytes, no control, format (bidirectional overrides, zero-width characters)
/// or line-separator characters (`INVALID_TEXT`, see [`camtrail_model::text`]). May be
/// empty.
pub(super) fn free_text<'a>(
    field: &str,
    bytes: &'a [u8],
    max_bytes: usize,
) -> Result<&'a str, EventRejection> {
    let text = utf8(field, bytes)?;
    if text.len() > max_bytes {
        return Err(EventRejection::new(
            ErrorCode::InvalidText,
            format!("{field} is {} bytes, limit {max_bytes}", text.len()),
        ));
    }
    if camtrail_model::text::has_hidden(text) {
        return Err(EventRejection::new(
            ErrorCode::InvalidText,
            format!("{field} contains control or invisible formatting characters"),
        ));
    }
    Ok(text)
}

/// A camera id: UTF-8, 1–[`MAX_CAMERA_ID_LEN`] bytes of printable ASCII without spaces (the
/// same rule the registry applies to its rows). An empty id names no registered camera, so
/// it is `UNKNOWN_CAMERA`.
pub(super) fn camera_id(bytes: &[u8]) -> Result<&str, EventRejection> {
    let id = utf8("camera_id", bytes)?;
    if id.is_empty() {
        return Err(EventRejection::new(
            ErrorCode::UnknownCamera,
            "camera_id is empty",
        ));
    }
    if id.len() > MAX_CAMERA_ID_LEN {
        return Err(EventRejection::new(
            ErrorCode::InvalidText,
            format!("camera_id is {} bytes, limit {MAX_CAMERA_ID_LEN}", id.len()),
        ));
    }
    if !id.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(EventRejection::new(
            ErrorCode::InvalidText,
            "camera_id must be printable ascii without spaces",
        ));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code<T: std::fmt::Debug>(result: Result<T, EventRejection>) -> ErrorCode {
        result.expect_err("must be rejected").code
    }

    #[test]
    fn free_text_accepts_plates_as_read() {
        for plate in ["", "粤S·12345", "粤Ｓ１２３４５", "WJ 01234", "粤B1234学"] {
            assert_eq!(
                free_text("plate", plate.as_bytes(), 32).expect("valid"),
                plate
            );
        }
    }

    #[test]
    fn free_text_rejects_bad_utf8_long_text_and_controls() {
        assert_eq!(
            code(free_text("plate", &[b'A', 0xff, b'1'], 32)),
            ErrorCode::InvalidUtf8
        );
        // Truncated multi-byte character (a reader that cut "粤" in half).
        assert_eq!(
            code(free_text("plate", &"粤".as_bytes()[..2], 32)),
            ErrorCode::InvalidUtf8
        );
        assert_eq!(
            code(free_text("plate", &[b'A'; 33], 32)),
            ErrorCode::InvalidText
        );
        assert_eq!(
            code(free_text("plate", "粤S\n12345".as_bytes(), 32)),
            ErrorCode::InvalidText
        );
        assert_eq!(
            code(free_text("plate", "粤S\u{7f}1".as_bytes(), 32)),
            ErrorCode::InvalidText
        );
        assert_eq!(
            code(free_text("plate", "A\u{85}".as_bytes(), 32)),
            ErrorCode::InvalidText
        );
    }

    #[test]
    fn free_text_rejects_bidi_overrides_and_invisible_formatting() {
        // Each displays as another plate, or as the same plate with different bytes.
        for plate in [
            "粤S\u{202E}54321",         // right-to-left override
            "粤S\u{2067}12345\u{2069}", // right-to-left isolate
            "粤S1\u{200B}2345",         // zero-width space
            "\u{FEFF}粤S12345",         // byte-order mark
            "粤S12345\u{2028}",         // line separator
        ] {
            assert_eq!(
                code(free_text("plate", plate.as_bytes(), 32)),
                ErrorCode::InvalidText,
                "{plate:?}"
            );
        }
    }

    #[test]
    fn messages_never_echo_the_text() {
        let secret = "粤S·SECRET";
        let cases = [
            secret.repeat(5).into_bytes(),
            format!("{secret}\t").into_bytes(),
            [secret.as_bytes(), &[0xff]].concat(),
        ];
        for bytes in cases {
            let message = free_text("plate", &bytes, 32)
                .expect_err("rejected")
                .message;
            assert!(!message.contains("SECRET"), "{message}");
        }
    }

    #[test]
    fn camera_ids_follow_the_registry_rule() {
        assert_eq!(
            camera_id(b"44030000001310000001").expect("valid"),
            "44030000001310000001"
        );
        assert_eq!(code(camera_id(b"")), ErrorCode::UnknownCamera);
        assert_eq!(code(camera_id(&[0xc3, 0x28])), ErrorCode::InvalidUtf8);
        assert_eq!(code(camera_id(&[b'1'; 65])), ErrorCode::InvalidText);
        assert_eq!(code(camera_id(b"cam 1")), ErrorCode::InvalidText);
        assert_eq!(
            code(camera_id("摄像头1".as_bytes())),
            ErrorCode::InvalidText
        );
        assert!(camera_id(&[b'1'; 64]).is_ok());
    }
}
