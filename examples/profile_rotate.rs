//! Times one rotate of a 256^3 image + label map on the CPU, and each part alone (for profiling).
use voxaug::exec::cpu::resample::{resample_many, Outside, Params, Spec};
use voxaug::transform::{compile, Stage};
use voxaug::{Executor, Grid, Pipeline, Subject, Volume};

fn ms(t: std::time::Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    let g = Grid::with_spacing([n; 3], [1.0, 1.0, 1.2]).unwrap();
    let img: Vec<f32> = (0..n * n * n).map(|i| (i % 977) as f32).collect();
    let lab: Vec<f32> = (0..n * n * n).map(|i| (i / 100_000 % 3) as f32).collect();
    let s = Subject::new(
        vec![Volume::image(img, g.clone()).unwrap()],
        vec![Volume::label(lab, g.clone()).unwrap()],
    )
    .unwrap();
    let deg = std::env::args().nth(2).unwrap_or("[10, -5, 15]".into());
    let p = Pipeline::from_json(&format!(
        r#"{{"transforms": [{{"type": "rotate", "degrees": {deg}}}]}}"#
    ))
    .unwrap();
    let Stage::Spatial(map) = compile(&p.fixed_transforms().unwrap(), &g)
        .unwrap()
        .remove(0)
    else {
        unreachable!()
    };
    let params = Params::new(&map.matrix, g.shape, map.grid.shape);
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let out = Executor::Cpu
            .apply(&s, &p.fixed_transforms().unwrap())
            .unwrap();
        let total = ms(t);
        let t = std::time::Instant::now();
        let a = resample_many(
            &[Spec::Linear(
                s.images[0].image_data().unwrap(),
                Outside::Value(0.0),
            )],
            &params,
        )
        .unwrap();
        let lin = ms(t);
        let t = std::time::Instant::now();
        let b = resample_many(&[Spec::Nearest(&s.labels[0].data, Some(0.0))], &params).unwrap();
        let near = ms(t);
        let t = std::time::Instant::now();
        let z = voxaug::exec::cpu::alloc::zeroed::<f32>(n * n * n).unwrap();
        let alloc = ms(t);
        std::hint::black_box(z);
        println!("alloc {alloc:.1} ms");
        println!("{n}^3 rotate image+label: {total:.1} ms (image alone {lin:.1} ms, label alone {near:.1} ms)");
        std::hint::black_box((out, a, b));
    }
}
