//! Uniform structs passed to the WGSL kernels (each mirrors a struct of a `shaders/*.wgsl` file; sizes
//! and offsets are checked by the tests below) and the slab limits.

use super::*;

/// Largest slab buffer, whatever the device allows.
pub(super) const MAX_SLAB_BYTES: u64 = 256 << 20;

/// Row pitch alignment of buffers that are copied to or from textures, in f32/u32 elements.
pub(super) const PITCH_ELEMS: usize = (wgpu::COPY_BYTES_PER_ROW_ALIGNMENT / 4) as usize;

/// `Params` of `shaders/resample.wgsl` (the fused resampler).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct ResampleParams {
    pub(super) m: [[f32; 4]; 3],
    pub(super) in_shape: [u32; 4],
    pub(super) out_shape: [u32; 4],
    pub(super) fill: f32,
    pub(super) edge: u32,
    pub(super) pitch: u32,
    pub(super) slab: u32,
    pub(super) post: [[f32; 4]; 3],
    pub(super) fshape: [u32; 4],
    pub(super) fstep: [f32; 4],
    pub(super) foffset: [f32; 4],
    pub(super) fscale: [f32; 4],
}

/// `Params` of `shaders/field.wgsl` (noise of the Gaussian displacement fields).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct NoiseParams {
    pub(super) shape: [u32; 4],
    pub(super) seed: [u32; 2],
    pub(super) stream: u32,
    pub(super) pitch: u32,
    pub(super) slab: u32,
    pub(super) pad: [u32; 3],
}

/// `Params` of `shaders/labels.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct LabelParams {
    pub(super) shape: [u32; 4],
    pub(super) pitch: u32,
    pub(super) slab: u32,
    pub(super) count: u32,
    pub(super) identity: u32,
    pub(super) others: u32,
    pub(super) pad: [u32; 3],
}

/// A displacement field on the device: three R32Float component textures and their layout.
pub(super) struct GpuField {
    /// The three components of each coarse node in one RGBA32Float texel.
    pub(super) tex: wgpu::Texture,
    pub(super) layout: crate::exec::kernel::Layout,
}

/// `Params` of `shaders/reduce.wgsl` (moments, histograms).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct ReduceParams {
    pub(super) shape: [u32; 4],
    pub(super) mask_nonzero: u32,
    pub(super) partials: u32,
    pub(super) groups_x: u32,
    pub(super) filter_bin: i32,
    pub(super) hmin: f32,
    pub(super) hscale: f32,
    pub(super) h1min: f32,
    pub(super) h1scale: f32,
    /// Power of two the values are multiplied by (1 unless they span more than f32 can).
    pub(super) vscale: f32,
    pub(super) pad: [u32; 3],
}

/// `Params` of `shaders/intensity.wgsl` (the elementwise pass; its kernel is a [`PointParams`]).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct ElementParams {
    pub(super) shape: [u32; 4],
    pub(super) pitch: u32,
    pub(super) slab: u32,
    pub(super) pad: [u32; 2],
}

/// `Point` of `shaders/point.wgsl`: a point-wise intensity kernel (uniform of the elementwise pass,
/// and of the resampler when the kernel is fused into it).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct PointParams {
    pub(super) sub: f32,
    pub(super) mul: f32,
    pub(super) add: f32,
    pub(super) lo: f32,
    pub(super) hi: f32,
    pub(super) skip_zero: u32,
    pub(super) gamma: f32,
    pub(super) post: f32,
    pub(super) noise_std: f32,
    pub(super) noise_mean: f32,
    pub(super) seed: [u32; 2],
    pub(super) bias_order: u32,
    pub(super) pre: f32,
    pub(super) pad: [u32; 2],
    pub(super) bias: [[f32; 4]; 14],
}

impl PointParams {
    /// The uniform of a kernel.
    pub(super) fn of(k: &PointKernel) -> PointParams {
        let mut bias = [[0.0f32; 4]; 14];
        for (t, c) in k.bias.iter().enumerate().take(kernel::MAX_BIAS_TERMS) {
            bias[t / 4][t % 4] = *c;
        }
        PointParams {
            sub: k.sub,
            mul: k.mul,
            add: k.add,
            lo: k.lo,
            hi: k.hi,
            skip_zero: k.skip_zero as u32,
            gamma: k.gamma,
            post: k.post,
            noise_std: k.noise_std,
            noise_mean: k.noise_mean,
            seed: k.noise_seed,
            bias_order: k.bias_order,
            pre: k.pre,
            pad: [0; 2],
            bias,
        }
    }

    /// The features `[gamma, noise, bias]` a pipeline must compile in for this kernel.
    pub(super) fn features(k: &PointKernel) -> [bool; 3] {
        [k.gamma != 1.0, k.noise_std > 0.0, k.bias_order > 0]
    }
}

/// `Op` of `shaders/stat_kernel.wgsl`: a statistics op whose kernel the device builds from its own
/// reduction (`point`: the op's kernel from empty statistics, the fields no statistic sets).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct StatOpParams {
    pub(super) point: PointParams,
    /// 0 zscore, 1 minmax, 2 gamma, 3 contrast.
    pub(super) kind: u32,
    pub(super) pad: [u32; 3],
    /// minmax's target range.
    pub(super) a: f64,
    pub(super) b: f64,
}

