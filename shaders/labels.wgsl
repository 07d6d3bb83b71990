// Label value maps (remap_labels, keep_labels, sequential_labels; CPU twin: src/exec/cpu/labels.rs).
// Each invocation reads PACK consecutive label texels of a row (R8Uint, R16Uint or R32Uint; signed labels
// as their raw bits), looks each up in the sorted key table (binary search over the raw bits) and writes
// one 32-bit word of the packed output, which keeps the label's width (the host widened the label map
// beforehand when the new values need it). Keys not found keep their value (identity = 1) or take
// `others`.

override PACK: u32 = 1u;

struct Params {
    shape: vec4<u32>,  // nx, ny, nz, z0 (first slice of this slab)
    pitch: u32,        // row pitch of the output buffer, in words
    slab: u32,         // slices in this slab
    count: u32,        // keys in the table
    identity: u32,     // 1: unlisted values are kept, 0: they become `others`
    others: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var src: texture_3d<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
@group(0) @binding(3) var<storage, read> keys: array<u32>;
@group(0) @binding(4) var<storage, read> vals: array<u32>;

fn lookup(x: u32) -> u32 {
    var lo = 0u;
    var hi = p.count;
    while (lo < hi) {
        let mid = (lo + hi) / 2u;
        let k = keys[mid];
        if (k == x) {
            return vals[mid];
        }
        if (k < x) {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    return select(p.others, x, p.identity == 1u);
}

fn place(v: u32, t: u32) -> u32 {
    let bits = 32u / PACK;
    return (v & (0xffffffffu >> (32u - bits))) << (bits * t);
}

@compute @workgroup_size(8, 8, 4)
fn labels(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x * PACK >= p.shape.x || gid.y >= p.shape.y || gid.z >= p.slab) {
        return;
    }
    var word = 0u;
    for (var t = 0u; t < PACK; t++) {
        // Voxels past the row's end (pitch padding) repeat the last one: their bits are never read.
        let i = min(gid.x * PACK + t, p.shape.x - 1u);
        let x = textureLoad(src, vec3<i32>(i32(i), i32(gid.y), i32(gid.z + p.shape.w)), 0).x;
        word |= place(lookup(x), t);
    }
    dst[gid.x + p.pitch * (gid.y + p.shape.y * gid.z)] = word;
}
