// Noise of an elastic displacement field on its coarse grid (CPU twin: field::noise in
// src/exec/cpu/field.rs): uniform in [-1, 1] from a counter-based hash of (seed, coarse index, component),
// the same function as the intensity shader's noise. Smoothing reuses blur.wgsl.

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
    dst[gid.x + p.pitch * (gid.y + p.shape.y * gid.z)] = 2.0 * uniform01(l, p.stream) - 1.0;
}
