// Percentiles of an image on the device and the percentile clip kernel built from them, without the
// host reading anything back (CPU twin: GpuContext::percentiles in src/exec/gpu/reduce.rs, the
// two-level histogram search this follows step by step, and clip_params in src/exec/kernel.rs).
// Needs SHADER_F64: the final values are the host's f64 expressions.
//   result[0]: min and max of the image (reduce.wgsl's stats_partial + stats_final).
//   pct_setup:   the level-1 histogram's edge and scale from [min, max] (values times 1/4 when the
//                range exceeds f32), the host's f32 arithmetic.
//   pct_level1:  65536-bin histogram of every voxel into hist[0 .. 65536].
//   pct_select:  the level-1 bin holding each needed rank (one workgroup, prefix sums).
//   pct_level2:  the voxels of each selected bin counted in 65536 sub-bins of it (hist[65536 * (1 + k)],
//                one histogram per distinct bin).
//   pct_finish:  each rank's sub-bin, its centre as the value, numpy's linear interpolation between
//                the two ranks of each percentile, clamped to [min, max]; writes the clip kernel.
// The host prepends reduce.wgsl's `Partial`, its chunk constants (WG, PER_THREAD, CHUNK, BINS),
// `load`, `is_finite` and `value_bin`, and point.wgsl's `Point`.

struct Params {
    shape: vec4<u32>,     // nx, ny, nz, n (voxel count)
    groups_x: u32,        // workgroups along x in the 2D dispatch of the histogram passes
    pad0: u32,
    pad1: u32,
    pad2: u32,
    ranks: vec4<u32>,     // floor(r) and floor(r) + 1 (at most n - 1) of each percentile's rank r
    frac: vec2<f64>,      // r - floor(r) of each percentile
    point: Point,         // the clip kernel with its bounds left to fill
}

