//! Voxel storage. Images hold `f32`; label maps keep their integer type in memory (`u8`, `i8`, `u16`,
//! `i16`, `u32`, `i32`), so a `uint8` segmentation moves a quarter of the bytes a float copy would and
//! labels past 2^24 stay exact.
//!
//! Kernels are written once, generic over [`Voxel`], and instantiated per type through
//! [`with_voxels!`](crate::with_voxels).

mod buf;

use crate::error::{Error, Result};
use crate::volume::DType;
pub use buf::Buf;

/// A voxel type voxaug stores in memory.
pub trait Voxel:
    bytemuck::Pod + Copy + Default + PartialEq + PartialOrd + Send + Sync + std::fmt::Debug + 'static
{
    /// The matching [`DType`].
    const DTYPE: DType;
    /// The value as f32 (exact for integers up to 2^24).
    fn to_f32(self) -> f32;
    /// The value as f64 (exact for every stored type).
    fn to_f64(self) -> f64;
    /// The value of `x` in this type (saturating, truncating towards zero for integers: callers pass
    /// values already known to fit, such as a fill value or a checked label).
    fn from_f64(x: f64) -> Self;
    /// Wraps a buffer of this type (a `Vec` or a [`Buf`]).
    fn wrap(v: impl Into<Buf<Self>>) -> Voxels;
    /// The buffer of `v` when it holds this type (else `v` back).
    fn unwrap(v: Voxels) -> std::result::Result<Buf<Self>, Voxels>;
    /// A view of `v`'s buffer when it holds this type.
    fn slice(v: &Voxels) -> Option<&[Self]>;
}

