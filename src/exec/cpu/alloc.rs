//! Output buffers for whole volumes. Large buffers ask the kernel for transparent huge pages
//! (`madvise(MADV_HUGEPAGE)`) before first touch: fewer page faults when they are filled, and fewer TLB
//! misses when a later resampling pass gathers from them. Elsewhere this is a plain zeroed `Vec`.
//!
//! Except on virtual machines that hand free memory back to their host (free page reporting: a
//! virtio balloon with `VIRTIO_BALLOON_F_REPORTING`). The free blocks such a guest reports are exactly
//! the 2 MiB ones, so every huge page a process gets there is first faulted in from the host: on a
//! 2-core VM, touching a fresh 64 MiB buffer took 270-405 ms in huge pages against 26-37 ms in 4 KiB
//! pages (the same after 4 KiB rounds: freed small pages do not give back cheap huge ones), and only a
//! huge page the process had freed itself moments before came back cheap (5-6 ms per 64 MiB). A
//! one-shot `voxaug apply` of a 256^3 image + label took 0.69-0.94 s with the advice and 0.14-0.32 s
//! without it; loops do not need it (the recycling pool keeps their buffers faulted in), so there the
//! advice is off by default.
//!
//! `VOXAUG_HUGE_PAGES=on` or `off` overrides the choice; [`huge_pages`] says what is in force and why.
//!
//! Buffers of 4 MiB or more go back to a pool when dropped (a heap [`Buf`]'s `Drop`, or [`recycle`]),
//! up to 256 MiB, and [`output`] hands them out again: a loop that drops its outputs reuses memory
//! that is already faulted in. [`release_pool`] gives the pool's memory back to the system.

use crate::error::{Error, Result};
use crate::voxels::{Buf, Voxel, Voxels};

