// Point-wise intensity kernel (CPU twin: PointKernel::eval in src/exec/cpu/intensity.rs):
//   y = (x * pre - sub) * mul; if gamma != 1: y = max(y, 0) ^ gamma; y = y * post + add
//   + noise_mean + noise_std * gauss(seed, l)          (counter-based, identical to the CPU's)
//   * exp(bias polynomial in u, v, w in [-1, 1])
//   out = clamp(y, lo, hi); zero voxels kept when skip_zero = 1.
// Reads the image texture, writes a z-slab of a row-padded buffer (same layout as the resampler).

struct Params {
    shape: vec4<u32>,   // nx, ny, nz, z0
    sub: f32,
    mul: f32,
    add: f32,
    lo: f32,
    hi: f32,
    skip_zero: u32,
    pitch: u32,
    slab: u32,
    gamma: f32,
    post: f32,
    noise_std: f32,
    noise_mean: f32,
    seed0: u32,
    seed1: u32,
    bias_order: u32,
    pre: f32,           // power of two applied first (1 unless mul would be subnormal)
    bias: array<vec4<f32>, 14>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var src: texture_3d<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

// pcg and uniform01 come from hash.wgsl (appended when the module is built).

fn gauss(index: u32) -> f32 {
    let u1 = uniform01(index, 0u);
    let u2 = uniform01(index, 1u);
    return sqrt(-2.0 * log(u1)) * cos(6.2831855 * u2);
}

fn unit_coord(i: u32, n: u32) -> f32 {
    if (n > 1u) {
        return -1.0 + 2.0 * f32(i) / f32(n - 1u);
    }
    return 0.0;
}

fn coef(t: u32) -> f32 {
    return p.bias[t / 4u][t % 4u];
}

fn bias_poly(u: f32, v: f32, w: f32) -> f32 {
    let order = p.bias_order;
    var s = 0.0;
    var t = 0u;
    var ua = 1.0;
    for (var a = 0u; a <= order; a = a + 1u) {
        var vb = 1.0;
        for (var b = 0u; b <= order - a; b = b + 1u) {
            var wc = 1.0;
            for (var c = 0u; c <= order - a - b; c = c + 1u) {
                s = s + coef(t) * ua * vb * wc;
                t = t + 1u;
                wc = wc * w;
            }
            vb = vb * v;
        }
        ua = ua * u;
    }
    return s;
}

// Pipeline-overridable switches: the host builds one pipeline per combination it needs, so a kernel
// without gamma, noise or a bias field carries none of their code (a uniform branch is not free on
// every driver: llvmpipe runs both sides under a mask, which made every point kernel pay for the
// noise hash and the bias polynomial).
override GAMMA: bool = true;
override NOISE: bool = true;
override BIAS: bool = true;

@compute @workgroup_size(8, 8, 4)
fn elementwise(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= p.shape.x || gid.y >= p.shape.y || gid.z >= p.slab) {
        return;
    }
    let k = gid.z + p.shape.w;
    let x = textureLoad(src, vec3<u32>(gid.x, gid.y, k), 0).x;
    var v = x;
    if (p.skip_zero == 0u || x != 0.0) {
        var y = (x * p.pre - p.sub) * p.mul;
        if (GAMMA && p.gamma != 1.0) {
            y = pow(max(y, 0.0), p.gamma);
        }
        y = y * p.post + p.add;
        if (NOISE && p.noise_std > 0.0) {
            let l = gid.x + p.shape.x * (gid.y + p.shape.y * k);
            y = y + p.noise_mean + p.noise_std * gauss(l);
        }
        if (BIAS && p.bias_order > 0u) {
            let u = unit_coord(gid.x, p.shape.x);
            let vv = unit_coord(gid.y, p.shape.y);
            let w = unit_coord(k, p.shape.z);
            y = y * exp(bias_poly(u, vv, w));
        }
        v = clamp(y, p.lo, p.hi);
    }
    dst[gid.x + p.pitch * (gid.y + p.shape.y * gid.z)] = v;
}
