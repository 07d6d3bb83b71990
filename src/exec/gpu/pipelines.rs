//! Compute pipelines and their bind-group layouts, built once per device. Shaders live in `shaders/`.

const RESAMPLE_COMMON: &str = include_str!("../../../shaders/resample.wgsl");
const RESAMPLE_IMAGE: &str = include_str!("../../../shaders/resample_image.wgsl");
const RESAMPLE_LABEL: &str = include_str!("../../../shaders/resample_label.wgsl");
const REDUCE: &str = include_str!("../../../shaders/reduce.wgsl");
pub(super) const STAT_KERNEL: &str = include_str!("../../../shaders/stat_kernel.wgsl");
pub(super) const PERCENTILE: &str = include_str!("../../../shaders/percentile.wgsl");
const INTENSITY: &str = include_str!("../../../shaders/intensity.wgsl");
const BLUR: &str = include_str!("../../../shaders/blur.wgsl");
/// Outputs per invocation of a blur pass along its axis (`RUN` in blur.wgsl).
pub(super) const BLUR_RUN: u32 = 4;
const FIELD: &str = include_str!("../../../shaders/field.wgsl");
const HASH: &str = include_str!("../../../shaders/hash.wgsl");
pub(super) const POINT: &str = include_str!("../../../shaders/point.wgsl");
const METRIC: &str = include_str!("../../../shaders/metric.wgsl");
const LABELS: &str = include_str!("../../../shaders/labels.wgsl");
const FFT: &str = include_str!("../../../shaders/fft.wgsl");
const SPIKE: &str = include_str!("../../../shaders/spike.wgsl");

/// The k-space pipelines (`shaders/fft.wgsl`, `shaders/spike.wgsl`), built the first time an artefact
/// runs so that other runs do not pay for their compilation.
pub struct FftPipes {
    pub lines: wgpu::ComputePipeline,
    pub lines_layout: wgpu::BindGroupLayout,
    pub waves: wgpu::ComputePipeline,
    pub waves_layout: wgpu::BindGroupLayout,
}

pub struct Pipelines {
    pub resample_image: wgpu::ComputePipeline,
    /// The same kernel with a displacement field (a separate entry point, not a branch).
    pub resample_image_field: wgpu::ComputePipeline,
    /// Nearest sampling of an image (simulate_low_resolution's down pass).
    pub resample_image_nearest: wgpu::ComputePipeline,
    /// Label kernels by texel width (8, 16, 32 bits), without and with a displacement field.
    pub resample_label: [[wgpu::ComputePipeline; 2]; 3],
    pub resample_image_layout: wgpu::BindGroupLayout,
    /// Image resampling pipelines with a point kernel fused in, by (entry, `[gamma, noise, bias]`),
    /// built when first needed.
    resample_image_point:
        std::sync::Mutex<std::collections::HashMap<(ImageEntry, [bool; 3]), wgpu::ComputePipeline>>,
    resample_image_module: wgpu::ShaderModule,
    pub resample_label_layout: wgpu::BindGroupLayout,
    pub stats_partial: wgpu::ComputePipeline,
    pub stats_final: wgpu::ComputePipeline,
    /// stats_final with the indirect arguments of the device's retry of an overflowed moment pass,
    /// and that retry (reduce.wgsl; zero workgroups unless the moments overflowed).
    pub stats_final_device: wgpu::ComputePipeline,
    pub stats_partial_rescue: wgpu::ComputePipeline,
    /// stats_partial and its retry over the voxels whose label is nonzero (`"mask": "label"`).
    pub stats_partial_label: wgpu::ComputePipeline,
    pub stats_partial_label_rescue: wgpu::ComputePipeline,
    /// The reduce layout's label binding where a pass reads no label map (1x1x1).
    pub no_labels: wgpu::TextureView,
    pub stats_final_rescue: wgpu::ComputePipeline,
    /// A statistics op's point kernel built on the device (stat_kernel.wgsl) and its layout: only
    /// on devices with f64 shaders (`SHADER_F64`).
    pub stat_kernel: Option<(wgpu::ComputePipeline, wgpu::BindGroupLayout)>,
    /// A percentile clip's kernel built on the device (percentile.wgsl): only with f64 shaders.
    pub percentile: Option<PercentilePipes>,
    pub histogram: wgpu::ComputePipeline,
    pub reduce_layout: wgpu::BindGroupLayout,
    /// Point-kernel pipelines specialised on (gamma, noise, bias), built when first needed.
    elementwise: std::sync::Mutex<
        std::collections::HashMap<[bool; 3], std::sync::Arc<wgpu::ComputePipeline>>,
    >,
    elementwise_module: wgpu::ShaderModule,
    elementwise_pipeline_layout: wgpu::PipelineLayout,
    pub elementwise_layout: wgpu::BindGroupLayout,
    /// One separable-blur pipeline per axis (the axis is an override constant).
    pub blur: [wgpu::ComputePipeline; 3],
    pub blur_layout: wgpu::BindGroupLayout,
    pub noise: wgpu::ComputePipeline,
    pub noise_layout: wgpu::BindGroupLayout,
    /// Packs a field's three component textures into one RGBA32Float texture (field.wgsl `pack`).
    pub field_pack: wgpu::ComputePipeline,
    pub field_pack_layout: wgpu::BindGroupLayout,
    /// Registration metric sums (`shaders/metric.wgsl`).
    pub metric: wgpu::ComputePipeline,
    pub metric_layout: wgpu::BindGroupLayout,
    /// Registration metric gradient sums (`metric_grad` in `shaders/metric.wgsl`).
    pub metric_grad: wgpu::ComputePipeline,
    pub metric_grad_layout: wgpu::BindGroupLayout,
    /// Label value maps by texel width (8, 16, 32 bits) (`shaders/labels.wgsl`).
    pub labels: [wgpu::ComputePipeline; 3],
    pub labels_layout: wgpu::BindGroupLayout,
    fft: std::sync::OnceLock<FftPipes>,
    /// `linear_argmax` label pipelines by (texel width index, field, signed), built when first needed.
    label_argmax: std::sync::Mutex<
        std::collections::HashMap<(usize, bool, bool), std::sync::Arc<wgpu::ComputePipeline>>,
    >,
    resample_label_module: wgpu::ShaderModule,
}

