//! One set of error codes for every transport (gRPC, HTTP, the per-event rejections inside
//! a `BatchAck`): a code has one name, one HTTP status and one gRPC status code wherever it
//! appears, so a gateway, an investigator's client and a dashboard read it the same way.
//!
//! [`ErrorCode`] is the closed list; [`Error`] is a code with a message safe to show the
//! caller (never plate text, subject keys or other personal data from storage). The
//! conversions to `tonic::Status` and to an HTTP answer live in `camtrail-common`, the
//! mapping to the wire's `RejectionCode` in `camtrail-proto`.

use std::fmt;

/// The canonical gRPC status codes this project answers with (numbers as in
/// `google.rpc.Code`), kept here so the domain crate needs no gRPC library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum GrpcCode {
    /// The request is malformed or breaks a rule (3).
    InvalidArgument = 3,
    /// The thing asked for does not exist (5).
    NotFound = 5,
    /// The thing to create exists already (6).
    AlreadyExists = 6,
    /// Authenticated, but not allowed (7).
    PermissionDenied = 7,
    /// A deadline passed before the work could finish (4).
    DeadlineExceeded = 4,
    /// A concurrent change won; read again and retry (10).
    Aborted = 10,
    /// A bounded resource is full; retry later (8).
    ResourceExhausted = 8,
    /// The request is valid but the state it acts on does not allow it (9).
    FailedPrecondition = 9,
    /// A bug or an unexpected failure (13).
    Internal = 13,
    /// A dependency (broker, database, audit log) is down or the node is stopping (14).
    Unavailable = 14,
    /// No or unknown credentials (16).
    Unauthenticated = 16,
}

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident => ($name:literal, $http:literal, $grpc:ident, $message:literal), )+) => {
        /// Every error this project reports, on any transport.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )+
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )+ ];

            /// The stable machine-readable name (`snake_case`), e.g. `unknown_camera`.
            pub const fn name(self) -> &'static str {
                match self { $( ErrorCode::$variant => $name, )+ }
            }

            /// The HTTP status this code is answered with.
            pub const fn http_status(self) -> u16 {
                match self { $( ErrorCode::$variant => $http, )+ }
            }

            /// The gRPC status code this code is answered with.
            pub const fn grpc_code(self) -> GrpcCode {
                match self { $( ErrorCode::$variant => GrpcCode::$grpc, )+ }
            }

            /// A generic message for when nothing more specific is known.
            pub const fn default_message(self) -> &'static str {
                match self { $( ErrorCode::$variant => $message, )+ }
            }
        }
    };
}

