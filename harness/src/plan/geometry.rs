//! Spatial geometry shared by the planner and the executors: regions, receptive fields
//! (halos) and MAC counts. `no_std`, allocation-free.

use crate::model::{Model, Op, OpKind, Tensor, Window};

/// A rectangle of rows and columns of a tensor, in the tensor's own (global) coordinates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Region {
    /// First row.
    pub y0: u16,
    /// First column.
    pub x0: u16,
    /// Rows.
    pub h: u16,
    /// Columns.
    pub w: u16,
}

impl Region {
    /// The whole of a tensor.
    pub const fn full(t: &Tensor) -> Region {
        Region { y0: 0, x0: 0, h: t.h, w: t.w }
    }

    /// Pixels in the region.
    pub const fn pixels(&self) -> usize {
        self.h as usize * self.w as usize
    }

    /// True for an empty region.
    pub const fn is_empty(&self) -> bool {
        self.h == 0 || self.w == 0
    }

    /// Smallest region holding both (an empty region is the identity).
    pub fn union(self, other: Region) -> Region {
        if self.is_empty() {
            return other;
        }
        if other.is_empty() {
            return self;
        }
        let y0 = self.y0.min(other.y0);
        let x0 = self.x0.min(other.x0);
        let y1 = (self.y0 + self.h).max(other.y0 + other.h);
        let x1 = (self.x0 + self.w).max(other.x0 + other.w);
        Region { y0, x0, h: y1 - y0, w: x1 - x0 }
    }

    /// True when `other` lies inside `self`.
    pub const fn contains(&self, other: &Region) -> bool {
        other.y0 >= self.y0
            && other.x0 >= self.x0
            && other.y0 + other.h <= self.y0 + self.h
            && other.x0 + other.w <= self.x0 + self.w
    }
}

/// Input interval `[start, end)` along one axis needed for output interval `[a, a + n)`:
/// `(n - 1) * stride + kernel` rows starting at `a * stride - pad`, clipped to the input
/// (the clipped part is the op's own zero padding; nothing when it is all padding).
const fn axis_halo(a: u16, n: u16, kernel: u8, stride: u8, pad: u8, input: u16) -> (u16, u16) {
    let start = a as i32 * stride as i32 - pad as i32;
    let end = start + (n as i32 - 1) * stride as i32 + kernel as i32;
    // Clipped to the input; empty where the outputs read only padding (a PAD's border).
    let lo = if start < 0 {
        0
    } else if start > input as i32 {
        input as i32
    } else {
        start
    };
    let hi = if end > input as i32 {
        input as i32
    } else if end < lo {
        lo
    } else {
        end
    };
    (lo as u16, (hi - lo) as u16)
}

/// The region of `input` that op `op` reads to produce `out` of its output (`output`).
pub fn input_region(op: &Op, input: &Tensor, output: &Tensor, out: Region) -> Region {
    if out.is_empty() {
        return out;
    }
    match (op.kind.window(), &op.kind) {
        (Some(Window { kh, kw, sh, sw, pad_top, pad_left, .. }), _) => {
            let (y0, h) = axis_halo(out.y0, out.h, kh, sh, pad_top, input.h);
            let (x0, w) = axis_halo(out.x0, out.w, kw, sw, pad_left, input.w);
            Region { y0, x0, h, w }
        }
        // PAD: a 1x1 window shifted by the leading padding.
        (None, OpKind::Pad(p)) => {
            let (y0, h) = axis_halo(out.y0, out.h, 1, 1, p.top, input.h);
            let (x0, w) = axis_halo(out.x0, out.w, 1, 1, p.left, input.w);
            Region { y0, x0, h, w }
        }
        // The nearest rows and columns, which grow with the output's.
        (None, OpKind::ResizeNearest(r)) => {
            let (y0, y1) = (r.nearest(out.y0, input.h, output.h), r.nearest(out.y0 + out.h - 1, input.h, output.h));
            let (x0, x1) = (r.nearest(out.x0, input.w, output.w), r.nearest(out.x0 + out.w - 1, input.w, output.w));
            Region { y0, x0, h: y1 - y0 + 1, w: x1 - x0 + 1 }
        }
        // The two source rows and columns around each output's position.
        (None, OpKind::ResizeBilinear(r)) => {
            let (y0, y1) =
                (r.bilinear(out.y0, input.h, output.h).1, r.bilinear(out.y0 + out.h - 1, input.h, output.h).2);
            let (x0, x1) =
                (r.bilinear(out.x0, input.w, output.w).1, r.bilinear(out.x0 + out.w - 1, input.w, output.w).2);
            Region { y0, x0, h: y1.max(y0) - y0 + 1, w: x1.max(x0) - x0 + 1 }
        }
        // Element-wise (ADD, MUL, ...): the same pixels, or the one row or column an input
        // broadcasts.
        (None, _) => Region {
            y0: if input.h == 1 { 0 } else { out.y0 },
            h: if input.h == 1 { 1 } else { out.h },
            x0: if input.w == 1 { 0 } else { out.x0 },
            w: if input.w == 1 { 1 } else { out.w },
        },
    }
}

