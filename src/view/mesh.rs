//! Surface meshes of label maps: marching tetrahedra (each voxel cube split into six tetrahedra around
//! its main diagonal, the same split in every cube, so the surface is closed and shared vertices are
//! merged by edge), in world millimetres; STL, OBJ and PLY writers; a headless shaded rendering.

use super::Rgb;
use crate::error::{Error, Result};
use crate::grid::{cross, dot, mat_apply};
use crate::volume::Volume;
use std::collections::HashMap;
use std::path::Path;

/// A triangle mesh in world mm (RAS), triangles wound counter-clockwise seen from outside.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mesh {
    /// Vertex positions in world mm.
    pub vertices: Vec<[f64; 3]>,
    /// Vertex indices, counter-clockwise seen from outside.
    pub triangles: Vec<[u32; 3]>,
}

/// Corner offsets of a cube by bit: x = 1, y = 2, z = 4.
const CORNER: [[usize; 3]; 8] = [
    [0, 0, 0],
    [1, 0, 0],
    [0, 1, 0],
    [1, 1, 0],
    [0, 0, 1],
    [1, 0, 1],
    [0, 1, 1],
    [1, 1, 1],
];
/// Six tetrahedra around the diagonal 0-7 (Kuhn split: consistent between neighbouring cubes).
const TETS: [[usize; 4]; 6] = [
    [0, 1, 3, 7],
    [0, 3, 2, 7],
    [0, 2, 6, 7],
    [0, 6, 4, 7],
    [0, 4, 5, 7],
    [0, 5, 1, 7],
];

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// Gaussian blur (voxels) applied to the mask before extraction by default: it removes the voxel
/// staircase (a binary sphere's surface area is 27-32% too large without it, 0.5-1.7% with it).
pub const DEFAULT_SMOOTH_VOXELS: f64 = 1.0;

