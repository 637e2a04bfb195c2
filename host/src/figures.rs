//! Figures (SVG and PNG, with plotters) and `summary.md` of results folders.
//!
//! Every figure belongs to one model on one board (the board comparison to one model on
//! several boards) and says so in its caption, with what the counts are: on QEMU the axis
//! reads "instructions (QEMU)", never cycles. Colours are Okabe and Ito's colour-blind-safe
//! set; heatmaps use viridis.

use crate::boards::Board;
use crate::costmodel;
use crate::recommend::{self, Objective, Request};
use crate::results::{shell_word, ResultSet, Row, Status};
use crate::units::{si, Bytes};
use harness::model::ModelBuf;
use harness::plan::InputPlacement;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Okabe-Ito: black, orange, sky blue, bluish green, blue, vermillion, reddish purple, yellow.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 0, 0),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 158, 115),
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
    RGBColor(240, 228, 66),
];
const GREY: RGBColor = RGBColor(200, 200, 200);
const FONT: &str = "sans-serif";
const SIZE: (u32, u32) = (960, 600);

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Where the PNG renderer finds a font: `$PATCHBENCH_FONT`, else these files (DejaVu Sans is
/// Debian's `fonts-dejavu-core`, which scripts/setup.sh installs).
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Registers the font once; text layout (SVG included) needs its metrics.
fn load_font() -> anyhow::Result<()> {
    static LOADED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let r = LOADED.get_or_init(|| {
        let candidates: Vec<PathBuf> = std::env::var_os("PATCHBENCH_FONT")
            .map(PathBuf::from)
            .into_iter()
            .chain(FONT_PATHS.iter().map(PathBuf::from))
            .collect();
        for p in &candidates {
            if let Ok(bytes) = std::fs::read(p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_ok() {
                    return Ok(p.clone());
                }
            }
        }
        Err(format!(
            "no TrueType font found for the figures (looked at $PATCHBENCH_FONT and {}); install one with `apt-get install fonts-dejavu-core` (scripts/setup.sh does) or set PATCHBENCH_FONT=/path/to/font.ttf",
            FONT_PATHS.join(", ")
        ))
    });
    r.as_ref().map(drop).map_err(|e| anyhow::anyhow!("{e}"))
}

type Fig = Result<(), Box<dyn std::error::Error>>;

/// Draws `draw` into `stem.svg` and `stem.png`, each drawn in memory and written whole
/// ([`crate::files::write_whole`]): a killed `plot` leaves every figure old or new, never cut.
macro_rules! render_both {
    ($stem:expr, $size:expr, $draw:expr) => {{
        let stem: &Path = $stem;
        // Appended, not `with_extension`: model names have dots (mbv2-w0.35-r144).
        let svg = PathBuf::from(format!("{}.svg", stem.display()));
        let png = PathBuf::from(format!("{}.png", stem.display()));
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, $size).into_drawing_area();
            $draw(&root).map_err(|e| anyhow::anyhow!("drawing {}: {e}", svg.display()))?;
            root.present().map_err(|e| anyhow::anyhow!("drawing {}: {e}", svg.display()))?;
        }
        crate::files::write_whole(&svg, text.as_bytes())?;
        let (w, h) = $size;
        let mut pixels = vec![0u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, $size).into_drawing_area();
            $draw(&root).map_err(|e| anyhow::anyhow!("drawing {}: {e}", png.display()))?;
            root.present().map_err(|e| anyhow::anyhow!("drawing {}: {e}", png.display()))?;
        }
        crate::files::write_whole(&png, &encode_png(&pixels, $size)?)?;
        vec![svg, png]
    }};
}

/// RGB pixels as PNG bytes (the encoder and settings plotters' own file output uses).
fn encode_png(pixels: &[u8], (w, h): (u32, u32)) -> anyhow::Result<Vec<u8>> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(pixels, w, h, image::ColorType::Rgb8)
        .map_err(|e| anyhow::anyhow!("encoding a PNG: {e}"))?;
    Ok(out)
}

/// One model on one board: the rows the per-board figures draw.
struct Group<'a> {
    model: String,
    board: Board,
    rows: Vec<&'a Row>,
    modelbuf: Option<Arc<ModelBuf>>,
    unit: &'static str,
}

impl<'a> Group<'a> {
    fn caption(&self, what: &str) -> String {
        format!(
            "{what} - {} on {} ({}, {} kernels), {}",
            self.model,
            self.board.name,
            self.board.cpu,
            self.board.kernels(),
            self.unit
        )
    }

    /// The measured rows of every schedule.
    fn ok_all(&self) -> impl Iterator<Item = &'a Row> + '_ {
        self.rows.iter().copied().filter(|r| r.status == Status::Ok && r.cycles_median.is_some())
    }

    /// The measured rows of layer-wise and one-stage schedules: what the figures by split and
    /// grid draw (several stages are drawn on the Pareto figure and tabled in the summary).
    fn ok(&self) -> impl Iterator<Item = &'a Row> + '_ {
        self.ok_all().filter(|r| r.schedule.as_one_stage().is_some())
    }

    fn layerwise(&self) -> Option<&'a Row> {
        self.ok().find(|r| r.schedule.is_layerwise())
    }

    /// The measured row of config `c`.
    fn measured(&self, c: harness::plan::PatchConfig) -> Option<&'a Row> {
        self.ok().find(|r| r.schedule == c.schedule() && r.input_in == c.input_in)
    }

    /// A figure's path: the kernel set joins the name when it is not the board's own.
    fn stem(&self, dir: &Path, kind: &str) -> PathBuf {
        let own = crate::boards::find(&self.board.name).map(|b| b.kernels()).ok();
        let set = if own == Some(self.board.kernels()) { String::new() } else { format!("-{}", self.board.kernels()) };
        dir.join(format!("{}-{}{set}-{kind}", file_part(&self.model), file_part(&self.board.name)))
    }
}

fn file_part(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect()
}

/// What [`render`] wrote.
#[derive(Default)]
pub struct Rendered {
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Figures that could not be drawn, and why (no layer-wise row, no model file, ...).
    pub notes: Vec<String>,
}

impl Rendered {
    /// A few lines for the terminal.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let dirs: BTreeSet<String> =
            self.files.iter().filter_map(|f| f.parent()).map(crate::results::display_path).collect();
        let _ = write!(s, "wrote {} files ({})", self.files.len(), dirs.into_iter().collect::<Vec<_>>().join(", "));
        for n in &self.notes {
            let _ = write!(s, "\nnote: {n}");
        }
        s
    }
}

/// Renders the figures and `summary.md` of one results folder into it (`figures/`), with
/// the RAM budgets of its spec plus `extra_budgets`.
pub fn render_folder(folder: &Path, extra_budgets: &[Bytes]) -> anyhow::Result<Rendered> {
    let set = ResultSet::load(&[folder.to_path_buf()])?;
    // Another user of a shared folder could point figures/ anywhere.
    crate::files::refuse_link(&folder.join("figures"))?;
    let mut budgets = spec_budgets(folder)?;
    budgets.extend_from_slice(extra_budgets);
    budgets.sort();
    budgets.dedup();
    let mut out = render(&set, &folder.join("figures"), &budgets)?;
    let ops = folder.join("ops.csv");
    if ops.is_file() {
        let rows = crate::results::read_ops(&ops)?;
        let (runs, _) = crate::results::read_checked(&folder.join("runs.csv"))?;
        out.files.extend(render_op_profiles(&rows, &runs, &folder.join("figures"))?);
    }
    let summary = folder.join("summary.md");
    crate::files::write_whole(&summary, summary_md(&set, folder, &budgets, &out).as_bytes())?;
    out.files.push(summary);
    Ok(out)
}

