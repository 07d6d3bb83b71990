//! Adapter, device and error handling. One context per process (or per explicit handle); pipelines are
//! built once when it is opened.

use super::pipelines::Pipelines;
use super::pool::Pool;
use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};

/// What `voxaug devices` shows of an adapter.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdapterSummary {
    /// Adapter name.
    pub name: String,
    /// Graphics backend (Vulkan, Metal, Dx12).
    pub backend: String,
    /// Discrete, integrated, virtual or CPU (software).
    pub device_type: String,
    /// Driver name.
    pub driver: String,
    /// Driver version text.
    pub driver_info: String,
    /// Largest 3D texture edge.
    pub max_texture_dimension_3d: u32,
    /// Largest storage binding in bytes.
    pub max_storage_buffer_binding_size: u64,
    /// Largest buffer in bytes.
    pub max_buffer_size: u64,
}

fn summary(a: &wgpu::Adapter) -> AdapterSummary {
    let i = a.get_info();
    let l = a.limits();
    AdapterSummary {
        name: i.name,
        backend: format!("{:?}", i.backend),
        device_type: format!("{:?}", i.device_type),
        driver: i.driver,
        driver_info: i.driver_info,
        max_texture_dimension_3d: l.max_texture_dimension_3d,
        max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
        max_buffer_size: l.max_buffer_size,
    }
}

/// Vulkan, Metal and DX12 only: wgpu's GL backend binds a single slice of 3D storage textures and gives
/// wrong results without an error.
const BACKENDS: wgpu::Backends = wgpu::Backends::VULKAN
    .union(wgpu::Backends::METAL)
    .union(wgpu::Backends::DX12);

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = BACKENDS;
    wgpu::Instance::new(desc)
}

fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

fn adapters() -> Vec<wgpu::Adapter> {
    let mut v = pollster::block_on(instance().enumerate_adapters(BACKENDS));
    v.sort_by_key(|a| rank(a.get_info().device_type));
    v
}

/// Every adapter found, best first (the one `auto` picks is first).
pub fn list_adapters() -> Vec<AdapterSummary> {
    adapters().iter().map(summary).collect()
}

/// Kernel device nodes through which a hardware GPU is reached on Linux: a DRM render node
/// (`/dev/dri/renderD*`: AMD, Intel, virtio), NVIDIA's `/dev/nvidia*` or WSL's `/dev/dxg`.
pub const DEVICE_NODES: &str = "/dev/dri/renderD*, /dev/nvidia*, /dev/dxg";

/// Whether a hardware GPU could open here. On Linux every hardware Vulkan driver opens a kernel device
/// node ([`DEVICE_NODES`]); without one only software renderers (lavapipe) can, so `auto` can choose
/// the CPU without starting the Vulkan loader, which loads every installed driver (and LLVM with
/// Mesa's): about 50 ms and 50 MB of resident memory per process on a machine without a GPU. Elsewhere
/// (macOS, Windows) this is always true and the adapters are asked.
pub fn hardware_possible() -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    let node = |dir: &str, prefix: &str| {
        std::fs::read_dir(dir).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(prefix))
        })
    };
    node("/dev/dri", "renderD")
        || node("/dev", "nvidia")
        || std::path::Path::new("/dev/dxg").exists()
}

/// The message given when no adapter exists.
pub const NO_ADAPTER: &str = "no GPU adapter found (Vulkan, Metal or DX12). On Linux without a GPU, \
install Mesa's software driver lavapipe: `apt-get install mesa-vulkan-drivers`; or use --device cpu";

/// An open GPU: device, queue, pipelines and a pool of textures and buffers.
pub struct GpuContext {
    /// The wgpu device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// What the adapter is.
    pub adapter: AdapterSummary,
    /// The limits the device was opened with.
    pub limits: wgpu::Limits,
    pub(crate) pipes: Pipelines,
    pub(crate) pool: Mutex<Pool>,
    /// Errors raised outside error scopes (recorded instead of wgpu's default panic).
    uncaptured: Arc<Mutex<Vec<String>>>,
    lost: Arc<Mutex<Option<String>>>,
    /// One run at a time: error scopes are per thread and the pool is shared.
    pub(crate) run_lock: Mutex<()>,
    /// Set while several samples are recorded into shared submissions: their outputs are read back
    /// together at the end.
    pub(crate) batch: Mutex<Option<super::Batch>>,
    /// Command buffers recorded and not yet submitted: submitted together when a result must be
    /// read back or waited for (one submission per readback, not one per pass).
    pub(crate) pending: Mutex<Vec<wgpu::CommandBuffer>>,
    /// Parameters of the dispatches recorded in the current run.
    pub(crate) uniforms: Mutex<super::uniforms::Uniforms>,
    /// Armed while `kernel_times` measures passes with timestamp queries.
    pub(crate) timer: Mutex<Option<super::timer::Timer>>,
    /// Times the host waited for the device (see [`GpuContext::host_waits`]).
    pub(crate) waits: std::sync::atomic::AtomicU64,
    /// Statistics ops on changed volumes build their kernel on the device (see
    /// [`GpuContext::set_device_statistics`]).
    pub(crate) device_stats: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.adapter.name)
            .finish()
    }
}

