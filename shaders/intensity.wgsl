// Element-wise intensity kernel (CPU twin: Affine1::eval in src/exec/cpu/intensity.rs):
//   out = clamp((x - sub) * mul + add, lo, hi), zero voxels kept when skip_zero = 1.
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
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var src: texture_3d<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(8, 8, 4)
fn elementwise(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= p.shape.x || gid.y >= p.shape.y || gid.z >= p.slab) {
        return;
    }
    let x = textureLoad(src, vec3<u32>(gid.x, gid.y, gid.z + p.shape.w), 0).x;
    var v = x;
    if (p.skip_zero == 0u || x != 0.0) {
        v = clamp((x - p.sub) * p.mul + p.add, p.lo, p.hi);
    }
    dst[gid.x + p.pitch * (gid.y + p.shape.y * gid.z)] = v;
}
