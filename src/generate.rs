//! Caption generation options and the host side of decoding: open_clip 3.3.0's sampling loop
//! and the beam search of transformers 4.55's `BeamSearchScorer` as open_clip drives it.
//!
//! The GPU returns, per sequence and step, only the k best (logit, token) pairs and the row's
//! logsumexp. Everything here works on those, so a decode step reads back a few hundred bytes
//! instead of the vocabulary.

use crate::error::{Error, Result};

/// The decoding strategy, with open_clip's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenerationType {
    BeamSearch,
    TopK,
    TopP,
}

impl std::str::FromStr for GenerationType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "beam_search" => Ok(GenerationType::BeamSearch),
            "top_k" => Ok(GenerationType::TopK),
            "top_p" => Ok(GenerationType::TopP),
            other => Err(Error::InvalidArgument(format!(
                "unknown generation type `{other}`; use beam_search, top_k or top_p"
            ))),
        }
    }
}

/// Options of `CoCa.generate`, with open_clip 3.3.0's names and defaults.
#[derive(Clone, Debug)]
pub struct GenerationConfig {
    pub generation_type: GenerationType,
    /// Maximum length of the output, the start token included.
    pub seq_len: usize,
    pub max_seq_len: usize,
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: usize,
    /// `None` uses the model's pad id (0, which is also the token "!").
    pub pad_token_id: Option<u32>,
    pub eos_token_id: u32,
    pub sot_token_id: u32,
    pub num_beams: usize,
    pub num_beam_groups: usize,
    /// The end token is masked until the sequence (start token included) has this length.
    pub min_seq_len: usize,
    pub repetition_penalty: f32,
    /// Pad every output to `seq_len` with the pad id.
    pub fixed_output_length: bool,
    /// Beam scores are divided by length^length_penalty when a hypothesis ends.
    pub length_penalty: f64,
    /// Seed of the sampling generator: the same seed gives the same output.
    pub seed: u64,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig {
            generation_type: GenerationType::BeamSearch,
            seq_len: 30,
            max_seq_len: 77,
            temperature: 1.0,
            top_p: 0.1,
            top_k: 1,
            pad_token_id: None,
            eos_token_id: 49407,
            sot_token_id: 49406,
            num_beams: 6,
            num_beam_groups: 3,
            min_seq_len: 5,
            repetition_penalty: 1.0,
            fixed_output_length: false,
            length_penalty: 1.0,
            seed: 0,
        }
    }
}

impl GenerationConfig {
    /// Greedy decoding: `top_k` sampling with k = 1, as open_clip users write it.
    pub fn greedy() -> Self {
        GenerationConfig { generation_type: GenerationType::TopK, top_k: 1, ..Default::default() }
    }

