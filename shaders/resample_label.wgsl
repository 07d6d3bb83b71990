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

// linear_argmax (CPU twin: src/exec/cpu/resample/argmax.rs): the trilinear weight of each label among
// the eight neighbours, summed per label in corner order; the largest wins, ties to the lower label
// value (compared sign-extended when SIGNED).
override SIGNED: u32 = 0u;

fn lower(a: u32, b: u32) -> bool {
    if (SIGNED == 1u) {
        let s = 32u - 32u / PACK;
        return (bitcast<i32>(a << s) >> s) < (bitcast<i32>(b << s) >> s);
    }
    return a < b;
}

fn label_at(q: vec3<i32>, n: vec3<i32>) -> u32 {
    let x = textureLoad(src_u, clamp(q, vec3<i32>(0), n - vec3<i32>(1)), 0).x;
    return select(p.in_shape.w, x, p.edge == 1u || inside(q, n));
}

fn argmax(c0: vec3<f32>) -> u32 {
    let n = vec3<i32>(p.in_shape.xyz);
    let nf = vec3<f32>(p.in_shape.xyz);
    let c = clamp(c0, vec3<f32>(-2.0), nf + vec3<f32>(1.0));
    let f = floor(c);
    let i0 = vec3<i32>(f);
    let t = c - f;
    var lab: array<u32, 8>;
    var w: array<f32, 8>;
    for (var corner = 0u; corner < 8u; corner++) {
        let d = vec3<u32>(corner & 1u, (corner >> 1u) & 1u, corner >> 2u);
        lab[corner] = label_at(i0 + vec3<i32>(d), n);
        let wv = select(vec3<f32>(1.0) - t, t, d == vec3<u32>(1u));
        w[corner] = wv.x * wv.y * wv.z;
    }
    var best = lab[0];
    var best_w = -1.0;
    for (var a = 0u; a < 8u; a++) {
        var s = 0.0;
        for (var b = 0u; b < 8u; b++) {
            if (lab[b] == lab[a]) {
                s = s + w[b];
            }
        }
        if (s > best_w || (s == best_w && lower(lab[a], best))) {
            best = lab[a];
            best_w = s;
        }
    }
    return best;
}

@compute @workgroup_size(8, 8, 4)
fn resample_label_argmax(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (!packed_in_range(gid)) {
        return;
    }
    var word = 0u;
    for (var t = 0u; t < PACK; t++) {
        word |= place(argmax(coord_affine(gid.x * PACK + t, gid.y, gid.z + p.out_shape.w)), t);
    }
    dst_u[out_index(gid)] = word;
}

@compute @workgroup_size(8, 8, 4)
fn resample_label_argmax_field(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (!packed_in_range(gid)) {
        return;
    }
    var word = 0u;
    for (var t = 0u; t < PACK; t++) {
        word |= place(argmax(coord_field(gid.x * PACK + t, gid.y, gid.z + p.out_shape.w)), t);
    }
    dst_u[out_index(gid)] = word;
}
