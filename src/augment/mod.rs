//! Augmentation of subjects: sample a plan per sample index, apply it with an executor; sample folders
//! (`voxaug augment`'s output) and output naming shared by the CLI and the Python package. Runs over
//! many samples (in memory, or into a folder with its lock and resume record) are in `run.rs`.

mod run;
pub use run::*;

use crate::error::{Error, Result};
use crate::exec::Executor;
use crate::io;
use crate::transform::{Pipeline, Plan, SampleInput, Transform};
use crate::volume::{Kind, Subject, Volume};
use std::path::{Path, PathBuf};

impl Pipeline {
    /// Sample `index` of this pipeline (seed `self.seed`): its plan and the augmented subject.
    pub fn sample(
        &self,
        exec: &Executor,
        subject: &Subject,
        index: u64,
    ) -> Result<(Subject, Plan)> {
        let input = sample_input(subject)?;
        let plan = self.plan(&input, index)?;
        let out = exec.apply(subject, &plan.transforms)?;
        Ok((out, plan))
    }

    /// [`sample`](Self::sample) of a subject the caller gives up (decoded files, a copy of the
    /// caller's arrays): leading intensity, label map and `nan_to_num` stages run in its own buffers
    /// ([`Executor::apply_owned`]). The same plan and subject as [`sample`](Self::sample).
    pub fn sample_owned(
        &self,
        exec: &Executor,
        subject: Subject,
        index: u64,
    ) -> Result<(Subject, Plan)> {
        let plan = self.plan(&sample_input(&subject)?, index)?;
        let out = exec.apply_owned(subject, &plan.transforms)?;
        Ok((out, plan))
    }

    /// Lazily yields samples `0, 1, 2, ...` of seed `seed` (overriding the pipeline's).
    pub fn samples<'a>(
        &'a self,
        exec: &'a Executor,
        subject: &'a Subject,
        seed: u64,
    ) -> Result<Samples<'a>> {
        Ok(Samples {
            pipeline: Pipeline {
                seed,
                ..self.clone()
            },
            exec,
            subject,
            input: sample_input(subject)?,
            next: 0,
        })
    }
}

/// What plan sampling looks at for `subject`: its grid (the first label map's when members are on
/// different grids), its first label map, and its members' names and grids.
pub fn sample_input(subject: &Subject) -> Result<SampleInput<'_>> {
    if subject.images.is_empty() && subject.labels.is_empty() {
        return Err(Error::invalid("subject has no image and no label map"));
    }
    // Members on different grids (a pipeline that starts with resample_to): plans are sampled on the
    // first label map's grid, whose voxels foreground crops look at.
    let grid = match subject.labels.first() {
        Some(l) if !subject.same_grid() => l.grid.clone(),
        _ => subject.grid().expect("non-empty").clone(),
    };
    let vols = subject.images.iter().chain(&subject.labels);
    let members = subject
        .names
        .iter()
        .zip(vols)
        .map(|(n, v)| (n.clone(), v.grid.clone()))
        .collect();
    Ok(SampleInput::new(grid, subject.labels.first())
        .with_image(subject.images.first())
        .with_members(members))
}

/// Iterator over augmented samples (see [`Pipeline::samples`]).
pub struct Samples<'a> {
    pipeline: Pipeline,
    exec: &'a Executor,
    subject: &'a Subject,
    input: SampleInput<'a>,
    next: u64,
}

impl Samples<'_> {
    /// The plan of sample `index` (cheap: parameters only).
    pub fn plan(&self, index: u64) -> Result<Plan> {
        self.pipeline.plan(&self.input, index)
    }
}

impl Iterator for Samples<'_> {
    type Item = Result<(Subject, Plan)>;

    fn next(&mut self) -> Option<Self::Item> {
        let i = self.next;
        self.next += 1;
        Some(
            self.pipeline
                .plan(&self.input, i)
                .and_then(|plan| Ok((self.exec.apply(self.subject, &plan.transforms)?, plan))),
        )
    }
}