/// The surface of `label == value` (or of every nonzero label when `value` is `None`): the 0.5
/// iso-surface of the mask blurred by a Gaussian of `sigma_vox` voxels (0: the raw voxel boundary).
pub fn surface(label: &Volume, value: Option<i64>, sigma_vox: f64) -> Result<Mesh> {
    let [nx, ny, nz] = label.grid.shape;
    // Mask padded by one voxel on every side so that surfaces touching the border close.
    let (px, py, pz) = (nx + 2, ny + 2, nz + 2);
    let mut f = vec![0f32; px * py * pz];
    let mut any = false;
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let v = label.at(i, j, k) as i64;
                let inside = match value {
                    Some(t) => v == t,
                    None => v != 0,
                };
                if inside {
                    f[(i + 1) + px * ((j + 1) + py * (k + 1))] = 1.0;
                    any = true;
                }
            }
        }
    }
    if !any {
        return Err(Error::invalid(match value {
            Some(v) => format!("label value {v} does not occur in the label map"),
            None => "the label map has no nonzero voxel".to_string(),
        }));
    }
    if sigma_vox > 0.0 {
        // More padding would be needed for wide blurs; one voxel of zeros plus edge replication keeps
        // the surface closed for the small sigmas used here.
        f = crate::exec::cpu::intensity::blur(&f, [px, py, pz], [sigma_vox; 3])?;
    }
    let iso = 0.5f32;
    let a = &label.grid.affine;
    let to_world = |p: [f64; 3]| mat_apply(a, [p[0] - 1.0, p[1] - 1.0, p[2] - 1.0]);
    let mut mesh = Mesh::default();
    let mut edge_vertex: HashMap<(usize, usize), u32> = HashMap::new();
    let idx = |c: [usize; 3]| c[0] + px * (c[1] + py * c[2]);
    let mut vertex = |mesh: &mut Mesh, ca: [usize; 3], cb: [usize; 3]| -> u32 {
        let (ia, ib) = (idx(ca), idx(cb));
        let key = (ia.min(ib), ia.max(ib));
        *edge_vertex.entry(key).or_insert_with(|| {
            let (fa, fb) = (f[ia], f[ib]);
            let t = ((iso - fa) / (fb - fa)) as f64;
            let p = [0, 1, 2].map(|d| ca[d] as f64 + t * (cb[d] as f64 - ca[d] as f64));
            mesh.vertices.push(to_world(p));
            (mesh.vertices.len() - 1) as u32
        })
    };
    for k in 0..pz - 1 {
        for j in 0..py - 1 {
            for i in 0..px - 1 {
                let corners: [[usize; 3]; 8] = CORNER.map(|o| [i + o[0], j + o[1], k + o[2]]);
                let vals: [f32; 8] = corners.map(|c| f[idx(c)]);
                if vals.iter().all(|&v| v > iso) || vals.iter().all(|&v| v <= iso) {
                    continue;
                }
                for t in TETS {
                    let ins: Vec<usize> = t.iter().copied().filter(|&c| vals[c] > iso).collect();
                    let outs: Vec<usize> = t.iter().copied().filter(|&c| vals[c] <= iso).collect();
                    let tris: Vec<[(usize, usize); 3]> = match ins.len() {
                        1 => vec![[(ins[0], outs[0]), (ins[0], outs[1]), (ins[0], outs[2])]],
                        3 => vec![[(ins[0], outs[0]), (ins[1], outs[0]), (ins[2], outs[0])]],
                        2 => vec![
                            [(ins[0], outs[0]), (ins[0], outs[1]), (ins[1], outs[1])],
                            [(ins[0], outs[0]), (ins[1], outs[1]), (ins[1], outs[0])],
                        ],
                        _ => continue,
                    };
                    // Outward: from an inside corner towards an outside one (in voxel space).
                    let dir = sub(
                        corners[outs[0]].map(|x| x as f64),
                        corners[ins[0]].map(|x| x as f64),
                    );
                    for tri in tris {
                        let v = tri.map(|(a, b)| vertex(&mut mesh, corners[a], corners[b]));
                        if v[0] == v[1] || v[1] == v[2] || v[0] == v[2] {
                            continue;
                        }
                        let p = v.map(|q| mesh.vertices[q as usize]);
                        // Compare in voxel space: map the world normal back through the affine's sign.
                        let n = cross(sub(p[1], p[0]), sub(p[2], p[0]));
                        let dir_w = sub(mat_apply(a, dir), mat_apply(a, [0.0; 3]));
                        if dot(n, dir_w) < 0.0 {
                            mesh.triangles.push([v[0], v[2], v[1]]);
                        } else {
                            mesh.triangles.push(v);
                        }
                    }
                }
            }
        }
    }
    Ok(mesh)
}

impl Mesh {
    /// Total area in mm^2.
    pub fn area(&self) -> f64 {
        self.triangles
            .iter()
            .map(|t| {
                let p = t.map(|i| self.vertices[i as usize]);
                let c = cross(sub(p[1], p[0]), sub(p[2], p[0]));
                0.5 * dot(c, c).sqrt()
            })
            .sum()
    }

    /// Enclosed volume in mm^3 (divergence theorem; positive for outward winding).
    pub fn volume(&self) -> f64 {
        self.triangles
            .iter()
            .map(|t| {
                let p = t.map(|i| self.vertices[i as usize]);
                dot(p[0], cross(p[1], p[2])) / 6.0
            })
            .sum()
    }

    /// True when every edge is shared by exactly two triangles, in opposite directions.
    pub fn is_closed(&self) -> bool {
        let mut edges: HashMap<(u32, u32), i32> = HashMap::new();
        for t in &self.triangles {
            for e in 0..3 {
                let (a, b) = (t[e], t[(e + 1) % 3]);
                *edges.entry((a, b)).or_default() += 1;
            }
        }
        edges
            .iter()
            .all(|(&(a, b), &n)| n == 1 && edges.get(&(b, a)) == Some(&1))
    }