/// `Params` of `shaders/percentile.wgsl`: the ranks of a percentile clip's two percentiles and its
/// kernel with the bounds left to fill.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct PercentileParams {
    pub(super) shape: [u32; 4],
    pub(super) groups_x: u32,
    pub(super) pad: [u32; 3],
    /// floor(r) and floor(r) + 1 (at most n - 1) of each percentile's rank r.
    pub(super) ranks: [u32; 4],
    /// r - floor(r) of each percentile.
    pub(super) frac: [f64; 2],
    pub(super) point: PointParams,
}

/// `Params` of `shaders/blur.wgsl` (one separable blur pass).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct BlurParams {
    pub(super) shape: [u32; 4],
    pub(super) axis: u32,
    pub(super) radius: u32,
    pub(super) pitch: u32,
    pub(super) slab: u32,
}

/// `Params` of `shaders/fft.wgsl` (one FFT line pass).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct FftParams {
    pub(super) shape: [u32; 4],
    pub(super) n: u32,
    pub(super) m: u32,
    pub(super) log2m: u32,
    pub(super) axis: u32,
    pub(super) pitch: u32,
    pub(super) slab: u32,
    pub(super) groups_x: u32,
    pub(super) flags: u32,
    pub(super) tw_off: u32,
    pub(super) chirp_off: u32,
    pub(super) kern_off: u32,
    pub(super) w_off: u32,
}

/// `WaveParams` of `shaders/spike.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct WaveParams {
    pub(super) shape: [u32; 4],
    pub(super) pitch: u32,
    pub(super) slab: u32,
    pub(super) count: u32,
    pub(super) amplitude: f32,
}

/// `Partial` of `shaders/reduce.wgsl` (one workgroup's moments).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub(super) struct Partial {
    pub(super) count: u32,
    pub(super) mean: f32,
    pub(super) m2: f32,
    pub(super) min: f32,
    pub(super) max: f32,
    pub(super) pad: [u32; 3],
}

#[cfg(test)]
mod tests {
    use super::*;
    use wgpu::naga;

    /// Size of the WGSL struct `name` declared in `source`, laid out by naga as the GPU sees it.
    fn wgsl_size(source: &str, name: &str) -> u32 {
        wgsl_size_of(super::super::pipelines::wgsl_struct(source, name), name)
    }

    /// Size of struct `name` declared in WGSL `decls`.
    fn wgsl_size_of(decls: &str, name: &str) -> u32 {
        let module = naga::front::wgsl::parse_str(decls).expect("valid WGSL");
        let (_, ty) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(name))
            .expect("declared");
        match ty.inner {
            naga::TypeInner::Struct { span, .. } => span,
            _ => panic!("{name} is not a struct"),
        }
    }

    #[test]
    fn uniform_structs_match_their_wgsl_twins() {
        let sh = |f: &str| {
            std::fs::read_to_string(format!("{}/shaders/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap()
        };
        let cases = [
            (
                "resample.wgsl",
                "Params",
                std::mem::size_of::<ResampleParams>(),
            ),
            ("field.wgsl", "Params", std::mem::size_of::<NoiseParams>()),
            ("reduce.wgsl", "Params", std::mem::size_of::<ReduceParams>()),
            ("reduce.wgsl", "Partial", std::mem::size_of::<Partial>()),
            (
                "intensity.wgsl",
                "Params",
                std::mem::size_of::<ElementParams>(),
            ),
            ("point.wgsl", "Point", std::mem::size_of::<PointParams>()),
            ("blur.wgsl", "Params", std::mem::size_of::<BlurParams>()),
            ("fft.wgsl", "Params", std::mem::size_of::<FftParams>()),
            (
                "spike.wgsl",
                "WaveParams",
                std::mem::size_of::<WaveParams>(),
            ),
        ];
        // stat_kernel.wgsl's Op holds point.wgsl's Point, prepended when the module is built.
        use super::super::pipelines::{wgsl_struct, POINT, STAT_KERNEL};
        let op = format!(
            "{}\n{}",
            wgsl_struct(POINT, "Point"),
            wgsl_struct(STAT_KERNEL, "Op")
        );
        // percentile.wgsl's Params too.
        use super::super::pipelines::PERCENTILE;
        let pct = format!(
            "{}\n{}",
            wgsl_struct(POINT, "Point"),
            wgsl_struct(PERCENTILE, "Params")
        );
        assert_eq!(
            wgsl_size_of(&pct, "Params") as usize,
            std::mem::size_of::<PercentileParams>()
        );
        assert_eq!(std::mem::size_of::<PercentileParams>() % 16, 0);
        assert_eq!(
            wgsl_size_of(&op, "Op") as usize,
            std::mem::size_of::<StatOpParams>()
        );
        for (file, name, rust) in cases {
            assert_eq!(wgsl_size(&sh(file), name) as usize, rust, "{file} {name}");
            assert_eq!(
                rust % 16,
                0,
                "{file} {name}: uniform sizes are multiples of 16"
            );
        }
    }

    /// The host divides a blur pass's dispatch along its axis by the shader's outputs per invocation.
    #[test]
    fn blur_run_matches_the_shader() {
        let src = include_str!("../../../shaders/blur.wgsl");
        let run = crate::exec::gpu::pipelines::BLUR_RUN;
        assert!(src.contains(&format!("const RUN: u32 = {run}u;")));
        // The sliding window is written out for four outputs.
        assert_eq!(run, 4);
    }
}
