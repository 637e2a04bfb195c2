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

/// Largest sum of live bytes at any step: no layout can be smaller.
pub fn lower_bound(buffers: &[Interval]) -> usize {
    let steps = buffers.iter().map(|b| b.last + 1).max().unwrap_or(0);
    (0..steps).map(|s| buffers.iter().filter(|b| b.first <= s && s <= b.last).map(|b| b.size).sum()).max().unwrap_or(0)
}

/// Places buffers in the given order, each at the lowest aligned offset where it does not
/// collide with an already placed buffer that is live at the same time.
fn place(buffers: &[Interval], order: &[usize]) -> (Vec<usize>, usize) {
    let mut offsets = vec![usize::MAX; buffers.len()];
    let mut placed: Vec<usize> = Vec::with_capacity(buffers.len());
    let mut peak = 0;
    for &i in order {
        let b = &buffers[i];
        if b.size == 0 {
            offsets[i] = 0;
            continue;
        }
        // Conflicting placed buffers sorted by offset; scan the gaps between them.
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&j| buffers[j].overlaps(b))
            .map(|&j| (offsets[j], offsets[j] + buffers[j].size))
            .collect();
        busy.sort_unstable();
        let mut candidate = 0;
        for (start, end) in busy {
            if candidate + b.size <= start {
                break;
            }
            candidate = candidate.max(end.next_multiple_of(ALIGN));
        }
        offsets[i] = candidate;
        peak = peak.max(candidate + b.size);
        placed.push(i);
    }
    (offsets, peak)
}

/// Tries every [`Order`] and keeps the smallest arena.
pub fn layout(buffers: &[Interval]) -> Layout {
    let mut best: Option<Layout> = None;
    for order in [Order::Size, Order::Lifetime, Order::Area, Order::FirstUse] {
        let mut idx: Vec<usize> = (0..buffers.len()).collect();
        let key = |i: &usize| {
            let b = &buffers[*i];
            let life = b.last - b.first + 1;
            match order {
                Order::Size => (usize::MAX - b.size, 0),
                Order::Lifetime => (usize::MAX - life, usize::MAX - b.size),
                Order::Area => (usize::MAX - b.size * life, 0),
                Order::FirstUse => (b.first, usize::MAX - b.size),
            }
        };
        idx.sort_by_key(|i| (key(i), *i));
        let (offsets, peak) = place(buffers, &idx);
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
        assert_eq!(lower_bound(&bufs), 160);
    }

    #[test]
    fn beats_greedy_by_size_where_it_can() {
        // Greedy-by-size places the 40s first and strands the 30s above them.
        let bufs = [iv(40, 0, 1), iv(40, 3, 4), iv(30, 1, 3), iv(30, 0, 0), iv(30, 4, 4)];
        let by_size = {
            let mut idx: Vec<usize> = (0..bufs.len()).collect();
            idx.sort_by_key(|&i| usize::MAX - bufs[i].size);
            place(&bufs, &idx).1
        };
        let l = layout(&bufs);
        assert!(l.peak <= by_size);
        assert_eq!(l.peak, lower_bound(&bufs));
    }

    proptest! {
        #[test]
        fn layouts_never_overlap_and_respect_the_bound(
            raw in prop::collection::vec((1usize..500, 0usize..12, 0usize..5), 1..25)
        ) {
            let bufs: Vec<Interval> = raw.iter().map(|&(s, f, l)| iv(s, f, f + l)).collect();
            let l = layout(&bufs);
            prop_assert!(l.peak >= lower_bound(&bufs));
            for (i, a) in bufs.iter().enumerate() {
                prop_assert_eq!(l.offsets[i] % ALIGN, 0);
                prop_assert!(l.offsets[i] + a.size <= l.peak);
                for (j, b) in bufs.iter().enumerate().skip(i + 1) {
                    if a.overlaps(b) {
                        let (oa, ob) = (l.offsets[i], l.offsets[j]);
                        prop_assert!(oa + a.size <= ob || ob + b.size <= oa, "{:?} {:?}", a, b);
                    }
                }
            }
        }
    }
}
