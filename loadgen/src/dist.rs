//! Random numbers and the distributions the caller and operator models draw from.
//!
//! The generator is our own xoshiro256** seeded through splitmix64: a fixed seed gives the
//! same simulation on every machine and every version of every dependency, which the
//! agreement tests rely on.

use std::fmt;
use std::str::FromStr;

/// A small, fast, seedable pseudo-random generator (xoshiro256**, Blackman and Vigna 2018).
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose whole sequence is fixed by `seed`.
    pub fn seeded(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in (0, 1]: never 0, so `ln` is always finite.
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal variate (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.unit(), self.unit());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// An index into `weights`, chosen with probability proportional to its weight.
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x <= *w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }
}

/// A distribution of durations in seconds.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Dist {
    /// Always this value.
    Const {
        /// The value.
        value: f64,
    },
    /// Exponential with this mean.
    Exp {
        /// The mean.
        mean: f64,
    },
    /// Log-normal with this mean and standard deviation (of the variable, not its log).
    LogNormal {
        /// The mean.
        mean: f64,
        /// The standard deviation.
        sd: f64,
    },
    /// Never (infinite): a caller who never hangs up.
    Never,
}

impl Dist {
    /// One draw, in seconds.
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        match *self {
            Dist::Const { value } => value,
            Dist::Exp { mean } => -mean * rng.unit().ln(),
            Dist::LogNormal { mean, sd } => {
                let var = (1.0 + (sd * sd) / (mean * mean)).ln();
                let mu = mean.ln() - var / 2.0;
                (mu + var.sqrt() * rng.normal()).exp()
            }
            Dist::Never => f64::INFINITY,
        }
    }

    /// The mean, in seconds.
    #[cfg(test)]
    pub fn mean(&self) -> f64 {
        match *self {
            Dist::Const { value } => value,
            Dist::Exp { mean } | Dist::LogNormal { mean, .. } => mean,
            Dist::Never => f64::INFINITY,
        }
    }
}

/// A distribution written on the command line could not be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "distribution {0:?} not understood; write const:SECS, exp:MEAN, lognormal:MEAN,SD or never"
)]
pub struct BadDist(String);

impl FromStr for Dist {
    type Err = BadDist;

    /// `const:3`, `exp:120`, `lognormal:180,90`, `never`.
    fn from_str(s: &str) -> Result<Dist, BadDist> {
        let bad = || BadDist(s.to_string());
        if s == "never" {
            return Ok(Dist::Never);
        }
        let (kind, args) = s.split_once(':').ok_or_else(bad)?;
        let nums: Vec<f64> = args
            .split(',')
            .map(|a| a.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        if nums.iter().any(|n| !n.is_finite() || *n < 0.0) {
            return Err(bad());
        }
        match (kind, nums.as_slice()) {
            ("const", [v]) => Ok(Dist::Const { value: *v }),
            ("exp", [m]) if *m > 0.0 => Ok(Dist::Exp { mean: *m }),
            ("lognormal", [m, sd]) if *m > 0.0 => Ok(Dist::LogNormal { mean: *m, sd: *sd }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Dist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dist::Const { value } => write!(f, "const:{value}"),
            Dist::Exp { mean } => write!(f, "exp:{mean}"),
            Dist::LogNormal { mean, sd } => write!(f, "lognormal:{mean},{sd}"),
            Dist::Never => write!(f, "never"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for s in ["const:3", "exp:120", "lognormal:180,90", "never"] {
            assert_eq!(s.parse::<Dist>().unwrap().to_string(), s);
        }
        assert!("exp:-1".parse::<Dist>().is_err());
        assert!("gamma:1".parse::<Dist>().is_err());
    }

    #[test]
    fn sample_means_match() {
        let mut rng = Rng::seeded(1);
        for d in [
            Dist::Exp { mean: 120.0 },
            Dist::LogNormal {
                mean: 180.0,
                sd: 90.0,
            },
        ] {
            let n = 200_000;
            let m: f64 = (0..n).map(|_| d.sample(&mut rng)).sum::<f64>() / n as f64;
            assert!((m - d.mean()).abs() / d.mean() < 0.01, "{d}: {m}");
        }
    }

    #[test]
    fn same_seed_same_sequence() {
        let (mut a, mut b) = (Rng::seeded(7), Rng::seeded(7));
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
    }
}
