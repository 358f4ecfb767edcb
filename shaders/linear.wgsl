// Linear layer: y[m, n] = act(sum_k x[m, k] * w[n, k] + bias[n]) + residual[m, n], stored at
// y[m * ldy + col_offset + n].
// The weight has PyTorch's nn.Linear layout [out_features, in_features], so both operands are read
// along k with vec4 loads; the host guarantees k % 4 == 0.
//
// Both entry points keep their partial sums in named vec4 registers and read operands straight
// from storage, without workgroup memory or barriers: on software drivers such as Mesa's llvmpipe
// private arrays and barriers are slow, while the CPU caches already serve repeated loads.
// - `linear_tiled`: each thread computes a 4 x 4 block (8 x 8 threads, 32 x 32 per workgroup), for
//   encoders and prefill where m is large;
// - `linear_small_m`: each thread computes 4 columns of one block of up to 8 rows (workgroup
//   row `wid.y`), so every weight is read once per block. The host uses it up to m = 64, which
//   covers decode steps of batches and beams.
//
// The sizes are read through `sizes()`, which ties them to the workgroup id. On Mesa 22.3's
// lavapipe a branch or loop bound decided by uniform values alone cost about 1 ms per dispatch
// (measured with `examples/step_timing.rs`). NOTE: the likely cause is lavapipe inlining those
// uniforms and recompiling the shader at each dispatch; this was inferred from timings, not Mesa's source.

override ACT: u32 = 0u;           // 0: identity, 1: GELU (erf), 2: QuickGELU
override HAS_BIAS: bool = false;
override HAS_RESIDUAL: bool = false;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    // Row stride of y and the column where this weight's outputs start: a weight split by rows
    // (over the binding size limit) fills its columns of one output with one dispatch per part.
    ldy: u32,
    col_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

// erf by Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7), since WGSL has no erf.
fn erf_approx(v: f32) -> f32 {
    let s = sign(v);
    let a = abs(v);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return s * (1.0 - poly * exp(-a * a));
}

fn epilogue(row: u32, col: u32, sum: f32) {
    var v = sum;
    if (HAS_BIAS) {
        v = v + bias[col];
    }
    if (ACT == 1u) {
        v = 0.5 * v * (1.0 + erf_approx(v * 0.7071067811865476));
    } else if (ACT == 2u) {
        v = v / (1.0 + exp(-1.702 * v));
    }
    let idx = row * p.ldy + p.col_offset + col;
    if (HAS_RESIDUAL) {
        v = v + residual[idx];
    }
    y[idx] = v;
}

fn dot4(a: vec4<f32>, w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(dot(a, w0), dot(a, w1), dot(a, w2), dot(a, w3));
}

// (m, n, k) plus wid.x >> 31, which is always 0 (at most 65,535 workgroups per dimension) but
// keeps the driver from treating the sizes as constants.
fn sizes(wid: vec3<u32>) -> vec3<u32> {
    let zero = wid.x >> 31u;
    return vec3<u32>(p.m + zero, p.n + zero, p.k + zero);
}

fn store_row(size: vec3<u32>, row: u32, col0: u32, sums: vec4<f32>) {
    if (row >= size.x) {
        return;
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        if (col0 + j < size.y) {
            epilogue(row, col0 + j, sums[j]);
        }
    }
}

@compute @workgroup_size(8, 8, 1)
fn linear_tiled(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let size = sizes(wid);
    let row0 = (wid.y * 8u + lid.y) * 4u;
    let col0 = (wid.x * 8u + lid.x) * 4u;
    let k4 = size.z / 4u;
    // Rows and columns past the end are clamped onto the last one: the loads stay in bounds
    // and their results are never stored.
    let x0 = min(row0, size.x - 1u) * k4;
    let x1 = min(row0 + 1u, size.x - 1u) * k4;
    let x2 = min(row0 + 2u, size.x - 1u) * k4;
    let x3 = min(row0 + 3u, size.x - 1u) * k4;
    let w0 = min(col0, size.y - 1u) * k4;
    let w1 = min(col0 + 1u, size.y - 1u) * k4;
    let w2 = min(col0 + 2u, size.y - 1u) * k4;
    let w3 = min(col0 + 3u, size.y - 1u) * k4;

    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    for (var kk = 0u; kk < k4; kk = kk + 1u) {
        let b0 = w[w0 + kk];
        let b1 = w[w1 + kk];
        let b2 = w[w2 + kk];
        let b3 = w[w3 + kk];
        c0 = c0 + dot4(x[x0 + kk], b0, b1, b2, b3);
        c1 = c1 + dot4(x[x1 + kk], b0, b1, b2, b3);
        c2 = c2 + dot4(x[x2 + kk], b0, b1, b2, b3);
        c3 = c3 + dot4(x[x3 + kk], b0, b1, b2, b3);
    }
    store_row(size, row0, col0, c0);
    store_row(size, row0 + 1u, col0, c1);
    store_row(size, row0 + 2u, col0, c2);
    store_row(size, row0 + 3u, col0, c3);
}

@compute @workgroup_size(64, 1, 1)
fn linear_small_m(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let size = sizes(wid);
    let col0 = gid.x * 4u;
    if (col0 >= size.y) {
        return;
    }
    let k4 = size.z / 4u;
    let w0 = col0 * k4;
    let w1 = min(col0 + 1u, size.y - 1u) * k4;
    let w2 = min(col0 + 2u, size.y - 1u) * k4;
    let w3 = min(col0 + 3u, size.y - 1u) * k4;
    // This workgroup's block of up to 8 rows; `last` is the index of its last row in the block.
    let row0 = wid.y * 8u;
    let last = min(size.x - row0, 8u) - 1u;
    let x0 = row0 * k4;

    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    var c4 = vec4<f32>(0.0);
    var c5 = vec4<f32>(0.0);
    var c6 = vec4<f32>(0.0);
    var c7 = vec4<f32>(0.0);
    for (var kk = 0u; kk < k4; kk = kk + 1u) {
        let b0 = w[w0 + kk];
        let b1 = w[w1 + kk];
        let b2 = w[w2 + kk];
        let b3 = w[w3 + kk];
        c0 = c0 + dot4(x[x0 + kk], b0, b1, b2, b3);
        if (last >= 1u) {
            c1 = c1 + dot4(x[x0 + k4 + kk], b0, b1, b2, b3);
        }
        if (last >= 2u) {
            c2 = c2 + dot4(x[x0 + 2u * k4 + kk], b0, b1, b2, b3);
        }
        if (last >= 3u) {
            c3 = c3 + dot4(x[x0 + 3u * k4 + kk], b0, b1, b2, b3);
        }
        if (last >= 4u) {
            c4 = c4 + dot4(x[x0 + 4u * k4 + kk], b0, b1, b2, b3);
        }
        if (last >= 5u) {
            c5 = c5 + dot4(x[x0 + 5u * k4 + kk], b0, b1, b2, b3);
        }
        if (last >= 6u) {
            c6 = c6 + dot4(x[x0 + 6u * k4 + kk], b0, b1, b2, b3);
        }
        if (last >= 7u) {
            c7 = c7 + dot4(x[x0 + 7u * k4 + kk], b0, b1, b2, b3);
        }
    }
    store_row(size, row0, col0, c0);
    store_row(size, row0 + 1u, col0, c1);
    store_row(size, row0 + 2u, col0, c2);
    store_row(size, row0 + 3u, col0, c3);
    store_row(size, row0 + 4u, col0, c4);
    store_row(size, row0 + 5u, col0, c5);
    store_row(size, row0 + 6u, col0, c6);
    store_row(size, row0 + 7u, col0, c7);
}
