//! Plate normalisation and reader confusions.
//!
//! The ingest node stores [`normalize`]'s output as a vehicle's subject key and the query
//! side normalises what an investigator types with the same function, so "粤S·12345",
//! "粤Ｓ１２３４５" and "粤s 12345" all name one key: "粤S12345".

/// Characters a plate reader or a person puts between plate groups; never part of a key.
const SEPARATORS: &[char] = &[
    ' ', '\t', '-', '_', '.', '·',        // U+00B7 middle dot, the usual one on Chinese plates
    '•',        // U+2022 bullet
    '・',       // U+30FB katakana middle dot
    '･',        // U+FF65 half-width katakana middle dot
    '\u{3000}', // ideographic (full-width) space
    '\u{2027}', // hyphenation point
];

/// Normalise a plate as read or typed into its lookup key: full-width ASCII forms become
/// half-width, separators are removed, Latin letters become upper case. Other characters
/// (province abbreviations such as 粤, suffixes such as 学 or 警) are kept as they are.
pub fn normalize(raw: &str) -> String {
    let mut key = String::with_capacity(raw.len());
    for c in raw.chars() {
        let half = to_half_width(c);
        if SEPARATORS.contains(&half) || half.is_control() {
            continue;
        }
        key.push(half.to_ascii_uppercase());
    }
    key
}

/// Map a full-width ASCII variant (U+FF01..=U+FF5E) to its ASCII character.
fn to_half_width(c: char) -> char {
    let code = c as u32;
    if (0xFF01..=0xFF5E).contains(&code) {
        // The block mirrors ASCII 0x21..=0x7E at a fixed offset.
        char::from_u32(code - 0xFEE0).unwrap_or(c)
    } else {
        c
    }
}

/// Groups of characters that plate readers confuse with each other (0/D/Q, 8/B, 5/S, 2/Z,
/// 1/7 and a few more seen in practice). Used by the synthetic city's misread model and by
/// fuzzy track search, so both sides agree on what a "plausible misreading" is.
pub const CONFUSION_GROUPS: &[&[char]] = &[
    &['0', 'D', 'Q'],
    &['8', 'B'],
    &['5', 'S'],
    &['2', 'Z'],
    &['1', '7'],
    &['6', 'G'],
    &['4', 'A'],
];

/// The characters `c` is commonly misread as (excluding `c` itself). Empty when `c` is in
/// no confusion group.
pub fn confusions(c: char) -> impl Iterator<Item = char> {
    CONFUSION_GROUPS
        .iter()
        .find(|group| group.contains(&c))
        .into_iter()
        .flat_map(|group| group.iter().copied())
        .filter(move |&other| other != c)
}

/// Whether `key` looks like a normalised Chinese civil plate: one province abbreviation,
/// one issuing-authority letter, then 5 (standard) or 6 (new-energy) letters/digits without
/// I or O. Used for statistics and tests, never to reject input (foreign and special plates
/// exist).
pub fn is_standard_chinese_plate(key: &str) -> bool {
    let mut chars = key.chars();
    let Some(province) = chars.next() else {
        return false;
    };
    let Some(authority) = chars.next() else {
        return false;
    };
    let rest: Vec<char> = chars.collect();
    !province.is_ascii()
        && authority.is_ascii_uppercase()
        && (rest.len() == 5 || rest.len() == 6)
        && rest
            .iter()
            .all(|c| (c.is_ascii_uppercase() || c.is_ascii_digit()) && *c != 'I' && *c != 'O')
}

/// [`normalize`] the pattern (it keeps `?` and `*` and maps their full-width forms to them)
/// and collapse runs of `*`, which mean the same as one.
pub fn normalize_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    for c in normalize(pattern).chars() {
        if c == '*' && out.ends_with('*') {
            continue;
        }
        out.push(c);
    }
    out
}

/// Wildcard match over characters: `?` one character, `*` any run. Greedy with backtracking
/// to the last `*`, so O(pattern × key) at worst — both are a few characters.
pub fn glob_matches(pattern: &str, key: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let key: Vec<char> = key.chars().collect();
    let (mut p, mut k) = (0, 0);
    // Position of the last `*` seen and the key position it currently stands up to.
    let mut backtrack: Option<(usize, usize)> = None;
    while k < key.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == key[k]) {
            p += 1;
            k += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            backtrack = Some((p, k));
            p += 1;
        } else if let Some((star, covered)) = backtrack {
            p = star + 1;
            k = covered + 1;
            backtrack = Some((star, covered + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn variants_of_one_plate_share_a_key() {
        for raw in [
            "粤S·12345",
            "粤Ｓ１２３４５",
            "粤s 12345",
            "粤S-12345",
            "粤S12345\u{3000}",
        ] {
            assert_eq!(normalize(raw), "粤S12345", "{raw:?}");
        }
    }

    #[test]
    fn keeps_non_ascii_suffixes() {
        assert_eq!(normalize("粤B·1234学"), "粤B1234学");
        assert_eq!(normalize("ｗｊ·01234"), "WJ01234");
    }

    #[test]
    fn confusions_are_symmetric_and_exclude_self() {
        for group in CONFUSION_GROUPS {
            for &c in *group {
                let others: Vec<char> = confusions(c).collect();
                assert!(!others.contains(&c));
                for other in others {
                    assert!(confusions(other).any(|x| x == c), "{c} ~ {other}");
                }
            }
        }
        assert_eq!(confusions('X').count(), 0);
    }

    #[test]
    fn recognises_standard_plates() {
        assert!(is_standard_chinese_plate("粤S12345"));
        assert!(is_standard_chinese_plate("京AD12345"));
        assert!(!is_standard_chinese_plate("粤S1234"));
        assert!(!is_standard_chinese_plate("粤SO1234"));
        assert!(!is_standard_chinese_plate("AB12345"));
    }

    proptest! {
        #[test]
        fn normalize_is_idempotent(raw in "\\PC{0,24}") {
            let once = normalize(&raw);
            prop_assert_eq!(normalize(&once), once);
        }

        #[test]
        fn normalized_keys_have_no_separators_or_lowercase(raw in "\\PC{0,24}") {
            let key = normalize(&raw);
            prop_assert!(!key.chars().any(|c| SEPARATORS.contains(&c) || c.is_ascii_lowercase()));
            prop_assert!(!key.chars().any(|c| (0xFF01..=0xFF5E).contains(&(c as u32))));
        }

        #[test]
        fn full_width_and_separators_do_not_change_the_key(
            plate in "[A-Z0-9]{2,7}", sep in prop::sample::select(SEPARATORS.to_vec()),
        ) {
            let full_width: String = plate
                .chars()
                .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap_or(c))
                .collect();
            let spaced: String = plate.chars().flat_map(|c| [c, sep]).collect();
            prop_assert_eq!(normalize(&full_width), plate.clone());
            prop_assert_eq!(normalize(&spaced), plate.clone());
            prop_assert_eq!(normalize(&plate.to_lowercase()), plate);
        }
    }
}