fn spec_budgets(folder: &Path) -> anyhow::Result<Vec<Bytes>> {
    let spec = folder.join("spec.toml");
    Ok(if spec.is_file() { crate::sweep::Spec::load(&spec)?.budgets } else { Vec::new() })
}

/// How figures and the summary name each model (by name and hash): its name, or, where
/// different models share a name (merged folders, a file that changed between sweeps), the
/// name and the hash's first 8 digits.
fn model_labels<'r>(rows: impl IntoIterator<Item = &'r Row>) -> BTreeMap<(String, String), String> {
    let mut hashes: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in rows {
        hashes.entry(r.model.as_str()).or_default().insert(r.model_hash.as_str());
    }
    let mut out = BTreeMap::new();
    for (name, hs) in hashes {
        for h in &hs {
            let label = if hs.len() > 1 { format!("{name}-{}", h.get(..8).unwrap_or(h)) } else { name.to_string() };
            out.insert((name.to_string(), h.to_string()), label);
        }
    }
    out
}

/// One group per model, board and kernel set, and a note for every board the catalog does
/// not know (rows merged from a machine with its own `--boards` file): its rows are left out.
fn groups(set: &ResultSet) -> anyhow::Result<(Vec<Group<'_>>, Vec<String>)> {
    let labels = model_labels(&set.rows);
    let mut keys: Vec<(String, String, String, harness::kernels::KernelSet)> = Vec::new();
    for r in &set.rows {
        let k = (r.model.clone(), r.model_hash.clone(), r.board.clone(), r.kernels);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.sort();
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for (name, hash, board, kernels) in keys {
        let model = labels[&(name.clone(), hash.clone())].clone();
        let board = match crate::boards::find(&board) {
            Ok(b) => b.with_kernels(Some(kernels))?,
            Err(e) => {
                notes.push(format!(
                    "rows of {model} on board {board} left out: {e} (plot with the catalog they were measured with: --boards FILE)"
                ));
                continue;
            }
        };
        let rows: Vec<&Row> = set
            .rows
            .iter()
            .filter(|r| r.model == name && r.model_hash == hash && r.board == board.name && r.kernels == kernels)
            .collect();
        let modelbuf = set.models.get(&hash).cloned();
        let unit = rows.first().map_or("cycles", |r| r.cycle_source.unit());
        out.push(Group { model, board, rows, modelbuf, unit });
    }
    notes.dedup();
    Ok((out, notes))
}

/// Renders every figure of `set` into `dir`.
pub fn render(set: &ResultSet, dir: &Path, budgets: &[Bytes]) -> anyhow::Result<Rendered> {
    load_font()?;
    crate::files::create_dir(dir)?;
    let mut out = Rendered::default();
    out.notes.extend(set.warnings.iter().cloned());
    let (groups, notes) = groups(set)?;
    out.notes.extend(notes);
    for g in &groups {
        if g.ok().next().is_none() {
            out.notes.push(format!("{} on {}: no ok row, no figures", g.model, g.board.name));
            continue;
        }
        match &g.modelbuf {
            Some(m) => out
                .files
                .extend(render_both!(&g.stem(dir, "memory-profile"), SIZE, |root| memory_profile(root, g, m, budgets))),
            None => out.notes.push(format!(
                "{} on {}: the per-op memory profile needs the model (no spec.toml names a file that loads)",
                g.model, g.board.name
            )),
        }
        out.files.extend(render_both!(&g.stem(dir, "ram-vs-patches"), SIZE, |root| ram_vs_patches(root, g, budgets)));
        if g.layerwise().is_some() {
            out.files.extend(render_both!(&g.stem(dir, "overhead"), (1200, 560), |root| overhead(root, g)));
        } else {
            out.notes
                .push(format!("{} on {}: no layer-wise row, so no measured overhead figure", g.model, g.board.name));
        }
        out.files.extend(render_both!(&g.stem(dir, "heatmap"), (1200, 600), |root| heatmaps(root, g, budgets)));
        out.files.extend(render_both!(&g.stem(dir, "pareto"), SIZE, |root| pareto(root, g, budgets)));
        out.files.extend(render_both!(&g.stem(dir, "budget-ladder"), (1200, 600), |root| budget_ladder(root, g)));
        let predicted = predictions(set, g);
        out.files.extend(render_both!(&g.stem(dir, "predicted"), (1200, 560), |root| measured_vs_predicted(
            root, g, &predicted
        )));
    }
    // Board comparison: a model measured on several boards.
    let mut by_model: BTreeMap<&str, Vec<&Group>> = BTreeMap::new();
    for g in &groups {
        by_model.entry(g.model.as_str()).or_default().push(g);
    }
    for (model, gs) in by_model {
        if gs.len() > 1 {
            let stem = dir.join(format!("{}-boards", file_part(model)));
            out.files.extend(render_both!(&stem, (1200, 620), |root| boards(root, model, &gs)));
        }
    }
    Ok(out)
}

/// Where the time goes: for every model, board and kernel set of `ops` (an `ops.csv`), one
/// stacked bar per profiled config (layer-wise first), a segment per operator kind, its patch
/// stage part lighter.
/// `runs` are the rows of the `runs.csv` beside it: they tell which model (name and hash)
/// each profile ran, so models that share a name are drawn apart.
pub fn render_op_profiles(ops: &[crate::results::OpRow], runs: &[Row], dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    load_font()?;
    crate::files::create_dir(dir)?;
    let labels = model_labels(runs);
    let hash_of: BTreeMap<&str, &str> = runs.iter().map(|r| (r.run_id.as_str(), r.model_hash.as_str())).collect();
    let label = |o: &crate::results::OpRow| {
        hash_of
            .get(o.run_id.as_str())
            .and_then(|h| labels.get(&(o.model.clone(), h.to_string())))
            .cloned()
            .unwrap_or_else(|| o.model.clone())
    };
    let mut keys: Vec<(String, String, harness::kernels::KernelSet)> =
        ops.iter().map(|o| (label(o), o.board.clone(), o.kernels)).collect();
    keys.sort();
    keys.dedup();
    let mut files = Vec::new();
    for (model, board, kernels) in keys {
        let mine: Vec<&crate::results::OpRow> =
            ops.iter().filter(|o| label(o) == model && o.board == board && o.kernels == kernels).collect();
        // The latest profile of each schedule (layer-wise first, then by where stages end).
        let mut runs: BTreeMap<harness::plan::Schedule, &str> = BTreeMap::new();
        for o in &mine {
            let id = runs.entry(o.schedule.effective()).or_insert(o.run_id.as_str());
            if o.run_id.as_str() > *id {
                *id = o.run_id.as_str();
            }
        }
        let bars: Vec<(String, Vec<&crate::results::OpRow>)> = runs
            .iter()
            .map(|(schedule, id)| {
                (schedule_label(schedule), mine.iter().copied().filter(|o| o.run_id == *id).collect())
            })
            .collect();
        let own = crate::boards::find(&board).map(|b| b.kernels()).ok();
        let set = if own == Some(kernels) { String::new() } else { format!("-{kernels}") };
        let stem = dir.join(format!("{}-{}{set}-op-profile", file_part(&model), file_part(&board)));
        let unit = mine.first().map_or("cycles", |o| o.cycle_source.unit());
        let title = format!("Where the time goes - {model} on {board} ({kernels} kernels), {unit}");
        files.extend(render_both!(&stem, (1200, 620), |root| op_profile(root, &title, unit, &bars)));
    }
    Ok(files)
}

fn op_profile<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    unit: &str,
    bars: &[(String, Vec<&crate::results::OpRow>)],
) -> Fig
where
    DB::ErrorType: 'static,
{
    let area = caption_area(root, title)?;
    // Kinds by their share over every bar, largest first (they get the first colours).
    let mut kinds: Vec<(&str, u64)> = Vec::new();
    for o in bars.iter().flat_map(|(_, ops)| ops) {
        match kinds.iter_mut().find(|(k, _)| *k == o.kind) {
            Some((_, n)) => *n += o.count,
            None => kinds.push((o.kind.as_str(), o.count)),
        }
    }
    kinds.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    let ymax = bars.iter().map(|(_, ops)| ops.iter().map(|o| o.count).sum::<u64>()).max().unwrap_or(1) as f64 * 1.12;
    let labels: Vec<String> = bars.iter().map(|(l, _)| l.clone()).collect();
    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..bars.len() as f64, 0f64..ymax)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        // A tick at every half: bars stand at i + 0.5, where `label_at` names them.
        .x_labels(2 * bars.len() + 1)
        .x_label_formatter(&|v| label_at(&labels, *v))
        .y_label_formatter(&|v| si(*v))
        .x_desc("config (split:patches); the lighter part of a segment runs in the patch stage")
        .y_desc(unit)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()?;
    for (k, &(kind, _)) in kinds.iter().enumerate() {
        let c = colour(k + 1);
        // Two parts white: the patch stage's share of the kind.
        let mix = |v: u8| ((u16::from(v) + 2 * 255) / 3) as u8;
        let light = RGBColor(mix(c.0), mix(c.1), mix(c.2));
        let mut first = true;
        for (i, (_, ops)) in bars.iter().enumerate() {
            // Stacked: everything of the kinds before this one lies below.
            let below: u64 =
                ops.iter().filter(|o| kinds[..k].iter().any(|(kk, _)| *kk == o.kind)).map(|o| o.count).sum();
            let (stage, rest): (u64, u64) = ops.iter().filter(|o| o.kind == kind).fold((0, 0), |(s, r), o| {
                if o.stage {
                    (s + o.count, r)
                } else {
                    (s, r + o.count)
                }
            });
            let x = i as f64 + 0.5;
            let (y0, y1, y2) = (below as f64, (below + stage) as f64, (below + stage + rest) as f64);
            let series = chart.draw_series([
                Rectangle::new([(x - 0.35, y0), (x + 0.35, y1)], light.filled()),
                Rectangle::new([(x - 0.35, y1), (x + 0.35, y2)], c.filled()),
            ])?;
            if first {
                series
                    .label(kind.to_string())
                    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
                first = false;
            }
        }
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft, 13)?;
    Ok(())
}

