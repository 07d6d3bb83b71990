// FFT along one voxel axis, one workgroup per line (CPU twin: src/exec/cpu/kspace.rs, rustfft).
// A line of n values is transformed in workgroup memory by radix-2 FFTs of size m (a power of two):
// directly when n == m, else by Bluestein's chirp-z algorithm (any n, m >= 2n - 1), so prime lengths
// such as the MNI brain's 197 and 233 work. Forward transforms run decimation-in-frequency (natural
// order in, bit-reversed out) and inverse ones decimation-in-time (bit-reversed in, natural out), so
// no pass permutes data. Modes (flags):
//   FILTER: out = ifft(w * fft(x)) (the k-space artefacts' line filters), else out = fft(x);
//   part written: real (default), IMAG, or MAGNITUDE; ACCUMULATE adds the `acc` texture;
//   COMPLEX_IN reads the imaginary part from `src_im`.
// Tables (vec2 entries, offsets in params): twiddles exp(-2 pi i j / m) for j < m / 2; the chirp
// c[k] = exp(-pi i k^2 / n) for k < n; the FFT of the Bluestein kernel, bit-reversed; the weights w.

struct Params {
    shape: vec4<u32>,   // nx, ny, nz, z0
    n: u32,
    m: u32,
    log2m: u32,
    axis: u32,
    pitch: u32,
    slab: u32,
    groups_x: u32,
    flags: u32,
    tw_off: u32,
    chirp_off: u32,
    kern_off: u32,
    w_off: u32,
}

const COMPLEX_IN: u32 = 1u;
const ACCUMULATE: u32 = 2u;
const FILTER: u32 = 4u;
const IMAG: u32 = 8u;
const MAGNITUDE: u32 = 16u;
const BLUESTEIN: u32 = 32u;

// Invocations per line: 64 on GPUs; 16 on software rasterisers (llvmpipe runs a workgroup as
// coroutines of 8 lanes and pays for every barrier once per coroutine: 256 took 4x as long).
override THREADS: u32 = 64u;
const MAX_M: u32 = 2048u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var src_re: texture_3d<f32>;
@group(0) @binding(2) var src_im: texture_3d<f32>;
@group(0) @binding(3) var acc: texture_3d<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;
@group(0) @binding(5) var<storage, read> tables: array<vec2<f32>>;

var<workgroup> wr: array<f32, MAX_M>;
var<workgroup> wi: array<f32, MAX_M>;

fn cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

fn cj(a: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x, -a.y);
}

fn ld(i: u32) -> vec2<f32> {
    return vec2<f32>(wr[i], wi[i]);
}

fn st(i: u32, v: vec2<f32>) {
    wr[i] = v.x;
    wi[i] = v.y;
}

fn bitrev(i: u32) -> u32 {
    return reverseBits(i) >> (32u - p.log2m);
}

// Voxel of position i on line `line`.
fn voxel(line: u32, i: u32) -> vec3<i32> {
    if (p.axis == 0u) {
        return vec3<i32>(i32(i), i32(line % p.shape.y), i32(line / p.shape.y + p.shape.w));
    } else if (p.axis == 1u) {
        return vec3<i32>(i32(line % p.shape.x), i32(i), i32(line / p.shape.x + p.shape.w));
    }
    return vec3<i32>(i32(line % p.shape.x), i32(line / p.shape.x), i32(i));
}

// Decimation in frequency, forward: natural order in, bit-reversed out.
fn dif(lid: u32) {
    let half_m = p.m / 2u;
    for (var s = i32(p.log2m) - 1; s >= 0; s = s - 1) {
        let h = 1u << u32(s);
        for (var t = lid; t < half_m; t = t + THREADS) {
            let j = t & (h - 1u);
            let i0 = ((t >> u32(s)) << (u32(s) + 1u)) + j;
            let i1 = i0 + h;
            let a = ld(i0);
            let b = ld(i1);
            let w = tables[p.tw_off + (j << (p.log2m - 1u - u32(s)))];
            st(i0, a + b);
            st(i1, cmul(a - b, w));
        }
        workgroupBarrier();
    }
}

