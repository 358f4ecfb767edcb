// Linear layer: y[m, n] = act(sum_k x[m, k] * w[n, k] + bias[n]) + residual[m, n].
// The weight has PyTorch's nn.Linear layout [out_features, in_features], so both operands are read
// along k with vec4 loads; the host guarantees k % 4 == 0.
//
// Two entry points share the epilogue:
// - `linear_tiled`: 64x64 output tiles, 16 x 16 threads each computing a 4 x 4 block, for prefill and
//   encoders where m is large;
// - `linear_small_m`: up to 8 rows (one decode step), where each workgroup computes 4 output columns
//   and its 64 threads split k, so that neighbouring threads read neighbouring weight memory.

override ACT: u32 = 0u;           // 0: identity, 1: GELU (erf), 2: QuickGELU
override HAS_BIAS: bool = false;
override HAS_RESIDUAL: bool = false;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    _pad: u32,
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
    let idx = row * p.n + col;
    if (HAS_RESIDUAL) {
        v = v + residual[idx];
    }
    y[idx] = v;
}

const TILE: u32 = 64u;
const TILE_K: u32 = 16u;

var<workgroup> x_tile: array<array<f32, 64>, 16>;
var<workgroup> w_tile: array<array<f32, 64>, 16>;

@compute @workgroup_size(16, 16, 1)
fn linear_tiled(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let m0 = wid.y * TILE;
    let n0 = wid.x * TILE;
    let tid = lid.y * 16u + lid.x;
    let k4 = p.k / 4u;
    // Each thread loads one vec4 of x and one of w per k-tile: row `r`, k-quad `c`.
    let r = tid / 4u;
    let c = tid % 4u;

    var acc: array<array<f32, 4>, 4>;
    for (var kt = 0u; kt < p.k; kt = kt + TILE_K) {
        let gk4 = kt / 4u + c;
        var xv = vec4<f32>(0.0);
        if (m0 + r < p.m && gk4 < k4) {
            xv = x[(m0 + r) * k4 + gk4];
        }
        var wv = vec4<f32>(0.0);
        if (n0 + r < p.n && gk4 < k4) {
            wv = w[(n0 + r) * k4 + gk4];
        }
        x_tile[c * 4u + 0u][r] = xv.x;
        x_tile[c * 4u + 1u][r] = xv.y;
        x_tile[c * 4u + 2u][r] = xv.z;
        x_tile[c * 4u + 3u][r] = xv.w;
        w_tile[c * 4u + 0u][r] = wv.x;
        w_tile[c * 4u + 1u][r] = wv.y;
        w_tile[c * 4u + 2u][r] = wv.z;
        w_tile[c * 4u + 3u][r] = wv.w;
        workgroupBarrier();

        for (var kk = 0u; kk < TILE_K; kk = kk + 1u) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var i = 0u; i < 4u; i = i + 1u) {
                a[i] = x_tile[kk][lid.y * 4u + i];
                b[i] = w_tile[kk][lid.x * 4u + i];
            }
            for (var i = 0u; i < 4u; i = i + 1u) {
                for (var j = 0u; j < 4u; j = j + 1u) {
                    acc[i][j] = acc[i][j] + a[i] * b[j];
                }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 4u; i = i + 1u) {
        let row = m0 + lid.y * 4u + i;
        for (var j = 0u; j < 4u; j = j + 1u) {
            let col = n0 + lid.x * 4u + j;
            if (row < p.m && col < p.n) {
                epilogue(row, col, acc[i][j]);
            }
        }
    }
}

const SMALL_M: u32 = 8u;
const COLS: u32 = 4u;
const THREADS: u32 = 64u;

var<workgroup> partial: array<array<f32, 32>, 64>;

@compute @workgroup_size(64, 1, 1)
fn linear_small_m(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let n0 = wid.x * COLS;
    let k4 = p.k / 4u;

    var acc: array<f32, 32>;
    for (var kk = t; kk < k4; kk = kk + THREADS) {
        var wv: array<vec4<f32>, 4>;
        for (var c = 0u; c < COLS; c = c + 1u) {
            if (n0 + c < p.n) {
                wv[c] = w[(n0 + c) * k4 + kk];
            } else {
                wv[c] = vec4<f32>(0.0);
            }
        }
        for (var m = 0u; m < SMALL_M; m = m + 1u) {
            if (m < p.m) {
                let xv = x[m * k4 + kk];
                for (var c = 0u; c < COLS; c = c + 1u) {
                    acc[c * SMALL_M + m] = acc[c * SMALL_M + m] + dot(xv, wv[c]);
                }
            }
        }
    }
    for (var i = 0u; i < 32u; i = i + 1u) {
        partial[t][i] = acc[i];
    }
    workgroupBarrier();

    // Tree reduction over the 64 threads, in a fixed order so results are deterministic.
    for (var stride = THREADS / 2u; stride > 0u; stride = stride / 2u) {
        if (t < stride) {
            for (var i = 0u; i < 32u; i = i + 1u) {
                partial[t][i] = partial[t][i] + partial[t + stride][i];
            }
        }
        workgroupBarrier();
    }

    if (t < 32u) {
        let c = t / SMALL_M;
        let m = t % SMALL_M;
        if (m < p.m && n0 + c < p.n) {
            epilogue(m, n0 + c, partial[0][t]);
        }
    }
}
