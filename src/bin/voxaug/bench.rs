//! `voxaug bench`.

use clap::Args;
use std::path::{Path, PathBuf};
use voxaug::{io, Error, Executor, Result};

#[derive(Args)]
pub struct BenchArgs {
    /// Cube edge lengths, comma separated.
    #[arg(long, default_value = "128,256", value_delimiter = ',')]
    size: Vec<usize>,
    /// Executors, comma separated (cpu, gpu).
    #[arg(long, default_value = "cpu,gpu", value_delimiter = ',')]
    device: Vec<String>,
    /// Ops, comma separated (default: all).
    #[arg(long, value_delimiter = ',')]
    ops: Vec<String>,
    /// Timed runs per op (default: 5 up to 128^3, 3 above).
    #[arg(short = 'n', long = "count", visible_alias = "runs")]
    runs: Option<usize>,
    /// Write every number as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// GPU adapter name substring (e.g. llvmpipe).
    #[arg(long)]
    adapter: Option<String>,
}

impl BenchArgs {
    pub fn run(self) -> Result<()> {
        run(
            &self.size,
            &self.device,
            &self.ops,
            self.runs,
            self.json.as_deref(),
            self.adapter,
        )
    }
}

fn run(
    sizes: &[usize],
    devices: &[String],
    ops: &[String],
    runs: Option<usize>,
    json: Option<&Path>,
    adapter: Option<String>,
) -> Result<()> {
    use voxaug::bench;
    let ops: Vec<String> = if ops.is_empty() {
        bench::OPS.iter().map(|s| s.to_string()).collect()
    } else {
        ops.to_vec()
    };
    for op in &ops {
        bench::op_transforms(op, 8)?;
    }
    let mut execs = Vec::new();
    for d in devices {
        match d.as_str() {
            "cpu" => execs.push(Executor::Cpu),
            "gpu" => execs.push(voxaug::exec::gpu(adapter.as_deref())?),
            other => {
                return Err(Error::InvalidInput(format!(
                    "unknown device `{other}` (expected cpu or gpu)"
                )))
            }
        }
    }
    let memcpy = bench::memcpy_bandwidth();
    let threads = rayon::current_num_threads();
    println!(
        "memcpy bandwidth: {:.1} GB/s (read + write, {threads} threads); sizes {sizes:?}",
        memcpy / 1e9
    );
    let (huge, why) = voxaug::exec::cpu::alloc::huge_pages();
    println!(
        "large fresh CPU buffers: {} ({why})",
        if huge { "huge pages" } else { "4 KiB pages" }
    );
    println!(
        "{:<16} {:>5} {:<40} {:<10} {:>10} {:>19} {:>9} {:>7} {:>6} {:>8} {:>6}",
        "op",
        "size",
        "device",
        "mode",
        "median ms",
        "min..max ms",
        "Mvox/s",
        "GB/s",
        "%mcpy",
        "vs cpu",
        "%dev"
    );
    let mut all: Vec<bench::Row> = Vec::new();
    for &n in sizes {
        for op in &ops {
            // CPU medians by mode: a GPU row is compared with the CPU row of its own mode
            // (resident and kernel rows with the CPU's steady state).
            let mut cpu_median = std::collections::HashMap::new();
            for e in &execs {
                let r = runs.unwrap_or(if n <= 128 { 5 } else { 3 });
                for mut row in bench::measure(e, op, n, r, memcpy)? {
                    if matches!(e, Executor::Cpu) {
                        cpu_median.insert(row.mode.clone(), row.median_ms);
                    } else if let Some(c) = cpu_median
                        .get(&row.mode)
                        .or_else(|| cpu_median.get("steady"))
                    {
                        row.speedup_vs_cpu = Some(c / row.median_ms);
                    }
                    println!(
                        "{:<16} {:>5} {:<40} {:<10} {:>10.2} {:>9.2}..{:<9.2} {:>9.1} {:>7.2} {:>5.0}% {:>8} {:>6}",
                        row.op,
                        row.size,
                        row.device.chars().take(40).collect::<String>(),
                        row.mode,
                        row.median_ms,
                        row.min_ms,
                        row.max_ms,
                        row.voxels_per_s / 1e6,
                        row.gb_per_s,
                        row.fraction_of_memcpy * 100.0,
                        row.speedup_vs_cpu.map(|x| format!("{x:.2}x")).unwrap_or_default(),
                        row.fraction_of_device
                            .map(|x| format!("{:.0}%", x * 100.0))
                            .unwrap_or_default()
                    );
                    all.push(row);
                }
            }
        }
    }
    if let Some(path) = json {
        let adapters: Vec<String> = execs.iter().map(|e| e.name()).collect();
        let j = serde_json::json!({
            "date_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "cpu_threads": threads,
            "memcpy_bytes_per_s": memcpy,
            "huge_pages": huge,
            "executors": adapters,
            "rows": all,
        });
        io::write_atomic(path, serde_json::to_string_pretty(&j).unwrap().as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
