//! The cycles model of `recommend` and the figures: cycles (instructions on QEMU) of one
//! inference as a non-negative sum of per-op-kind costs, fitted on measured rows.
//!
//! A config's work is counted from its plan, exactly as the kernels loop over it: in-bounds
//! window taps (a padded border does less work than a full window), MACs, requantized and
//! copied outputs, output pixels, kernel calls, patches. Each count gets a coefficient
//! (cycles per unit), fitted by non-negative least squares on relative errors, so a
//! coefficient says what one unit of that work costs on that board and kernel set.

use crate::results::Row;
use harness::model::{Model, OpKind};
use harness::plan::Plan;
use serde::{Deserialize, Serialize};

/// Number of work counts.
pub const TERMS: usize = 27;

/// Names of the counts, as `--explain` prints them. They follow the loops of the kernels:
/// CONV_2D runs its input-channel loop four at a time, then the remainder.
pub const TERM_NAMES: [&str; TERMS] = [
    "conv: 4 input channels x tap x output channel",
    "conv: remainder input channel x tap x output channel",
    "conv: window tap x output channel",
    "conv: window row x output channel",
    "conv: output element (requantized)",
    "conv: output pixel",
    "depthwise: MAC (tap x channel)",
    "depthwise: window row x channel",
    "depthwise: output element (requantized)",
    "depthwise: output pixel",
    "pool: window tap x channel",
    "pool: output element",
    "pool: output pixel",
    "fully-connected: MAC",
    "fully-connected: output element",
    "ADD: output element",
    "copied byte (PAD, RESHAPE tile, row buffer, input copy)",
    "copy (a PAD or RESHAPE tile pixel, a row-buffer row, the input)",
    "SOFTMAX/MEAN: element",
    "kernel call",
    "patch",
    "inference",
    "conv: window value widened (output pixel x window value)",
    "conv: MAC of a window over 576 values",
    "kernel call x output channel",
    "depthwise: kernel call x tap x channel",
    "other element-wise op: output element",
];

/// The work of one inference under one config, one count per term of [`TERM_NAMES`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Work(pub [f64; TERMS]);

/// Per output position `o` in `[o0, o0 + n)`: the window taps along one axis that fall
/// inside the input (padding contributes nothing and costs nothing in the kernels).
fn taps_each(o0: u16, n: u16, stride: u8, pad: u8, kernel: u8, size: u16) -> impl Iterator<Item = u64> {
    (o0..o0 + n).map(move |o| {
        let origin = i64::from(o) * i64::from(stride) - i64::from(pad);
        let lo = (-origin).max(0);
        let hi = (i64::from(size) - origin).clamp(0, i64::from(kernel));
        (hi - lo).max(0) as u64
    })
}

#[cfg(test)]
fn taps(o0: u16, n: u16, stride: u8, pad: u8, kernel: u8, size: u16) -> u64 {
    taps_each(o0, n, stride, pad, kernel, size).sum()
}

