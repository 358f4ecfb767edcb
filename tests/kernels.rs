//! Each WGSL kernel against its CPU reference in `coca_wgpu::ops::reference`, on the same inputs,
//! with both the checked and the trusted (no runtime bounds checks) shader paths.

use std::rc::Rc;

use coca_wgpu::gpu::Activation;
use coca_wgpu::graph::{DType, Graph, Tensor};
use coca_wgpu::ops::{reference, AttentionSpec};
use coca_wgpu::{GpuContext, GpuOptions};
use wgpu::util::DeviceExt;

fn contexts() -> Vec<GpuContext> {
    [false, true]
        .into_iter()
        .filter(|trusted| !*trusted || cfg!(not(target_arch = "wasm32")))
        .map(|trusted| {
            let options = GpuOptions { trusted_kernels: trusted, ..GpuOptions::default() };
            pollster::block_on(GpuContext::new(&options)).expect("a GPU adapter (install mesa-vulkan-drivers)")
        })
        .collect()
}

fn values(seed: u64, count: usize, scale: f32) -> Vec<f32> {
    coca_wgpu::synth::generate(&format!("test{seed}"), count, coca_wgpu::synth::Init::Uniform { center: 0.0, scale: scale as f64 })
}

fn upload(graph: &mut Graph, name: &str, data: &[f32], shape: &[usize]) -> Tensor {
    let buffer = graph.context().device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(name),
        contents: bytemuck::cast_slice(data),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
    });
    graph.external(name, Rc::new(buffer), shape, DType::F32).unwrap()
}

fn upload_u32(graph: &mut Graph, name: &str, data: &[u32], shape: &[usize]) -> Tensor {
    let buffer = graph.context().device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(name),
        contents: bytemuck::cast_slice(data),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
    });
    graph.external(name, Rc::new(buffer), shape, DType::U32).unwrap()
}

fn run(graph: Graph, output: Tensor, pos: u32) -> Vec<f32> {
    let ctx = graph.context();
    let plan = graph.build().unwrap();
    let bytes = pollster::block_on(plan.run(ctx, pos, &[output])).unwrap().remove(0);
    bytemuck::pod_collect_to_vec(&bytes)
}

fn assert_close(label: &str, got: &[f32], expected: &[f32], tolerance: f32) {
    assert_eq!(got.len(), expected.len(), "{label}: length");
    let (index, error) = got
        .iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs())
        .enumerate()
        .fold((0, 0.0f32), |best, (i, e)| if e > best.1 { (i, e) } else { best });
    assert!(error <= tolerance, "{label}: max error {error} at {index} (got {}, expected {})", got[index], expected[index]);
}

#[test]
fn every_shader_parses_and_validates() {
    for (file, source) in coca_wgpu::gpu::all_shaders() {
        let module = naga::front::wgsl::parse_str(source).unwrap_or_else(|e| panic!("{file}: {}", e.emit_to_string(source)));
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{file}: {e:?}"));
    }
}

#[test]
fn linear_matches_reference_for_small_and_large_m() {
    for ctx in contexts() {
        for &(m, n, k) in &[(1usize, 37usize, 64usize), (5, 130, 132), (8, 4, 8), (9, 70, 20), (48, 70, 20), (64, 9, 8), (65, 33, 24), (130, 65, 196)] {
            for activation in [Activation::None, Activation::Gelu, Activation::QuickGelu] {
                let x = values(1, m * k, 1.0);
                let w = values(2, n * k, 0.3);
                let b = values(3, n, 0.5);
                let r = values(4, m * n, 1.0);
                let mut graph = Graph::new(&ctx);
                let xt = upload(&mut graph, "x", &x, &[m, k]);
                let wt = upload(&mut graph, "w", &w, &[n, k]);
                let bt = upload(&mut graph, "b", &b, &[n]);
                let rt = upload(&mut graph, "r", &r, &[m, n]);
                let y = graph.linear("y", xt, wt, Some(bt), activation, Some(rt)).unwrap();
                graph.output(y);
                let got = run(graph, y, 0);

                let act = |v: f32| match activation {
                    Activation::None => v,
                    Activation::Gelu => reference::gelu(v),
                    Activation::QuickGelu => reference::quick_gelu(v),
                };
                let expected: Vec<f32> = reference::linear(&x, &w, Some(&b), m, n, k)
                    .iter()
                    .zip(&r)
                    .map(|(v, res)| act(*v) + res)
                    .collect();
                assert_close(&format!("linear {m}x{n}x{k} {activation:?}"), &got, &expected, 2e-5);
            }
        }
    }
}

