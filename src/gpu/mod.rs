//! GPU context: adapter and device selection, limits, and the cache of compute pipelines.

mod kernels;
mod readback;

pub use kernels::{Activation, Binding, Kernel};
pub use kernels::all_shaders;
pub(crate) use readback::read_buffer;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::error::{Error, Result};

/// How to pick the adapter and compile kernels.
#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Backends to try, e.g. `wgpu::Backends::VULKAN`. `None` reads `WGPU_BACKEND` (a comma list
    /// such as `vulkan,metal`) and falls back to every backend of this platform.
    pub backends: Option<wgpu::Backends>,
    /// Adapter preference; high performance picks a discrete GPU over an integrated one.
    pub power_preference: wgpu::PowerPreference,
    /// Compile kernels without wgpu's runtime bounds checks (native only). Every kernel indexes
    /// within the sizes that the Rust side checks before dispatch, so this is safe for kernels
    /// launched through [`crate::graph`]; it makes them several times faster on software drivers.
    pub trusted_kernels: bool,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            backends: None,
            power_preference: wgpu::PowerPreference::HighPerformance,
            trusted_kernels: cfg!(not(target_arch = "wasm32")),
        }
    }
}

/// Parses a backend list such as `vulkan`, `metal`, `dx12`, `gl`, `webgpu` or a comma list of them.
pub fn parse_backends(text: &str) -> Result<wgpu::Backends> {
    let backends = wgpu::Backends::from_comma_list(text);
    if backends.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "unknown GPU backend `{text}`; use one or more of vulkan, metal, dx12, gl, webgpu (comma separated)"
        )));
    }
    Ok(backends)
}

/// Lower-case names of a backend set, e.g. "vulkan, metal".
fn backend_names(backends: wgpu::Backends) -> String {
    let names = [
        (wgpu::Backends::VULKAN, "vulkan"),
        (wgpu::Backends::METAL, "metal"),
        (wgpu::Backends::DX12, "dx12"),
        (wgpu::Backends::GL, "gl"),
        (wgpu::Backends::BROWSER_WEBGPU, "webgpu"),
    ];
    let listed: Vec<&str> = names.iter().filter(|(flag, _)| backends.contains(*flag)).map(|(_, name)| *name).collect();
    listed.join(", ")
}

/// A device and queue with the pipelines compiled for them.
pub struct GpuContext {
    /// The device that owns every buffer and pipeline of the model.
    pub device: wgpu::Device,
    /// The device's queue, for uploads and submissions.
    pub queue: wgpu::Queue,
    /// Name, backend and driver of the chosen adapter.
    pub adapter_info: wgpu::AdapterInfo,
    /// Limits the device was created with: wgpu's defaults, raised to the adapter's storage
    /// binding, buffer and workgroup storage sizes.
    pub limits: wgpu::Limits,
    /// Features enabled on the device. None are requested, so this is always empty.
    pub features: wgpu::Features,
    trusted_kernels: bool,
    pipelines: RefCell<HashMap<Kernel, Rc<CompiledKernel>>>,
    modules: RefCell<HashMap<&'static str, Rc<wgpu::ShaderModule>>>,
}

pub(crate) struct CompiledKernel {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

impl GpuContext {
    /// Picks an adapter and creates a device with the limits that model weights need.
    pub async fn new(options: &GpuOptions) -> Result<GpuContext> {
        let mut instance_desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        let backends = match options.backends {
            Some(backends) => backends,
            None => wgpu::Backends::from_env().unwrap_or(instance_desc.backends),
        };
        instance_desc.backends = backends;
        let instance = wgpu::Instance::new(instance_desc);

        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: options.power_preference,
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await
            .map_err(|_| {
                if options.backends.is_some() || wgpu::Backends::from_env().is_some() {
                    Error::NoAdapterForBackend { backends: backend_names(backends) }
                } else {
                    Error::NoAdapter
                }
            })?;
        let adapter_info = adapter.get_info();

        // Weight tensors such as the 49408 x 768 token embedding of ViT-L-14 exceed the WebGPU
        // default of 128 MiB per binding, so ask for whatever this adapter supports.
        let supported = adapter.limits();
        let mut limits = wgpu::Limits::default();
        limits.max_storage_buffer_binding_size = supported.max_storage_buffer_binding_size;
        limits.max_buffer_size = supported.max_buffer_size;
        limits.max_storage_buffers_per_shader_stage =
            supported.max_storage_buffers_per_shader_stage.max(limits.max_storage_buffers_per_shader_stage);
        limits.max_compute_workgroup_storage_size = supported.max_compute_workgroup_storage_size;

        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("coca-wgpu"),
                required_features: wgpu::Features::empty(),
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::DeviceCreation { adapter: adapter_info.name.clone(), reason: e.to_string() })?;