/// The output file name of an input: its own name when voxaug writes that format (`.nii`, `.nii.gz`,
/// `.nrrd`), else its stem with `.nii.gz` (DICOM folders and files, Analyze/NIfTI pairs, `.nhdr`).
pub fn output_name(input: &Path) -> Result<String> {
    let name = input
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{}: not a file or folder name", input.display())))?
        .to_string_lossy()
        .into_owned();
    if io::output_format(Path::new(&name), None).is_ok() {
        return Ok(name);
    }
    let lower = name.to_ascii_lowercase();
    let stem = [
        ".hdr.gz", ".img.gz", ".hdr", ".img", ".nhdr", ".dcm.gz", ".dcm", ".gz",
    ]
    .iter()
    .find(|e| lower.ends_with(*e))
    .map(|e| &name[..name.len() - e.len()])
    .unwrap_or(&name);
    Ok(format!("{stem}.nii.gz"))
}

/// Output file names of the inputs (images then labels), refusing two inputs that would share one.
pub fn output_names(inputs: &[PathBuf]) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for p in inputs {
        let n = output_name(p)?;
        if names.contains(&n) {
            return Err(Error::invalid(format!(
                "two inputs share the file name {n}; their outputs would collide"
            )));
        }
        names.push(n);
    }
    Ok(names)
}

/// Output paths of the inputs in folder `out`, refusing collisions with an input and with each other.
pub fn output_paths(inputs: &[PathBuf], out: &Path) -> Result<Vec<PathBuf>> {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let input_set: Vec<PathBuf> = inputs.iter().map(|p| canon(p)).collect();
    let names = output_names(inputs)?;
    let mut outs = Vec::with_capacity(names.len());
    for name in names {
        let o = out.join(&name);
        if input_set.contains(&canon(&o)) {
            return Err(Error::invalid(format!(
                "output {} would overwrite an input; choose another --out folder",
                o.display()
            )));
        }
        outs.push(o);
    }
    Ok(outs)
}

/// Reads a subject from image and label files (at least one of them).
pub fn read_subject(images: &[PathBuf], labels: &[PathBuf]) -> Result<Subject> {
    read_subject_series(images, labels, None)
}

/// [`read_subject`] with `series` picking the series of DICOM folder inputs.
pub fn read_subject_series(
    images: &[PathBuf],
    labels: &[PathBuf],
    series: Option<&str>,
) -> Result<Subject> {
    if images.is_empty() && labels.is_empty() {
        return Err(Error::invalid("give at least one --image or --label"));
    }
    Ok(read_subject_files(images, labels, series)?.0)
}