#[test]
fn linear_without_bias_matches_reference() {
    let ctx = &contexts()[0];
    let (m, n, k) = (12, 20, 16);
    let x = values(5, m * k, 1.0);
    let w = values(6, n * k, 0.3);
    let mut graph = Graph::new(ctx);
    let xt = upload(&mut graph, "x", &x, &[m, k]);
    let wt = upload(&mut graph, "w", &w, &[n, k]);
    let y = graph.linear("y", xt, wt, None, Activation::None, None).unwrap();
    graph.output(y);
    assert_close("linear without bias", &run(graph, y, 0), &reference::linear(&x, &w, None, m, n, k), 1e-5);
}

#[test]
fn linear_rejects_mismatched_shapes() {
    let ctx = &contexts()[0];
    let mut graph = Graph::new(ctx);
    let x = upload(&mut graph, "x", &[0.0; 8], &[2, 4]);
    let w = upload(&mut graph, "w", &[0.0; 24], &[3, 8]);
    let error = graph.linear("y", x, w, None, Activation::None, None).unwrap_err().to_string();
    assert!(error.contains("does not match weight"), "{error}");
}

#[test]
fn layer_norm_matches_reference() {
    for ctx in contexts() {
        let (rows, dim) = (70, 96);
        let x: Vec<f32> = values(7, rows * dim, 3.0).iter().map(|v| v + 5.0).collect();
        let gamma = values(8, dim, 1.0);
        let beta = values(9, dim, 1.0);
        let mut graph = Graph::new(&ctx);
        let xt = upload(&mut graph, "x", &x, &[rows, dim]);
        let gt = upload(&mut graph, "gamma", &gamma, &[dim]);
        let bt = upload(&mut graph, "beta", &beta, &[dim]);
        let y = graph.layer_norm("y", xt, gt, bt, 1e-5).unwrap();
        graph.output(y);
        assert_close("layer_norm", &run(graph, y, 0), &reference::layer_norm(&x, &gamma, &beta, dim, 1e-5), 2e-5);
    }
}

/// Splits a fused [B, L, 3W] projection into contiguous q, k and v.
fn split_qkv(qkv: &[f32], rows: usize, width: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let part = |i: usize| qkv.chunks(3 * width).take(rows).flat_map(|r| r[i * width..(i + 1) * width].to_vec()).collect();
    (part(0), part(1), part(2))
}

#[test]
fn causal_self_attention_with_padding_mask_matches_reference() {
    for ctx in contexts() {
        let (batch, len, heads, head_dim) = (2, 9, 2, 8);
        let width = heads * head_dim;
        let qkv = values(10, batch * len * 3 * width, 1.0);
        // Token ids of length len - 1 (the last position is a class token); pad id 0 after eot.
        let tokens: Vec<u32> = vec![49406, 5, 7, 49407, 0, 0, 0, 0, 49406, 11, 12, 13, 14, 15, 16, 49407];
        let mut graph = Graph::new(&ctx);
        let q = upload(&mut graph, "qkv", &qkv, &[batch, len, 3 * width]);
        let tok = upload_u32(&mut graph, "tokens", &tokens, &[batch, len - 1]);
        let spec = AttentionSpec {
            batch,
            lq: len,
            lk: len,
            heads,
            head_dim,
            q_offset: 0,
            q_batch_stride: len * 3 * width,
            q_row_stride: 3 * width,
            kv_batch_stride: len * 3 * width,
            kv_row_stride: 3 * width,
            k_offset: width,
            v_offset: 2 * width,
            kv_div: 1,
            causal: true,
            dynamic_len: false,
            table: None,
            key_pad_mask: Some((tok, len - 1, 0)),
        };
        let out = graph.attention("out", q, q, &spec).unwrap();
        graph.output(out);
        let got = run(graph, out, 0);

        let (qs, ks, vs) = split_qkv(&qkv, batch * len, width);
        let visible = |b: usize, i: usize, j: usize| j <= i && (j == 0 || tokens[b * (len - 1) + j - 1] != 0);
        let expected = reference::attention(&qs, &ks, &vs, batch, len, len, heads, head_dim, visible);
        assert_close("causal attention", &got, &expected, 2e-5);
    }
}

