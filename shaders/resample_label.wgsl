// Nearest resampling of a label map (appended to resample.wgsl). Labels are u32 texels (i32 bits
// for negative labels) and are copied exactly.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var src_u: texture_3d<u32>;
@group(0) @binding(2) var<storage, read_write> dst_u: array<u32>;

// Nearest sample at input coordinate `c`: floor(c + 0.5).
fn nearest(c: vec3<f32>) -> u32 {
    let n = vec3<i32>(p.in_shape.xyz);
    let nf = vec3<f32>(p.in_shape.xyz);
    let r = vec3<i32>(floor(clamp(c, vec3<f32>(-2.0), nf + vec3<f32>(1.0)) + vec3<f32>(0.5)));
    if (inside(r, n)) {
        return textureLoad(src_u, r, 0).x;
    }
    if (p.edge == 1u) {
        return textureLoad(src_u, clamp(r, vec3<i32>(0), n - vec3<i32>(1)), 0).x;
    }
    return bitcast<u32>(i32(p.fill));
}

@compute @workgroup_size(8, 8, 4)
fn resample_label(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (!in_range(gid)) {
        return;
    }
    dst_u[out_index(gid)] = nearest(coord_affine(gid.x, gid.y, gid.z + p.out_shape.w));
}

@compute @workgroup_size(8, 8, 4)
fn resample_label_field(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (!in_range(gid)) {
        return;
    }
    dst_u[out_index(gid)] = nearest(coord_field(gid.x, gid.y, gid.z + p.out_shape.w));
}