error_codes! {
    // --- one event of a batch (ingest); also the wire's RejectionCode -------------------
    /// The event id is not 16 bytes, or is all zeros.
    InvalidEventId => ("invalid_event_id", 400, InvalidArgument, "event ids are 16 bytes, not all zero"),
    /// The camera is not in the registry.
    UnknownCamera => ("unknown_camera", 400, InvalidArgument, "the camera is not in the registry"),
    /// The camera belongs to another gateway.
    CameraNotOwned => ("camera_not_owned", 403, PermissionDenied, "the camera is assigned to another gateway"),
    /// The capture time lies too far ahead of the node's clock.
    TimestampInFuture => ("timestamp_in_future", 400, InvalidArgument, "the capture time is too far in the future"),
    /// The capture time is older than the node accepts.
    TimestampTooOld => ("timestamp_too_old", 400, InvalidArgument, "the capture time is too old"),
    /// A vehicle event has neither a readable plate nor a subject key.
    MissingPlate => ("missing_plate", 400, InvalidArgument, "a vehicle event needs a plate or a subject key"),
    /// A text field is not valid UTF-8.
    InvalidUtf8 => ("invalid_utf8", 400, InvalidArgument, "a text field is not valid UTF-8"),
    /// A text field is too long or holds control or invisible formatting characters.
    InvalidText => ("invalid_text", 400, InvalidArgument, "a text field is too long or holds control or invisible formatting characters"),
    /// The snapshot is larger than allowed.
    SnapshotTooLarge => ("snapshot_too_large", 413, InvalidArgument, "the snapshot is larger than allowed"),
    /// The snapshot is not a JPEG.
    SnapshotNotJpeg => ("snapshot_not_jpeg", 400, InvalidArgument, "the snapshot is not a JPEG"),
    /// The snapshot would decode to more pixels than allowed (decompression bombs).
    SnapshotTooBigDecoded => ("snapshot_too_big_decoded", 413, InvalidArgument, "the snapshot decodes to more pixels than allowed"),
    /// The snapshot cannot be decoded.
    SnapshotUndecodable => ("snapshot_undecodable", 400, InvalidArgument, "the snapshot cannot be decoded"),
    /// The object class (or another enum field) is unspecified or unknown.
    InvalidClass => ("invalid_class", 400, InvalidArgument, "an enum field holds an unknown value"),
    /// The plate confidence is not a number in 0–1.
    InvalidConfidence => ("invalid_confidence", 400, InvalidArgument, "the plate confidence is not in 0.0-1.0"),
    /// A field is malformed or out of range (an attribute, or a GA/T 1400 object's field).
    InvalidField => ("invalid_field", 400, InvalidArgument, "a field is malformed or out of range"),

    // --- who asks ------------------------------------------------------------------------
    /// No credential, or one nobody issued.
    Unauthenticated => ("unauthenticated", 401, Unauthenticated, "a valid bearer token is required"),
    /// The caller may not do this (role, gateway, scope).
    Forbidden => ("forbidden", 403, PermissionDenied, "not allowed"),

    // --- what is asked (query) -----------------------------------------------------------
    /// No case id.
    MissingCase => ("missing_case", 400, InvalidArgument, "a case id is required (case)"),
    /// A malformed case id.
    InvalidCase => ("invalid_case", 400, InvalidArgument, "case ids are 1-64 characters of A-Z, a-z, 0-9 and - _ . / :"),
    /// No reason.
    MissingReason => ("missing_reason", 400, InvalidArgument, "a reason is required (reason)"),
    /// A malformed reason.
    InvalidReason => ("invalid_reason", 400, InvalidArgument, "reasons are 1-500 characters without control or invisible formatting characters"),
    /// A window bound is missing.
    MissingWindow => ("missing_window", 400, InvalidArgument, "from and to are required"),
    /// A time that is neither unix ms nor RFC 3339.
    InvalidTime => ("invalid_time", 400, InvalidArgument, "times are unix milliseconds or RFC 3339"),
    /// `from` is not before `to`.
    InvalidWindow => ("invalid_window", 400, InvalidArgument, "from must be before to"),
    /// The window is longer than allowed.
    WindowTooLong => ("window_too_long", 400, InvalidArgument, "the window is longer than allowed"),
    /// The request cannot be parsed (query string, body).
    InvalidQuery => ("invalid_query", 400, InvalidArgument, "the request cannot be parsed"),
    /// Not exactly one subject (plate, pattern or key) given.
    InvalidSubject => ("invalid_subject", 400, InvalidArgument, "give exactly one of plate and subject_key"),
    /// A malformed subject key.
    InvalidSubjectKey => ("invalid_subject_key", 400, InvalidArgument, "subject keys are 1-128 bytes without control or invisible formatting characters"),
    /// A malformed plate.
    InvalidPlate => ("invalid_plate", 400, InvalidArgument, "the plate is empty or too long"),
    /// A malformed wildcard pattern.
    InvalidPattern => ("invalid_pattern", 400, InvalidArgument, "the plate pattern is not valid"),
    /// The pattern matches too many plates.
    PatternTooBroad => ("pattern_too_broad", 400, InvalidArgument, "the pattern matches too many plates"),
    /// A page size out of bounds.
    InvalidLimit => ("invalid_limit", 400, InvalidArgument, "the page size is out of bounds"),
    /// Not exactly one place (cameras or district) given.
    InvalidPlace => ("invalid_place", 400, InvalidArgument, "give exactly one of cameras and district"),
    /// Too few or too many cameras.
    InvalidCameras => ("invalid_cameras", 400, InvalidArgument, "the camera list is empty or too long"),
    /// The district is not in the registry.
    UnknownDistrict => ("unknown_district", 400, InvalidArgument, "no such district"),
    /// A page cursor that no page handed out.
    InvalidCursor => ("invalid_cursor", 400, InvalidArgument, "after must be a cursor from a previous page"),
    /// A scene's area is not a valid circle, simple polygon or camera list.
    InvalidArea => ("invalid_area", 400, InvalidArgument, "the area is not a valid circle or simple polygon"),
    /// A scene's area is larger than anyone may search.
    AreaTooLarge => ("area_too_large", 400, InvalidArgument, "the area is larger than allowed"),
    /// Too few or too many scenes, or a threshold that cannot be met.
    InvalidScenes => ("invalid_scenes", 400, InvalidArgument, "give 2-6 scenes and a threshold between 2 and their number"),
    /// A broad search would read more rows than allowed.
    SearchTooBroad => ("search_too_broad", 400, InvalidArgument, "the search would read more detections than allowed; narrow the area or the window"),
    /// An audit listing without a filter.
    MissingFilter => ("missing_filter", 400, InvalidArgument, "filter the audit log by case or by user"),
    /// The thing asked for does not exist.
    NotFound => ("not_found", 404, NotFound, "not found"),

    // --- the case registry ---------------------------------------------------------------
    /// The search names a case the registry does not hold, or one that was closed.
    CaseNotOpen => ("case_not_open", 403, PermissionDenied, "no open case has this id; a supervisor opens cases"),
    /// The investigator is not assigned to the case.
    CaseNotAssigned => ("case_not_assigned", 403, PermissionDenied, "you are not assigned to this case"),
    /// The case's end date has passed.
    CaseEnded => ("case_ended", 403, PermissionDenied, "the case's end date has passed; a supervisor may extend it"),
    /// Opening a case whose id is taken.
    CaseExists => ("case_exists", 409, AlreadyExists, "a case with this id exists"),
    /// Another change of the same case or entry came first (the stored one is that change).
    ChangeConflict => ("change_conflict", 409, Aborted, "another change of this record came first; read it again and retry"),
    /// Changing a case that was closed.
    CaseClosed => ("case_closed", 400, FailedPrecondition, "the case is closed"),
    /// An offence category outside the configured taxonomy.
    UnknownCategory => ("unknown_category", 400, InvalidArgument, "the offence category is not in the configured taxonomy"),
    /// An end date in the past or too far ahead.
    InvalidCaseEnd => ("invalid_case_end", 400, InvalidArgument, "the end date must lie in the future, within the allowed number of days"),
    /// A title, user list or hold list that breaks the rules.
    InvalidCaseField => ("invalid_case_field", 400, InvalidArgument, "a case field is empty, too long or malformed"),

    // --- watchlists ----------------------------------------------------------------------
    /// The applicant approving their own watchlist entry.
    SelfApproval => ("self_approval", 403, PermissionDenied, "an entry needs the approval of a supervisor other than its applicant"),
    /// An entry that breaks the rules (plate, window, priority, scope, recipients).
    InvalidEntry => ("invalid_entry", 400, InvalidArgument, "the watchlist entry is malformed"),
    /// A webhook URL that is not plain `http://` to a host on the node's allow-list.
    WebhookNotAllowed => ("webhook_not_allowed", 400, InvalidArgument, "the webhook URL's host is not on the node's allow-list"),
    /// A change the entry's state does not allow (approving an approved or revoked one).
    EntryNotPending => ("entry_not_pending", 400, FailedPrecondition, "the entry is not waiting for this change"),

    // --- the node and what it depends on -------------------------------------------------
    /// An ingest batch with more events than `ingest.max_batch_events`.
    BatchTooLarge => ("batch_too_large", 413, InvalidArgument, "a batch holds more events than allowed; split it"),
    /// A gRPC message that is not a valid protobuf encoding of the request.
    UndecodableMessage => ("undecodable_message", 400, InvalidArgument, "the message is not a valid protobuf encoding of the request"),
    /// A `Publish` stream whose acks stayed unread past the node's timeout.
    AcksUnread => ("acks_unread", 408, DeadlineExceeded, "acks were left unread too long; the stream was cancelled"),
    /// The node is saturated (a bounded queue stayed full); retry after the hinted delay.
    Overloaded => ("overloaded", 429, ResourceExhausted, "the node is saturated; retry after the hinted delay"),
    /// Accepted events could not be made durable; nothing of the batch is acked.
    PublishFailed => ("publish_failed", 503, Unavailable, "the batch could not be made durable; resend it"),
    /// The node is shutting down; retry on another node.
    ShuttingDown => ("shutting_down", 503, Unavailable, "the node is shutting down; retry elsewhere"),
    /// The audit log cannot be written: no result is released (fail closed).
    AuditUnavailable => ("audit_unavailable", 503, Unavailable, "the audit log cannot be written; no results are released"),
    /// Storage cannot be read or written now.
    StorageUnavailable => ("storage_unavailable", 503, Unavailable, "storage could not be reached; try again"),
    /// An answer could not be rendered (PNG, GeoJSON).
    RenderFailed => ("render_failed", 500, Internal, "the answer could not be rendered"),
    /// Anything else: a bug.
    Internal => ("internal", 500, Internal, "internal error"),
}