fn kib(b: u64) -> f64 {
    b as f64 / 1024.0
}

fn config_label(r: &Row) -> String {
    schedule_label(&r.schedule)
}

/// A schedule on a figure: `layer-wise`, `split:grid` for one stage from op 0, else its text.
fn schedule_label(s: &harness::plan::Schedule) -> String {
    match s.as_one_stage() {
        Some((0, _)) => "layer-wise".into(),
        Some((split, grid)) => format!("{split}:{grid}"),
        None => s.to_string(),
    }
}

fn caption_area<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    caption: &str,
) -> Result<DrawingArea<DB, Shift>, Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    // Long captions get a smaller font rather than being cut at the edges.
    let width = root.dim_in_pixel().0 as usize;
    let size = (width * 19 / 10 / caption.chars().count().max(1)).clamp(12, 20) as u32;
    Ok(root.titled(caption, (FONT, size))?)
}

/// Figure 1: live activation bytes per op, layer-wise vs patch configs, with budget lines and
/// a tick where each of their patch stages ends.
fn memory_profile<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, g: &Group, m: &ModelBuf, budgets: &[Bytes]) -> Fig
where
    DB::ErrorType: 'static,
{
    let area = caption_area(root, &g.caption("Live activation memory per op"))?;
    let model = m.as_model();
    let input_in = g.ok().next().map_or(InputPlacement::Flash, |r| r.input_in);
    // Layer-wise and up to three measured patch configs from the Pareto front of (RAM, time).
    let configs = [harness::plan::PatchConfig { input_in, ..harness::plan::PatchConfig::LAYERWISE }];
    let front = pareto_rows(g);
    let patched: Vec<&Row> = front.iter().filter(|r| !r.schedule.is_layerwise()).copied().collect();
    let pick: Vec<&Row> = match patched.len() {
        0..=3 => patched,
        n => vec![patched[0], patched[n / 2], patched[n - 1]],
    };
    let mut schedules: Vec<harness::plan::Schedule> = configs.iter().map(|c| c.schedule()).collect();
    schedules.extend(pick.iter().map(|r| r.schedule));
    let series: Vec<(String, Vec<f64>, Vec<u16>)> = schedules
        .iter()
        .filter_map(|s| {
            let p = harness::plan::plan_schedule(&model, s, input_in, Default::default()).ok()?;
            let label = if p.stages.is_empty() {
                "layer-wise".to_string()
            } else {
                format!("{} ({:.0} KiB)", p.schedule, kib(p.arena_peak_bytes as u64))
            };
            let ends: Vec<u16> = p.stages.iter().map(|st| st.end).collect();
            Some((label, p.ops.iter().map(|o| kib(o.live_bytes as u64)).collect::<Vec<f64>>(), ends))
        })
        .collect();
    let n = model.ops.len();
    let ymax = series.iter().flat_map(|(_, v, _)| v.iter().copied()).fold(0.0, f64::max).max(1.0) * 1.15;
    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..ymax)?;
    chart
        .configure_mesh()
        .x_desc("op index")
        .y_desc("live activation bytes (KiB)")
        .x_label_formatter(&|x| if (x - x.round()).abs() < 1e-6 { format!("{x:.0}") } else { String::new() })
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()?;
    for (i, (label, v, ends)) in series.iter().enumerate() {
        let c = colour(i);
        // Where each of its patch stages ends (the tensor there exists whole): a short tick
        // at the top, in the schedule's colour.
        for &end in ends {
            let x = f64::from(end) - 0.5;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x, ymax * (0.97 - 0.03 * i as f64)), (x, ymax * (0.91 - 0.03 * i as f64))],
                c.stroke_width(3),
            )))?;
        }
        // After the patch stage every config holds the same bytes: earlier curves draw
        // wider, so that one never hides another.
        let width = (2 * (series.len() - i) + 1) as u32;
        let steps = v.iter().enumerate().flat_map(|(x, &y)| [(x as f64 - 0.5, y), (x as f64 + 0.5, y)]);
        chart
            .draw_series(LineSeries::new(steps, c.stroke_width(width)))?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
    }
    draw_budget_lines(&mut chart, budgets, ymax, n as f64 - 0.5, false)?;
    legend(&mut chart, SeriesLabelPosition::UpperRight, 14)?;
    Ok(())
}