fn uniform(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn texture(binding: u32, sample_type: wgpu::TextureSampleType) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Texture {
            sample_type,
            view_dimension: wgpu::TextureViewDimension::D3,
            multisampled: false,
        },
        count: None,
    }
}

fn storage(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only: false },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn storage_ro(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only: true },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

const FLOAT: wgpu::TextureSampleType = wgpu::TextureSampleType::Float { filterable: false };

fn bind_layout(
    device: &wgpu::Device,
    label: &str,
    entries: &[wgpu::BindGroupLayoutEntry],
) -> wgpu::BindGroupLayout {
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries,
    })
}

/// The passes of `shaders/percentile.wgsl` (in dispatch order) and their layout.
pub struct PercentilePipes {
    pub setup: wgpu::ComputePipeline,
    pub level1: wgpu::ComputePipeline,
    pub select: wgpu::ComputePipeline,
    pub level2: wgpu::ComputePipeline,
    pub finish: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// The declaration in WGSL `src` that starts with `head`, up to and including `close`.
fn wgsl_decl<'a>(src: &'a str, head: &str, close: &str) -> &'a str {
    let start = src
        .find(head)
        .unwrap_or_else(|| panic!("`{head}` in shader"));
    let end = start
        + src[start..]
            .find(close)
            .unwrap_or_else(|| panic!("end of `{head}`"))
        + close.len();
    &src[start..end]
}

/// The declaration of function `name` in WGSL `src` (up to its closing brace at the start of a line).
pub(super) fn wgsl_fn<'a>(src: &'a str, name: &str) -> &'a str {
    wgsl_decl(src, &format!("fn {name}("), "\n}")
}

/// The declaration of struct `name` in WGSL `src` (for a shader that reads or writes that struct's
/// buffers and declares it once, where it is defined).
pub(super) fn wgsl_struct<'a>(src: &'a str, name: &str) -> &'a str {
    wgsl_decl(src, &format!("struct {name} {{"), "}")
}

fn module(device: &wgpu::Device, label: &str, src: String) -> wgpu::ShaderModule {
    device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(src.into()),
    })
}

/// A pipeline of `entry` with override constants (`PACK`, `AXIS`, ...).
fn specialised(
    device: &wgpu::Device,
    bgl: &wgpu::BindGroupLayout,
    m: &wgpu::ShaderModule,
    entry: &str,
    constants: &[(&str, f64)],
) -> wgpu::ComputePipeline {
    let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(entry),
        bind_group_layouts: &[Some(bgl)],
        immediate_size: 0,
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(entry),
        layout: Some(&pl),
        module: m,
        entry_point: Some(entry),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants,
            ..Default::default()
        },
        cache: None,
    })
}

