//! Times elastic + rotate (fused) on a phantom, CPU and GPU (for profiling). Args: size, pipeline json.
use voxaug::{Executor, Pipeline};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(128);
    let json = std::env::args().nth(2).unwrap_or_else(|| {
        r#"{"transforms": [{"type": "rotate", "degrees": [0, 0, 10]}, {"type": "elastic", "sigma": 35, "alpha": 4, "seed": 5}]}"#.into()
    });
    let s = voxaug::phantom::head([n; 3], [1.0; 3]);
    let t = Pipeline::from_json(&json)
        .unwrap()
        .fixed_transforms()
        .unwrap();
    let mut execs = vec![Executor::Cpu];
    if let Ok(g) = voxaug::exec::gpu(None) {
        execs.push(g);
    }
    let mut outs = Vec::new();
    for e in &execs {
        for _ in 0..3 {
            let t0 = std::time::Instant::now();
            let o = e.apply(&s, &t).unwrap();
            println!(
                "{n}^3 on {}: {:.1} ms",
                e.name(),
                t0.elapsed().as_secs_f64() * 1e3
            );
            outs.push(o);
        }
    }
    if outs.len() > 3 {
        let (a, b) = (&outs[0], &outs[3]);
        let d = a.images[0]
            .values()
            .iter()
            .zip(b.images[0].values().iter())
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        let l = a.labels[0]
            .values()
            .iter()
            .zip(b.labels[0].values().iter())
            .filter(|(x, y)| x != y)
            .count();
        println!("cpu vs gpu: max image diff {d}, label mismatches {l}");
    }
}