/// Counts the work of `plan` (made for `model`).
pub fn work(model: &Model, plan: &Plan) -> Work {
    let mut w = [0f64; TERMS];
    for (i, op) in model.ops.iter().enumerate() {
        let out = model.tensor(op.output);
        let regions = plan.op_regions(model, i);
        let c = f64::from(out.c);
        // An op writing over its dying input runs row by row: a kernel call per row.
        let row_calls = plan.ops.get(i).is_some_and(|o| o.overwrites_input);
        for r in regions {
            let pixels = r.pixels() as f64;
            let elems = pixels * c;
            let calls = if row_calls { f64::from(r.h) } else { 1.0 };
            w[19] += calls;
            w[24] += calls * c;
            // (taps, window rows) summed over the region's pixels.
            let window = |win: harness::model::Window| {
                let input = model.tensor(op.inputs[0]);
                let ty: Vec<u64> = taps_each(r.y0, r.h, win.sh, win.pad_top, win.kh, input.h).collect();
                let tx: u64 = taps_each(r.x0, r.w, win.sw, win.pad_left, win.kw, input.w).sum();
                let ty_sum: u64 = ty.iter().sum();
                ((ty_sum * tx) as f64, (ty_sum * u64::from(r.w)) as f64)
            };
            match op.kind {
                OpKind::Conv2d(k) => {
                    let (taps, rows) = window(k.window);
                    let ic = model.tensor(op.inputs[0]).c;
                    w[0] += taps * c * f64::from(ic / 4);
                    w[1] += taps * c * f64::from(ic % 4);
                    w[2] += taps * c;
                    w[3] += rows * c;
                    w[4] += elems;
                    w[5] += pixels;
                    // Kernels that widen each pixel's window once (the DSP set) pay per value;
                    // windows too large for their scratch take another path.
                    let values = f64::from(k.window.kh) * f64::from(k.window.kw) * f64::from(ic);
                    if values <= 576.0 {
                        w[22] += pixels * values;
                    } else {
                        w[23] += taps * c * f64::from(ic);
                    }
                }
                OpKind::DepthwiseConv2d(k) => {
                    let (taps, rows) = window(k.window);
                    w[6] += taps * c;
                    w[7] += rows * c;
                    w[8] += elems;
                    w[9] += pixels;
                    w[25] += calls * f64::from(k.window.kh) * f64::from(k.window.kw) * c;
                }
                OpKind::AveragePool2d(p) | OpKind::MaxPool2d(p) => {
                    w[10] += window(p.window).0 * c;
                    w[11] += elems;
                    w[12] += pixels;
                }
                OpKind::FullyConnected(_) => {
                    w[13] += model.tensor(op.inputs[0]).len() as f64 * c * pixels;
                    w[14] += elems;
                }
                // ADD apart: an optimized set may speed it up (the DSP set does).
                OpKind::Add(_) => w[15] += elems,
                // The other element-wise ops, one requantization per value: the reference
                // kernels in every set, priced on their own.
                OpKind::Mul(_)
                | OpKind::Quantize(_)
                | OpKind::Dequantize
                | OpKind::Activation(..)
                | OpKind::Relu6(_)
                | OpKind::Prelu(_)
                | OpKind::Logistic(_)
                | OpKind::HardSwish(_)
                | OpKind::Maximum
                | OpKind::Minimum => w[26] += elems,
                OpKind::Pad(_) => {
                    w[16] += elems;
                    w[17] += pixels;
                }
                // Outside the stage a RESHAPE is an alias; inside it is a tile copy.
                OpKind::Reshape => {
                    if plan.stage_of(i).is_some() {
                        w[16] += elems;
                        w[17] += pixels;
                    }
                }
                OpKind::Softmax(_) | OpKind::LogSoftmax(_) => w[18] += elems,
                OpKind::Mean(_) | OpKind::ReduceMax(_) => w[18] += model.tensor(op.inputs[0]).len() as f64,
                // Copies, like PAD's.
                OpKind::Transpose(_) | OpKind::ResizeNearest(_) | OpKind::Concat(_) => w[16] += elems,
                // Four products per value.
                OpKind::ResizeBilinear(_) => w[26] += 4.0 * elems,
            }
        }
        if plan.ops.get(i).is_some_and(|o| o.overwrites_input) {
            w[16] += out.len() as f64;
            w[17] += f64::from(out.h);
        }
    }
    if plan.input_in == harness::plan::InputPlacement::Arena {
        w[16] += model.tensor(model.input).bytes() as f64;
        w[17] += 1.0;
    }
    // Each patch of each stage pays the executor's per-patch work (layer-wise: one pass).
    w[20] = plan.stages.iter().map(|s| f64::from(s.patches)).sum::<f64>().max(1.0);
    w[21] = 1.0;
    Work(w)
}

