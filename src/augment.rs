//! Augmentation of subjects: sample a plan per sample index, apply it with an executor.

use crate::error::Result;
use crate::exec::Executor;
use crate::transform::{Pipeline, Plan, SampleInput};
use crate::volume::Subject;

impl Pipeline {
    /// Sample `index` of this pipeline (seed `self.seed`): its plan and the augmented subject.
    pub fn sample(
        &self,
        exec: &Executor,
        subject: &Subject,
        index: u64,
    ) -> Result<(Subject, Plan)> {
        let input = input_of(subject)?;
        let plan = self.plan(&input, index)?;
        let out = exec.apply(subject, &plan.transforms)?;
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
            input: input_of(subject)?,
            next: 0,
        })
    }
}

fn input_of(subject: &Subject) -> Result<SampleInput<'_>> {
    subject.check_grids()?;
    Ok(SampleInput::new(
        subject.grid().expect("checked").clone(),
        subject.labels.first(),
    ))
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