/// The override constants of `shaders/point.wgsl` for features `[gamma, noise, bias]`.
fn point_switches(features: [bool; 3]) -> [(&'static str, f64); 3] {
    let on = |b: bool| if b { 1.0 } else { 0.0 };
    [
        ("GAMMA", on(features[0])),
        ("NOISE", on(features[1])),
        ("BIAS", on(features[2])),
    ]
}

/// The entry points of `shaders/resample_image.wgsl`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ImageEntry {
    /// Trilinear through an affine map.
    Trilinear,
    /// Trilinear through a displacement field.
    Field,
    /// Nearest through an affine map.
    Nearest,
}

impl ImageEntry {
    fn name(self) -> &'static str {
        match self {
            ImageEntry::Trilinear => "resample_image",
            ImageEntry::Field => "resample_image_field",
            ImageEntry::Nearest => "resample_image_nearest",
        }
    }
}

impl Pipelines {
    /// The image resampling pipeline of `entry`, with a point kernel of `features` (`[gamma, noise,
    /// bias]`) applied to its samples when `point` is given.
    pub fn resample_image(
        &self,
        device: &wgpu::Device,
        entry: ImageEntry,
        point: Option<[bool; 3]>,
    ) -> wgpu::ComputePipeline {
        let Some(features) = point else {
            return match entry {
                ImageEntry::Trilinear => &self.resample_image,
                ImageEntry::Field => &self.resample_image_field,
                ImageEntry::Nearest => &self.resample_image_nearest,
            }
            .clone();
        };
        let mut cache = self.resample_image_point.lock().unwrap();
        cache
            .entry((entry, features))
            .or_insert_with(|| {
                let [gamma, noise, bias] = point_switches(features);
                let constants = [("POINT", 1.0), gamma, noise, bias];
                specialised(
                    device,
                    &self.resample_image_layout,
                    &self.resample_image_module,
                    entry.name(),
                    &constants,
                )
            })
            .clone()
    }

    /// The point-kernel pipeline with only the features `[gamma, noise, bias]` compiled in.
    pub fn elementwise(
        &self,
        device: &wgpu::Device,
        features: [bool; 3],
    ) -> std::sync::Arc<wgpu::ComputePipeline> {
        let mut cache = self.elementwise.lock().unwrap();
        cache
            .entry(features)
            .or_insert_with(|| {
                let constants = point_switches(features);
                std::sync::Arc::new(device.create_compute_pipeline(
                    &wgpu::ComputePipelineDescriptor {
                        label: Some("elementwise"),
                        layout: Some(&self.elementwise_pipeline_layout),
                        module: &self.elementwise_module,
                        entry_point: Some("elementwise"),
                        compilation_options: wgpu::PipelineCompilationOptions {
                            constants: &constants,
                            ..Default::default()
                        },
                        cache: None,
                    },
                ))
            })
            .clone()
    }

    /// The `linear_argmax` label pipeline for a texel width index (0: 8 bits, 1: 16, 2: 32), with or
    /// without a displacement field, for signed or unsigned labels.
    pub fn label_argmax(
        &self,
        device: &wgpu::Device,
        width: usize,
        field: bool,
        signed: bool,
    ) -> std::sync::Arc<wgpu::ComputePipeline> {
        let mut cache = self.label_argmax.lock().unwrap();
        cache
            .entry((width, field, signed))
            .or_insert_with(|| {
                let entry = if field {
                    "resample_label_argmax_field"
                } else {
                    "resample_label_argmax"
                };
                let constants = [
                    ("PACK", [4.0, 2.0, 1.0][width]),
                    ("SIGNED", if signed { 1.0 } else { 0.0 }),
                ];
                std::sync::Arc::new(specialised(
                    device,
                    &self.resample_label_layout,
                    &self.resample_label_module,
                    entry,
                    &constants,
                ))
            })
            .clone()
    }