impl ErrorCode {
    /// The code named `name` (as [`ErrorCode::name`] spells it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|code| code.name() == name)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A refused or failed request: a code and a message safe to show the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    /// What kind of failure.
    pub code: ErrorCode,
    /// Detail for the caller; never personal data from storage.
    pub message: String,
}

impl Error {
    /// `code` with `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `code` with its default message.
    pub fn from_code(code: ErrorCode) -> Self {
        Self::new(code, code.default_message())
    }

    /// The HTTP status of the code.
    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }
}

impl From<ErrorCode> for Error {
    fn from(code: ErrorCode) -> Self {
        Self::from_code(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_snake_case_and_round_trip() {
        let mut seen = HashSet::new();
        for &code in ErrorCode::ALL {
            let name = code.name();
            assert!(seen.insert(name), "{name} used twice");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name}"
            );
            assert_eq!(ErrorCode::from_name(name), Some(code));
            assert!(!code.default_message().is_empty());
        }
        assert_eq!(ErrorCode::from_name("no_such_code"), None);
    }

    #[test]
    fn statuses_agree_between_http_and_grpc() {
        // HTTP and gRPC as google.rpc.Code maps them (FAILED_PRECONDITION is a 400).
        for &code in ErrorCode::ALL {
            let expected: &[GrpcCode] = match code.http_status() {
                400 => &[GrpcCode::InvalidArgument, GrpcCode::FailedPrecondition],
                413 => &[GrpcCode::InvalidArgument],
                401 => &[GrpcCode::Unauthenticated],
                408 => &[GrpcCode::DeadlineExceeded],
                403 => &[GrpcCode::PermissionDenied],
                404 => &[GrpcCode::NotFound],
                409 => &[GrpcCode::AlreadyExists, GrpcCode::Aborted],
                429 => &[GrpcCode::ResourceExhausted],
                500 => &[GrpcCode::Internal],
                503 => &[GrpcCode::Unavailable],
                other => panic!("{code}: unexpected HTTP status {other}"),
            };
            assert!(expected.contains(&code.grpc_code()), "{code}");
        }
    }

    #[test]
    fn errors_show_code_then_message() {
        let error = Error::new(ErrorCode::MissingCase, "a case id is required");
        assert_eq!(error.to_string(), "missing_case: a case id is required");
        assert_eq!(error.http_status(), 400);
        assert_eq!(
            Error::from(ErrorCode::Overloaded).message,
            ErrorCode::Overloaded.default_message()
        );
    }
}
