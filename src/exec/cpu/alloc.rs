//! Output buffers for whole volumes. Large buffers ask the kernel for transparent huge pages
//! (`madvise(MADV_HUGEPAGE)`) before first touch: fewer page faults when they are filled, and fewer TLB
//! misses when a later resampling pass gathers from them. Elsewhere this is a plain zeroed `Vec`.
//!
//! `VOXAUG_HUGE_PAGES=off` drops the advice. On virtual machines that hand free memory back to the host
//! (free page reporting), the free 2 MiB blocks are the ones handed back, so after an idle spell every
//! huge page is faulted in from the host: a one-shot `voxaug apply` of a 256^3 image + label took
//! 0.90-0.95 s there with the advice and 0.30-0.43 s without, against 0.13-0.16 s and 0.18-0.19 s
//! back to back.

use crate::error::{Error, Result};
use crate::voxels::{Voxel, Voxels};

/// A zeroed `Vec<T>` of `n` elements, huge-page backed where the OS allows. Large allocations come
/// zeroed and untouched from the OS (calloc maps fresh pages), so the advice is given before the first
/// write and nothing is written twice.
///
/// A refused allocation is an error (`Error::Limits`), not an abort: the memory is asked for with
/// `alloc_zeroed`, which reports failure instead of ending the process.
pub fn zeroed<T: Voxel>(n: usize) -> Result<Vec<T>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let refused = || {
        Error::Limits(format!(
            "out of memory: a buffer of {n} voxels ({} MiB) could not be allocated; free memory, \
             lower the number of threads or samples in flight, or use a smaller volume",
            (n as u128 * std::mem::size_of::<T>() as u128) >> 20
        ))
    };
    let layout = std::alloc::Layout::array::<T>(n).map_err(|_| refused())?;
    // SAFETY: the layout has a non-zero size; all-zero bytes are a valid voxel (`T: Pod`).
    let p = unsafe { std::alloc::alloc_zeroed(layout) } as *mut T;
    if p.is_null() {
        return Err(refused());
    }
    // SAFETY: `p` was allocated by the global allocator with the layout of `[T; n]`, and all `n`
    // elements are initialised (zero).
    let v = unsafe { Vec::from_raw_parts(p, n, n) };
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let bytes = n * std::mem::size_of::<T>();
        if bytes >= 4 * HUGE && huge_pages() {
            let start = v.as_ptr() as usize;
            let aligned = start.next_multiple_of(HUGE);
            let end = (start + bytes) / HUGE * HUGE;
            if end > aligned {
                // SAFETY: advisory call on a range inside our own allocation; contents are unchanged.
                unsafe {
                    libc::madvise(
                        aligned as *mut libc::c_void,
                        end - aligned,
                        libc::MADV_HUGEPAGE,
                    );
                }
            }
        }
    }
    Ok(v)
}

/// Whether large fresh buffers ask for huge pages (checked once; `VOXAUG_HUGE_PAGES=off` turns the
/// advice off, see the module notes).
fn huge_pages() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| huge_pages_from(std::env::var("VOXAUG_HUGE_PAGES").ok().as_deref()))
}

/// The setting of `VOXAUG_HUGE_PAGES`: on unless `off` (or `0`, `false`, `no`).
fn huge_pages_from(v: Option<&str>) -> bool {
    !matches!(
        v.map(|s| s.trim().to_ascii_lowercase()).as_deref(),
        Some("off" | "0" | "false" | "no")
    )
}

/// A copy of `src` in a recycled or fresh buffer, copied in parallel.
pub fn copy_of<T: Voxel>(src: &[T]) -> Result<Vec<T>> {
    use rayon::prelude::*;
    let mut v = output::<T>(src.len())?;
    v.par_chunks_mut(1 << 16)
        .zip(src.par_chunks(1 << 16))
        .for_each(|(d, s)| d.copy_from_slice(s));
    Ok(v)
}