/// Fitted (or default) cycles per unit of each term, for one board.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostModel {
    /// Board the coefficients belong to.
    pub board: String,
    /// Cycles (instructions on QEMU) per unit, in [`TERM_NAMES`] order.
    pub coefficients: Vec<f64>,
    /// Where the coefficients come from (`fitted on N rows of ...` or `default`).
    pub source: String,
    /// Expected `.data + .bss` bytes without the arena on this board.
    #[serde(default)]
    pub static_bytes: u64,
    /// Expected stack high-water mark on this board.
    #[serde(default)]
    pub stack_bytes: u64,
    /// Kernel set of the rows it was fitted on (`reference` in entries written before).
    #[serde(default)]
    pub kernels: harness::kernels::KernelSet,
}

impl CostModel {
    /// Predicted cycles of `work`.
    pub fn predict(&self, work: &Work) -> f64 {
        self.coefficients.iter().zip(work.0).map(|(c, w)| c * w).sum()
    }
}

/// One measured point to fit: its work and its median cycles.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Model name (held-out error leaves one model out at a time).
    pub model: String,
    /// The work of the config.
    pub work: Work,
    /// Measured median cycles (instructions on QEMU).
    pub cycles: f64,
}

/// Fits a [`CostModel`] on `samples` (of one board): non-negative least squares on errors
/// relative to the measured cycles, so a small model counts as much as a large one.
pub fn fit(board: &str, samples: &[Sample]) -> Option<CostModel> {
    if samples.is_empty() {
        return None;
    }
    // Rows divided by the measurement: residuals are relative errors. Columns scaled to a
    // largest entry of 1, so that coordinate descent converges on counts of any magnitude.
    let rows: Vec<[f64; TERMS]> = samples.iter().map(|s| s.work.0.map(|v| v / s.cycles)).collect();
    let mut scale = [0f64; TERMS];
    for r in &rows {
        for (s, v) in scale.iter_mut().zip(r) {
            *s = s.max(v.abs());
        }
    }
    let a: Vec<[f64; TERMS]> =
        rows.iter().map(|r| std::array::from_fn(|j| if scale[j] > 0.0 { r[j] / scale[j] } else { 0.0 })).collect();
    let x = nnls(&a, &vec![1.0; a.len()]);
    let coefficients = (0..TERMS).map(|j| if scale[j] > 0.0 { x[j] / scale[j] } else { 0.0 }).collect();
    let models: std::collections::BTreeSet<&str> = samples.iter().map(|s| s.model.as_str()).collect();
    Some(CostModel {
        board: board.to_string(),
        coefficients,
        source: format!("fitted on {} measured rows of {} model(s) on {board}", samples.len(), models.len()),
        static_bytes: 0,
        stack_bytes: 0,
        kernels: Default::default(),
    })
}

