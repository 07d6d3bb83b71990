// Fused resampler: for output voxel p = (i, j, k) the input coordinate is c = M * p, with the same f32
// operation order as the CPU twin (src/exec/cpu/resample.rs):
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
}

// Shared by resample_image.wgsl and resample_label.wgsl (concatenated after this file).

fn coord(i: u32, j: u32, k: u32) -> vec3<f32> {
    let fi = f32(i);
    let fj = f32(j);
    let fk = f32(k);
    let rx = p.m0.w + p.m0.y * fj + p.m0.z * fk;
    let ry = p.m1.w + p.m1.y * fj + p.m1.z * fk;
    let rz = p.m2.w + p.m2.y * fj + p.m2.z * fk;
    return vec3<f32>(rx + p.m0.x * fi, ry + p.m1.x * fi, rz + p.m2.x * fi);
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

