//! Image and text embeddings with the bundled demo model, and their cosine similarities.
//!
//! `cargo run --example embed -- examples/images/shapes-2.png "a single blue circle" "a yellow square"`

use coca_wgpu::{Coca, GpuContext, GpuOptions};

fn main() -> coca_wgpu::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((image_path, texts)) = args.split_first() else {
        eprintln!("usage: embed IMAGE TEXT...");
        std::process::exit(2);
    };
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/models/demo");
    let config = std::fs::read_to_string(format!("{dir}/open_clip_config.json")).map_err(|e| coca_wgpu::Error::io(dir, e))?;
    let weights = std::fs::read(format!("{dir}/open_clip_model.safetensors")).map_err(|e| coca_wgpu::Error::io(dir, e))?;

    let ctx = pollster::block_on(GpuContext::new(&GpuOptions::default()))?;
    let mut coca = Coca::from_bytes(ctx, &config, &weights, "demo model")?;
    let image = std::fs::read(image_path).map_err(|e| coca_wgpu::Error::io(image_path, e))?;
    let image_features = pollster::block_on(coca.embed_images(&[image], true))?.remove(0);
    let text_features = pollster::block_on(coca.embed_texts(texts, true))?;
    println!("image embedding: {} values, first {:?}", image_features.len(), &image_features[..4]);
    for (text, features) in texts.iter().zip(&text_features) {
        let cosine: f32 = image_features.iter().zip(features).map(|(a, b)| a * b).sum();
        println!("cosine similarity with {text:?}: {cosine:.4}");
    }
    Ok(())
}