/// Horizontal (or vertical) dashed lines at the RAM budgets (KiB) inside the chart, labelled.
fn draw_budget_lines<DB: DrawingBackend>(
    chart: &mut ChartContext<
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    budgets: &[Bytes],
    ymax: f64,
    xmax: f64,
    vertical: bool,
) -> Fig
where
    DB::ErrorType: 'static,
{
    let (x0, y0) = (chart.x_range().start, chart.y_range().start);
    for b in budgets {
        let v = kib(b.0);
        let style = ShapeStyle { color: PALETTE[5].to_rgba(), filled: false, stroke_width: 2 };
        let (from, to, text_at) = if vertical {
            if v < x0 || v > xmax {
                continue;
            }
            ((v, y0), (v, ymax), (v, y0 + (ymax - y0) * 0.97))
        } else {
            if v < y0 || v > ymax {
                continue;
            }
            ((x0, v), (xmax, v), (xmax, v))
        };
        chart.draw_series(DashedLineSeries::new([from, to], 8, 5, style))?;
        use plotters::style::text_anchor::{HPos, Pos, VPos};
        // Vertical lines: label at the top right of the line; horizontal: above its right end.
        let pos = if vertical { Pos::new(HPos::Left, VPos::Top) } else { Pos::new(HPos::Right, VPos::Bottom) };
        let style = TextStyle::from((FONT, 14).into_font()).color(&PALETTE[5]).pos(pos);
        chart.draw_series(std::iter::once(Text::new(format!(" budget {b} "), text_at, style)))?;
    }
    Ok(())
}

/// The `ok` rows on the Pareto front of (total RAM, cycles), by RAM descending.
fn pareto_rows<'a>(g: &Group<'a>) -> Vec<&'a Row> {
    let ok: Vec<&Row> = g.ok_all().filter(|r| r.total_ram_bytes.is_some()).collect();
    let points: Vec<(f64, f64)> =
        ok.iter().map(|r| (r.total_ram_bytes.unwrap_or(0) as f64, r.cycles_median.unwrap_or(0) as f64)).collect();
    let front = crate::report::pareto_front(&points);
    let mut out: Vec<&Row> = ok.into_iter().zip(front).filter(|(_, f)| *f).map(|(r, _)| r).collect();
    out.sort_by_key(|r| std::cmp::Reverse(r.total_ram_bytes));
    out
}

/// RAM of a row: measured total where measured, else the planned arena (a `does-not-fit`
/// row has no measurement).
fn ram_of(r: &Row) -> Option<f64> {
    r.total_ram_bytes.map(kib)
}

/// Figure 2: peak RAM vs number of patches, one curve per split.
fn ram_vs_patches<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, g: &Group, budgets: &[Bytes]) -> Fig
where
    DB::ErrorType: 'static,
{
    let area = caption_area(root, &g.caption("Peak RAM (arena + stack + static) vs patches"))?;
    let per_split = by_split(g);
    let xmax = g.ok().map(|r| r.patches.patches()).max().unwrap_or(1).max(2) as f64 + 1.0;
    let ymax = g.ok().filter_map(ram_of).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)?;
    chart
        .configure_mesh()
        .x_desc("patches (nh x nw)")
        .y_desc("total RAM (KiB)")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()?;
    if let Some(l) = g.layerwise().and_then(ram_of) {
        let style = ShapeStyle { color: BLACK.to_rgba(), filled: false, stroke_width: 2 };
        chart
            .draw_series(DashedLineSeries::new([(0.0, l), (xmax, l)], 6, 4, style))?
            .label(format!("layer-wise ({l:.0} KiB)"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2)));
    }
    for (i, (split, rows)) in per_split.iter().enumerate() {
        let c = colour(i + 1);
        let pts: Vec<(f64, f64)> = rows.iter().filter_map(|r| Some((r.patches.patches() as f64, ram_of(r)?))).collect();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)).point_size(4))?
            .label(format!("split {split}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    draw_budget_lines(&mut chart, budgets, ymax, xmax, false)?;
    legend(&mut chart, SeriesLabelPosition::UpperRight, 14)?;
    Ok(())
}

/// The `ok` patched rows per split, by number of patches.
fn by_split<'a>(g: &'a Group) -> BTreeMap<u16, Vec<&'a Row>> {
    let mut m: BTreeMap<u16, Vec<&Row>> = BTreeMap::new();
    for r in g.ok().filter(|r| r.split > 0) {
        m.entry(r.split).or_default().push(r);
    }
    for v in m.values_mut() {
        v.sort_by_key(|r| (r.patches.patches(), r.patches));
    }
    m
}

/// Figure 3: predicted MAC overhead and measured count overhead vs patches, per split.
fn overhead<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, g: &Group) -> Fig
where
    DB::ErrorType: 'static,
{
    let area = caption_area(root, &g.caption("Overhead of patches over layer-wise"))?;
    let base = g.layerwise().and_then(|r| r.cycles_median).unwrap_or(1) as f64;
    let per_split = by_split(g);
    let measured = |r: &Row| (r.cycles_median.unwrap_or(0) as f64 / base - 1.0) * 100.0;
    let all: Vec<f64> = per_split.values().flatten().flat_map(|r| [r.recompute_overhead_pct, measured(r)]).collect();
    let ymax = all.iter().copied().fold(1.0, f64::max) * 1.1;
    let ymin = all.iter().copied().fold(0.0, f64::min).min(0.0) * 1.1;
    let xmax = g.ok().map(|r| r.patches.patches()).max().unwrap_or(1).max(2) as f64 + 1.0;
    let panels = area.split_evenly((1, 2));
    let what = ["predicted: extra MACs (% of layer-wise)".to_string(), format!("measured: extra {} (%)", g.unit)];
    for (k, panel) in panels.iter().enumerate() {
        let mut chart = ChartBuilder::on(panel)
            .margin(12)
            .caption(&what[k], (FONT, 16))
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..xmax, ymin..ymax)?;
        chart
            .configure_mesh()
            .x_desc("patches (nh x nw)")
            .y_desc("overhead (%)")
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .draw()?;
        for (i, (split, rows)) in per_split.iter().enumerate() {
            let c = colour(i + 1);
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .map(|r| (r.patches.patches() as f64, if k == 0 { r.recompute_overhead_pct } else { measured(r) }))
                .collect();
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)).point_size(4))?
                .label(format!("split {split}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft, 13)?;
    }
    Ok(())
}

/// The optimum of a group under a budget: fewest cycles among `ok` rows within it.
fn optimum<'a>(g: &Group<'a>, budget: Option<Bytes>) -> Option<&'a Row> {
    g.ok()
        .filter(|r| budget.is_none_or(|b| r.total_ram_bytes.is_some_and(|t| t <= b.0)))
        .min_by_key(|r| (r.cycles_median, r.total_ram_bytes))
}

/// [`optimum`] over every schedule measured, several stages included.
fn optimum_all<'a>(g: &Group<'a>, budget: Option<Bytes>) -> Option<&'a Row> {
    g.ok_all()
        .filter(|r| budget.is_none_or(|b| r.total_ram_bytes.is_some_and(|t| t <= b.0)))
        .min_by_key(|r| (r.cycles_median, r.total_ram_bytes))
}

