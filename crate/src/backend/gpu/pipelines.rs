//! Kernels and the pipeline cache. A `Kernel` names a WGSL entry point and the storage
//! bindings it uses; its shader module, bind group layout and compute pipeline are created
//! the first time it is dispatched and reused for the life of the backend.
//!
//! Binding convention, in every shader file: `@group(0) @binding(0)` is the entry point's
//! uniform parameter struct; storage buffers follow with the numbers listed in the kernel.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// One WGSL file per op family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Shader {
    Conv2d,
    Matmul,
    Pool,
    Elementwise,
    Loss,
    Optim,
    Upsample,
    BatchNorm,
    Concat,
    Regularize,
}

impl Shader {
    fn source(self) -> &'static str {
        match self {
            Shader::Conv2d => include_str!("../../../../shaders/conv2d.wgsl"),
            Shader::Matmul => include_str!("../../../../shaders/matmul.wgsl"),
            Shader::Pool => include_str!("../../../../shaders/pool.wgsl"),
            Shader::Elementwise => include_str!("../../../../shaders/elementwise.wgsl"),
            Shader::Loss => include_str!("../../../../shaders/loss.wgsl"),
            Shader::Optim => include_str!("../../../../shaders/optim.wgsl"),
            Shader::Upsample => include_str!("../../../../shaders/upsample.wgsl"),
            Shader::BatchNorm => include_str!("../../../../shaders/batchnorm.wgsl"),
            Shader::Concat => include_str!("../../../../shaders/concat.wgsl"),
            Shader::Regularize => include_str!("../../../../shaders/regularize.wgsl"),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Shader::Conv2d => "conv2d.wgsl",
            Shader::Matmul => "matmul.wgsl",
            Shader::Pool => "pool.wgsl",
            Shader::Elementwise => "elementwise.wgsl",
            Shader::Loss => "loss.wgsl",
            Shader::Optim => "optim.wgsl",
            Shader::Upsample => "upsample.wgsl",
            Shader::BatchNorm => "batchnorm.wgsl",
            Shader::Concat => "concat.wgsl",
            Shader::Regularize => "regularize.wgsl",
        }
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
    pub shader: Shader,
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
    modules: HashMap<Shader, wgpu::ShaderModule>,
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
        let module = cache
            .modules
            .entry(kernel.shader)
            .or_insert_with(|| {
                self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(kernel.shader.label()),
                    source: wgpu::ShaderSource::Wgsl(kernel.shader.source().into()),
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
