//! Criterion benches of every `voxaug bench` op on 128^3 and 256^3 phantoms (f32 image + label map):
//! CPU, GPU end-to-end (upload, compute, readback) and GPU kernel-only (data resident on the device),
//! next to a memcpy of the same size (the bandwidth floor).
//!
//! Run: `cargo bench --bench ops` (VOXAUG_BENCH_SIZES=128 to shorten; VOXAUG_BENCH_OPS=rotate,elastic to
//! choose ops). Without a GPU adapter the GPU groups are skipped with a message.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use voxaug::bench::{op_transforms, OPS};
use voxaug::transform::compile;
use voxaug::Executor;

fn env_list(name: &str) -> Option<Vec<String>> {
    std::env::var(name).ok().map(|s| {
        s.split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()
    })
}

fn bench(c: &mut Criterion) {
    let sizes: Vec<usize> = env_list("VOXAUG_BENCH_SIZES")
        .map(|v| v.iter().filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![128, 256]);
    let ops: Vec<String> =
        env_list("VOXAUG_BENCH_OPS").unwrap_or_else(|| OPS.iter().map(|s| s.to_string()).collect());
    let gpu = match voxaug::exec::gpu(None) {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("GPU benches skipped: {e}");
            None
        }
    };
    let mut group = c.benchmark_group("voxaug");
    group.sample_size(10);
    for &n in &sizes {
        let s = voxaug::phantom::head([n; 3], [1.0, 1.0, 1.2]);
        let bytes = (n * n * n * 4) as u64;
        group.throughput(Throughput::Bytes(bytes * 2));
        let src = s.images[0].image_data().unwrap().to_vec();
        let mut dst = vec![0.0f32; src.len()];
        group.bench_with_input(BenchmarkId::new("memcpy", n), &n, |b, _| {
            b.iter(|| dst.copy_from_slice(black_box(&src)))
        });
        for op in &ops {
            let t = op_transforms(op, n).unwrap();
            group.bench_with_input(BenchmarkId::new(format!("cpu/{op}"), n), &n, |b, _| {
                b.iter(|| black_box(Executor::Cpu.apply(&s, &t).unwrap()))
            });
            if let Some(g) = &gpu {
                group.bench_with_input(
                    BenchmarkId::new(format!("gpu_end_to_end/{op}"), n),
                    &n,
                    |b, _| b.iter(|| black_box(g.apply(&s, &t).unwrap())),
                );
                let Executor::Gpu(ctx) = g else {
                    unreachable!()
                };
                let stages = compile(&t, s.grid().unwrap()).unwrap();
                group.bench_with_input(
                    BenchmarkId::new(format!("gpu_kernel/{op}"), n),
                    &n,
                    |b, _| {
                        b.iter_custom(|iters| {
                            let t = ctx.kernel_times(&s, &stages, iters as usize).unwrap();
                            // Timestamp-query pass time where the adapter has it, else resident wall clock.
                            let times = t.passes.unwrap_or(t.wall);
                            std::time::Duration::from_secs_f64(times.iter().sum())
                        })
                    },
                );
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
