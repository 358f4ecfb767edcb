//! Buffer planning and replay of a recorded [`Graph`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::{Graph, Storage, Tensor};
use crate::error::{Error, Result};
use crate::gpu::{read_buffer, Binding, CompiledKernel, GpuContext};

struct CompiledNode {
    kernel: Rc<CompiledKernel>,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
}

/// A compiled graph: buffers assigned, pipelines and bind groups created. Running it encodes every
/// node into one compute pass and one submission.
pub struct Plan {
    nodes: Vec<CompiledNode>,
    buffers: Vec<Rc<wgpu::Buffer>>,
    sizes: Vec<u64>,
    shapes: Vec<Vec<usize>>,
    step: wgpu::Buffer,
    staging: RefCell<HashMap<Tensor, wgpu::Buffer>>,
    /// Bytes held by the planned intermediate buffers.
    pub planned_bytes: u64,
    /// Bytes the intermediates would need without reuse.
    pub unplanned_bytes: u64,
}

impl Plan {
    pub(super) fn new(graph: Graph<'_>) -> Result<Plan> {
        let ctx = graph.ctx;
        let count = graph.tensors.len();

        // Lifetimes: the last node reading each tensor. Outputs live to the end.
        let mut last_use = vec![0usize; count];
        for (index, node) in graph.nodes.iter().enumerate() {
            for arg in &node.args {
                last_use[arg.0] = index;
            }
        }
        for output in &graph.outputs {
            last_use[output.0] = usize::MAX;
        }

        // Greedy assignment of planned tensors to slots, in node order. A node's outputs are
        // assigned before its inputs are released, so no kernel reads and writes one buffer.
        let mut slot_of: Vec<Option<usize>> = vec![None; count];
        let mut slot_sizes: Vec<u64> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut unplanned_bytes = 0;
        for (index, node) in graph.nodes.iter().enumerate() {
            let writes = node.kernel.bindings().iter().filter(|b| **b != Binding::Uniform).map(|b| *b == Binding::ReadWrite);
            for (arg, written) in node.args.iter().zip(writes) {
                let info = &graph.tensors[arg.0];
                if !written || !matches!(info.storage, Storage::Planned) || slot_of[arg.0].is_some() {
                    continue;
                }
                let need = info.bytes();
                unplanned_bytes += need;
                let best_fit = free
                    .iter()
                    .enumerate()
                    .filter(|(_, &slot)| slot_sizes[slot] >= need)
                    .min_by_key(|(_, &slot)| slot_sizes[slot])
                    .map(|(position, _)| position);
                let largest = free.iter().enumerate().max_by_key(|(_, &slot)| slot_sizes[slot]).map(|(position, _)| position);
                let slot = match best_fit.or(largest) {
                    Some(position) => free.swap_remove(position),
                    None => {
                        slot_sizes.push(0);
                        slot_sizes.len() - 1
                    }
                };
                slot_sizes[slot] = slot_sizes[slot].max(need);
                slot_of[arg.0] = Some(slot);
            }
            for arg in &node.args {
                if last_use[arg.0] == index {
                    if let Some(slot) = slot_of[arg.0] {
                        if !free.contains(&slot) {
                            free.push(slot);
                        }
                    }
                }
            }
        }

        let slot_buffers: Vec<Rc<wgpu::Buffer>> = slot_sizes
            .iter()
            .enumerate()
            .map(|(slot, &size)| {
                Rc::new(ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("intermediate {slot}")),
                    size: size.next_multiple_of(16),
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }))
            })
            .collect();

        let mut buffers = Vec::with_capacity(count);
        let mut sizes = Vec::with_capacity(count);
        for (index, info) in graph.tensors.iter().enumerate() {
            let buffer = match (&info.storage, slot_of[index]) {
                (Storage::External(buffer), _) => buffer.clone(),
                (Storage::Planned, Some(slot)) => slot_buffers[slot].clone(),
                (Storage::Planned, None) => {
                    // Never written by any node: a graph-building bug, reported rather than bound.
                    return Err(Error::shape("graph", format!("tensor `{}` is read but never written", info.name)));
                }
            };
            buffers.push(buffer);
            sizes.push(info.bytes());
        }

        let step = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("step"),
            size: 16,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });

        let mut nodes = Vec::with_capacity(graph.nodes.len());
        for node in &graph.nodes {
            nodes.push(compile_node(ctx, node, &buffers, &step)?);
        }

        Ok(Plan {
            nodes,
            buffers,
            sizes,
            shapes: graph.tensors.iter().map(|t| t.shape.clone()).collect(),
            step,
            staging: RefCell::new(HashMap::new()),
            planned_bytes: slot_sizes.iter().sum(),
            unplanned_bytes,
        })
    }

    /// Number of dispatches per run.
    pub fn dispatches(&self) -> usize {
        self.nodes.len()
    }

    /// Copies `data` into an input or external tensor.
    pub fn write<T: bytemuck::Pod>(&self, ctx: &GpuContext, tensor: Tensor, data: &[T]) -> Result<()> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        if bytes.len() as u64 > self.sizes[tensor.0] {
            return Err(Error::shape(
                "write",
                format!("{} bytes do not fit a tensor of {} bytes", bytes.len(), self.sizes[tensor.0]),
            ));
        }
        ctx.queue.write_buffer(&self.buffers[tensor.0], 0, bytes);
        Ok(())
    }

    /// Returns the shape of a tensor of the graph this plan was built from.
    pub fn shape(&self, tensor: Tensor) -> &[usize] {
        &self.shapes[tensor.0]
    }

    pub(crate) fn buffer(&self, tensor: Tensor) -> &Rc<wgpu::Buffer> {
        &self.buffers[tensor.0]
    }

    /// Records every node into `encoder` as one compute pass.
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
        for node in &self.nodes {
            pass.set_pipeline(&node.kernel.pipeline);
            pass.set_bind_group(0, &node.bind_group, &[]);
            pass.dispatch_workgroups(node.workgroups[0], node.workgroups[1], node.workgroups[2]);
        }
    }

    /// Runs the graph once with the step uniform's `pos` and reads back `reads` as raw bytes.
    pub async fn run(&self, ctx: &GpuContext, pos: u32, reads: &[Tensor]) -> Result<Vec<Vec<u8>>> {
        ctx.queue.write_buffer(&self.step, 0, bytemuck::cast_slice(&[pos, 0, 0, 0]));
        let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("run") });
        self.encode(&mut encoder);
        self.copy_to_staging(ctx, &mut encoder, reads);
        ctx.queue.submit([encoder.finish()]);
        self.read_staging(ctx, reads).await
    }

    fn copy_to_staging(&self, ctx: &GpuContext, encoder: &mut wgpu::CommandEncoder, reads: &[Tensor]) {
        let mut staging = self.staging.borrow_mut();
        for tensor in reads {
            let size = self.sizes[tensor.0].next_multiple_of(4);
            let buffer = staging.entry(*tensor).or_insert_with(|| {
                ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("readback"),
                    size,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            });
            encoder.copy_buffer_to_buffer(&self.buffers[tensor.0], 0, buffer, 0, size);
        }
    }

    async fn read_staging(&self, ctx: &GpuContext, reads: &[Tensor]) -> Result<Vec<Vec<u8>>> {
        let mut results = Vec::with_capacity(reads.len());
        for tensor in reads {
            let staging = self.staging.borrow();
            let buffer = &staging[tensor];
            results.push(read_buffer(&ctx.device, buffer, self.sizes[tensor.0]).await?);
        }
        Ok(results)
    }

    /// Reads a tensor back as f32 values.
    pub async fn read_f32(&self, ctx: &GpuContext, tensor: Tensor) -> Result<Vec<f32>> {
        let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("read") });
        self.copy_to_staging(ctx, &mut encoder, &[tensor]);
        ctx.queue.submit([encoder.finish()]);
        let bytes = self.read_staging(ctx, &[tensor]).await?.remove(0);
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }
}

