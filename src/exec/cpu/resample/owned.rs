//! Resampling a subject the run owns (`voxaug apply`, Python's `Pipeline.apply`): the copies (flip,
//! crop, pad) in the volumes' own buffers, and other maps one volume at a time, each input buffer
//! handed to the next output as soon as it is read. The same values as [`resample_subject`].

use super::copy::{crop_in_place, crop_offset, flip_axes, flip_in_place, pad_in_place, pad_lead};
use super::{copy_checked, integer_map, resample_many, resample_subject, Outside, Params, Spec};
use crate::error::Result;
use crate::transform::SamplingMap;
use crate::volume::Subject;
use crate::voxels::Voxel;

/// [`resample_subject`] on a subject the run owns, with the same values. Flips, crops inside the
/// volume, pads with a constant fill and the identity run in its own buffers (`resample_in_place`);
/// other maps without a displacement field resample one volume at a time and give each input buffer
/// back to the pool as soon as its output exists, so the next volume of the same type and shape (a
/// second modality) is written into it instead of fresh memory: a subject of k images on one grid
/// peaks at k + 1 images, not 2k.
pub fn resample_subject_owned(s: Subject, map: &SamplingMap) -> Result<Subject> {
    Ok(resample_owned(s, map, false)?.0)
}

/// [`resample_subject_owned`], and, as [`resample_subject_checked`](super::resample_subject_checked)
/// does, the images' largest |value| where a copy took it on the way (`None`: scan the output).
pub fn resample_subject_owned_checked(
    s: Subject,
    map: &SamplingMap,
) -> Result<(Subject, Option<f32>)> {
    resample_owned(s, map, true)
}

fn resample_owned(
    mut s: Subject,
    map: &SamplingMap,
    check: bool,
) -> Result<(Subject, Option<f32>)> {
    if let Some(seen) = resample_in_place(&mut s, map, check)? {
        return Ok((s, seen));
    }
    if map.field.is_some() {
        // The field's coordinates are shared by every volume: all in one pass.
        let out = resample_subject(&s, map)?;
        crate::exec::cpu::alloc::recycle_subject(s);
        return Ok((out, None));
    }
    let in_shape = s.grid().expect("subject has volumes").shape;
    let p = Params::new(&map.total(), in_shape, map.grid.shape);
    // The images' largest |value| bits, while every image so far was a checked copy.
    let copy = integer_map(&p).filter(|_| check && !map.nearest_images);
    let mut seen = copy.map(|_| 0);
    for v in s.images.iter_mut().chain(s.labels.iter_mut()) {
        let spec = Spec::under_map(v, map)?;
        let out = match (spec, &copy) {
            (Spec::Linear(src, outside), Some(im)) => {
                let (out, m) = copy_checked(src, outside, &p, im)?;
                seen = seen.map(|s| s.max(m));
                out.into()
            }
            _ => resample_many(&[spec], &p)?
                .pop()
                .expect("one output per spec"),
        };
        crate::exec::cpu::alloc::recycle(std::mem::replace(&mut v.data, out));
        v.grid = map.grid.clone();
    }
    Ok((s, seen.map(f32::from_bits)))
}

/// [`resample_subject`] in the subject's own buffers where the map allows it: a map that only reverses
/// axes (flip, onto the same shape; every output voxel reads one input voxel) swaps voxels in place, a
/// crop wholly inside the input moves its rows to the start of the buffer, a pad with a constant fill
/// (not `edge`) grows the buffer and moves its rows towards the end, the identity only takes the map's
/// grid. Returns `None`, leaving `s` as it was, for any other map, else what
/// [`resample_subject_owned_checked`] returns beside the subject (with `check`: a pad's largest
/// |value|, from its input and fill; the others' outputs are scanned after, a crop's being smaller
/// than its input). The same values as [`resample_subject`] (a copy, exact for every type, in every
/// case).
fn resample_in_place(
    s: &mut Subject,
    map: &SamplingMap,
    check: bool,
) -> Result<Option<Option<f32>>> {
    let Some(in_grid) = s.grid() else {
        return Ok(None);
    };
    if map.field.is_some() {
        return Ok(None);
    }
    let p = Params::new(&map.total(), in_grid.shape, map.grid.shape);
    // A mapped input (a file's pages) would copy each page it writes to, one fault at a time: 2-3x
    // slower than resampling it into a fresh buffer (reading a mapping is cheap). Only the identity
    // stays in place.
    let mapped = s.images.iter().chain(&s.labels).any(|v| v.data.is_mapped());
    if mapped && flip_axes(&p) != Some([false; 3]) {
        return Ok(None);
    }
    if let Some(flip) = flip_axes(&p) {
        for v in s.images.iter_mut().chain(s.labels.iter_mut()) {
            crate::with_voxels!(&mut v.data, d => flip_in_place(d, p.in_shape, flip));
            v.grid = map.grid.clone();
        }
    } else if let Some(off) = crop_offset(&p) {
        for v in s.images.iter_mut().chain(s.labels.iter_mut()) {
            crate::with_voxels!(&mut v.data, d => crop_in_place(d, p.in_shape, p.out_shape, off));
            v.grid = map.grid.clone();
        }
    } else if let Some(lead) = pad_lead(&p) {
        // Every volume's constant fill, before any volume changes (an edge fill is not in place).
        let fills = s
            .images
            .iter()
            .chain(&s.labels)
            .map(|v| {
                Ok(match Spec::under_map(v, map)? {
                    Spec::Linear(_, Outside::Value(f)) => Some(f64::from(f)),
                    Spec::Linear(_, Outside::Edge) => None,
                    Spec::Nearest(_, f) | Spec::Argmax(_, f) => f,
                })
            })
            .collect::<Result<Option<Vec<f64>>>>()?;
        let Some(fills) = fills else {
            return Ok(None);
        };
        // A pad keeps every input voxel: its images' largest |value| is their input's or a fill.
        let seen = check.then(|| {
            let input = s.images.iter().filter_map(|v| v.data.as_f32());
            let fill = fills[..s.images.len()]
                .iter()
                .map(|&f| (f as f32).abs().to_bits());
            input
                .map(crate::stats::max_abs_bits)
                .chain(fill)
                .max()
                .map_or(0.0, f32::from_bits)
        });
        for (v, f) in s.images.iter_mut().chain(s.labels.iter_mut()).zip(fills) {
            crate::with_voxels!(&mut v.data, d => pad_in_place(d.vec_mut()?, p.in_shape, p.out_shape, lead, Voxel::from_f64(f))?);
            v.grid = map.grid.clone();
        }
        return Ok(Some(seen));
    } else {
        return Ok(None);
    }
    Ok(Some(None))
}
