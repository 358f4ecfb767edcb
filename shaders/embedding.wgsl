// Embedding lookups and the layout steps around the vision transformer's patch embedding.

struct Step {
    pos: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// ---- Token embedding plus positional embedding, with an optional class embedding appended ----
// out[b, i] = token_embedding[ids[b, i]] + pos[i + start] for i < len,
// and, when `append_cls` is set, out[b, len] = cls + pos[len] (CoCa's text tower puts it last).

struct TokenParams {
    batch: u32,
    len: u32,          // tokens per sequence read from `ids`
    width: u32,
    append_cls: u32,
    dynamic_pos: u32,  // 1: the position of token 0 is the step's `pos` (one-token decode step)
    vocab: u32,
    // The table may be one part of a token embedding split by rows (over the binding size
    // limit): it holds ids first_id .. first_id + table_rows - 1, and only those tokens are written.
    first_id: u32,
    table_rows: u32,
}

@group(0) @binding(0) var<uniform> tp: TokenParams;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read> token_table: array<f32>;
@group(0) @binding(4) var<storage, read> pos_table: array<f32>;
@group(0) @binding(5) var<storage, read> cls: array<f32>;
@group(0) @binding(6) var<storage, read_write> token_out: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn embed_tokens(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let i = wid.x;
    let b = wid.y;
    let out_len = tp.len + tp.append_cls;
    var pos = i;
    if (tp.dynamic_pos == 1u) {
        pos = step.pos + i;
    }
    let out_base = (b * out_len + i) * tp.width;
    if (i < tp.len) {
        // The host validates ids; the clamp only keeps a bad id inside the vocabulary.
        let id = min(ids[b * tp.len + i], tp.vocab - 1u);
        if (id < tp.first_id || id - tp.first_id >= tp.table_rows) {
            return;
        }
        let row = id - tp.first_id;
        for (var d = t; d < tp.width; d = d + 64u) {
            token_out[out_base + d] = token_table[row * tp.width + d] + pos_table[pos * tp.width + d];
        }
    } else {
        for (var d = t; d < tp.width; d = d + 64u) {
            token_out[out_base + d] = cls[d] + pos_table[pos * tp.width + d];
        }
    }
}

// ---- Patches of a [B, 3, H, W] image as rows [B, grid*grid, 3*P*P] ----
// Columns follow the conv weight's [out, c, ky, kx] flattening, so a linear layer with the conv
// weight reshaped to [out, 3*P*P] computes the stride-P convolution.

struct PatchParams {
    batch: u32,
    image_size: u32,
    patch_size: u32,
    grid: u32,
}

@group(0) @binding(0) var<uniform> pp: PatchParams;
@group(0) @binding(1) var<storage, read> image: array<f32>;
@group(0) @binding(2) var<storage, read_write> patches: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn im2col(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let patch_index = wid.x;
    let b = wid.y;
    let py = patch_index / pp.grid;
    let px = patch_index % pp.grid;
    let cols = 3u * pp.patch_size * pp.patch_size;
    let plane = pp.image_size * pp.image_size;
    let out_base = (b * pp.grid * pp.grid + patch_index) * cols;
    for (var col = t; col < cols; col = col + 64u) {
        let c = col / (pp.patch_size * pp.patch_size);
        let within = col % (pp.patch_size * pp.patch_size);
        let y = py * pp.patch_size + within / pp.patch_size;
        let x = px * pp.patch_size + within % pp.patch_size;
        patches[out_base + col] = image[b * 3u * plane + c * plane + y * pp.image_size + x];
    }
}

// ---- Class token and positional embedding in front of the patch embeddings ----
// out[b, 0] = class_embedding + pos[0]; out[b, 1 + i] = patch_embeds[b, i] + pos[1 + i].

struct ClassParams {
    batch: u32,
    patches: u32,
    width: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> cp: ClassParams;
@group(0) @binding(1) var<storage, read> patch_embeds: array<f32>;
@group(0) @binding(2) var<storage, read> class_embedding: array<f32>;
@group(0) @binding(3) var<storage, read> vision_pos: array<f32>;
@group(0) @binding(4) var<storage, read_write> vision_out: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn add_class_and_position(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let i = wid.x;
    let b = wid.y;
    let out_base = (b * (cp.patches + 1u) + i) * cp.width;
    for (var d = t; d < cp.width; d = d + 64u) {
        var v = class_embedding[d];
        if (i > 0u) {
            v = patch_embeds[(b * cp.patches + i - 1u) * cp.width + d];
        }
        vision_out[out_base + d] = v + vision_pos[i * cp.width + d];
    }
}
