//! Firmware images: generating the per-image sources, building them with cargo, and caching
//! the result under a hash of everything that goes into the image.

use crate::boards::Board;
use anyhow::{bail, Context};
use harness::kernels::KernelSet;
use harness::model::Model;
use harness::plan::Plan;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The deterministic input every image embeds (and the host checks against): seeded by the
/// model hash, [`crate::models::random_input`].
pub fn input_for(model: &Model) -> Vec<i8> {
    crate::models::random_input(model, model.hash())
}

/// The host workspace root (where `firmware/` and `target/` are).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

/// Where images, generated sources and firmware build trees live.
pub fn cache_root() -> PathBuf {
    std::env::var_os("PATCHBENCH_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/patchbench"))
}

/// The generated sources of one image, before they are written: `model.rs` (naming the blobs
/// it includes by [`BLOB_DIR`]), `weights.bin`, `input.bin`, `memory.x`.
pub struct Sources {
    model_rs: String,
    weights: Vec<u8>,
    input: Vec<u8>,
    memory_x: String,
}

/// Placeholder for the directory of the blobs in [`Sources::model_rs`].
const BLOB_DIR: &str = "@PATCHBENCH_GEN@";

impl Sources {
    /// The image key: a hash of everything that goes into the image (these sources, the
    /// board's target, the firmware and engine sources), independent of where it is built.
    pub fn key(&self, board: &Board) -> anyhow::Result<String> {
        let mut h = blake3::Hasher::new();
        h.update(source_hash()?.as_bytes());
        h.update(board.target.as_bytes());
        // The core tunes code generation (`-C target-cpu`).
        h.update(board.cpu.as_bytes());
        for part in [self.model_rs.as_bytes(), &self.weights, &self.input, self.memory_x.as_bytes()] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
        Ok(h.finalize().to_hex()[..24].to_string())
    }

    /// Writes the four files into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
        };
        write("weights.bin", &self.weights)?;
        write("input.bin", &self.input)?;
        let abs = dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?;
        // A Debug-quoted path, so that any character survives inside the string literal.
        let quoted = format!("{:?}", abs.to_string_lossy());
        let model_rs = self.model_rs.replace(&format!("\"{BLOB_DIR}/"), &format!("{}/", &quoted[..quoted.len() - 1]));
        write("model.rs", model_rs.as_bytes())?;
        write("memory.x", self.memory_x.as_bytes())?;
        Ok(())
    }
}

/// Writes the sources of one image into `dir`: `model.rs`, `weights.bin`, `input.bin`,
/// `memory.x`.
pub fn generate(model: &Model, plan: &Plan, board: &Board, repeats: u16, dir: &Path) -> anyhow::Result<()> {
    crate::runner::check_fits(model, plan, board).with_context(|| format!("{} on {}", model.name, board.name))?;
    sources(model, plan, board, repeats).write(dir)
}

/// A failure a test image commits on purpose (`patchbench run --inject`, hidden): each
/// checks how the host handles one kind of device failure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Inject {
    /// A normal image.
    #[default]
    None = 0,
    /// Executes an undefined instruction before the first run: a HardFault.
    Hardfault = 1,
    /// Never sends its end record.
    Hang = 2,
    /// Sends its run records with a corrupted byte.
    CorruptFrame = 3,
    /// Reports an output CRC that differs from the host's.
    WrongOutput = 4,
    /// Claims another record protocol version.
    OldProtocol = 5,
}

/// The sources of one image.
pub fn sources(model: &Model, plan: &Plan, board: &Board, repeats: u16) -> Sources {
    sources_with(model, plan, board, repeats, Inject::None, false)
}

/// [`sources`] of an image that fails as `inject` says, and with `profile`, profiles one
/// more run op by op.
pub fn sources_with(model: &Model, plan: &Plan, board: &Board, repeats: u16, inject: Inject, profile: bool) -> Sources {
    image_sources(model, plan, board, repeats, inject, profile, 0)
}

/// The sources of a kernel-check image: instead of inferences it runs `cases` cases of
/// `harness::kernels::check` of the board's kernel set and reports what it found (the model
/// only fills the header).
pub fn kernel_check_sources(model: &Model, plan: &Plan, board: &Board, cases: u64) -> Sources {
    image_sources(model, plan, board, 1, Inject::None, false, cases)
}

