//! Kernel time from timestamp queries. While a [`Timer`] is armed every compute pass the executor
//! records writes a timestamp at its start and end; the kernel time of a run is the sum of its passes'
//! durations (uploads, copies and readbacks between passes are not counted). Adapters without the
//! `TIMESTAMP_QUERY` feature give no kernel time, and `voxaug bench` says so instead of guessing.

use super::GpuContext;
use crate::error::Result;

/// Queries in one set: 2 per pass, far more passes than one run of any pipeline records.
const CAPACITY: u32 = 4096;

/// An armed query set and the next free query in it.
pub(crate) struct Timer {
    set: wgpu::QuerySet,
    next: u32,
}

impl GpuContext {
    /// Begins a compute pass in `enc`, with start and end timestamps while a timer is armed.
    pub(crate) fn compute_pass<'e>(
        &self,
        enc: &'e mut wgpu::CommandEncoder,
    ) -> wgpu::ComputePass<'e> {
        let mut timer = self.timer.lock().unwrap();
        let slot = timer.as_mut().filter(|t| t.next + 2 <= CAPACITY).map(|t| {
            t.next += 2;
            (t.set.clone(), t.next - 2)
        });
        drop(timer);
        match slot {
            Some((set, i)) => enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: &set,
                    beginning_of_pass_write_index: Some(i),
                    end_of_pass_write_index: Some(i + 1),
                }),
            }),
            None => enc.begin_compute_pass(&Default::default()),
        }
    }

    /// True when the device records timestamps (the adapter has `TIMESTAMP_QUERY`).
    pub fn has_timestamps(&self) -> bool {
        self.device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Arms a fresh timer (no-op without timestamp support).
    pub(crate) fn arm_timer(&self) {
        if self.has_timestamps() {
            let set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("voxaug timer"),
                ty: wgpu::QueryType::Timestamp,
                count: CAPACITY,
            });
            *self.timer.lock().unwrap() = Some(Timer { set, next: 0 });
        }
    }

    /// Disarms the timer and returns the duration of each pass it saw, in seconds, in recording order
    /// (None without timestamp support). Call after the timed work has been submitted.
    pub(crate) fn read_timer(&self) -> Result<Option<Vec<f64>>> {
        let Some(t) = self.timer.lock().unwrap().take() else {
            return Ok(None);
        };
        if t.next == 0 {
            return Ok(Some(Vec::new()));
        }
        let bytes = t.next as u64 * 8;
        let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("voxaug timer resolve"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = self.scratch(bytes, true);
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.resolve_query_set(&t.set, 0..t.next, &resolve, 0);
        enc.copy_buffer_to_buffer(&resolve, 0, &staging, 0, bytes);
        let idx = self.queue_submit(Some(enc.finish()));
        let words = self.map_read(&staging, bytes, Some(idx))?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&words);
        self.pool.lock().unwrap().give_buffer(staging);
        let period_ns = self.queue.get_timestamp_period() as f64;
        Ok(Some(
            ticks
                .chunks_exact(2)
                .map(|p| p[1].saturating_sub(p[0]) as f64 * period_ns * 1e-9)
                .collect(),
        ))
    }
}