/// How many bytes before its input's buffer an op's output buffer must start so that the
/// output may overlap the input, when the op computes one output row at a time into a row
/// buffer and then copies it into place: output row `r - 1` may overwrite only input rows
/// that rows `r..` never read. `None` for ops that are not computed row by row (RESHAPE,
/// FULLY_CONNECTED, SOFTMAX).
pub fn overlap_lag(op: &Op, input: &Tensor, out: &Tensor) -> Option<usize> {
    if !op.kind.is_spatial() {
        return None;
    }
    let (in_row, out_row) = (input.w as usize * input.pixel_bytes(), out.w as usize * out.pixel_bytes());
    let mut lag = 0;
    for r in 1..out.h {
        // The first input row that output rows r.. read (the rows above it are dead).
        let first = input_region(op, input, out, Region { y0: r, x0: 0, h: 1, w: out.w }).y0 as usize;
        lag = lag.max((r as usize * out_row).saturating_sub(first * in_row));
    }
    Some(lag)
}

/// Multiply-accumulates of `op` producing `rows x cols` output pixels. CONV_2D,
/// DEPTHWISE_CONV_2D and FULLY_CONNECTED count (the whole kernel, padding included, the usual
/// convention); pools, ADD, RESHAPE and SOFTMAX count zero.
pub fn macs_for_rows(model: &Model, op: &Op, rows: u16, cols: u16) -> u64 {
    let input = model.tensor(op.inputs[0]);
    let out = model.tensor(op.output);
    let pixels = u64::from(rows) * u64::from(cols);
    match &op.kind {
        OpKind::Conv2d(c) => {
            pixels * u64::from(out.c) * u64::from(c.window.kh) * u64::from(c.window.kw) * u64::from(input.c)
        }
        OpKind::DepthwiseConv2d(c) => pixels * u64::from(out.c) * u64::from(c.window.kh) * u64::from(c.window.kw),
        OpKind::FullyConnected(_) => input.len() as u64 * u64::from(out.c),
        _ => 0,
    }
}