#[test]
fn cross_attention_with_shared_keys_and_shared_queries_matches_reference() {
    for ctx in contexts() {
        // Pooler-like: queries shared by the batch (stride 0); 3 query rows per image.
        let (images, per_image, lq, lk, heads, head_dim) = (2, 3, 5, 13, 4, 4);
        let width = heads * head_dim;
        let batch = images * per_image;
        let q = values(11, lq * width, 1.0);
        let kv = values(12, images * lk * 2 * width, 1.0);
        let mut graph = Graph::new(&ctx);
        let qt = upload(&mut graph, "q", &q, &[1, lq, width]);
        let kvt = upload(&mut graph, "kv", &kv, &[images, lk, 2 * width]);
        let spec = AttentionSpec {
            batch,
            lq,
            lk,
            heads,
            head_dim,
            q_offset: 0,
            q_batch_stride: 0,
            q_row_stride: width,
            kv_batch_stride: lk * 2 * width,
            kv_row_stride: 2 * width,
            k_offset: 0,
            v_offset: width,
            kv_div: per_image,
            causal: false,
            dynamic_len: false,
            table: None,
            key_pad_mask: None,
        };
        let out = graph.attention("out", qt, kvt, &spec).unwrap();
        graph.output(out);
        let got = run(graph, out, 0);

        let q_full: Vec<f32> = (0..batch).flat_map(|_| q.clone()).collect();
        let mut k_full = Vec::new();
        let mut v_full = Vec::new();
        for b in 0..batch {
            let image = b / per_image;
            for j in 0..lk {
                let row = &kv[(image * lk + j) * 2 * width..][..2 * width];
                k_full.extend_from_slice(&row[..width]);
                v_full.extend_from_slice(&row[width..]);
            }
        }
        let expected = reference::attention(&q_full, &k_full, &v_full, batch, lq, lk, heads, head_dim, |_, _, _| true);
        assert_close("cross attention", &got, &expected, 2e-5);
    }
}

#[test]
fn cached_attention_follows_the_row_table() {
    for ctx in contexts() {
        // Two rows, cache capacity 6, decode position 3: row 0 reads its keys 0..=2 from row 1's cache
        // (a beam that took over another beam's history) and key 3 from its own row.
        let (rows, max_len, heads, head_dim, pos) = (2usize, 6usize, 2usize, 4usize, 3usize);
        let width = heads * head_dim;
        let cache = values(13, rows * max_len * 2 * width, 1.0);
        let q = values(14, rows * 3 * width, 1.0);
        let table: Vec<u32> = vec![1, 1, 1, 0, 0, 0, 1, 0, 1, 1, 0, 0];
        let mut graph = Graph::new(&ctx);
        let qt = upload(&mut graph, "q", &q, &[rows, 3 * width]);
        let ct = upload(&mut graph, "cache", &cache, &[rows, max_len, 2 * width]);
        let tt = upload_u32(&mut graph, "table", &table, &[rows, max_len]);
        let spec = AttentionSpec {
            batch: rows,
            lq: 1,
            lk: max_len,
            heads,
            head_dim,
            q_offset: 0,
            q_batch_stride: 3 * width,
            q_row_stride: 3 * width,
            kv_batch_stride: max_len * 2 * width,
            kv_row_stride: 2 * width,
            k_offset: 0,
            v_offset: width,
            kv_div: 1,
            causal: true,
            dynamic_len: true,
            table: Some((tt, max_len)),
            key_pad_mask: None,
        };
        let out = graph.attention("out", qt, ct, &spec).unwrap();
        graph.output(out);
        let got = run(graph, out, pos as u32);

        let mut expected = Vec::new();
        for row in 0..rows {
            let q_row: Vec<f32> = q[row * 3 * width..][..width].to_vec();
            let mut k_rows = Vec::new();
            let mut v_rows = Vec::new();
            for j in 0..=pos {
                let physical = table[row * max_len + j] as usize;
                let record = &cache[(physical * max_len + j) * 2 * width..][..2 * width];
                k_rows.extend_from_slice(&record[..width]);
                v_rows.extend_from_slice(&record[width..]);
            }
            expected.extend(reference::attention(&q_row, &k_rows, &v_rows, 1, 1, pos + 1, heads, head_dim, |_, _, _| true));
        }
        assert_close("cached attention", &got, &expected, 2e-5);
    }
}

