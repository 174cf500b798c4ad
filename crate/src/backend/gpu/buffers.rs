//! A size-keyed pool of GPU buffers. Every tensor's storage and every readback staging
//! buffer comes from here and goes back here when its handle is dropped, so a training
//! step that allocates the same shapes every time creates no new buffers after the first.
//!
//! Sizes are rounded up to a power of two (at least 256 bytes), so a handful of buckets
//! serve all shapes of a model.
//!
//! One subtlety: `queue.write_buffer` (used by uploads) lands before *all* commands of the
//! next submission, while dispatches land in encoding order. A buffer released while the
//! current encoder may still use it is therefore "pending" until the next submit: GPU-side
//! writers (dispatches, clears) may take it at once — they run after its earlier uses —
//! but uploads only take buffers that were free before the encoder started.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::tensor::{BufferHome, GpuBuffer};

/// Smallest bucket, in bytes.
const MIN_BUCKET: u64 = 256;

/// Usage of tensor storage: bound to shaders, written by uploads and clears, copied out
/// for readback.
const STORAGE_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

/// Usage of readback staging buffers.
const STAGING_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::MAP_READ.union(wgpu::BufferUsages::COPY_DST);

/// The bucket (allocation size in bytes) that holds `bytes`.
pub(super) fn bucket_for(bytes: u64) -> u64 {
    bytes.max(MIN_BUCKET).next_power_of_two()
}

#[derive(Default)]
struct Free {
    /// Free before the current encoder started: safe for anything.
    settled: HashMap<u64, Vec<wgpu::Buffer>>,
    /// Released since the last submit: safe only for GPU-ordered writers.
    pending: HashMap<u64, Vec<wgpu::Buffer>>,
}

#[derive(Default)]
struct PoolState {
    storage: Free,
    staging: HashMap<u64, Vec<wgpu::Buffer>>,
    /// Buffers ever created, for tests and the bench line.
    created: usize,
    /// Staging buffers mapped for reading: each one is a GPU -> host round trip.
    maps: u64,
}

/// Shared by the backend and every live `GpuBuffer`.
pub(super) struct BufferPool {
    device: wgpu::Device,
    state: RefCell<PoolState>,
}

/// Who will first write a buffer taken from the pool (see the module comment).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Writer {
    /// `queue.write_buffer`: runs before the pending encoder.
    Queue,
    /// A dispatch or clear encoded into the pending encoder.
    Encoder,
}

impl BufferPool {
    pub(super) fn new(device: wgpu::Device) -> Rc<BufferPool> {
        Rc::new(BufferPool {
            device,
            state: RefCell::new(PoolState::default()),
        })
    }

    /// A storage buffer of at least `bytes` bytes, wrapped so that it comes back on drop.
    pub(super) fn storage(self: &Rc<Self>, bytes: u64, writer: Writer) -> GpuBuffer {
        let bucket = bucket_for(bytes);
        let reused = {
            let mut st = self.state.borrow_mut();
            let pending = match writer {
                Writer::Encoder => st.storage.pending.get_mut(&bucket).and_then(Vec::pop),
                Writer::Queue => None,
            };
            pending.or_else(|| st.storage.settled.get_mut(&bucket).and_then(Vec::pop))
        };
        let buffer = reused.unwrap_or_else(|| self.create(bucket, STORAGE_USAGE, "tensor"));
        GpuBuffer::new(buffer, Rc::clone(self) as Rc<dyn BufferHome>)
    }

    /// A MAP_READ staging buffer of at least `bytes` bytes (use `Staging`).
    fn staging(&self, bytes: u64) -> wgpu::Buffer {
        let bucket = bucket_for(bytes);
        let reused = self.state.borrow_mut().staging.get_mut(&bucket).and_then(Vec::pop);
        reused.unwrap_or_else(|| self.create(bucket, STAGING_USAGE, "readback staging"))
    }

    fn give_staging(&self, buffer: wgpu::Buffer) {
        let mut st = self.state.borrow_mut();
        st.staging.entry(buffer.size()).or_default().push(buffer);
    }

    /// Called right after a submit: buffers released during the submitted encoder become
    /// safe for uploads too.
    pub(super) fn settle(&self) {
        let mut st = self.state.borrow_mut();
        let pending = std::mem::take(&mut st.storage.pending);
        for (bucket, mut buffers) in pending {
            st.storage.settled.entry(bucket).or_default().append(&mut buffers);
        }
    }

    /// Forgets every free buffer (wgpu keeps one alive while submitted work uses it).
    pub(super) fn release_free(&self) {
        let mut st = self.state.borrow_mut();
        st.storage = Free::default();
        st.staging.clear();
    }

    /// How many buffers were ever created (storage and staging).
    pub(super) fn created(&self) -> usize {
        self.state.borrow().created
    }

    /// How many readbacks were mapped (GPU -> host round trips).
    pub(super) fn maps(&self) -> u64 {
        self.state.borrow().maps
    }

    fn create(&self, bucket: u64, usage: wgpu::BufferUsages, label: &str) -> wgpu::Buffer {
        self.state.borrow_mut().created += 1;
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bucket,
            usage,
            mapped_at_creation: false,
        })
    }

    fn give_storage(&self, buffer: wgpu::Buffer) {
        // A drop during a pool borrow cannot happen: the pool never drops GpuBuffers.
        if let Ok(mut st) = self.state.try_borrow_mut() {
            st.storage.pending.entry(buffer.size()).or_default().push(buffer);
        }
    }
}

/// A storage buffer dropped with its tensor comes back to the pool.
impl BufferHome for BufferPool {
    fn give_back(&self, buffer: wgpu::Buffer) {
        self.give_storage(buffer);
    }
}

/// A readback staging buffer on loan from the pool; unmapped and returned on drop, so an
/// early error return cannot leak it.
pub(super) struct Staging<'p> {
    buffer: wgpu::Buffer,
    pool: &'p BufferPool,
    /// Set once `map_read` was called; unmapping a never-mapped buffer is a wgpu error.
    mapping: std::cell::Cell<bool>,
}

impl<'p> Staging<'p> {
    pub(super) fn new(pool: &'p BufferPool, bytes: u64) -> Self {
        Staging {
            buffer: pool.staging(bytes),
            pool,
            mapping: std::cell::Cell::new(false),
        }
    }

    pub(super) fn raw(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Starts mapping the first `bytes` bytes for reading; `done` runs when it is ready.
    pub(super) fn map_read(
        &self,
        bytes: u64,
        done: impl FnOnce(Result<(), wgpu::BufferAsyncError>) + wgpu::WasmNotSend + 'static,
    ) {
        self.mapping.set(true);
        self.pool.state.borrow_mut().maps += 1;
        self.buffer.slice(..bytes).map_async(wgpu::MapMode::Read, done);
    }
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        if self.mapping.get() {
            self.buffer.unmap();
        }
        self.pool.give_staging(self.buffer.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::bucket_for;

    #[test]
    fn buckets_are_powers_of_two_of_at_least_256_bytes() {
        assert_eq!(bucket_for(0), 256);
        assert_eq!(bucket_for(4), 256);
        assert_eq!(bucket_for(257), 512);
        assert_eq!(bucket_for(1 << 20), 1 << 20);
        assert_eq!(bucket_for((1 << 20) + 1), 2 << 20);
    }
}