    /// The k-space pipelines, compiled on first use; `software`: a CPU adapter (smaller workgroups).
    pub fn fft(&self, device: &wgpu::Device, software: bool) -> &FftPipes {
        self.fft.get_or_init(|| {
            let layout = |label: &str, entries: &[wgpu::BindGroupLayoutEntry]| {
                bind_layout(device, label, entries)
            };
            let threads = [("THREADS", if software { 16.0 } else { 64.0 })];
            let pipeline =
                |bgl: &wgpu::BindGroupLayout, src: &str, entry: &str, constants: &[(&str, f64)]| {
                    specialised(
                        device,
                        bgl,
                        &module(device, entry, src.into()),
                        entry,
                        constants,
                    )
                };
            let lines_layout = layout(
                "fft_lines",
                &[
                    uniform(0),
                    texture(1, FLOAT),
                    texture(2, FLOAT),
                    texture(3, FLOAT),
                    storage(4),
                    storage_ro(5),
                ],
            );
            let waves_layout = layout(
                "spike_waves",
                &[uniform(0), texture(1, FLOAT), storage(2), storage_ro(3)],
            );
            FftPipes {
                lines: pipeline(&lines_layout, FFT, "fft_lines", &threads),
                waves: pipeline(&waves_layout, SPIKE, "spike_waves", &[]),
                lines_layout,
                waves_layout,
            }
        })
    }

