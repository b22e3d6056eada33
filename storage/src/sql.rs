//! Small helpers both SQL backends use to build parameterised statements.

/// `?, ?, ?` for `n` values bound one by one.
pub fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The smallest string greater than every string starting with `prefix`: with `prefix`
/// itself, the key range a `LIKE 'prefix%'` search may read.
pub fn prefix_end(prefix: &str) -> String {
    let mut end = prefix.to_string();
    end.push(char::MAX);
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_prefix_range() {
        assert_eq!(placeholders(3), "?, ?, ?");
        let end = prefix_end("粤S1");
        assert!(end.as_str() > "粤S1ZZZZZ");
        assert!(end.as_str() < "粤S2");
    }
}
