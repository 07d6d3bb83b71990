//! k-space artefacts (gibbs, spike, ghosting, motion): the CPU's line filters against TorchIO's
//! formulas written out with full 3D FFTs (fftshift, mask, ifftn, real part), identity parameters,
//! the FFT against a direct DFT, plans that re-apply, and GPU parity (Bluestein on prime lengths, the
//! 3D spectrum maximum on signed images, the host fallback for long axes).

mod common;

use common::*;
use rustfft::num_complex::Complex32;
use voxaug::grid::Grid;
use voxaug::volume::Subject;
use voxaug::Executor;

fn subject(shape: [usize; 3], signed: bool) -> Subject {
    let g = Grid::new(shape, oblique_affine()).unwrap();
    let img = image_from(&g, |i, j, k| {
        let r =
            ((i as f32 - 5.0).powi(2) + (j as f32 - 4.0).powi(2) + (k as f32 - 3.5).powi(2)).sqrt();
        let v = 100.0 * (-r / 4.0).exp() + ((i * 7 + j * 3 + k * 11) % 5) as f32;
        if signed {
            v - 30.0
        } else {
            v
        }
    });
    let lab = label_from(&g, |i, j, _| ((i + j) % 3) as f32);
    Subject::new(vec![img], vec![lab]).unwrap()
}

fn run(e: &Executor, s: &Subject, json: &str) -> Subject {
    e.apply(s, &pipeline_transforms(json))
        .unwrap_or_else(|err| panic!("{json}: {err}"))
}

/// In-place n-D FFT (forward or unnormalised inverse) of a complex volume, x fastest.
fn fftn(buf: &mut [Complex32], shape: [usize; 3], inverse: bool) {
    let stride = [1, shape[0], shape[0] * shape[1]];
    for a in 0..3 {
        let n = shape[a];
        let mut p = rustfft::FftPlanner::new();
        let f = if inverse {
            p.plan_fft_inverse(n)
        } else {
            p.plan_fft_forward(n)
        };
        for base in 0..buf.len() {
            if !(base / stride[a]).is_multiple_of(n) {
                continue;
            }
            let mut line: Vec<Complex32> = (0..n).map(|i| buf[base + i * stride[a]]).collect();
            f.process(&mut line);
            for (i, c) in line.into_iter().enumerate() {
                buf[base + i * stride[a]] = c;
            }
        }
    }
}

/// TorchIO's pattern: `real(ifftn(ifftshift(edit(fftshift(fftn(x))))))`, `edit` on shifted indices.
fn torchio_like(x: &[f32], shape: [usize; 3], mut edit: impl FnMut(&mut [Complex32])) -> Vec<f32> {
    let mut f: Vec<Complex32> = x.iter().map(|&v| Complex32::new(v, 0.0)).collect();
    fftn(&mut f, shape, false);
    let idx = |s: [usize; 3]| s[0] + shape[0] * (s[1] + shape[1] * s[2]);
    let unshift = |s: usize, n: usize| (s + n - n / 2) % n;
    let mut sh = vec![Complex32::default(); f.len()];
    for k in 0..shape[2] {
        for j in 0..shape[1] {
            for i in 0..shape[0] {
                sh[idx([i, j, k])] = f[idx([
                    unshift(i, shape[0]),
                    unshift(j, shape[1]),
                    unshift(k, shape[2]),
                ])];
            }
        }
    }
    edit(&mut sh);
    for k in 0..shape[2] {
        for j in 0..shape[1] {
            for i in 0..shape[0] {
                f[idx([
                    unshift(i, shape[0]),
                    unshift(j, shape[1]),
                    unshift(k, shape[2]),
                ])] = sh[idx([i, j, k])];
            }
        }
    }
    fftn(&mut f, shape, true);
    let n = x.len() as f32;
    f.iter().map(|c| c.re / n).collect()
}

fn close(got: &[f32], want: &[f32], what: &str) {
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let d = max_abs_diff(got, want);
    assert!(
        d <= 2e-5 * scale,
        "{what}: max difference {d} (scale {scale})"
    );
}

