//! Sizes as plans write them (`"1KB"`, `"1.5 GiB"`) and the absolute bounds an asset's
//! snapshot must stay within.

use crate::SizeDeviation;

/// Reads `512`, `512B`, `10KB`, `1.5 GB`, `2TiB`: decimal units (KB = 1000 bytes) and binary
/// ones (KiB = 1024 bytes), in any case.
///
/// # Errors
/// Text that is not a number with one of these units; the message says what was expected.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || format!("{text:?} is not a size (write e.g. \"500MB\" or \"10GiB\")");
    let number: f64 = number.parse().map_err(|_| bad())?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "mb" | "m" => 1_000_000,
        "gb" | "g" => 1_000_000_000,
        "tb" | "t" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    #[allow(clippy::cast_precision_loss)]
    let bytes = number * factor as f64;
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(bytes.round() as u64)
}

/// `size = { min = "1KB", max = "50GB" }`: what a snapshot's size must lie within.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SizeBounds {
    pub min: Option<u64>,
    pub max: Option<u64>,
}

impl SizeBounds {
    /// The side `size` crossed and the bound it crossed; `None` within the bounds.
    #[must_use]
    pub fn judge(&self, size: u64) -> Option<(SizeDeviation, u64)> {
        match (self.min, self.max) {
            (Some(min), _) if size < min => Some((SizeDeviation::Smaller, min)),
            (_, Some(max)) if size > max => Some((SizeDeviation::Larger, max)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_decimal_and_binary_units() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("10KB"), Ok(10_000));
        assert_eq!(parse_size("1.5 GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("2kib"), Ok(2048));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert!(parse_size("ten GB").is_err());
        assert!(
            parse_size("10 parsecs")
                .unwrap_err()
                .contains("\"10 parsecs\"")
        );
        assert!(parse_size("").is_err());
    }

    #[test]
    fn bounds_say_which_side_was_crossed() {
        let b = SizeBounds {
            min: Some(1000),
            max: Some(5000),
        };
        assert_eq!(b.judge(999), Some((SizeDeviation::Smaller, 1000)));
        assert_eq!(b.judge(1000), None);
        assert_eq!(b.judge(5000), None);
        assert_eq!(b.judge(5001), Some((SizeDeviation::Larger, 5000)));
        assert_eq!(SizeBounds::default().judge(0), None);
    }
}
