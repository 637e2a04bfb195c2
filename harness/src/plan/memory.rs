//! Arena layout: offsets for buffers with known sizes and lifetimes (dynamic storage
//! allocation over a fixed schedule). Host side.

/// Offsets are multiples of this, so later optimized kernels may use word loads.
pub const ALIGN: usize = 4;

/// A buffer to place: `size` bytes live from step `first` through step `last` (inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    /// Bytes.
    pub size: usize,
    /// First step the buffer is live (written).
    pub first: usize,
    /// Last step the buffer is live (read).
    pub last: usize,
}

impl Interval {
    fn overlaps(&self, other: &Interval) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// Placement heuristics tried; the plan keeps the best.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Largest first (TFLM's greedy-by-size).
    Size,
    /// Longest lifetime first.
    Lifetime,
    /// Largest size x lifetime first.
    Area,
    /// Schedule order (first use), larger first among ties.
    FirstUse,
}

/// `buffers[later]` may overlap `buffers[earlier]`, starting `lag` bytes before it: an op
/// that overwrites its dying input (`earlier`) with its output (`later`) row by row (see
/// [`crate::plan::overlap_lag`]). `lag` is a multiple of [`ALIGN`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tie {
    /// The input buffer.
    pub earlier: usize,
    /// The output buffer.
    pub later: usize,
    /// Bytes the output starts before the input.
    pub lag: usize,
}

/// The result of placing all buffers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Offset of each buffer, in input order.
    pub offsets: Vec<usize>,
    /// Arena bytes: highest `offset + size`.
    pub peak: usize,
    /// Which ordering produced it.
    pub order: Order,
}

/// Buffers placed together: tied buffers at fixed offsets from each other, or one buffer.
#[derive(Clone, Debug)]
struct Unit {
    /// `(buffer, offset from the unit's start)`.
    members: Vec<(usize, usize)>,
    /// Bytes from the unit's start to its highest member end.
    size: usize,
    first: usize,
    last: usize,
}

/// Groups buffers connected by ties into units (chains: every buffer is the input of at most
/// one tie and the output of at most one).
fn units(buffers: &[Interval], ties: &[Tie]) -> Vec<Unit> {
    let mut unit_of = vec![usize::MAX; buffers.len()];
    let mut units = Vec::new();
    for root in 0..buffers.len() {
        if unit_of[root] != usize::MAX {
            continue;
        }
        // Offsets relative to `root`, walking ties both ways.
        let mut members: Vec<(usize, isize)> = vec![(root, 0)];
        unit_of[root] = units.len();
        let mut k = 0;
        while k < members.len() {
            let (b, rel) = members[k];
            for t in ties {
                let next = if t.earlier == b {
                    Some((t.later, rel - t.lag as isize))
                } else if t.later == b {
                    Some((t.earlier, rel + t.lag as isize))
                } else {
                    None
                };
                if let Some((n, r)) = next {
                    if unit_of[n] == usize::MAX {
                        unit_of[n] = units.len();
                        members.push((n, r));
                    }
                }
            }
            k += 1;
        }
        let min = members.iter().map(|&(_, r)| r).min().unwrap_or(0);
        let members: Vec<(usize, usize)> = members.into_iter().map(|(b, r)| (b, (r - min) as usize)).collect();
        let size = members.iter().map(|&(b, r)| r + buffers[b].size).max().unwrap_or(0);
        let first = members.iter().map(|&(b, _)| buffers[b].first).min().unwrap_or(0);
        let last = members.iter().map(|&(b, _)| buffers[b].last).max().unwrap_or(0);
        units.push(Unit { members, size, first, last });
    }
    units
}

/// Bytes of the arena in use at `step`: the union of the ranges of the live buffers of each
/// unit (tied buffers overlap), summed over units. Layout-independent.
fn live_in_units(buffers: &[Interval], units: &[Unit], step: usize) -> usize {
    units
        .iter()
        .map(|u| {
            let mut ranges: Vec<(usize, usize)> = u
                .members
                .iter()
                .filter(|&&(b, _)| buffers[b].first <= step && step <= buffers[b].last && buffers[b].size > 0)
                .map(|&(b, r)| (r, r + buffers[b].size))
                .collect();
            ranges.sort_unstable();
            let (mut total, mut reach) = (0, 0);
            for (start, end) in ranges {
                let start = start.max(reach);
                if end > start {
                    total += end - start;
                    reach = end;
                }
            }
            total
        })
        .sum()
}

