// Row-level data movement and normalization: slicing sequences, appending to the KV cache and
// L2-normalizing feature vectors.

struct Step {
    pos: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// ---- out[b, i, :] = x[b, start + i, :] for i < count ----

struct SliceParams {
    batch: u32,
    in_len: u32,
    start: u32,
    count: u32,
    width: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> sp: SliceParams;
@group(0) @binding(1) var<storage, read> slice_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> slice_out: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn slice_rows(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let i = wid.x;
    let b = wid.y;
    let src = (b * sp.in_len + sp.start + i) * sp.width;
    let dst = (b * sp.count + i) * sp.width;
    for (var d = t; d < sp.width; d = d + 64u) {
        slice_out[dst + d] = slice_in[src + d];
    }
}

// ---- Append one decode step's keys and values to a layer's cache ----
// The cache of one layer is [rows, max_len, 2 * width] (keys then values per position); the fused
// projection is [rows, 3 * width] with keys and values in its last two thirds.

struct AppendParams {
    rows: u32,
    width: u32,
    max_len: u32,
    cache_offset: u32,
}

@group(0) @binding(0) var<uniform> ap: AppendParams;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> qkv: array<f32>;
@group(0) @binding(3) var<storage, read_write> cache: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn kv_append(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let row = wid.x;
    let src = row * 3u * ap.width + ap.width;
    let dst = ap.cache_offset + (row * ap.max_len + step.pos) * 2u * ap.width;
    for (var d = t; d < 2u * ap.width; d = d + 64u) {
        cache[dst + d] = qkv[src + d];
    }
}

// ---- y = x / max(||x||_2, 1e-12) per row, as torch.nn.functional.normalize ----

struct NormParams {
    rows: u32,
    dim: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> np: NormParams;
@group(0) @binding(1) var<storage, read> norm_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> norm_out: array<f32>;

var<workgroup> scratch: array<f32, 64>;

@compute @workgroup_size(64, 1, 1)
fn l2_normalize(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let base = wid.x * np.dim;
    var sq = 0.0;
    for (var d = t; d < np.dim; d = d + 64u) {
        let v = norm_in[base + d];
        sq = sq + v * v;
    }
    scratch[t] = sq;
    workgroupBarrier();
    for (var stride = 32u; stride > 0u; stride = stride / 2u) {
        if (t < stride) {
            scratch[t] = scratch[t] + scratch[t + stride];
        }
        workgroupBarrier();
    }
    let inv = 1.0 / max(sqrt(scratch[0]), 1e-12);
    for (var d = t; d < np.dim; d = d + 64u) {
        norm_out[base + d] = norm_in[base + d] * inv;
    }
}
