// Trilinear resampling of an intensity image (appended to resample.wgsl).

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var src_f: texture_3d<f32>;
@group(0) @binding(2) var<storage, read_write> dst_f: array<f32>;

fn fetch_f(v: vec3<i32>, n: vec3<i32>) -> f32 {
    if (inside(v, n)) {
        return textureLoad(src_f, v, 0).x;
    }
    if (p.edge == 1u) {
        return textureLoad(src_f, clamp(v, vec3<i32>(0), n - vec3<i32>(1)), 0).x;
    }
    return p.fill;
}

@compute @workgroup_size(8, 8, 4)
fn resample_image(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (!in_range(gid)) {
        return;
    }
    let n = vec3<i32>(p.in_shape.xyz);
    let nf = vec3<f32>(p.in_shape.xyz);
    let c = clamp(coord(gid.x, gid.y, gid.z + p.out_shape.w), vec3<f32>(-2.0), nf + vec3<f32>(1.0));
    let f = floor(c);
    let b = vec3<i32>(f);
    let t = c - f;
    var v: f32;
    if (p.edge == 0u && (any(b < vec3<i32>(-1)) || any(b >= n))) {
        v = p.fill;
    } else if (all(b >= vec3<i32>(0)) && all(b + vec3<i32>(1) < n)) {
        // All eight neighbours inside: no per-fetch checks (same arithmetic as the checked branch).
        let c00 = lerp(textureLoad(src_f, b, 0).x, textureLoad(src_f, b + vec3<i32>(1, 0, 0), 0).x, t.x);
        let c10 = lerp(textureLoad(src_f, b + vec3<i32>(0, 1, 0), 0).x, textureLoad(src_f, b + vec3<i32>(1, 1, 0), 0).x, t.x);
        let c01 = lerp(textureLoad(src_f, b + vec3<i32>(0, 0, 1), 0).x, textureLoad(src_f, b + vec3<i32>(1, 0, 1), 0).x, t.x);
        let c11 = lerp(textureLoad(src_f, b + vec3<i32>(0, 1, 1), 0).x, textureLoad(src_f, b + vec3<i32>(1, 1, 1), 0).x, t.x);
        v = lerp(lerp(c00, c10, t.y), lerp(c01, c11, t.y), t.z);
    } else {
        let c00 = lerp(fetch_f(b, n), fetch_f(b + vec3<i32>(1, 0, 0), n), t.x);
        let c10 = lerp(fetch_f(b + vec3<i32>(0, 1, 0), n), fetch_f(b + vec3<i32>(1, 1, 0), n), t.x);
        let c01 = lerp(fetch_f(b + vec3<i32>(0, 0, 1), n), fetch_f(b + vec3<i32>(1, 0, 1), n), t.x);
        let c11 = lerp(fetch_f(b + vec3<i32>(0, 1, 1), n), fetch_f(b + vec3<i32>(1, 1, 1), n), t.x);
        v = lerp(lerp(c00, c10, t.y), lerp(c01, c11, t.y), t.z);
    }
    dst_f[out_index(gid)] = v;
}

