//! Captions image files with the bundled demo model (or a model folder given with `--model`).
//!
//! `cargo run --example caption -- examples/images/shapes-1.png`

use coca_wgpu::{Coca, GenerationConfig, GpuContext, GpuOptions};

fn main() -> coca_wgpu::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let model = match args.iter().position(|a| a == "--model") {
        Some(i) if i + 1 < args.len() => {
            let folder = args.remove(i + 1);
            args.remove(i);
            folder
        }
        _ => concat!(env!("CARGO_MANIFEST_DIR"), "/models/demo").to_string(),
    };
    let read = |path: &str| std::fs::read(path).map_err(|e| coca_wgpu::Error::io(path, e));
    let config = String::from_utf8_lossy(&read(&format!("{model}/open_clip_config.json"))?).into_owned();
    let weights = read(&format!("{model}/open_clip_model.safetensors"))?;

    let ctx = pollster::block_on(GpuContext::new(&GpuOptions::default()))?;
    let mut coca = Coca::from_bytes(ctx, &config, &weights, "open_clip_model.safetensors")?;
    for path in &args {
        let image = read(path)?;
        let captions = pollster::block_on(coca.caption(&[image], &GenerationConfig::default()))?;
        println!("{path}: {}", captions[0].text);
    }
    Ok(())
}