fn compile_node(ctx: &GpuContext, node: &super::Node, buffers: &[Rc<wgpu::Buffer>], step: &wgpu::Buffer) -> Result<CompiledNode> {
    let kernel = ctx.kernel(node.kernel);
    let mut words = node.params.clone();
    words.resize(words.len().next_multiple_of(4).max(4), 0);
    let params = wgpu::util::DeviceExt::create_buffer_init(
        &ctx.device,
        &wgpu::util::BufferInitDescriptor {
            label: Some(node.kernel.entry_point()),
            contents: bytemuck::cast_slice(&words),
            usage: wgpu::BufferUsages::UNIFORM,
        },
    );

    let mut entries = Vec::new();
    let mut args = node.args.iter();
    let mut uniforms_seen = 0;
    for (index, binding) in node.kernel.bindings().iter().enumerate() {
        let resource = match binding {
            Binding::Uniform => {
                uniforms_seen += 1;
                if uniforms_seen == 1 {
                    params.as_entire_binding()
                } else {
                    step.as_entire_binding()
                }
            }
            _ => {
                let tensor = args.next().ok_or_else(|| Error::shape(node.kernel.entry_point(), "missing operand"))?;
                buffers[tensor.0].as_entire_binding()
            }
        };
        entries.push(wgpu::BindGroupEntry { binding: index as u32, resource });
    }
    let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(node.kernel.entry_point()),
        layout: &kernel.layout,
        entries: &entries,
    });
    // The params buffer is kept alive by the bind group.
    Ok(CompiledNode { kernel, bind_group, workgroups: node.workgroups })
}
