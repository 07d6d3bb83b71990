// Counter-based random numbers shared by point.wgsl (noise) and field.wgsl (elastic fields); appended
// to the modules that use them. CPU twin: pcg / uniform01 in src/exec/cpu/intensity.rs.

fn pcg(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

fn uniform01(seed0: u32, seed1: u32, index: u32, stream: u32) -> f32 {
    let h = pcg(seed0 ^ pcg(index ^ pcg(seed1 ^ pcg(stream))));
    return (f32(h >> 8u) + 0.5) * (1.0 / 16777216.0);
}
