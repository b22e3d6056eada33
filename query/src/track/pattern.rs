//! Investigator wildcard patterns (`粤S1?3*`): `?` stands for one character, `*` for any run
//! of characters (including none).
//!
//! A pattern is answered in two steps (ARCHITECTURE.md, "Storage"): match it against the small
//! table of distinct keys per day with SQL `LIKE`, then read the matching keys by primary
//! key. [`pattern_to_like`] produces the `LIKE` text and enforces the limits that keep the
//! first step from matching everything; [`LikePattern::matches`] / [`matches_pattern`] give
//! the same answer in memory. Storage should re-check the keys its `LIKE` returned with
//! [`LikePattern::matches`]: `LIKE` implementations differ at the edges (whether `_` is one
//! byte or one character, case folding), the in-memory match is the definition.

use camtrail_model::plate::{glob_matches, normalize_pattern};

/// Longest accepted pattern, in characters after normalisation (the longest plates have 8).
pub const MAX_PATTERN_CHARS: usize = 16;
/// Fewest non-wildcard characters a pattern must have, so that it cannot select a large
/// part of all plates.
pub const MIN_LITERAL_CHARS: usize = 3;
/// Longest raw input looked at, in bytes; anything longer is rejected before normalising.
const MAX_RAW_BYTES: usize = 256;

/// The escape character of the produced `LIKE` pattern. ClickHouse uses `\` by default; for
/// SQLite add `ESCAPE '\'` to the `LIKE` clause.
pub const LIKE_ESCAPE: char = '\\';

/// Why a pattern was refused. Messages are lower-case and safe to show to the investigator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Nothing left after normalisation.
    #[error("plate pattern is empty")]
    Empty,
    /// Longer than [`MAX_PATTERN_CHARS`].
    #[error("plate pattern is longer than {max} characters")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// Fewer than [`MIN_LITERAL_CHARS`] characters that are not wildcards.
    #[error("plate pattern needs at least {min} characters that are not wildcards, found {found}")]
    TooBroad {
        /// The limit.
        min: usize,
        /// Non-wildcard characters in the pattern.
        found: usize,
    },
}

/// A validated wildcard pattern and its SQL `LIKE` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikePattern {
    /// Normalised pattern with `?`/`*` wildcards (runs of `*` collapsed).
    pattern: String,
    /// The same as a SQL `LIKE` pattern, escaped with [`LIKE_ESCAPE`].
    like: String,
    /// Characters before the first wildcard.
    literal_prefix: String,
}

impl LikePattern {
    /// The normalised wildcard pattern, e.g. `粤S1?3*`.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The SQL `LIKE` pattern (`%`, `_`, escape `\`), to be bound as a parameter, never
    /// spliced into SQL text.
    pub fn as_like(&self) -> &str {
        &self.like
    }

    /// The characters before the first wildcard (may be empty): a key-range bound for the
    /// keys table (`key >= prefix AND key < prefix + U+10FFFF`).
    pub fn literal_prefix(&self) -> &str {
        &self.literal_prefix
    }

    /// Whether the pattern has no wildcard at all (then it is just a key).
    pub fn is_exact(&self) -> bool {
        self.literal_prefix.len() == self.pattern.len()
    }

    /// Whether the stored (normalised) `key` matches the pattern.
    pub fn matches(&self, key: &str) -> bool {
        glob_matches(&self.pattern, key)
    }
}

