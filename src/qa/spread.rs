//! Calibration (D17, the joint review with the client): how far apart several evaluators'
//! scores of the same call are, per criterion and for the total.

/// The spread of some scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// How many scores.
    pub n: usize,
    /// The lowest.
    pub min: f64,
    /// The highest.
    pub max: f64,
    /// The mean.
    pub mean: f64,
    /// The population standard deviation (the evaluators present are the whole panel).
    pub std_dev: f64,
}

/// The spread of `values`; `None` when there are none.
pub fn spread(values: &[f64]) -> Option<Spread> {
    if values.is_empty() {
        return None;
    }
    let n = values.len();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
    Some(Spread {
        n,
        min,
        max,
        mean,
        std_dev: var.sqrt(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_scores() {
        assert_eq!(spread(&[]), None);
        let one = spread(&[4.0]).unwrap();
        assert_eq!(
            (one.n, one.min, one.max, one.mean, one.std_dev),
            (1, 4.0, 4.0, 4.0, 0.0)
        );
        let s = spread(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!(s.n, 8);
        assert_eq!((s.min, s.max, s.mean), (2.0, 9.0, 5.0));
        assert!((s.std_dev - 2.0).abs() < 1e-12, "{s:?}");
        let two = spread(&[3.0, 5.0]).unwrap();
        assert_eq!((two.mean, two.std_dev), (4.0, 1.0));
    }
}