        log::info!(
            "GPU adapter: {} ({:?}, driver {} {})",
            adapter_info.name,
            adapter_info.backend,
            adapter_info.driver,
            adapter_info.driver_info
        );
        Ok(GpuContext {
            device,
            queue,
            adapter_info,
            limits,
            features: wgpu::Features::empty(),
            trusted_kernels: options.trusted_kernels && cfg!(not(target_arch = "wasm32")),
            pipelines: RefCell::new(HashMap::new()),
            modules: RefCell::new(HashMap::new()),
        })
    }

    /// Returns whether kernels are compiled without runtime bounds checks.
    pub fn trusted_kernels(&self) -> bool {
        self.trusted_kernels
    }

    /// Checks that a buffer of `bytes` bytes can be created and bound as storage.
    pub fn check_buffer_size(&self, what: &str, bytes: u64) -> Result<()> {
        let binding_limit = self.limits.max_storage_buffer_binding_size;
        if bytes > binding_limit {
            return Err(Error::BufferTooLarge {
                what: what.to_string(),
                bytes,
                limit: binding_limit,
                limit_name: "storage buffer binding (max_storage_buffer_binding_size)",
            });
        }
        if bytes > self.limits.max_buffer_size {
            return Err(Error::BufferTooLarge {
                what: what.to_string(),
                bytes,
                limit: self.limits.max_buffer_size,
                limit_name: "buffer (max_buffer_size)",
            });
        }
        Ok(())
    }

    pub(crate) fn kernel(&self, kernel: Kernel) -> Rc<CompiledKernel> {
        if let Some(compiled) = self.pipelines.borrow().get(&kernel) {
            return compiled.clone();
        }
        let module = self.module(kernel.shader_file(), kernel.shader_source());
        let entries: Vec<wgpu::BindGroupLayoutEntry> = kernel
            .bindings()
            .iter()
            .enumerate()
            .map(|(index, binding)| wgpu::BindGroupLayoutEntry {
                binding: index as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: match binding {
                    Binding::Uniform => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    Binding::Read | Binding::ReadWrite => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: matches!(binding, Binding::Read) },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                },
                count: None,
            })
            .collect();
        let layout = self.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(kernel.entry_point()),
            entries: &entries,
        });
        let pipeline_layout = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(kernel.entry_point()),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let constants = kernel.constants();
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel.entry_point()),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(kernel.entry_point()),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        let compiled = Rc::new(CompiledKernel { pipeline, layout });
        self.pipelines.borrow_mut().insert(kernel, compiled.clone());
        compiled
    }

    fn module(&self, name: &'static str, source: &'static str) -> Rc<wgpu::ShaderModule> {
        if let Some(module) = self.modules.borrow().get(name) {
            return module.clone();
        }
        let desc = wgpu::ShaderModuleDescriptor { label: Some(name), source: wgpu::ShaderSource::Wgsl(source.into()) };
        let module = if self.trusted_kernels {
            // SAFETY: every dispatch goes through `graph`, whose op builders check that each index
            // a kernel computes stays inside the bound buffers (see the shape checks in `ops`).
            unsafe { self.device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked()) }
        } else {
            self.device.create_shader_module(desc)
        };
        let module = Rc::new(module);
        self.modules.borrow_mut().insert(name, module.clone());
        module
    }

    /// Describes the adapter, backend, driver, limits and features in readable lines.
    pub fn describe(&self) -> String {
        let info = &self.adapter_info;
        let l = &self.limits;
        format!(
            "adapter: {}\nbackend: {:?}\ndevice type: {:?}\ndriver: {} {}\nvendor/device id: {:#06x}/{:#06x}\n\
             trusted kernels (no runtime bounds checks): {}\n\
             limits:\n  max_storage_buffer_binding_size: {}\n  max_buffer_size: {}\n  \
             max_storage_buffers_per_shader_stage: {}\n  max_compute_workgroup_storage_size: {}\n  \
             max_compute_workgroups_per_dimension: {}\n  max_compute_invocations_per_workgroup: {}\n\
             adapter features: {:?}",
            info.name,
            info.backend,
            info.device_type,
            info.driver,
            info.driver_info,
            info.vendor,
            info.device,
            self.trusted_kernels,
            l.max_storage_buffer_binding_size,
            l.max_buffer_size,
            l.max_storage_buffers_per_shader_stage,
            l.max_compute_workgroup_storage_size,
            l.max_compute_workgroups_per_dimension,
            l.max_compute_invocations_per_workgroup,
            self.features,
        )
    }
}
