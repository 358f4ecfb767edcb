// The k largest logits of each row with their token ids, after the end-of-text token has been
// masked while the sequence is shorter than the minimum length (transformers' MinLengthLogitsProcessor)
// and logits of tokens already in the row's history have been penalized (transformers'
// RepetitionPenaltyLogitsProcessor: positive logits divided by the penalty, negative ones multiplied).
// Greedy decoding reads k = 1; beam search reads the 2 * beams best tokens of every beam, which
// always contain the best 2 * beams candidates over all beams. Per row only k (value, id) pairs go
// back to the host instead of the whole vocabulary.
// With `log_softmax` set, the logits are first turned into log-probabilities over the whole row
// (a first pass computes the logsumexp of the raw logits) and the penalty and mask apply to those,
// in the order of transformers' beam search; beam scores then sum log-probabilities.
// Ties go to the lower token id. After the k pairs, each row gets one more pair: the logsumexp of
// the processed logits over the whole vocabulary (its bits, then 0xffffffff), so the host can
// turn the k logits into probabilities (nucleus sampling, log-probabilities).
//
// k, the vocabulary size and the end-of-text test are tied to the workgroup id (`zero`), because
// on lavapipe a branch or loop bound decided by uniform values alone is slow (see linear.wgsl).

struct Params {
    rows: u32,
    vocab: u32,
    k: u32,
    eos_id: u32,
    min_len: u32,
    repetition_penalty: f32,
    history_stride: u32,
    // 1: process log-softmax values instead of raw logits.
    log_softmax: u32,
}

