//! Output buffers for whole volumes. Large buffers ask the kernel for transparent huge pages
//! (`madvise(MADV_HUGEPAGE)`) before first touch: fewer page faults when they are filled, and fewer TLB
//! misses when a later resampling pass gathers from them. Elsewhere this is a plain zeroed `Vec`.

/// A zeroed `Vec<f32>` of `n` elements, huge-page backed where the OS allows. Large allocations come
/// zeroed and untouched from the OS (calloc maps fresh pages), so the advice is given before the first
/// write and nothing is written twice.
pub fn zeroed(n: usize) -> Vec<f32> {
    let v = vec![0.0f32; n];
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
    v
}

/// A copy of `src` in a fresh (huge-page backed where possible) buffer, copied in parallel.
pub fn copy_of(src: &[f32]) -> Vec<f32> {
    use rayon::prelude::*;
    let mut v = zeroed_uninit(src.len());
    v.par_chunks_mut(1 << 16)
        .zip(src.par_chunks(1 << 16))
        .for_each(|(d, s)| d.copy_from_slice(s));
    v
}

/// A buffer of `n` elements for a caller that overwrites all of them (contents unspecified but
/// initialised: zero pages from the OS).
pub fn zeroed_uninit(n: usize) -> Vec<f32> {
    zeroed(n)
}