/// [`read_subject_series`] that also returns each input's channel layout: a multi-channel image file
/// (see [`io::read_channels`]) is one member of several image channels sharing its name, written
/// back in the same layout by [`write_outputs`].
pub fn read_subject_files(
    images: &[PathBuf],
    labels: &[PathBuf],
    series: Option<&str>,
) -> Result<(Subject, Vec<Option<io::ChannelLayout>>)> {
    if images.is_empty() && labels.is_empty() {
        return Err(Error::invalid("give at least one --image or --label"));
    }
    use rayon::prelude::*;
    let files: Vec<(&PathBuf, Kind)> = (images.iter().map(|p| (p, Kind::Image)))
        .chain(labels.iter().map(|p| (p, Kind::Label)))
        .collect();
    // The files are read in parallel (each also splits its own uncompressed read); the first error
    // in argument order is reported.
    let read: Vec<Result<_>> = files
        .par_iter()
        .map(|&(p, kind)| Ok((io::read_channels(p, kind, series)?, member_name(p)?)))
        .collect();
    let (mut imgs, mut labs, mut names, mut layouts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (r, (_, kind)) in read.into_iter().zip(&files) {
        let ((vols, layout), name) = r?;
        names.extend(std::iter::repeat_n(name, vols.len()));
        layouts.push(layout);
        match kind {
            Kind::Image => imgs.extend(vols),
            Kind::Label => labs.extend(vols),
        }
    }
    Ok((Subject::named(imgs, labs, names)?, layouts))
}

/// The volumes of each member of a subject, as index ranges over images then labels: the channels of
/// a multi-channel member (consecutive images sharing a name) together, every other volume alone.
pub fn member_ranges(subject: &Subject) -> Vec<std::ops::Range<usize>> {
    let n = subject.images.len() + subject.labels.len();
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for i in 0..n {
        let joins = i < subject.images.len()
            && i > 0
            && subject.names.len() == n
            && subject.names[i] == subject.names[i - 1];
        match out.last_mut() {
            Some(r) if joins => r.end = i + 1,
            _ => out.push(i..i + 1),
        }
    }
    out
}

/// Writes each member of `sample` to its path (one path per member, in order): a multi-channel member
/// as one file in its input's layout (`layouts[i]`; dim 4 when absent). The files are put in place
/// only once all are written: an error leaves none of them.
pub fn write_outputs(
    paths: &[PathBuf],
    sample: &Subject,
    layouts: &[Option<io::ChannelLayout>],
) -> Result<()> {
    let vols: Vec<&Volume> = sample.images.iter().chain(&sample.labels).collect();
    let ranges = member_ranges(sample);
    if ranges.len() != paths.len() {
        return Err(Error::invalid(format!(
            "{} output paths for {} members",
            paths.len(),
            ranges.len()
        )));
    }
    // Each file on its own thread (a buffered write is one thread's copy into the page cache), under
    // a temporary name; renamed into place only once every file is written: the first error in
    // member order is reported and leaves none of them (and any file they would replace as it was).
    use rayon::prelude::*;
    let jobs: Vec<_> = ranges.into_iter().zip(paths).enumerate().collect();
    let staged: Vec<Result<io::Staged>> = jobs
        .into_par_iter()
        .map(|(i, (r, p))| {
            let layout = layouts.get(i).copied().flatten();
            if r.len() == 1 && layout.is_none() {
                io::stage_volume_as(p, vols[r.start], None)
            } else {
                let group: Vec<Volume> = vols[r].iter().map(|v| (*v).clone()).collect();
                io::stage_channels(p, &group, layout)
            }
        })
        .collect();
    io::commit_all(staged.into_iter().collect::<Result<_>>()?)
}

/// The member name of an input file: its output file name without the extension (`t1.nii.gz` ->
/// `t1`, a DICOM folder `ct/` -> `ct`); a pipeline's `resample_to` may name it as its reference.
pub fn member_name(input: &Path) -> Result<String> {
    let name = output_name(input)?;
    let lower = name.to_ascii_lowercase();
    Ok([".nii.gz", ".nii", ".nrrd"]
        .iter()
        .find(|e| lower.ends_with(*e))
        .map(|e| name[..name.len() - e.len()].to_string())
        .unwrap_or(name))
}

/// Writes one augmented sample into `dir` (created): each volume under its name, then `plan.json`.
/// Multi-channel members are written as one file each, in their input's layout (`layouts`, one per
/// member; empty: dim 4).
pub fn write_sample(
    dir: &Path,
    sample: &Subject,
    names: &[String],
    layouts: &[Option<io::ChannelLayout>],
    plan: &Plan,
) -> Result<()> {
    io::create_dir(dir)?;
    let paths: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    write_outputs(&paths, sample, layouts)?;
    io::write_atomic(&dir.join("plan.json"), plan.to_json().as_bytes())
}

/// The folder of sample `index` in an augment output folder: `out/0000`, `out/0001`, ...
pub fn sample_dir(out: &Path, index: u64) -> PathBuf {
    out.join(format!("{index:04}"))
}
