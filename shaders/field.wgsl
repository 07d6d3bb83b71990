// Noise of an elastic displacement field on its coarse grid (CPU twin: field::noise in
// src/exec/cpu/field.rs): uniform in [-1, 1] from a counter-based hash of (seed, coarse index, component),
// the same function as the intensity shader's noise. Smoothing reuses blur.wgsl; `pack` then puts the
// three smoothed components of each node into one RGBA32Float texel for the resampler (the CPU keeps
// three arrays: a layout change only).

struct Params {
    shape: vec4<u32>,   // nx, ny, nz, z0
    seed0: u32,
    seed1: u32,
    stream: u32,        // 2 + component
    pitch: u32,
    slab: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;

// pcg and uniform01 come from hash.wgsl (appended when the module is built).

@compute @workgroup_size(8, 8, 4)
fn noise(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= p.shape.x || gid.y >= p.shape.y || gid.z >= p.slab) {
        return;
    }
    let k = gid.z + p.shape.w;
    let l = gid.x + p.shape.x * (gid.y + p.shape.y * k);
    dst[gid.x + p.pitch * (gid.y + p.shape.y * gid.z)] = 2.0 * uniform01(p.seed0, p.seed1, l, p.stream) - 1.0;
}

// `pack`'s bindings (its own layout: `p` as for `noise`, seed and stream unused; `dst` holds four
// floats per texel, `p.pitch` counts texels).
@group(0) @binding(2) var comp_x: texture_3d<f32>;
@group(0) @binding(3) var comp_y: texture_3d<f32>;
@group(0) @binding(4) var comp_z: texture_3d<f32>;

@compute @workgroup_size(8, 8, 4)
fn pack(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= p.shape.x || gid.y >= p.shape.y || gid.z >= p.slab) {
        return;
    }
    let q = vec3<i32>(i32(gid.x), i32(gid.y), i32(gid.z + p.shape.w));
    let o = 4u * (gid.x + p.pitch * (gid.y + p.shape.y * gid.z));
    dst[o] = textureLoad(comp_x, q, 0).x;
    dst[o + 1u] = textureLoad(comp_y, q, 0).x;
    dst[o + 2u] = textureLoad(comp_z, q, 0).x;
    dst[o + 3u] = 0.0;
}
