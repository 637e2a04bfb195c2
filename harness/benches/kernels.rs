//! Reference kernel throughput on shapes from the zoo's MobileNetV2 (36x36 stage).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use harness::kernels::{reference, ConvArgs, FcArgs, View, ViewMut};
use harness::model::Clamp;
use harness::plan::Region;
use std::hint::black_box;

fn data(n: usize, seed: usize) -> Vec<i8> {
    (0..n).map(|i| ((i * 2_654_435_761usize + seed) >> 7) as i8).collect()
}

fn conv_args<'a>(k: usize, s: usize, in_hw: usize, filter: &'a [i8], m: &'a [i32], sh: &'a [i32]) -> ConvArgs<'a> {
    ConvArgs {
        kh: k,
        kw: k,
        sh: s,
        sw: s,
        pad_top: k / 2,
        pad_left: k / 2,
        in_h: in_hw,
        in_w: in_hw,
        filter,
        bias: &[],
        multiplier: m,
        shift: sh,
        input_offset: 128,
        output_offset: -128,
        clamp: Clamp::NONE,
        packed: &[],
    }
}

fn bench(c: &mut Criterion) {
    let full = |n: u16| Region { y0: 0, x0: 0, h: n, w: n };
    let mult = vec![1_400_000_000; 64];
    let shift = vec![-9; 64];

    // Pointwise 36x36x8 -> 48 (MobileNetV2 expansion).
    let input = data(36 * 36 * 8, 1);
    let filter = data(48 * 8, 2);
    let mut out = vec![0i8; 36 * 36 * 48];
    let a = conv_args(1, 1, 36, &filter, &mult[..48], &shift[..48]);
    let mut g = c.benchmark_group("reference");
    g.throughput(Throughput::Elements(36 * 36 * 48 * 8));
    g.bench_function("conv1x1_36x36x8_to_48", |b| {
        b.iter(|| {
            let v = View { data: &input, stored: full(36), c: 8 };
            reference::conv2d(&a, &v, &mut ViewMut { data: &mut out, stored: full(36), c: 48 }, full(36));
            black_box(&out);
        })
    });

    // Depthwise 3x3 36x36x48.
    let input = data(36 * 36 * 48, 3);
    let filter = data(9 * 48, 4);
    let a = conv_args(3, 1, 36, &filter, &mult[..48], &shift[..48]);
    g.throughput(Throughput::Elements(36 * 36 * 48 * 9));
    g.bench_function("dw3x3_36x36x48", |b| {
        b.iter(|| {
            let v = View { data: &input, stored: full(36), c: 48 };
            reference::depthwise_conv2d(&a, &v, &mut ViewMut { data: &mut out, stored: full(36), c: 48 }, full(36));
            black_box(&out);
        })
    });

    // 3x3 conv 18x18x16 -> 32 (ResNet-like).
    let input = data(18 * 18 * 16, 5);
    let filter = data(32 * 9 * 16, 6);
    let a = conv_args(3, 1, 18, &filter, &mult[..32], &shift[..32]);
    g.throughput(Throughput::Elements(18 * 18 * 32 * 9 * 16));
    g.bench_function("conv3x3_18x18x16_to_32", |b| {
        b.iter(|| {
            let v = View { data: &input, stored: full(18), c: 16 };
            reference::conv2d(
                &a,
                &v,
                &mut ViewMut { data: &mut out[..18 * 18 * 32], stored: full(18), c: 32 },
                full(18),
            );
            black_box(&out);
        })
    });

    // Fully connected 1280 -> 1000.
    let input = data(1280, 7);
    let filter = data(1280 * 1000, 8);
    let a = FcArgs {
        filter: &filter,
        bias: &[],
        multiplier: &mult[..1],
        shift: &shift[..1],
        input_offset: 128,
        output_offset: 0,
        clamp: Clamp::NONE,
    };
    let mut fc_out = vec![0i8; 1000];
    g.throughput(Throughput::Elements(1280 * 1000));
    g.bench_function("fc_1280_to_1000", |b| {
        b.iter(|| {
            reference::fully_connected(&a, &input, &mut fc_out);
            black_box(&fc_out);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
