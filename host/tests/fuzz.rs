//! Bad input never panics: a mutation fuzzer on stable Rust for the three parsers that take
//! outside bytes (the TFLite importer, the sweep spec parser, the device record decoder),
//! and the fixed bad files of `tests/corpus/`, each of which must be refused with a message.
//!
//! Each target runs for `PATCHBENCH_FUZZ_SECONDS` (default 3; CI sets more): inputs from a
//! pool are mutated (bit flips, random bytes, inserted and deleted ranges, truncation, splices
//! of two inputs), every input runs under `catch_unwind`, and an input that panics is written
//! to `target/fuzz-crash-<target>.bin` before the test fails. Stable Rust has no coverage
//! counters to steer by, so the outcome steers instead: an input whose outcome (the error
//! message with its numbers blanked, or what was accepted) is new joins the pool, so the
//! fuzzer climbs past the first check that refuses a mutant into the checks behind it.

use harness::record::{encode, CycleSource, Record, MAX_FRAME, PROTOCOL_VERSION};
use patchbench::collect::Collector;
use patchbench::sweep::Spec;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn budget() -> Duration {
    let s = std::env::var("PATCHBENCH_FUZZ_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3.0f64);
    Duration::from_secs_f64(s)
}

fn mutate(rng: &mut rand_chacha::ChaCha8Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.gen_range(0..seeds.len())].clone();
    for _ in 0..rng.gen_range(1..8) {
        let len = v.len();
        match rng.gen_range(0..6) {
            0 if len > 0 => {
                let i = rng.gen_range(0..len);
                v[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.gen_range(0..len);
                v[i] = *[0u8, 0xff, 0x7f, 0x80, rng.gen()].get(rng.gen_range(0..5)).unwrap();
            }
            2 => {
                let at = rng.gen_range(0..=len);
                let n = rng.gen_range(1..64);
                let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
                v.splice(at..at, bytes);
            }
            3 if len > 1 => {
                let a = rng.gen_range(0..len);
                let b = (a + rng.gen_range(1..64)).min(len);
                v.drain(a..b);
            }
            4 if len > 0 => v.truncate(rng.gen_range(0..len)),
            _ => {
                let other = &seeds[rng.gen_range(0..seeds.len())];
                if !other.is_empty() {
                    let from = rng.gen_range(0..other.len());
                    let at = rng.gen_range(0..=v.len());
                    v.splice(at..at, other[from..].iter().copied().take(256));
                }
            }
        }
    }
    v
}

/// What an input led to, for the pool: the message without what varies with the bytes
/// (numbers, buffer offsets, quoted names and values, quoted source lines), so that one check failing
/// elsewhere in the file is not a new outcome.
fn outcome(text: &str) -> String {
    let mut out = String::new();
    let mut skip_until = None;
    for line in text.lines().filter(|l| !l.contains('|')) {
        for c in line.chars() {
            if let Some(end) = skip_until {
                if c == end {
                    skip_until = None;
                    out.push(c);
                }
                continue;
            }
            match c {
                '0'..='9' if out.ends_with('#') => {}
                '0'..='9' => out.push('#'),
                '`' | '"' | '@' => {
                    out.push(c);
                    skip_until = Some(if c == '@' { '>' } else { c });
                }
                _ => out.push(c),
            }
        }
        out.push('\n');
    }
    out.truncate(out.floor_char_boundary(120));
    out
}

/// Runs `target` on mutants of the pool (first `seeds`) for the time budget; an input with a
/// new outcome joins the pool. Returns the executions.
fn fuzz(name: &str, seeds: &[Vec<u8>], target: impl Fn(&[u8]) -> String) -> u64 {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed ^ name.len() as u64);
    let mut pool = seeds.to_vec();
    let mut seen = std::collections::HashSet::new();
    let start = Instant::now();
    let mut runs = 0u64;
    while start.elapsed() < budget() {
        let input = mutate(&mut rng, &pool);
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(&input))) {
            Ok(what) => {
                if seen.insert(outcome(&what)) && pool.len() < 4096 {
                    pool.push(input);
                }
            }
            Err(_) => {
                let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../target/fuzz-crash-{name}.bin"));
                std::fs::write(&path, &input).unwrap();
                panic!("{name}: an input panicked; it is in {}", path.display());
            }
        }
        runs += 1;
    }
    eprintln!(
        "fuzz {name}: {runs} inputs in {:.1} s, {} distinct outcomes, no panic",
        start.elapsed().as_secs_f64(),
        seen.len()
    );
    runs
}