#[test]
fn patch_embedding_matches_convolution() {
    for ctx in contexts() {
        let (batch, size, patch, width) = (2, 16, 4, 12);
        let image = values(15, batch * 3 * size * size, 1.0);
        let weight = values(16, width * 3 * patch * patch, 0.2);
        let class = values(17, width, 1.0);
        let grid = size / patch;
        let pos = values(18, (grid * grid + 1) * width, 1.0);
        let mut graph = Graph::new(&ctx);
        let it = upload(&mut graph, "image", &image, &[batch, 3, size, size]);
        let wt = upload(&mut graph, "conv1", &weight, &[width, 3 * patch * patch]);
        let ct = upload(&mut graph, "class", &class, &[width]);
        let pt = upload(&mut graph, "pos", &pos, &[grid * grid + 1, width]);
        let cols = graph.im2col("patches", it, patch).unwrap();
        let emb = graph.linear("embeds", cols, wt, None, Activation::None, None).unwrap();
        let x = graph.add_class_and_position("x", emb, ct, pt).unwrap();
        graph.output(x);
        let got = run(graph, x, 0);

        let conv = reference::patch_embed(&image, &weight, batch, size, patch, width);
        let mut expected = Vec::new();
        for b in 0..batch {
            for i in 0..=grid * grid {
                for d in 0..width {
                    let v = if i == 0 { class[d] } else { conv[(b * grid * grid + i - 1) * width + d] };
                    expected.push(v + pos[i * width + d]);
                }
            }
        }
        assert_close("patch embedding", &got, &expected, 2e-5);
    }
}

#[test]
fn token_embedding_appends_class_token() {
    for ctx in contexts() {
        let (batch, len, vocab, width) = (2, 3, 10, 8);
        let table = values(19, vocab * width, 1.0);
        let pos = values(20, (len + 1) * width, 1.0);
        let cls = values(21, width, 1.0);
        let ids: Vec<u32> = vec![1, 9, 0, 4, 4, 2];
        let mut graph = Graph::new(&ctx);
        let tt = upload(&mut graph, "table", &table, &[vocab, width]);
        let pt = upload(&mut graph, "pos", &pos, &[len + 1, width]);
        let ct = upload(&mut graph, "cls", &cls, &[width]);
        let it = upload_u32(&mut graph, "ids", &ids, &[batch, len]);
        let x = graph.embed_tokens("x", it, tt, pt, Some(ct), false).unwrap();
        graph.output(x);
        let got = run(graph, x, 0);
        let mut expected = Vec::new();
        for b in 0..batch {
            for i in 0..=len {
                for d in 0..width {
                    let e = if i < len { table[ids[b * len + i] as usize * width + d] } else { cls[d] };
                    expected.push(e + pos[i * width + d]);
                }
            }
        }
        assert_close("token embedding", &got, &expected, 0.0);
    }
}

#[test]
fn slice_and_l2_normalize_match_reference() {
    for ctx in contexts() {
        let (batch, len, width) = (3, 5, 20);
        let x = values(22, batch * len * width, 2.0);
        let mut graph = Graph::new(&ctx);
        let xt = upload(&mut graph, "x", &x, &[batch, len, width]);
        let sliced = graph.slice_rows("tail", xt, 1, 4).unwrap();
        let normalized = graph.l2_normalize("normalized", sliced).unwrap();
        graph.output(normalized);
        let got = run(graph, normalized, 0);
        let tail: Vec<f32> = (0..batch).flat_map(|b| x[(b * len + 1) * width..(b * len + 5) * width].to_vec()).collect();
        assert_close("slice + normalize", &got, &reference::l2_normalize(&tail, width), 1e-6);
    }
}