macro_rules! voxel_impl {
    ($($variant:ident $t:ty),*) => {$(
        impl Voxel for $t {
            const DTYPE: DType = DType::$variant;
            #[inline(always)]
            fn to_f32(self) -> f32 {
                self as f32
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            fn wrap(v: impl Into<Buf<Self>>) -> Voxels {
                Voxels::$variant(v.into())
            }
            fn unwrap(v: Voxels) -> std::result::Result<Buf<Self>, Voxels> {
                match v {
                    Voxels::$variant(x) => Ok(x),
                    other => Err(other),
                }
            }
            fn slice(v: &Voxels) -> Option<&[Self]> {
                match v {
                    Voxels::$variant(x) => Some(x),
                    _ => None,
                }
            }
        }
        impl From<Vec<$t>> for Voxels {
            fn from(v: Vec<$t>) -> Voxels {
                Voxels::$variant(v.into())
            }
        }
        impl From<Buf<$t>> for Voxels {
            fn from(v: Buf<$t>) -> Voxels {
                Voxels::$variant(v)
            }
        }
    )*};
}

/// Voxel data in i-fastest order, in its in-memory type, in a [`Buf`] (a `Vec`, or a mapped file).
#[derive(Clone, Debug, PartialEq)]
pub enum Voxels {
    /// Intensities (every image).
    F32(Buf<f32>),
    /// 8-bit unsigned labels.
    U8(Buf<u8>),
    /// 8-bit signed labels.
    I8(Buf<i8>),
    /// 16-bit unsigned labels.
    U16(Buf<u16>),
    /// 16-bit signed labels.
    I16(Buf<i16>),
    /// 32-bit unsigned labels.
    U32(Buf<u32>),
    /// 32-bit signed labels.
    I32(Buf<i32>),
}

voxel_impl!(F32 f32, U8 u8, I8 i8, U16 u16, I16 i16, U32 u32, I32 i32);

/// Runs `$body` with `$x` bound to the typed buffer inside a [`Voxels`] (by value, `&` or `&mut`,
/// following the expression), once per variant: the body is compiled for every voxel type.
#[macro_export]
macro_rules! with_voxels {
    ($v:expr, $x:ident => $body:expr) => {
        match $v {
            $crate::voxels::Voxels::F32($x) => $body,
            $crate::voxels::Voxels::U8($x) => $body,
            $crate::voxels::Voxels::I8($x) => $body,
            $crate::voxels::Voxels::U16($x) => $body,
            $crate::voxels::Voxels::I16($x) => $body,
            $crate::voxels::Voxels::U32($x) => $body,
            $crate::voxels::Voxels::I32($x) => $body,
        }
    };
}

/// Runs `$body` with `$t` naming the Rust type of an in-memory [`DType`] (f64 is stored as f32).
#[macro_export]
macro_rules! with_dtype {
    ($d:expr, $t:ident => $body:expr) => {
        match $d {
            $crate::volume::DType::F32 | $crate::volume::DType::F64 => {
                type $t = f32;
                $body
            }
            $crate::volume::DType::U8 => {
                type $t = u8;
                $body
            }
            $crate::volume::DType::I8 => {
                type $t = i8;
                $body
            }
            $crate::volume::DType::U16 => {
                type $t = u16;
                $body
            }
            $crate::volume::DType::I16 => {
                type $t = i16;
                $body
            }
            $crate::volume::DType::U32 => {
                type $t = u32;
                $body
            }
            $crate::volume::DType::I32 => {
                type $t = i32;
                $body
            }
        }
    };
}

impl Voxels {
    /// Number of voxels.
    pub fn len(&self) -> usize {
        with_voxels!(self, x => x.len())
    }

    /// True when there are no voxels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The in-memory type.
    pub fn dtype(&self) -> DType {
        with_voxels!(self, x => element_dtype(&x[..]))
    }

    /// The f32 buffer of an image (`None` for integer labels).
    pub fn as_f32(&self) -> Option<&[f32]> {
        f32::slice(self)
    }

    /// The f32 buffer of an image, mutable (`None` for integer labels).
    pub fn as_f32_mut(&mut self) -> Option<&mut Buf<f32>> {
        match self {
            Voxels::F32(x) => Some(x),
            _ => None,
        }
    }

    /// Smallest and largest voxel value, in f64 (exact for every stored type; f32 NaNs are skipped).
    /// An empty buffer gives `(inf, -inf)`.
    pub fn range(&self) -> (f64, f64) {
        use rayon::prelude::*;
        with_voxels!(self, d => d
        .par_chunks(1 << 16)
        .map(|c| {
            c.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v.to_f64()), b.max(v.to_f64()))
            })
        })
        .reduce(
            || (f64::INFINITY, f64::NEG_INFINITY),
            |x, y| (x.0.min(y.0), x.1.max(y.1)),
        ))
    }

    /// Voxel `i` as f32.
    pub fn get(&self, i: usize) -> f32 {
        with_voxels!(self, x => x[i].to_f32())
    }

    /// Every voxel as f32 (a copy; exact for labels up to 2^24).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        use rayon::prelude::*;
        match self {
            Voxels::F32(x) => x.to_vec(),
            other => with_voxels!(other, x => x.par_iter().map(|v| v.to_f32()).collect()),
        }
    }

    /// The voxels as f32: borrowed for images, converted for labels.
    pub fn values(&self) -> std::borrow::Cow<'_, [f32]> {
        match self {
            Voxels::F32(x) => std::borrow::Cow::Borrowed(x),
            other => std::borrow::Cow::Owned(other.to_f32_vec()),
        }
    }

    /// Whether the voxels are a mapped file's pages (see [`Buf`]).
    pub fn is_mapped(&self) -> bool {
        with_voxels!(self, x => x.is_mapped())
    }

    /// The raw bytes (native endianness).
    pub fn as_bytes(&self) -> &[u8] {
        with_voxels!(self, x => bytemuck::cast_slice(&x[..]))
    }

    /// The raw bytes, writable (native endianness).
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        with_voxels!(self, x => bytemuck::cast_slice_mut(&mut x[..]))
    }

    /// `n` zero voxels of an in-memory type (f64 is held as f32); an allocation failure is an error.
    pub fn zeroed(dtype: DType, n: usize) -> Result<Voxels> {
        with_dtype!(dtype, T => Ok(T::wrap(crate::exec::cpu::alloc::zeroed::<T>(n)?)))
    }

    /// A buffer of `n` voxels whose every element the caller overwrites (recycled when one is free).
    pub fn output(dtype: DType, n: usize) -> Result<Voxels> {
        with_dtype!(dtype, T => Ok(T::wrap(crate::exec::cpu::alloc::output::<T>(n)?)))
    }

    /// Label values given as f32 in the narrowest integer type holding them all (unsigned when none is
    /// negative). Refuses non-finite or non-integer values and values past the 32-bit types.
    pub fn labels_from_f32(data: &[f32]) -> Result<Voxels> {
        let (lo, hi) = check_label_values(data)?;
        Ok(Voxels::labels_as(data, narrowest_label_type(lo, hi)))
    }

    /// Label values (already checked to be integers in range of `dtype`) converted to `dtype`.
    pub(crate) fn labels_as(data: &[f32], dtype: DType) -> Voxels {
        use rayon::prelude::*;
        with_dtype!(dtype, T => T::wrap(data.par_iter().map(|&v| T::from_f64(v as f64)).collect::<Vec<T>>()))
    }
}