impl GpuContext {
    /// Opens the best adapter, or the first whose name contains `filter` (case-insensitive).
    pub fn open(filter: Option<&str>) -> Result<GpuContext> {
        let all = adapters();
        let adapter = match filter {
            Some(f) => {
                let f = f.to_lowercase();
                all.into_iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(&f))
                    .ok_or_else(|| {
                        let names: Vec<String> =
                            list_adapters().into_iter().map(|a| a.name).collect();
                        Error::Gpu(format!(
                            "no GPU adapter matches `{f}` (found: {})",
                            if names.is_empty() {
                                "none".to_string()
                            } else {
                                names.join(", ")
                            }
                        ))
                    })?
            }
            None => all
                .into_iter()
                .next()
                .ok_or_else(|| Error::Gpu(NO_ADAPTER.into()))?,
        };
        let limits = adapter.limits();
        // Timestamp queries where the adapter has them: kernel times for `voxaug bench`; f64 shaders
        // where it has them: statistics ops build their kernel on the device (stat_kernel.wgsl).
        let features =
            adapter.features() & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SHADER_F64);
        let desc = wgpu::DeviceDescriptor {
            label: Some("voxaug"),
            required_features: features,
            required_limits: limits.clone(),
            memory_hints: wgpu::MemoryHints::Performance,
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| Error::Gpu(format!("could not open the device: {e}")))?;
        let uncaptured: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().unwrap().push(e.to_string());
        }));
        let lost: Arc<Mutex<Option<String>>> = Arc::default();
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            *lost_sink.lock().unwrap() = Some(format!("device lost ({reason:?}): {msg}"));
        });
        let pipes = Pipelines::new(&device);
        Ok(GpuContext {
            adapter: summary(&adapter),
            device,
            queue,
            limits,
            pipes,
            pool: Mutex::new(Pool::default()),
            uncaptured,
            lost,
            run_lock: Mutex::new(()),
            batch: Mutex::new(None),
            pending: Mutex::new(Vec::new()),
            uniforms: Mutex::default(),
            timer: Mutex::new(None),
            waits: Default::default(),
            // Where the device is the host's own cores (lavapipe), reducing there costs more than
            // reading the voxels back and reducing them in the host's vectorised code.
            device_stats: std::sync::atomic::AtomicBool::new(
                adapter.get_info().device_type != wgpu::DeviceType::Cpu,
            ),
        })
    }

    /// How many times the host has waited for the device to finish work (read-backs, statistics,
    /// explicit waits) since the context was opened: each is a round trip that leaves the device idle
    /// until the host records more.
    pub fn host_waits(&self) -> u64 {
        self.waits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether statistics ops (zscore, minmax, gamma, contrast, percentile clip; masked by the label
    /// map too) on a volume an earlier stage changed
    /// build their point kernel on the device from a device reduction (no read-back, no wait), or read
    /// the statistics back and build it on the host. The device path needs f64 shaders
    /// (`SHADER_F64`); without them, or when turned off, statistics are read back. Both give the same
    /// kernel (the same f64 expressions), except label-masked statistics, whose device moments are
    /// f32 (within 1e-5 of the host's f64 ones). On by default, except on software adapters
    /// (lavapipe), whose device is the host's own cores: there a reduction is cheaper on the host.
    pub fn set_device_statistics(&self, on: bool) {
        self.device_stats
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether [`set_device_statistics`](Self::set_device_statistics) is on and the device can.
    pub(crate) fn device_statistics(&self) -> bool {
        self.pipes.stat_kernel.is_some()
            && self.device_stats.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A GPU error message, completed by a device-lost or uncaptured error if one was recorded.
    pub(crate) fn gpu_error(&self, msg: String) -> Error {
        if let Some(l) = self.lost.lock().unwrap().clone() {
            return Error::Gpu(format!("{msg}; {l}"));
        }
        Error::Gpu(msg)
    }

    /// Runs `f` inside validation and out-of-memory error scopes; any error becomes ours.
    pub(crate) fn scoped<T>(&self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let r = f();
        let v = pollster::block_on(val.pop());
        let o = pollster::block_on(oom.pop());
        if let Some(e) = o {
            return Err(self.gpu_error(format!("{what}: out of GPU memory: {e}")));
        }
        if let Some(e) = v {
            return Err(self.gpu_error(format!("{what}: {e}")));
        }
        if let Some(e) = self.uncaptured.lock().unwrap().drain(..).next() {
            return Err(self.gpu_error(format!("{what}: {e}")));
        }
        if let Some(l) = self.lost.lock().unwrap().clone() {
            return Err(Error::Gpu(format!("{what}: {l}")));
        }
        r
    }
}
