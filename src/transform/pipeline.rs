//! Pipelines and plans: the top level of the pipeline JSON (`seed`, `sample`, `transforms`), parsing,
//! and sampling the plan of one sample.

use super::random::{parse_step, Step};
use super::sampler::{SampleInput, Sampler};
use super::spec::Transform;
use crate::error::{Error, Result};
use serde::Serialize;
use std::path::Path;

/// A pipeline file: a seed, an optional sample index, and a list of transforms (deterministic, random,
/// or combinators). A Plan (all deterministic) is a valid pipeline too.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pipeline {
    /// Seed of every random draw (with the sample index).
    pub seed: u64,
    /// Sample index used when the pipeline is applied once (`voxaug apply`); plans record theirs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<u64>,
    /// The steps, applied in order.
    pub transforms: Vec<Step>,
}

/// The deterministic transforms sampled for one sample, with where they came from; written as
/// `plan.json` and re-applied exactly by `voxaug apply`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    /// Seed the plan was sampled with.
    pub seed: u64,
    /// Sample index the plan was sampled for.
    pub sample: u64,
    /// The deterministic transforms of this sample.
    pub transforms: Vec<Transform>,
}

impl Plan {
    /// The plan as pipeline JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("serialisable")
    }
}

impl Pipeline {
    /// A pipeline of deterministic transforms.
    pub fn fixed(seed: u64, transforms: Vec<Transform>) -> Pipeline {
        Pipeline {
            seed,
            sample: None,
            transforms: transforms.into_iter().map(Step::Fixed).collect(),
        }
    }

    /// Parses a pipeline from JSON text; errors name the transform index, type and field.
    pub fn from_json(text: &str) -> Result<Pipeline> {
        Pipeline::from_json_in(text, None)
    }

