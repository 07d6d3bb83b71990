//! Pictures of volumes (PNG): three-plane mid-slice views and slice grids, in physical proportions,
//! with window/level, label overlays and orientation letters; plus per-label statistics.

mod font;
pub mod histogram;
pub mod mesh;
pub mod stats;

use crate::error::{Error, Result};
use crate::volume::Volume;
use std::path::Path;

/// An 8-bit RGB picture.
#[derive(Clone, Debug, PartialEq)]
pub struct Rgb {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major, 3 bytes per pixel.
    pub data: Vec<u8>,
}

impl Rgb {
    /// A picture filled with one colour.
    pub fn new(width: usize, height: usize, fill: [u8; 3]) -> Rgb {
        Rgb {
            width,
            height,
            data: fill
                .iter()
                .copied()
                .cycle()
                .take(width * height * 3)
                .collect(),
        }
    }
    /// Colour of pixel `(x, y)`.
    pub fn get(&self, x: usize, y: usize) -> [u8; 3] {
        let i = 3 * (y * self.width + x);
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
    /// Sets pixel `(x, y)`.
    pub fn set(&mut self, x: usize, y: usize, c: [u8; 3]) {
        if x < self.width && y < self.height {
            let i = 3 * (y * self.width + x);
            self.data[i..i + 3].copy_from_slice(&c);
        }
    }
    /// Copies `other` with its top-left corner at (x, y).
    pub fn blit(&mut self, other: &Rgb, x: usize, y: usize) {
        for r in 0..other.height {
            for c in 0..other.width {
                self.set(x + c, y + r, other.get(c, r));
            }
        }
    }

    /// Writes the picture as PNG (atomically).
    pub fn write_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut bytes, self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc
                .write_header()
                .map_err(|e| Error::invalid(format!("PNG encoding failed: {e}")))?;
            w.write_image_data(&self.data)
                .map_err(|e| Error::invalid(format!("PNG encoding failed: {e}")))?;
        }
        crate::io::write_atomic(path, &bytes)
    }
}

/// Intensity window: values below `lo` are black, above `hi` white.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    /// Intensity drawn black.
    pub lo: f64,
    /// Intensity drawn white.
    pub hi: f64,
}

impl Window {
    /// From a centre (level) and width.
    pub fn center_width(c: f64, w: f64) -> Window {
        Window {
            lo: c - w / 2.0,
            hi: c + w / 2.0,
        }
    }

    /// CT presets (Hounsfield units): brain, subdural, stroke, lung, mediastinum, abdomen, liver, bone.
    pub fn preset(name: &str) -> Option<Window> {
        let (c, w) = match name {
            "brain" => (40.0, 80.0),
            "subdural" => (75.0, 215.0),
            "stroke" => (40.0, 40.0),
            "lung" => (-600.0, 1500.0),
            "mediastinum" => (50.0, 350.0),
            "abdomen" | "soft" => (50.0, 400.0),
            "liver" => (60.0, 160.0),
            "bone" => (400.0, 1800.0),
            _ => return None,
        };
        Some(Window::center_width(c, w))
    }

    /// The 0.5th to 99.5th percentile of the image (numpy's definition).
    pub fn auto(image: &Volume) -> Window {
        let p = crate::exec::cpu::reduce::percentiles(&image.values(), &[0.5, 99.5]);
        Window { lo: p[0], hi: p[1] }
    }

    /// Parses `C,W` or a preset name.
    pub fn parse(s: &str) -> Result<Window> {
        if let Some(w) = Window::preset(s) {
            return Ok(w);
        }
        let parts: Vec<f64> = s.split(',').map(|x| x.trim().parse::<f64>()).collect::<std::result::Result<_, _>>().map_err(|_| {
            Error::invalid(format!(
                "window `{s}`: expected CENTER,WIDTH or a preset (brain, subdural, stroke, lung, mediastinum, abdomen, liver, bone)"
            ))
        })?;
        match parts[..] {
            [c, w] if w > 0.0 => Ok(Window::center_width(c, w)),
            _ => Err(Error::invalid(format!(
                "window `{s}`: expected CENTER,WIDTH with WIDTH > 0"
            ))),
        }
    }