    /// Writes STL (binary), OBJ or PLY (ASCII) by extension, atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let bytes = match ext.as_str() {
            "stl" => {
                let mut b = vec![0u8; 80];
                b.extend_from_slice(&(self.triangles.len() as u32).to_le_bytes());
                for t in &self.triangles {
                    let p = t.map(|i| self.vertices[i as usize]);
                    let n = cross(sub(p[1], p[0]), sub(p[2], p[0]));
                    let len = dot(n, n).sqrt().max(1e-300);
                    for x in n.map(|v| v / len).iter().chain(p.iter().flatten()) {
                        b.extend_from_slice(&(*x as f32).to_le_bytes());
                    }
                    b.extend_from_slice(&[0, 0]);
                }
                b
            }
            "obj" => {
                let mut s = String::from("# voxaug surface, world mm (RAS)\n");
                for v in &self.vertices {
                    s.push_str(&format!("v {} {} {}\n", v[0], v[1], v[2]));
                }
                for t in &self.triangles {
                    s.push_str(&format!("f {} {} {}\n", t[0] + 1, t[1] + 1, t[2] + 1));
                }
                s.into_bytes()
            }
            "ply" => {
                let mut s = format!(
                    "ply\nformat ascii 1.0\ncomment voxaug surface, world mm (RAS)\nelement vertex {}\nproperty float x\nproperty float y\nproperty float z\nelement face {}\nproperty list uchar int vertex_indices\nend_header\n",
                    self.vertices.len(),
                    self.triangles.len()
                );
                for v in &self.vertices {
                    s.push_str(&format!("{} {} {}\n", v[0], v[1], v[2]));
                }
                for t in &self.triangles {
                    s.push_str(&format!("3 {} {} {}\n", t[0], t[1], t[2]));
                }
                s.into_bytes()
            }
            _ => {
                return Err(Error::Unsupported(format!(
                    "{}: mesh format by extension: .stl, .obj or .ply",
                    path.display()
                )))
            }
        };
        crate::io::write_atomic(path, &bytes)
    }

    /// Orthographic, Lambert-shaded rendering looking along `view` (world direction from the camera to
    /// the object: `[0, 1, 0]` looks from posterior to anterior... use `view_direction`).
    pub fn render(&self, view: [f64; 3], size: usize) -> Rgb {
        let mut img = Rgb::new(size, size, [255, 255, 255]);
        if self.triangles.is_empty() {
            return img;
        }
        let d = {
            let l = dot(view, view).sqrt();
            view.map(|x| x / l)
        };
        // Screen axes: up is world S unless looking along it, then A.
        let up0 = if d[2].abs() > 0.9 {
            [0.0, 1.0, 0.0]
        } else {
            [0.0, 0.0, 1.0]
        };
        let right = {
            let r = cross(d, up0);
            let l = dot(r, r).sqrt();
            r.map(|x| x / l)
        };
        let up = cross(right, d);
        let proj: Vec<[f64; 3]> = self
            .vertices
            .iter()
            .map(|v| [dot(*v, right), dot(*v, up), dot(*v, d)])
            .collect();
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for p in &proj {
            for a in 0..2 {
                lo[a] = lo[a].min(p[a]);
                hi[a] = hi[a].max(p[a]);
            }
        }
        let span = (hi[0] - lo[0]).max(hi[1] - lo[1]).max(1e-9);
        let scale = (size as f64 - 8.0) / span;
        let cx = (lo[0] + hi[0]) / 2.0;
        let cy = (lo[1] + hi[1]) / 2.0;
        let to_px = |p: [f64; 3]| {
            [
                (p[0] - cx) * scale + size as f64 / 2.0,
                size as f64 / 2.0 - (p[1] - cy) * scale,
                p[2],
            ]
        };
        let mut depth = vec![f64::INFINITY; size * size];
        for t in &self.triangles {
            let w = t.map(|i| self.vertices[i as usize]);
            let n = cross(sub(w[1], w[0]), sub(w[2], w[0]));
            let len = dot(n, n).sqrt();
            if len == 0.0 {
                continue;
            }
            let shade = (-dot(n, d) / len).max(0.0);
            if shade <= 0.0 {
                continue; // back face
            }
            let c = (40.0 + 200.0 * shade) as u8;
            let colour = [c, (c as f64 * 0.85) as u8, (c as f64 * 0.7) as u8];
            let p = t.map(|i| to_px(proj[i as usize]));
            let minx = p
                .iter()
                .map(|q| q[0])
                .fold(f64::INFINITY, f64::min)
                .floor()
                .max(0.0) as usize;
            let maxx = p
                .iter()
                .map(|q| q[0])
                .fold(f64::NEG_INFINITY, f64::max)
                .ceil()
                .min(size as f64 - 1.0) as usize;
            let miny = p
                .iter()
                .map(|q| q[1])
                .fold(f64::INFINITY, f64::min)
                .floor()
                .max(0.0) as usize;
            let maxy = p
                .iter()
                .map(|q| q[1])
                .fold(f64::NEG_INFINITY, f64::max)
                .ceil()
                .min(size as f64 - 1.0) as usize;
            let area = (p[1][0] - p[0][0]) * (p[2][1] - p[0][1])
                - (p[2][0] - p[0][0]) * (p[1][1] - p[0][1]);
            if area.abs() < 1e-12 {
                continue;
            }
            for y in miny..=maxy {
                for x in minx..=maxx {
                    let (fx, fy) = (x as f64 + 0.5, y as f64 + 0.5);
                    let e = |a: [f64; 3], b: [f64; 3]| {
                        (b[0] - a[0]) * (fy - a[1]) - (b[1] - a[1]) * (fx - a[0])
                    };
                    let (w0, w1, w2) = (
                        e(p[1], p[2]) / area,
                        e(p[2], p[0]) / area,
                        e(p[0], p[1]) / area,
                    );
                    if w0 < 0.0 || w1 < 0.0 || w2 < 0.0 {
                        continue;
                    }
                    let z = w0 * p[0][2] + w1 * p[1][2] + w2 * p[2][2];
                    let di = y * size + x;
                    if z < depth[di] {
                        depth[di] = z;
                        img.set(x, y, colour);
                    }
                }
            }
        }
        // Orientation cue: the world direction each edge of the picture faces.
        let ink = [30, 30, 30];
        let letter = |v: [f64; 3]| {
            let a = (0..3)
                .max_by(|&i, &j| v[i].abs().total_cmp(&v[j].abs()))
                .unwrap_or(0);
            let pos = v[a] >= 0.0;
            ["RL", "AP", "SI"][a]
                .chars()
                .nth(if pos { 0 } else { 1 })
                .unwrap_or('?')
        };
        let neg = |v: [f64; 3]| v.map(|x| -x);
        let mid = size / 2;
        super::font::text(
            &mut img,
            &letter(right).to_string(),
            size.saturating_sub(10),
            mid - 4,
            ink,
        );
        super::font::text(&mut img, &letter(neg(right)).to_string(), 2, mid - 4, ink);
        super::font::text(&mut img, &letter(up).to_string(), mid - 4, 2, ink);
        super::font::text(
            &mut img,
            &letter(neg(up)).to_string(),
            mid - 4,
            size.saturating_sub(10),
            ink,
        );
        // Scale bar: the longest round length (1, 2 or 5 x 10^n mm) under a quarter of the width.
        let mm_per_px = 1.0 / scale;
        let most = size as f64 / 4.0 * mm_per_px;
        let mut len = 10f64.powf(most.log10().floor());
        for m in [5.0, 2.0] {
            if len * m <= most {
                len *= m;
                break;
            }
        }
        let px = (len * scale).round() as usize;
        let (x0, y0) = (12usize, size.saturating_sub(20));
        if px >= 4 && size >= 64 {
            for y in y0..y0 + 3 {
                for x in x0..x0 + px {
                    img.set(x, y, ink);
                }
            }
            let label = if len >= 1.0 {
                format!("{len:.0} mm")
            } else {
                format!("{len} mm")
            };
            super::font::text(&mut img, &label, x0, y0 + 5, ink);
        }
        img
    }
}

/// Viewing direction (camera -> object) for a named view: anterior (camera in front of the face),
/// posterior, left, right, superior, inferior.
pub fn view_direction(name: &str) -> Result<[f64; 3]> {
    Ok(match name {
        "anterior" => [0.0, -1.0, 0.0],
        "posterior" => [0.0, 1.0, 0.0],
        "left" => [1.0, 0.0, 0.0],
        "right" => [-1.0, 0.0, 0.0],
        "superior" => [0.0, 0.0, -1.0],
        "inferior" => [0.0, 0.0, 1.0],
        other => {
            return Err(Error::invalid(format!(
                "unknown view `{other}` (anterior, posterior, left, right, superior, inferior)"
            )))
        }
    })
}
