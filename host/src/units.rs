//! Typed quantities of the CLI, specs and reports: RAM sizes and deadlines.

use harness::record::CycleSource;
use serde::{Deserialize, Serialize};

/// A number of bytes, written `65536`, `64KiB`, `64K` (= KiB, as RAM sizes are quoted), or
/// `1MiB`; `kB`/`MB` are decimal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub u64);

impl std::str::FromStr for Bytes {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        // parse-size reads `K`/`M` as decimal; on microcontrollers a "64K" RAM is 64 KiB.
        let binary = t.strip_suffix(['K', 'M', 'G']).map(|n| format!("{n}{}i", &t[n.len()..]));
        let text = binary.as_deref().unwrap_or(t);
        parse_size::parse_size(text)
            .map(Bytes)
            .map_err(|e| format!("`{s}` is not a size ({e}): write e.g. 65536, 64KiB, 64K or 1MiB"))
    }
}

impl std::fmt::Display for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.0;
        if b >= 1 << 20 && b.is_multiple_of(1 << 20) {
            write!(f, "{}MiB", b >> 20)
        } else if b >= 1024 && b.is_multiple_of(1024) {
            write!(f, "{}KiB", b >> 10)
        } else if b >= 1024 {
            write!(f, "{:.1}KiB", b as f64 / 1024.0)
        } else {
            write!(f, "{b}B")
        }
    }
}

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Bytes(n)),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A deadline: a time (`50ms`, `2s`, `800us`) or a count of cycles (instructions on QEMU)
/// such as `20M`, `1.5G` or `20000000`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Deadline {
    /// Seconds.
    Time(f64),
    /// Cycles (instructions on QEMU).
    Count(f64),
}

impl std::str::FromStr for Deadline {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let bad = || format!("`{s}` is not a deadline: write a time (50ms, 2s, 800us) or a count (20M cycles, 1.5G)");
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let v: f64 = num.parse().map_err(|_| bad())?;
        if !(v.is_finite() && v > 0.0) {
            return Err(bad());
        }
        Ok(match unit.trim() {
            "s" => Deadline::Time(v),
            "ms" => Deadline::Time(v * 1e-3),
            "us" | "µs" => Deadline::Time(v * 1e-6),
            "ns" => Deadline::Time(v * 1e-9),
            "" => Deadline::Count(v),
            "K" | "k" => Deadline::Count(v * 1e3),
            "M" => Deadline::Count(v * 1e6),
            "G" => Deadline::Count(v * 1e9),
            _ => return Err(bad()),
        })
    }
}

impl Deadline {
    /// The deadline in counts of `source` on a core clocked at `clock_hz`. Under QEMU's
    /// `-icount shift=0` one instruction takes 1 ns of virtual time, so a time becomes
    /// instructions at 1 GHz; on boards, cycles at the core clock.
    pub fn counts(self, source: CycleSource, clock_hz: u32) -> f64 {
        match self {
            Deadline::Count(c) => c,
            Deadline::Time(t) if source.is_cycles() => t * f64::from(clock_hz),
            Deadline::Time(t) => t * 1e9,
        }
    }
}

/// `1234567` -> `1.23 M`, for axes and tables of counts.
pub fn si(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.2} G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_ram_is_quoted() {
        for (s, b) in [("65536", 65536), ("64KiB", 65536), ("64K", 65536), ("1MiB", 1 << 20), ("2M", 2 << 20)] {
            assert_eq!(s.parse::<Bytes>().unwrap(), Bytes(b), "{s}");
        }
        assert_eq!("64kB".parse::<Bytes>().unwrap(), Bytes(64_000));
        assert!("lots".parse::<Bytes>().unwrap_err().contains("64KiB"));
        assert_eq!(Bytes(65536).to_string(), "64KiB");
        assert_eq!(Bytes(1536).to_string(), "1.5KiB");
    }

    #[test]
    fn deadlines_are_times_or_counts() {
        assert_eq!("50ms".parse::<Deadline>().unwrap(), Deadline::Time(0.05));
        assert_eq!("20M".parse::<Deadline>().unwrap(), Deadline::Count(20e6));
        assert!("fast".parse::<Deadline>().is_err());
        assert!("-3ms".parse::<Deadline>().is_err());
        let d = Deadline::Time(0.05);
        assert_eq!(d.counts(CycleSource::QemuIcount, 25_000_000), 50e6, "1 ns per instruction");
        assert_eq!(d.counts(CycleSource::Dwt, 216_000_000), 10.8e6);
    }
}
