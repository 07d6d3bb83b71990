//! Kernel times of the GPU executor for image-only, label-only and both, flip and rotate (profiling).
use voxaug::transform::compile;
use voxaug::{Executor, Grid, Pipeline, Subject, Volume};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    let g = Grid::with_spacing([n; 3], [1.0, 1.0, 1.2]).unwrap();
    let img: Vec<f32> = (0..n * n * n).map(|i| (i % 977) as f32).collect();
    let lab: Vec<f32> = (0..n * n * n).map(|i| (i / 100_000 % 3) as f32).collect();
    let Executor::Gpu(ctx) = voxaug::exec::gpu(None).unwrap() else {
        unreachable!()
    };
    for (what, s) in [
        (
            "image",
            Subject::new(vec![Volume::image(img.clone(), g.clone()).unwrap()], vec![]).unwrap(),
        ),
        (
            "label",
            Subject::new(vec![], vec![Volume::label(lab.clone(), g.clone()).unwrap()]).unwrap(),
        ),
    ] {
        for t in [
            r#"{"type": "flip", "axes": [0]}"#,
            r#"{"type": "rotate", "degrees": [10, -5, 15]}"#,
        ] {
            let p = Pipeline::from_json(&format!(r#"{{"transforms": [{t}]}}"#)).unwrap();
            let stages = compile(&p.fixed_transforms().unwrap(), &g).unwrap();
            let ts = ctx.kernel_times(&s, &stages, 3).unwrap();
            let ms = |v: &[f64]| v.iter().map(|x| (x * 1e3) as u32).collect::<Vec<_>>();
            println!(
                "{what} {t}: resident {:?} ms, passes (timestamps) {:?} ms; last run per pass {:?} ms",
                ms(&ts.wall),
                ts.passes.as_deref().map(ms),
                ts.last_passes.as_deref().map(ms)
            );
        }
    }
}