    fn gray(&self, v: f32) -> u8 {
        let t = if self.hi > self.lo {
            (v as f64 - self.lo) / (self.hi - self.lo)
        } else {
            0.5
        };
        (t.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

/// Fixed colour of a label value (0 is transparent); the same value always gets the same colour.
pub fn label_colour(v: i64) -> [u8; 3] {
    const PALETTE: [[u8; 3]; 10] = [
        [230, 25, 75],
        [60, 180, 75],
        [255, 225, 25],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [210, 245, 60],
        [250, 190, 190],
    ];
    PALETTE[((v - 1).rem_euclid(PALETTE.len() as i64)) as usize]
}

/// Screen colour of voxel `ijk`: the windowed gray, blended with its label's colour (label 0 shows
/// the gray only).
fn voxel_colour(
    img: &Volume,
    label: Option<&Volume>,
    ijk: [usize; 3],
    win: Window,
    alpha: f32,
) -> [u8; 3] {
    let g = win.gray(img.at(ijk[0], ijk[1], ijk[2]));
    let mut c = [g, g, g];
    if let Some(l) = label {
        let lv = l.at(ijk[0], ijk[1], ijk[2]) as i64;
        if lv != 0 {
            let lc = label_colour(lv);
            for k in 0..3 {
                c[k] = (c[k] as f32 * (1.0 - alpha) + lc[k] as f32 * alpha).round() as u8;
            }
        }
    }
    c
}

/// Display options.
#[derive(Clone, Debug)]
pub struct ViewOptions {
    /// Intensity window (default: `Window::auto`).
    pub window: Option<Window>,
    /// Radiological convention (patient's right on the viewer's left); default neurological.
    pub radiological: bool,
    /// Label overlay opacity.
    pub alpha: f32,
    /// Screen pixel size in mm (default: the smallest voxel spacing).
    pub pixel_mm: Option<f64>,
}

impl Default for ViewOptions {
    fn default() -> Self {
        ViewOptions {
            window: None,
            radiological: false,
            alpha: 0.4,
            pixel_mm: None,
        }
    }
}

/// The voxel axis along each world axis (x: L-R, y: P-A, z: I-S) and whether it points the positive
/// (R, A, S) way.
fn world_axes(v: &Volume) -> [(usize, bool); 3] {
    let codes: Vec<char> = v.grid.orientation().chars().collect();
    let mut out = [(0, true); 3];
    for (axis, c) in codes.iter().enumerate() {
        let (w, pos) = match c {
            'R' => (0, true),
            'L' => (0, false),
            'A' => (1, true),
            'P' => (1, false),
            'S' => (2, true),
            _ => (2, false),
        };
        out[w] = (axis, pos);
    }
    out
}

/// One plane: horizontal world axis `h` (+ direction to the right), vertical world axis `v` (+ up),
/// at voxel `index` along the remaining voxel axis.
struct Plane {
    h: usize,
    h_right_positive: bool,
    v: usize,
    index: Option<usize>,
}

fn render_plane(
    img: &Volume,
    label: Option<&Volume>,
    plane: &Plane,
    opts: &ViewOptions,
    win: Window,
    px: f64,
) -> Rgb {
    let axes = world_axes(img);
    let (ha, hpos) = axes[plane.h];
    let (va, vpos) = axes[plane.v];
    let depth_axis = 3 - ha - va;
    let shape = img.grid.shape;
    let sp = img.grid.spacing();
    let index = plane.index.unwrap_or((shape[depth_axis] - 1) / 2);
    let w = ((shape[ha] as f64 * sp[ha] / px).round() as usize).max(1);
    let h = ((shape[va] as f64 * sp[va] / px).round() as usize).max(1);
    let mut out = Rgb::new(w, h, [0, 0, 0]);
    for y in 0..h {
        for x in 0..w {
            // Screen pixel -> voxel along each displayed axis (nearest), honouring directions.
            let fx = ((x as f64 + 0.5) / w as f64 * shape[ha] as f64) as usize;
            let fy = ((y as f64 + 0.5) / h as f64 * shape[va] as f64) as usize;
            let fx = fx.min(shape[ha] - 1);
            let fy = fy.min(shape[va] - 1);
            // x grows to the screen's right: that is the positive world direction unless flipped.
            let along_h = if hpos == plane.h_right_positive {
                fx
            } else {
                shape[ha] - 1 - fx
            };
            // y grows downwards: top is the positive world direction (A or S).
            let along_v = if vpos { shape[va] - 1 - fy } else { fy };
            let mut ijk = [0usize; 3];
            ijk[ha] = along_h;
            ijk[va] = along_v;
            ijk[depth_axis] = index;
            out.set(x, y, voxel_colour(img, label, ijk, win, opts.alpha));
        }
    }
    out
}

fn check_pair(image: &Volume, label: Option<&Volume>) -> Result<()> {
    if let Some(l) = label {
        if !l.grid.same_as(&image.grid, 1e-4) {
            return Err(Error::invalid("label map and image are on different grids"));
        }
    }
    Ok(())
}

/// Screen pixel size in mm: the option, else the smallest voxel spacing, made smaller (magnified) when
/// the volume's largest extent would span fewer than `min_px` pixels. Never so small that the largest
/// extent spans more than [`MAX_SIDE_PX`] pixels (very anisotropic voxels would make gigapixel images).
fn pixel_mm(image: &Volume, opts: &ViewOptions, min_px: f64) -> f64 {
    let sp = image.grid.spacing();
    let extent = (0..3)
        .map(|a| image.grid.shape[a] as f64 * sp[a])
        .fold(0.0, f64::max);
    let px = opts.pixel_mm.unwrap_or_else(|| {
        let finest = sp.iter().cloned().fold(f64::INFINITY, f64::min);
        finest.min(extent / min_px)
    });
    px.max(extent / MAX_SIDE_PX)
}

/// Most pixels along the largest extent of one view.
pub const MAX_SIDE_PX: f64 = 4096.0;

const LETTERS: [[char; 2]; 3] = [['L', 'R'], ['P', 'A'], ['I', 'S']];

/// Sagittal, coronal and axial mid-slices side by side, each in physical proportions, with
/// orientation letters on the edges.
pub fn planes(image: &Volume, label: Option<&Volume>, opts: &ViewOptions) -> Result<Rgb> {
    check_pair(image, label)?;
    let win = opts.window.unwrap_or_else(|| Window::auto(image));
    let px = pixel_mm(image, opts, 256.0);
    let right_pos = !opts.radiological;
    let views = [
        // sagittal: anterior to the right, superior up
        Plane {
            h: 1,
            h_right_positive: true,
            v: 2,
            index: None,
        },
        // coronal: R on the right (neurological) or left (radiological), superior up
        Plane {
            h: 0,
            h_right_positive: right_pos,
            v: 2,
            index: None,
        },
        // axial: as coronal, anterior up
        Plane {
            h: 0,
            h_right_positive: right_pos,
            v: 1,
            index: None,
        },
    ];
    let tiles: Vec<Rgb> = views
        .iter()
        .map(|p| render_plane(image, label, p, opts, win, px))
        .collect();
    let gap = 16;
    let width = tiles.iter().map(|t| t.width).sum::<usize>() + gap * 2;
    let height = tiles.iter().map(|t| t.height).max().unwrap_or(1);
    let mut out = Rgb::new(width, height, [0, 0, 0]);
    let mut x = 0;
    for (t, p) in tiles.iter().zip(&views) {
        out.blit(t, x, (height - t.height) / 2);
        let top = (height - t.height) / 2;
        let (lh, rh) = if p.h_right_positive {
            (LETTERS[p.h][0], LETTERS[p.h][1])
        } else {
            (LETTERS[p.h][1], LETTERS[p.h][0])
        };
        font::draw(&mut out, lh, x + 2, top + t.height / 2);
        font::draw(
            &mut out,
            rh,
            x + t.width.saturating_sub(13),
            top + t.height / 2,
        );
        font::draw(&mut out, LETTERS[p.v][1], x + t.width / 2, top + 2);
        x += t.width + gap;
    }
    Ok(with_legend(out, label))
}

/// A montage of slices along voxel `axis` (`slices` indices), `cols` per row, in physical
/// proportions; the displayed axes keep the volume's voxel order (slice grids are for looking through
/// the data, like fastai's `show_image_3d`).
pub fn grid(
    image: &Volume,
    label: Option<&Volume>,
    axis: usize,
    slices: &[usize],
    cols: usize,
    opts: &ViewOptions,
) -> Result<Rgb> {
    check_pair(image, label)?;
    if axis > 2 {
        return Err(Error::invalid(format!("axis {axis} is not 0, 1 or 2")));
    }
    let n = image.grid.shape[axis];
    if let Some(bad) = slices.iter().find(|&&s| s >= n) {
        return Err(Error::invalid(format!(
            "slice {bad} is outside 0..{n} along axis {axis}"
        )));
    }
    if slices.is_empty() {
        return Err(Error::invalid("no slice to show"));
    }
    let win = opts.window.unwrap_or_else(|| Window::auto(image));
    let px = pixel_mm(image, opts, 128.0);
    let (a, b) = match axis {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    };
    let shape = image.grid.shape;
    let sp = image.grid.spacing();
    let w = ((shape[a] as f64 * sp[a] / px).round() as usize).max(1);
    let h = ((shape[b] as f64 * sp[b] / px).round() as usize).max(1);
    let codes: Vec<char> = image.grid.orientation().chars().collect();
    let cols = cols.clamp(1, slices.len());
    let rows = slices.len().div_ceil(cols);
    let gap = 2;
    let mut out = Rgb::new(cols * (w + gap) - gap, rows * (h + gap) - gap, [0, 0, 0]);
    for (t, &s) in slices.iter().enumerate() {
        let (ox, oy) = ((t % cols) * (w + gap), (t / cols) * (h + gap));
        for y in 0..h {
            for x in 0..w {
                let ia =
                    (((x as f64 + 0.5) / w as f64 * shape[a] as f64) as usize).min(shape[a] - 1);
                let ib =
                    (((y as f64 + 0.5) / h as f64 * shape[b] as f64) as usize).min(shape[b] - 1);
                // Row 0 at the top shows the last index along b (up = increasing index).
                let ib = shape[b] - 1 - ib;
                let mut ijk = [0usize; 3];
                ijk[a] = ia;
                ijk[b] = ib;
                ijk[axis] = s;
                out.set(
                    ox + x,
                    oy + y,
                    voxel_colour(image, label, ijk, win, opts.alpha),
                );
            }
        }
        // The slice index, and the world direction each edge faces (from the affine's orientation).
        // (Only on tiles large enough to keep most of the slice visible.)
        let yellow = [255, 220, 0];
        if w >= 32 && h >= 24 {
            font::text(
                &mut out,
                &format!("{}", s),
                ox + 2,
                oy + h.saturating_sub(10),
                yellow,
            );
        }
        if w >= 40 && h >= 30 {
            font::text(
                &mut out,
                &codes[a].to_string(),
                ox + w - 9,
                oy + h / 2 - 4,
                yellow,
            );
            font::text(
                &mut out,
                &opposite(codes[a]).to_string(),
                ox + 1,
                oy + h / 2 - 4,
                yellow,
            );
            font::text(
                &mut out,
                &codes[b].to_string(),
                ox + w / 2 - 4,
                oy + 1,
                yellow,
            );
        }
    }
    Ok(with_legend(out, label))
}

/// The letter of the opposite world direction (R <-> L, A <-> P, S <-> I).
fn opposite(c: char) -> char {
    match c {
        'R' => 'L',
        'L' => 'R',
        'A' => 'P',
        'P' => 'A',
        'S' => 'I',
        'I' => 'S',
        other => other,
    }
}

/// `pic` with a legend strip below it when a label map is drawn: a swatch of each label value's colour
/// and the value (up to 16 values, the most frequent first; 0 is the background and left out).
pub fn with_legend(pic: Rgb, label: Option<&Volume>) -> Rgb {
    let Some(label) = label else {
        return pic;
    };
    let mut counts: Vec<(f32, usize)> = label
        .label_counts()
        .into_iter()
        .filter(|(v, _)| *v != 0.0)
        .collect();
    if counts.is_empty() {
        return pic;
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    counts.truncate(16);
    counts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = Rgb::new(pic.width, pic.height + 14, [0, 0, 0]);
    out.blit(&pic, 0, 0);
    let mut x = 3;
    let y = pic.height + 3;
    font::text(&mut out, "labels:", x, y, [230, 230, 230]);
    x += 8 * 8;
    for (v, _) in counts {
        let t = format!("{}", v as i64);
        if x + 12 + t.len() * 8 > out.width {
            break;
        }
        let c = label_colour(v as i64);
        for dy in 0..8 {
            for dx in 0..8 {
                out.set(x + dx, y + dy, c);
            }
        }
        font::text(&mut out, &t, x + 11, y, [230, 230, 230]);
        x += 11 + t.len() * 8 + 10;
    }
    out
}

/// Slice indices for a grid: every `every`-th slice, or `count` evenly spread slices.
pub fn pick_slices(n: usize, every: Option<usize>, count: Option<usize>) -> Result<Vec<usize>> {
    match (every, count) {
        (Some(0), _) | (_, Some(0)) => Err(Error::invalid("--every and --count must be >= 1")),
        (Some(e), None) => Ok((0..n).step_by(e).collect()),
        (None, Some(c)) => {
            let c = c.min(n);
            Ok((0..c)
                .map(|i| ((i as f64 + 0.5) * n as f64 / c as f64) as usize)
                .collect())
        }
        (None, None) => pick_slices(n, None, Some(16.min(n))),
        (Some(_), Some(_)) => Err(Error::invalid("give --every or --count, not both")),
    }
}

/// Stacks pictures vertically (rows of a batch view), centred, `gap` pixels apart.
pub fn stack(rows: &[Rgb], gap: usize) -> Rgb {
    let width = rows.iter().map(|r| r.width).max().unwrap_or(1);
    let height = rows.iter().map(|r| r.height).sum::<usize>() + gap * rows.len().saturating_sub(1);
    let mut out = Rgb::new(width, height.max(1), [0, 0, 0]);
    let mut y = 0;
    for r in rows {
        out.blit(r, (width - r.width) / 2, y);
        y += r.height + gap;
    }
    out
}

/// `pic` with a caption strip above it: `text` in light grey on black, wrapped at ", " onto up to three
/// lines of the picture's width (a longer text ends with "...").
pub fn captioned(pic: &Rgb, text: &str) -> Rgb {
    let max = (pic.width.saturating_sub(4) / 8).max(4);
    let mut lines: Vec<String> = vec![String::new()];
    for (i, part) in text.split(", ").enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let cur = lines.last_mut().expect("one line at least");
        if !cur.is_empty() && cur.chars().count() + sep.len() + part.chars().count() > max {
            cur.push(',');
            lines.push(part.to_string());
        } else {
            cur.push_str(sep);
            cur.push_str(part);
        }
    }
    if lines.len() > 3 {
        lines.truncate(3);
        lines[2].push_str(" ...");
    }
    for l in lines.iter_mut() {
        if l.chars().count() > max {
            *l = l.chars().take(max - 3).chain("...".chars()).collect();
        }
    }
    let strip = 4 + 11 * lines.len();
    let mut out = Rgb::new(pic.width, pic.height + strip, [0, 0, 0]);
    for (i, l) in lines.iter().enumerate() {
        font::text(&mut out, l, 3, 3 + 11 * i, [230, 230, 230]);
    }
    out.blit(pic, 0, strip);
    out
}

/// A one-line summary of a plan: each transform's type and its main parameter (angles, factors, axes,
/// gamma, ...), numbers with 2 decimals; `"identity"` for an empty plan.
pub fn plan_summary(plan: &[crate::Transform]) -> String {
    fn num(v: &serde_json::Value) -> Option<String> {
        match v {
            serde_json::Value::Number(n) => {
                let x = n.as_f64()?;
                Some(if x.fract() == 0.0 && x.abs() < 1e6 {
                    format!("{x:.0}")
                } else {
                    format!("{x:.2}")
                })
            }
            serde_json::Value::Array(a) if a.len() <= 3 => {
                let parts: Option<Vec<String>> = a.iter().map(num).collect();
                Some(format!("[{}]", parts?.join(",")))
            }
            _ => None,
        }
    }
    const MAIN: [&str; 16] = [
        "degrees",
        "factors",
        "axes",
        "gamma",
        "std",
        "factor",
        "offset",
        "mm",
        "size",
        "shape",
        "spacing",
        "sigma",
        "min",
        "max_displacement_mm",
        "value",
        "zoom",
    ];
    let parts: Vec<String> = plan
        .iter()
        .map(|t| {
            let v = serde_json::to_value(t).unwrap_or_default();
            let name = v["type"].as_str().unwrap_or("?").to_string();
            match MAIN.iter().find_map(|k| v.get(*k).and_then(num)) {
                Some(p) => format!("{name} {p}"),
                None => name,
            }
        })
        .collect();
    if parts.is_empty() {
        "identity".into()
    } else {
        parts.join(", ")
    }
}

/// In an `augment` output folder: the sample folders (`0000`, `0001`, ...) in order, and in the first one
/// the image and label file names (label: a name containing "lab", "seg", "mask", "tissue", "parc"
/// or "aseg").
pub fn batch_layout(dir: &Path) -> Result<(Vec<std::path::PathBuf>, String, Option<String>)> {
    let mut samples: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.len() == 4 && n.chars().all(|c| c.is_ascii_digit()))
        })
        .collect();
    samples.sort();
    let first = samples.first().ok_or_else(|| {
        Error::invalid(format!(
            "{}: no sample folders (0000, 0001, ...) from `voxaug augment`",
            dir.display()
        ))
    })?;
    let mut names: Vec<String> = std::fs::read_dir(first)
        .map_err(|e| Error::io(first, e))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            [".nii", ".nii.gz", ".nrrd", ".nhdr"]
                .iter()
                .any(|e| n.ends_with(e))
        })
        .collect();
    names.sort();
    let is_label = |n: &str| {
        ["label", "lab", "seg", "mask", "tissue", "parc", "aseg"]
            .iter()
            .any(|k| n.to_lowercase().contains(k))
    };
    let image = names
        .iter()
        .find(|n| !is_label(n))
        .cloned()
        .ok_or_else(|| {
            Error::invalid(format!(
                "{}: no image file in {}",
                dir.display(),
                first.display()
            ))
        })?;
    let label = names.iter().find(|n| is_label(n)).cloned();
    Ok((samples, image, label))
}
