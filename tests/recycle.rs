//! Large voxel buffers go back to the recycling pool when dropped, and the next output of the same
//! size and type reuses one (no fresh pages from the OS). One test: the pool is per process.

use voxaug::exec::cpu::alloc::{free_subject, pool_bytes, release_pool};
use voxaug::voxels::Voxels;
use voxaug::{DType, Executor, Grid, Pipeline, Subject, Volume};

#[test]
fn dropped_buffers_serve_the_next_outputs() {
    release_pool();
    assert_eq!(pool_bytes(), 0);
    let n = 128 * 128 * 128; // 8 MiB of f32
    let a = Voxels::output(DType::F32, n).unwrap();
    let at = a.as_bytes().as_ptr();
    drop(a);
    assert_eq!(pool_bytes(), 4 * n, "a dropped 8 MiB buffer is kept");
    let b = Voxels::output(DType::F32, n).unwrap();
    assert_eq!(
        b.as_bytes().as_ptr(),
        at,
        "the next output of that size reuses it"
    );
    assert_eq!(pool_bytes(), 0);
    // Another type or size does not take it.
    drop(b);
    let c = Voxels::output(DType::I32, n).unwrap();
    assert_ne!(c.as_bytes().as_ptr(), at);
    assert_eq!(pool_bytes(), 4 * n);
    drop(c);
    assert_eq!(pool_bytes(), 8 * n);
    // Small buffers are not kept (the allocator serves them without page faults).
    drop(Voxels::output(DType::F32, 1000).unwrap());
    assert_eq!(pool_bytes(), 8 * n);

    // The outputs of a pipeline, dropped, serve the next run's outputs.
    release_pool();
    let m = 256 * 128 * 128; // a 4 MiB uint8 label map
    let g = Grid::new([256, 128, 128], voxaug::grid::IDENTITY).unwrap();
    let img = Volume::image((0..m).map(|i| (i % 251) as f32).collect(), g.clone()).unwrap();
    let lab = Volume::label((0..m).map(|i| (i % 5) as f32).collect(), g).unwrap();
    let s = Subject::new(vec![img], vec![lab]).unwrap();
    let p = Pipeline::from_json(r#"{"transforms": [{"type": "rotate", "degrees": [0, 0, 9]}]}"#)
        .unwrap()
        .fixed_transforms()
        .unwrap();
    let first = Executor::Cpu.apply(&s, &p).unwrap();
    let (img_at, lab_at) = (
        first.images[0].data.as_bytes().as_ptr(),
        first.labels[0].data.as_bytes().as_ptr(),
    );
    let want = first.clone();
    drop(first);
    assert_eq!(
        pool_bytes(),
        5 * m,
        "the image (4m) and label (m) bytes are kept"
    );
    let second = Executor::Cpu.apply(&s, &p).unwrap();
    assert_eq!(second.images[0].data.as_bytes().as_ptr(), img_at);
    assert_eq!(second.labels[0].data.as_bytes().as_ptr(), lab_at);
    assert_eq!(second.images[0].data, want.images[0].data);
    assert_eq!(second.labels[0].data, want.labels[0].data);

    // Freeing a subject bypasses the pool.
    release_pool();
    free_subject(second);
    assert_eq!(pool_bytes(), 0);

    // The pool keeps at most 256 MiB, oldest first out; releasing it frees everything.
    drop(want);
    release_pool();
    let many: Vec<Voxels> = (0..40)
        .map(|_| Voxels::output(DType::F32, n).unwrap())
        .collect();
    drop(many);
    assert_eq!(pool_bytes(), 256 << 20);
    release_pool();
    assert_eq!(pool_bytes(), 0);
}