    /// Checks the options against each other and against the model's context length.
    pub fn validate(&self, context_length: usize) -> Result<()> {
        let invalid = |m: String| Err(Error::InvalidArgument(m));
        if self.seq_len <= self.min_seq_len {
            return invalid(format!(
                "seq_len ({}) must be larger than min_seq_len ({}); raise seq_len or lower min_seq_len",
                self.seq_len, self.min_seq_len
            ));
        }
        if self.seq_len > context_length {
            return invalid(format!(
                "seq_len ({}) exceeds the model's context length ({context_length}); open_clip cannot go past it either",
                self.seq_len
            ));
        }
        if !(self.temperature > 0.0) {
            return invalid(format!("temperature must be positive, got {}", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return invalid(format!("top_p must be in (0, 1], got {}", self.top_p));
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return invalid(format!("repetition_penalty must be a positive number, got {}", self.repetition_penalty));
        }
        match self.generation_type {
            GenerationType::BeamSearch => {
                if self.num_beams < 2 {
                    return invalid(format!("num_beams must be at least 2 for beam search, got {}", self.num_beams));
                }
                if self.num_beam_groups == 0 || self.num_beams % self.num_beam_groups != 0 {
                    return invalid(format!(
                        "num_beams ({}) must be divisible by num_beam_groups ({})",
                        self.num_beams, self.num_beam_groups
                    ));
                }
                let k = 2 * (self.num_beams / self.num_beam_groups);
                if k > crate::ops::MAX_TOP_K {
                    return invalid(format!(
                        "beams per group ({}) may be at most {}",
                        self.num_beams / self.num_beam_groups,
                        crate::ops::MAX_TOP_K / 2
                    ));
                }
            }
            GenerationType::TopK => {
                if self.top_k == 0 || self.top_k > crate::ops::MAX_TOP_K {
                    return invalid(format!("top_k must be between 1 and {}, got {}", crate::ops::MAX_TOP_K, self.top_k));
                }
            }
            GenerationType::TopP => {}
        }
        Ok(())
    }

    /// How many best tokens per row each decode step must return.
    pub(crate) fn candidates_per_row(&self) -> usize {
        match self.generation_type {
            GenerationType::BeamSearch => 2 * (self.num_beams / self.num_beam_groups),
            GenerationType::TopK => self.top_k,
            GenerationType::TopP => crate::ops::MAX_TOP_K,
        }
    }
}

/// A small seedable generator (SplitMix64) for sampling.
pub(crate) struct SampleRng(u64);

impl SampleRng {
    pub fn new(seed: u64) -> Self {
        SampleRng(seed)
    }

    /// Draws a uniform f64 in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(1);
        (crate::synth::splitmix64(self.0) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Samples one token from the best `candidates` (logit, token), sorted best first, with
/// softmax(logit / temperature) over them. With one candidate this is the argmax.
pub(crate) fn sample(candidates: &[(f32, u32)], temperature: f32, rng: &mut SampleRng) -> u32 {
    if candidates.len() == 1 {
        return candidates[0].1;
    }
    let max = candidates[0].0 as f64;
    let weights: Vec<f64> = candidates.iter().map(|(v, _)| ((*v as f64 - max) / temperature as f64).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut threshold = rng.next_f64() * total;
    for (weight, (_, token)) in weights.iter().zip(candidates) {
        if threshold < *weight {
            return *token;
        }
        threshold -= weight;
    }
    candidates[candidates.len() - 1].1
}

/// Keeps the nucleus of transformers' `TopPLogitsWarper` from the best candidates (sorted best
/// first): a token stays while the probability of the tokens before it is below `top_p`, so the
/// first always stays. Probabilities come from the row's `logsumexp`.
pub(crate) fn top_p_nucleus(candidates: &[(f32, u32)], logsumexp: f32, top_p: f32) -> Result<&[(f32, u32)]> {
    let mut before = 0.0f64;
    for (index, (logit, _)) in candidates.iter().enumerate() {
        if index > 0 && before >= top_p as f64 {
            return Ok(&candidates[..index]);
        }
        before += (*logit as f64 - logsumexp as f64).exp();
    }
    if before >= top_p as f64 {
        return Ok(candidates);
    }
    // NOTE: the nucleus is searched among the best candidates the GPU returns; a flatter
    // distribution would need the whole row read back.
    Err(Error::InvalidArgument(format!(
        "top_p {top_p} needs more than the {} most likely tokens at this step; use a smaller top_p or top_k sampling",
        candidates.len()
    )))
}

/// The n best finished hypotheses of one beam group (transformers' `BeamHypotheses`).
#[derive(Clone, Debug)]
pub(crate) struct BeamHypotheses {
    num_beams: usize,
    length_penalty: f64,
    /// (score, tokens) in insertion order; deletion keeps the others' order.
    pub beams: Vec<(f64, Vec<u32>)>,
    worst_score: f64,
}

impl BeamHypotheses {
    pub fn new(num_beams: usize, length_penalty: f64) -> Self {
        BeamHypotheses { num_beams, length_penalty, beams: Vec::new(), worst_score: 1e9 }
    }

    pub fn add(&mut self, tokens: Vec<u32>, sum_logprobs: f64, generated_len: usize) {
        let score = sum_logprobs / (generated_len as f64).powf(self.length_penalty);
        if self.beams.len() < self.num_beams || score > self.worst_score {
            self.beams.push((score, tokens));
            if self.beams.len() > self.num_beams {
                let mut sorted: Vec<(f64, usize)> = self.beams.iter().enumerate().map(|(i, (s, _))| (*s, i)).collect();
                sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                self.beams.remove(sorted[0].1);
                self.worst_score = sorted[1].0;
            } else {
                self.worst_score = self.worst_score.min(score);
            }
        }
    }

    /// transformers' heuristic with `early_stopping=False`.
    pub fn is_done(&self, best_sum_logprobs: f64, cur_len: usize) -> bool {
        if self.beams.len() < self.num_beams {
            return false;
        }
        let highest_attainable = best_sum_logprobs / (cur_len as f64).powf(self.length_penalty);
        self.worst_score >= highest_attainable
    }
}

/// State of a batch beam search over `batch` images with `num_beams` rows each, rows ordered
/// image-major as in open_clip.
pub(crate) struct BeamSearch {
    pub batch: usize,
    pub num_beams: usize,
    pub groups: usize,
    pub group_size: usize,
    pub eos: u32,
    pub pad: u32,
    pub input_ids: Vec<Vec<u32>>,
    pub beam_scores: Vec<f32>,
    pub hyps: Vec<BeamHypotheses>,
    pub done: Vec<bool>,
}

impl BeamSearch {
    pub fn new(batch: usize, config: &GenerationConfig, pad: u32) -> Self {
        let group_size = config.num_beams / config.num_beam_groups;
        let rows = batch * config.num_beams;
        // The first beam of each group starts at 0 and the others at -1e9, so that the beams of a
        // group do not all pick the same token at the first step.
        let beam_scores = (0..rows).map(|r| if (r % config.num_beams) % group_size == 0 { 0.0 } else { -1e9 }).collect();
        BeamSearch {
            batch,
            num_beams: config.num_beams,
            groups: config.num_beam_groups,
            group_size,
            eos: config.eos_token_id,
            pad,
            input_ids: vec![vec![config.sot_token_id]; rows],
            beam_scores,
            hyps: (0..batch * config.num_beam_groups).map(|_| BeamHypotheses::new(group_size, config.length_penalty)).collect(),
            done: vec![false; batch * config.num_beam_groups],
        }
    }

    /// Advances one step given each row's best (logit, token) pairs (at least 2 * group_size, best
    /// first). Returns, for each new row, the old row whose history it continues.
    pub fn step(&mut self, best: &[Vec<(f32, u32)>], vocab: usize) -> Vec<usize> {
        let rows = self.batch * self.num_beams;
        let gs = self.group_size;
        let num_beams = self.num_beams;
        let mut current_tokens = vec![0u32; rows];
        let mut reordering = vec![0usize; rows];
        for g in 0..self.groups {
            let group_rows: Vec<usize> =
                (0..self.batch).flat_map(|b| (0..gs).map(move |j| b * num_beams + g * gs + j)).collect();
            let group_input_ids: Vec<Vec<u32>> = group_rows.iter().map(|&r| self.input_ids[r].clone()).collect();
            // `cur_len` as transformers computes it in `process`: the length after this token.
            let cur_len = group_input_ids[0].len() + 1;
            let mut next_scores = vec![0f32; self.batch * gs];
            let mut next_tokens = vec![0u32; self.batch * gs];
            let mut next_indices = vec![0usize; self.batch * gs];

            for b in 0..self.batch {
                let hyp_index = b * self.groups + g;
                if self.done[hyp_index] {
                    for j in 0..gs {
                        next_scores[b * gs + j] = 0.0;
                        next_tokens[b * gs + j] = self.pad;
                        next_indices[b * gs + j] = 0;
                    }
                    continue;
                }
                // Scores of the group's 2 * gs best continuations over all its beams.
                let mut candidates: Vec<(f32, usize)> = Vec::with_capacity(gs * best[0].len());
                for j in 0..gs {
                    let row = b * self.num_beams + g * gs + j;
                    for &(logit, token) in best[row].iter().take(2 * gs) {
                        candidates.push((logit + self.beam_scores[row], j * vocab + token as usize));
                    }
                }
                candidates.sort_by(|a, c| c.0.total_cmp(&a.0).then(a.1.cmp(&c.1)));
                candidates.truncate(2 * gs);

                let mut beam_idx = 0;
                for (rank, &(score, flat)) in candidates.iter().enumerate() {
                    let token = (flat % vocab) as u32;
                    let batch_beam_idx = b * gs + flat / vocab;
                    if token == self.eos {
                        if rank >= gs {
                            continue;
                        }
                        self.hyps[hyp_index].add(group_input_ids[batch_beam_idx].clone(), score as f64, cur_len);
                    } else {
                        next_scores[b * gs + beam_idx] = score;
                        next_tokens[b * gs + beam_idx] = token;
                        next_indices[b * gs + beam_idx] = batch_beam_idx;
                        beam_idx += 1;
                    }
                    if beam_idx == gs {
                        break;
                    }
                }
                let best_score = candidates[0].0 as f64;
                self.done[hyp_index] = self.done[hyp_index] || self.hyps[hyp_index].is_done(best_score, cur_len);
            }

            for (i, &row) in group_rows.iter().enumerate() {
                self.beam_scores[row] = next_scores[i];
                self.input_ids[row] = group_input_ids[next_indices[i]].clone();
                current_tokens[row] = next_tokens[i];
                let source = next_indices[i];
                reordering[row] = self.num_beams * (source / gs) + g * gs + source % gs;
            }
        }
        for (row, token) in current_tokens.into_iter().enumerate() {
            self.input_ids[row].push(token);
        }
        reordering
    }

    pub fn is_done(&self) -> bool {
        self.done.iter().all(|d| *d)
    }

    /// Returns the best sequence per image, with transformers' end-token and padding rules.
    pub fn finalize(mut self, max_length: usize) -> Vec<(Vec<u32>, f64)> {
        let gs = self.group_size;
        for hyp_index in 0..self.hyps.len() {
            if self.done[hyp_index] {
                continue;
            }
            for j in 0..gs {
                let row = hyp_index * gs + j;
                let tokens = self.input_ids[row].clone();
                let len = tokens.len();
                self.hyps[hyp_index].add(tokens, self.beam_scores[row] as f64, len);
            }
        }
        let mut best = Vec::new();
        for b in 0..self.batch {
            let mut candidates: Vec<(f64, Vec<u32>)> =
                self.hyps[b * self.groups..(b + 1) * self.groups].iter().flat_map(|h| h.beams.clone()).collect();
            // A stable sort by score, then the last element, as Python's sorted(...).pop().
            candidates.sort_by(|a, c| a.0.total_cmp(&c.0));
            best.push(candidates.pop().expect("every group contains at least one hypothesis"));
        }
        let longest = best.iter().map(|(_, t)| t.len()).max().unwrap_or(0);
        let shortest = best.iter().map(|(_, t)| t.len()).min().unwrap_or(0);
        let sent_max_len = (longest + 1).min(max_length);
        best.into_iter()
            .map(|(score, mut tokens)| {
                if tokens.len() < sent_max_len {
                    tokens.push(self.eos);
                }
                if shortest != longest {
                    tokens.resize(sent_max_len, self.pad);
                }
                (tokens, score)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logits whose softmax is exactly `probs` (logsumexp 0).
    fn candidates(probs: &[f64]) -> Vec<(f32, u32)> {
        probs.iter().enumerate().map(|(i, p)| (p.ln() as f32, i as u32)).collect()
    }

    #[test]
    fn top_p_nucleus_follows_transformers_warper() {
        // transformers removes the ascending-sorted tokens whose cumulative probability is at most
        // 1 - top_p: for probabilities 0.5, 0.3, 0.15, 0.05 that keeps 1, 2 and 3 tokens below.
        let probs = candidates(&[0.5, 0.3, 0.15, 0.05]);
        assert_eq!(top_p_nucleus(&probs, 0.0, 0.1).unwrap().len(), 1);
        assert_eq!(top_p_nucleus(&probs, 0.0, 0.7).unwrap().len(), 2);
        assert_eq!(top_p_nucleus(&probs, 0.0, 0.85).unwrap().len(), 3);
    }

    #[test]
    fn top_p_nucleus_too_large_is_error() {
        let flat = candidates(&[0.01; 16]);
        let message = top_p_nucleus(&flat, 0.0, 0.5).unwrap_err().to_string();
        assert!(message.contains("more than the 16 most likely tokens"), "{message}");
    }
}
