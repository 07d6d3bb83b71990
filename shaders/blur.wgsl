// One separable Gaussian pass along `axis` with edge replication (CPU twin: blur_axis in
// src/exec/cpu/intensity.rs): out[p] = sum_t w[t] * in[clamp(p + t - r)], accumulated in tap order.

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

@compute @workgroup_size(8, 8, 4)
fn blur(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= p.shape.x || gid.y >= p.shape.y || gid.z >= p.slab) {
        return;
    }
    let pos = vec3<i32>(i32(gid.x), i32(gid.y), i32(gid.z + p.shape.w));
    let r = i32(p.radius);
    var step = vec3<i32>(1, 0, 0);
    var n = i32(p.shape.x);
    if (AXIS == 1u) {
        step = vec3<i32>(0, 1, 0);
        n = i32(p.shape.y);
    } else if (AXIS == 2u) {
        step = vec3<i32>(0, 0, 1);
        n = i32(p.shape.z);
    }
    let at = dot(pos, step);
    let rest = pos - step * at;
    var acc = 0.0;
    for (var t = 0; t <= 2 * r; t = t + 1) {
        let q = rest + step * clamp(at + t - r, 0, n - 1);
        acc = acc + weights[t] * textureLoad(src, q, 0).x;
    }
    dst[gid.x + p.pitch * (gid.y + p.shape.y * gid.z)] = acc;
}
