// Layer normalization over the last dimension: y = (x - mean) / sqrt(var + eps) * gamma + beta,
// with the biased variance, as torch.nn.LayerNorm. One workgroup per row; the mean is reduced
// first and the variance from the centred values, which keeps the f32 error small for rows with
// a large mean.

struct Params {
    rows: u32,
    dim: u32,
    eps: f32,
    groups_x: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const THREADS: u32 = 64u;
var<workgroup> scratch: array<f32, 64>;

fn reduce_sum(t: u32, value: f32) -> f32 {
    scratch[t] = value;
    workgroupBarrier();
    for (var stride = THREADS / 2u; stride > 0u; stride = stride / 2u) {
        if (t < stride) {
            scratch[t] = scratch[t] + scratch[t + stride];
        }
        workgroupBarrier();
    }
    let total = scratch[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(64, 1, 1)
fn layer_norm(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let row = wid.y * p.groups_x + wid.x;
    // `row` is uniform across the workgroup, so this early return keeps barriers uniform.
    if (row >= p.rows) {
        return;
    }
    let base = row * p.dim;

    var sum = 0.0;
    for (var i = t; i < p.dim; i = i + THREADS) {
        sum = sum + x[base + i];
    }
    let mean = reduce_sum(t, sum) / f32(p.dim);

    var sq = 0.0;
    for (var i = t; i < p.dim; i = i + THREADS) {
        let d = x[base + i] - mean;
        sq = sq + d * d;
    }
    let inv_std = inverseSqrt(reduce_sum(t, sq) / f32(p.dim) + p.eps);

    for (var i = t; i < p.dim; i = i + THREADS) {
        y[base + i] = (x[base + i] - mean) * inv_std * gamma[i] + beta[i];
    }
}