/// Turn an investigator's wildcard pattern into a validated [`LikePattern`].
///
/// The pattern is normalised with [`normalize_pattern`] (the plate normaliser that made the
/// stored keys: full-width forms such as the `？`/`＊` an IME produces become `?`/`*`;
/// separators, including `_`, disappear; runs of `*` collapse); `?` becomes `_`, `*` becomes `%`, and literal `%`, `_` and `\`
/// are escaped with `\`. Refused: empty patterns, more than [`MAX_PATTERN_CHARS`] characters,
/// fewer than [`MIN_LITERAL_CHARS`] non-wildcard characters.
///
/// ```
/// use camtrail_query::track::pattern_to_like;
/// let pattern = pattern_to_like("粤s·1?3*").unwrap();
/// assert_eq!(pattern.as_like(), "粤S1_3%");
/// assert!(pattern.matches("粤S12345"));
/// assert!(pattern_to_like("粤*").is_err());
/// ```
pub fn pattern_to_like(pattern: &str) -> Result<LikePattern, PatternError> {
    if pattern.len() > MAX_RAW_BYTES {
        return Err(PatternError::TooLong {
            max: MAX_PATTERN_CHARS,
        });
    }
    let normalized = normalize_pattern(pattern);
    if normalized.is_empty() {
        return Err(PatternError::Empty);
    }
    if normalized.chars().count() > MAX_PATTERN_CHARS {
        return Err(PatternError::TooLong {
            max: MAX_PATTERN_CHARS,
        });
    }
    let literals = normalized.chars().filter(|&c| !is_wildcard(c)).count();
    if literals < MIN_LITERAL_CHARS {
        return Err(PatternError::TooBroad {
            min: MIN_LITERAL_CHARS,
            found: literals,
        });
    }
    let mut like = String::with_capacity(normalized.len() + 4);
    for c in normalized.chars() {
        match c {
            '?' => like.push('_'),
            '*' => like.push('%'),
            '%' | '_' | '\\' => {
                like.push(LIKE_ESCAPE);
                like.push(c);
            }
            other => like.push(other),
        }
    }
    let literal_prefix = normalized
        .chars()
        .take_while(|&c| !is_wildcard(c))
        .collect();
    Ok(LikePattern {
        pattern: normalized,
        like,
        literal_prefix,
    })
}

/// Whether the stored (normalised) `key` matches the wildcard `pattern`, with the semantics of
/// [`pattern_to_like`] (the pattern is normalised the same way) but without its limits:
/// matching one key in memory cannot scan anything.
pub fn matches_pattern(pattern: &str, key: &str) -> bool {
    glob_matches(&normalize_pattern(pattern), key)
}

