//! The recorder: one command encoder that collects every op until `flush`, plus the arena
//! that carries the ops' uniform parameters.
//!
//! `queue.write_buffer` lands before the whole submitted encoder runs, so dispatches cannot
//! share one params buffer that is rewritten between them. Each dispatch gets its own
//! slice of an arena chunk instead, aligned to `min_uniform_buffer_offset_alignment`; the
//! chunks are written once, just before the submit, and reused by the next encoder.

use std::cell::{Cell, RefCell};
use std::sync::{Arc, Mutex};

use bytemuck::Pod;

use super::pipelines::{Kernel, PipelineCache};
use crate::error::{Error, Result};

/// Threads per workgroup of every 1-D kernel (`@workgroup_size(64)` in the shaders).
pub(super) const WORKGROUP: u32 = 64;

/// Bytes per arena chunk: 256 dispatches at the usual 256-byte alignment.
const CHUNK_BYTES: u64 = 64 * 1024;

/// Workgroup counts for `threads` threads of a 1-D kernel, split over x and y when one
/// dimension would exceed `max_per_dim`. Shaders rebuild the flat index as
/// `gid.x + gid.y * num_workgroups.x * 64` and return when it is past their count.
pub(super) fn groups_for(threads: u64, max_per_dim: u32) -> [u32; 3] {
    let groups = threads.div_ceil(u64::from(WORKGROUP)).max(1);
    let max = u64::from(max_per_dim.max(1));
    if groups <= max {
        return [groups as u32, 1, 1];
    }
    let y = groups.div_ceil(max);
    let x = groups.div_ceil(y);
    [x as u32, y as u32, 1]
}

struct Chunk {
    buffer: wgpu::Buffer,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct Arena {
    chunks: Vec<Chunk>,
    /// Chunks in use by the pending encoder: `chunks[..in_use]`, the last one filling.
    in_use: usize,
}

pub(super) struct Recorder {
    device: wgpu::Device,
    queue: wgpu::Queue,
    align: u64,
    max_groups: u32,
    pipelines: PipelineCache,
    encoder: RefCell<Option<wgpu::CommandEncoder>>,
    arena: RefCell<Arena>,
    /// Validation and device-lost messages from wgpu's callbacks, reported by `flush`.
    errors: Arc<Mutex<Vec<String>>>,
    dispatches: Cell<u64>,
}

impl Recorder {
    pub(super) fn new(device: wgpu::Device, queue: wgpu::Queue, errors: Arc<Mutex<Vec<String>>>) -> Self {
        let limits = device.limits();
        Recorder {
            align: u64::from(limits.min_uniform_buffer_offset_alignment.max(16)),
            max_groups: limits.max_compute_workgroups_per_dimension,
            pipelines: PipelineCache::new(device.clone()),
            device,
            queue,
            encoder: RefCell::new(None),
            arena: RefCell::new(Arena::default()),
            errors,
            dispatches: Cell::new(0),
        }
    }

    pub(super) fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    pub(super) fn max_groups(&self) -> u32 {
        self.max_groups
    }

    pub(super) fn pipeline_count(&self) -> usize {
        self.pipelines.len()
    }

    pub(super) fn dispatch_count(&self) -> u64 {
        self.dispatches.get()
    }

    /// Creates `kernel`'s pipeline if it does not exist yet.
    pub(super) fn prepare(&self, kernel: &Kernel) {
        self.pipelines.get(kernel);
    }

