//! Library use: build a pipeline, augment the built-in phantom lazily, look at the plans.
//! Run: `cargo run --release --example augment`
use voxaug::Pipeline;

fn main() -> voxaug::Result<()> {
    let subject = voxaug::phantom::head([96, 96, 48], [1.5, 1.5, 3.0]);
    let pipeline = Pipeline::from_json(
        r#"{"transforms": [
            {"type": "random_affine", "degrees": 15, "scales": 0.1},
            {"type": "random_flip", "axes": ["LR"]},
            {"type": "random_gamma", "p": 0.3},
            {"type": "zscore"}]}"#,
    )?;
    let (exec, note) = voxaug::exec::select("auto", None)?;
    if let Some(n) = note {
        eprintln!("{n}");
    }
    let t0 = std::time::Instant::now();
    for sample in pipeline.samples(&exec, &subject, 42)?.take(4) {
        let (out, plan) = sample?;
        let kinds: Vec<String> = plan.transforms.iter().map(|t| t.type_name()).collect();
        println!(
            "sample {}: {:?}, label voxels > 0: {}",
            plan.sample,
            kinds,
            out.labels[0].values().iter().filter(|&&v| v > 0.0).count()
        );
    }
    println!(
        "4 samples in {:.2} s on {}",
        t0.elapsed().as_secs_f64(),
        exec.name()
    );
    Ok(())
}
