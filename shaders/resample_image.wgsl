// Trilinear resampling of an intensity image (appended to resample.wgsl; point.wgsl and hash.wgsl
// follow it).

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var src_f: texture_3d<f32>;
@group(0) @binding(2) var<storage, read_write> dst_f: array<f32>;
// A statistics-free point kernel applied to each sample when POINT (the intensity op that follows
// the resampling pass, fused into it); unused otherwise.
@group(0) @binding(4) var<uniform> pk: Point;
override POINT: bool = false;

// Stores output voxel `gid` (slab-relative) of value `v`, through the fused point kernel if any.
fn store_f(gid: vec3<u32>, v: f32) {
    var y = v;
    if (POINT) {
        y = point_kernel(v, vec3<u32>(gid.x, gid.y, gid.z + p.out_shape.w), p.out_shape.xyz);
    }
    dst_f[out_index(gid)] = y;
}

// One neighbour: the texel (coordinates clamped, so the load is always valid), or the fill when it
// lies outside and the fill is a constant. Branch-free: software rasterisers such as llvmpipe execute
// both sides of a divergent branch, so a separate interior fast path only added work there.
fn fetch_f(v: vec3<i32>, n: vec3<i32>) -> f32 {
    let x = textureLoad(src_f, clamp(v, vec3<i32>(0), n - vec3<i32>(1)), 0).x;
    return select(p.fill, x, p.edge == 1u || inside(v, n));
}

// Trilinear sample at input coordinate `c_in` (same arithmetic as the CPU's checked sampler; far
// outside, all eight neighbours are the fill and the blend is the fill).
fn trilinear(c_in: vec3<f32>) -> f32 {
    let n = vec3<i32>(p.in_shape.xyz);
    let nf = vec3<f32>(p.in_shape.xyz);
    let c = clamp(c_in, vec3<f32>(-2.0), nf + vec3<f32>(1.0));
    let f = floor(c);
    let b = vec3<i32>(f);
    let t = c - f;
    let c00 = lerp(fetch_f(b, n), fetch_f(b + vec3<i32>(1, 0, 0), n), t.x);
    let c10 = lerp(fetch_f(b + vec3<i32>(0, 1, 0), n), fetch_f(b + vec3<i32>(1, 1, 0), n), t.x);
    let c01 = lerp(fetch_f(b + vec3<i32>(0, 0, 1), n), fetch_f(b + vec3<i32>(1, 0, 1), n), t.x);
    let c11 = lerp(fetch_f(b + vec3<i32>(0, 1, 1), n), fetch_f(b + vec3<i32>(1, 1, 1), n), t.x);
    return lerp(lerp(c00, c10, t.y), lerp(c01, c11, t.y), t.z);
}

@compute @workgroup_size(8, 8, 4)
fn resample_image(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (!in_range(gid)) {
        return;
    }
    store_f(gid, trilinear(coord_affine(gid.x, gid.y, gid.z + p.out_shape.w)));
}

@compute @workgroup_size(8, 8, 4)
fn resample_image_field(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (!in_range(gid)) {
        return;
    }
    store_f(gid, trilinear(coord_field(gid.x, gid.y, gid.z + p.out_shape.w)));
}

// Nearest sample of an image at input coordinate `c_in`: floor(c + 0.5), the fill outside (the down
// pass of simulate_low_resolution; CPU twin: the label path's nearest sampler on f32 voxels).
fn nearest_f(c_in: vec3<f32>) -> f32 {
    let n = vec3<i32>(p.in_shape.xyz);
    let nf = vec3<f32>(p.in_shape.xyz);
    let r = vec3<i32>(floor(clamp(c_in, vec3<f32>(-2.0), nf + vec3<f32>(1.0)) + vec3<f32>(0.5)));
    return fetch_f(r, n);
}

@compute @workgroup_size(8, 8, 4)
fn resample_image_nearest(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (!in_range(gid)) {
        return;
    }
    store_f(gid, nearest_f(coord_affine(gid.x, gid.y, gid.z + p.out_shape.w)));
}
