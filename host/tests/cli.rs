//! The CLI as a new user meets it on a machine without a debug probe: real boards say what
//! they need at once, and every catalog board's firmware builds.

use std::process::Command;
use std::time::{Duration, Instant};

fn patchbench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_patchbench")).args(args).output().unwrap()
}

#[test]
fn a_real_board_without_a_probe_fails_at_once_naming_board_chip_and_the_probes_command() {
    if !patchbench::deploy::probe::list().is_empty() {
        eprintln!("SKIPPED: a debug probe is attached to this machine");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let start = Instant::now();
    let run = patchbench(&["run", "--board", "stm32f746g-disco", "--model", "tiny", "--out", out]);
    assert!(!run.status.success());
    let e = String::from_utf8_lossy(&run.stderr);
    for part in ["stm32f746g-disco", "STM32F746NG", "patchbench probes"] {
        assert!(e.contains(part), "{part} in {e}");
    }
    assert!(start.elapsed() < Duration::from_secs(20), "before anything is built");
    assert!(!dir.path().join("runs.csv").exists(), "no row for a run that never started");

    let spec = dir.path().join("boards.toml");
    std::fs::write(&spec, "name = \"b\"\nmodels = [\"tiny\"]\nboards = [\"qemu-m4\", \"nucleo-f767zi\"]\n").unwrap();
    let sweep = patchbench(&["sweep", spec.to_str().unwrap(), "--out", out]);
    assert!(!sweep.status.success());
    let e = String::from_utf8_lossy(&sweep.stderr);
    assert!(e.contains("nucleo-f767zi") && e.contains("STM32F767ZI") && e.contains("patchbench probes"), "{e}");
    assert!(!dir.path().join("runs.csv").exists(), "nothing measured, not even the QEMU board");

    let bad = patchbench(&["run", "--board", "stm32f746g-disco", "--model", "tiny", "--probe", "stlink"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("VID:PID"));
    let probes = patchbench(&["probes"]);
    assert!(probes.status.success());
    assert!(String::from_utf8_lossy(&probes.stdout).contains("no debug probe is attached"));
}

#[test]
fn every_catalog_board_builds_its_firmware() {
    let boards = patchbench::boards::all().unwrap();
    // Two builds at a time: each `build` leases a build tree of its own.
    std::thread::scope(|s| {
        for half in boards.chunks(boards.len().div_ceil(2)) {
            s.spawn(move || {
                for board in half {
                    let out = patchbench(&[
                        "build",
                        "--board",
                        &board.name,
                        "--model",
                        "tiny",
                        "--split",
                        "4",
                        "--patches",
                        "2x2",
                    ]);
                    let text = String::from_utf8_lossy(&out.stdout);
                    assert!(out.status.success(), "{}: {}", board.name, String::from_utf8_lossy(&out.stderr));
                    assert!(text.contains("flash ") && text.contains(&board.name), "{}: {text}", board.name);
                }
            });
        }
    });
}

#[test]
fn a_users_catalog_file_adds_a_board_every_command_sees() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mine.toml");
    std::fs::write(
        &file,
        "[[board]]\nname = \"qemu-m4-96k\"\ndescription = \"mps2-an386 with 96 KiB\"\nqemu_machine = \"mps2-an386\"\n\
         target = \"thumbv7em-none-eabihf\"\ncpu = \"cortex-m4\"\nclock_hz = 25_000_000\n\
         flash = { origin = 0x0, length = 0x40_0000 }\nram = { origin = 0x2000_0000, length = 0x1_8000 }\ncycle_source = \"qemu-icount\"\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let boards = patchbench(&["--boards", file, "boards"]);
    assert!(String::from_utf8_lossy(&boards.stdout).contains("qemu-m4-96k"));
    // The environment variable does the same; MobileNetV2 does not fit 96 KiB layer-wise.
    let out = Command::new(env!("CARGO_BIN_EXE_patchbench"))
        .args(["build", "--board", "qemu-m4-96k", "--model", "mbv2-w0.35-r144"])
        .env("PATCHBENCH_BOARDS", file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("does-not-fit: RAM needs"));
}
