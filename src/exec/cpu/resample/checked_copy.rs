//! Copies that check what they copy: the images of a map onto voxel centres (flip, crop, pad,
//! permutations) with their largest |value| taken row by row while the row is in cache, which is how
//! `apply` checks a pipeline of copies for NaN without a separate scan of its input.

use super::copy::{integer_map, row_integer, IntMap};
use super::spec::fill_of;
use super::stream::{crop_streamed, streamed_crop};
use super::{drive_max, resample_many, resample_subject, Outside, Params, Spec};
use crate::error::Result;
use crate::transform::SamplingMap;
use crate::volume::{Subject, Volume};

/// [`resample_subject`], and, where the map is a copy onto voxel centres (flip, crop, pad,
/// permutations) of images sampled trilinearly, their largest |value| (NaN or +inf when one is not
/// finite), taken from each output row as it is written (`None`: not taken; scan the output).
pub fn resample_subject_checked(s: &Subject, map: &SamplingMap) -> Result<(Subject, Option<f32>)> {
    let in_grid = s.grid().expect("subject has volumes");
    let p = Params::new(&map.total(), in_grid.shape, map.grid.shape);
    let Some(im) = integer_map(&p).filter(|_| map.field.is_none() && !map.nearest_images) else {
        return Ok((resample_subject(s, map)?, None));
    };
    let mut seen = 0;
    let mut images = Vec::with_capacity(s.images.len());
    for v in &s.images {
        let Spec::Linear(src, outside) = Spec::under_map(v, map)? else {
            unreachable!("images are sampled trilinearly here");
        };
        let (data, m) = copy_checked(src, outside, &p, &im)?;
        seen = seen.max(m);
        images.push(Volume {
            data: data.into(),
            grid: map.grid.clone(),
            kind: v.kind,
            dtype: v.dtype,
        });
    }
    let specs: Vec<Spec<'_>> = s
        .labels
        .iter()
        .map(|v| Spec::under_map(v, map))
        .collect::<Result<_>>()?;
    let labels = resample_many(&specs, &p)?
        .into_iter()
        .zip(&s.labels)
        .map(|(data, v)| Volume {
            data,
            grid: map.grid.clone(),
            kind: v.kind,
            dtype: v.dtype,
        })
        .collect();
    let out = Subject {
        images,
        labels,
        names: s.names.clone(),
    };
    Ok((out, Some(f32::from_bits(seen))))
}

/// An image copied through an integer map, with its largest |value| bits (past +inf's: NaN), taken
/// from each row's input values while they are in cache (and from the fill where a row holds it).
pub(super) fn copy_checked(
    src: &[f32],
    outside: Outside,
    p: &Params,
    im: &IntMap,
) -> Result<(Vec<f32>, u32)> {
    if let Some(off) = streamed_crop::<f32>(p) {
        // Each row's source was just read: checked there (the row itself went past the cache).
        return crop_streamed(src, p, off, crate::stats::max_abs_bits_sequential);
    }
    let fill = fill_of(outside);
    let fill_bits = fill.map_or(0, |f| f.abs().to_bits());
    drive_max(p, None, false, |j, k, _, row| {
        let held = row_integer(src, fill, p, im, j, k, row);
        let filled = held.len() < row.len();
        let m = crate::stats::max_abs_bits_sequential(&row[held]);
        if filled {
            m.max(fill_bits)
        } else {
            m
        }
    })
}
