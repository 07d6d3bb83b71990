//! The resampler's row fast paths against its checked per-voxel samplers.

use voxaug::exec::cpu::resample::{
    resample_many, sample_linear_checked, sample_nearest_checked, Outside, Params, Spec,
};
use voxaug::grid::Mat4;
use voxaug::Voxels;

/// The row fast paths (the interior span without bounds checks, the border zones, the fill zones) give
/// exactly what the checked per-voxel samplers give, for an oblique map over odd shapes.
#[test]
fn fast_rows_equal_the_checked_samplers_bit_for_bit() {
    let shape = [37, 41, 29];
    let n: usize = shape.iter().product();
    let src: Vec<f32> = (0..n)
        .map(|l| ((l as u64).wrapping_mul(2654435761) % 1000) as f32 * 0.37 - 50.0)
        .collect();
    let (s, c) = (0.3f64.sin(), 0.3f64.cos());
    let m: Mat4 = [
        [c * 1.1, -s, 0.1, 3.3],
        [s, c * 0.9, 0.05, -2.1],
        [0.02, 0.1, 1.05, 1.7],
        [0.0, 0.0, 0.0, 1.0],
    ];
    let out_shape = [45, 33, 31];
    let p = Params::new(&m, shape, out_shape);
    let labels: Vec<i16> = src.iter().map(|&x| x as i16).collect();
    let typed = Voxels::from(labels.clone());
    for (outside, fill) in [(Outside::Value(-7.0), Some(-7.0)), (Outside::Edge, None)] {
        let outs = resample_many(
            &[Spec::Linear(&src, outside), Spec::Nearest(&typed, fill)],
            &p,
        )
        .unwrap();
        let (Voxels::F32(lin_out), Voxels::I16(near_out)) = (&outs[0], &outs[1]) else {
            panic!("outputs keep their input's type")
        };
        for k in 0..out_shape[2] {
            for j in 0..out_shape[1] {
                let base = p.row_base(j, k);
                let st = p.step();
                for i in 0..out_shape[0] {
                    let fi = i as f32;
                    let c = [0, 1, 2].map(|r| base[r] + st[r] * fi);
                    let l = i + out_shape[0] * (j + out_shape[1] * k);
                    let lin = sample_linear_checked(&src, shape, c, outside);
                    let near = sample_nearest_checked(&labels, shape, c, fill.map(|f| f as i16));
                    assert_eq!(lin_out[l].to_bits(), lin.to_bits(), "linear at {i},{j},{k}");
                    assert_eq!(near_out[l], near, "nearest at {i},{j},{k}");
                }
            }
        }
    }
}
