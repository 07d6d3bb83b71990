// The point-wise intensity kernel (CPU twin: PointKernel::eval in src/exec/cpu/intensity.rs), shared
// by the elementwise pass (intensity.wgsl) and the resampler, which applies it to its samples when a
// statistics-free intensity op follows a resampling pass (one pass instead of two, same values):
//   y = (x * pre - sub) * mul; if gamma != 1: y = max(y, 0) ^ gamma; y = y * post + add
//   + noise_mean + noise_std * gauss(seed, l)          (counter-based, identical to the CPU's)
//   * exp(bias polynomial in u, v, w in [-1, 1])
//   out = clamp(y, lo, hi); zero voxels kept when skip_zero = 1.
// The including shader declares `pk: Point` (a uniform) and appends hash.wgsl (pcg, uniform01).

struct Point {
    sub: f32,
    mul: f32,
    add: f32,
    lo: f32,
    hi: f32,
    skip_zero: u32,
    gamma: f32,
    post: f32,
    noise_std: f32,
    noise_mean: f32,
    seed0: u32,
    seed1: u32,
    bias_order: u32,
    pre: f32,           // power of two applied first (1 unless mul would be subnormal)
    pad0: u32,
    pad1: u32,
    bias: array<vec4<f32>, 14>,
}

fn gauss(index: u32) -> f32 {
    let u1 = uniform01(pk.seed0, pk.seed1, index, 0u);
    let u2 = uniform01(pk.seed0, pk.seed1, index, 1u);
    return sqrt(-2.0 * log(u1)) * cos(6.2831855 * u2);
}

fn unit_coord(i: u32, n: u32) -> f32 {
    if (n > 1u) {
        return -1.0 + 2.0 * f32(i) / f32(n - 1u);
    }
    return 0.0;
}

fn coef(t: u32) -> f32 {
    return pk.bias[t / 4u][t % 4u];
}

fn bias_poly(u: f32, v: f32, w: f32) -> f32 {
    let order = pk.bias_order;
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

// The kernel at voxel `pos` of a volume of `shape` (the noise counter is the voxel's linear index).
fn point_kernel(x: f32, pos: vec3<u32>, shape: vec3<u32>) -> f32 {
    if (pk.skip_zero == 1u && x == 0.0) {
        return x;
    }
    var y = (x * pk.pre - pk.sub) * pk.mul;
    if (GAMMA && pk.gamma != 1.0) {
        y = pow(max(y, 0.0), pk.gamma);
    }
    y = y * pk.post + pk.add;
    if (NOISE && pk.noise_std > 0.0) {
        let l = pos.x + shape.x * (pos.y + shape.y * pos.z);
        y = y + pk.noise_mean + pk.noise_std * gauss(l);
    }
    if (BIAS && pk.bias_order > 0u) {
        let u = unit_coord(pos.x, shape.x);
        let vv = unit_coord(pos.y, shape.y);
        let w = unit_coord(pos.z, shape.z);
        y = y * exp(bias_poly(u, vv, w));
    }
    return clamp(y, pk.lo, pk.hi);
}
