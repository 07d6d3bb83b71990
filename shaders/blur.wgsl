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

@compute @workgroup_size(8, 8, 4)
fn blur(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= p.shape.x || gid.y >= p.shape.y || gid.z >= p.slab) {
        return;
    }
    let pos = vec3<i32>(i32(gid.x), i32(gid.y), i32(gid.z + p.shape.w));
    let n = i32(p.shape[p.axis]);
    let r = i32(p.radius);
    var acc = 0.0;
    for (var t = 0; t <= 2 * r; t = t + 1) {
        var q = pos;
        q[p.axis] = clamp(pos[p.axis] + t - r, 0, n - 1);
        acc = acc + weights[t] * textureLoad(src, q, 0).x;
    }
    dst[gid.x + p.pitch * (gid.y + p.shape.y * gid.z)] = acc;
}