fn is_wildcard(c: char) -> bool {
    c == '?' || c == '*'
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn converts_wildcards_and_normalises_literals() {
        let pattern = pattern_to_like("粤s 1?3*").expect("valid");
        assert_eq!(pattern.pattern(), "粤S1?3*");
        assert_eq!(pattern.as_like(), "粤S1_3%");
        assert_eq!(pattern.literal_prefix(), "粤S1");
        assert!(!pattern.is_exact());
        let full_width = pattern_to_like("粤Ｓ１？３＊").expect("valid");
        assert_eq!(full_width.as_like(), "粤S1_3%");
        assert!(pattern_to_like("粤S12345").expect("valid").is_exact());
    }

    #[test]
    fn escapes_like_metacharacters() {
        let pattern = pattern_to_like(r"AB%C\D*").expect("valid");
        assert_eq!(pattern.as_like(), r"AB\%C\\D%");
        assert!(pattern.matches(r"AB%C\DXYZ"));
        assert!(
            !pattern.matches(r"ABXC\DXYZ"),
            "% is a literal in the pattern"
        );
        // `_` is a separator to the normaliser, like in stored keys: it disappears.
        assert_eq!(
            pattern_to_like("粤S_12*").expect("valid").as_like(),
            "粤S12%"
        );
    }

    #[test]
    fn rejects_patterns_that_would_scan_everything() {
        assert_eq!(pattern_to_like(""), Err(PatternError::Empty));
        assert_eq!(pattern_to_like(" · "), Err(PatternError::Empty));
        assert_eq!(
            pattern_to_like("*"),
            Err(PatternError::TooBroad { min: 3, found: 0 })
        );
        assert_eq!(
            pattern_to_like("粤S*"),
            Err(PatternError::TooBroad { min: 3, found: 2 })
        );
        assert!(matches!(
            pattern_to_like("粤?????"),
            Err(PatternError::TooBroad { .. })
        ));
        assert!(pattern_to_like("粤S1*").is_ok());
        assert!(matches!(
            pattern_to_like("粤S12345678901234567"),
            Err(PatternError::TooLong { max: 16 })
        ));
        assert!(matches!(
            pattern_to_like(&"A".repeat(10_000)),
            Err(PatternError::TooLong { .. })
        ));
        // Runs of `*` count once towards the length.
        assert!(pattern_to_like("粤S1****************").is_ok());
    }

    #[test]
    fn matches_like_sql_would() {
        assert!(matches_pattern("粤S1?3*", "粤S12345"));
        assert!(matches_pattern("粤S1?3*", "粤S123"));
        assert!(!matches_pattern("粤S1?3*", "粤S1123"));
        assert!(!matches_pattern("粤S1?3*", "粤B12345"));
        assert!(matches_pattern("*345", "粤S12345"));
        assert!(matches_pattern("粤*3*5", "粤S12345"));
        assert!(!matches_pattern("粤*3*6", "粤S12345"));
        assert!(
            matches_pattern("?S12345", "粤S12345"),
            "? is one character, not one byte"
        );
        assert!(!matches_pattern("??S12345", "粤S12345"));
        assert!(
            matches_pattern("粤s·12345", "粤S12345"),
            "pattern is normalised"
        );
    }

    /// Reference semantics: a regex-free recursive matcher.
    fn reference(pattern: &[char], key: &[char]) -> bool {
        match pattern.split_first() {
            None => key.is_empty(),
            Some(('*', rest)) => (0..=key.len()).any(|skip| reference(rest, &key[skip..])),
            Some((&p, rest)) => key
                .split_first()
                .is_some_and(|(&k, tail)| (p == '?' || p == k) && reference(rest, tail)),
        }
    }

    proptest! {
        #[test]
        fn glob_agrees_with_reference(pattern in "[AB?*]{0,8}", key in "[AB]{0,8}") {
            let p: Vec<char> = pattern.chars().collect();
            let k: Vec<char> = key.chars().collect();
            prop_assert_eq!(glob_matches(&pattern, &key), reference(&p, &k));
        }

        #[test]
        fn a_key_matches_itself_and_its_wildcarded_forms(
            key in "粤[A-Z0-9]{6}", position in 1usize..7,
        ) {
            let pattern = pattern_to_like(&key).expect("plain key is a valid pattern");
            prop_assert!(pattern.matches(&key));
            let mut chars: Vec<char> = key.chars().collect();
            chars[position] = '?';
            let one: String = chars.iter().collect();
            prop_assert!(matches_pattern(&one, &key));
            let tail: String = chars[..position].iter().chain(['*'].iter()).collect();
            prop_assert!(matches_pattern(&tail, &key));
        }

        #[test]
        fn accepted_patterns_respect_the_limits(raw in "\\PC{0,24}") {
            if let Ok(pattern) = pattern_to_like(&raw) {
                let chars = pattern.pattern().chars().count();
                let literals = pattern.pattern().chars().filter(|&c| !is_wildcard(c)).count();
                prop_assert!(chars <= MAX_PATTERN_CHARS);
                prop_assert!(literals >= MIN_LITERAL_CHARS);
                // Every unescaped `%`/`_` in the LIKE text comes from a wildcard.
                let unescaped = unescaped_metacharacters(pattern.as_like());
                let wildcards = pattern.pattern().chars().filter(|&c| is_wildcard(c)).count();
                prop_assert_eq!(unescaped, wildcards);
            }
        }
    }

    fn unescaped_metacharacters(like: &str) -> usize {
        let mut count = 0;
        let mut escaped = false;
        for c in like.chars() {
            if escaped {
                escaped = false;
            } else if c == LIKE_ESCAPE {
                escaped = true;
            } else if c == '%' || c == '_' {
                count += 1;
            }
        }
        count
    }
}