/// Arena bytes live at each step (tied buffers counted once where they overlap).
pub fn live_by_step(buffers: &[Interval], ties: &[Tie]) -> Vec<usize> {
    let units = units(buffers, ties);
    let steps = buffers.iter().map(|b| b.last + 1).max().unwrap_or(0);
    (0..steps).map(|s| live_in_units(buffers, &units, s)).collect()
}

/// Largest number of live bytes at any step: no layout can be smaller.
pub fn lower_bound(buffers: &[Interval], ties: &[Tie]) -> usize {
    live_by_step(buffers, ties).into_iter().max().unwrap_or(0)
}

/// A unit member being placed: offset in the unit, size, and the `[start, end)` ranges of
/// placed buffers live at the same time.
type Member = (usize, usize, Vec<(usize, usize)>);

/// Places units in the given order, each at the lowest aligned offset where none of its
/// members collides with an already placed buffer that is live at the same time.
fn place(buffers: &[Interval], units: &[Unit], order: &[usize]) -> (Vec<usize>, usize) {
    let mut offsets = vec![usize::MAX; buffers.len()];
    let mut placed: Vec<usize> = Vec::with_capacity(buffers.len());
    let mut peak = 0;
    for &u in order {
        let unit = &units[u];
        let members: Vec<Member> = unit
            .members
            .iter()
            .filter(|&&(b, _)| buffers[b].size > 0)
            .map(|&(b, rel)| {
                let busy = placed
                    .iter()
                    .filter(|&&j| buffers[j].overlaps(&buffers[b]))
                    .map(|&j| (offsets[j], offsets[j] + buffers[j].size))
                    .collect();
                (rel, buffers[b].size, busy)
            })
            .collect();
        // The lowest fit starts at 0 or puts some member right above a busy range.
        let mut candidates: Vec<usize> = vec![0];
        for (rel, _, busy) in &members {
            candidates.extend(
                busy.iter().filter(|&&(_, end)| end >= *rel).map(|&(_, end)| (end - rel).next_multiple_of(ALIGN)),
            );
        }
        candidates.sort_unstable();
        candidates.dedup();
        let fits = |base: usize| {
            members.iter().all(|(rel, size, busy)| {
                let (lo, hi) = (base + rel, base + rel + size);
                busy.iter().all(|&(start, end)| hi <= start || end <= lo)
            })
        };
        let base = candidates.into_iter().find(|&c| fits(c)).unwrap_or(0);
        for &(b, rel) in &unit.members {
            offsets[b] = if buffers[b].size == 0 { 0 } else { base + rel };
            if buffers[b].size > 0 {
                placed.push(b);
                peak = peak.max(base + rel + buffers[b].size);
            }
        }
    }
    (offsets, peak)
}

/// Lays out buffers without ties: [`layout_tied`] with none.
pub fn layout(buffers: &[Interval]) -> Layout {
    layout_tied(buffers, &[])
}

