//! When a new snapshot's size is out of line with the asset's previous ones.

/// How far a snapshot's size may stray from the average of the asset's previous snapshots, as
/// fractions of that average: smaller than `below` or larger than `above` is an anomaly (a dump
/// ten times smaller than usual is an incident, not a good day).
///
/// Always `0 < below < 1 < above`, both finite: [`AnomalyThresholds::new`] refuses anything
/// else, so the values compare as equal or not and `Eq` holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnomalyThresholds {
    below: f64,
    above: f64,
}

impl Eq for AnomalyThresholds {}

impl Default for AnomalyThresholds {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Which side of the thresholds a size fell on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeDeviation {
    /// Smaller than `below` times the average.
    Smaller,
    /// Larger than `above` times the average.
    Larger,
}

impl AnomalyThresholds {
    /// Half or double the average.
    pub const DEFAULT: Self = Self {
        below: 0.5,
        above: 2.0,
    };

    /// `None` unless `0 < below < 1 < above` and both are finite.
    #[must_use]
    pub fn new(below: f64, above: f64) -> Option<Self> {
        (Self::valid_below(below) && Self::valid_above(above)).then_some(Self { below, above })
    }

    /// True when `below` may be a lower threshold: finite, more than 0 and less than 1.
    #[must_use]
    pub fn valid_below(below: f64) -> bool {
        below.is_finite() && below > 0.0 && below < 1.0
    }

    /// True when `above` may be an upper threshold: finite and more than 1.
    #[must_use]
    pub fn valid_above(above: f64) -> bool {
        above.is_finite() && above > 1.0
    }

    #[must_use]
    pub const fn below(&self) -> f64 {
        self.below
    }

    #[must_use]
    pub const fn above(&self) -> f64 {
        self.above
    }

    /// Where `size` stands against `average`; `None` within the thresholds, and when the
    /// average is 0 (no ratio to judge by).
    #[must_use]
    pub fn judge(&self, size: u64, average: f64) -> Option<SizeDeviation> {
        if average <= 0.0 || !average.is_finite() {
            return None;
        }
        let ratio = size as f64 / average;
        if ratio < self.below {
            Some(SizeDeviation::Smaller)
        } else if ratio > self.above {
            Some(SizeDeviation::Larger)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fractions_around_one_are_thresholds() {
        assert!(AnomalyThresholds::new(0.5, 2.0).is_some());
        assert!(AnomalyThresholds::new(0.01, 1.01).is_some());
        for (below, above) in [
            (0.0, 2.0),
            (1.0, 2.0),
            (-0.5, 2.0),
            (0.5, 1.0),
            (0.5, 0.9),
            (f64::NAN, 2.0),
            (0.5, f64::INFINITY),
        ] {
            assert!(
                AnomalyThresholds::new(below, above).is_none(),
                "{below} {above}"
            );
        }
    }

    #[test]
    fn judges_against_the_average() {
        let t = AnomalyThresholds::DEFAULT;
        assert_eq!(t.judge(100, 1000.0), Some(SizeDeviation::Smaller));
        assert_eq!(t.judge(499, 1000.0), Some(SizeDeviation::Smaller));
        assert_eq!(t.judge(500, 1000.0), None);
        assert_eq!(t.judge(2000, 1000.0), None);
        assert_eq!(t.judge(2001, 1000.0), Some(SizeDeviation::Larger));
        assert_eq!(t.judge(0, 0.0), None);
        assert_eq!(t.judge(10, 0.0), None);
        let lenient = AnomalyThresholds::new(0.05, 2.0).unwrap();
        assert_eq!(lenient.judge(100, 1000.0), None);
    }
}
