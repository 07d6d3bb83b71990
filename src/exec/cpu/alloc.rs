//! Output buffers for whole volumes. Large buffers ask the kernel for transparent huge pages
//! (`madvise(MADV_HUGEPAGE)`) before first touch: fewer page faults when they are filled, and fewer TLB
//! misses when a later resampling pass gathers from them. Elsewhere this is a plain zeroed `Vec`.

/// A zeroed `Vec<f32>` of `n` elements, huge-page backed where the OS allows.
pub fn zeroed(n: usize) -> Vec<f32> {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        if n * 4 >= 4 * HUGE {
            let mut v: Vec<f32> = Vec::with_capacity(n);
            let start = v.as_mut_ptr() as usize;
            let aligned = start.next_multiple_of(HUGE);
            let end = (start + n * 4) / HUGE * HUGE;
            if end > aligned {
                // SAFETY: advisory call on a range inside our own, not yet touched allocation.
                unsafe {
                    libc::madvise(
                        aligned as *mut libc::c_void,
                        end - aligned,
                        libc::MADV_HUGEPAGE,
                    );
                }
            }
            use rayon::prelude::*;
            v.spare_capacity_mut()
                .par_chunks_mut(1 << 16)
                .for_each(|c| {
                    c.iter_mut().for_each(|x| {
                        x.write(0.0);
                    })
                });
            // SAFETY: all n elements were initialised above.
            unsafe { v.set_len(n) };
            return v;
        }
    }
    vec![0.0; n]
}
