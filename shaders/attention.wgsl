// Scaled dot-product attention for one query row of one head per workgroup:
// out[b, i, h*D + d] = sum_j softmax_j(q_i . k_j * scale) v_j[d].
//
// The same kernel serves every attention in CoCa, described by strides instead of copies:
// - self-attention reading q, k and v out of one fused projection [B, L, 3W];
// - the attentional pooler, whose learned queries are shared by the batch (q batch stride 0);
// - cross-attention, where several query rows (beams) share one image (`kv_div`);
// - cached decoding, where keys are read from a KV cache and `use_table` maps each (row, position)
//   to the physical cache row that wrote it, so beams are reordered without copying the cache.
// Masked keys get weight exactly zero through a select, because WGSL allows implementations to
// assume there are no infinities.

struct Params {
    lq: u32,
    lk: u32,
    heads: u32,
    head_dim: u32,
    q_offset: u32,
    q_batch_stride: u32,
    q_row_stride: u32,
    scale: f32,
    kv_batch_stride: u32,
    kv_row_stride: u32,
    k_offset: u32,
    v_offset: u32,
    kv_div: u32,
    causal: u32,
    dynamic_len: u32,     // 1: the step uniform sets lk = pos + 1 and the query position to pos
    use_table: u32,
    table_stride: u32,
    key_pad_mask: u32,    // 1: key j >= 1 is masked when tokens[b, j - 1] == pad_id
    pad_id: u32,
    token_stride: u32,
}

struct Step {
    pos: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> kv: array<f32>;
@group(0) @binding(4) var<storage, read> table: array<u32>;
@group(0) @binding(5) var<storage, read> tokens: array<u32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

const THREADS: u32 = 64u;
const MAX_KEYS: u32 = 1024u;
const MAX_HEAD_DIM: u32 = 256u;

var<workgroup> q_row: array<f32, 256>;
var<workgroup> scores: array<f32, 1024>;
var<workgroup> scratch: array<f32, 64>;

fn key_row_base(b: u32, j: u32) -> u32 {
    var kv_batch = b / p.kv_div;
    if (p.use_table == 1u) {
        kv_batch = table[b * p.table_stride + j];
    }
    return kv_batch * p.kv_batch_stride + j * p.kv_row_stride;
}

fn key_visible(b: u32, i_pos: u32, j: u32) -> bool {
    if (p.causal == 1u && j > i_pos) {
        return false;
    }
    if (p.key_pad_mask == 1u && j >= 1u && tokens[b * p.token_stride + j - 1u] == p.pad_id) {
        return false;
    }
    return true;
}

@compute @workgroup_size(64, 1, 1)
fn attention(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let i = wid.x;
    let h = wid.y;
    let b = wid.z;
    var lk = p.lk;
    var i_pos = i;
    if (p.dynamic_len == 1u) {
        lk = step.pos + 1u;
        i_pos = step.pos;
    }
    let d_head = p.head_dim;
    let head_offset = h * d_head;

    let q_base = p.q_offset + b * p.q_batch_stride + i * p.q_row_stride + head_offset;
    for (var d = t; d < d_head; d = d + THREADS) {
        q_row[d] = q[q_base + d] * p.scale;
    }
    workgroupBarrier();

    // Scores for this thread's keys, and their running maximum.
    var local_max = -3.0e38;
    for (var j = t; j < lk; j = j + THREADS) {
        var s = 0.0;
        if (key_visible(b, i_pos, j)) {
            let k_base = key_row_base(b, j) + p.k_offset + head_offset;
            for (var d = 0u; d < d_head; d = d + 1u) {
                s = s + q_row[d] * kv[k_base + d];
            }
            local_max = max(local_max, s);
        }
        scores[j] = s;
    }
    scratch[t] = local_max;
    workgroupBarrier();
    for (var stride = THREADS / 2u; stride > 0u; stride = stride / 2u) {
        if (t < stride) {
            scratch[t] = max(scratch[t], scratch[t + stride]);
        }
        workgroupBarrier();
    }
    let row_max = scratch[0];
    workgroupBarrier();

    // Softmax numerators; subtracting the row maximum keeps exp() from overflowing.
    var local_sum = 0.0;
    for (var j = t; j < lk; j = j + THREADS) {
        var e = 0.0;
        if (key_visible(b, i_pos, j)) {
            e = exp(scores[j] - row_max);
        }
        scores[j] = e;
        local_sum = local_sum + e;
    }
    scratch[t] = local_sum;
    workgroupBarrier();
    for (var stride = THREADS / 2u; stride > 0u; stride = stride / 2u) {
        if (t < stride) {
            scratch[t] = scratch[t] + scratch[t + stride];
        }
        workgroupBarrier();
    }
    let inv_sum = 1.0 / scratch[0];

    let out_base = (b * p.lq + i) * p.heads * d_head + head_offset;
    for (var d = t; d < d_head; d = d + THREADS) {
        var acc = 0.0;
        for (var j = 0u; j < lk; j = j + 1u) {
            let weight = scores[j];
            if (weight != 0.0) {
                acc = acc + weight * kv[key_row_base(b, j) + p.v_offset + head_offset + d];
            }
        }
        out[out_base + d] = acc * inv_sum;
    }
}