/// Figure 4: split x grid heatmaps of total RAM and of cycles; cells over the (first)
/// budget or `does-not-fit` masked, the optimum marked.
fn heatmaps<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, g: &Group, budgets: &[Bytes]) -> Fig
where
    DB::ErrorType: 'static,
{
    let budget = budgets.first().copied();
    let what = match budget {
        Some(b) => format!("Optimal patch point under {b} (grey: over budget, x: does not fit, *: optimum)"),
        None => "Optimal patch point (x: does not fit, *: fewest counts)".to_string(),
    };
    let area = caption_area(root, &g.caption(&what))?;
    let splits: Vec<u16> = g.rows.iter().map(|r| r.split).collect::<BTreeSet<_>>().into_iter().collect();
    let mut grids: Vec<harness::plan::Grid> =
        g.rows.iter().map(|r| r.patches).collect::<BTreeSet<_>>().into_iter().collect();
    grids.sort_by_key(|gr| (gr.patches(), *gr));
    let best = optimum(g, budget);
    let panels = area.split_evenly((1, 2));
    let titles = ["total RAM (KiB)".to_string(), g.unit.to_string()];
    for (k, panel) in panels.iter().enumerate() {
        let value = |r: &Row| -> Option<f64> {
            if r.status != Status::Ok {
                return None;
            }
            if k == 0 {
                r.total_ram_bytes.map(kib)
            } else {
                r.cycles_median.map(|c| c as f64)
            }
        };
        let vals: Vec<f64> = g.rows.iter().filter_map(|r| value(r)).collect();
        let (lo, hi) = (vals.iter().copied().fold(f64::MAX, f64::min), vals.iter().copied().fold(f64::MIN, f64::max));
        let mut chart = ChartBuilder::on(panel)
            .margin(12)
            .caption(&titles[k], (FONT, 16))
            .x_label_area_size(50)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..grids.len() as f64, 0f64..splits.len() as f64)?;
        let grid_labels: Vec<String> = grids.iter().map(|g| g.to_string()).collect();
        let split_labels: Vec<String> = splits.iter().map(|s| s.to_string()).collect();
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("patches")
            .y_desc("split")
            .x_labels(grids.len() * 2 + 1)
            .y_labels(splits.len() * 2 + 1)
            .x_label_formatter(&|x| label_at(&grid_labels, *x))
            .y_label_formatter(&|y| label_at(&split_labels, *y))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 16))
            .draw()?;
        for r in &g.rows {
            let (Some(xi), Some(yi)) =
                (grids.iter().position(|x| *x == r.patches), splits.iter().position(|s| *s == r.split))
            else {
                continue;
            };
            let (x, y) = (xi as f64, yi as f64);
            let cell = [(x + 0.03, y + 0.03), (x + 0.97, y + 0.97)];
            let over = budget.is_some_and(|b| r.total_ram_bytes.is_none_or(|t| t > b.0));
            match value(r) {
                Some(v) if !over => {
                    let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
                    let c = ViridisRGB::get_color(t as f32);
                    chart.draw_series(std::iter::once(Rectangle::new(cell, c.filled())))?;
                    let text = if k == 0 { format!("{v:.1}") } else { si(v) };
                    let ink = if t > 0.6 { BLACK } else { WHITE };
                    chart.draw_series(std::iter::once(Text::new(text, (x + 0.5, y + 0.5), centred(12).color(&ink))))?;
                }
                other => {
                    chart.draw_series(std::iter::once(Rectangle::new(cell, GREY.filled())))?;
                    if let Some(v) = other {
                        // Over budget: masked, the value still readable.
                        let text = if k == 0 { format!("{v:.1}") } else { si(v) };
                        chart.draw_series(std::iter::once(Text::new(
                            text,
                            (x + 0.5, y + 0.5),
                            centred(12).color(&RGBColor(110, 110, 110)),
                        )))?;
                    }
                    if r.status == Status::DoesNotFit {
                        chart.draw_series(std::iter::once(Text::new("x", (x + 0.5, y + 0.5), centred(18))))?;
                    }
                }
            }
            if best.is_some_and(|b| b.schedule == r.schedule && b.input_in == r.input_in) {
                chart.draw_series(std::iter::once(Rectangle::new(cell, PALETTE[5].stroke_width(4))))?;
                chart.draw_series(std::iter::once(Text::new(
                    "*",
                    (x + 0.85, y + 0.8),
                    centred(26).color(&PALETTE[5]),
                )))?;
            }
        }
    }
    Ok(())
}

fn centred(size: u32) -> TextStyle<'static> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    TextStyle::from((FONT, size).into_font()).color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center))
}

/// The series legend, on a white box over the chart's emptiest corner (`pos`).
fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    pos: SeriesLabelPosition,
    size: u32,
) -> Fig
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(pos)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, size))
        .draw()?;
    Ok(())
}

/// The label of category `floor(v)` at the middle of its cell only.
fn label_at(labels: &[String], v: f64) -> String {
    let i = v.floor();
    if (v - i - 0.5).abs() < 1e-6 && i >= 0.0 {
        labels.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// Figure 5: total RAM vs cycles of every measured config, the Pareto front, budgets.
fn pareto<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, g: &Group, budgets: &[Bytes]) -> Fig
where
    DB::ErrorType: 'static,
{
    let area = caption_area(root, &g.caption("Memory / time trade-off"))?;
    let pts: Vec<(f64, f64, &Row)> =
        g.ok_all().filter_map(|r| Some((ram_of(r)?, r.cycles_median? as f64 / 1e6, r))).collect();
    let (xlo, xhi) = pts.iter().fold((f64::MAX, 0f64), |(l, h), p| (l.min(p.0), h.max(p.0)));
    let (ylo, yhi) = pts.iter().fold((f64::MAX, 0f64), |(l, h), p| (l.min(p.1), h.max(p.1)));
    let budget_max = budgets.iter().map(|b| kib(b.0)).filter(|&b| b < xhi * 3.0).fold(0.0, f64::max);
    let xmax = xhi.max(budget_max) * 1.08;
    let xmin = (xlo.min(budget_max.max(xlo)) * 0.85).max(0.0);
    let ymax = yhi * 1.08;
    let ymin = (ylo - (yhi - ylo) * 0.08).max(0.0);
    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(xmin..xmax, ymin..ymax)?;
    chart
        .configure_mesh()
        .x_desc("total RAM (KiB)")
        .y_desc(format!("{} per inference (millions)", g.unit))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()?;
    let stages = |r: &Row| r.schedule.effective().stages().len();
    chart
        .draw_series(pts.iter().filter(|p| stages(p.2) == 1).map(|p| Circle::new((p.0, p.1), 4, PALETTE[2].filled())))?
        .label("one patch stage")
        .legend(|(x, y)| Circle::new((x + 9, y), 4, PALETTE[2].filled()));
    if pts.iter().any(|p| stages(p.2) > 1) {
        chart
            .draw_series(
                pts.iter()
                    .filter(|p| stages(p.2) > 1)
                    .map(|p| EmptyElement::at((p.0, p.1)) + Rectangle::new([(-5, -5), (5, 5)], PALETTE[5].filled())),
            )?
            .label("several stages")
            .legend(|(x, y)| Rectangle::new([(x + 5, y - 4), (x + 13, y + 4)], PALETTE[5].filled()));
    }
    chart
        .draw_series(
            pts.iter().filter(|p| stages(p.2) == 0).map(|p| TriangleMarker::new((p.0, p.1), 7, BLACK.filled())),
        )?
        .label("layer-wise")
        .legend(|(x, y)| TriangleMarker::new((x + 9, y), 6, BLACK.filled()));
    let mut front: Vec<(f64, f64)> =
        pareto_rows(g).iter().filter_map(|r| Some((ram_of(r)?, r.cycles_median? as f64 / 1e6))).collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart
        .draw_series(LineSeries::new(front.iter().copied(), PALETTE[4].stroke_width(2)))?
        .label("Pareto front")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], PALETTE[4].stroke_width(2)));
    for (i, p) in front.iter().enumerate() {
        if let Some(r) = pts.iter().find(|q| q.0 == p.0 && q.1 == p.1) {
            let dy = if i % 2 == 0 { -0.015 } else { 0.03 } * (ymax - ymin);
            chart.draw_series(std::iter::once(Text::new(config_label(r.2), (p.0, p.1 + dy), (FONT, 12))))?;
        }
    }
    draw_budget_lines(&mut chart, budgets, ymax, xmax, true)?;
    legend(&mut chart, SeriesLabelPosition::UpperRight, 14)?;
    Ok(())
}