    /// Runs `f` on the pending encoder, creating it if this is the first op since a flush.
    pub(super) fn with_encoder<R>(&self, f: impl FnOnce(&mut wgpu::CommandEncoder) -> R) -> R {
        let mut slot = self.encoder.borrow_mut();
        let encoder = slot.get_or_insert_with(|| {
            self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("cnn-playground step"),
            })
        });
        f(encoder)
    }

    /// Encodes one dispatch of `kernel` over `threads` threads with `params` at binding 0
    /// and `buffers` at the kernel's storage bindings, in order.
    pub(super) fn dispatch<P: Pod>(
        &self,
        kernel: &Kernel,
        params: &P,
        buffers: &[&wgpu::Buffer],
        threads: u64,
    ) -> Result<()> {
        self.dispatch_groups(kernel, params, buffers, groups_for(threads, self.max_groups), threads)
    }

    /// Like `dispatch`, with explicit workgroup counts (reductions run one workgroup).
    pub(super) fn dispatch_groups<P: Pod>(
        &self,
        kernel: &Kernel,
        params: &P,
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
        threads: u64,
    ) -> Result<()> {
        if buffers.len() != kernel.storage.len() {
            return Err(Error::Gpu(format!(
                "{}: {} buffers given for {} bindings",
                kernel.entry,
                buffers.len(),
                kernel.storage.len()
            )));
        }
        if threads == 0 {
            return Ok(());
        }
        let (params_buffer, offset) = self.push_params(bytemuck::bytes_of(params));
        let size = wgpu::BufferSize::new(std::mem::size_of::<P>() as u64)
            .ok_or_else(|| Error::Gpu(format!("{}: empty params struct", kernel.entry)))?;
        let pipeline = self.pipelines.get(kernel);
        let params_entry = wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &params_buffer,
                offset,
                size: Some(size),
            }),
        };
        let entries: Vec<wgpu::BindGroupEntry> = std::iter::once(params_entry)
            .chain(
                kernel
                    .storage
                    .iter()
                    .zip(buffers)
                    .map(|(&(binding, _), buffer)| wgpu::BindGroupEntry {
                        binding,
                        resource: buffer.as_entire_binding(),
                    }),
            )
            .collect();
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.entry),
            layout: &pipeline.layout,
            entries: &entries,
        });
        self.with_encoder(|encoder| {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(kernel.entry),
                timestamp_writes: None,
            });
            pass.set_pipeline(&pipeline.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        });
        self.dispatches.set(self.dispatches.get() + 1);
        Ok(())
    }

    /// Copies `bytes` into the arena; returns the chunk buffer and the slice's offset.
    fn push_params(&self, bytes: &[u8]) -> (wgpu::Buffer, u64) {
        let slot = (bytes.len() as u64).div_ceil(self.align) * self.align;
        let mut arena = self.arena.borrow_mut();
        let fits = arena
            .in_use
            .checked_sub(1)
            .map(|last| arena.chunks[last].bytes.len() as u64 + slot <= CHUNK_BYTES)
            .unwrap_or(false);
        if !fits {
            if arena.in_use == arena.chunks.len() {
                let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("params arena"),
                    size: CHUNK_BYTES,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                arena.chunks.push(Chunk {
                    buffer,
                    bytes: Vec::with_capacity(CHUNK_BYTES as usize),
                });
            }
            arena.in_use += 1;
        }
        let last = arena.in_use - 1;
        let chunk = &mut arena.chunks[last];
        let offset = chunk.bytes.len() as u64;
        chunk.bytes.extend_from_slice(bytes);
        chunk.bytes.resize((offset + slot) as usize, 0);
        (chunk.buffer.clone(), offset)
    }

    /// Writes the params arena and submits the pending encoder; false if nothing was
    /// encoded since the last submit.
    pub(super) fn submit(&self) -> bool {
        let Some(encoder) = self.encoder.borrow_mut().take() else {
            return false;
        };
        let mut arena = self.arena.borrow_mut();
        let in_use = arena.in_use;
        for chunk in &mut arena.chunks[..in_use] {
            self.queue.write_buffer(&chunk.buffer, 0, &chunk.bytes);
            chunk.bytes.clear();
        }
        arena.in_use = 0;
        self.queue.submit(std::iter::once(encoder.finish()));
        true
    }

    /// Errors wgpu reported through the device callbacks, as one `Error::Gpu`.
    pub(super) fn take_errors(&self) -> Result<()> {
        let messages = match self.errors.lock() {
            Ok(mut errors) => std::mem::take(&mut *errors),
            Err(_) => vec!["the error sink was poisoned".to_string()],
        };
        if messages.is_empty() {
            Ok(())
        } else {
            Err(Error::Gpu(messages.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::groups_for;

    #[test]
    fn dispatch_splits_over_two_dimensions_past_the_limit() {
        assert_eq!(groups_for(1, 65535), [1, 1, 1]);
        assert_eq!(groups_for(64, 65535), [1, 1, 1]);
        assert_eq!(groups_for(65, 65535), [2, 1, 1]);
        let [x, y, _] = groups_for(64 * 65536, 65535);
        assert!(x <= 65535 && y > 1 && u64::from(x) * u64::from(y) >= 65536);
    }
}