// What the passes hand each other.
struct Search {
    vscale: f32,          // 1, or 1/4 when max - min overflows f32
    hmin: f32,            // level-1 lower edge (min * vscale)
    hscale: f32,          // level-1 bins per unit
    sub_scale: f32,       // level-2 bins per unit (hscale * 65536)
    bins: vec4<u32>,      // level-1 bin of each rank
    before: vec4<u32>,    // voxels in the bins below it
    slot: vec4<u32>,      // which level-2 histogram counts that bin (the first rank with that bin)
    edge: vec4<f32>,      // that bin's lower edge
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var src: texture_3d<f32>;
@group(0) @binding(2) var<storage, read> result: array<Partial>;
@group(0) @binding(3) var<storage, read_write> hist: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> search: Search;
@group(0) @binding(5) var<storage, read_write> out: Point;

var<workgroup> prefix: array<u32, 256>;
var<workgroup> hit: vec2<u32>;

// f32 a / b correctly rounded (WGSL's f32 division may be 2.5 ulp off; rounding the f64 quotient of
// two f32 values to f32 is exact rounding).
fn div32(a: f32, b: f32) -> f32 {
    return f32(f64(a) / f64(b));
}

@compute @workgroup_size(1)
fn pct_setup() {
    let r = result[0];
    var vscale = 1.0;
    if (!is_finite(r.vmax - r.vmin)) {
        vscale = 0.25;
    }
    let lo = r.vmin * vscale;
    let hi = r.vmax * vscale;
    var scale = 0.0;
    if (hi > lo) {
        scale = div32(f32(BINS), hi - lo);
    }
    search.vscale = vscale;
    search.hmin = lo;
    search.hscale = scale;
    search.sub_scale = scale * f32(BINS);
}

// Histogram pass over workgroup `wg`'s chunk: level 1 (every voxel into hist[0 .. BINS]), or level 2
// (the voxels of each selected level-1 bin into that bin's sub-bins; a constant at each call).
fn count(wg: vec3<u32>, t: u32, level2: bool) {
    let base = (wg.x + wg.y * p.groups_x) * CHUNK;
    for (var q = 0u; q < PER_THREAD; q = q + 1u) {
        let l = base + q * WG + t;
        if (l < p.shape.w) {
            let x = load(l) * search.vscale;
            let b = value_bin(x, search.hmin, search.hscale);
            if (!level2) {
                atomicAdd(&hist[b], 1u);
                continue;
            }
            for (var k = 0u; k < 4u; k = k + 1u) {
                if (search.slot[k] == k && search.bins[k] == b) {
                    let s = value_bin(x, search.edge[k], search.sub_scale);
                    atomicAdd(&hist[(1u + k) * BINS + s], 1u);
                }
            }
        }
    }
}

@compute @workgroup_size(256)
fn pct_level1(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    count(wg, t, false);
}

// Prefix sums of histogram `h` (at hist[h * BINS]) by blocks of 256 bins: `prefix[i]` counts the
// bins of blocks 0 ..= i. All 256 threads call it.
fn block_sums(t: u32, h: u32) {
    var sum = 0u;
    for (var i = 0u; i < 256u; i = i + 1u) {
        sum = sum + atomicLoad(&hist[h * BINS + t * 256u + i]);
    }
    prefix[t] = sum;
    workgroupBarrier();
    // Hillis-Steele inclusive scan.
    for (var d = 1u; d < 256u; d = d * 2u) {
        var add = 0u;
        if (t >= d) {
            add = prefix[t - d];
        }
        workgroupBarrier();
        prefix[t] = prefix[t] + add;
        workgroupBarrier();
    }
}

// After block_sums(t, h): the bin b with cum(b) <= rank < cum(b + 1), cum(b) the count below it
// (the host's partition_point over the cumulative counts), and cum(b). The thread whose block holds
// the rank scans it.
fn locate(t: u32, h: u32, rank: u32) -> vec2<u32> {
    var below = 0u;
    if (t > 0u) {
        below = prefix[t - 1u];
    }
    if (below <= rank && rank < prefix[t]) {
        for (var i = 0u; i < 256u; i = i + 1u) {
            let c = atomicLoad(&hist[h * BINS + t * 256u + i]);
            if (rank < below + c) {
                hit = vec2<u32>(t * 256u + i, below);
                break;
            }
            below = below + c;
        }
    }
    workgroupBarrier();
    let r = hit;
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(256)
fn pct_select(@builtin(local_invocation_index) t: u32) {
    block_sums(t, 0u);
    for (var k = 0u; k < 4u; k = k + 1u) {
        let b = locate(t, 0u, p.ranks[k]);
        if (t == 0u) {
            search.bins[k] = b.x;
            search.before[k] = b.y;
            var slot = k;
            for (var j = 0u; j < k; j = j + 1u) {
                if (search.bins[j] == b.x && slot == k) {
                    slot = j;
                }
            }
            search.slot[k] = slot;
            // (A constant image has no scale: every voxel is in bin 0, its value the minimum.)
            search.edge[k] = select(search.hmin, search.hmin + div32(f32(b.x), search.hscale),
                                    search.hscale > 0.0);
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(256)
fn pct_level2(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    count(wg, t, true);
}

@compute @workgroup_size(256)
fn pct_finish(@builtin(local_invocation_index) t: u32) {
    // Each rank's value (thread 0's are the ones used).
    var value: array<f64, 4>;
    for (var k = 0u; k < 4u; k = k + 1u) {
        let h = 1u + search.slot[k];
        block_sums(t, h);
        // The rank's place among the bin's voxels (at most the last).
        let within = min(p.ranks[k] - search.before[k], max(prefix[255], 1u) - 1u);
        let s = locate(t, h, within);
        if (t == 0u) {
            value[k] = (f64(search.edge[k]) + (f64(s.x) + 0.5lf) / f64(search.sub_scale))
                / f64(search.vscale);
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        let r = result[0];
        let lo = f64(r.vmin);
        let hi = f64(r.vmax);
        var pct = vec2<f64>(lo, lo);
        if (r.vmax != r.vmin) {
            for (var j = 0u; j < 2u; j = j + 1u) {
                let a = value[2u * j];
                let b = value[2u * j + 1u];
                pct[j] = clamp(a + (b - a) * p.frac[j], lo, hi);
            }
        }
        out = p.point;
        out.lo = f32(pct.x);
        out.hi = f32(pct.y);
    }
}