#[test]
fn fft3_matches_a_direct_dft() {
    let shape = [5, 6, 7];
    let x = noise(5 * 6 * 7, 3);
    let f = voxaug::exec::cpu::kspace::fft3(&x, shape).unwrap();
    for (u, v, w) in [(0, 0, 0), (1, 2, 3), (4, 5, 6), (2, 0, 5)] {
        let mut want = (0.0f64, 0.0f64);
        for k in 0..7 {
            for j in 0..6 {
                for i in 0..5 {
                    let ph = -std::f64::consts::TAU
                        * ((u * i) as f64 / 5.0 + (v * j) as f64 / 6.0 + (w * k) as f64 / 7.0);
                    let a = x[i + 5 * (j + 6 * k)] as f64;
                    want.0 += a * ph.cos();
                    want.1 += a * ph.sin();
                }
            }
        }
        let got = f[u + 5 * (v + 6 * w)];
        assert!(
            (got.re as f64 - want.0).abs() < 1e-3 && (got.im as f64 - want.1).abs() < 1e-3,
            "({u}, {v}, {w}): {got} vs {want:?}"
        );
    }
}

#[test]
fn artefacts_match_torchio_formulas_on_the_cpu() {
    for shape in [[12, 10, 9], [11, 8, 16]] {
        let s = subject(shape, true);
        let x = s.images[0].values().to_vec();
        let idx = |i: usize, j: usize, k: usize| i + shape[0] * (j + shape[1] * k);
        // Ghosting along each axis, with and without a restored centre.
        for (axis, restore) in [(0, None), (1, Some(0.3)), (2, None), (2, Some(0.5))] {
            let json = match restore {
                None => format!(
                    r#"{{"type": "ghosting", "ghosts": 3, "axis": {axis}, "intensity": 0.8}}"#
                ),
                Some(r) => format!(
                    r#"{{"type": "ghosting", "ghosts": 3, "axis": {axis}, "intensity": 0.8, "restore": {r}}}"#
                ),
            };
            let got = run(&cpu(), &s, &json);
            let n = shape[axis];
            let mid = n / 2;
            let kept = match restore {
                None => mid..mid + 1,
                Some(r) => {
                    let size = (r * n as f64).round_ties_even() as usize;
                    mid - size / 2..mid + size / 2
                }
            };
            let want = torchio_like(&x, shape, |sp| {
                for k in 0..shape[2] {
                    for j in 0..shape[1] {
                        for i in 0..shape[0] {
                            let s = [i, j, k][axis];
                            if s % 3 == 0 && !kept.contains(&s) {
                                sp[idx(i, j, k)] *= 0.2;
                            }
                        }
                    }
                }
            });
            close(&got.images[0].values(), &want, &json);
            assert_eq!(got.labels[0].data, s.labels[0].data, "labels untouched");
        }
        // Gibbs: a centred box of |k| <= floor(f n / 2) per axis.
        let f = [0.5, 0.8, 0.6];
        let got = run(
            &cpu(),
            &s,
            r#"{"type": "gibbs", "fraction": [0.5, 0.8, 0.6]}"#,
        );
        let want = torchio_like(&x, shape, |sp| {
            for k in 0..shape[2] {
                for j in 0..shape[1] {
                    for i in 0..shape[0] {
                        let keep = (0..3).all(|a| {
                            let s = [i, j, k][a] as i64 - (shape[a] / 2) as i64;
                            s.unsigned_abs() as f64 <= (f[a] * shape[a] as f64 / 2.0).floor()
                        });
                        if !keep {
                            sp[idx(i, j, k)] = Complex32::default();
                        }
                    }
                }
            }
        });
        close(&got.images[0].values(), &want, "gibbs");
        // Spike: intensity x the spectrum's largest magnitude at floor(position * n).
        let pos = [0.3, 0.75, 0.1];
        let got = run(
            &cpu(),
            &s,
            r#"{"type": "spike", "positions": [[0.3, 0.75, 0.1]], "intensity": 0.7}"#,
        );
        let want = torchio_like(&x, shape, |sp| {
            let max = sp.iter().fold(0.0f32, |m, c| m.max(c.norm()));
            let p = [0, 1, 2].map(|a| (pos[a] * shape[a] as f64).floor() as usize);
            sp[idx(p[0], p[1], p[2])] += Complex32::new(0.7 * max, 0.0);
        });
        close(&got.images[0].values(), &want, "spike");
        // Motion: segments of the last axis from moved copies (the copies are rotate + shift with the
        // image minimum outside), the unmoved image in the segment after half the acquisition.
        let moves = [
            ([4.0, -3.0, 6.0], [1.5, 0.0, -2.0]),
            ([0.0, 5.0, 0.0], [0.0, 2.0, 1.0]),
        ];
        let times = [0.3, 0.7];
        let json = r#"{"type": "motion", "degrees": [[4, -3, 6], [0, 5, 0]], "translation_mm": [[1.5, 0, -2], [0, 2, 1]], "times": [0.3, 0.7]}"#;
        let got = run(&cpu(), &s, json);
        let copies: Vec<Vec<f32>> = std::iter::once(x.clone())
            .chain(moves.iter().map(|(d, t)| {
                let j = format!(
                    r#"{{"type": "rotate", "degrees": {d:?}, "fill": "min"}}, {{"type": "shift", "mm": {t:?}, "fill": "min"}}"#
                );
                run(&cpu(), &s, &j).images[0].values().to_vec()
            }))
            .collect();
        let spectra: Vec<Vec<Complex32>> = copies
            .iter()
            .map(|c| {
                let mut out = Vec::new();
                torchio_like(c, shape, |sp| out = sp.to_vec());
                out
            })
            .collect();
        let order = [1, 0, 2]; // times[1] = 0.7 is the first after 0.5: copies 0 and 1 swap
        let nz = shape[2];
        let bounds = [
            0,
            (nz as f64 * times[0]) as usize,
            (nz as f64 * times[1]) as usize,
            nz,
        ];
        let want = torchio_like(&x, shape, |sp| {
            for (seg, &c) in order.iter().enumerate() {
                for k in bounds[seg]..bounds[seg + 1] {
                    for j in 0..shape[1] {
                        for i in 0..shape[0] {
                            sp[idx(i, j, k)] = spectra[c][idx(i, j, k)];
                        }
                    }
                }
            }
        });
        close(&got.images[0].values(), &want, "motion");
    }
}

