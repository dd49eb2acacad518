//! Seeds and the independent random streams derived from them. Every random decision of a run
//! comes from `derive(seed, stream, index)`: removing one decision never reshuffles another.

use std::fmt;
use std::str::FromStr;

/// A run's seed. Printed and parsed as a plain decimal number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Seed(pub u64);

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Seed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.trim()
            .replace('_', "")
            .parse::<u64>()
            .map(Seed)
            .map_err(|_| format!("malformed seed '{s}': expected a decimal number such as 42"))
    }
}

/// The random streams of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum Stream {
    Profile = 1,
    Fault = 2,
    Gateway = 3,
    Chaos = 4,
    External = 5,
    Madsim = 6,
    /// The wider world's draws (clocks, torn writes, tampering actors, plugins), split by
    /// `WorldDraw`.
    World = 7,
}

/// What a `Stream::World` draw is for: keeps each kind of draw in its own index space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum WorldDraw {
    ClockOffset = 1,
    ClockSteps = 2,
    TornWrite = 3,
    TranscriptTamper = 4,
    PlantLock = 5,
    LockTamper = 6,
    Plugin = 7,
    OutsideDispose = 8,
    RacingEdit = 9,
    LockRace = 10,
}

/// A ChaCha generator for item `index` of stream `stream` of the run `seed`.
pub fn rng(seed: u64, stream: Stream, index: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    rand_chacha::ChaCha8Rng::seed_from_u64(derive(seed, stream, index))
}

/// A generator for one draw of the wider world: `what`, item `index` (below 2^48).
pub fn world_rng(seed: u64, what: WorldDraw, index: u64) -> rand_chacha::ChaCha8Rng {
    debug_assert!(index < 1 << 48, "world draw index out of its space");
    rng(seed, Stream::World, (what as u64) << 48 | index)
}

/// SplitMix64 finalizer: a well-mixed 64-bit function of its input.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of stream `stream`, item `index`, of the run `seed`.
pub fn derive(seed: u64, stream: Stream, index: u64) -> u64 {
    mix(mix(mix(seed) ^ stream as u64) ^ index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_print_and_parse_back() {
        for s in [0, 42, u64::MAX] {
            assert_eq!(Seed(s).to_string().parse::<Seed>(), Ok(Seed(s)));
        }
        assert_eq!("1_000".parse::<Seed>(), Ok(Seed(1000)));
        assert!("0x10".parse::<Seed>().unwrap_err().contains("malformed seed '0x10'"));
        assert!("-1".parse::<Seed>().is_err());
    }

    #[test]
    fn streams_are_independent() {
        assert_ne!(derive(1, Stream::Fault, 0), derive(1, Stream::Gateway, 0));
        assert_ne!(derive(1, Stream::Fault, 0), derive(2, Stream::Fault, 0));
        assert_eq!(derive(9, Stream::Chaos, 3), derive(9, Stream::Chaos, 3));
    }
}