/// A zeroed `Vec<T>` of `n` elements, huge-page backed where the OS allows. Large allocations come
/// zeroed and untouched from the OS (calloc maps fresh pages), so the advice is given before the first
/// write and nothing is written twice.
///
/// A refused allocation is an error (`Error::OutOfMemory`), not an abort: the memory is asked for with
/// `alloc_zeroed`, which reports failure instead of ending the process.
pub fn zeroed<T: Voxel>(n: usize) -> Result<Vec<T>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let refused = || {
        Error::OutOfMemory(format!(
            "a buffer of {n} voxels ({} MiB) could not be allocated; free memory, \
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
        if bytes >= 4 * HUGE && huge_pages().0 {
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

/// Whether large fresh buffers ask for huge pages, and why (decided once per process): the
/// `VOXAUG_HUGE_PAGES` setting (`on`/`off`), else on unless the machine reports free memory to its
/// host (see the module notes).
pub fn huge_pages() -> (bool, &'static str) {
    static ON: std::sync::OnceLock<(bool, &'static str)> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        huge_pages_from(std::env::var("VOXAUG_HUGE_PAGES").ok().as_deref(), || {
            free_page_reporting(std::path::Path::new("/sys/bus/virtio/devices"))
        })
    })
}

/// The choice from the setting of `VOXAUG_HUGE_PAGES` (a [`switch`](crate::settings::switch) word;
/// anything else, or unset, is `auto`) and, for `auto`, whether this machine reports
/// free pages to its host (asked only then).
fn huge_pages_from(v: Option<&str>, reporting: impl FnOnce() -> bool) -> (bool, &'static str) {
    match v.and_then(crate::settings::switch) {
        Some(true) => (true, "VOXAUG_HUGE_PAGES=on"),
        Some(false) => (false, "VOXAUG_HUGE_PAGES=off"),
        _ if reporting() => (
            false,
            "this VM reports free memory to its host: fresh huge pages come from there, 7-15x \
             slower than small ones; VOXAUG_HUGE_PAGES=on overrides",
        ),
        _ => (true, "default"),
    }
}

/// Whether a virtio balloon under `devices` (Linux: `/sys/bus/virtio/devices`) negotiated free page
/// reporting: device id 5 with feature bit 5 (`VIRTIO_BALLOON_F_REPORTING`) set in its `features`
/// string (one `0`/`1` per bit, bit 0 first). `false` where there is no such directory.
fn free_page_reporting(devices: &std::path::Path) -> bool {
    let Ok(dir) = std::fs::read_dir(devices) else {
        return false;
    };
    dir.flatten().any(|d| {
        let read = |f: &str| std::fs::read_to_string(d.path().join(f)).unwrap_or_default();
        read("device").trim() == "0x0005" && read("features").as_bytes().get(5) == Some(&b'1')
    })
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
                if let Ok(Ok(v)) = T::unwrap(pool.swap_remove(at)).map(Buf::into_vec) {
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
pub(crate) const RECYCLE_MIN: usize = 4 << 20;
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
/// pool holds under 256 MiB, oldest evicted first; freed when another thread is using the pool).
/// Dropping a large heap [`Buf`] does the same.
pub fn recycle(v: impl Into<Voxels>) {
    let v: Voxels = v.into();
    let bytes = v.as_bytes().len();
    // A mapped file's pages are unmapped, not kept: they are the file's, not fresh memory.
    if bytes < RECYCLE_MIN || v.is_mapped() {
        return;
    }
    let Some(mut pool) = pool() else {
        return free(v);
    };
    let mut held: usize = pool.iter().map(|b| b.as_bytes().len()).sum();
    while held + bytes > POOL_BYTES && !pool.is_empty() {
        let old = pool.remove(0);
        held -= old.as_bytes().len();
        free(old);
    }
    if held + bytes <= POOL_BYTES {
        pool.push(v);
    } else {
        free(v);
    }
}

/// Frees a buffer for good (dropping it would offer it to the pool again).
fn free(v: Voxels) {
    crate::with_voxels!(v, b => drop(b.into_vec()));
}

/// Bytes the pool holds now (0 when another thread is using it).
pub fn pool_bytes() -> usize {
    pool().map_or(0, |p| p.iter().map(|b| b.as_bytes().len()).sum())
}

/// Frees every buffer the pool holds (memory back to the system; later outputs start fresh).
pub fn release_pool() {
    if let Some(mut pool) = pool() {
        pool.drain(..).for_each(free);
    }
}

/// Frees every buffer of a subject now, past the pool (dropping it would recycle them): for a caller
/// that is done allocating, or that times what a one-shot process pays.
pub fn free_subject(s: crate::volume::Subject) {
    for v in s.images.into_iter().chain(s.labels) {
        free(v.data);
    }
}

/// Recycles every buffer of a subject (see [`recycle`]; dropping the subject does the same).
pub fn recycle_subject(s: crate::volume::Subject) {
    for v in s.images.into_iter().chain(s.labels) {
        recycle(v.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_pages_follow_the_setting_then_the_machine() {
        let never = || -> bool { panic!("the machine is not asked when the setting decides") };
        for on in ["on", "1", "true", "Yes", " ON "] {
            assert!(huge_pages_from(Some(on), never).0, "{on}");
        }
        for off in ["off", "0", "false", "No", " OFF "] {
            assert!(!huge_pages_from(Some(off), never).0, "{off}");
        }
        for auto in [None, Some("auto"), Some("")] {
            assert_eq!(huge_pages_from(auto, || false), (true, "default"));
            let (on, why) = huge_pages_from(auto, || true);
            assert!(!on && why.contains("reports free memory"), "{why}");
        }
    }

    #[test]
    fn free_page_reporting_is_the_balloons_feature_bit_5() {
        let dir = tempfile::tempdir().unwrap();
        let device = |name: &str, id: &str, features: &str| {
            let d = dir.path().join(name);
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("device"), format!("{id}\n")).unwrap();
            std::fs::write(d.join("features"), format!("{features}\n")).unwrap();
        };
        assert!(!free_page_reporting(&dir.path().join("absent")));
        assert!(!free_page_reporting(dir.path()), "no devices");
        // A block device with bit 5 set, a balloon without reporting (stats and deflate-on-OOM).
        device("virtio0", "0x0002", "0010011001100100");
        device("virtio1", "0x0005", "0110000000000000");
        assert!(!free_page_reporting(dir.path()));
        // A balloon with reporting (this development VM's string).
        device("virtio2", "0x0005", "0110010100000000");
        assert!(free_page_reporting(dir.path()));
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
