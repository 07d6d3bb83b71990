// Nearest resampling of a label map (appended to resample.wgsl). Labels are u32 texels (i32 bits
// for negative labels) and are copied exactly.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var src_u: texture_3d<u32>;
@group(0) @binding(2) var<storage, read_write> dst_u: array<u32>;

@compute @workgroup_size(8, 8, 4)
fn resample_label(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (!in_range(gid)) {
        return;
    }
    let n = vec3<i32>(p.in_shape.xyz);
    let nf = vec3<f32>(p.in_shape.xyz);
    let c = coord(gid.x, gid.y, gid.z + p.out_shape.w);
    var r = vec3<i32>(floor(clamp(c, vec3<f32>(-2.0), nf + vec3<f32>(1.0)) + vec3<f32>(0.5)));
    var v: u32;
    if (inside(r, n)) {
        v = textureLoad(src_u, r, 0).x;
    } else if (p.edge == 1u) {
        v = textureLoad(src_u, clamp(r, vec3<i32>(0), n - vec3<i32>(1)), 0).x;
    } else {
        v = bitcast<u32>(i32(p.fill));
    }
    dst_u[out_index(gid)] = v;
}