#[test]
fn top_k_matches_sorting_and_masks_eos_before_min_length() {
    for ctx in contexts() {
        let (rows, vocab, k) = (3, 1000, 12);
        let mut logits = values(23, rows * vocab, 5.0);
        logits[7] = 100.0; // the end token of row 0, masked below
        logits[vocab + 500] = logits[vocab + 501]; // a tie
        for pos in [0u32, 4] {
            let mut graph = Graph::new(&ctx);
            let lt = upload(&mut graph, "logits", &logits, &[rows, vocab]);
            let best = graph.top_k("best", lt, k, 7, 5, None, 1.0, false).unwrap();
            graph.output(best);
            let plan_ctx = graph.context();
            let plan = graph.build().unwrap();
            let bytes = pollster::block_on(plan.run(plan_ctx, pos, &[best])).unwrap().remove(0);
            let words: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);

            let mut masked = logits.clone();
            if pos + 1 < 5 {
                for row in 0..rows {
                    masked[row * vocab + 7] = f32::MIN;
                }
            }
            let expected = reference::top_k(&masked, vocab, k);
            for row in 0..rows {
                for i in 0..k {
                    let value = f32::from_bits(words[(row * (k + 1) + i) * 2]);
                    let id = words[(row * (k + 1) + i) * 2 + 1];
                    assert_eq!((value, id), expected[row][i], "pos {pos} row {row} rank {i}");
                }
                let kept = masked[row * vocab..(row + 1) * vocab].iter().filter(|v| **v > f32::MIN);
                let max = kept.clone().cloned().fold(f32::MIN, f32::max) as f64;
                let lse = max + kept.map(|v| (*v as f64 - max).exp()).sum::<f64>().ln();
                let got = f32::from_bits(words[(row * (k + 1) + k) * 2]) as f64;
                assert!((got - lse).abs() < 1e-4, "pos {pos} row {row} logsumexp {got} vs {lse}");
            }
        }
    }
}

#[test]
fn top_k_log_softmax_penalizes_log_probabilities() {
    for ctx in contexts() {
        let (rows, vocab, k, stride, eos, pos) = (2, 1000, 8, 6, 7u32, 2u32);
        let penalty = 1.7f32;
        let logits = values(29, rows * vocab, 5.0);
        // Row 0's history repeats one of its best tokens, row 1's contains the end token.
        let best_of_row0 = reference::top_k(&logits, vocab, 1)[0][0].1;
        let history: Vec<u32> = vec![49, best_of_row0, 3, 0, 0, 0, 11, eos, 999, 0, 0, 0];
        let mut graph = Graph::new(&ctx);
        let lt = upload(&mut graph, "logits", &logits, &[rows, vocab]);
        let ht = upload_u32(&mut graph, "history", &history, &[rows, stride]);
        let best = graph.top_k("best", lt, k, eos, 5, Some((ht, stride)), penalty, true).unwrap();
        graph.output(best);
        let plan_ctx = graph.context();
        let plan = graph.build().unwrap();
        let bytes = pollster::block_on(plan.run(plan_ctx, pos, &[best])).unwrap().remove(0);
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);

        // transformers' order: log_softmax over the raw row, then the penalty on the
        // log-probabilities of the first pos + 1 history tokens, then the end token's mask.
        for row in 0..rows {
            let raw = &logits[row * vocab..(row + 1) * vocab];
            let max = raw.iter().cloned().fold(f32::MIN, f32::max) as f64;
            let log_total = raw.iter().map(|v| (*v as f64 - max).exp()).sum::<f64>().ln();
            let seen = &history[row * stride..row * stride + pos as usize + 1];
            let processed: Vec<f32> = raw
                .iter()
                .enumerate()
                .map(|(id, v)| {
                    let lp = ((*v as f64 - max) - log_total) as f32;
                    if id as u32 == eos {
                        f32::MIN
                    } else if seen.contains(&(id as u32)) {
                        lp * penalty
                    } else {
                        lp
                    }
                })
                .collect();
            let expected = reference::top_k(&processed, vocab, k).remove(0);
            for (i, (value, id)) in expected.iter().enumerate() {
                let got_value = f32::from_bits(words[(row * (k + 1) + i) * 2]);
                let got_id = words[(row * (k + 1) + i) * 2 + 1];
                assert_eq!(got_id, *id, "row {row} rank {i}");
                assert!((got_value - value).abs() < 1e-4, "row {row} rank {i}: {got_value} vs {value}");
            }
        }
    }
}
