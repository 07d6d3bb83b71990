//! [`Buf`]: the storage behind [`Voxels`](super::Voxels): a heap `Vec`, or the voxel bytes of an
//! uncompressed file mapped into memory (a private, copy-on-write mapping of the page cache, Unix).
//!
//! Mapping spares a reader the fresh memory it would copy the file into: the pages are the kernel's
//! cached copy of the file, already there after the file was written or read once. On a 2-core VM a
//! one-shot `voxaug apply` (rotate) of a 256^3 float image + uint8 label read its inputs in 20-22 ms
//! with positioned reads into new buffers, and ran in 126 ms end to end with them against 95 ms with
//! the inputs mapped (medians of 11, alternated; `docs/performance-log.md`, session 23). Writing to a
//! mapped buffer copies the written pages (the file never changes); dropping it unmaps it.
//!
//! The price of a mapping: if another program shrinks the file in place while it is mapped (a
//! truncating rewrite such as `nib.save` to the same path; a replacing rename like voxaug's own
//! writes is safe), the next access to the lost pages ends the process with `SIGBUS`. So readers map
//! only where the process allows it ([`crate::io::set_mapped_reads`]): the `voxaug` command line does
//! (its inputs are read, used and dropped within one run), the library and the Python package do not
//! unless asked.

use super::Voxel;
use std::ops::{Deref, DerefMut};

/// Voxel storage: a `Vec<T>` or a private file mapping, used as a slice (`Deref<Target = [T]>`).
pub struct Buf<T: Voxel> {
    repr: Repr<T>,
}

enum Repr<T> {
    Heap(Vec<T>),
    #[cfg(unix)]
    Map(Map<T>),
}

/// A private read-write mapping of a file; `data` points `len` elements into it.
#[cfg(unix)]
struct Map<T> {
    base: std::ptr::NonNull<libc::c_void>,
    bytes: usize,
    data: std::ptr::NonNull<T>,
    len: usize,
}

// SAFETY: the mapping is private to this process and owned by the `Map` (unmapped once, on drop);
// shared or sent, it behaves like the `Vec<T>` it stands for.
#[cfg(unix)]
unsafe impl<T: Send> Send for Map<T> {}
#[cfg(unix)]
unsafe impl<T: Sync> Sync for Map<T> {}

#[cfg(unix)]
impl<T> Drop for Map<T> {
    fn drop(&mut self) {
        // SAFETY: `base`/`bytes` are the mapping made in `Buf::map`, unmapped only here.
        unsafe {
            libc::munmap(self.base.as_ptr(), self.bytes);
        }
    }
}

impl<T: Voxel> Buf<T> {
    /// Maps `n` voxels starting `offset` bytes into `file` (private, copy-on-write; Unix). `None` when
    /// the file cannot be mapped here: no mmap (not Unix), an offset not a multiple of the voxel
    /// size, a file shorter than the voxels (callers report truncation), or a refused `mmap` (then a
    /// plain read does the job).
    pub fn map(file: &std::fs::File, offset: u64, n: usize) -> Option<Buf<T>> {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            let size = std::mem::size_of::<T>();
            let off = usize::try_from(offset).ok()?;
            let bytes = n.checked_mul(size)?.checked_add(off)?;
            if n == 0 || size == 0 || off % size != 0 || file.metadata().ok()?.len() < bytes as u64
            {
                return None;
            }
            // SAFETY: a fresh private mapping of `bytes` bytes of an open file (past its end is
            // excluded above); nothing else refers to the new range.
            let base = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    bytes,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE,
                    file.as_raw_fd(),
                    0,
                )
            };
            if base == libc::MAP_FAILED {
                return None;
            }
            let base = std::ptr::NonNull::new(base)?;
            // SAFETY: `off` is inside the mapping; the page-aligned base plus a multiple of the
            // voxel size is aligned for `T` (at most 4-byte alignment here, pages are 4 KiB or more).
            let data = unsafe { base.cast::<u8>().add(off).cast::<T>() };
            debug_assert!(data.as_ptr().is_aligned());
            Some(Buf {
                repr: Repr::Map(Map {
                    base,
                    bytes,
                    data,
                    len: n,
                }),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = (file, offset, n);
            None
        }
    }

    /// Whether the voxels live in a file mapping (see the module notes).
    pub fn is_mapped(&self) -> bool {
        !matches!(self.repr, Repr::Heap(_))
    }

    /// The `Vec` of a heap buffer (taken: it is not recycled); a mapped buffer back as `Err`.
    pub fn into_vec(mut self) -> Result<Vec<T>, Buf<T>> {
        match &mut self.repr {
            Repr::Heap(v) => Ok(std::mem::take(v)),
            #[cfg(unix)]
            Repr::Map(_) => Err(self),
        }
    }

    /// The voxels as a `Vec`: a heap buffer's own, a mapping's copied.
    pub fn into_owned_vec(self) -> Vec<T> {
        self.into_vec().unwrap_or_else(|b| b.to_vec())
    }

    /// The buffer as a `Vec` that may grow or shrink: a mapped buffer is first copied to the heap
    /// (an allocation failure is an error).
    pub fn vec_mut(&mut self) -> crate::error::Result<&mut Vec<T>> {
        #[cfg(unix)]
        if let Repr::Map(m) = &self.repr {
            // SAFETY: the mapping holds `len` initialised elements.
            let src = unsafe { std::slice::from_raw_parts(m.data.as_ptr(), m.len) };
            self.repr = Repr::Heap(crate::exec::cpu::alloc::copy_of(src)?);
        }
        match &mut self.repr {
            Repr::Heap(v) => Ok(v),
            #[cfg(unix)]
            Repr::Map(_) => unreachable!("copied to the heap above"),
        }
    }

    /// Hands a heap buffer's spare capacity back to the allocator (a mapping stays as it is, its
    /// unused tail is unmapped with the rest).
    pub fn shrink_to_fit(&mut self) {
        if let Repr::Heap(v) = &mut self.repr {
            v.shrink_to_fit();
        }
    }

    /// Shortens the buffer to `len` elements (no effect when it is not longer).
    pub fn truncate(&mut self, len: usize) {
        match &mut self.repr {
            Repr::Heap(v) => v.truncate(len),
            #[cfg(unix)]
            Repr::Map(m) => m.len = m.len.min(len),
        }
    }
}