fn corpus(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "{}", dir.display());
    files
}

#[test]
fn the_importer_refuses_bad_files_and_never_panics() {
    for f in corpus("tflite") {
        let bytes = std::fs::read(&f).unwrap();
        let e = patchbench::tflite::import(&bytes, "bad").err().unwrap_or_else(|| panic!("{} imported", f.display()));
        assert!(!e.to_string().is_empty());
    }
    let seeds: Vec<Vec<u8>> = (0..8).map(patchbench::tflite::synth::random_cnn).collect();
    let runs = fuzz("importer", &seeds, |b| match patchbench::tflite::import(b, "fuzz") {
        // What imports must also plan.
        Ok(m) => match harness::plan::plan(&m.as_model(), harness::plan::PatchConfig::LAYERWISE) {
            Ok(p) => format!("planned {} ops", p.ops.len()),
            Err(e) => format!("plan: {e:?}"),
        },
        Err(e) => format!("{e:#}"),
    });
    assert!(runs > 0);
}

#[test]
fn the_spec_parser_refuses_bad_specs_and_never_panics() {
    let at = Path::new("fuzz.toml");
    for f in corpus("spec") {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let refused = Spec::parse(&text, &f).and_then(|s| s.jobs().map(drop));
        let e = refused.err().unwrap_or_else(|| panic!("{} was accepted", f.display()));
        assert!(
            e.to_string().contains(&f.display().to_string()) || format!("{e:#}").contains("spec"),
            "{}: {e:#}",
            f.display()
        );
    }
    let seeds: Vec<Vec<u8>> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    fuzz("spec", &seeds, |b| match Spec::parse(&String::from_utf8_lossy(b), at) {
        Ok(spec) => {
            let _ = spec.configs();
            format!("accepted, {} configs", spec.job_count().min(2))
        }
        Err(e) => format!("{e:#}"),
    });
}

fn frame(r: &Record) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME];
    let n = encode(r, &mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn the_record_decoder_refuses_bad_streams_and_never_panics() {
    for f in corpus("records") {
        let bytes = std::fs::read(&f).unwrap();
        let mut c = Collector::default();
        let e = c.feed(&bytes).err().unwrap_or_else(|| panic!("{} was accepted", f.display()));
        assert!(!e.to_string().is_empty());
    }
    let header = Record::Header {
        protocol: PROTOCOL_VERSION,
        board: "qemu-m4",
        cpu: "cortex-m4",
        clock_hz: 25_000_000,
        cycle_source: CycleSource::QemuIcount,
        model: "m",
        model_hash: 1,
        schedule: "4@2x2",
        input_in: harness::plan::InputPlacement::Flash,
        caches: false,
        arena_planned: 100,
        repeats: 2,
    };
    let stream: Vec<u8> = [
        header,
        Record::Run { index: 0, cycles: 5, output_crc: 7 },
        Record::Watermark { arena_bytes: 1, stack_bytes: 2, stack_capacity: 3 },
        Record::Fault { pc: 1, lr: 2, cfsr: 3, hfsr: 4 },
        Record::End,
    ]
    .iter()
    .flat_map(frame)
    .collect();
    fuzz("records", &[stream], |b| {
        let mut c = Collector::default();
        // Fed in pieces, as RTT delivers them.
        for piece in b.chunks(7) {
            if let Err(e) = c.feed(piece) {
                return format!("{e:#}");
            }
        }
        let m = &c.measurement;
        format!("header {} runs {} end {}", m.header.is_some(), m.runs.len().min(2), m.ended)
    });
}
