// Registration metric over fixed-image samples for up to 32 candidate transforms at once (CPU twin:
// `Level::sums` in src/register.rs). Workgroup (chunk, t): the 256 threads take the samples of chunk
// `chunk` (4096 consecutive samples, 16 each), map each through transform t (fixed world -> moving voxel),
// sample the moving image trilinearly where the point lies inside [0, n - 1] on every axis, and either
// add moment sums (count, f, m, ff or (f - m)^2, mm, fm; reduced in the workgroup and written per chunk,
// summed on the host in chunk order) and, for MI, splat linear Parzen weights into transform t's joint
// histogram (fixed point, 4096 units per sample, atomics).

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
    rows: array<vec4<f32>, 96>,  // 3 rows per transform
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var moving: texture_3d<f32>;
@group(0) @binding(2) var<storage, read> samples: array<vec4<f32>>;   // world x, y, z; fixed value
@group(0) @binding(3) var<storage, read_write> sums: array<f32>;      // [t][chunk][6]
@group(0) @binding(4) var<storage, read_write> hist: array<atomic<u32>>; // [t][bins * bins]

const WG: u32 = 256u;
const CHUNK: u32 = 4096u;
const UNIT: f32 = 4096.0;

var<workgroup> red: array<array<f32, 6>, 256>;

fn fetch(i: vec3<i32>) -> f32 {
    let m = vec3<i32>(p.mshape.xyz) - vec3<i32>(1);
    return textureLoad(moving, vec3<u32>(min(i, m)), 0).x;
}

// Trilinear sample at voxel coordinate q; .y = 0 outside.
fn sample_moving(q: vec3<f32>) -> vec2<f32> {
    let n = vec3<f32>(p.mshape.xyz);
    if (any(q < vec3<f32>(0.0)) || any(q > n - vec3<f32>(1.0))) {
        return vec2<f32>(0.0, 0.0);
    }
    let fl = clamp(floor(q), vec3<f32>(0.0), max(n - vec3<f32>(2.0), vec3<f32>(0.0)));
    let f = q - fl;
    let i = vec3<i32>(fl);
    let c00 = mix(fetch(i), fetch(i + vec3<i32>(1, 0, 0)), f.x);
    let c10 = mix(fetch(i + vec3<i32>(0, 1, 0)), fetch(i + vec3<i32>(1, 1, 0)), f.x);
    let c01 = mix(fetch(i + vec3<i32>(0, 0, 1)), fetch(i + vec3<i32>(1, 0, 1)), f.x);
    let c11 = mix(fetch(i + vec3<i32>(0, 1, 1)), fetch(i + vec3<i32>(1, 1, 1)), f.x);
    return vec2<f32>(mix(mix(c00, c10, f.y), mix(c01, c11, f.y), f.z), 1.0);
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
    let top = f32(p.bins) - 1.0;
    for (var j = 0u; j < CHUNK / WG; j = j + 1u) {
        let i = chunk * CHUNK + j * WG + li;
        if (i < p.mshape.w) {
            let smp = samples[i];
            let x = vec4<f32>(smp.xyz, 1.0);
            let q = vec3<f32>(dot(r0, x), dot(r1, x), dot(r2, x));
            let mv = sample_moving(q);
            if (mv.y != 0.0) {
                let fv = smp.w;
                let m = mv.x;
                if (p.mode == 1u) {
                    let a = clamp((fv - p.fmin) * p.fscale, 0.0, top);
                    let b = clamp((m - p.mmin) * p.mscale, 0.0, top);
                    let a0 = u32(floor(a));
                    let b0 = u32(floor(b));
                    let a1 = min(a0 + 1u, p.bins - 1u);
                    let b1 = min(b0 + 1u, p.bins - 1u);
                    let ta = a - f32(a0);
                    let tb = b - f32(b0);
                    splat(t, a0, b0, (1.0 - ta) * (1.0 - tb));
                    splat(t, a1, b0, ta * (1.0 - tb));
                    splat(t, a0, b1, (1.0 - ta) * tb);
                    splat(t, a1, b1, ta * tb);
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
    red[li] = s;
    workgroupBarrier();
    var h = WG / 2u;
    while (h > 0u) {
        if (li < h) {
            for (var c = 0u; c < 6u; c = c + 1u) {
                red[li][c] = red[li][c] + red[li + h][c];
            }
        }
        workgroupBarrier();
        h = h / 2u;
    }
    if (li == 0u) {
        for (var c = 0u; c < 6u; c = c + 1u) {
            sums[(t * p.chunks + chunk) * 6u + c] = red[0][c];
        }
    }
}
