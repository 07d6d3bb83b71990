// Reductions over an image texture (CPU twin: src/exec/cpu/reduce.rs).
// stats_partial: each workgroup reduces CHUNK consecutive voxels (linear index i + nx * (j + ny * k)) to
//   (count, mean, M2, min, max) with per-thread Welford updates and a tree of Chan merges; mean and M2
//   are of the values times `vscale` (the host retries with vscale < 1 when they overflow), min and
//   max of the values themselves.
//   stats_partial_label: the same over the voxels whose label (binding 5) is nonzero.
// stats_final: one workgroup merges all partials the same way.
// stats_final_device, stats_partial_rescue, stats_final_rescue: the same passes, and their retry on
//   rescaled values into result[1], dispatched indirectly only when result[0] overflowed (the
//   device's twin of the host's retry; see stat_kernel.wgsl).
// histogram: counts voxels per value bin (`value_bin`, the CPU formula); with `filter_bin >= 0` only
//   voxels of that level-1 bin are counted, in sub-bins of it (the second level of the percentile search).

struct Params {
    shape: vec4<u32>,     // nx, ny, nz, n (voxel count)
    mask_nonzero: u32,    // 1: only nonzero voxels
    partials: u32,        // number of partials (stats_final)
    groups_x: u32,        // workgroups along x in the 2D dispatch
    filter_bin: i32,      // histogram: -1 or the level-1 bin to refine
    hmin: f32,            // histogram: lower edge
    hscale: f32,          // histogram: bins per unit
    h1min: f32,           // level-1 lower edge (to recompute the level-1 bin when filtering)
    h1scale: f32,         // level-1 bins per unit
    vscale: f32,          // a power of two every value is multiplied by (1, or less when the values
                          // span more than f32 can: moments and histogram edges are then in scaled units)
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

struct Partial {
    count: u32,
    mean: f32,
    m2: f32,
    vmin: f32,
    vmax: f32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

const WG: u32 = 256u;
const PER_THREAD: u32 = 16u;
const CHUNK: u32 = 4096u; // WG * PER_THREAD
const BINS: u32 = 65536u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var src: texture_3d<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<Partial>;
@group(0) @binding(3) var<storage, read_write> result: array<Partial>;
@group(0) @binding(4) var<storage, read_write> hist: array<atomic<u32>>;
// The label map whose nonzero voxels the *_label passes reduce over (`"mask": "label"`; any unsigned
// texel format, signed label types as their bits; a 1x1x1 placeholder for the other passes).
@group(0) @binding(5) var labels: texture_3d<u32>;

var<workgroup> sh: array<Partial, 256>;

fn load(l: u32) -> f32 {
    let nx = p.shape.x;
    let ny = p.shape.y;
    let i = l % nx;
    let r = l / nx;
    return textureLoad(src, vec3<u32>(i, r % ny, r / ny), 0).x;
}

fn empty() -> Partial {
    return Partial(0u, 0.0, 0.0, 3.0e38, -3.0e38, 0u, 0u, 0u);
}

fn merge(a: Partial, b: Partial) -> Partial {
    if (a.count == 0u) { return b; }
    if (b.count == 0u) { return a; }
    let n = a.count + b.count;
    let fa = f32(a.count);
    let fb = f32(b.count);
    let fn_ = f32(n);
    let d = b.mean - a.mean;
    return Partial(n, a.mean + d * (fb / fn_), a.m2 + b.m2 + d * d * (fa * fb / fn_),
                   min(a.vmin, b.vmin), max(a.vmax, b.vmax), 0u, 0u, 0u);
}

fn tree(t: u32, mine: Partial) -> Partial {
    sh[t] = mine;
    workgroupBarrier();
    var s = WG / 2u;
    loop {
        if (s == 0u) { break; }
        if (t < s) {
            sh[t] = merge(sh[t], sh[t + s]);
        }
        workgroupBarrier();
        s = s / 2u;
    }
    return sh[0];
}

fn label_at(l: u32) -> u32 {
    let nx = p.shape.x;
    let ny = p.shape.y;
    let r = l / nx;
    return textureLoad(labels, vec3<u32>(l % nx, r % ny, r / ny), 0).x;
}

// Workgroup `w`'s partial of the values times `vscale` (thread t's share merged by the tree); with
// `by_label` (a constant at each call, so each entry point compiles one test) only voxels whose label
// is nonzero, else all voxels or the nonzero ones (`mask_nonzero`).
fn partial_of(w: u32, t: u32, vscale: f32, by_label: bool) -> Partial {
    var acc = empty();
    let base = w * CHUNK;
    for (var q = 0u; q < PER_THREAD; q = q + 1u) {
        let l = base + q * WG + t;
        if (l < p.shape.w) {
            let raw = load(l);
            var keep = p.mask_nonzero == 0u || raw != 0.0;
            if (by_label) {
                keep = label_at(l) != 0u;
            }
            if (keep) {
                let x = raw * vscale;
                acc.count = acc.count + 1u;
                let d = x - acc.mean;
                acc.mean = acc.mean + d / f32(acc.count);
                acc.m2 = acc.m2 + d * (x - acc.mean);
                acc.vmin = min(acc.vmin, raw);
                acc.vmax = max(acc.vmax, raw);
            }
        }
    }
    return tree(t, acc);
}

@compute @workgroup_size(256)
fn stats_partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let w = wg.x + wg.y * p.groups_x;
    let total = partial_of(w, t, p.vscale, false);
    if (t == 0u && w * CHUNK < p.shape.w) {
        partials[w] = total;
    }
}

@compute @workgroup_size(256)
fn stats_partial_label(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let w = wg.x + wg.y * p.groups_x;
    let total = partial_of(w, t, p.vscale, true);
    if (t == 0u && w * CHUNK < p.shape.w) {
        partials[w] = total;
    }
}

fn merge_partials(t: u32) -> Partial {
    var acc = empty();
    for (var q = t; q < p.partials; q = q + WG) {
        acc = merge(acc, partials[q]);
    }
    return tree(t, acc);
}

@compute @workgroup_size(256)
fn stats_final(@builtin(local_invocation_index) t: u32) {
    let total = merge_partials(t);
    if (t == 0u) {
        result[0] = total;
    }
}

// The device's own retry of an overflowed moment pass (the host's retry in GpuContext::stats, for
// statistics that are not read back). stats_final_device is stats_final plus the indirect dispatch
// arguments of the retry, in `hist`: words 0-2 for stats_partial_rescue, 3-5 for stats_final_rescue,
// zero workgroups unless result[0]'s mean or M2 is not finite (then result[0].pad0 = 1). The retry
// reduces the values times a power of two that brings the largest magnitude near 2^20 (the host's
// formula, exact from the bits) into result[1], with that scale's bits in result[1].pad0.
fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(256)
fn stats_final_device(@builtin(local_invocation_index) t: u32) {
    let total = merge_partials(t);
    if (t == 0u) {
        let need = total.count > 0u && !(is_finite(total.mean) && is_finite(total.m2));
        result[0] = total;
        result[0].pad0 = select(0u, 1u, need);
        let gy = (p.partials + p.groups_x - 1u) / p.groups_x;
        atomicStore(&hist[0], select(0u, p.groups_x, need));
        atomicStore(&hist[1], select(0u, gy, need));
        atomicStore(&hist[2], 1u);
        atomicStore(&hist[3], select(0u, 1u, need));
        atomicStore(&hist[4], 1u);
        atomicStore(&hist[5], 1u);
    }
}

// 2^(20 - ceil(log2(max(|min|, |max|, 1)))) of result[0] (GpuContext::stats computes the same).
fn rescue_scale() -> f32 {
    let r = result[0];
    let big = max(max(abs(r.vmin), abs(r.vmax)), 1.0);
    let bits = bitcast<u32>(big);
    let e = i32((bits >> 23u) & 0xffu) - 127;
    let up = select(0, 1, (bits & 0x7fffffu) != 0u);
    return ldexp(1.0, 20 - (e + up));
}

@compute @workgroup_size(256)
fn stats_partial_rescue(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let w = wg.x + wg.y * p.groups_x;
    let total = partial_of(w, t, rescue_scale(), false);
    if (t == 0u && w * CHUNK < p.shape.w) {
        partials[w] = total;
    }
}

@compute @workgroup_size(256)
fn stats_partial_label_rescue(@builtin(workgroup_id) wg: vec3<u32>,
                              @builtin(local_invocation_index) t: u32) {
    let w = wg.x + wg.y * p.groups_x;
    let total = partial_of(w, t, rescue_scale(), true);
    if (t == 0u && w * CHUNK < p.shape.w) {
        partials[w] = total;
    }
}

@compute @workgroup_size(256)
fn stats_final_rescue(@builtin(local_invocation_index) t: u32) {
    let total = merge_partials(t);
    if (t == 0u) {
        result[1] = total;
        result[1].pad0 = bitcast<u32>(rescue_scale());
    }
}

fn value_bin(x: f32, lo: f32, scale: f32) -> u32 {
    // Same formula as the CPU (truncation of a non-negative value, clamped to the last bin).
    return min(u32(max((x - lo) * scale, 0.0)), BINS - 1u);
}

@compute @workgroup_size(256)
fn histogram(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let w = wg.x + wg.y * p.groups_x;
    let base = w * CHUNK;
    for (var q = 0u; q < PER_THREAD; q = q + 1u) {
        let l = base + q * WG + t;
        if (l < p.shape.w) {
            let x = load(l) * p.vscale;
            if (p.filter_bin >= 0) {
                if (value_bin(x, p.h1min, p.h1scale) != u32(p.filter_bin)) {
                    continue;
                }
            }
            atomicAdd(&hist[value_bin(x, p.hmin, p.hscale)], 1u);
        }
    }
}