/// The `[start, len)` of part `i` when `n` is split into `parts` near-equal parts (the larger
/// parts last).
pub const fn split_axis(n: u16, parts: u16, i: u16) -> (u16, u16) {
    let start = (i as u32 * n as u32 / parts as u32) as u16;
    let end = ((i as u32 + 1) * n as u32 / parts as u32) as u16;
    (start, end - start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Padding;

    #[test]
    fn halo_follows_the_formula_and_clips_at_borders() {
        // 3x3 stride 1 pad 1 on 10 rows: output rows 4..7 need input rows 3..8.
        assert_eq!(axis_halo(4, 3, 3, 1, 1, 10), (3, 5));
        // First rows clip the padding away: output 0..2 needs rows -1..3 -> 0..3.
        assert_eq!(axis_halo(0, 2, 3, 1, 1, 10), (0, 3));
        // Last rows clip at the bottom.
        assert_eq!(axis_halo(8, 2, 3, 1, 1, 10), (7, 3));
        // Stride 2, kernel 3, SAME on 10 -> 5 rows, pad_top 0: outputs 2..5 need 4..10 (clipped).
        assert_eq!(axis_halo(2, 3, 3, 2, 0, 10), (4, 6));
        // g output rows need (g - 1) * s + k input rows in the interior.
        assert_eq!(axis_halo(3, 4, 5, 2, 2, 100).1, (4 - 1) * 2 + 5);
        // A PAD of 2 rows above and below 1 input row: output rows 0..2 and 3..5 are all
        // padding and read nothing (they used to wrap to 65535 rows).
        assert_eq!(axis_halo(0, 2, 1, 1, 2, 1), (0, 0));
        assert_eq!(axis_halo(3, 2, 1, 1, 2, 1), (1, 0));
        assert_eq!(axis_halo(1, 3, 1, 1, 2, 1), (0, 1));
    }

    #[test]
    fn a_region_of_pure_padding_reads_no_input() {
        use crate::model::PadParams;
        let pad = PadParams { top: 2, bottom: 2, left: 1, right: 0, value: -3 };
        let op = Op::new(OpKind::Pad(pad), &[0], 1);
        let input = Tensor::int8(1, 2, 5, 1.0, 0);
        let output = Tensor::int8(5, 3, 5, 1.0, 0);
        let border = input_region(&op, &input, &output, Region { y0: 0, x0: 0, h: 1, w: 3 });
        assert!(border.is_empty() && border.y0 <= input.h && border.x0 <= input.w, "{border:?}");
        let middle = input_region(&op, &input, &output, Region { y0: 2, x0: 0, h: 1, w: 3 });
        assert_eq!(middle, Region { y0: 0, x0: 0, h: 1, w: 2 });
    }

    #[test]
    fn padding_resolution_matches_tflite() {
        assert_eq!(Window::out_size(Padding::Same, 96, 3, 2), 48);
        assert_eq!(Window::leading_pad(Padding::Same, 96, 48, 3, 2), 0);
        assert_eq!(Window::out_size(Padding::Same, 49, 10, 2), 25);
        assert_eq!(Window::leading_pad(Padding::Same, 49, 25, 10, 2), 4);
        assert_eq!(Window::out_size(Padding::Valid, 7, 3, 2), 3);
        assert_eq!(Window::leading_pad(Padding::Same, 5, 5, 3, 1), 1);
    }

    #[test]
    fn overlap_lag_is_what_later_rows_still_need() {
        use crate::model::{Clamp, Conv, OpKind, Pool, Span};
        let t = |h, w, c| Tensor::int8(h, w, c, 1.0, 0);
        let window =
            |k, s, pad| Window { kh: k, kw: k, sh: s, sw: s, padding: Padding::Same, pad_top: pad, pad_left: pad };
        let conv = |k, s, pad| {
            let c = Conv {
                window: window(k, s, pad),
                filter: Span::default(),
                bias: Span::default(),
                multiplier: Span::default(),
                shift: Span::default(),
                clamp: Clamp::NONE,
                packed: Span::default(),
            };
            Op::new(OpKind::Conv2d(c), &[0], 1)
        };
        // 1x1, same row size: row r overwrites only row r, which nobody needs any more.
        assert_eq!(overlap_lag(&conv(1, 1, 0), &t(8, 8, 16), &t(8, 8, 16)), Some(0));
        // 3x3 stride 1: output row r still needs input row r - 1, one row behind.
        assert_eq!(overlap_lag(&conv(3, 1, 1), &t(8, 8, 16), &t(8, 8, 16)), Some(8 * 16));
        // 1x1 widening 8 -> 16 channels: each output row is twice an input row; the lag
        // grows to all but the last output row's excess.
        assert_eq!(overlap_lag(&conv(1, 1, 0), &t(4, 4, 8), &t(4, 4, 16)), Some(3 * 4 * 8));
        // Stride 2 halves the rows: the output never catches up with its input.
        assert_eq!(overlap_lag(&conv(3, 2, 0), &t(8, 8, 16), &t(4, 4, 32)), Some(0));
        let pool = Op::new(OpKind::AveragePool2d(Pool { window: window(2, 2, 0), clamp: Clamp::NONE }), &[0], 1);
        assert_eq!(overlap_lag(&pool, &t(8, 8, 4), &t(4, 4, 4)), Some(0));
        let reshape = Op::new(OpKind::Reshape, &[0], 1);
        assert_eq!(overlap_lag(&reshape, &t(1, 1, 8), &t(1, 1, 8)), None);
    }

    #[test]
    fn axis_split_covers_everything_once() {
        for n in 1..40u16 {
            for parts in 1..=n {
                let mut next = 0;
                for i in 0..parts {
                    let (s, l) = split_axis(n, parts, i);
                    assert_eq!(s, next);
                    assert!(l >= 1);
                    next = s + l;
                }
                assert_eq!(next, n);
            }
        }
    }

    #[test]
    fn union_is_the_bounding_box() {
        let a = Region { y0: 0, x0: 2, h: 3, w: 2 };
        let b = Region { y0: 4, x0: 0, h: 1, w: 1 };
        assert_eq!(a.union(b), Region { y0: 0, x0: 0, h: 5, w: 4 });
        assert_eq!(a.union(Region::default()), a);
    }
}
