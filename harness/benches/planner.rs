//! Planner cost: a layer-wise plan, a patch plan, and a whole config sweep of the zoo's
//! MobileNetV2 (what `patchbench plan --sweep` does).

use criterion::{criterion_group, criterion_main, Criterion};
use harness::plan::{plan, valid_splits, PatchConfig};
use harness::zoo;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let m = zoo::build("mbv2-w0.35-r144").unwrap();
    let model = m.as_model();
    let mut g = c.benchmark_group("planner");
    g.bench_function("mbv2_layerwise", |b| b.iter(|| black_box(plan(&model, PatchConfig::LAYERWISE).unwrap())));
    g.bench_function("mbv2_split13_4x4", |b| b.iter(|| black_box(plan(&model, PatchConfig::new(13, 4, 4)).unwrap())));
    g.sample_size(10);
    g.bench_function("mbv2_sweep_8x8", |b| {
        b.iter(|| {
            for s in valid_splits(&model) {
                let out = model.tensor(model.ops[s as usize - 1].output);
                for n in 2..=8u16.min(out.h) {
                    black_box(plan(&model, PatchConfig::new(s, n, n)).unwrap());
                }
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
