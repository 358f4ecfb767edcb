//! Zero-shot classification with the bundled demo model: which label fits each image best.
//!
//! `cargo run --example zero_shot -- "a single blue circle,a red square above a green triangle" examples/images/*.png`

use coca_wgpu::{Coca, GpuContext, GpuOptions};

fn main() -> coca_wgpu::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((labels, images)) = args.split_first() else {
        eprintln!("usage: zero_shot \"label one,label two\" IMAGE...");
        std::process::exit(2);
    };
    let labels: Vec<&str> = labels.split(',').map(str::trim).collect();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/models/demo");
    let config = std::fs::read_to_string(format!("{dir}/open_clip_config.json")).map_err(|e| coca_wgpu::Error::io(dir, e))?;
    let weights = std::fs::read(format!("{dir}/open_clip_model.safetensors")).map_err(|e| coca_wgpu::Error::io(dir, e))?;

    let ctx = pollster::block_on(GpuContext::new(&GpuOptions::default()))?;
    let mut coca = Coca::from_bytes(ctx, &config, &weights, "demo model")?;
    for path in images {
        let image = std::fs::read(path).map_err(|e| coca_wgpu::Error::io(path, e))?;
        let probabilities = pollster::block_on(coca.classify(&[image], &labels))?.remove(0);
        for (label, p) in labels.iter().zip(&probabilities) {
            println!("{path}\t{label}\t{p:.3}");
        }
    }
    Ok(())
}
