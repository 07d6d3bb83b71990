//! Criterion benches of the core ops on 128^3 and 256^3 (f32 image + label map), next to a memcpy of the
//! same size (the bandwidth floor). Run: `cargo bench --bench ops` (set VOXAUG_BENCH_SIZES=128 to shorten).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use voxaug::transform::Transform;
use voxaug::{Executor, Grid, Pipeline, Subject, Volume};

fn sizes() -> Vec<usize> {
    std::env::var("VOXAUG_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![128, 256])
}

/// Deterministic head-like phantom: smooth image plus a 3-class label map.
pub fn phantom(n: usize) -> Subject {
    let g = Grid::with_spacing([n; 3], [1.0, 1.0, 1.2]).unwrap();
    let c = (n as f32 - 1.0) / 2.0;
    let mut img = vec![0.0f32; n * n * n];
    let mut lab = vec![0.0f32; n * n * n];
    for k in 0..n {
        for j in 0..n {
            for i in 0..n {
                let (x, y, z) = ((i as f32 - c) / c, (j as f32 - c) / c, (k as f32 - c) / c);
                let r = (x * x + y * y * 1.2 + z * z).sqrt();
                let idx = i + n * (j + n * k);
                img[idx] = if r < 0.9 {
                    100.0 + 50.0 * (x * 7.0).sin() * (y * 5.0).cos()
                } else {
                    0.0
                };
                lab[idx] = if r < 0.4 {
                    2.0
                } else if r < 0.9 {
                    1.0
                } else {
                    0.0
                };
            }
        }
    }
    Subject::new(
        vec![Volume::image(img, g.clone()).unwrap()],
        vec![Volume::label(lab, g).unwrap()],
    )
    .unwrap()
}

fn t(json: &str) -> Vec<Transform> {
    Pipeline::from_json(&format!("{{\"transforms\": [{json}]}}"))
        .unwrap()
        .fixed_transforms()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("cpu");
    group.sample_size(10);
    for n in sizes() {
        let s = phantom(n);
        let bytes = (n * n * n * 4) as u64;
        group.throughput(Throughput::Bytes(bytes * 2));
        let src = s.images[0].data.clone();
        let mut dst = vec![0.0f32; src.len()];
        group.bench_with_input(BenchmarkId::new("memcpy", n), &n, |b, _| {
            b.iter(|| dst.copy_from_slice(black_box(&src)))
        });
        let ops = [
            (
                "rotate",
                t(r#"{"type": "rotate", "degrees": [10, -5, 15]}"#),
            ),
            ("flip", t(r#"{"type": "flip", "axes": [0, 1]}"#)),
            (
                "crop",
                t(&format!(r#"{{"type": "crop", "margins": {}}}"#, n / 8)),
            ),
            (
                "resize",
                t(&format!(
                    r#"{{"type": "resize", "shape": [{m}, {m}, {m}]}}"#,
                    m = n * 3 / 4
                )),
            ),
            (
                "resample",
                t(r#"{"type": "resample", "spacing": [1.3, 1.3, 1.3]}"#),
            ),
            ("zscore", t(r#"{"type": "zscore"}"#)),
            ("minmax", t(r#"{"type": "minmax"}"#)),
            (
                "percentile_clip",
                t(r#"{"type": "percentile_clip", "low": 0.5, "high": 99.5}"#),
            ),
        ];
        for (name, tr) in ops {
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| black_box(Executor::Cpu.apply(&s, &tr).unwrap()))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
