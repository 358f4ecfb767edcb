//! Times single ops on the current adapter, for tuning kernels: `cargo run --example op_timing`.

use std::rc::Rc;

use coca_wgpu::gpu::Activation;
use coca_wgpu::graph::{DType, Graph};
use coca_wgpu::{GpuContext, GpuOptions};
use wgpu::util::DeviceExt;

/// Runs `plan` once to warm up, then returns the mean milliseconds of five runs.
fn time_plan(ctx: &GpuContext, plan: &coca_wgpu::graph::Plan, read: coca_wgpu::graph::Tensor) -> f64 {
    pollster::block_on(plan.run(ctx, 0, &[read])).unwrap();
    let clock = std::time::Instant::now();
    for _ in 0..5 {
        pollster::block_on(plan.run(ctx, 0, &[read])).unwrap();
    }
    clock.elapsed().as_secs_f64() / 5.0 * 1e3
}

fn main() {
    let trusted = std::env::var("CHECKED").is_err();
    let ctx = pollster::block_on(GpuContext::new(&GpuOptions { trusted_kernels: trusted, ..GpuOptions::default() })).unwrap();
    for &(m, n, k) in &[(1usize, 49408usize, 64usize), (1, 49408, 512), (6, 49408, 512), (1, 256, 64), (6, 2048, 512), (65, 384, 128), (50, 2304, 768)] {
        let mut g = Graph::new(&ctx);
        let x = vec![0.5f32; m * k];
        let w = vec![0.25f32; n * k];
        let make = |g: &mut Graph, data: &[f32], shape: &[usize]| {
            let b = g.context().device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytemuck::cast_slice(data),
                usage: wgpu::BufferUsages::STORAGE,
            });
            g.external("t", Rc::new(b), shape, DType::F32).unwrap()
        };
        let xt = make(&mut g, &x, &[m, k]);
        let wt = make(&mut g, &w, &[n, k]);
        let y = g.linear("y", xt, wt, None, Activation::None, None).unwrap();
        g.output(y);
        let plan = g.build().unwrap();
        pollster::block_on(plan.run(&ctx, 0, &[y])).unwrap();
        let clock = std::time::Instant::now();
        for _ in 0..5 {
            pollster::block_on(plan.run(&ctx, 0, &[])).unwrap();
            ctx.device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
        }
        let s = clock.elapsed().as_secs_f64() / 5.0;
        println!("linear m={m} n={n} k={k}: {:.2} ms, {:.2} GFLOP/s", s * 1e3, 2.0 * (m * n * k) as f64 / s / 1e9);
    }
    for &(rows, k) in &[(1usize, 1usize), (6, 12)] {
        let mut g = Graph::new(&ctx);
        let logits = vec![0.5f32; rows * 49408];
        let b = ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: bytemuck::cast_slice(&logits), usage: wgpu::BufferUsages::STORAGE });
        let lt = g.external("l", Rc::new(b), &[rows, 49408], DType::F32).unwrap();
        let best = g.top_k("best", lt, k, 49407, 5, None, 1.0, false).unwrap();
        g.output(best);
        let plan = g.build().unwrap();
        println!("top_k rows={rows} k={k}: {:.2} ms", time_plan(&ctx, &plan, best));
    }
    for &(rows, dim) in &[(6usize, 512usize), (50, 768), (2048, 512)] {
        let mut g = Graph::new(&ctx);
        let x = g.input("x", &[rows, dim], DType::F32).unwrap();
        let gm = g.input("g", &[dim], DType::F32).unwrap();
        let bt = g.input("b", &[dim], DType::F32).unwrap();
        let y = g.layer_norm("y", x, gm, bt, 1e-5).unwrap();
        g.output(y);
        let plan = g.build().unwrap();
        println!("layer_norm rows={rows} dim={dim}: {:.2} ms", time_plan(&ctx, &plan, y));
    }
    for &(batch, lq, lk, heads) in &[(6usize, 1usize, 255usize, 8usize), (1, 50, 50, 12), (1, 256, 50, 8)] {
        let mut g = Graph::new(&ctx);
        let width = heads * 64;
        let q = g.input("q", &[batch, lq, width], DType::F32).unwrap();
        let kv = g.input("kv", &[batch, lk, 2 * width], DType::F32).unwrap();
        let spec = coca_wgpu::ops::AttentionSpec { batch, lq, lk, heads, head_dim: 64, q_offset: 0, q_batch_stride: lq * width, q_row_stride: width,
            kv_batch_stride: lk * 2 * width, kv_row_stride: 2 * width, k_offset: 0, v_offset: width, kv_div: 1, causal: false, dynamic_len: false, table: None, key_pad_mask: None };
        let y = g.attention("y", q, kv, &spec).unwrap();
        g.output(y);
        let plan = g.build().unwrap();
        println!("attention batch={batch} lq={lq} lk={lk} heads={heads}: {:.2} ms", time_plan(&ctx, &plan, y));
    }
    // Per-dispatch overhead: a chain of 100 tiny ops in one plan.
    let mut g = Graph::new(&ctx);
    let mut x = g.input("x", &[1, 64], DType::F32).unwrap();
    for _ in 0..100 {
        x = g.l2_normalize("y", x).unwrap();
    }
    g.output(x);
    let plan = g.build().unwrap();
    pollster::block_on(plan.run(&ctx, 0, &[x])).unwrap();
    let clock = std::time::Instant::now();
    for _ in 0..5 {
        pollster::block_on(plan.run(&ctx, 0, &[x])).unwrap();
    }
    println!("100 chained tiny dispatches: {:.2} ms per run", clock.elapsed().as_secs_f64() / 5.0 * 1e3);
    // Empty-run overhead.
    let mut g = Graph::new(&ctx);
    let x = g.input("x", &[1, 4], DType::F32).unwrap();
    let y = g.l2_normalize("y", x).unwrap();
    g.output(y);
    let plan = g.build().unwrap();
    let clock = std::time::Instant::now();
    for _ in 0..20 {
        pollster::block_on(plan.run(&ctx, 0, &[y])).unwrap();
    }
    println!("one tiny dispatch with readback: {:.2} ms", clock.elapsed().as_secs_f64() / 20.0 * 1e3);
}
