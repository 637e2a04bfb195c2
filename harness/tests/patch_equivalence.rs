//! Oracle 2: patch-based inference reproduces layer-wise inference bit for bit, for every
//! zoo model and random valid patch configurations (and both input placements).

use harness::model::ModelBuf;
use harness::plan::{
    plan, plan_schedule, plan_with, valid_ends, valid_splits, Grid, InputPlacement, PatchConfig, PlanOptions, Schedule,
    Stage, Strategy,
};
use harness::{exec, zoo};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use std::sync::OnceLock;

fn model(name: &str) -> &'static ModelBuf {
    static MODELS: OnceLock<Vec<(String, ModelBuf)>> = OnceLock::new();
    let all = MODELS.get_or_init(|| zoo::MODELS.iter().map(|(n, _)| (n.to_string(), zoo::build(n).unwrap())).collect());
    &all.iter().find(|(n, _)| n == name).unwrap().1
}

fn random_input(len: usize, seed: u64) -> Vec<i8> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.gen()).collect()
}

/// Runs `config` and returns (output, arena bytes).
fn infer(m: &ModelBuf, config: PatchConfig, input: &[i8]) -> (Vec<i8>, usize) {
    infer_with(m, config, PlanOptions::default(), input)
}

fn infer_with(m: &ModelBuf, config: PatchConfig, options: PlanOptions, input: &[i8]) -> (Vec<i8>, usize) {
    let model = m.as_model();
    let p = plan_with(&model, config, options).unwrap_or_else(|e| panic!("{}: {config:?}: {e}", m.name));
    let mut arena = vec![0xa5u8; p.arena_peak_bytes];
    let out = exec::run(&model, &p.exec(), &mut arena, input).unwrap().concat();
    (out, p.arena_peak_bytes)
}

fn check(
    name: &str,
    split_pick: usize,
    nh_pick: u16,
    nw_pick: u16,
    arena_input: bool,
    seed: u64,
) -> Result<(), TestCaseError> {
    let m = model(name);
    let model = m.as_model();
    let splits = valid_splits(&model);
    let split = splits[split_pick % splits.len()];
    let out = model.tensor(model.ops[split as usize - 1].output);
    let nh = 1 + nh_pick % out.h.min(8);
    let nw = 1 + nw_pick % out.w.min(8);
    let input_in = if arena_input { InputPlacement::Arena } else { InputPlacement::Flash };
    let input = random_input(model.tensor(model.input).len(), seed);
    // The reference: layer-wise, every tensor in bytes of its own.
    let (reference, _) = infer_with(m, PatchConfig::LAYERWISE, PlanOptions { overlap: false }, &input);
    let (overlapped, _) = infer(m, PatchConfig::LAYERWISE, &input);
    prop_assert_eq!(&overlapped, &reference, "{} layer-wise with outputs over dying inputs", name);
    let (patched, _) = infer(m, PatchConfig { split, grid: Grid::new(nh, nw), input_in }, &input);
    prop_assert_eq!(patched, reference, "{} split {} {}x{} input in {:?}", name, split, nh, nw, input_in);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn tiny_patch_equals_layerwise(s in 0usize..64, nh in 0u16..64, nw in 0u16..64, a: bool, seed: u64) {
        check("tiny", s, nh, nw, a, seed)?;
    }

    #[test]
    fn resnet8_patch_equals_layerwise(s in 0usize..64, nh in 0u16..64, nw in 0u16..64, a: bool, seed: u64) {
        check("resnet8-r32", s, nh, nw, a, seed)?;
    }
}

proptest! {
    // The two MobileNets take ~0.1-0.3 s per inference pair: fewer cases.
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    #[test]
    fn mbv1_patch_equals_layerwise(s in 0usize..64, nh in 0u16..64, nw in 0u16..64, a: bool, seed: u64) {
        check("mbv1-w0.25-r96", s, nh, nw, a, seed)?;
    }

    #[test]
    fn mbv2_patch_equals_layerwise(s in 0usize..64, nh in 0u16..64, nw in 0u16..64, a: bool, seed: u64) {
        check("mbv2-w0.35-r144", s, nh, nw, a, seed)?;
    }
}

#[test]
fn every_split_of_tiny_with_uneven_grids() {
    let m = model("tiny");
    let model = m.as_model();
    let input = random_input(model.tensor(model.input).len(), 7);
    let (reference, layer_arena) = infer(m, PatchConfig::LAYERWISE, &input);
    for split in valid_splits(&model) {
        let out = model.tensor(model.ops[split as usize - 1].output);
        for (nh, nw) in [(2, 1), (1, 3), (3, 2), (out.h, out.w)] {
            let (patched, _) = infer(m, PatchConfig::new(split, nh.min(out.h), nw.min(out.w)), &input);
            assert_eq!(patched, reference, "split {split} {nh}x{nw}");
        }
    }
    assert!(layer_arena > 0);
}

