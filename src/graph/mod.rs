//! Graph executor: ops are recorded once with their shapes, checked, planned onto reusable
//! buffers, and then replayed as one GPU submission per call (one forward pass or one decode
//! step). ARCHITECTURE.md describes the design.

mod plan;

pub use plan::Plan;

use std::rc::Rc;

use crate::error::{Error, Result};
use crate::gpu::{Binding, GpuContext, Kernel};

/// A handle to a tensor of one [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tensor(pub(crate) usize);

/// Element type; both are 4 bytes wide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float: activations, weights and caches.
    F32,
    /// 32-bit unsigned integer: token ids, cache tables and top-k results.
    U32,
}

pub(crate) enum Storage {
    /// A buffer that lives outside the graph: weights, caches, and inputs written by the caller.
    External(Rc<wgpu::Buffer>),
    /// An intermediate or output; the planner assigns it a pooled buffer.
    Planned,
}

pub(crate) struct TensorInfo {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub storage: Storage,
    pub name: String,
}

impl TensorInfo {
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn bytes(&self) -> u64 {
        (self.elements().max(1) * 4) as u64
    }
}

pub(crate) struct Node {
    pub kernel: Kernel,
    /// The kernel's uniform parameters as 32-bit words.
    pub params: Vec<u32>,
    /// Tensors in binding order, after the uniform bindings.
    pub args: Vec<Tensor>,
    pub workgroups: [u32; 3],
}

/// A recorded sequence of GPU ops over tensors of known shapes.
pub struct Graph<'a> {
    pub(crate) ctx: &'a GpuContext,
    pub(crate) tensors: Vec<TensorInfo>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) outputs: Vec<Tensor>,
    dummy: Option<Tensor>,
}

impl<'a> Graph<'a> {
    /// Creates an empty graph whose buffers and pipelines belong to `ctx`.
    pub fn new(ctx: &'a GpuContext) -> Self {
        Graph { ctx, tensors: Vec::new(), nodes: Vec::new(), outputs: Vec::new(), dummy: None }
    }

    /// Returns the GPU context the graph records for.
    pub fn context(&self) -> &'a GpuContext {
        self.ctx
    }

    /// Adds a tensor backed by an existing buffer (weights, caches).
    pub fn external(&mut self, name: &str, buffer: Rc<wgpu::Buffer>, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let needed = (shape.iter().product::<usize>() * 4) as u64;
        if buffer.size() < needed {
            return Err(Error::shape(
                "external tensor",
                format!("`{name}` of shape {shape:?} needs {needed} bytes, its buffer has {}", buffer.size()),
            ));
        }
        Ok(self.push(name, shape, dtype, Storage::External(buffer)))
    }

    /// Adds an input that the caller fills before each run with [`Plan::write`].
    pub fn input(&mut self, name: &str, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let bytes = (shape.iter().product::<usize>().max(1) * 4) as u64;
        self.ctx.check_buffer_size(name, bytes)?;
        let buffer = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(name),
            size: bytes.next_multiple_of(16),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        Ok(self.push(name, shape, dtype, Storage::External(Rc::new(buffer))))
    }

    /// Marks a tensor as a result that the caller may read back; its buffer is never reused.
    pub fn output(&mut self, tensor: Tensor) {
        if !self.outputs.contains(&tensor) {
            self.outputs.push(tensor);
        }
    }

    /// Returns the shape of a tensor of this graph.
    pub fn shape(&self, tensor: Tensor) -> &[usize] {
        &self.tensors[tensor.0].shape
    }

    pub(crate) fn dtype(&self, tensor: Tensor) -> DType {
        self.tensors[tensor.0].dtype
    }

    pub(crate) fn name(&self, tensor: Tensor) -> &str {
        &self.tensors[tensor.0].name
    }

    pub(crate) fn temp(&mut self, name: &str, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let bytes = (shape.iter().product::<usize>().max(1) * 4) as u64;
        self.ctx.check_buffer_size(name, bytes)?;
        Ok(self.push(name, shape, dtype, Storage::Planned))
    }

    /// Returns a 16-byte buffer to bind where a kernel's optional operand (bias, residual, mask) is unused.
    pub(crate) fn dummy(&mut self) -> Tensor {
        if let Some(dummy) = self.dummy {
            return dummy;
        }
        let buffer = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("unused operand"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let dummy = self.push("unused operand", &[4], DType::F32, Storage::External(Rc::new(buffer)));
        self.dummy = Some(dummy);
        dummy
    }

    fn push(&mut self, name: &str, shape: &[usize], dtype: DType, storage: Storage) -> Tensor {
        self.tensors.push(TensorInfo { shape: shape.to_vec(), dtype, storage, name: name.to_string() });
        Tensor(self.tensors.len() - 1)
    }

    /// Records a dispatch. `args` follow the kernel's bindings after its uniform bindings.
    pub(crate) fn push_node(&mut self, kernel: Kernel, params: Vec<u32>, args: Vec<Tensor>, workgroups: [u32; 3]) -> Result<()> {
        let storage_bindings = kernel.bindings().iter().filter(|b| **b != Binding::Uniform).count();
        debug_assert_eq!(storage_bindings, args.len(), "{kernel:?} binds {storage_bindings} buffers");
        let max = self.ctx.limits.max_compute_workgroups_per_dimension;
        if workgroups.iter().any(|&n| n > max) {
            return Err(Error::BufferTooLarge {
                what: format!("{} dispatch {:?}", kernel.entry_point(), workgroups),
                bytes: *workgroups.iter().max().unwrap_or(&0) as u64,
                limit: max as u64,
                limit_name: "dispatch dimension (max_compute_workgroups_per_dimension)",
            });
        }
        if workgroups.contains(&0) {
            return Err(Error::shape(kernel.entry_point(), format!("empty dispatch {workgroups:?}")));
        }
        self.nodes.push(Node { kernel, params, args, workgroups });
        Ok(())
    }

    /// Plans buffers, creates bind groups and returns the replayable plan.
    pub fn build(self) -> Result<Plan> {
        Plan::new(self)
    }
}