fn element_dtype<T: Voxel>(_: &[T]) -> DType {
    T::DTYPE
}

/// The smallest integer type holding `lo..=hi` (unsigned when `lo >= 0`).
pub fn narrowest_label_type(lo: f64, hi: f64) -> DType {
    if lo >= 0.0 {
        if hi <= 255.0 {
            DType::U8
        } else if hi <= 65535.0 {
            DType::U16
        } else {
            DType::U32
        }
    } else if lo >= -128.0 && hi <= 127.0 {
        DType::I8
    } else if lo >= -32768.0 && hi <= 32767.0 {
        DType::I16
    } else {
        DType::I32
    }
}

/// Checks that f32 label values are finite integers that fit a 32-bit integer type; returns their
/// range.
pub fn check_label_values(data: &[f32]) -> Result<(f64, f64)> {
    use rayon::prelude::*;
    if let Some(v) = data.par_iter().find_any(|v| !v.is_finite()) {
        let n = data.iter().filter(|v| !v.is_finite()).count();
        return Err(Error::invalid(format!(
            "label map contains {n} NaN or infinite voxel value(s) (for example {v}); label maps \
             must hold integer labels"
        )));
    }
    if !crate::stats::all_whole_within(data, f64::MIN, f64::MAX) {
        let v = data
            .iter()
            .find(|v| v.fract() != 0.0)
            .copied()
            .unwrap_or(0.0);
        return Err(Error::invalid(format!(
            "label map contains the non-integer value {v}; label maps must hold integer labels"
        )));
    }
    let (lo, hi) = crate::stats::min_max(data);
    let (lo, hi) = (lo as f64, hi as f64);
    if lo < i32::MIN as f64 || hi > u32::MAX as f64 || (lo < 0.0 && hi > i32::MAX as f64) {
        return Err(Error::invalid(format!(
            "label values span {lo}..{hi}, past what a 32-bit integer type holds; label maps hold \
             uint8..uint32 or int8..int32 labels"
        )));
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_take_the_narrowest_type() {
        let t = |v: &[f32]| Voxels::labels_from_f32(v).unwrap().dtype();
        assert_eq!(t(&[0.0, 255.0]), DType::U8);
        assert_eq!(t(&[0.0, 256.0]), DType::U16);
        assert_eq!(t(&[0.0, 70000.0]), DType::U32);
        assert_eq!(t(&[-1.0, 127.0]), DType::I8);
        assert_eq!(t(&[-1.0, 128.0]), DType::I16);
        assert_eq!(t(&[-40000.0, 1.0]), DType::I32);
        assert!(Voxels::labels_from_f32(&[0.5]).is_err());
        assert!(Voxels::labels_from_f32(&[f32::NAN]).is_err());
        assert!(Voxels::labels_from_f32(&[-1.0, 3e9]).is_err());
        assert_eq!(
            Voxels::labels_from_f32(&[-3.0, 7.0]).unwrap(),
            Voxels::from(vec![-3i8, 7])
        );
    }
}