/// `min |A x - b|` subject to `x >= 0`: the active-set method of Lawson and Hanson on the
/// normal equations (Bro and de Jong's formulation), exact for these few unknowns. The
/// terms are strongly collinear (a conv's taps grow with its MACs), where coordinate
/// descent stalls far from the optimum.
fn nnls(a: &[[f64; TERMS]], b: &[f64]) -> [f64; TERMS] {
    let mut g = [[0f64; TERMS]; TERMS];
    let mut c = [0f64; TERMS];
    for (row, &bi) in a.iter().zip(b) {
        for i in 0..TERMS {
            c[i] += row[i] * bi;
            for j in 0..TERMS {
                g[i][j] += row[i] * row[j];
            }
        }
    }
    let trace: f64 = (0..TERMS).map(|i| g[i][i]).sum();
    let tol = 1e-12 * trace.max(1.0);
    // The unconstrained solution on the passive set, zero elsewhere.
    let solve = |passive: &[bool; TERMS]| -> [f64; TERMS] {
        let idx: Vec<usize> = (0..TERMS).filter(|&i| passive[i]).collect();
        let n = idx.len();
        let mut m: Vec<Vec<f64>> = idx
            .iter()
            .map(|&i| {
                let mut r: Vec<f64> = idx.iter().map(|&j| g[i][j]).collect();
                r[idx.iter().position(|&j| j == i).unwrap_or(0)] += tol;
                r.push(c[i]);
                r
            })
            .collect();
        for col in 0..n {
            let pivot = (col..n).max_by(|&x, &y| m[x][col].abs().total_cmp(&m[y][col].abs())).unwrap_or(col);
            m.swap(col, pivot);
            if m[col][col].abs() < f64::MIN_POSITIVE {
                continue;
            }
            let pivot_row = m[col].clone();
            for (r, row) in m.iter_mut().enumerate() {
                if r != col {
                    let f = row[col] / pivot_row[col];
                    for (v, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                        *v -= f * p;
                    }
                }
            }
        }
        let mut s = [0f64; TERMS];
        for (k, &i) in idx.iter().enumerate() {
            s[i] = if m[k][k].abs() < f64::MIN_POSITIVE { 0.0 } else { m[k][n] / m[k][k] };
        }
        s
    };
    let gradient = |x: &[f64; TERMS]| -> [f64; TERMS] {
        std::array::from_fn(|i| c[i] - (0..TERMS).map(|j| g[i][j] * x[j]).sum::<f64>())
    };
    let mut x = [0f64; TERMS];
    let mut passive = [false; TERMS];
    for _ in 0..10 * TERMS {
        let w = gradient(&x);
        let Some(j) = (0..TERMS).filter(|&i| !passive[i] && w[i] > tol).max_by(|&p, &q| w[p].total_cmp(&w[q])) else {
            break;
        };
        passive[j] = true;
        let mut s = solve(&passive);
        for _ in 0..10 * TERMS {
            if (0..TERMS).all(|i| !passive[i] || s[i] > 0.0) {
                break;
            }
            // Step from x towards s until the first passive coefficient reaches zero.
            let alpha =
                (0..TERMS).filter(|&i| passive[i] && s[i] <= 0.0).map(|i| x[i] / (x[i] - s[i])).fold(1.0, f64::min);
            for i in 0..TERMS {
                x[i] += alpha * (s[i] - x[i]);
                if passive[i] && x[i] <= 0.0 {
                    passive[i] = false;
                    x[i] = 0.0;
                }
            }
            s = solve(&passive);
        }
        x = s;
        for v in &mut x {
            *v = v.max(0.0);
        }
    }
    x
}

/// Held-out error of the cycles model: every model's rows predicted by a model fitted on
/// the other models' rows (every row left out in turn when there is only one model).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct HeldOut {
    /// Median absolute error in %.
    pub median_pct: f64,
    /// Largest absolute error in %.
    pub worst_pct: f64,
    /// Rows predicted.
    pub rows: usize,
}

/// See [`HeldOut`]. `None` with fewer than two samples.
pub fn held_out(board: &str, samples: &[Sample]) -> Option<HeldOut> {
    let mut errors: Vec<f64> = held_out_predictions(board, samples)
        .iter()
        .map(|&(i, p)| ((p - samples[i].cycles) / samples[i].cycles * 100.0).abs())
        .collect();
    if errors.is_empty() {
        return None;
    }
    errors.sort_by(f64::total_cmp);
    Some(HeldOut { median_pct: median(&errors), worst_pct: *errors.last()?, rows: errors.len() })
}

/// `(sample index, held-out prediction)` for every sample that a fit without it (without
/// its model, when there are several models) can predict.
pub fn held_out_predictions(board: &str, samples: &[Sample]) -> Vec<(usize, f64)> {
    let models: std::collections::BTreeSet<&str> = samples.iter().map(|s| s.model.as_str()).collect();
    let mut out = Vec::new();
    let by_model = models.len() >= 2;
    let groups: Vec<Vec<usize>> = if by_model {
        models.iter().map(|m| (0..samples.len()).filter(|&i| samples[i].model == *m).collect()).collect()
    } else {
        (0..samples.len()).map(|i| vec![i]).collect()
    };
    for left_out in groups {
        let train: Vec<Sample> =
            (0..samples.len()).filter(|i| !left_out.contains(i)).map(|i| samples[i].clone()).collect();
        if let Some(fitted) = fit(board, &train) {
            out.extend(left_out.iter().map(|&i| (i, fitted.predict(&samples[i].work))));
        }
    }
    out
}