#[test]
fn residual_splits_are_rejected_with_the_valid_range() {
    let m = model("tiny");
    let model = m.as_model();
    // Ops 0..3 are conv, dw, conv, add(op0, op2): cutting after op 1 or 2 leaves op 0's output
    // needed by the ADD on the other side; after op 0 it is the stage output itself.
    assert_eq!(valid_splits(&model), vec![1, 4, 5, 6, 7]);
    let err = plan(&model, PatchConfig::new(2, 2, 2)).unwrap_err().to_string();
    assert!(err.contains("cuts a branch"), "{err}");
    let err = plan(&model, PatchConfig::new(9, 2, 2)).unwrap_err().to_string();
    assert!(err.contains("needs its whole input") && err.contains("at most 7"), "{err}");
    let err = plan(&model, PatchConfig::new(7, 5, 2)).unwrap_err().to_string();
    assert!(err.contains("1..=4 patch rows"), "{err}");
    let err = plan(&model, PatchConfig::new(0, 2, 2)).unwrap_err().to_string();
    assert!(err.contains("needs a patch stage"), "{err}");
}

#[test]
fn outputs_over_dying_inputs_never_grow_the_arena() {
    for (name, _) in zoo::MODELS {
        let model = model(name).as_model();
        let arena = |options| plan_with(&model, PatchConfig::LAYERWISE, options).unwrap().arena_peak_bytes;
        let (on, off) = (arena(PlanOptions::default()), arena(PlanOptions { overlap: false }));
        assert!(on <= off, "{name}: {on} > {off}");
        if *name == "mbv2-w0.35-r144" {
            // The stride-2 depthwise writes its 36x36x48 output over its 72x72x48 input.
            assert!(on < off, "{name}: {on} vs {off}");
        }
        let p = plan(&model, PatchConfig::LAYERWISE).unwrap();
        let overlapping = p.ops.iter().filter(|o| o.overwrites_input).count();
        assert_eq!(p.row_buffers.iter().filter(|&&r| r != harness::plan::NO_ROW_BUFFER).count(), overlapping);
    }
}

#[test]
fn candidates_are_every_valid_config_once_square_and_not() {
    for name in ["tiny", "resnet8-r32", "mbv1-w0.25-r96"] {
        let m = zoo::build(name).unwrap();
        let model = m.as_model();
        let all = harness::plan::candidates(&model, 4, InputPlacement::Arena);
        assert_eq!(all[0], PatchConfig { input_in: InputPlacement::Arena, ..PatchConfig::LAYERWISE });
        let mut seen = std::collections::HashSet::new();
        for c in &all {
            assert!(seen.insert(c.effective()), "{name}: {c:?} twice");
            assert_eq!(c.input_in, InputPlacement::Arena);
            plan(&model, *c).unwrap_or_else(|e| panic!("{name} {c:?}: {e}"));
        }
        // Exactly the valid configs: every valid split with every grid that fits its output.
        let expected: usize = 1 + valid_splits(&model)
            .iter()
            .map(|&s| {
                let out = model.tensor(model.ops[s as usize - 1].output);
                usize::from(out.h.min(4)) * usize::from(out.w.min(4)) - 1
            })
            .sum::<usize>();
        assert_eq!(all.len(), expected, "{name}");
        assert!(all.iter().any(|c| c.grid.nh != c.grid.nw), "{name}: non-square grids are candidates");
    }
}

/// A random schedule of recompute stages for `m`: stages one after another from op 0, each
/// ending where a stage may end, with a random grid; now and then a one-patch stage (ops run
/// layer-wise) between them, and layer-wise ops after the last.
fn random_schedule(m: &ModelBuf, rng: &mut impl Rng) -> Schedule {
    let model = m.as_model();
    let mut stages = Vec::new();
    let mut start = 0u16;
    while stages.len() < harness::plan::MAX_STAGES - 1 {
        if start > 0 && rng.gen_bool(0.2) && usize::from(start) + 1 < model.ops.len() {
            // A few ops layer by layer before the next stage.
            let end = rng.gen_range(start + 1..model.ops.len() as u16);
            stages.push(Stage { end, grid: Grid::ONE, strategy: Strategy::Recompute });
            start = end;
        }
        let ends = valid_ends(&model, start);
        if ends.is_empty() || rng.gen_bool(0.15) {
            break;
        }
        let end = ends[rng.gen_range(0..ends.len())];
        let out = model.tensor(model.ops[usize::from(end) - 1].output);
        let grid = Grid::new(rng.gen_range(1..=out.h.min(6)), rng.gen_range(1..=out.w.min(6)));
        stages.push(Stage { end, grid, strategy: Strategy::Recompute });
        start = end;
    }
    Schedule::new(&stages).unwrap()
}

