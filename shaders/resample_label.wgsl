// Nearest resampling of a label map (appended to resample.wgsl). Labels live in R8Uint, R16Uint or
// R32Uint textures (signed labels as their raw bits) and are copied exactly. Each invocation writes one
// 32-bit output word holding PACK consecutive voxels of a row (4 of 8 bits, 2 of 16, 1 of 32): the
// output keeps the label's width, and no two invocations share a word.

override PACK: u32 = 1u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var src_u: texture_3d<u32>;
@group(0) @binding(2) var<storage, read_write> dst_u: array<u32>;

// Nearest sample at input coordinate `c`: floor(c + 0.5). Outside: the edge, or the fill's bits
// (in_shape.w).
fn nearest(c: vec3<f32>) -> u32 {
    let n = vec3<i32>(p.in_shape.xyz);
    let nf = vec3<f32>(p.in_shape.xyz);
    let r = vec3<i32>(floor(clamp(c, vec3<f32>(-2.0), nf + vec3<f32>(1.0)) + vec3<f32>(0.5)));
    let x = textureLoad(src_u, clamp(r, vec3<i32>(0), n - vec3<i32>(1)), 0).x;
    return select(p.in_shape.w, x, p.edge == 1u || inside(r, n));
}

fn packed_in_range(gid: vec3<u32>) -> bool {
    return gid.x * PACK < p.out_shape.x && gid.y < p.out_shape.y && gid.z < p.slab;
}

// Bits of a texel and their place in the word (32 / PACK bits each).
fn place(v: u32, t: u32) -> u32 {
    let bits = 32u / PACK;
    return (v & (0xffffffffu >> (32u - bits))) << (bits * t);
}

@compute @workgroup_size(8, 8, 4)
fn resample_label(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (!packed_in_range(gid)) {
        return;
    }
    var word = 0u;
    for (var t = 0u; t < PACK; t++) {
        // Voxels past the row's end (in the pitch padding) are computed too: their bits are never read.
        word |= place(nearest(coord_affine(gid.x * PACK + t, gid.y, gid.z + p.out_shape.w)), t);
    }
    dst_u[out_index(gid)] = word;
}

@compute @workgroup_size(8, 8, 4)
fn resample_label_field(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (!packed_in_range(gid)) {
        return;
    }
    var word = 0u;
    for (var t = 0u; t < PACK; t++) {
        word |= place(nearest(coord_field(gid.x * PACK + t, gid.y, gid.z + p.out_shape.w)), t);
    }
    dst_u[out_index(gid)] = word;
}
