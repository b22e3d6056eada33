//! The benchmarks' deterministic generator (xorshift64*), so runs compare, and the plates
//! it draws. Included by path from benches that need nothing else of `common`.

use camtrail_model::misread::PLATE_ALPHABET;

/// xorshift64*.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `prefix` and five characters of the plate alphabet.
    pub fn plate(&mut self, prefix: &str) -> String {
        let alphabet: Vec<char> = PLATE_ALPHABET.chars().collect();
        let mut plate = prefix.to_string();
        for _ in 0..5 {
            plate.push(alphabet[(self.next() % alphabet.len() as u64) as usize]);
        }
        plate
    }
}
