//! Per-dispatch cost of each kernel at the shapes of one decode step of the demo model (width 64,
//! 4 heads, 76 positions, 49408 tokens), and a synthetic decode step built from the same ops.
//!
//! Each line times a plan holding `COPIES` dispatches of one op that all read the same inputs, so
//! the fixed cost of a dispatch shows up even where its arithmetic is negligible:
//! `cargo run --release --no-default-features --example step_timing [rows]`.
//! Environment: CHECKED=1 times the bounds-checked shaders, COPIES=n sets the dispatches per plan,
//! ONLY=text keeps the ops whose name contains it, POS=n sets the step uniform (default 10).

use coca_wgpu::gpu::Activation;
use coca_wgpu::graph::{DType, Graph, Tensor};
use coca_wgpu::ops::AttentionSpec;
use coca_wgpu::{GpuContext, GpuOptions};

const COPIES: usize = 20;
const WIDTH: usize = 64;
const HEADS: usize = 4;
const MAX_LEN: usize = 76;
const VOCAB: usize = 49408;
const IMAGE_TOKENS: usize = 63;
fn pos() -> u32 {
    std::env::var("POS").map(|p| p.parse().unwrap()).unwrap_or(10)
}

/// Median wall time of one run of `plan`, reading back `read`.
fn time_plan(ctx: &GpuContext, plan: &coca_wgpu::graph::Plan, read: Tensor) -> f64 {
    pollster::block_on(plan.run(ctx, pos(), &[read])).unwrap();
    let mut samples: Vec<f64> = (0..9)
        .map(|_| {
            let clock = std::time::Instant::now();
            pollster::block_on(plan.run(ctx, pos(), &[read])).unwrap();
            clock.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

/// Inputs shared by every op of a decode step.
struct Inputs {
    x: Tensor,
    ids: Tensor,
    table: Tensor,
    history: Tensor,
    qkv: Tensor,
    cache: Tensor,
    cross_kv: Tensor,
    logits: Tensor,
    token_table: Tensor,
    pos_table: Tensor,
    gamma: Tensor,
    beta: Tensor,
    w_qkv: Tensor,
    b_qkv: Tensor,
    w_out: Tensor,
    w_up: Tensor,
    w_down: Tensor,
    w_cross_q: Tensor,
    w_vocab: Tensor,
}

fn inputs(g: &mut Graph, rows: usize) -> Inputs {
    let f = DType::F32;
    Inputs {
        x: g.input("x", &[rows, 1, WIDTH], f).unwrap(),
        ids: g.input("ids", &[rows, 1], DType::U32).unwrap(),
        table: g.input("table", &[rows, MAX_LEN], DType::U32).unwrap(),
        history: g.input("history", &[rows, MAX_LEN], DType::U32).unwrap(),
        qkv: g.input("qkv", &[rows, 1, 3 * WIDTH], f).unwrap(),
        cache: g.input("cache", &[rows, MAX_LEN, 2 * WIDTH], f).unwrap(),
        cross_kv: g.input("cross kv", &[1, IMAGE_TOKENS, 2 * WIDTH], f).unwrap(),
        logits: g.input("logits", &[rows, VOCAB], f).unwrap(),
        token_table: g.input("token table", &[VOCAB, WIDTH], f).unwrap(),
        pos_table: g.input("pos table", &[MAX_LEN, WIDTH], f).unwrap(),
        gamma: g.input("gamma", &[WIDTH], f).unwrap(),
        beta: g.input("beta", &[WIDTH], f).unwrap(),
        w_qkv: g.input("w qkv", &[3 * WIDTH, WIDTH], f).unwrap(),
        b_qkv: g.input("b qkv", &[3 * WIDTH], f).unwrap(),
        w_out: g.input("w out", &[WIDTH, WIDTH], f).unwrap(),
        w_up: g.input("w up", &[4 * WIDTH, WIDTH], f).unwrap(),
        w_down: g.input("w down", &[WIDTH, 4 * WIDTH], f).unwrap(),
        w_cross_q: g.input("w cross q", &[WIDTH, WIDTH], f).unwrap(),
        w_vocab: g.input("w vocab", &[VOCAB, WIDTH], f).unwrap(),
    }
}

fn self_attention(g: &mut Graph, i: &Inputs, rows: usize, qkv: Tensor) -> Tensor {
    let spec = AttentionSpec {
        batch: rows,
        lq: 1,
        lk: MAX_LEN,
        heads: HEADS,
        head_dim: WIDTH / HEADS,
        q_offset: 0,
        q_batch_stride: 3 * WIDTH,
        q_row_stride: 3 * WIDTH,
        kv_batch_stride: MAX_LEN * 2 * WIDTH,
        kv_row_stride: 2 * WIDTH,
        k_offset: 0,
        v_offset: WIDTH,
        kv_div: 1,
        causal: true,
        dynamic_len: true,
        table: Some((i.table, MAX_LEN)),
        key_pad_mask: Some((i.history, MAX_LEN, 1)),
    };
    g.attention("self attention", qkv, i.cache, &spec).unwrap()
}

fn cross_attention(g: &mut Graph, i: &Inputs, rows: usize, q: Tensor) -> Tensor {
    let spec = AttentionSpec {
        batch: rows,
        lq: 1,
        lk: IMAGE_TOKENS,
        heads: HEADS,
        head_dim: WIDTH / HEADS,
        q_offset: 0,
        q_batch_stride: WIDTH,
        q_row_stride: WIDTH,
        kv_batch_stride: IMAGE_TOKENS * 2 * WIDTH,
        kv_row_stride: 2 * WIDTH,
        k_offset: 0,
        v_offset: WIDTH,
        kv_div: rows,
        causal: false,
        dynamic_len: false,
        table: None,
        key_pad_mask: None,
    };
    g.attention("cross attention", q, i.cross_kv, &spec).unwrap()
}

fn linear(g: &mut Graph, x: Tensor, w: Tensor, bias: Option<Tensor>, residual: Option<Tensor>) -> Tensor {
    g.linear("linear", x, w, bias, Activation::None, residual).unwrap()
}

/// Records one pre-norm residual block shaped like the decoder's (cross-attention when `cross`).
fn block(g: &mut Graph, i: &Inputs, rows: usize, x: Tensor, cross: bool) -> Tensor {
    let h = g.layer_norm("ln_1", x, i.gamma, i.beta, 1e-5).unwrap();
    let qkv = linear(g, h, i.w_qkv, Some(i.b_qkv), None);
    g.kv_append(qkv, i.cache, 0, MAX_LEN).unwrap();
    let a = self_attention(g, i, rows, qkv);
    let mut x = linear(g, a, i.w_out, None, Some(x));
    if cross {
        let h = g.layer_norm("ln_cross", x, i.gamma, i.beta, 1e-5).unwrap();
        let q = linear(g, h, i.w_cross_q, None, None);
        let a = cross_attention(g, i, rows, q);
        x = linear(g, a, i.w_out, None, Some(x));
    }
    let h = g.layer_norm("ln_2", x, i.gamma, i.beta, 1e-5).unwrap();
    let up = g.linear("mlp up", h, i.w_up, None, Activation::Gelu, None).unwrap();
    linear(g, up, i.w_down, None, Some(x))
}

fn main() {
    let rows: usize = std::env::args().nth(1).map(|a| a.parse().expect("rows")).unwrap_or(1);
    let trusted = std::env::var("CHECKED").is_err();
    let ctx = pollster::block_on(GpuContext::new(&GpuOptions { trusted_kernels: trusted, ..GpuOptions::default() })).unwrap();
    println!("{} rows, {} shaders", rows, if trusted { "unchecked" } else { "checked" });

    type Op = fn(&mut Graph, &Inputs, usize) -> Tensor;
    let ops: Vec<(&str, Op)> = vec![
        ("embed_tokens", |g, i, _| g.embed_tokens("e", i.ids, i.token_table, i.pos_table, None, true).unwrap()),
        ("layer_norm", |g, i, _| g.layer_norm("ln", i.x, i.gamma, i.beta, 1e-5).unwrap()),
        ("linear 64->192", |g, i, _| linear(g, i.x, i.w_qkv, Some(i.b_qkv), None)),
        ("linear 64->256", |g, i, _| linear(g, i.x, i.w_up, None, None)),
        ("linear 64->256 gelu", |g, i, _| g.linear("up", i.x, i.w_up, None, Activation::Gelu, None).unwrap()),
        ("kv_append", |g, i, _| {
            g.kv_append(i.qkv, i.cache, 0, MAX_LEN).unwrap();
            i.cache
        }),
        ("self attention (2 kernels)", |g, i, rows| self_attention(g, i, rows, i.qkv)),
        ("cross attention (2 kernels)", |g, i, rows| cross_attention(g, i, rows, i.x)),
        ("l2_normalize", |g, i, _| g.l2_normalize("n", i.x).unwrap()),
        ("top_k k=1", |g, i, _| g.top_k("best", i.logits, 1, 49407, 5, None, 1.0, false).unwrap()),
        ("top_k k=12", |g, i, _| g.top_k("best", i.logits, 12, 49407, 5, None, 1.0, false).unwrap()),
        ("linear 64->49408", |g, i, _| linear(g, i.x, i.w_vocab, None, None)),
    ];
    let only = std::env::var("ONLY").ok();
    for (name, op) in ops {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let mut g = Graph::new(&ctx);
        let i = inputs(&mut g, rows);
        let mut last = i.x;
        let copies: usize = std::env::var("COPIES").map(|c| c.parse().unwrap()).unwrap_or(COPIES);
        for _ in 0..copies {
            last = op(&mut g, &i, rows);
        }
        g.output(last);
        let plan = g.build().unwrap();
        let ms = time_plan(&ctx, &plan, last);
        println!("{name:>28}: {:8.1} us per op", ms * 1e3 / copies as f64);
    }

    // A whole step: embedding, 3 text blocks, 3 decoder blocks with cross-attention, the vocabulary
    // projection and top_k, as in the demo model.
    let mut g = Graph::new(&ctx);
    let i = inputs(&mut g, rows);
    let mut x = g.embed_tokens("e", i.ids, i.token_table, i.pos_table, None, true).unwrap();
    for layer in 0..6 {
        x = block(&mut g, &i, rows, x, layer >= 3);
    }
    let x = g.layer_norm("ln_final", x, i.gamma, i.beta, 1e-5).unwrap();
    let logits = linear(&mut g, x, i.w_vocab, None, None);
    let best = g.top_k("best", logits, 1, 49407, 5, None, 1.0, false).unwrap();
    g.output(best);
    let plan = g.build().unwrap();
    let dispatches = plan.dispatches();
    let ms = time_plan(&ctx, &plan, best);
    println!("synthetic decode step ({dispatches} dispatches): {ms:.2} ms");
}
