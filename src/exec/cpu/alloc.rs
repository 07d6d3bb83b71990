//! Output buffers for whole volumes. Large buffers ask the kernel for transparent huge pages
//! (`madvise(MADV_HUGEPAGE)`) before first touch: fewer page faults when they are filled, and fewer TLB
//! misses when a later resampling pass gathers from them. Elsewhere this is a plain zeroed `Vec`.

use crate::error::{Error, Result};

/// A zeroed `Vec<f32>` of `n` elements, huge-page backed where the OS allows. Large allocations come
/// zeroed and untouched from the OS (calloc maps fresh pages), so the advice is given before the first
/// write and nothing is written twice.
///
/// A refused allocation is an error (`Error::Limits`), not an abort: the memory is asked for with
/// `alloc_zeroed`, which reports failure instead of ending the process.
pub fn zeroed(n: usize) -> Result<Vec<f32>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let refused = || {
        Error::Limits(format!(
            "out of memory: a buffer of {n} voxels ({} MiB) could not be allocated; free memory, \
             lower the number of threads or samples in flight, or use a smaller volume",
            (n as u128 * 4) >> 20
        ))
    };
    let layout = std::alloc::Layout::array::<f32>(n).map_err(|_| refused())?;
    // SAFETY: the layout has a non-zero size; all-zero bytes are a valid f32 (0.0).
    let p = unsafe { std::alloc::alloc_zeroed(layout) } as *mut f32;
    if p.is_null() {
        return Err(refused());
    }
    // SAFETY: `p` was allocated by the global allocator with the layout of `[f32; n]`, and all `n`
    // elements are initialised (zero).
    let v = unsafe { Vec::from_raw_parts(p, n, n) };
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        if n * 4 >= 4 * HUGE {
            let start = v.as_ptr() as usize;
            let aligned = start.next_multiple_of(HUGE);
            let end = (start + n * 4) / HUGE * HUGE;
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

/// A copy of `src` in a fresh (huge-page backed where possible) buffer, copied in parallel.
pub fn copy_of(src: &[f32]) -> Result<Vec<f32>> {
    use rayon::prelude::*;
    let mut v = zeroed_uninit(src.len())?;
    v.par_chunks_mut(1 << 16)
        .zip(src.par_chunks(1 << 16))
        .for_each(|(d, s)| d.copy_from_slice(s));
    Ok(v)
}

/// A buffer of `n` elements for a caller that overwrites all of them (contents unspecified but
/// initialised: zero pages from the OS).
pub fn zeroed_uninit(n: usize) -> Result<Vec<f32>> {
    zeroed(n)
}
