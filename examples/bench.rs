//! Times coca-wgpu on a full-size architecture with synthesized weights: image encoding, greedy
//! decoding and beam search, a batch of images against as many single calls, plus per-step
//! dispatch and readback counts.
//!
//! `cargo run --release --example bench -- [coca_ViT-B-32] [runs] [batch]`; compare with
//! `python scripts/bench_open_clip.py` (open_clip on the CPU) on the same machine.

use coca_wgpu::model::weights::HostWeights;
use coca_wgpu::{Coca, CocaConfig, GenerationConfig, GenerationType, GpuContext, GpuOptions};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> coca_wgpu::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map(String::as_str).unwrap_or("coca_ViT-B-32");
    let runs: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(3);
    let batch: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(8);

    let ctx = pollster::block_on(GpuContext::new(&GpuOptions::default()))?;
    eprintln!("adapter: {} ({:?})", ctx.adapter_info.name, ctx.adapter_info.backend);
    let config = CocaConfig::builtin(name)?;
    let dims = config.dims()?;
    let clock = std::time::Instant::now();
    let weights = HostWeights::synthesized(&dims, false);
    let mut coca = Coca::new(ctx, config, weights)?;
    eprintln!("weights synthesized and uploaded in {:.1} s", clock.elapsed().as_secs_f64());
    let size = dims.image_size;
    let pixels = coca_wgpu::synth::generate("input.image", 3 * size * size, coca_wgpu::synth::Init::Uniform { center: 0.0, scale: 1.0 });

    let time = |label: &str, coca: &mut Coca, f: &dyn Fn(&mut Coca) -> coca_wgpu::Result<()>| -> coca_wgpu::Result<f64> {
        f(coca)?; // warm-up: builds the plans
        let mut times = Vec::new();
        for _ in 0..runs {
            let clock = std::time::Instant::now();
            f(coca)?;
            times.push(clock.elapsed().as_secs_f64());
        }
        let m = median(times);
        eprintln!("{label}: median {m:.3} s over {runs} runs");
        Ok(m)
    };

    let encode = time("encode_image", &mut coca, &|c| pollster::block_on(c.encode_image(&pixels, 1, true)).map(|_| ()))?;
    let greedy_config = GenerationConfig { generation_type: GenerationType::TopK, top_k: 1, min_seq_len: 30 - 1, ..Default::default() };
    let greedy = time("greedy 30 tokens", &mut coca, &|c| pollster::block_on(c.generate(&pixels, 1, &greedy_config, None)).map(|_| ()))?;
    let greedy_stats = coca.last_generation.clone();
    let beam_config = GenerationConfig { num_beams: 6, num_beam_groups: 1, min_seq_len: 30 - 1, ..Default::default() };
    let beam = time("beam search 6 x 30", &mut coca, &|c| pollster::block_on(c.generate(&pixels, 1, &beam_config, None)).map(|_| ()))?;
    let beam_stats = coca.last_generation.clone();

    let many: Vec<f32> = pixels.iter().cycle().take(batch * pixels.len()).cloned().collect();
    let batched = time(&format!("greedy batch of {batch}"), &mut coca, &|c| {
        pollster::block_on(c.generate(&many, batch, &greedy_config, None)).map(|_| ())
    })?;
    // The same images as single calls, one after the other (the plans exist already).
    let singles = |c: &mut Coca, config: &GenerationConfig| -> coca_wgpu::Result<()> {
        for _ in 0..batch {
            pollster::block_on(c.generate(&pixels, 1, config, None))?;
        }
        Ok(())
    };
    let greedy_singles = time(&format!("greedy, {batch} single calls"), &mut coca, &|c| singles(c, &greedy_config))?;
    // The library's default beam search (6 beams in 3 groups, log-probability scores).
    let default_beam = GenerationConfig { min_seq_len: 30 - 1, ..Default::default() };
    let beam_batched = time(&format!("beam 6x3, batch of {batch}"), &mut coca, &|c| {
        pollster::block_on(c.generate(&many, batch, &default_beam, None)).map(|_| ())
    })?;
    let beam_singles = time(&format!("beam 6x3, {batch} single calls"), &mut coca, &|c| singles(c, &default_beam))?;

    println!(
        "{}",
        serde_json::json!({
            "model": name,
            "runs": runs,
            "encode_image_s": encode,
            "greedy_30_s": greedy,
            "greedy_steps": greedy_stats.steps,
            "beam_6x30_s": beam,
            "beam_steps": beam_stats.steps,
            "greedy_batch_s": batched,
            "greedy_singles_s": greedy_singles,
            "greedy_captions_per_s": { "batch": batch as f64 / batched, "single_calls": batch as f64 / greedy_singles },
            "beam_6x3_batch_s": beam_batched,
            "beam_6x3_singles_s": beam_singles,
            "beam_6x3_captions_per_s": { "batch": batch as f64 / beam_batched, "single_calls": batch as f64 / beam_singles },
            "batch": batch,
            "dispatches_per_step": beam_stats.dispatches_per_step,
            "bytes_read_per_step_greedy": greedy_stats.bytes_read_per_step,
            "bytes_read_per_step_beam": beam_stats.bytes_read_per_step,
        })
    );
    Ok(())
}
