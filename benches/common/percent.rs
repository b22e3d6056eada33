//! Percent-encoding of a query-string value (a plate in a URL), for the benches that speak
//! HTTP to the query node. Included by path.

/// `value` with every byte but ASCII letters and digits as `%XX`.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