/// Tries every [`Order`] and keeps the smallest arena. Tied buffers keep their offsets from
/// each other; all other buffers that are live at the same time never overlap.
pub fn layout_tied(buffers: &[Interval], ties: &[Tie]) -> Layout {
    let units = units(buffers, ties);
    let mut best: Option<Layout> = None;
    for order in [Order::Size, Order::Lifetime, Order::Area, Order::FirstUse] {
        let mut idx: Vec<usize> = (0..units.len()).collect();
        let key = |i: &usize| {
            let u = &units[*i];
            let life = u.last - u.first + 1;
            match order {
                Order::Size => (usize::MAX - u.size, 0),
                Order::Lifetime => (usize::MAX - life, usize::MAX - u.size),
                Order::Area => (usize::MAX - u.size * life, 0),
                Order::FirstUse => (u.first, usize::MAX - u.size),
            }
        };
        idx.sort_by_key(|i| (key(i), *i));
        let (offsets, peak) = place(buffers, &units, &idx);
        if best.as_ref().is_none_or(|b| peak < b.peak) {
            best = Some(Layout { offsets, peak, order });
        }
    }
    best.unwrap_or(Layout { offsets: Vec::new(), peak: 0, order: Order::Size })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn iv(size: usize, first: usize, last: usize) -> Interval {
        Interval { size, first, last }
    }

    #[test]
    fn chain_ping_pongs_between_two_slots() {
        // a -> b -> c -> d, each op reads one and writes the next.
        let bufs = [iv(100, 0, 1), iv(60, 1, 2), iv(100, 2, 3), iv(8, 3, 3)];
        let l = layout(&bufs);
        assert_eq!(l.peak, 160);
        assert_eq!(lower_bound(&bufs, &[]), 160);
    }

    #[test]
    fn beats_greedy_by_size_where_it_can() {
        // Greedy-by-size places the 40s first and strands the 30s above them.
        let bufs = [iv(40, 0, 1), iv(40, 3, 4), iv(30, 1, 3), iv(30, 0, 0), iv(30, 4, 4)];
        let by_size = {
            let mut idx: Vec<usize> = (0..bufs.len()).collect();
            idx.sort_by_key(|&i| usize::MAX - bufs[i].size);
            place(&bufs, &units(&bufs, &[]), &idx).1
        };
        let l = layout(&bufs);
        assert!(l.peak <= by_size);
        assert_eq!(l.peak, lower_bound(&bufs, &[]));
    }

    #[test]
    fn tied_buffers_overlap_by_their_lag() {
        // a -> b -> c where b overwrites a (lag 8) and c overwrites b (lag 0).
        let bufs = [iv(100, 0, 1), iv(100, 1, 2), iv(60, 2, 3), iv(8, 1, 1)];
        let ties = [Tie { earlier: 0, later: 1, lag: 8 }, Tie { earlier: 1, later: 2, lag: 0 }];
        let l = layout_tied(&bufs, &ties);
        assert_eq!(l.offsets[1] + 8, l.offsets[0]);
        assert_eq!(l.offsets[2], l.offsets[1]);
        // 108 for a and b together, 8 for the row buffer beside them.
        assert_eq!(lower_bound(&bufs, &ties), 116);
        assert_eq!(l.peak, 116);
        assert_eq!(live_by_step(&bufs, &ties)[2], 100);
        assert_eq!(lower_bound(&bufs, &[]), 208);
    }

    proptest! {
        #[test]
        fn layouts_never_overlap_but_where_tied_and_respect_the_bound(
            raw in prop::collection::vec((1usize..500, 0usize..12, 0usize..5), 1..25),
            lag_pick in prop::collection::vec(any::<bool>(), 25),
        ) {
            let bufs: Vec<Interval> = raw.iter().map(|&(s, f, l)| iv(s, f, f + l)).collect();
            // Tie buffers that die exactly when another is born, as an op overwriting its
            // input would (each at most once on either side).
            let mut ties: Vec<Tie> = Vec::new();
            for (e, a) in bufs.iter().enumerate() {
                let later = bufs.iter().enumerate().position(|(k, b)| {
                    k != e && b.first == a.last && a.first < b.first && !ties.iter().any(|t| t.later == k)
                });
                if let (Some(k), true) = (later, lag_pick.get(e).copied().unwrap_or(false)) {
                    ties.push(Tie { earlier: e, later: k, lag: (bufs[k].size / 3).next_multiple_of(ALIGN) });
                }
            }
            let l = layout_tied(&bufs, &ties);
            prop_assert!(l.peak >= lower_bound(&bufs, &ties));
            for t in &ties {
                prop_assert_eq!(l.offsets[t.later] + t.lag, l.offsets[t.earlier]);
            }
            let tied = |i: usize, j: usize| ties.iter().any(|t| (t.earlier, t.later) == (i, j) || (t.earlier, t.later) == (j, i));
            for (i, a) in bufs.iter().enumerate() {
                prop_assert_eq!(l.offsets[i] % ALIGN, 0);
                prop_assert!(l.offsets[i] + a.size <= l.peak);
                for (j, b) in bufs.iter().enumerate().skip(i + 1) {
                    if a.overlaps(b) && !tied(i, j) {
                        let (oa, ob) = (l.offsets[i], l.offsets[j]);
                        prop_assert!(oa + a.size <= ob || ob + b.size <= oa, "{:?} {:?}", a, b);
                    }
                }
            }
        }
    }
}
