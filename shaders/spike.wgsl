// Adds spike plane waves (CPU twin: add_waves in src/exec/cpu/kspace.rs):
// out = x + sum_s amplitude * cos(2 pi phase_s), the phase from integer arithmetic per axis.
struct WaveParams {
    shape: vec4<u32>,   // nx, ny, nz, z0
    pitch: u32,
    slab: u32,
    count: u32,
    amplitude: f32,
}

@group(0) @binding(0) var<uniform> wp: WaveParams;
@group(0) @binding(1) var wsrc: texture_3d<f32>;
@group(0) @binding(2) var<storage, read_write> wdst: array<f32>;
@group(0) @binding(3) var<storage, read> freqs: array<vec4<u32>>;

@compute @workgroup_size(8, 8, 4)
fn spike_waves(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= wp.shape.x || gid.y >= wp.shape.y || gid.z >= wp.slab) {
        return;
    }
    let pos = vec3<u32>(gid.x, gid.y, gid.z + wp.shape.w);
    var v = textureLoad(wsrc, vec3<i32>(pos), 0).x;
    for (var s = 0u; s < wp.count; s = s + 1u) {
        let u = freqs[s].xyz;
        // (u * p) mod n per axis: u, p < n <= 65536 (checked on the host), so no overflow.
        let fx = f32((u.x * pos.x) % wp.shape.x) / f32(wp.shape.x);
        let fy = f32((u.y * pos.y) % wp.shape.y) / f32(wp.shape.y);
        let fz = f32((u.z * pos.z) % wp.shape.z) / f32(wp.shape.z);
        v = v + wp.amplitude * cos(6.283185307179586 * fract(fx + fy + fz));
    }
    wdst[gid.x + wp.pitch * (gid.y + wp.shape.y * gid.z)] = v;
}
