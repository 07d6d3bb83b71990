// One separable Gaussian pass along `axis` with edge replication (CPU twin: blur_axis in
// src/exec/cpu/intensity.rs): out[p] = sum_t w[t] * in[clamp(p + t - r)], accumulated in tap order.
//
// Each invocation computes RUN consecutive outputs along the axis, sliding a window of RUN inputs: one
// texture load per tap serves RUN outputs (a load per tap per output cost most of the pass on
// llvmpipe). Each output's sum is the same expression in the same order as one output per invocation.

struct Params {
    shape: vec4<u32>,   // nx, ny, nz, z0
    axis: u32,
    radius: u32,
    pitch: u32,
    slab: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var src: texture_3d<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;

// The axis is a pipeline constant (one pipeline per axis): dynamic indexing of the position vector
// by `p.axis` cost every tap on llvmpipe. `p.axis` must equal it.
override AXIS: u32 = 0u;

// Outputs per invocation along AXIS (the host divides the dispatch along AXIS by it).
const RUN: u32 = 4u;

@compute @workgroup_size(8, 8, 4)
fn blur(@builtin(global_invocation_id) gid: vec3<u32>) {
    // First output of this invocation; z relative to the slab.
    var pos = gid;
    var step = vec3<i32>(1, 0, 0);
    var n = p.shape.x;
    var limit = p.shape.x;
    var ostep = 1u;
    if (AXIS == 0u) {
        pos.x = gid.x * RUN;
    } else if (AXIS == 1u) {
        pos.y = gid.y * RUN;
        step = vec3<i32>(0, 1, 0);
        n = p.shape.y;
        limit = p.shape.y;
        ostep = p.pitch;
    } else {
        pos.z = gid.z * RUN;
        step = vec3<i32>(0, 0, 1);
        n = p.shape.z;
        limit = p.slab;
        ostep = p.pitch * p.shape.y;
    }
    if (pos.x >= p.shape.x || pos.y >= p.shape.y || pos.z >= p.slab) {
        return;
    }
    let abs_pos = vec3<i32>(i32(pos.x), i32(pos.y), i32(pos.z + p.shape.w));
    let at = dot(abs_pos, step);
    let rest = abs_pos - step * at;
    let r = i32(p.radius);
    let hi = i32(n) - 1;
    // x0..x3: the inputs of outputs 0..3 at tap t.
    var x0 = textureLoad(src, rest + step * clamp(at - r, 0, hi), 0).x;
    var x1 = textureLoad(src, rest + step * clamp(at - r + 1, 0, hi), 0).x;
    var x2 = textureLoad(src, rest + step * clamp(at - r + 2, 0, hi), 0).x;
    var a0 = 0.0;
    var a1 = 0.0;
    var a2 = 0.0;
    var a3 = 0.0;
    for (var t = 0; t <= 2 * r; t = t + 1) {
        let x3 = textureLoad(src, rest + step * clamp(at + t - r + 3, 0, hi), 0).x;
        let w = weights[t];
        a0 = a0 + w * x0;
        a1 = a1 + w * x1;
        a2 = a2 + w * x2;
        a3 = a3 + w * x3;
        x0 = x1;
        x1 = x2;
        x2 = x3;
    }
    let m = dot(pos, vec3<u32>(step));
    let o = pos.x + p.pitch * (pos.y + p.shape.y * pos.z);
    dst[o] = a0;
    if (m + 1u < limit) {
        dst[o + ostep] = a1;
    }
    if (m + 2u < limit) {
        dst[o + 2u * ostep] = a2;
    }
    if (m + 3u < limit) {
        dst[o + 3u * ostep] = a3;
    }
}
