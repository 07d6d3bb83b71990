//! Label value maps (`remap_labels`, `keep_labels`, `sequential_labels`): a lookup table from old to
//! new label values, applied to label maps only (images are untouched) by both executors
//! (`exec/cpu/labels.rs`, `shaders/labels.wgsl`).

use crate::volume::DType;

/// A map of label values: each listed key goes to its value; every other value is kept (`others:
/// None`) or set to `others`.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelLut {
    /// Old values, sorted, distinct.
    pub keys: Vec<i64>,
    /// New value of each key.
    pub values: Vec<i64>,
    /// What values that are not keys become (None: themselves).
    pub others: Option<i64>,
}

impl LabelLut {
    /// A map from `(old, new)` pairs (later pairs win for a repeated key).
    pub fn new(pairs: impl IntoIterator<Item = (i64, i64)>, others: Option<i64>) -> LabelLut {
        let m: std::collections::BTreeMap<i64, i64> = pairs.into_iter().collect();
        LabelLut {
            keys: m.keys().copied().collect(),
            values: m.values().copied().collect(),
            others,
        }
    }

    /// The new value of `x`.
    #[inline]
    pub fn get(&self, x: i64) -> i64 {
        match self.keys.binary_search(&x) {
            Ok(i) => self.values[i],
            Err(_) => self.others.unwrap_or(x),
        }
    }

    /// `self` then `next` as one map.
    pub fn then(&self, next: &LabelLut) -> LabelLut {
        let mut keys: Vec<i64> = self.keys.iter().chain(&next.keys).copied().collect();
        keys.sort_unstable();
        keys.dedup();
        let values = keys.iter().map(|&k| next.get(self.get(k))).collect();
        LabelLut {
            keys,
            values,
            others: match self.others {
                Some(c) => Some(next.get(c)),
                None => next.others,
            },
        }
    }

    /// Range of the new values of inputs within `[lo, hi]` (a superset when keys are sparse).
    pub fn out_range(&self, lo: i64, hi: i64) -> (i64, i64) {
        let mut r = match self.others {
            Some(c) => (c, c),
            None => (lo, hi),
        };
        for (k, v) in self.keys.iter().zip(&self.values) {
            if (lo..=hi).contains(k) {
                r = (r.0.min(*v), r.1.max(*v));
            }
        }
        r
    }
}

/// The label type a label map of `dtype` holding values in `[lo, hi]` needs for a plan whose label
/// maps take the values in `[need_lo, need_hi]` at some stage: `dtype` when it holds them, else the
/// narrowest integer type that does (both executors widen to it before the first stage, so their
/// outputs have the same type).
pub fn widened(dtype: DType, need: (i64, i64)) -> crate::Result<DType> {
    let fits = |d: DType| {
        d.int_range()
            .is_some_and(|(a, b)| need.0 as f64 >= a && need.1 as f64 <= b)
    };
    if fits(dtype) {
        return Ok(dtype);
    }
    let d = crate::voxels::narrowest_label_type(need.0 as f64, need.1 as f64);
    if !fits(d) {
        return Err(crate::Error::invalid(format!(
            "label values would span [{}, {}], which no 32-bit integer type holds",
            need.0, need.1
        )));
    }
    Ok(d)
}

/// The label type a label map needs through `stages` (see [`widened`]): its values' range, each label
/// map's new values, and 0 where a spatial pass may fill.
pub fn plan_dtype(v: &crate::Volume, stages: &[super::Stage]) -> crate::Result<DType> {
    let (lo, hi) = v.data.range();
    let (mut lo, mut hi) = (lo as i64, hi as i64);
    let (mut need_lo, mut need_hi) = (lo, hi);
    for s in stages {
        match s {
            super::Stage::Labels(lut) => (lo, hi) = lut.out_range(lo, hi),
            super::Stage::Spatial(_) => (lo, hi) = (lo.min(0), hi.max(0)),
            super::Stage::Intensity(_) => {}
        }
        need_lo = need_lo.min(lo);
        need_hi = need_hi.max(hi);
    }
    widened(v.data.dtype(), (need_lo, need_hi))
}
