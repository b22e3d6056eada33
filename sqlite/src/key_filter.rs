//! A Bloom filter over one part's subject keys, written into the part file when the part is
//! built and loaded with it, so that a read for keys a part does not hold costs a few hashes
//! instead of one B-tree probe per key. Misread-tolerant track search asks every part which
//! of ~200 misreadings of a plate exist; without the filter that was 200 index probes in each
//! of ~20 parts per track (measured: 9–10 ms of a 13 ms fuzzy track at 10M stored).
//!
//! Hand-written rather than a crate because the bits live on disk for as long as the part:
//! the bit positions must not change with a dependency's version (Bloom crates change their
//! layout between minor versions, and `std`'s `Hash` is not stable across Rust releases).
//! The format is named by [`FORMAT`]; a part whose filter has another format, or none (a part
//! built before filters existed), is read without one. `the_format_is_pinned` fails if the
//! positions ever change.

/// The format written with the bits: FNV-1a 64 of the key's UTF-8 bytes, two splitmix64
/// finalisations of it as `h1` and `h2 | 1`, positions `(h1 + i·h2) mod bits`, `i < hashes`.
pub(super) const FORMAT: &str = "bloom/fnv1a64-splitmix64/v1";

/// Bits per key: with [`HASHES`] hashes, a false-positive rate of about 0.8%.
const BITS_PER_KEY: usize = 10;
const HASHES: u32 = 7;

/// A Bloom filter: `may_contain` is true for every inserted key, and for a small share of
/// others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KeyFilter {
    words: Vec<u64>,
    hashes: u32,
}

impl KeyFilter {
    /// A filter holding `keys`.
    #[cfg(test)]
    fn build<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        let hashes: Vec<u64> = keys.into_iter().map(key_hash).collect();
        Self::from_key_hashes(&hashes)
    }

    /// A filter holding the keys whose [`key_hash`]es these are (one per key: the filter
    /// is sized by their number). Building from 8-byte hashes rather than the keys keeps a
    /// big merged part's build small.
    pub(super) fn from_key_hashes(key_hashes: &[u64]) -> Self {
        let words = (key_hashes.len().max(1) * BITS_PER_KEY).div_ceil(64);
        let mut filter = Self {
            words: vec![0; words],
            hashes: HASHES,
        };
        for &hash in key_hashes {
            for bit in filter.positions(hash) {
                filter.words[bit / 64] |= 1 << (bit % 64);
            }
        }
        filter
    }

    /// False only if `key` was certainly not inserted.
    pub(super) fn may_contain(&self, key: &str) -> bool {
        self.positions(key_hash(key))
            .all(|bit| self.words[bit / 64] & (1 << (bit % 64)) != 0)
    }

    fn positions(&self, key_hash: u64) -> impl Iterator<Item = usize> + use<> {
        let bits = (self.words.len() * 64) as u64;
        let h1 = splitmix64(key_hash);
        let h2 = splitmix64(h1) | 1;
        (0..u64::from(self.hashes))
            .map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % bits) as usize)
    }

    /// The bits as stored: little-endian 64-bit words.
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        self.words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// The filter stored as `bytes` with `hashes` hashes, or `None` if they cannot be one.
    pub(super) fn from_bytes(hashes: i64, bytes: &[u8]) -> Option<Self> {
        let hashes = u32::try_from(hashes)
            .ok()
            .filter(|h| (1..=32).contains(h))?;
        if bytes.is_empty() || !bytes.len().is_multiple_of(8) {
            return None;
        }
        let words = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        Some(Self { words, hashes })
    }

    pub(super) fn hashes(&self) -> u32 {
        self.hashes
    }
}

/// The hash a key enters the filter with: FNV-1a 64 of its UTF-8 bytes.
pub(super) fn key_hash(key: &str) -> u64 {
    fnv1a64(key.as_bytes())
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_inserted_key_is_found_also_after_a_round_trip(
            keys in proptest::collection::vec("[A-Z0-9粤京沪]{1,9}", 0..300)
        ) {
            let filter = KeyFilter::build(keys.iter().map(String::as_str));
            let stored = KeyFilter::from_bytes(i64::from(filter.hashes()), &filter.to_bytes());
            prop_assert_eq!(stored.as_ref(), Some(&filter));
            for key in &keys {
                prop_assert!(filter.may_contain(key));
            }
        }

        #[test]
        fn any_stored_bytes_either_load_or_are_refused(
            hashes in -3i64..40, bytes in proptest::collection::vec(any::<u8>(), 0..100)
        ) {
            if let Some(filter) = KeyFilter::from_bytes(hashes, &bytes) {
                prop_assert_eq!(filter.to_bytes(), bytes);
                let _ = filter.may_contain("粤B12310");
            }
        }
    }

    #[test]
    fn few_absent_keys_pass() {
        let keys: Vec<String> = (0..20_000).map(|i| format!("粤B{i:05}")).collect();
        let filter = KeyFilter::build(keys.iter().map(String::as_str));
        let passed = (0..20_000)
            .filter(|i| filter.may_contain(&format!("粤C{i:05}")))
            .count();
        // About 0.8% expected; 2% would mean the hashes are poorly spread.
        assert!(passed < 400, "{passed} of 20000 absent keys passed");
    }

    #[test]
    fn the_format_is_pinned() {
        // Filters outlive builds: these positions must never change under FORMAT's name.
        let filter = KeyFilter::build(["粤B12310"]);
        assert_eq!(filter.words.len(), 1);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c); // the published FNV-1a 64 vector
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf); // splitmix64's first output, seed 0
        assert_eq!(filter.to_bytes(), FILTER_OF_ONE_PLATE.to_le_bytes());
        // Three words (192 bits, not a power of two): pins the modulo and the wrapping
        // arithmetic as well.
        let keys: Vec<String> = (0..13).map(|i| format!("粤B1231{i}")).collect();
        let filter = KeyFilter::build(keys.iter().map(String::as_str));
        assert_eq!(filter.words.len(), 3);
        assert_eq!(fnv1a64(&filter.to_bytes()), FNV_OF_THIRTEEN_PLATES);
    }

    /// FNV-1a 64 of the bits of the 13-plate filter above, as the first build wrote them
    /// (checked against an independent Python implementation of the format).
    const FNV_OF_THIRTEEN_PLATES: u64 = 0x708f_443f_664e_22b7;

    /// The bits of `build(["粤B12310"])` as the first build wrote them.
    const FILTER_OF_ONE_PLATE: u64 = 0x2000_1041_0400_0208;
}