#[allow(clippy::too_many_arguments)]
fn image_sources(
    model: &Model,
    plan: &Plan,
    board: &Board,
    repeats: u16,
    inject: Inject,
    profile: bool,
    check_cases: u64,
) -> Sources {
    // The model's identity and input, which the host checks against, are the imported
    // model's; the image's kernel set then packs some layers' constants at build time.
    let (hash, input_data) = (model.hash(), input_for(model));
    let packed = match board.kernels() {
        KernelSet::Reference => None,
        KernelSet::Portable => Some(harness::kernels::packed::<harness::kernels::dsp::Portable>(model)),
        KernelSet::Dsp => Some(harness::kernels::packed::<harness::kernels::dsp::Dsp>(model)),
    };
    let model = packed.as_ref().map_or(*model, |m| m.as_model());
    let model = &model;
    let weights: &[u8] = bytemuck::cast_slice(model.weights);
    let input: &[u8] = bytemuck::cast_slice(&input_data);

    let mut s = String::new();
    let _ = writeln!(
        s,
        "// Generated by patchbench for {} / {} / {}: do not edit.",
        comment_text(model.name),
        comment_text(&board.name),
        plan.schedule
    );
    let _ = writeln!(s, "pub const MODEL_NAME: &str = {:?};", model.name);
    let _ = writeln!(s, "pub const MODEL_HASH: u64 = {hash:#x};");
    let _ = writeln!(s, "pub const BOARD: &str = {:?};", board.name);
    let _ = writeln!(s, "pub const CPU: &str = {:?};", board.cpu);
    let _ = writeln!(s, "pub const CLOCK_HZ: u32 = {};", board.clock_hz);
    let _ = writeln!(s, "pub const CYCLE_SOURCE: CycleSource = CycleSource::{:?};", board.cycle_source);
    let _ = writeln!(s, "pub const COUNTS_PER_TICK: u64 = {};", board.counts_per_tick());
    let _ = writeln!(s, "pub const CACHES: bool = {};", board.caches_on());
    let _ = writeln!(s, "pub const KERNELS: KernelSet = KernelSet::{:?};", board.kernels());
    let _ = writeln!(s, "pub const PROFILE: bool = {profile};");
    let _ = writeln!(s, "pub const KERNEL_CHECK: u64 = {check_cases};");
    let _ = writeln!(s, "pub const N_OPS: usize = {};", model.ops.len());
    let _ = writeln!(s, "pub const INJECT: u8 = {};", inject as u8);
    let _ = writeln!(s, "pub const REPEATS: u16 = {repeats};");
    // The record header names the schedule in its canonical text.
    let _ = writeln!(s, "pub const SCHEDULE: &str = {:?};", plan.schedule.to_string());
    let _ = writeln!(s, "pub const INPUT_IN: InputPlacement = InputPlacement::{:?};", plan.input_in);
    let _ = writeln!(
        s,
        "pub static STAGES: [ExecStage; {}] = [{}];",
        plan.stages.len(),
        plan.stages.iter().map(|st| format!("{st:?}")).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(s, "pub const ARENA_BYTES: usize = {};", plan.arena_peak_bytes);
    let _ = writeln!(s, "pub const INPUT: u16 = {};", model.input);
    let _ = writeln!(s, "pub static OUTPUTS: [u16; {}] = {:?};", model.outputs.len(), model.outputs);
    // The IR types are plain data whose Debug form is a valid Rust expression once their
    // names are in scope (the firmware's `gen` module imports them).
    let list = |items: Vec<String>| items.join(",\n    ");
    let _ = writeln!(
        s,
        "pub static TENSORS: [Tensor; {}] = [\n    {}\n];",
        model.tensors.len(),
        list(model.tensors.iter().map(|t| format!("{t:?}")).collect())
    );
    let _ = writeln!(
        s,
        "pub static OPS: [Op; {}] = [\n    {}\n];",
        model.ops.len(),
        list(model.ops.iter().map(|o| format!("{o:?}")).collect())
    );
    let _ = writeln!(
        s,
        "pub static CONSTANTS: [Constant; {}] = [\n    {}\n];",
        model.constants.len(),
        list(model.constants.iter().map(|k| format!("{k:?}")).collect())
    );
    let _ = writeln!(s, "pub static PARAMS: [i32; {}] = {:?};", model.params.len(), model.params);
    let _ = writeln!(s, "pub static OFFSETS: [u32; {}] = {:?};", plan.offsets.len(), plan.offsets);
    let _ = writeln!(s, "pub static ROW_BUFFERS: [u32; {}] = {:?};", plan.row_buffers.len(), plan.row_buffers);
    let _ = writeln!(
        s,
        "pub static REGIONS: [Region; {}] = [\n    {}\n];",
        plan.regions.len(),
        list(plan.regions.iter().map(|r| format!("{r:?}")).collect())
    );
    let _ = writeln!(s, "pub static WEIGHTS: [u8; {}] = *include_bytes!(\"{BLOB_DIR}/weights.bin\");", weights.len());
    let _ = writeln!(s, "pub static INPUT_DATA: [u8; {}] = *include_bytes!(\"{BLOB_DIR}/input.bin\");", input.len());

    let mut memory = format!(
        "/* {} ({}) */\nMEMORY\n{{\n  FLASH : ORIGIN = {:#010x}, LENGTH = {:#x}\n  RAM : ORIGIN = {:#010x}, LENGTH = {:#x}\n",
        comment_text(&board.name),
        comment_text(&board.description),
        board.flash.origin, board.flash.length, board.ram.origin, board.ram.length
    );
    if let Some(block) = board.boot2.as_deref().and_then(boot2_block) {
        // The chip's boot ROM runs these 256 bytes from the start of flash, before the image.
        let _ = writeln!(s, "#[link_section = \".boot2\"]\n#[used]\npub static BOOT2: [u8; 256] = {:?};", block);
        let _ = writeln!(memory, "  BOOT2 : ORIGIN = {:#010x}, LENGTH = 0x100", board.flash.origin - 0x100);
    }
    memory.push_str("}\n\n");
    if board.boot2.is_some() {
        memory.push_str(
            "SECTIONS\n{\n  .boot2 ORIGIN(BOOT2) :\n  {\n    KEEP(*(.boot2));\n  } > BOOT2\n} INSERT BEFORE .text;\n\n",
        );
    }
    let _ = write!(
        memory,
        "/* Keep a stack reserve inside RAM, so an image that leaves too little stack fails to link. */\n\
         SECTIONS\n{{\n  .stack_reserve (NOLOAD) : ALIGN(8)\n  {{\n    __spb_stack_bottom = .;\n    . += {:#x};\n  }} > RAM\n}} INSERT AFTER .uninit;\n",
        board.stack_reserve
    );
    Sources { model_rs: s, weights: weights.to_vec(), input: input.to_vec(), memory_x: memory }
}

/// `text` safe inside a `//` or `/* */` comment of a generated source: names come from files
/// and board catalogs, so no newline, no `*/`, nothing but plain printable characters.
fn comment_text(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || " .,:;_-+()[]#@='/%".contains(c) { c } else { '?' }).collect()
}