/// Oracle 2 for several stages: random recompute schedules of every zoo model give the
/// layer-wise bytes, input in flash and in the arena, in an arena of exactly the planned size.
#[test]
fn multi_stage_schedules_equal_layerwise() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(19);
    let cases = std::env::var("PATCHBENCH_SCHEDULE_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let mut several = 0;
    for (name, _) in zoo::MODELS {
        let m = model(name);
        let model = m.as_model();
        for case in 0..cases {
            let input = random_input(model.tensor(model.input).len(), case);
            let (reference, _) = infer_with(m, PatchConfig::LAYERWISE, PlanOptions { overlap: false }, &input);
            let schedule = random_schedule(m, &mut rng);
            several += usize::from(schedule.effective().stages().len() > 1);
            for input_in in InputPlacement::ALL {
                let p = plan_schedule(&model, &schedule, input_in, PlanOptions::default())
                    .unwrap_or_else(|e| panic!("{name} {schedule}: {e}"));
                let mut arena = vec![0xa5u8; p.arena_peak_bytes];
                let out = exec::run(&model, &p.exec(), &mut arena, &input).unwrap().concat();
                assert!(out == reference, "{name} {schedule} input in {input_in}: output differs from layer-wise");
                let one = schedule.as_one_stage();
                assert_eq!(one.is_some(), p.config().is_some(), "{name} {schedule}");
            }
        }
    }
    assert!(several >= 10, "only {several} schedules had several stages");
}

/// The search (msf-CNN's P1 and P2) over every zoo model: what it finds meets its bound, runs
/// bit for bit as layer-wise, and is never worse than the best one-stage config (one-stage
/// schedules are among the paths searched).
#[test]
fn searched_schedules_meet_their_bound_and_beat_every_one_stage_config() {
    use harness::plan::{candidates, search, Objective};
    for (name, _) in zoo::MODELS {
        let m = model(name);
        let model = m.as_model();
        let input = random_input(model.tensor(model.input).len(), 5);
        let (reference, _) = infer(m, PatchConfig::LAYERWISE, &input);
        let one_stage: Vec<_> =
            candidates(&model, 8, InputPlacement::Flash).into_iter().map(|c| plan(&model, c).unwrap()).collect();
        for factor in [1.0, 1.1, 1.3, 2.0] {
            let p = search(&model, InputPlacement::Flash, Objective::LeastArena { max_mac_factor: factor })
                .unwrap_or_else(|e| panic!("{name} F {factor}: {e}"));
            assert!(p.planned_macs as f64 <= p.macs as f64 * factor, "{name} F {factor}: {}", p.schedule);
            let best = one_stage.iter().filter(|o| o.planned_macs as f64 <= o.macs as f64 * factor);
            let best = best.map(|o| o.arena_peak_bytes).min().unwrap();
            assert!(
                p.arena_peak_bytes <= best,
                "{name} F {factor}: {} {} B > one stage {best} B",
                p.schedule,
                p.arena_peak_bytes
            );
            let mut arena = vec![0u8; p.arena_peak_bytes];
            let out = exec::run(&model, &p.exec(), &mut arena, &input).unwrap().concat();
            assert!(out == reference, "{name} {}: output differs from layer-wise", p.schedule);
            // P2 at that arena: no more MACs than P1's answer, within the budget.
            let q = search(&model, InputPlacement::Flash, Objective::FewestMacs { arena_budget: p.arena_peak_bytes })
                .unwrap_or_else(|e| panic!("{name} budget {}: {e}", p.arena_peak_bytes));
            assert!(q.arena_peak_bytes <= p.arena_peak_bytes, "{name}: {}", q.schedule);
            assert!(
                q.planned_macs <= p.planned_macs,
                "{name}: P2 {} {} MACs > P1 {} {}",
                q.schedule,
                q.planned_macs,
                p.schedule,
                p.planned_macs
            );
        }
        let least = search(&model, InputPlacement::Flash, Objective::LeastArena { max_mac_factor: 100.0 }).unwrap();
        let e =
            search(&model, InputPlacement::Flash, Objective::FewestMacs { arena_budget: least.arena_peak_bytes / 2 });
        assert!(e.is_err(), "{name}: a budget of half the least arena found {:?}", e.map(|p| p.schedule));
    }
}
