//! "Did you mean ...?" for unknown keys and values.

/// The candidate closest to `unknown`, when it is close enough to be a likely typo.
pub(crate) fn closest<'a, I>(unknown: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    // Jaro-Winkler favours shared prefixes, which is how key typos usually look
    // (`dayly`/`daily`, `pasword-env`/`password-env`); 0.8 is the threshold clap uses. It is
    // harsh on very short words, so one edit away (`rn`/`run`) also counts as close.
    let lower = unknown.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            let c_lower = c.to_ascii_lowercase();
            let mut score = strsim::jaro_winkler(&lower, &c_lower);
            if strsim::osa_distance(&lower, &c_lower) <= 1 && c.len() > 2 {
                score = score.max(0.85);
            }
            (score, c)
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `a, b, c` for a hint line.
pub(crate) fn list<'a, I>(items: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    items.into_iter().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let keys = [
            "last", "hourly", "daily", "weekly", "monthly", "yearly", "within",
        ];
        assert_eq!(closest("dayly", keys), Some("daily"));
        assert_eq!(closest("montly", keys), Some("monthly"));
        assert_eq!(closest("Daily", keys), Some("daily"));
        assert_eq!(closest("frobnicate", keys), None);
        assert_eq!(closest("rn", ["run", "restore", "check"]), Some("run"));
        assert_eq!(closest("x", ["run", "restore", "check"]), None);
        assert_eq!(
            closest("pasword-env", ["password-env", "password-file"]),
            Some("password-env")
        );
    }
}
