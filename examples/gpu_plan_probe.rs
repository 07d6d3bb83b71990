//! Per-pass GPU kernel times of a pipeline's first samples (profiling): which passes of a sampled plan
//! cost what on the current adapter (timestamp queries; lavapipe has them).
//!
//! `cargo run --release --example gpu_plan_probe -- PIPELINE.json IMAGE LABEL [SAMPLES]`
use voxaug::transform::compile;
use voxaug::{io, Executor, Kind, Pipeline, Subject};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 4 {
        eprintln!("usage: gpu_plan_probe PIPELINE.json IMAGE LABEL [SAMPLES]");
        std::process::exit(2);
    }
    let p = Pipeline::from_json(&std::fs::read_to_string(&a[1]).unwrap()).unwrap();
    let img = io::read_volume(&a[2], Kind::Image).unwrap();
    let lab = io::read_volume(&a[3], Kind::Label).unwrap();
    let n: u64 = a.get(4).and_then(|s| s.parse().ok()).unwrap_or(6);
    let s = Subject::new(vec![img], vec![lab]).unwrap();
    let exec = voxaug::exec::gpu(None).unwrap();
    let samples = p.samples(&exec, &s, 0).unwrap();
    let Executor::Gpu(ctx) = &exec else {
        unreachable!()
    };
    let ms = |v: &[f64]| v.iter().map(|x| (x * 1e3) as u32).collect::<Vec<_>>();
    for i in 0..n {
        let plan = samples.plan(i).unwrap();
        let names: Vec<String> = plan
            .transforms
            .iter()
            .map(|t| format!("{t:?}").chars().take(30).collect())
            .collect();
        let stages = compile(&plan.transforms, s.grid().unwrap()).unwrap();
        let ts = ctx.kernel_times(&s, &stages, 2).unwrap();
        println!(
            "sample {i}: {names:?}\n  wall {:?} ms, passes (timestamps) {:?} ms, last run per pass {:?} ms",
            ms(&ts.wall),
            ts.passes.as_deref().map(ms),
            ts.last_passes.as_deref().map(ms)
        );
    }
}
