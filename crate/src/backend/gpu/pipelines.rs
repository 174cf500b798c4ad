//! Op families, kernels and the pipeline cache. A `Family` is one WGSL file and its
//! kernels; a `Kernel` names a WGSL entry point and the storage bindings it uses. Its
//! shader module, bind group layout and compute pipeline are created the first time it is
//! dispatched (or at warm-up) and reused for the life of the backend.
//!
//! Binding convention, in every shader file: `@group(0) @binding(0)` is the entry point's
//! uniform parameter struct; storage buffers follow with the numbers listed in the kernel.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// One op family on the GPU, named alike everywhere: `gpu/<name>.rs` encodes its ops,
/// `shaders/<name>.wgsl` (`source`) holds its entry points, each named `<name>_<variant>`,
/// and `kernels` lists every one of them that the backend dispatches. Each family file
/// defines one as a `static`; `SHADER_FAMILIES` in `gpu/mod.rs` lists them all.
pub struct Family {
    pub name: &'static str,
    pub source: &'static str,
    pub(super) kernels: &'static [&'static Kernel],
}

impl Family {
    /// The entry points of this family's kernels, in the order the family file lists them.
    pub fn entry_points(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kernels.iter().map(|k| k.entry)
    }
}

/// How an entry point uses a storage binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Access {
    Read,
    ReadWrite,
}

/// A compute entry point and its storage bindings `(binding number, access)`, in the order
/// buffers are passed to `Recorder::dispatch`.
pub(super) struct Kernel {
    pub family: &'static Family,
    pub entry: &'static str,
    pub storage: &'static [(u32, Access)],
}

/// What a dispatch needs from the cache.
pub(super) struct Pipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

#[derive(Default)]
struct Cache {
    /// By family name.
    modules: HashMap<&'static str, wgpu::ShaderModule>,
    layouts: HashMap<&'static [(u32, Access)], wgpu::BindGroupLayout>,
    pipelines: HashMap<&'static str, Rc<Pipeline>>,
}

pub(super) struct PipelineCache {
    device: wgpu::Device,
    cache: RefCell<Cache>,
}

impl PipelineCache {
    pub(super) fn new(device: wgpu::Device) -> Self {
        PipelineCache {
            device,
            cache: RefCell::new(Cache::default()),
        }
    }

    /// The pipeline for `kernel`, created on first use. Creation errors (a shader that does
    /// not compile, a layout mismatch) surface through the device's error sink at the next
    /// flush, naming the entry point.
    pub(super) fn get(&self, kernel: &Kernel) -> Rc<Pipeline> {
        if let Some(p) = self.cache.borrow().pipelines.get(kernel.entry) {
            return Rc::clone(p);
        }
        let mut cache = self.cache.borrow_mut();
        let family = kernel.family;
        let module = cache
            .modules
            .entry(family.name)
            .or_insert_with(|| {
                self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(&format!("{}.wgsl", family.name)),
                    source: wgpu::ShaderSource::Wgsl(family.source.into()),
                })
            })
            .clone();
        let layout = cache
            .layouts
            .entry(kernel.storage)
            .or_insert_with(|| self.create_layout(kernel.storage))
            .clone();
        let pipeline_layout = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(kernel.entry),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel.entry),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(kernel.entry),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            cache: None,
        });
        let entry = Rc::new(Pipeline { pipeline, layout });
        cache.pipelines.insert(kernel.entry, Rc::clone(&entry));
        entry
    }

    /// How many pipelines exist (each created once).
    pub(super) fn len(&self) -> usize {
        self.cache.borrow().pipelines.len()
    }

    /// Binding 0: the uniform params; then the kernel's storage bindings.
    fn create_layout(&self, storage: &[(u32, Access)]) -> wgpu::BindGroupLayout {
        let uniform = wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let entries: Vec<wgpu::BindGroupLayoutEntry> = std::iter::once(uniform)
            .chain(storage.iter().map(|&(binding, access)| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: access == Access::Read,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            }))
            .collect();
        self.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: None,
            entries: &entries,
        })
    }
}