    pub fn new(device: &wgpu::Device) -> Pipelines {
        let layout = |label: &str, entries: &[wgpu::BindGroupLayoutEntry]| {
            bind_layout(device, label, entries)
        };
        let module = |label: &str, src: String| module(device, label, src);
        let specialised = |bgl: &wgpu::BindGroupLayout,
                           m: &wgpu::ShaderModule,
                           entry: &str,
                           constants: &[(&str, f64)]| {
            specialised(device, bgl, m, entry, constants)
        };
        let pipeline = |bgl: &wgpu::BindGroupLayout, m: &wgpu::ShaderModule, entry: &str| {
            specialised(bgl, m, entry, &[])
        };
        // Binding 3: an optional displacement field, its three components in one RGBA32Float texture.
        let field = texture(3, FLOAT);
        // Binding 4 of images: the point kernel fused into the pass (when a pipeline has POINT on).
        let resample_image_layout = layout(
            "resample_image",
            &[uniform(0), texture(1, FLOAT), storage(2), field, uniform(4)],
        );
        let resample_label_layout = layout(
            "resample_label",
            &[
                uniform(0),
                texture(1, wgpu::TextureSampleType::Uint),
                storage(2),
                field,
            ],
        );
        let ri = module(
            "resample_image",
            format!("{RESAMPLE_COMMON}\n{RESAMPLE_IMAGE}\n{POINT}\n{HASH}"),
        );
        let rl = module(
            "resample_label",
            format!("{RESAMPLE_COMMON}\n{RESAMPLE_LABEL}"),
        );
        let reduce_layout = layout(
            "reduce",
            &[
                uniform(0),
                texture(1, FLOAT),
                storage(2),
                storage(3),
                storage(4),
                texture(5, wgpu::TextureSampleType::Uint),
            ],
        );
        let no_labels = device
            .create_texture(&wgpu::TextureDescriptor {
                label: Some("no labels"),
                size: wgpu::Extent3d {
                    width: 1,
                    height: 1,
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D3,
                format: wgpu::TextureFormat::R8Uint,
                usage: wgpu::TextureUsages::TEXTURE_BINDING,
                view_formats: &[],
            })
            .create_view(&Default::default());
        let rd = module("reduce", REDUCE.to_string());
        let elementwise_layout = layout(
            "elementwise",
            &[uniform(0), texture(1, FLOAT), storage(2), uniform(3)],
        );
        let ew = module("intensity", format!("{INTENSITY}\n{POINT}\n{HASH}"));
        let blur_layout = layout(
            "blur",
            &[uniform(0), texture(1, FLOAT), storage(2), storage_ro(3)],
        );
        let bl = module("blur", BLUR.to_string());
        let noise_layout = layout("noise", &[uniform(0), storage(1)]);
        let field_pack_layout = layout(
            "field_pack",
            &[
                uniform(0),
                storage(1),
                texture(2, FLOAT),
                texture(3, FLOAT),
                texture(4, FLOAT),
            ],
        );
        let nz = module("field", format!("{FIELD}\n{HASH}"));
        let metric_layout = layout(
            "metric",
            &[
                uniform(0),
                texture(1, FLOAT),
                storage_ro(2),
                storage(3),
                storage(4),
            ],
        );
        let metric_grad_layout = layout(
            "metric_grad",
            &[
                uniform(0),
                texture(1, FLOAT),
                storage_ro(2),
                storage(3),
                storage_ro(4),
            ],
        );
        let mt = module("metric", METRIC.to_string());
        let labels_layout = layout(
            "labels",
            &[
                uniform(0),
                texture(1, wgpu::TextureSampleType::Uint),
                storage(2),
                storage_ro(3),
                storage_ro(4),
            ],
        );
        let lb = module("labels", LABELS.to_string());
        Pipelines {
            resample_image: pipeline(&resample_image_layout, &ri, "resample_image"),
            resample_image_field: pipeline(&resample_image_layout, &ri, "resample_image_field"),
            resample_image_nearest: pipeline(&resample_image_layout, &ri, "resample_image_nearest"),
            resample_label: [4.0, 2.0, 1.0].map(|pack| {
                ["resample_label", "resample_label_field"]
                    .map(|entry| specialised(&resample_label_layout, &rl, entry, &[("PACK", pack)]))
            }),
            stats_partial: pipeline(&reduce_layout, &rd, "stats_partial"),
            stats_final: pipeline(&reduce_layout, &rd, "stats_final"),
            stats_final_device: pipeline(&reduce_layout, &rd, "stats_final_device"),
            stats_partial_rescue: pipeline(&reduce_layout, &rd, "stats_partial_rescue"),
            stats_partial_label: pipeline(&reduce_layout, &rd, "stats_partial_label"),
            stats_partial_label_rescue: pipeline(&reduce_layout, &rd, "stats_partial_label_rescue"),
            no_labels,
            stats_final_rescue: pipeline(&reduce_layout, &rd, "stats_final_rescue"),
            stat_kernel: device
                .features()
                .contains(wgpu::Features::SHADER_F64)
                .then(|| {
                    let bgl = layout("stat_kernel", &[uniform(0), storage_ro(1), storage(2)]);
                    let src = format!(
                        "{}\n{}\n{STAT_KERNEL}",
                        wgsl_struct(REDUCE, "Partial"),
                        wgsl_struct(POINT, "Point")
                    );
                    let m = module("stat_kernel", src);
                    (pipeline(&bgl, &m, "stat_kernel"), bgl)
                }),
            percentile: device
                .features()
                .contains(wgpu::Features::SHADER_F64)
                .then(|| {
                    let bgl = layout(
                        "percentile",
                        &[
                            uniform(0),
                            texture(1, FLOAT),
                            storage_ro(2),
                            storage(3),
                            storage(4),
                            storage(5),
                        ],
                    );
                    let consts: Vec<&str> =
                        REDUCE.lines().filter(|l| l.starts_with("const ")).collect();
                    let src = format!(
                        "{}\n{}\n{}\n{}\n{}\n{}\n{PERCENTILE}",
                        wgsl_struct(REDUCE, "Partial"),
                        consts.join("\n"),
                        wgsl_fn(REDUCE, "load"),
                        wgsl_fn(REDUCE, "is_finite"),
                        wgsl_fn(REDUCE, "value_bin"),
                        wgsl_struct(POINT, "Point")
                    );
                    let m = module("percentile", src);
                    PercentilePipes {
                        setup: pipeline(&bgl, &m, "pct_setup"),
                        level1: pipeline(&bgl, &m, "pct_level1"),
                        select: pipeline(&bgl, &m, "pct_select"),
                        level2: pipeline(&bgl, &m, "pct_level2"),
                        finish: pipeline(&bgl, &m, "pct_finish"),
                        layout: bgl,
                    }
                }),
            histogram: pipeline(&reduce_layout, &rd, "histogram"),
            elementwise: Default::default(),
            resample_image_point: Default::default(),
            resample_image_module: ri,
            fft: Default::default(),
            label_argmax: Default::default(),
            elementwise_pipeline_layout: device.create_pipeline_layout(
                &wgpu::PipelineLayoutDescriptor {
                    label: Some("elementwise"),
                    bind_group_layouts: &[Some(&elementwise_layout)],
                    immediate_size: 0,
                },
            ),
            elementwise_module: ew,
            blur: [0.0, 1.0, 2.0]
                .map(|axis| specialised(&blur_layout, &bl, "blur", &[("AXIS", axis)])),
            labels: [4.0, 2.0, 1.0]
                .map(|pack| specialised(&labels_layout, &lb, "labels", &[("PACK", pack)])),
            labels_layout,
            noise: pipeline(&noise_layout, &nz, "noise"),
            field_pack: pipeline(&field_pack_layout, &nz, "pack"),
            field_pack_layout,
            metric: pipeline(&metric_layout, &mt, "metric"),
            metric_layout,
            metric_grad: pipeline(&metric_grad_layout, &mt, "metric_grad"),
            metric_grad_layout,
            noise_layout,
            blur_layout,
            resample_image_layout,
            resample_label_layout,
            resample_label_module: rl,
            reduce_layout,
            elementwise_layout,
        }
    }
}
