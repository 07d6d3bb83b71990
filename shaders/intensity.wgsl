// The elementwise pass of a point-wise intensity kernel (the kernel: point.wgsl, appended with
// hash.wgsl when the module is built). Reads the image texture, writes a z-slab of a row-padded buffer
// (same layout as the resampler).

struct Params {
    shape: vec4<u32>,   // nx, ny, nz, z0
    pitch: u32,
    slab: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var src: texture_3d<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<uniform> pk: Point;

@compute @workgroup_size(8, 8, 4)
fn elementwise(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= p.shape.x || gid.y >= p.shape.y || gid.z >= p.slab) {
        return;
    }
    let pos = vec3<u32>(gid.x, gid.y, gid.z + p.shape.w);
    let x = textureLoad(src, pos, 0).x;
    dst[gid.x + p.pitch * (gid.y + p.shape.y * gid.z)] = point_kernel(x, pos, p.shape.xyz);
}
