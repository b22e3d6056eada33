//! gRPC set-up shared by the ingest and query nodes: the standard health service
//! (driven by [`Readiness`]) and server reflection (so stock tools such as `grpcurl` can
//! call every service), and errors as `tonic::Status`.

use camtrail_model::error::{Error, ErrorCode};
use tonic::Status;
use tonic::service::Routes;

use crate::Readiness;

/// Routes holding `grpc.health.v1.Health` (reporting `services` by `readiness`) and
/// reflection over `descriptor_sets`, advertising only `services` and health; add the
/// node's own services to them.
pub async fn health_and_reflection(
    readiness: &Readiness,
    descriptor_sets: &[&'static [u8]],
    services: &[&str],
) -> anyhow::Result<Routes> {
    let mut reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    for set in descriptor_sets {
        reflection = reflection.register_encoded_file_descriptor_set(set);
    }
    // A descriptor set may hold a whole package; advertise only what this node serves.
    for service in services {
        reflection = reflection.with_service_name(*service);
    }
    let reflection = reflection
        .with_service_name("grpc.health.v1.Health")
        .build_v1()?;
    let (reporter, health) = tonic_health::server::health_reporter();
    readiness.attach(reporter, services).await;
    Ok(Routes::new(health).add_service(reflection))
}

/// The gRPC status of `error`: its code's gRPC code, message `"<code>: <message>"`.
pub fn status(error: &Error) -> Status {
    Status::new(
        tonic::Code::from(error.code.grpc_code() as i32),
        error.to_string(),
    )
}

/// The gRPC status of `code` with `message`.
pub fn error_status(code: ErrorCode, message: impl Into<String>) -> Status {
    status(&Error::new(code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_carry_the_code_name_and_its_grpc_code() {
        let missing = error_status(ErrorCode::MissingCase, "a case id is required");
        assert_eq!(missing.code(), tonic::Code::InvalidArgument);
        assert_eq!(missing.message(), "missing_case: a case id is required");
        for &code in ErrorCode::ALL {
            let answer = status(&Error::from_code(code));
            assert_eq!(answer.code() as i32, code.grpc_code() as i32, "{code}");
        }
    }
}