/// The second-stage boot blocks the catalog can name (`boot2 = "..."`).
pub const BOOT2_BLOCKS: &[&str] = &["rp2040-w25q080"];

fn boot2_block(name: &str) -> Option<&'static [u8; 256]> {
    match name {
        "rp2040-w25q080" => Some(&rp2040_boot2::BOOT_LOADER_W25Q080),
        _ => None,
    }
}

/// Checks, once before the first build, that the tools the images of `boards` need are
/// installed: cargo, each board's Rust target, and QEMU for emulated boards.
pub fn check_tools(boards: &[&Board]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let limit = crate::child::tool_timeout();
    match crate::child::output_within(Command::new(&cargo).arg("--version"), limit, &format!("`{cargo} --version`")) {
        Ok(o) if o.status.success() => {}
        Err(e @ crate::child::CallError::Timeout { .. }) => bail!("{e}: patchbench builds firmware with cargo; check the Rust installation (scripts/setup.sh)"),
        _ => bail!("`{cargo}` does not run: patchbench builds firmware with cargo; install Rust from https://rustup.rs (scripts/setup.sh checks it)"),
    }
    // rustup knows the installed targets; without rustup, the build itself will say.
    let rustup = crate::child::output_within(
        Command::new("rustup").args(["target", "list", "--installed"]).current_dir(workspace_root()),
        limit,
        "`rustup target list --installed`",
    );
    if let Err(e @ crate::child::CallError::Timeout { .. }) = &rustup {
        bail!("{e}: check the Rust installation (scripts/setup.sh)");
    }
    if let Ok(out) = rustup {
        if out.status.success() {
            let installed = String::from_utf8_lossy(&out.stdout);
            for b in boards {
                if !installed.lines().any(|t| t.trim() == b.target) {
                    bail!(
                        "board {} needs the Rust target {}, which is not installed: `rustup target add {}` (scripts/setup.sh adds every catalog target)",
                        b.name,
                        b.target,
                        b.target
                    );
                }
            }
        }
    }
    if boards.iter().any(|b| b.is_qemu()) {
        match crate::child::output_within(
            Command::new("qemu-system-arm").arg("--version"),
            limit,
            "`qemu-system-arm --version`",
        ) {
            Ok(o) if o.status.success() => {}
            Err(e @ crate::child::CallError::Timeout { .. }) => {
                bail!("{e}: QEMU boards run on it; check the installation (`apt-get install --reinstall qemu-system-arm`) or what `qemu-system-arm` on your PATH is")
            }
            _ => bail!("qemu-system-arm is not installed (QEMU boards run on it): `apt-get install qemu-system-arm`, or run scripts/setup.sh"),
        }
    }
    Ok(())
}

