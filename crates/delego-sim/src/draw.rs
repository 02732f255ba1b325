//! Random draws: a generator per arrival stream and the duration distributions.

use std::f64::consts::TAU;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The generator of one stream: its key is the seed followed by the stream's index, so
/// streams never share a sequence and adding a stream leaves the others' draws unchanged.
pub(crate) fn stream_rng(seed: u64, stream: usize) -> StdRng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(stream as u64).to_le_bytes());
    StdRng::from_seed(key)
}

/// A uniform draw in (0, 1], so its logarithm is finite.
fn unit(rng: &mut StdRng) -> f64 {
    1.0 - rng.random::<f64>()
}

/// A draw of Exp(1).
pub(crate) fn standard_exponential(rng: &mut StdRng) -> f64 {
    -unit(rng).ln()
}

/// A duration distribution with its parameters worked out, in seconds.
#[derive(Clone, Debug)]
pub(crate) enum Draw {
    Exponential {
        mean: f64,
    },
    /// `exp(mu + sigma·Z)` with `Z` standard normal.
    Lognormal {
        mu: f64,
        sigma: f64,
    },
}

impl Draw {
    /// The lognormal with this mean and standard deviation.
    pub(crate) fn lognormal(mean: f64, sd: f64) -> Self {
        let sigma2 = (1.0 + (sd / mean).powi(2)).ln();
        Draw::Lognormal {
            mu: mean.ln() - sigma2 / 2.0,
            sigma: sigma2.sqrt(),
        }
    }

    /// One draw, in seconds.
    pub(crate) fn seconds(&self, rng: &mut StdRng) -> f64 {
        match *self {
            Draw::Exponential { mean } => mean * standard_exponential(rng),
            Draw::Lognormal { mu, sigma } => {
                // Box–Muller: one standard normal from two uniforms.
                let z = (-2.0 * unit(rng).ln()).sqrt() * (TAU * unit(rng)).cos();
                (mu + sigma * z).exp()
            }
        }
    }
}

/// Seconds as whole nanoseconds; a draw too large for the clock saturates, which puts its
/// event past the end of any run.
pub(crate) fn nanos(seconds: f64) -> i64 {
    (seconds * 1e9).round() as i64
}

/// Nanoseconds as seconds.
pub(crate) fn seconds(nanos: i64) -> f64 {
    nanos as f64 / 1e9
}