#[test]
fn identity_parameters_leave_the_image_unchanged() {
    let s = subject([9, 8, 7], true);
    for json in [
        r#"{"type": "gibbs", "fraction": 1}"#,
        r#"{"type": "spike", "spikes": 2, "intensity": 0}"#,
        r#"{"type": "spike", "spikes": 0, "intensity": 2}"#,
        r#"{"type": "ghosting", "ghosts": 0, "axis": 1, "intensity": 0.5}"#,
        r#"{"type": "ghosting", "ghosts": 2, "axis": 1, "intensity": 0}"#,
        r#"{"type": "motion", "degrees": [[0, 0, 0], [0, 0, 0]], "translation_mm": [[0, 0, 0], [0, 0, 0]]}"#,
    ] {
        for e in [cpu(), gpu()] {
            let out = run(&e, &s, json);
            assert_eq!(out.images[0].data, s.images[0].data, "{json}");
        }
    }
    // A full round trip through the line filters (weights all 1 but not skipped): gibbs keeping all of
    // x is skipped, so check the filter directly.
    let x = s.images[0].values().to_vec();
    let f = voxaug::exec::kspace::LineFilter {
        axis: 2,
        weights: vec![[1.0, 0.0]; 7],
    };
    let y = voxaug::exec::cpu::kspace::filter(&x, [9, 8, 7], &f).unwrap();
    close(&y, &x, "FFT round trip");
}

#[test]
fn random_forms_sample_plans_that_reapply() {
    let s = subject([10, 9, 8], false);
    for json in [
        r#"[{"type": "random_spike", "spikes": [1, 3]}]"#,
        r#"[{"type": "random_ghosting"}]"#,
        r#"[{"type": "random_gibbs"}]"#,
        r#"[{"type": "random_motion", "num_transforms": 3}]"#,
    ] {
        let p = voxaug::Pipeline::from_json(json).unwrap();
        let (out, plan) = p.sample(&cpu(), &s, 5).unwrap();
        let text = plan.to_json();
        if json.contains("spike") {
            assert!(text.contains("positions"), "{text}");
        }
        let again = voxaug::Pipeline::from_json(&text)
            .unwrap()
            .fixed_transforms()
            .unwrap();
        let re = cpu().apply(&s, &again).unwrap();
        assert_eq!(re.images[0].data, out.images[0].data, "{json}: {text}");
        assert_ne!(out.images[0].data, s.images[0].data, "{json}: {text}");
        // Same seed and index: the same plan.
        assert_eq!(p.sample(&cpu(), &s, 5).unwrap().1.to_json(), text);
    }
}