/// A buffer of `n` elements for a caller that overwrites every one of them: a recycled buffer of that
/// size when [`recycle`] kept one (its old values are still there), else [`zeroed`]. Reusing buffers
/// spares the kernel clearing and mapping fresh pages for every output, which leads the profile of
/// copies (flip, crop) and of augmentation runs.
pub fn output<T: Voxel>(n: usize) -> Result<Vec<T>> {
    if n * std::mem::size_of::<T>() >= RECYCLE_MIN {
        if let Some(mut pool) = pool() {
            if let Some(at) = pool
                .iter()
                .position(|v| v.len() == n && v.dtype() == T::DTYPE)
            {
                if let Ok(v) = T::unwrap(pool.swap_remove(at)) {
                    return Ok(v);
                }
            }
        }
    }
    zeroed(n)
}

/// A copy of a volume's voxels in their own type (see [`copy_of`]).
pub fn copy_voxels(src: &Voxels) -> Result<Voxels> {
    crate::with_voxels!(src, x => Ok(Voxels::from(copy_of(x)?)))
}

/// Buffers smaller than this (4 MiB) are not kept: the allocator serves them without page faults.
const RECYCLE_MIN: usize = 4 << 20;
/// Most bytes the pool keeps (four 256^3 float volumes, say).
const POOL_BYTES: usize = 1 << 28;

static POOL: std::sync::Mutex<Vec<Voxels>> = std::sync::Mutex::new(Vec::new());

/// The pool, or `None` when another thread holds it: never waits, so a process forked while some
/// thread held the lock (a DataLoader worker) allocates fresh buffers instead of deadlocking.
fn pool() -> Option<std::sync::MutexGuard<'static, Vec<Voxels>>> {
    match POOL.try_lock() {
        Ok(g) => Some(g),
        Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// Gives a volume buffer that is no longer needed back for [`output`] to hand out again (kept while the
/// pool holds under 256 MiB, oldest evicted first; dropped when another thread is using the pool).
pub fn recycle(v: impl Into<Voxels>) {
    let v: Voxels = v.into();
    let bytes = v.as_bytes().len();
    if bytes < RECYCLE_MIN {
        return;
    }
    let Some(mut pool) = pool() else {
        return;
    };
    let mut held: usize = pool.iter().map(|b| b.as_bytes().len()).sum();
    while held + bytes > POOL_BYTES && !pool.is_empty() {
        held -= pool.remove(0).as_bytes().len();
    }
    if held + bytes <= POOL_BYTES {
        pool.push(v);
    }
}

/// Frees every buffer the pool holds (memory back to the system; later outputs start fresh).
pub fn release_pool() {
    if let Some(mut pool) = pool() {
        pool.clear();
    }
}

/// Recycles every buffer of a subject (see [`recycle`]).
pub fn recycle_subject(s: crate::volume::Subject) {
    for v in s.images.into_iter().chain(s.labels) {
        recycle(v.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_pages_are_on_unless_turned_off() {
        assert!(huge_pages_from(None));
        assert!(huge_pages_from(Some("on")));
        assert!(huge_pages_from(Some("1")));
        for off in ["off", "0", "false", "No", " OFF "] {
            assert!(!huge_pages_from(Some(off)), "{off}");
        }
    }

    #[test]
    fn recycled_buffers_come_back_for_the_same_size_only() {
        let n = RECYCLE_MIN / 4 + 17;
        let mut v = output::<f32>(n).unwrap();
        v.iter_mut().for_each(|x| *x = 3.0);
        let ptr = v.as_ptr();
        recycle(v);
        assert_eq!(output::<f32>(n + 1).unwrap().len(), n + 1);
        assert_eq!(
            output::<u32>(n).unwrap().len(),
            n,
            "another type is not handed out"
        );
        let again = output::<f32>(n).unwrap();
        assert_eq!(
            again.as_ptr(),
            ptr,
            "the recycled buffer is handed out again"
        );
        assert!(
            again.iter().all(|&x| x == 3.0),
            "its old values are still there"
        );
        recycle(vec![0.0f32; 10]);
        assert!(pool()
            .unwrap()
            .iter()
            .all(|b| b.as_bytes().len() >= RECYCLE_MIN));
    }
}
