//! PostgreSQL's write-ahead log as an archive sees it: file names, positions (LSNs) and the
//! order of segments.
//!
//! A segment's name is 24 hex digits: the timeline, then the segment number split in two
//! halves of 32 bits (the "log" and the "seg" part). With a segment size of `S` bytes, the
//! second half counts from 0 to `2^32 / S - 1` before the first half moves on. Besides
//! segments, an archive holds timeline history files (`00000002.history`), backup history
//! files (`…000028.backup`) and, from a streaming receiver, partial segments (`….partial`).

use std::fmt;

/// The default segment size (`--wal-segsize` of `initdb`).
pub const DEFAULT_SEGMENT_SIZE: u64 = 16 * 1024 * 1024;

/// A position in the write-ahead log, written `X/Y` (two hex halves of 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl Lsn {
    /// Parses `16/B374D848`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let (hi, lo) = text.trim().split_once('/')?;
        let valid = |s: &str| !s.is_empty() && s.len() <= 8;
        if !valid(hi) || !valid(lo) {
            return None;
        }
        let hi = u64::from_str_radix(hi, 16).ok()?;
        let lo = u64::from_str_radix(lo, 16).ok()?;
        Some(Self((hi << 32) | lo))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// What a file in the archive is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalFile {
    /// A whole segment: timeline and segment number.
    Segment { timeline: u32, number: u64 },
    /// The unfinished tail of a segment, from a streaming receiver.
    Partial { timeline: u32, number: u64 },
    /// `TTTTTTTT.history`: how a timeline branched from its parent.
    History { timeline: u32 },
    /// `<segment>.<offset>.backup`: the label of a finished base backup.
    BackupLabel,
}

impl WalFile {
    /// What `name` is, or `None` for a name PostgreSQL never archives.
    #[must_use]
    pub fn parse(name: &str, segment_size: u64) -> Option<Self> {
        let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
        if let Some(tl) = name.strip_suffix(".history") {
            return (tl.len() == 8 && hex(tl)).then(|| Self::History {
                timeline: u32::from_str_radix(tl, 16).unwrap_or(0),
            });
        }
        let (seg, rest) = name.split_at_checked(24)?;
        if !hex(seg) {
            return None;
        }
        let (timeline, number) = parse_segment(seg, segment_size)?;
        match rest {
            "" => Some(Self::Segment { timeline, number }),
            ".partial" => Some(Self::Partial { timeline, number }),
            r if r.len() == 16 && r.starts_with('.') && r.ends_with(".backup") && hex(&r[1..9]) => {
                Some(Self::BackupLabel)
            }
            _ => None,
        }
    }
}

fn parse_segment(name: &str, segment_size: u64) -> Option<(u32, u64)> {
    let timeline = u32::from_str_radix(&name[..8], 16).ok()?;
    let log = u64::from_str_radix(&name[8..16], 16).ok()?;
    let seg = u64::from_str_radix(&name[16..24], 16).ok()?;
    let per_log = segments_per_log(segment_size);
    (seg < per_log).then_some((timeline, log * per_log + seg))
}

const fn segments_per_log(segment_size: u64) -> u64 {
    0x1_0000_0000 / segment_size
}

/// The name of segment `number` on `timeline`.
#[must_use]
pub fn segment_name(timeline: u32, number: u64, segment_size: u64) -> String {
    let per_log = segments_per_log(segment_size);
    format!(
        "{timeline:08X}{:08X}{:08X}",
        number / per_log,
        number % per_log
    )
}

/// The segment holding `lsn`.
#[must_use]
pub const fn segment_of(lsn: Lsn, segment_size: u64) -> u64 {
    lsn.0 / segment_size
}

/// The position just past the end of segment `number`.
#[must_use]
pub const fn segment_end(number: u64, segment_size: u64) -> Lsn {
    Lsn((number + 1) * segment_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = DEFAULT_SEGMENT_SIZE;

    #[test]
    fn lsns_parse_and_print_as_postgres_writes_them() {
        let lsn = Lsn::parse("16/B374D848").unwrap();
        assert_eq!(lsn.0, 0x16_B374_D848);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert_eq!(Lsn::parse("0/0"), Some(Lsn(0)));
        for bad in ["", "16", "16/", "/1", "G/1", "123456789/0"] {
            assert_eq!(Lsn::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn segment_names_round_trip_and_roll_over_at_the_log_boundary() {
        let name = "00000001000000000000000A";
        assert_eq!(
            WalFile::parse(name, S),
            Some(WalFile::Segment {
                timeline: 1,
                number: 10
            })
        );
        assert_eq!(segment_name(1, 10, S), name);
        // 256 segments of 16 MiB per log: segment 0xFF is followed by log 1, segment 0.
        assert_eq!(segment_name(3, 0xFF, S), "0000000300000000000000FF");
        assert_eq!(segment_name(3, 0x100, S), "000000030000000100000000");
        // With 64 MiB segments the second half stops at 0x3F.
        assert_eq!(segment_name(1, 0x40, 64 << 20), "000000010000000100000000");
        assert_eq!(WalFile::parse("000000010000000000000100", S), None);
    }

    #[test]
    fn other_archive_files_are_told_apart() {
        assert_eq!(
            WalFile::parse("00000002.history", S),
            Some(WalFile::History { timeline: 2 })
        );
        assert_eq!(
            WalFile::parse("000000010000000000000002.00000028.backup", S),
            Some(WalFile::BackupLabel)
        );
        assert_eq!(
            WalFile::parse("000000010000000000000002.partial", S),
            Some(WalFile::Partial {
                timeline: 1,
                number: 2
            })
        );
        for bad in [
            "pg_wal",
            "0000000100000000000000",
            "00000001000000000000000G",
            "x.history",
        ] {
            assert_eq!(WalFile::parse(bad, S), None, "{bad}");
        }
    }

    #[test]
    fn an_lsn_lies_in_one_segment() {
        let lsn = Lsn::parse("0/2000028").unwrap();
        assert_eq!(segment_of(lsn, S), 2);
        assert_eq!(segment_end(2, S), Lsn::parse("0/3000000").unwrap());
    }
}