/// The optimal schedule as the RAM budget shrinks: for every budget from the largest measured
/// total RAM down to the smallest, the fewest counts any measured schedule reaches within it
/// (a step line, each step labelled with the schedule chosen): the figure a study of optimal
/// patch points is built around.
fn budget_ladder<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, g: &Group) -> Fig
where
    DB::ErrorType: 'static,
{
    let area = caption_area(root, &g.caption("The optimal schedule as the RAM budget shrinks"))?;
    // The optima: walking the rows by RAM ascending, a row is chosen from its RAM on until a
    // larger budget admits a faster one.
    let mut rows: Vec<&Row> = g.ok_all().filter(|r| r.total_ram_bytes.is_some()).collect();
    rows.sort_by_key(|r| (r.total_ram_bytes, r.cycles_median));
    let mut steps: Vec<&Row> = Vec::new();
    for r in rows {
        if steps.last().is_none_or(|b| r.cycles_median < b.cycles_median) {
            steps.push(r);
        }
    }
    let (Some(first), Some(last)) = (steps.first(), steps.last()) else { return Ok(()) };
    let xlo = ram_of(first).unwrap_or(0.0);
    let xhi = ram_of(last).unwrap_or(1.0).max(xlo + 1.0);
    let xmax = xhi * 1.12;
    let ys: Vec<f64> = steps.iter().map(|r| r.cycles_median.unwrap_or(0) as f64 / 1e6).collect();
    let (ylo, yhi) = ys.iter().fold((f64::MAX, 0f64), |(l, h), &y| (l.min(y), h.max(y)));
    let ymin = (ylo - (yhi - ylo).max(ylo * 0.05) * 0.3).max(0.0);
    let ymax = yhi + (yhi - ylo).max(yhi * 0.05) * 0.25;
    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d((xlo * 0.9)..xmax, ymin..ymax)?;
    chart
        .configure_mesh()
        .x_desc("RAM budget (total RAM, KiB)")
        .y_desc(format!("fewest {} per inference within it (millions)", g.unit))
        .y_label_formatter(&|y| format!("{y:.1}"))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()?;
    // From each optimum's RAM to the next one's, that optimum holds.
    let mut line = Vec::new();
    for (i, r) in steps.iter().enumerate() {
        let x0 = ram_of(r).unwrap_or(0.0);
        let x1 = steps.get(i + 1).and_then(|n| ram_of(n)).unwrap_or(xmax);
        line.push((x0, ys[i]));
        line.push((x1, ys[i]));
    }
    chart
        .draw_series(LineSeries::new(line, PALETTE[4].stroke_width(3)))?
        .label("best measured schedule within the budget")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], PALETTE[4].stroke_width(3)));
    for (label, colour) in [("layer-wise", BLACK), ("one patch stage", PALETTE[2]), ("several stages", PALETTE[5])] {
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label(label)
            .legend(move |(x, y)| Circle::new((x + 9, y), 5, colour.filled()));
    }
    for (i, r) in steps.iter().enumerate() {
        let several = r.schedule.effective().stages().len() > 1;
        let colour = if several {
            PALETTE[5]
        } else if r.schedule.is_layerwise() {
            BLACK
        } else {
            PALETTE[2]
        };
        let at = (ram_of(r).unwrap_or(0.0), ys[i]);
        chart.draw_series(std::iter::once(Circle::new(at, 5, colour.filled())))?;
        let dy = if i % 2 == 0 { 0.035 } else { -0.02 } * (ymax - ymin);
        chart.draw_series(std::iter::once(Text::new(
            format!("{} ({:.0} KiB)", config_label(r), at.0),
            (at.0, at.1 + dy),
            (FONT, 12),
        )))?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight, 14)?;
    Ok(())
}

/// Held-out predictions of a group's rows: `(measured, predicted)` cycles, the same held-out
/// predictions `patchbench fit` reports the error of.
struct Predicted {
    points: Vec<(f64, f64)>,
    how: String,
}

fn predictions(set: &ResultSet, g: &Group) -> Predicted {
    let samples = costmodel::samples(set, &g.board);
    let points = costmodel::held_out_predictions(&g.board.name, &samples)
        .into_iter()
        .filter(|&(i, _)| samples[i].model == g.model)
        .map(|(i, p)| (samples[i].cycles, p))
        .collect();
    let others = samples.iter().filter(|s| s.model != g.model).count();
    let how = if others > 0 {
        format!("fitted on {others} rows of other models")
    } else {
        "each row left out of a fit on this model's other rows".to_string()
    };
    Predicted { points, how }
}

/// Figure 6: arena watermark vs plan, and cycles vs the cost model (relative residuals).
fn measured_vs_predicted<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, g: &Group, pred: &Predicted) -> Fig
where
    DB::ErrorType: 'static,
{
    let area = caption_area(root, &g.caption("Measured vs predicted"))?;
    let panels = area.split_evenly((1, 2));
    // Arena: planned vs painted watermark.
    let pts: Vec<(f64, f64)> =
        g.ok().filter_map(|r| Some((kib(r.arena_planned_bytes), kib(r.arena_measured_bytes?)))).collect();
    let m = pts.iter().flat_map(|p| [p.0, p.1]).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&panels[0])
        .margin(12)
        .caption("arena: measured watermark vs plan", (FONT, 16))
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..m, 0f64..m)?;
    chart
        .configure_mesh()
        .x_desc("planned arena (KiB)")
        .y_desc("measured arena (KiB)")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (m, m)], GREY.stroke_width(1)))?
        .label("measured = planned")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], GREY.stroke_width(1)));
    let exact = pts.iter().filter(|p| p.0 == p.1).count();
    chart
        .draw_series(pts.iter().map(|p| Circle::new(*p, 4, PALETTE[4].filled())))?
        .label(format!("config ({exact} of {} exact)", pts.len()))
        .legend(|(x, y)| Circle::new((x + 9, y), 4, PALETTE[4].filled()));
    legend(&mut chart, SeriesLabelPosition::UpperLeft, 13)?;
    // Counts: residual of the cycles model in %.
    let res: Vec<(f64, f64)> = pred.points.iter().map(|&(m, p)| (m / 1e6, (p - m) / m * 100.0)).collect();
    let xmax = res.iter().map(|p| p.0).fold(0.001, f64::max) * 1.1;
    let ylim = res.iter().map(|p| p.1.abs()).fold(1.0, f64::max) * 1.2;
    let mut abs: Vec<f64> = res.iter().map(|p| p.1.abs()).collect();
    abs.sort_by(f64::total_cmp);
    let title = format!(
        "cost model residuals (median {:.1} %, worst {:.1} %)",
        costmodel::median(&abs),
        abs.last().copied().unwrap_or(f64::NAN)
    );
    let mut chart = ChartBuilder::on(&panels[1])
        .margin(12)
        .caption(title, (FONT, 16))
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..xmax, -ylim..ylim)?;
    chart
        .configure_mesh()
        .x_desc(format!("measured {} (millions)", g.unit))
        .y_desc("predicted - measured (%)")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()?;
    chart.draw_series(LineSeries::new([(0.0, 0.0), (xmax, 0.0)], GREY.stroke_width(1)))?;
    chart
        .draw_series(res.iter().map(|p| Circle::new(*p, 4, PALETTE[5].filled())))?
        .label(format!("held out: {}", pred.how))
        .legend(|(x, y)| Circle::new((x + 9, y), 4, PALETTE[5].filled()));
    legend(&mut chart, SeriesLabelPosition::LowerLeft, 13)?;
    Ok(())
}

