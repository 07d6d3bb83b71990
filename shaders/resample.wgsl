// Fused resampler: for output voxel p = (i, j, k) the input coordinate is c = M * p, with the same f32
// operation order as the CPU twin (src/exec/cpu/resample/):
//   row = M[r].w + M[r].y * j + M[r].z * k;  c[r] = row + M[r].x * i
// Images: trilinear with grid-constant fill (outside neighbours take `fill` and are blended) or edge
// replication. Labels: nearest, floor(c + 0.5), written exactly. Voxels are read with textureLoad (no
// hardware filtering: its fixed-point weights would not match the CPU to 1e-5).
// The output is a z-slab of a row-padded buffer: index = i + pitch * (j + ny * (k - z0)).

struct Params {
    m0: vec4<f32>,
    m1: vec4<f32>,
    m2: vec4<f32>,
    in_shape: vec4<u32>,   // nx, ny, nz, -
    out_shape: vec4<u32>,  // nx, ny, nz, z0 (first slice of this slab)
    fill: f32,
    edge: u32,             // 1: replicate the border, 0: constant fill
    pitch: u32,            // row pitch of the output buffer, in elements
    slab: u32,             // slices in this slab
    // Displacement field (elastic): c = M * (q + d(q)), q = post * p. fshape.w = 1 when present.
    post0: vec4<f32>,
    post1: vec4<f32>,
    post2: vec4<f32>,
    fshape: vec4<u32>,
    fstep: vec4<f32>,
    foffset: vec4<f32>,
    fscale: vec4<f32>,
}

// The three displacement components of each coarse node in one RGBA32Float texel (a: unused).
@group(0) @binding(3) var field: texture_3d<f32>;

// Shared by resample_image.wgsl and resample_label.wgsl (concatenated after this file).

fn lerp3(a: vec3<f32>, b: vec3<f32>, t: f32) -> vec3<f32> {
    return a + (b - a) * t;
}

// Trilinear on the coarse field grid, edges clamped (CPU twin: Field::at): eight loads of all three
// components (one texel each), y, then z, then x, as the CPU (which precomputes y/z per row:
// Field::line + Field::from_line). Per component the same expression as three scalar fields.
fn field_at(q: vec3<f32>) -> vec3<f32> {
    let n = vec3<i32>(p.fshape.xyz);
    let u = clamp(q / p.fstep.xyz + p.foffset.xyz, vec3<f32>(0.0), vec3<f32>(n - vec3<i32>(1)));
    let f = floor(u);
    let i0 = vec3<i32>(f);
    let i1 = min(i0 + vec3<i32>(1), n - vec3<i32>(1));
    let t = u - f;
    let v0 = textureLoad(field, vec3<i32>(i0.x, i0.y, i0.z), 0).xyz;
    let v1 = textureLoad(field, vec3<i32>(i1.x, i0.y, i0.z), 0).xyz;
    let v2 = textureLoad(field, vec3<i32>(i0.x, i1.y, i0.z), 0).xyz;
    let v3 = textureLoad(field, vec3<i32>(i1.x, i1.y, i0.z), 0).xyz;
    let v4 = textureLoad(field, vec3<i32>(i0.x, i0.y, i1.z), 0).xyz;
    let v5 = textureLoad(field, vec3<i32>(i1.x, i0.y, i1.z), 0).xyz;
    let v6 = textureLoad(field, vec3<i32>(i0.x, i1.y, i1.z), 0).xyz;
    let v7 = textureLoad(field, vec3<i32>(i1.x, i1.y, i1.z), 0).xyz;
    let a = lerp3(lerp3(v0, v2, t.y), lerp3(v4, v6, t.y), t.z);
    let b = lerp3(lerp3(v1, v3, t.y), lerp3(v5, v7, t.y), t.z);
    return lerp3(a, b, t.x) * p.fscale.xyz;
}

// Two entry points per kernel (`resample_image` / `resample_image_field`, same for labels): a
// uniform branch on "has a field" inside one shader is not free on every driver (llvmpipe executes
// the field code for every voxel under a zero mask, which made plain affines 10x slower there).

// Rows r0..r2 of a 3x4 voxel map applied to output voxel (i, j, k), in the CPU's operation order:
// row = r.w + r.y * j + r.z * k; c = row + r.x * i.
fn map_voxel(r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, i: u32, j: u32, k: u32) -> vec3<f32> {
    let fi = f32(i);
    let fj = f32(j);
    let fk = f32(k);
    let rx = r0.w + r0.y * fj + r0.z * fk;
    let ry = r1.w + r1.y * fj + r1.z * fk;
    let rz = r2.w + r2.y * fj + r2.z * fk;
    return vec3<f32>(rx + r0.x * fi, ry + r1.x * fi, rz + r2.x * fi);
}

fn coord_affine(i: u32, j: u32, k: u32) -> vec3<f32> {
    return map_voxel(p.m0, p.m1, p.m2, i, j, k);
}

fn coord_field(i: u32, j: u32, k: u32) -> vec3<f32> {
    let q = map_voxel(p.post0, p.post1, p.post2, i, j, k);
    let qd = q + field_at(q);
    return vec3<f32>(
        p.m0.x * qd.x + p.m0.y * qd.y + p.m0.z * qd.z + p.m0.w,
        p.m1.x * qd.x + p.m1.y * qd.y + p.m1.z * qd.z + p.m1.w,
        p.m2.x * qd.x + p.m2.y * qd.y + p.m2.z * qd.z + p.m2.w,
    );
}

fn inside(v: vec3<i32>, n: vec3<i32>) -> bool {
    return all(v >= vec3<i32>(0)) && all(v < n);
}

fn lerp(a: f32, b: f32, t: f32) -> f32 {
    return a + (b - a) * t;
}

fn out_index(gid: vec3<u32>) -> u32 {
    return gid.x + p.pitch * (gid.y + p.out_shape.y * gid.z);
}

fn in_range(gid: vec3<u32>) -> bool {
    return gid.x < p.out_shape.x && gid.y < p.out_shape.y && gid.z < p.slab;
}