#[test]
fn bad_parameters_are_refused_with_the_field() {
    for (bad, field) in [
        (r#"{"type": "gibbs", "fraction": 0}"#, "gibbs.fraction"),
        (r#"{"type": "gibbs", "fraction": 1.5}"#, "gibbs.fraction"),
        (r#"{"type": "spike", "intensity": 1}"#, "spikes"),
        (
            r#"{"type": "spike", "positions": [[1.0, 0, 0]], "intensity": 1}"#,
            "positions",
        ),
        (
            r#"{"type": "spike", "spikes": 2, "positions": [[0.1, 0, 0]], "intensity": 1}"#,
            "spikes",
        ),
        (
            r#"{"type": "ghosting", "ghosts": 2, "axis": 3, "intensity": 0.5}"#,
            "ghosting.axis",
        ),
        (
            r#"{"type": "ghosting", "ghosts": 2, "axis": 0, "intensity": 1.5}"#,
            "ghosting.intensity",
        ),
        (
            r#"{"type": "motion", "degrees": [[1, 2, 3]], "times": [0.7, 0.2]}"#,
            "motion.times",
        ),
        (
            r#"{"type": "motion", "degrees": [[1, 2, 3]], "translation_mm": [[1, 2, 3], [0, 0, 1]]}"#,
            "motion.",
        ),
        (
            r#"{"type": "random_ghosting", "axes": [4]}"#,
            "random_ghosting.axes",
        ),
        (
            r#"{"type": "random_motion", "num_transforms": 0}"#,
            "num_transforms",
        ),
        (
            r#"{"type": "random_gibbs", "fraction": [0.9, 0.2]}"#,
            "random_gibbs.fraction",
        ),
        (
            r#"{"type": "ghosting", "ghosts": 2, "axis": 0, "intensity": 0.5, "planes": 1}"#,
            "planes",
        ),
    ] {
        let e = refused(bad);
        assert!(e.contains(field), "{bad}: {e}");
    }
}

fn parity(shape: [usize; 3], signed: bool, json: &str) {
    let s = subject(shape, signed);
    let c = run(&cpu(), &s, json);
    let g = run(&gpu(), &s, json);
    // f32 FFTs on both sides, different algorithms (lavapipe: under 1e-6 seen): within 1e-5 of the
    // image's largest magnitude.
    let scale = c.images[0]
        .values()
        .iter()
        .fold(1.0f32, |m, v| m.max(v.abs()));
    let d = max_abs_diff(&c.images[0].values(), &g.images[0].values());
    assert!(
        d <= 1e-5 * scale,
        "{json} on {shape:?}: {d} (scale {scale})"
    );
    assert_eq!(c.labels[0].data, g.labels[0].data);
}

#[test]
fn gpu_matches_cpu_on_prime_and_power_of_two_lengths() {
    for shape in [[23, 19, 17], [16, 32, 8]] {
        for json in [
            r#"{"type": "gibbs", "fraction": [0.5, 0.7, 0.9]}"#,
            r#"{"type": "ghosting", "ghosts": 3, "axis": 0, "intensity": 0.9}"#,
            r#"{"type": "ghosting", "ghosts": 2, "axis": 2, "intensity": 0.6, "restore": 0.25}"#,
            r#"{"type": "spike", "positions": [[0.2, 0.7, 0.4], [0.9, 0.1, 0.5]], "intensity": 1.5}"#,
            r#"{"type": "motion", "degrees": [[3, 0, -4], [0, 6, 0]], "translation_mm": [[1, -2, 0], [0, 0, 3]]}"#,
        ] {
            parity(shape, false, json);
        }
        // A signed image: the spike's size needs the full 3D spectrum (five FFT passes on the GPU).
        parity(
            shape,
            true,
            r#"{"type": "spike", "positions": [[0.6, 0.3, 0.8]], "intensity": 2}"#,
        );
    }
}

#[test]
fn gpu_handles_an_axis_of_one_voxel() {
    for json in [
        r#"{"type": "gibbs", "fraction": 0.5}"#,
        r#"{"type": "ghosting", "ghosts": 2, "axis": 1, "intensity": 0.5}"#,
        r#"{"type": "motion", "degrees": [[0, 0, 5]]}"#,
    ] {
        parity([9, 1, 7], true, json);
    }
    parity(
        [9, 1, 7],
        true,
        r#"{"type": "spike", "positions": [[0.6, 0.3, 0.8]], "intensity": 2}"#,
    );
}

#[test]
fn gpu_falls_back_to_the_host_for_axes_beyond_workgroup_memory() {
    // 1031 is prime and over the shader's Bluestein limit (1024).
    parity(
        [1031, 3, 2],
        true,
        r#"{"type": "ghosting", "ghosts": 4, "axis": 0, "intensity": 0.7}"#,
    );
    parity(
        [1031, 3, 2],
        true,
        r#"{"type": "spike", "positions": [[0.6, 0.3, 0.8]], "intensity": 2}"#,
    );
}
