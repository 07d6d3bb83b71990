//! Helpers shared by the integration tests.
#![allow(dead_code)]

use voxaug::{Grid, Kind, Volume};

/// Path of a file in `tests/data`.
pub fn data(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Nested `[i][j][k]` JSON list -> (shape, i-fastest data).
pub fn nested_to_volume(v: &serde_json::Value) -> ([usize; 3], Vec<f32>) {
    let a = v.as_array().unwrap();
    let ni = a.len();
    let nj = a[0].as_array().unwrap().len();
    let nk = a[0][0].as_array().unwrap().len();
    let mut out = vec![0.0f32; ni * nj * nk];
    for i in 0..ni {
        for j in 0..nj {
            for k in 0..nk {
                out[i + ni * (j + nj * k)] = a[i][j][k].as_f64().unwrap() as f32;
            }
        }
    }
    ([ni, nj, nk], out)
}

pub fn mat4(v: &serde_json::Value) -> [[f64; 4]; 4] {
    let mut m = [[0.0; 4]; 4];
    for r in 0..4 {
        for c in 0..4 {
            m[r][c] = v[r][c].as_f64().unwrap();
        }
    }
    m
}

/// Deterministic pseudo-random values in [0, 1) (splitmix64), for test inputs.
pub fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E3779B97F4A7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

/// An image volume filled by a function of the voxel index.
pub fn image_from(grid: &Grid, f: impl Fn(usize, usize, usize) -> f32) -> Volume {
    let [ni, nj, nk] = grid.shape;
    let mut d = vec![0.0; grid.len()];
    for k in 0..nk {
        for j in 0..nj {
            for i in 0..ni {
                d[i + ni * (j + nj * k)] = f(i, j, k);
            }
        }
    }
    Volume::new(d, grid.clone(), Kind::Image).unwrap()
}

/// A label volume filled by a function of the voxel index.
pub fn label_from(grid: &Grid, f: impl Fn(usize, usize, usize) -> f32) -> Volume {
    let v = image_from(grid, f);
    Volume::label(v.values().into_owned(), grid.clone()).unwrap()
}

/// An oblique, anisotropic affine (rotation about z by 30 degrees, spacing 1.5 x 0.75 x 3).
pub fn oblique_affine() -> [[f64; 4]; 4] {
    let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
    [
        [1.5 * c, -0.75 * s, 0.0, -10.0],
        [1.5 * s, 0.75 * c, 0.0, 5.0],
        [0.0, 0.0, 3.0, 2.5],
        [0.0, 0.0, 0.0, 1.0],
    ]
}

/// The CPU reference executor.
pub fn cpu() -> voxaug::Executor {
    voxaug::Executor::Cpu
}

/// The GPU executor (one device per test binary). GPU tests need an adapter: without one they fail
/// with this message (CI installs lavapipe), they never skip.
pub fn gpu() -> voxaug::Executor {
    use std::sync::{Arc, OnceLock};
    use voxaug::exec::gpu::GpuContext;
    static CTX: OnceLock<Arc<GpuContext>> = OnceLock::new();
    let ctx = CTX.get_or_init(|| {
        let ctx =
            GpuContext::open(None).unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"));
        // Statistics built on the device, as on a hardware GPU (off by default on lavapipe, where
        // the host reduces faster): the tests cover the path hardware runs.
        ctx.set_device_statistics(true);
        Arc::new(ctx)
    });
    voxaug::Executor::Gpu(ctx.clone())
}

/// One test body per op, run on both executors (as cubecl's testgen does): `both! { name: |e| ...; }`
/// makes `on_cpu::name` and `on_gpu::name`.
#[macro_export]
macro_rules! both {
    ($($name:ident: $body:expr;)*) => {
        mod on_cpu { use super::*; $(#[test] fn $name() { ($body)(&$crate::common::cpu()) })* }
        mod on_gpu { use super::*; $(#[test] fn $name() { ($body)(&$crate::common::gpu()) })* }
    };
}

/// Runs test functions `fn name(ex: &Executor)` on both executors: `both_executors!(a, b)` makes
/// `on_cpu::a`, `on_gpu::a`, ...
#[macro_export]
macro_rules! both_executors {
    ($($name:ident),* $(,)?) => {
        mod on_cpu { $(#[test] fn $name() { super::$name(&$crate::common::cpu()) })* }
        mod on_gpu { $(#[test] fn $name() { super::$name(&$crate::common::gpu()) })* }
    };
}

/// Largest absolute difference between two voxel arrays of the same length.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
}

/// The error a one-transform pipeline is refused with (the test fails if it parses).
#[allow(dead_code)]
pub fn refused(step: &str) -> String {
    voxaug::Pipeline::from_json(&format!("[{step}]"))
        .unwrap_err()
        .to_string()
}

/// The transforms of a pipeline written as a JSON list body (`{"type": ...}, {"type": ...}`).
pub fn pipeline_transforms(json: &str) -> Vec<voxaug::Transform> {
    voxaug::Pipeline::from_json(&format!("{{\"transforms\": [{json}]}}"))
        .unwrap()
        .fixed_transforms()
        .unwrap()
}

/// `image` moved by the spatial transforms `motion` (one resampling pass), then changed by the
/// intensity transforms `intensity` (may be empty), and the fixed -> moving world matrix that undoes the
/// motion: moved(W x) = image(x), as a registration should find it.
pub fn moved_by(image: &Volume, motion: &str, intensity: &str) -> (Volume, voxaug::grid::Mat4) {
    use voxaug::grid::{mat_inv, mat_mul};
    let t = pipeline_transforms(motion);
    let s = voxaug::Subject::new(vec![image.clone()], vec![]).unwrap();
    let mut out = voxaug::Executor::Cpu.apply(&s, &t).unwrap();
    let stages = voxaug::transform::compile(&t, &image.grid).unwrap();
    let [voxaug::transform::Stage::Spatial(map)] = stages.as_slice() else {
        panic!("{motion}: one resampling pass expected")
    };
    // moved(y) = image(P y) with P = A_in * pull * A_out^-1 in world terms; W = P^-1.
    let p = mat_mul(
        &mat_mul(&image.grid.affine, &map.total()),
        &mat_inv(&map.grid.affine).unwrap(),
    );
    if !intensity.is_empty() {
        out = voxaug::Executor::Cpu
            .apply(&out, &pipeline_transforms(intensity))
            .unwrap();
    }
    (out.images.remove(0), mat_inv(&p).unwrap())
}