/// Figure 7: the same configs across boards, counts and RAM relative to the first board.
fn boards<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, model: &str, gs: &[&Group]) -> Fig
where
    DB::ErrorType: 'static,
{
    let units: BTreeSet<&str> = gs.iter().map(|g| g.unit).collect();
    let unit = units.into_iter().collect::<Vec<_>>().join(" / ");
    // Catalog order, the default board (qemu-m4) as the reference where it was measured.
    let catalog: Vec<String> =
        crate::boards::all().map(|b| b.into_iter().map(|b| b.name).collect()).unwrap_or_default();
    let mut gs: Vec<&Group> = gs.to_vec();
    gs.sort_by_key(|g| (g.board.name != "qemu-m4", catalog.iter().position(|n| *n == g.board.name)));
    let gs = &gs[..];
    let names: Vec<String> = gs
        .iter()
        .map(|g| {
            let own = crate::boards::find(&g.board.name).map(|b| b.kernels()).ok();
            if own == Some(g.board.kernels()) {
                g.board.name.clone()
            } else {
                format!("{} ({})", g.board.name, g.board.kernels())
            }
        })
        .collect();
    let titled = caption_area(root, &format!("{model} across boards, relative to {} ({unit})", names[0]))?;
    // The legend gets a column of its own: it never covers a bar.
    let (area, legend) = titled.split_horizontally(titled.dim_in_pixel().0 as i32 - 150);
    for (b, name) in names.iter().enumerate() {
        let y = 60 + 26 * b as i32;
        legend.draw(&Rectangle::new([(10, y - 7), (26, y + 7)], colour(b + 1).filled()))?;
        legend.draw(&Text::new(name.clone(), (32, y - 8), (FONT, 15)))?;
    }
    // Configs measured on every board, by split and number of patches.
    let mut configs: Vec<harness::plan::PatchConfig> =
        gs[0].ok().map(|r| r.config()).filter(|c| gs.iter().all(|g| g.ok().any(|r| r.config() == *c))).collect();
    configs.sort_by_key(|c| (c.split, c.grid.patches(), c.grid));
    let labels: Vec<String> = configs
        .iter()
        .map(|c| if c.split == 0 { "layer-wise".into() } else { format!("{}:{}", c.split, c.grid) })
        .collect();
    let panels = area.split_evenly((2, 1));
    for (k, panel) in panels.iter().enumerate() {
        let metric = |r: &Row| -> f64 {
            if k == 0 {
                r.cycles_median.unwrap_or(0) as f64
            } else {
                r.total_ram_bytes.unwrap_or(0) as f64
            }
        };
        // ratios[b][i]: board b over the reference board, config i.
        let ratios: Vec<Vec<f64>> = gs
            .iter()
            .map(|g| {
                configs
                    .iter()
                    .map(|&c| {
                        let base = gs[0].measured(c).map(metric).unwrap_or(1.0).max(1.0);
                        g.measured(c).map_or(f64::NAN, metric) / base
                    })
                    .collect()
            })
            .collect();
        let finite = ratios.iter().flatten().copied().filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((1.0f64, 1.0f64), |(l, h), v| (l.min(v), h.max(v)));
        // Zoomed on the data (boards differ by percents), 1.0 always in view.
        let pad = ((hi - lo) * 0.15).max(0.005);
        let n = configs.len().max(1) as f64;
        let mut chart = ChartBuilder::on(panel)
            .margin(10)
            .caption(if k == 0 { "counts per inference (relative)" } else { "total RAM (relative)" }, (FONT, 16))
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5f64..n - 0.5, (lo - pad)..(hi + pad))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(configs.len().min(60) + 1)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| format!("{y:.3}"))
            .y_desc(format!("vs {}", names[0]))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 15))
            .draw()?;
        for (b, series) in ratios.iter().enumerate() {
            let c = colour(b + 1);
            let pts: Vec<(f64, f64)> =
                series.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, &v)| (i as f64, v)).collect();
            // Boards often count the same: later boards draw thinner on top, so that every
            // curve stays visible where they coincide.
            let width = (2 * (gs.len() - b)) as u32;
            chart.draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(width)))?;
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, width + 2, c.filled())))?;
        }
    }
    Ok(())
}

/// Default RAM budgets of a summary without any: powers of two between the smallest and the
/// largest measured total RAM.
fn ladder(g: &Group) -> Vec<Bytes> {
    let rams: Vec<u64> = g.ok().filter_map(|r| r.total_ram_bytes).collect();
    let (Some(&lo), Some(&hi)) = (rams.iter().min(), rams.iter().max()) else { return vec![] };
    let mut b = 1024u64;
    while b < lo {
        b *= 2;
    }
    let mut out = vec![];
    while b <= hi.next_power_of_two() {
        out.push(Bytes(b));
        b *= 2;
    }
    out
}