/// A large heap buffer goes to the recycling pool when dropped
/// ([`crate::exec::cpu::alloc::recycle`]), for the next output of its size and type: a loop that drops
/// its outputs gets faulted-in memory back instead of fresh pages from the OS.
impl<T: Voxel> Drop for Buf<T> {
    fn drop(&mut self) {
        if let Repr::Heap(v) = &mut self.repr {
            if std::mem::size_of_val(v.as_slice()) >= crate::exec::cpu::alloc::RECYCLE_MIN {
                crate::exec::cpu::alloc::recycle(T::wrap(std::mem::take(v)));
            }
        }
    }
}

impl<T: Voxel> Deref for Buf<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        match &self.repr {
            Repr::Heap(v) => v,
            // SAFETY: `len` initialised elements, valid as long as the mapping (`self`).
            #[cfg(unix)]
            Repr::Map(m) => unsafe { std::slice::from_raw_parts(m.data.as_ptr(), m.len) },
        }
    }
}

impl<T: Voxel> DerefMut for Buf<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        match &mut self.repr {
            Repr::Heap(v) => v,
            // SAFETY: as in `deref`; the mapping is writable and private (writes copy pages).
            #[cfg(unix)]
            Repr::Map(m) => unsafe { std::slice::from_raw_parts_mut(m.data.as_ptr(), m.len) },
        }
    }
}

impl<T: Voxel> From<Vec<T>> for Buf<T> {
    fn from(v: Vec<T>) -> Buf<T> {
        Buf {
            repr: Repr::Heap(v),
        }
    }
}

impl<T: Voxel> Default for Buf<T> {
    fn default() -> Buf<T> {
        Vec::new().into()
    }
}

/// A clone is a heap copy (of a mapping too).
impl<T: Voxel> Clone for Buf<T> {
    fn clone(&self) -> Buf<T> {
        self.to_vec().into()
    }
}

impl<T: Voxel> std::fmt::Debug for Buf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        <[T] as std::fmt::Debug>::fmt(self, f)
    }
}

impl<T: Voxel> PartialEq for Buf<T> {
    fn eq(&self, other: &Buf<T>) -> bool {
        **self == **other
    }
}

impl<T: Voxel> PartialEq<Vec<T>> for Buf<T> {
    fn eq(&self, other: &Vec<T>) -> bool {
        **self == **other
    }
}

impl<T: Voxel> PartialEq<[T]> for Buf<T> {
    fn eq(&self, other: &[T]) -> bool {
        **self == *other
    }
}

impl<T: Voxel> FromIterator<T> for Buf<T> {
    fn from_iter<I: IntoIterator<Item = T>>(it: I) -> Buf<T> {
        it.into_iter().collect::<Vec<T>>().into()
    }
}

impl<T: Voxel> rayon::iter::FromParallelIterator<T> for Buf<T> {
    fn from_par_iter<I: rayon::iter::IntoParallelIterator<Item = T>>(it: I) -> Buf<T> {
        Vec::from_par_iter(it).into()
    }
}