/// Hash of the firmware and engine sources (computed once per process).
fn source_hash() -> anyhow::Result<&'static str> {
    static HASH: OnceLock<String> = OnceLock::new();
    if let Some(h) = HASH.get() {
        return Ok(h);
    }
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["firmware/src", "harness/src", "firmware/.cargo"] {
        collect_files(&root.join(dir), &mut files)?;
    }
    for f in ["firmware/Cargo.toml", "firmware/Cargo.lock", "firmware/build.rs", "harness/Cargo.toml"] {
        let p = root.join(f);
        if p.exists() {
            files.push(p);
        }
    }
    files.sort();
    let mut h = blake3::Hasher::new();
    for f in files {
        h.update(f.strip_prefix(&root).unwrap_or(&f).to_string_lossy().as_bytes());
        h.update(&std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?);
    }
    Ok(HASH.get_or_init(|| h.finalize().to_hex().to_string()))
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            collect_files(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// A built (or cached) image.
#[derive(Clone, Debug)]
pub struct Image {
    /// The ELF.
    pub elf: PathBuf,
    /// True when it came from the cache.
    pub cached: bool,
    /// Time spent building (zero when cached).
    pub build_time: Duration,
    /// `.data + .bss` bytes without the arena.
    pub static_ram_bytes: u64,
    /// Flash bytes (vector table, code, read-only data, `.data` initializers).
    pub flash_bytes: u64,
    /// Address of the RTT control block.
    pub rtt_address: u64,
}

/// Result of building an image.
#[derive(Clone, Debug)]
pub enum Build {
    /// Linked.
    Image(Image),
    /// The image does not fit the board's memory.
    DoesNotFit {
        /// Which region (`RAM` or `FLASH`).
        region: String,
        /// Bytes the region would need.
        needed: u64,
    },
}

/// Build trees a build may lease: beyond this many concurrent builds, a build waits for one.
const MAX_TREES: usize = 32;

/// One build tree (generated sources + cargo target dir), held exclusively through a file
/// lock until dropped. Threads of one sweep, two tests in one process, and two patchbench
/// processes sharing a cache all get distinct trees, so none builds over another's sources
/// or copies another's binary.
struct Tree {
    gen: PathBuf,
    target_dir: PathBuf,
    _lock: std::fs::File,
}

impl Tree {
    /// Leases the first free tree from `preferred` on (a worker keeps its warm tree), or
    /// waits for `preferred` when all are busy.
    fn lease(root: &Path, preferred: usize) -> anyhow::Result<Tree> {
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        let open = |i: usize| {
            let path = root.join(format!("cargo-w{i}.lock"));
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .with_context(|| format!("opening {}", path.display()))
        };
        let tree = |i: usize, lock| Tree {
            gen: root.join(format!("gen/w{i}")),
            target_dir: root.join(format!("cargo-w{i}")),
            _lock: lock,
        };
        let preferred = preferred % MAX_TREES;
        for i in (preferred..MAX_TREES).chain(0..preferred) {
            let file = open(i)?;
            match file.try_lock() {
                Ok(()) => return Ok(tree(i, file)),
                Err(std::fs::TryLockError::WouldBlock) => continue,
                Err(std::fs::TryLockError::Error(e)) => return Err(e).context("locking a firmware build tree"),
            }
        }
        let file = open(preferred)?;
        file.lock().context("locking a firmware build tree")?;
        Ok(tree(preferred, file))
    }
}

/// Publishes what `write` writes at `path` by renaming a complete temporary file over it: a reader (of
/// this or another process) sees the whole file or none.
fn publish(path: &Path, write: impl FnOnce(&Path) -> std::io::Result<()>) -> anyhow::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}-{:?}.tmp", std::process::id(), std::thread::current().id()));
    if let Err(e) = write(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", tmp.display()));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// Builds the image for (model, plan, board), reusing the cache when nothing that goes into
/// it changed. `worker` names the build tree to prefer, so a sweep's workers keep warm trees;
/// a busy tree is never shared (see [`Tree`]).
pub fn build(model: &Model, plan: &Plan, board: &Board, repeats: u16, worker: usize) -> anyhow::Result<Build> {
    // A model that cannot fit is known from its plan: nothing of its size is generated.
    if let Err(unfit) = crate::runner::check_fits(model, plan, board) {
        return Ok(Build::DoesNotFit { region: unfit.region.to_string(), needed: unfit.needed });
    }
    let sources = sources(model, plan, board, repeats);
    build_sources(&sources, &sources.key(board)?, model.name, plan, board, worker)
}

/// Longest a firmware build may take: a cold build of the engine and the firmware takes a
/// few minutes on a slow machine; a build still running after half an hour is stuck.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Builds prepared [`Sources`] whose key is `key` (see [`build`]).
pub fn build_sources(
    sources: &Sources,
    key: &str,
    model_name: &str,
    plan: &Plan,
    board: &Board,
    worker: usize,
) -> anyhow::Result<Build> {
    let root = cache_root();
    let slot = root.join("images").join(key);
    let elf = slot.join("image.elf");
    let no_fit = slot.join("does-not-fit");
    if elf.is_file() {
        return Ok(Build::Image(inspect(&elf, plan, true, Duration::ZERO)?));
    }
    if let Ok(text) = std::fs::read_to_string(&no_fit) {
        if let Some((region, needed)) = text.trim().split_once(' ') {
            return Ok(Build::DoesNotFit { region: region.to_string(), needed: needed.parse().unwrap_or(0) });
        }
    }
    let tree = Tree::lease(&root, worker)?;
    let gen = &tree.gen;
    if gen.exists() {
        std::fs::remove_dir_all(gen).with_context(|| format!("clearing {}", gen.display()))?;
    }
    sources.write(gen)?;

    let start = Instant::now();
    let fw = workspace_root().join("firmware");
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // Code generation for the board's core (as a deployment builds it); the DSP kernel set's
    // assembly needs its DSP extension enabled (the Cortex-M33's is optional).
    let rustflags = format!("target.{}.rustflags=[\"-C\", \"target-cpu={}\"]", board.target, board.cpu);
    cargo.current_dir(&fw).args(["build", "--release", "--locked", "--target", &board.target, "--config", &rustflags]);
    if board.kernels() == harness::kernels::KernelSet::Dsp {
        cargo.args(["--features", "dsp"]);
    }
    cargo
        .env("PATCHBENCH_GEN", gen)
        .env("CARGO_TARGET_DIR", &tree.target_dir)
        // A host cargo's target-specific flags must not leak into the firmware build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    // Bounded, and killed with patchbench: a killed sweep leaves no build running (a rustc
    // cargo started finishes its crate).
    let out = crate::child::output_within(
        &mut cargo,
        BUILD_TIMEOUT,
        &format!("the firmware build (cargo in {})", fw.display()),
    )?;
    let build_time = start.elapsed();
    std::fs::create_dir_all(&slot).with_context(|| format!("creating {}", slot.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if let Some((region, overflow)) = parse_overflow(&stderr) {
            let length = if region == "FLASH" { board.flash.length } else { board.ram.length };
            let needed = u64::from(length) + overflow;
            publish(&no_fit, |tmp| std::fs::write(tmp, format!("{region} {needed}")))?;
            return Ok(Build::DoesNotFit { region, needed });
        }
        bail!("firmware build failed for {model_name} on {}:\n{}", board.name, tail(&stderr, 40));
    }
    let built = tree.target_dir.join(&board.target).join("release/patchbench-firmware");
    publish(&elf, |tmp| std::fs::copy(&built, tmp).map(drop))
        .with_context(|| format!("caching {}", built.display()))?;
    Ok(Build::Image(inspect(&elf, plan, false, build_time)?))
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// Finds the linker's "region `RAM' overflowed by N bytes" (largest N per region, RAM first).
pub fn parse_overflow(stderr: &str) -> Option<(String, u64)> {
    let mut best: Option<(String, u64)> = None;
    for line in stderr.lines() {
        let Some(i) = line.find("overflowed by ") else { continue };
        let region =
            ["RAM", "FLASH"].into_iter().find(|r| line.contains(&format!("`{r}'")) || line.contains(&format!("'{r}'")));
        let n: Option<u64> = line[i + "overflowed by ".len()..].split_whitespace().next().and_then(|v| v.parse().ok());
        if let (Some(region), Some(n)) = (region, n) {
            let better = match &best {
                None => true,
                Some((r, m)) => (r == region && n > *m) || (r == "FLASH" && region == "RAM"),
            };
            if better {
                best = Some((region.to_string(), n));
            }
        }
    }
    best
}

/// Reads sizes and the RTT address from a linked image.
fn inspect(elf: &Path, plan: &Plan, cached: bool, build_time: Duration) -> anyhow::Result<Image> {
    use object::{Object, ObjectSection, ObjectSymbol};
    let data = std::fs::read(elf).with_context(|| format!("reading {}", elf.display()))?;
    let file = object::File::parse(&*data).with_context(|| format!("parsing {}", elf.display()))?;
    let size = |name: &str| file.section_by_name(name).map_or(0, |s| s.size());
    let ram = size(".data") + size(".bss") + size(".uninit");
    let flash = size(".vector_table") + size(".text") + size(".rodata") + size(".data");
    let rtt_address = file
        .symbols()
        .find(|s| s.name() == Ok("_SEGGER_RTT"))
        .map(|s| s.address())
        .with_context(|| format!("{} has no _SEGGER_RTT symbol", elf.display()))?;
    Ok(Image {
        elf: elf.to_path_buf(),
        cached,
        build_time,
        static_ram_bytes: ram.saturating_sub(plan.arena_peak_bytes as u64),
        flash_bytes: flash,
        rtt_address,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_build_tree_is_never_leased_twice() {
        let root = tempfile::tempdir().unwrap();
        let a = Tree::lease(root.path(), 0).unwrap();
        // Same worker index from another thread (or process): the next free tree.
        let b = std::thread::scope(|s| s.spawn(|| Tree::lease(root.path(), 0).unwrap()).join().unwrap());
        assert_ne!(a.target_dir, b.target_dir);
        assert_ne!(a.gen, b.gen);
        let c = Tree::lease(root.path(), 1).unwrap();
        assert!(c.target_dir != a.target_dir && c.target_dir != b.target_dir);
        // A released tree is the preferred one again: a worker keeps its warm cargo dir.
        let warm = a.target_dir.clone();
        drop(a);
        assert_eq!(Tree::lease(root.path(), 0).unwrap().target_dir, warm);
    }

    #[test]
    fn a_failed_publication_leaves_the_old_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image.elf");
        publish(&path, |tmp| std::fs::write(tmp, b"first")).unwrap();
        let failed = publish(&path, |tmp| {
            std::fs::write(tmp, b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left behind");
        publish(&path, |tmp| std::fs::write(tmp, b"second")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
    }

    #[test]
    fn linker_overflow_messages_parse() {
        let stderr = "rust-lld: error: section '.bss' will not fit in region 'RAM': overflowed by 41234 bytes\n\
                      rust-lld: error: section '.uninit' will not fit in region 'RAM': overflowed by 49426 bytes";
        assert_eq!(parse_overflow(stderr), Some(("RAM".into(), 49426)));
        let gnu = "ld: region `FLASH' overflowed by 12 bytes";
        assert_eq!(parse_overflow(gnu), Some(("FLASH".into(), 12)));
        assert_eq!(parse_overflow("error: something else"), None);
    }
}