/// `summary.md`: per model and board, the best measured config per RAM budget, the Pareto
/// table, what the recommender says, the figures, and how to regenerate all of it.
pub fn summary_md(set: &ResultSet, folder: &Path, budgets: &[Bytes], rendered: &Rendered) -> String {
    let mut s = String::new();
    let name = folder.file_name().map(|n| crate::models::safe_name(&n.to_string_lossy())).unwrap_or_default();
    let _ = writeln!(s, "# {name}\n");
    let _ = writeln!(
        s,
        "Written by `patchbench` from `runs.csv` (the latest row per board, model, config and input placement).\n\
         Regenerate the figures and this page with `patchbench plot {}`; measure what is missing with\n\
         `patchbench sweep {}` (`--rerun` measures everything again).\n",
        shell_word(&crate::results::display_path(folder)),
        shell_word(&crate::results::display_path(&folder.join("spec.toml")))
    );
    let Ok((groups, _)) = groups(set) else { return s };
    for g in &groups {
        let _ =
            writeln!(s, "## {} on {} ({}, {} MHz)\n", g.model, g.board.name, g.board.cpu, g.board.clock_hz / 1_000_000);
        let _ = writeln!(
            s,
            "Counts are **{}**{}. Total RAM = arena + stack + static, measured on the device.\n",
            g.unit,
            if g.unit.contains("QEMU") { " (`-icount shift=0`), not cycles" } else { "" }
        );
        let ok = g.ok().count();
        let failed: Vec<String> = g
            .rows
            .iter()
            .filter(|r| r.status != Status::Ok)
            .map(|r| format!("{} `{}`", config_label(r), r.status))
            .collect();
        let _ = writeln!(
            s,
            "{} configs measured `ok`{}.\n",
            ok,
            if failed.is_empty() { String::new() } else { format!("; not ok: {}", failed.join(", ")) }
        );
        let layer = g.layerwise();
        let rel = |r: &Row| {
            layer
                .and_then(|l| l.cycles_median)
                .map_or("-".to_string(), |l| format!("{:.2}x", r.cycles_median.unwrap_or(0) as f64 / l as f64))
        };
        let mut ladder_budgets = budgets.to_vec();
        if ladder_budgets.is_empty() {
            ladder_budgets = ladder(g);
        }
        let _ = writeln!(s, "### Best measured config per RAM budget\n");
        let _ = writeln!(s, "| RAM budget | schedule | total RAM | {} | vs layer-wise |", g.unit);
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|");
        for b in &ladder_budgets {
            match optimum_all(g, Some(*b)) {
                Some(r) => {
                    let _ = writeln!(
                        s,
                        "| {b} | `{}` | {} B | {} | {} |",
                        r.schedule,
                        r.total_ram_bytes.unwrap_or(0),
                        crate::report::thousands(r.cycles_median.unwrap_or(0)),
                        rel(r)
                    );
                }
                None => {
                    let _ = writeln!(s, "| {b} | - | nothing measured fits | - | - |");
                }
            }
        }
        let _ = writeln!(s, "\n### Pareto front (total RAM, {})\n", g.unit);
        let _ = writeln!(s, "| schedule | recompute overhead | arena | total RAM | {} | vs layer-wise |", g.unit);
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|");
        for r in pareto_rows(g) {
            let _ = writeln!(
                s,
                "| `{}` | {:.2} % | {} B | {} B | {} | {} |",
                r.schedule,
                r.recompute_overhead_pct,
                r.arena_measured_bytes.unwrap_or(0),
                r.total_ram_bytes.unwrap_or(0),
                crate::report::thousands(r.cycles_median.unwrap_or(0)),
                rel(r)
            );
        }
        if let (Some(m), Some(b)) = (&g.modelbuf, ladder_budgets.first()) {
            let req = Request {
                model: m,
                board: &g.board,
                budget: *b,
                deadline: None,
                objective: Objective::Latency,
                input_in: g.ok().next().map_or(InputPlacement::Flash, |r| r.input_in),
                max_grid: 8,
            };
            if let Ok(rec) = recommend::recommend(&req, set) {
                let _ = writeln!(s, "\n### Recommended under {b} (all {} candidate configs)\n", rec.searched);
                match &rec.best {
                    Some(c) => {
                        let _ = writeln!(
                            s,
                            "`patchbench recommend --model {} --board {} --ram-budget {b} --results {}`: split {} {} ({} B predicted total RAM, {} {} predicted{}); binding constraint: {}.",
                            shell_word(g.rows.first().and_then(|r| set.sources.get(&r.model_hash)).unwrap_or(&g.model)),
                            shell_word(&g.board.name),
                            shell_word(&crate::results::display_path(folder)),
                            c.split,
                            c.patches,
                            c.predicted_total_ram_bytes,
                            crate::report::thousands(c.predicted_cycles as u64),
                            g.unit,
                            c.measured_cycles.map_or(String::new(), |m| format!(", {} measured", crate::report::thousands(m))),
                            rec.binding
                        );
                    }
                    None => {
                        let _ = writeln!(
                            s,
                            "Nothing fits {b}: the smallest total RAM reachable is {} B (split {} {}).",
                            rec.smallest.total_ram(),
                            rec.smallest.split,
                            rec.smallest.patches
                        );
                    }
                }
            }
        }
        let figs: Vec<&PathBuf> = rendered
            .files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "png"))
            .filter(|f| {
                f.file_name().is_some_and(|n| {
                    n.to_string_lossy().starts_with(&format!("{}-{}-", file_part(&g.model), file_part(&g.board.name)))
                })
            })
            .collect();
        if !figs.is_empty() {
            let _ = writeln!(s, "\n### Figures\n");
            for f in figs {
                let rel = f.strip_prefix(folder).unwrap_or(f);
                let _ = writeln!(s, "![{}]({})", rel.display(), rel.display());
            }
        }
        let _ = writeln!(s);
    }
    let comparisons: Vec<&PathBuf> =
        rendered.files.iter().filter(|f| f.to_string_lossy().ends_with("-boards.png")).collect();
    if !comparisons.is_empty() {
        let _ = writeln!(s, "## Board comparison\n");
        let _ = writeln!(s, "On QEMU every board counts instructions, so the comparison shows what the instruction set and the code generation change (Cortex-M3 has no DSP instructions, the M33 is Armv8-M), not memory wait states or pipelines: only boards give cycles.\n");
        for f in comparisons {
            let rel = f.strip_prefix(folder).unwrap_or(f);
            let _ = writeln!(s, "![{}]({})", rel.display(), rel.display());
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::plan::Grid;

    fn row(model: &str, hash: &str, board: &str, split: u16, ram: u64, count: u64) -> Row {
        Row {
            run_id: format!("{model}-{hash}-{board}-{split}"),
            board: board.into(),
            model: model.into(),
            model_hash: hash.into(),
            split,
            patches: if split == 0 { Grid::ONE } else { Grid::new(2, 2) },
            status: Status::Ok,
            cycles_min: Some(count),
            cycles_median: Some(count),
            cycles_max: Some(count),
            arena_planned_bytes: ram - 1000,
            arena_measured_bytes: Some(ram - 1000),
            stack_measured_bytes: Some(600),
            static_ram_bytes: Some(400),
            total_ram_bytes: Some(ram),
            macs: 1000,
            planned_macs: 1000 + u64::from(split),
            kernels: harness::kernels::KernelSet::Dsp,
            ..Row::default()
        }
    }

    #[test]
    fn models_sharing_a_name_get_figures_of_their_own_and_unknown_boards_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![
            row("model", "aaaaaaaa00000000", "qemu-m4", 0, 50_000, 1_000_000),
            row("model", "aaaaaaaa00000000", "qemu-m4", 4, 30_000, 1_200_000),
            row("model", "bbbbbbbb00000000", "qemu-m4", 0, 60_000, 2_000_000),
            row("model", "bbbbbbbb00000000", "qemu-m4", 4, 40_000, 2_400_000),
            // Merged from a machine whose catalog had this board.
            row("other", "cccccccc00000000", "my-lab-board", 0, 10_000, 500_000),
        ];
        let set = ResultSet { rows, ..ResultSet::empty() };
        let out = render(&set, dir.path(), &[]).unwrap();
        let names: BTreeSet<String> =
            out.files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
        for stem in ["model-aaaaaaaa-qemu-m4-pareto", "model-bbbbbbbb-qemu-m4-pareto"] {
            assert!(names.contains(&format!("{stem}.svg")) && names.contains(&format!("{stem}.png")), "{names:?}");
        }
        assert!(!names.iter().any(|n| n.starts_with("other")), "{names:?}");
        assert!(out.notes.iter().any(|n| n.contains("my-lab-board") && n.contains("left out")), "{:?}", out.notes);
        for f in &out.files {
            assert!(f.is_file(), "{} written", f.display());
        }
        // Nothing but the figures in the folder: no temporary file left behind.
        let all = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(all, out.files.len());
    }

    #[test]
    fn words_for_pasting_stay_one_literal_word_in_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        for word in
            ["$(touch PWNED)`id`;x.tflite", "a b'c\"d$HOME\\e", "=cmd|calc!A0.tflite", "plain/path.tflite", "-rf"]
        {
            let quoted = shell_word(word);
            assert!(!quoted.contains('`'), "{quoted}");
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf '%s' {quoted}"))
                .current_dir(dir.path())
                .output()
                .unwrap();
            let want = word.replace('`', "?");
            assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{word} as {quoted}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing ran");
    }
}
