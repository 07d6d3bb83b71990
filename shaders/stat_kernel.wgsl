// The point kernel of a statistics op built on the device from the moments reduce.wgsl left in
// `result` (CPU twin: GpuMoments::from_partial and host_stats in src/exec/gpu/reduce.rs, then
// zscore_params, minmax_params, gamma_params and contrast in kernel_from, src/exec/kernel.rs). The
// same expressions in f64 (needs SHADER_F64), so the kernel has the bits the host would build from
// read-back statistics, without the device waiting for the host between the reduction and the
// elementwise pass.
//   result[0]: moments of the values (vscale 1), pad0 = 1 when they overflowed; result[1] then holds
//   the retry's moments of the values times bitcast<f32>(result[1].pad0) (reduce.wgsl).
// The host prepends reduce.wgsl's `Partial` and point.wgsl's `Point` (pipelines.rs), the layouts of
// the buffers this pass reads and writes.

// The op: `point` is its kernel from empty statistics (kernel_from with EMPTY_STATS: the fields no
// statistic sets, such as gamma, skip_zero and contrast's factor); kind 0 zscore, 1 minmax, 2 gamma,
// 3 contrast; [a, b] minmax's target range.
struct Op {
    point: Point,
    kind: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
    a: f64,
    b: f64,
}

@group(0) @binding(0) var<uniform> op: Op;
@group(0) @binding(1) var<storage, read> result: array<Partial>;
@group(0) @binding(2) var<storage, read_write> out: Point;

fn is_finite64(x: f64) -> bool {
    return x == x && abs(x) <= 1.7976931348623157e308lf;
}

// kernel::prescaled: (pre, sub * pre, mul / pre) with pre the largest power of two <= 1 that keeps
// |mul / pre| >= 2^-120.
fn prescale(sub: f64, mul: f64) {
    var pre = 1.0lf;
    if (mul != 0.0lf && is_finite64(mul)) {
        let tiny = f64(ldexp(1.0, -120));
        for (var i = 0; i < 1100; i = i + 1) {
            if (abs(mul / pre) >= tiny) { break; }
            pre = pre * 0.5lf;
        }
    }
    out.pre = f32(pre);
    out.sub = f32(sub * pre);
    out.mul = f32(mul / pre);
}

@compute @workgroup_size(1)
fn stat_kernel() {
    var p = result[0];
    var k = 1.0lf;
    if (p.pad0 == 1u) {
        p = result[1];
        k = f64(bitcast<f32>(p.pad0));
    }
    // GpuMoments::from_partial and host_stats.
    let count = p.count;
    let mean = f64(p.mean) / k;
    let m2 = f64(p.m2) / (k * k);
    var sd = 0.0lf;
    if (count > 0u) {
        sd = sqrt(max(m2 / f64(count), 0.0lf));
    }
    out = op.point;
    switch op.kind {
        case 0u: {
            // zscore_params
            let ok = count > 0u && sd > 0.0lf && is_finite64(sd);
            prescale(mean, select(0.0lf, 1.0lf / sd, ok));
        }
        case 1u: {
            // minmax_params
            let a = op.a;
            let b = op.b;
            let range = f64(p.vmax) - f64(p.vmin);
            var mul = 0.0lf;
            if (range > 0.0lf) {
                mul = (b - a) / range;
            }
            // sub stays 0 (prescale(0, mul)); the clamp to [a, b] comes with the template.
            prescale(0.0lf, mul);
            out.add = f32(a - f64(p.vmin) * mul);
        }
        case 2u: {
            // gamma_params: the f32 reciprocal, f64 only where that would be subnormal.
            let range = p.vmax - p.vmin;
            var m32 = 0.0;
            if (range > 0.0) {
                // The correctly rounded f32 reciprocal (f64 has the bits to round it once).
                m32 = f32(1.0lf / f64(range));
            }
            var m = f64(m32);
            if (!(abs(m32) >= ldexp(1.0, -120) || m32 == 0.0)) {
                m = 1.0lf / f64(range);
            }
            prescale(f64(p.vmin), m);
            out.post = range;
            out.add = p.vmin;
        }
        default: {
            // contrast
            out.sub = f32(mean);
            out.add = f32(mean);
        }
    }
}
