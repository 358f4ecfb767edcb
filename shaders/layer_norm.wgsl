// Layer normalization over the last dimension: y = (x - mean) / sqrt(var + eps) * gamma + beta,
// with the biased variance, as torch.nn.LayerNorm. One thread per row and no barriers (cheap on
// software drivers); the mean is taken first and the variance from the centred values, which
// keeps the f32 error small for rows with a large mean. The host guarantees dim % 4 == 0.

struct Params {
    rows: u32,
    dim4: u32,
    eps: f32,
    groups_x: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> gamma: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> beta: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<vec4<f32>>;

@compute @workgroup_size(64, 1, 1)
fn layer_norm(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.y * p.groups_x * 64u + gid.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.dim4;
    let count = f32(p.dim4 * 4u);

    var sum = vec4<f32>(0.0);
    for (var i = 0u; i < p.dim4; i = i + 1u) {
        sum = sum + x[base + i];
    }
    let mean = (sum.x + sum.y + sum.z + sum.w) / count;

    var sq = vec4<f32>(0.0);
    for (var i = 0u; i < p.dim4; i = i + 1u) {
        let d = x[base + i] - vec4<f32>(mean);
        sq = sq + d * d;
    }
    let inv_std = inverseSqrt((sq.x + sq.y + sq.z + sq.w) / count + p.eps);

    for (var i = 0u; i < p.dim4; i = i + 1u) {
        y[base + i] = (x[base + i] - vec4<f32>(mean)) * inv_std * gamma[i] + beta[i];
    }
}