// Decimation in time, inverse (conjugate twiddles, unnormalised): bit-reversed in, natural out.
fn dit_inverse(lid: u32) {
    let half_m = p.m / 2u;
    for (var s = 0u; s < p.log2m; s = s + 1u) {
        let h = 1u << s;
        for (var t = lid; t < half_m; t = t + THREADS) {
            let j = t & (h - 1u);
            let i0 = ((t >> s) << (s + 1u)) + j;
            let i1 = i0 + h;
            let a = ld(i0);
            let b = cmul(ld(i1), cj(tables[p.tw_off + (j << (p.log2m - 1u - s))]));
            st(i0, a + b);
            st(i1, a - b);
        }
        workgroupBarrier();
    }
}

// Bluestein: from a[k] = x[k] c[k] in natural order (zero past n), leaves c[k] * (a conv conj c)[k] * m
// in natural order; the caller divides by m.
fn chirp_convolve(lid: u32) {
    dif(lid);
    for (var q = lid; q < p.m; q = q + THREADS) {
        st(q, cmul(ld(q), tables[p.kern_off + q]));
    }
    workgroupBarrier();
    dit_inverse(lid);
    for (var k = lid; k < p.n; k = k + THREADS) {
        st(k, cmul(ld(k), tables[p.chirp_off + k]));
    }
    workgroupBarrier();
}

@compute @workgroup_size(THREADS)
fn fft_lines(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    var lines = p.shape.x * p.shape.y;
    if (p.axis == 0u) {
        lines = p.shape.y * p.slab;
    } else if (p.axis == 1u) {
        lines = p.shape.x * p.slab;
    }
    let line = wid.x + wid.y * p.groups_x;
    if (line >= lines) {
        return;
    }
    let blue = (p.flags & BLUESTEIN) != 0u;
    let n = p.n;
    // Load (times the chirp for Bluestein), zero padded to m.
    for (var i = lid; i < p.m; i = i + THREADS) {
        var v = vec2<f32>(0.0, 0.0);
        if (i < n) {
            let q = voxel(line, i);
            v.x = textureLoad(src_re, q, 0).x;
            if ((p.flags & COMPLEX_IN) != 0u) {
                v.y = textureLoad(src_im, q, 0).x;
            }
            if (blue) {
                v = cmul(v, tables[p.chirp_off + i]);
            }
        }
        st(i, v);
    }
    workgroupBarrier();
    var scale = 1.0;
    if (blue) {
        // X[k] in natural order, k < n.
        chirp_convolve(lid);
        scale = 1.0 / f32(p.m);
    } else {
        dif(lid);
    }
    if ((p.flags & FILTER) != 0u) {
        if (blue) {
            // Inverse DFT as cj(DFT(cj(X w))) / n: a second chirp transform.
            for (var i = lid; i < p.m; i = i + THREADS) {
                var v = vec2<f32>(0.0, 0.0);
                if (i < n) {
                    v = cmul(cj(cmul(ld(i) * scale, tables[p.w_off + i])), tables[p.chirp_off + i]);
                }
                st(i, v);
            }
            workgroupBarrier();
            chirp_convolve(lid);
            for (var i = lid; i < n; i = i + THREADS) {
                st(i, cj(ld(i)) / (f32(p.m) * f32(n)));
            }
        } else {
            // Weights on the bit-reversed spectrum, then the inverse transform back to natural order.
            for (var q = lid; q < p.m; q = q + THREADS) {
                st(q, cmul(ld(q), tables[p.w_off + bitrev(q)]));
            }
            workgroupBarrier();
            dit_inverse(lid);
            for (var i = lid; i < n; i = i + THREADS) {
                st(i, ld(i) / f32(n));
            }
        }
    } else if (blue) {
        for (var i = lid; i < n; i = i + THREADS) {
            st(i, ld(i) * scale);
        }
    }
    workgroupBarrier();
    let natural = blue || (p.flags & FILTER) != 0u;
    for (var i = lid; i < n; i = i + THREADS) {
        var v = ld(i);
        if (!natural) {
            v = ld(bitrev(i));
        }
        let q = voxel(line, i);
        var z = u32(q.z) - p.shape.w;
        if (p.axis == 2u) {
            if (u32(q.z) < p.shape.w || z >= p.slab) {
                continue;
            }
        }
        var res = v.x;
        if ((p.flags & IMAG) != 0u) {
            res = v.y;
        } else if ((p.flags & MAGNITUDE) != 0u) {
            res = length(v);
        }
        if ((p.flags & ACCUMULATE) != 0u) {
            res = res + textureLoad(acc, q, 0).x;
        }
        dst[u32(q.x) + p.pitch * (u32(q.y) + p.shape.y * z)] = res;
    }
}
