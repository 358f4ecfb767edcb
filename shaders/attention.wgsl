// Scaled dot-product attention, out[b, i, h*D + d] = sum_j softmax_j(q_i . k_j / sqrt(D)) v_j[d],
// in two passes without workgroup memory or barriers (both are slow on software drivers):
// `attention_scores` writes q.k for blocks of 4 keys, `attention_output` turns one row of scores
// into softmax weights and sums 4 dimensions of the values per thread.
//
// The same kernels serve every attention in CoCa, described by strides instead of copies:
// - self-attention reading q, k and v out of one fused projection [B, L, 3W];
// - the attentional pooler, whose learned queries are shared by the batch (q batch stride 0);
// - cross-attention, where several query rows (beams) share one image (`kv_div`);
// - cached decoding, where keys are read from a KV cache and `use_table` maps each (row, position)
//   to the physical cache row that wrote it, so beams are reordered without copying the cache.
// Masked keys get the finite score MASKED and weight exactly zero through a select, because WGSL
// lets implementations assume there are no infinities. All offsets and strides count vec4s.

struct Params {
    lq: u32,
    lk: u32,              // number of keys, or the cache capacity when dynamic_len is set
    heads: u32,
    head_dim4: u32,       // head size / 4
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
    dynamic_len: u32,     // 1: lk = step.pos + 1 and the query sits at position step.pos
    use_table: u32,
    table_stride: u32,
    key_pad_mask: u32,    // 1: key j >= 1 is masked when tokens[b, j - 1] == pad_id
    pad_id: u32,
    token_stride: u32,
    batch: u32,
}

struct Step {
    pos: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> kv: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> table: array<u32>;
@group(0) @binding(5) var<storage, read> tokens: array<u32>;
// [batch * heads, lq, lk] scores (capacity lk when dynamic_len is set).
@group(0) @binding(6) var<storage, read_write> scores: array<f32>;

const MASKED: f32 = -3.0e38;

fn key_count() -> u32 {
    if (p.dynamic_len == 1u) {
        return step.pos + 1u;
    }
    return p.lk;
}

fn query_position(i: u32) -> u32 {
    if (p.dynamic_len == 1u) {
        return step.pos;
    }
    return i;
}

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

fn key_score(b: u32, h: u32, q_base: u32, i_pos: u32, j: u32) -> f32 {
    if (!key_visible(b, i_pos, j)) {
        return MASKED;
    }
    let k_base = key_row_base(b, j) + p.k_offset + h * p.head_dim4;
    var sum = vec4<f32>(0.0);
    for (var d = 0u; d < p.head_dim4; d = d + 1u) {
        sum = sum + q[q_base + d] * kv[k_base + d];
    }
    return (sum.x + sum.y + sum.z + sum.w) * p.scale;
}

// Work items are numbered over a flattened grid of 64-thread workgroups.
fn item_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.y * groups.x * 64u + gid.x;
}

// One thread per (block of 4 keys, query, batch x head), the key block varying fastest.
@compute @workgroup_size(64, 1, 1)
fn attention_scores(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let blocks = (p.lk + 3u) / 4u;
    let item = item_index(gid, groups);
    if (item >= blocks * p.lq * p.heads * p.batch) {
        return;
    }
    let j0 = (item % blocks) * 4u;
    let i = (item / blocks) % p.lq;
    let bh = item / (blocks * p.lq);
    let b = bh / p.heads;
    let h = bh % p.heads;
    let lk = key_count();
    if (j0 >= lk) {
        return;
    }
    let q_base = p.q_offset + b * p.q_batch_stride + i * p.q_row_stride + h * p.head_dim4;
    let i_pos = query_position(i);
    let out_base = (bh * p.lq + i) * p.lk;
    for (var j = j0; j < min(j0 + 4u, lk); j = j + 1u) {
        scores[out_base + j] = key_score(b, h, q_base, i_pos, j);
    }
}

@group(0) @binding(2) var<storage, read> score_in: array<f32>;
@group(0) @binding(3) var<storage, read> values: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> value_table: array<u32>;
// [batch, lq, heads * head_dim] as vec4s.
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;

fn value_row_base(b: u32, j: u32) -> u32 {
    var kv_batch = b / p.kv_div;
    if (p.use_table == 1u) {
        kv_batch = value_table[b * p.table_stride + j];
    }
    return kv_batch * p.kv_batch_stride + j * p.kv_row_stride;
}

// One thread per (4 dimensions of a head, query, batch x head), the dimensions varying fastest.
@compute @workgroup_size(64, 1, 1)
fn attention_output(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let item = item_index(gid, groups);
    if (item >= p.head_dim4 * p.lq * p.heads * p.batch) {
        return;
    }
    let d = item % p.head_dim4;
    let i = (item / p.head_dim4) % p.lq;
    let bh = item / (p.head_dim4 * p.lq);
    let b = bh / p.heads;
    let h = bh % p.heads;
    let lk = key_count();
    let row = (bh * p.lq + i) * p.lk;

    // Subtracting the row maximum keeps exp() in range.
    var row_max = MASKED;
    for (var j = 0u; j < lk; j = j + 1u) {
        row_max = max(row_max, score_in[row + j]);
    }
    var total = 0.0;
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < lk; j = j + 1u) {
        let s = score_in[row + j];
        let weight = select(exp(s - row_max), 0.0, s <= MASKED);
        total = total + weight;
        acc = acc + weight * values[value_row_base(b, j) + p.v_offset + h * p.head_dim4 + d];
    }
    let out_index = (b * p.lq + i) * p.heads * p.head_dim4 + h * p.head_dim4 + d;
    out[out_index] = select(acc / total, vec4<f32>(0.0), total == 0.0);
}