/// Median of sorted values.
pub fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The samples of every `ok` row of `board` (and its kernel set) in `set` whose model is
/// known (its plan gives the work).
pub fn samples(set: &crate::results::ResultSet, board: &crate::boards::Board) -> Vec<Sample> {
    set.rows
        .iter()
        .filter(|r| r.board == board.name && r.kernels == board.kernels() && r.status == crate::results::Status::Ok)
        .filter_map(|r| set.models.get(&r.model_hash).and_then(|m| sample(&m.as_model(), r)))
        .collect()
}

/// The sample of a measured `ok` row whose model is `model`, or `None` when the row has no
/// cycles or its config does not plan.
pub fn sample(model: &Model, row: &Row) -> Option<Sample> {
    let cycles = row.cycles_median? as f64;
    let plan = harness::plan::plan_schedule(model, &row.schedule, row.input_in, Default::default()).ok()?;
    Some(Sample { model: row.model.clone(), work: work(model, &plan), cycles })
}

/// Default cycles models per board, used where no measured rows of the board are given:
/// fitted on the committed results (`scripts/figures.sh` refreshes them).
const DEFAULTS: &str = include_str!("../cost-defaults.toml");

#[derive(Deserialize)]
struct Defaults {
    model: Vec<CostModel>,
}

/// The default model of `board` and its kernel set, else of a board with the same core and
/// kernel set, else `None`.
pub fn default_for(board: &crate::boards::Board) -> Option<CostModel> {
    let defaults: Defaults = toml::from_str(DEFAULTS).ok()?;
    let all = crate::boards::all().ok()?;
    let cpu_of = |name: &str| all.iter().find(|b| b.name == name).map(|b| b.cpu.clone());
    let sets = defaults.model.iter().filter(|m| m.kernels == board.kernels());
    let exact = sets.clone().find(|m| m.board == board.name);
    let same_core = || sets.clone().find(|m| cpu_of(&m.board).as_deref() == Some(board.cpu.as_str()));
    exact.or_else(same_core).map(|m| CostModel {
        board: board.name.clone(),
        coefficients: m.coefficients.clone(),
        source: format!("default for {} (fitted on the committed results of {})", board.name, m.board),
        static_bytes: m.static_bytes,
        stack_bytes: m.stack_bytes,
        kernels: m.kernels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_clip_padding() {
        // 3-wide window, stride 1, pad 1, over 4 inputs: 2 + 3 + 3 + 2 taps.
        assert_eq!(taps(0, 4, 1, 1, 3, 4), 10);
        assert_eq!(taps(1, 2, 1, 1, 3, 4), 6);
        // Stride 2, no padding, 1x1: one tap each.
        assert_eq!(taps(0, 3, 2, 0, 1, 6), 3);
    }

    #[test]
    fn fit_recovers_known_costs_and_stays_non_negative() {
        let truth: [f64; TERMS] = std::array::from_fn(|j| if j % 3 == 1 { 0.0 } else { (j * j + 1) as f64 });
        let mut rng = 1u64;
        let mut next = || {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (rng >> 33) as f64 / (1u64 << 31) as f64
        };
        let samples: Vec<Sample> = (0..40)
            .map(|i| {
                let work = Work(std::array::from_fn(|j| if j == TERMS - 1 { 1.0 } else { (next() * 1e6).round() }));
                let cycles = truth.iter().zip(work.0).map(|(c, w)| c * w).sum();
                Sample { model: format!("m{}", i % 4), work, cycles }
            })
            .collect();
        let m = fit("b", &samples).unwrap();
        for s in &samples {
            let err = (m.predict(&s.work) - s.cycles).abs() / s.cycles;
            assert!(err < 1e-6, "{err}");
        }
        assert!(m.coefficients.iter().all(|&c| c >= 0.0));
        let h = held_out("b", &samples).unwrap();
        assert_eq!(h.rows, 40);
        assert!(h.worst_pct < 1e-3, "{h:?}");
    }
}