    /// Parses a pipeline whose relative file references (`resample_to.reference`) are relative to
    /// `base` (the current directory when `None`).
    pub fn from_json_in(text: &str, base: Option<&Path>) -> Result<Pipeline> {
        let mut v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::pipeline(format!("not valid JSON: {e}")))?;
        // A bare list of transforms is `{"transforms": [...]}` (seed 0).
        if v.is_array() {
            v = serde_json::json!({ "transforms": v });
        }
        let obj = v.as_object().ok_or_else(|| {
            Error::pipeline(
                "expected a JSON object with \"transforms\" (or a bare list of transforms)",
            )
        })?;
        for key in obj.keys() {
            if !["seed", "sample", "transforms"].contains(&key.as_str()) {
                return Err(Error::pipeline(format!(
                    "unknown field `{key}` at the top level (expected `seed`, `sample`, `transforms`)"
                )));
            }
        }
        let uint = |name: &str| -> Result<Option<u64>> {
            match obj.get(name) {
                None => Ok(None),
                Some(s) => s.as_u64().map(Some).ok_or_else(|| {
                    Error::pipeline(format!("{name} must be a non-negative integer, got {s}"))
                }),
            }
        };
        let seed = uint("seed")?.unwrap_or(0);
        let sample = uint("sample")?;
        let list = obj
            .get("transforms")
            .and_then(|t| t.as_array())
            .ok_or_else(|| Error::pipeline("missing \"transforms\": a list of transforms"))?;
        let mut transforms = list
            .iter()
            .enumerate()
            .map(|(i, t)| parse_step(&format!("transforms[{i}]"), t))
            .collect::<Result<Vec<_>>>()?;
        resolve_references(&mut transforms, base)?;
        Ok(Pipeline {
            seed,
            sample,
            transforms,
        })
    }

    /// Reads and parses a pipeline file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Pipeline> {
        let path = path.as_ref();
        let text = crate::io::read_text(path)?;
        Pipeline::from_json_in(&text, path.parent()).map_err(|e| match e {
            Error::Pipeline(m) => Error::Pipeline(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// The pipeline as JSON (valid input for `from_json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("serialisable")
    }

    /// True when no transform is random (the pipeline is its own plan).
    pub fn is_fixed(&self) -> bool {
        self.transforms.iter().all(|s| matches!(s, Step::Fixed(_)))
    }

    /// The transforms of a pipeline without random ones; errors otherwise.
    pub fn fixed_transforms(&self) -> Result<Vec<Transform>> {
        self.transforms
            .iter()
            .map(|s| match s {
                Step::Fixed(t) => Ok(t.clone()),
                Step::Random(r) => Err(Error::pipeline(format!(
                    "`{}` is random: sample a plan first",
                    serde_json::to_value(r)
                        .ok()
                        .and_then(|v| v["type"].as_str().map(str::to_owned))
                        .unwrap_or_default()
                ))),
            })
            .collect()
    }

    /// Samples the plan of sample `index` (RNG seeded from `(self.seed, index)` only).
    pub fn plan(&self, input: &SampleInput<'_>, index: u64) -> Result<Plan> {
        let transforms = Sampler::new(input, self.seed, index).run(&self.transforms)?;
        Ok(Plan {
            seed: self.seed,
            sample: index,
            transforms,
        })
    }
}

thread_local! {
    /// How many `invert` plans are being parsed inside one another on this thread.
    static NESTED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// True when a `resample_to` reference names a subject member rather than a file: no path separator
/// and no extension (`"t1"`; `"./t1"` and `"t1.nii.gz"` are files).
pub fn is_member_reference(reference: &str) -> bool {
    !reference.is_empty() && !reference.contains(['/', '\\', '.'])
}

/// Reads the grid of every top-level `resample_to` that has none yet (its reference file's shape and
/// affine; a relative path from `base`).
fn resolve_references(steps: &mut [Step], base: Option<&Path>) -> Result<()> {
    let full = |p: &str| {
        let p = Path::new(p);
        match base {
            Some(b) if p.is_relative() => b.join(p),
            _ => p.to_path_buf(),
        }
    };
    for (i, s) in steps.iter_mut().enumerate() {
        if let Step::Fixed(Transform::Invert {
            plan,
            reference,
            grid,
            matrix,
            input_shape,
            fill,
            label_interpolation: _,
        }) = s
        {
            if grid.is_some() && matrix.is_some() && input_shape.is_some() {
                continue;
            }
            let at = |e: Error| {
                Error::pipeline(format!(
                    "transforms[{i}]: invert: {}",
                    match e {
                        Error::Pipeline(m) => m,
                        other => other.to_string(),
                    }
                ))
            };
            // A plan file that (through others) inverts itself would recurse without end.
            let depth = NESTED.with(|d| d.get());
            if depth >= 8 {
                return Err(at(Error::pipeline(
                    "plans nest more than 8 deep (a plan that inverts itself?)",
                )));
            }
            NESTED.with(|d| d.set(depth + 1));
            let nested = match &*plan {
                serde_json::Value::String(p) => Pipeline::from_file(full(p)),
                v @ serde_json::Value::Object(_) => Pipeline::from_json_in(&v.to_string(), base),
                other => Err(Error::pipeline(format!(
                    "plan must be a plan.json path or a plan object, got {other}"
                ))),
            }
            .and_then(|p| p.fixed_transforms());
            NESTED.with(|d| d.set(depth));
            let plan_t = nested.map_err(at)?;
            let Some(r) = reference else {
                return Err(at(Error::pipeline(
                    "needs \"reference\": the original volume the sample was made from",
                )));
            };
            let path = full(r);
            let v = crate::io::read_volume(&path, crate::Kind::Image).map_err(|e| {
                at(Error::pipeline(format!(
                    "reference {}: {e}",
                    path.display()
                )))
            })?;
            let (map, sample) = crate::invert::inverse_map(
                &plan_t,
                &v.grid,
                fill.unwrap_or(super::Fill::Value(0.0)),
            )
            .map_err(at)?;
            *grid = Some(Box::new(super::spec::RefGrid {
                shape: v.grid.shape,
                affine: v.grid.affine,
            }));
            *matrix = Some(Box::new(map.matrix));
            *input_shape = Some(sample.shape);
            continue;
        }
        if let Step::Fixed(Transform::ApplyTransform {
            file,
            world_matrix,
            fixed_grid,
            ..
        }) = s
        {
            if world_matrix.is_some() {
                continue;
            }
            let path = full(file);
            let (m, g) = crate::register::read_transform(&path)
                .map_err(|e| Error::pipeline(format!("transforms[{i}]: transform.file: {e}")))?;
            *world_matrix = Some(Box::new(m));
            *fixed_grid = g.map(Box::new);
            continue;
        }
        if let Step::Fixed(Transform::ResampleTo {
            reference, grid, ..
        }) = s
        {
            if grid.is_some() || is_member_reference(reference) {
                continue;
            }
            let p = Path::new(reference.as_str());
            let path = match base {
                Some(b) if p.is_relative() => b.join(p),
                _ => p.to_path_buf(),
            };
            let v = crate::io::read_volume(&path, crate::Kind::Image).map_err(|e| {
                Error::pipeline(format!(
                    "transforms[{i}]: resample_to.reference {}: {e}",
                    path.display()
                ))
            })?;
            *grid = Some(super::spec::RefGrid {
                shape: v.grid.shape,
                affine: v.grid.affine,
            });
        }
    }
    Ok(())
}
