//! Probe: a naive one-thread-per-output matmul, to calibrate kernel speed on this driver.
use wgpu::util::DeviceExt;
fn main() {
    let ctx = pollster::block_on(coca_wgpu::GpuContext::new(&coca_wgpu::GpuOptions::default())).unwrap();
    let src = std::fs::read_to_string("/tmp/naive/naive.wgsl").unwrap();
    let module = ctx.device.create_shader_module(wgpu::ShaderModuleDescriptor { label: None, source: wgpu::ShaderSource::Wgsl(src.into()) });
    let pipeline = ctx.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor { label: None, layout: None, module: &module, entry_point: Some("naive"), compilation_options: Default::default(), cache: None });
    for &(m, n, k) in &[(1u32, 49408u32, 512u32), (6, 49408, 512), (6, 2048, 512), (50, 2304, 768)] {
        let params = ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: bytemuck::cast_slice(&[m, n, k, 0]), usage: wgpu::BufferUsages::UNIFORM });
        let x = ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: bytemuck::cast_slice(&vec![0.5f32; (m * k) as usize]), usage: wgpu::BufferUsages::STORAGE });
        let w = ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: bytemuck::cast_slice(&vec![0.5f32; (n * k) as usize]), usage: wgpu::BufferUsages::STORAGE });
        let y = ctx.device.create_buffer(&wgpu::BufferDescriptor { label: None, size: (m * n * 4) as u64, usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
        let bg = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &pipeline.get_bind_group_layout(0), entries: &[
            wgpu::BindGroupEntry { binding: 0, resource: params.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 1, resource: x.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 2, resource: w.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 3, resource: y.as_entire_binding() }] });
        let run = || {
            let mut e = ctx.device.create_command_encoder(&Default::default());
            { let mut pass = e.begin_compute_pass(&Default::default()); pass.set_pipeline(&pipeline); pass.set_bind_group(0, &bg, &[]); pass.dispatch_workgroups(n.div_ceil(64), 1, 1); }
            ctx.queue.submit([e.finish()]);
            ctx.device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
        };
        run();
        let t = std::time::Instant::now();
        for _ in 0..5 { run(); }
        let s = t.elapsed().as_secs_f64() / 5.0;
        println!("naive m={m} n={n} k={k}: {:.2} ms, {:.2} GFLOP/s", s * 1e3, 2.0 * (m as f64 * n as f64 * k as f64) / s / 1e9);
    }
}