struct Step {
    pos: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
// [rows, history_stride]: each row's tokens so far; read only when the penalty is not 1.
@group(0) @binding(3) var<storage, read> history: array<u32>;
// [rows, k + 1, 2]: bit pattern of the f32 value, then the token id; the last pair is the row's
// logsumexp.
@group(0) @binding(4) var<storage, read_write> best: array<u32>;

const THREADS: u32 = 64u;
const MAX_K: u32 = 16u;
const NONE: u32 = 0xffffffffu;
const LOWEST: f32 = -3.4e38;

var<workgroup> shared_values: array<f32, 1024>;
var<workgroup> shared_ids: array<u32, 1024>;
var<workgroup> shared_max: array<f32, 64>;
var<workgroup> shared_sum: array<f32, 64>;

// Merges two (max, sum of exp(x - max)) pairs of a running logsumexp.
fn merge_lse(max_a: f32, sum_a: f32, max_b: f32, sum_b: f32) -> vec2<f32> {
    let m = max(max_a, max_b);
    return vec2<f32>(m, sum_a * exp(max_a - m) + sum_b * exp(max_b - m));
}

fn in_history(row: u32, token: u32, count: u32) -> bool {
    for (var j = 0u; j < count; j = j + 1u) {
        if (history[row * p.history_stride + j] == token) {
            return true;
        }
    }
    return false;
}

fn better(value_a: f32, id_a: u32, value_b: f32, id_b: u32) -> bool {
    return value_a > value_b || (value_a == value_b && id_a < id_b);
}

@compute @workgroup_size(64, 1, 1)
fn top_k(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let row = wid.x;
    // Always 0: at most 65,535 rows.
    let zero = row >> 31u;
    let k = p.k + zero;
    let vocab = p.vocab + zero;
    // The sequence fed to this step has pos + 1 tokens, the start token included.
    let mask_eos = step.pos + 1u + zero < p.min_len;
    let penalty = p.repetition_penalty;
    let penalize = bitcast<u32>(penalty) + zero != bitcast<u32>(1.0);

    let base = row * vocab;

    // Log-softmax mode: the logsumexp of the raw logits, merged over the workgroup. Every thread
    // merges the 64 partial results itself, so one barrier suffices.
    var raw_max = 0.0;
    var raw_log_sum = 0.0;
    let log_probs = p.log_softmax + zero != 0u;
    if (log_probs) {
        var m = LOWEST;
        var sum = 0.0;
        for (var v = t; v < vocab; v = v + THREADS) {
            let merged = merge_lse(m, sum, logits[base + v], 1.0);
            m = merged.x;
            sum = merged.y;
        }
        shared_max[t] = m;
        shared_sum[t] = sum;
    }
    workgroupBarrier();
    if (log_probs) {
        var m = LOWEST;
        var sum = 0.0;
        for (var i = 0u; i < THREADS; i = i + 1u) {
            let merged = merge_lse(m, sum, shared_max[i], shared_sum[i]);
            m = merged.x;
            sum = merged.y;
        }
        raw_max = m;
        raw_log_sum = log(sum);
    }
    workgroupBarrier();

    var values: array<f32, 16>;
    var ids: array<u32, 16>;
    for (var i = 0u; i < MAX_K; i = i + 1u) {
        values[i] = LOWEST;
        ids[i] = NONE;
    }

    // The list's last entry, kept in registers: most logits lose against it, and a private
    // array read at a dynamic index is a slow scratch-memory access on software drivers.
    var kth_value = LOWEST;
    var kth_id = NONE;
    // Running logsumexp of this thread's logits: the maximum and the sum of exp(x - maximum).
    var lse_max = LOWEST;
    var lse_sum = 0.0;
    for (var v = t; v < vocab; v = v + THREADS) {
        var s = logits[base + v];
        if (log_probs) {
            // As torch's log_softmax: (x - max) - log(sum(exp(x - max))).
            s = (s - raw_max) - raw_log_sum;
        }
        if (penalize && in_history(row, v, step.pos + 1u)) {
            s = select(s / penalty, s * penalty, s < 0.0);
        }
        if (mask_eos && v == p.eos_id) {
            continue;
        }
        let merged = merge_lse(lse_max, lse_sum, s, 1.0);
        lse_max = merged.x;
        lse_sum = merged.y;
        if (!better(s, v, kth_value, kth_id)) {
            continue;
        }
        // Insertion into the sorted list.
        var j = k - 1u;
        loop {
            if (j == 0u || !better(s, v, values[j - 1u], ids[j - 1u])) {
                break;
            }
            values[j] = values[j - 1u];
            ids[j] = ids[j - 1u];
            j = j - 1u;
        }
        values[j] = s;
        ids[j] = v;
        kth_value = values[k - 1u];
        kth_id = ids[k - 1u];
    }

    for (var i = 0u; i < k; i = i + 1u) {
        shared_values[t * MAX_K + i] = values[i];
        shared_ids[t * MAX_K + i] = ids[i];
    }
    shared_max[t] = lse_max;
    shared_sum[t] = lse_sum;
    workgroupBarrier();

    // Pairwise merge of the sorted per-thread lists.
    for (var stride = THREADS / 2u; stride > 0u; stride = stride / 2u) {
        if (t < stride) {
            var a = 0u;
            var b = 0u;
            let base_a = t * MAX_K;
            let base_b = (t + stride) * MAX_K;
            for (var i = 0u; i < k; i = i + 1u) {
                let va = shared_values[base_a + a];
                let ia = shared_ids[base_a + a];
                let vb = shared_values[base_b + b];
                let ib = shared_ids[base_b + b];
                if (better(va, ia, vb, ib)) {
                    values[i] = va;
                    ids[i] = ia;
                    a = a + 1u;
                } else {
                    values[i] = vb;
                    ids[i] = ib;
                    b = b + 1u;
                }
            }
        }
        var lse = vec2<f32>(0.0);
        if (t < stride) {
            lse = merge_lse(shared_max[t], shared_sum[t], shared_max[t + stride], shared_sum[t + stride]);
        }
        workgroupBarrier();
        if (t < stride) {
            for (var i = 0u; i < k; i = i + 1u) {
                shared_values[t * MAX_K + i] = values[i];
                shared_ids[t * MAX_K + i] = ids[i];
            }
            shared_max[t] = lse.x;
            shared_sum[t] = lse.y;
        }
        workgroupBarrier();
    }

    if (t == 0u) {
        let out = row * (k + 1u);
        for (var i = 0u; i < k; i = i + 1u) {
            best[(out + i) * 2u] = bitcast<u32>(shared_values[i]);
            best[(out + i) * 2u + 1u] = shared_ids[i];
        }
        best[(out + k) * 2u] = bitcast<u32>(shared_max[0] + log(shared_sum[0]));
        best[(out + k) * 2u + 1u] = NONE;
    }
}
