// Registration metric over fixed-image samples for up to 32 candidate transforms at once (CPU twin:
// `Level::sums` in src/register/metric.rs). Workgroup (chunk, t): the 256 threads take the samples of
// chunk `chunk` (4096 consecutive samples, 16 each), map each through transform t (fixed world -> moving
// voxel), sample the moving image trilinearly where the point lies inside [0, n - 1] on every axis, and
// add moment sums (count, f, m, ff or (f - m)^2, mm, fm; reduced in the workgroup and written per chunk,
// summed on the host in chunk order) and, for MI, Mattes' Parzen weights (the fixed bin once, four moving
// bins with cubic B-spline weights, 2 bins of padding) into transform t's joint histogram (fixed point,
// 4096 units per sample, atomics).
//
// `metric_grad` (CPU twin: `Level::grad_sums`) takes one transform and sums, per chunk, the per-sample
// weight times the moving image's derivative along voxel axis a times [x, y, z, 1]_c (12 sums): the
// weight is coef.x + coef.y m + coef.z f (MSE, NCC) or, for MI, sum_k B3'(k - y) table[fixed bin][k].

struct Params {
    mshape: vec4<u32>,   // moving nx, ny, nz; number of samples
    k: u32,              // transforms
    bins: u32,
    mode: u32,           // 0: moment sums (NCC), 1: joint histogram (MI), 2: moment sums with (f - m)^2 in slot 3 (MSE)
    chunks: u32,
    fmin: f32,
    fscale: f32,         // (bins - 1) / (fmax - fmin)
    mmin: f32,
    mscale: f32,
    coef: vec4<f32>,     // metric_grad: weight = coef.x + coef.y m + coef.z f (MSE, NCC)
    rows: array<vec4<f32>, 96>,  // 3 rows per transform
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var moving: texture_3d<f32>;
@group(0) @binding(2) var<storage, read> samples: array<vec4<f32>>;   // world x, y, z; fixed value
@group(0) @binding(3) var<storage, read_write> sums: array<f32>;      // [t][chunk][6]
@group(0) @binding(4) var<storage, read_write> hist: array<atomic<u32>>; // [t][bins * bins]
// metric_grad's binding 4 (never used by the same entry point as `hist`).
@group(0) @binding(4) var<storage, read> table: array<f32>;           // MI: [bins * bins]

const WG: u32 = 256u;
const CHUNK: u32 = 4096u;
const UNIT: f32 = 4096.0;
const PAD: f32 = 2.0;

// Per-invocation sums of a workgroup (6 used by `metric`, 12 by `metric_grad`).
var<workgroup> red: array<array<f32, 12>, 256>;

// Sums columns 0..width of `red` over the workgroup into red[0] (every invocation calls it, after
// writing its own row).
fn reduce_red(li: u32, width: u32) {
    workgroupBarrier();
    var h = WG / 2u;
    while (h > 0u) {
        if (li < h) {
            for (var c = 0u; c < width; c = c + 1u) {
                red[li][c] = red[li][c] + red[li + h][c];
            }
        }
        workgroupBarrier();
        h = h / 2u;
    }
}

fn fetch(i: vec3<i32>) -> f32 {
    let m = vec3<i32>(p.mshape.xyz) - vec3<i32>(1);
    return textureLoad(moving, vec3<u32>(min(i, m)), 0).x;
}

struct Smp {
    v: f32,
    d: vec3<f32>,   // derivative along each voxel axis
    inside: bool,
}

// Trilinear sample at voxel coordinate q and its derivatives; .inside false outside [0, n - 1].
fn sample_moving(q: vec3<f32>) -> Smp {
    let n = vec3<f32>(p.mshape.xyz);
    if (any(q < vec3<f32>(0.0)) || any(q > n - vec3<f32>(1.0))) {
        return Smp(0.0, vec3<f32>(0.0), false);
    }
    let fl = clamp(floor(q), vec3<f32>(0.0), max(n - vec3<f32>(2.0), vec3<f32>(0.0)));
    let f = q - fl;
    let i = vec3<i32>(fl);
    let v000 = fetch(i);
    let v100 = fetch(i + vec3<i32>(1, 0, 0));
    let v010 = fetch(i + vec3<i32>(0, 1, 0));
    let v110 = fetch(i + vec3<i32>(1, 1, 0));
    let v001 = fetch(i + vec3<i32>(0, 0, 1));
    let v101 = fetch(i + vec3<i32>(1, 0, 1));
    let v011 = fetch(i + vec3<i32>(0, 1, 1));
    let v111 = fetch(i + vec3<i32>(1, 1, 1));
    let c00 = mix(v000, v100, f.x);
    let c10 = mix(v010, v110, f.x);
    let c01 = mix(v001, v101, f.x);
    let c11 = mix(v011, v111, f.x);
    let lo = mix(c00, c10, f.y);
    let hi = mix(c01, c11, f.y);
    let dx = mix(mix(v100 - v000, v110 - v010, f.y), mix(v101 - v001, v111 - v011, f.y), f.z);
    let dy = mix(c10 - c00, c11 - c01, f.z);
    return Smp(mix(lo, hi, f.z), vec3<f32>(dx, dy, hi - lo), true);
}

fn bspline3(u: f32) -> f32 {
    let a = abs(u);
    if (a < 1.0) {
        return (4.0 - 6.0 * a * a + 3.0 * a * a * a) / 6.0;
    }
    if (a < 2.0) {
        return (2.0 - a) * (2.0 - a) * (2.0 - a) / 6.0;
    }
    return 0.0;
}

fn bspline3_d(u: f32) -> f32 {
    let a = abs(u);
    if (a < 1.0) {
        return -2.0 * u + 1.5 * u * a;
    }
    if (a < 2.0) {
        return -0.5 * sign(u) * (2.0 - a) * (2.0 - a);
    }
    return 0.0;
}

// Fixed bin of bin coordinate x (zero-order window).
fn fixed_bin(x: f32) -> u32 {
    return u32(clamp(floor(x), PAD, f32(p.bins) - PAD - 1.0));
}

// First of the four moving bins bin coordinate y spreads over.
fn moving_bin(y: f32) -> u32 {
    return u32(clamp(floor(y), PAD, f32(p.bins) - PAD - 1.0)) - 1u;
}

fn splat(t: u32, x: u32, y: u32, w: f32) {
    let units = u32(w * UNIT + 0.5);
    if (units > 0u) {
        atomicAdd(&hist[t * p.bins * p.bins + x * p.bins + y], units);
    }
}

@compute @workgroup_size(256)
fn metric(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let chunk = wg.x;
    let t = wg.y;
    let r0 = p.rows[3u * t];
    let r1 = p.rows[3u * t + 1u];
    let r2 = p.rows[3u * t + 2u];
    var s = array<f32, 6>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (var j = 0u; j < CHUNK / WG; j = j + 1u) {
        let i = chunk * CHUNK + j * WG + li;
        if (i < p.mshape.w) {
            let smp = samples[i];
            let x = vec4<f32>(smp.xyz, 1.0);
            let q = vec3<f32>(dot(r0, x), dot(r1, x), dot(r2, x));
            let mv = sample_moving(q);
            if (mv.inside) {
                let fv = smp.w;
                let m = mv.v;
                if (p.mode == 1u) {
                    let a = fixed_bin((fv - p.fmin) * p.fscale + PAD);
                    let y = (m - p.mmin) * p.mscale + PAD;
                    let k0 = moving_bin(y);
                    for (var k = 0u; k < 4u; k = k + 1u) {
                        splat(t, a, k0 + k, bspline3(f32(k0 + k) - y));
                    }
                }
                {
                    s[0] = s[0] + 1.0;
                    s[1] = s[1] + fv;
                    s[2] = s[2] + m;
                    if (p.mode == 2u) {
                        s[3] = s[3] + (fv - m) * (fv - m);
                    } else {
                        s[3] = s[3] + fv * fv;
                    }
                    s[4] = s[4] + m * m;
                    s[5] = s[5] + fv * m;
                }
            }
        }
    }
    for (var c = 0u; c < 6u; c = c + 1u) {
        red[li][c] = s[c];
    }
    reduce_red(li, 6u);
    if (li == 0u) {
        for (var c = 0u; c < 6u; c = c + 1u) {
            sums[(t * p.chunks + chunk) * 6u + c] = red[0][c];
        }
    }
}

@compute @workgroup_size(256)
fn metric_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let chunk = wg.x;
    let r0 = p.rows[0];
    let r1 = p.rows[1];
    let r2 = p.rows[2];
    var s = array<f32, 12>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (var j = 0u; j < CHUNK / WG; j = j + 1u) {
        let i = chunk * CHUNK + j * WG + li;
        if (i < p.mshape.w) {
            let smp = samples[i];
            let x = vec4<f32>(smp.xyz, 1.0);
            let mv = sample_moving(vec3<f32>(dot(r0, x), dot(r1, x), dot(r2, x)));
            if (mv.inside) {
                var w = 0.0;
                if (p.mode == 1u) {
                    let a = fixed_bin((smp.w - p.fmin) * p.fscale + PAD);
                    let y = (mv.v - p.mmin) * p.mscale + PAD;
                    let k0 = moving_bin(y);
                    for (var k = 0u; k < 4u; k = k + 1u) {
                        w = w + bspline3_d(f32(k0 + k) - y) * table[a * p.bins + k0 + k];
                    }
                } else {
                    w = p.coef.x + p.coef.y * mv.v + p.coef.z * smp.w;
                }
                for (var a = 0u; a < 3u; a = a + 1u) {
                    let wd = w * mv.d[a];
                    s[4u * a] = s[4u * a] + wd * x.x;
                    s[4u * a + 1u] = s[4u * a + 1u] + wd * x.y;
                    s[4u * a + 2u] = s[4u * a + 2u] + wd * x.z;
                    s[4u * a + 3u] = s[4u * a + 3u] + wd;
                }
            }
        }
    }
    red[li] = s;
    reduce_red(li, 12u);
    if (li == 0u) {
        for (var c = 0u; c < 12u; c = c + 1u) {
            sums[chunk * 12u + c] = red[0][c];
        }
    }
}
