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
    /// `beam_search`: (group) beam search, one sequence per image or the n best.
    BeamSearch,
    /// `top_k`: sampling among the k most likely tokens; k = 1 is greedy decoding.
    TopK,
    /// `top_p`: nucleus sampling among the most likely tokens up to probability `top_p`.
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

/// The scores that beam search sums along a continuation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BeamScoring {
    /// Sums of log-probabilities (log-softmax of the logits), as transformers' beam search and
    /// open_clip's main branch score beams. The default.
    #[default]
    LogSoftmax,
    /// Sums of raw logits, as open_clip 3.3.0 scores beams. It tends to prefer longer captions;
    /// use it to reproduce open_clip 3.3.0's output token for token.
    RawLogits,
}

impl std::str::FromStr for BeamScoring {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "log_softmax" => Ok(BeamScoring::LogSoftmax),
            "raw_logits" => Ok(BeamScoring::RawLogits),
            other => Err(Error::InvalidArgument(format!(
                "unknown beam scoring `{other}`; use log_softmax (default) or raw_logits (open_clip 3.3.0)"
            ))),
        }
    }
}

/// When beam search stops, as transformers' `early_stopping`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EarlyStopping {
    /// `False`: stop a group once no running beam can beat its worst finished hypothesis, judged
    /// at the current length. open_clip's behavior and the default.
    #[default]
    Heuristic,
    /// `True`: stop a group as soon as it has `num_beams / num_beam_groups` finished hypotheses.
    Immediate,
    /// `"never"`: like `Heuristic`, but a positive length penalty is judged at the maximum length.
    Never,
}

impl std::str::FromStr for EarlyStopping {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "false" => Ok(EarlyStopping::Heuristic),
            "true" => Ok(EarlyStopping::Immediate),
            "never" => Ok(EarlyStopping::Never),
            other => Err(Error::InvalidArgument(format!(
                "unknown early stopping `{other}`; use false (default), true or never, as in transformers"
            ))),
        }
    }
}

/// Options of `CoCa.generate`, with open_clip 3.3.0's names and defaults.
#[derive(Clone, Debug)]
pub struct GenerationConfig {
    /// The decoding strategy (`beam_search`, the default, `top_k` or `top_p`).
    pub generation_type: GenerationType,
    /// Maximum length of the output, the start token included.
    pub seq_len: usize,
    /// Sampling feeds the model only the last `max_seq_len` tokens (open_clip's window; 77).
    pub max_seq_len: usize,
    /// Sampling divides the logits by this before the softmax (1.0).
    pub temperature: f32,
    /// The probability mass that `top_p` sampling keeps (0.1).
    pub top_p: f32,
    /// The number of tokens that `top_k` sampling draws from (1, greedy).
    pub top_k: usize,
    /// `None` uses the model's pad id (0, which is also the token "!").
    pub pad_token_id: Option<u32>,
    /// The end-of-text token id (49407).
    pub eos_token_id: u32,
    /// The start-of-text token id (49406).
    pub sot_token_id: u32,
    /// Beams per image (6).
    pub num_beams: usize,
    /// Beam groups, searched in turn each step (3); `num_beams` must be a multiple.
    pub num_beam_groups: usize,
    /// The end token is masked until the sequence (start token included) has this length.
    pub min_seq_len: usize,
    /// transformers' repetition penalty: logits of tokens already in the sequence are divided by
    /// it when positive and multiplied when negative (1.0: none).
    pub repetition_penalty: f32,
    /// Pad every output to `seq_len` with the pad id.
    pub fixed_output_length: bool,
    /// Beam scores are divided by length^length_penalty when a hypothesis ends.
    pub length_penalty: f64,
    /// Seed of the sampling generator: the same seed gives the same output.
    pub seed: u64,
    /// Log-probability (default) or raw-logit (open_clip 3.3.0) beam scores.
    pub beam_scoring: BeamScoring,
    /// Hamming diversity of grouped beam search: each group's scores drop by this much for every
    /// beam of an earlier group that picked the same token at this step. 0 (default) searches
    /// the groups independently, as open_clip 3.3.0 does.
    pub diversity_penalty: f32,
    /// When a beam group stops (transformers' `early_stopping`).
    pub early_stopping: EarlyStopping,
    /// Beam search returns this many best hypotheses per image, best first (at most `num_beams`).
    pub num_return_sequences: usize,
    /// A sequence ends as soon as its decoded text contains one of these strings; the token that
    /// completes the string is kept.
    pub stop_strings: Vec<String>,
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
            beam_scoring: BeamScoring::LogSoftmax,
            diversity_penalty: 0.0,
            early_stopping: EarlyStopping::Heuristic,
            num_return_sequences: 1,
            stop_strings: Vec::new(),
        }
    }
}

impl GenerationConfig {
    /// Greedy decoding: `top_k` sampling with k = 1, as open_clip users write it.
    pub fn greedy() -> Self {
        GenerationConfig { generation_type: GenerationType::TopK, top_k: 1, ..Default::default() }
    }

    /// open_clip 3.3.0's `generate` defaults exactly: beam search over raw-logit scores.
    pub fn open_clip_3_3() -> Self {
        GenerationConfig { beam_scoring: BeamScoring::RawLogits, ..Default::default() }
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
        if self.max_seq_len == 0 {
            return invalid("max_seq_len must be at least 1".into());
        }
        if !self.length_penalty.is_finite() {
            return invalid(format!("length_penalty must be a finite number, got {}", self.length_penalty));
        }
        if !(self.diversity_penalty.is_finite() && self.diversity_penalty >= 0.0) {
            return invalid(format!("diversity_penalty must be zero or positive, got {}", self.diversity_penalty));
        }
        if let Some(empty) = self.stop_strings.iter().position(|s| s.is_empty()) {
            return invalid(format!("stop string {empty} is empty; every stop string needs at least one character"));
        }
        if self.generation_type != GenerationType::BeamSearch && self.num_return_sequences != 1 {
            return invalid(format!(
                "num_return_sequences ({}) above 1 needs beam search; sampling returns one sequence per image",
                self.num_return_sequences
            ));
        }
        match self.generation_type {
            GenerationType::BeamSearch => {
                if self.num_beams < 2 {
                    return invalid(format!("num_beams must be at least 2 for beam search, got {}", self.num_beams));
                }
                if self.num_beam_groups == 0 {
                    return invalid("num_beam_groups must be at least 1".into());
                }
                if self.num_beams % self.num_beam_groups != 0 {
                    return invalid(format!(
                        "num_beams ({}) must be divisible by num_beam_groups ({}); change one of them, e.g. 6 beams in 1, 2, 3 or 6 groups",
                        self.num_beams, self.num_beam_groups
                    ));
                }
                if self.num_return_sequences == 0 || self.num_return_sequences > self.num_beams {
                    return invalid(format!(
                        "num_return_sequences must be between 1 and num_beams ({}), got {}",
                        self.num_beams, self.num_return_sequences
                    ));
                }
                let k = self.candidates_per_row();
                if k > crate::ops::MAX_TOP_K {
                    let group_size = self.num_beams / self.num_beam_groups;
                    return invalid(if self.diversity_penalty != 0.0 {
                        format!(
                            "a diversity penalty needs (num_beam_groups + 1) x beams per group = {k} candidates per beam, at most {}; use fewer beams or groups",
                            crate::ops::MAX_TOP_K
                        )
                    } else {
                        format!("beams per group ({group_size}) may be at most {}", crate::ops::MAX_TOP_K / 2)
                    });
                }
            }
            GenerationType::TopK => {
                if self.top_k == 0 {
                    return invalid("top_k must be at least 1 (1 is greedy decoding)".into());
                }
            }
            GenerationType::TopP => {}
        }
        Ok(())
    }

    /// How many best tokens per row each decode step must return.
    pub(crate) fn candidates_per_row(&self) -> usize {
        match self.generation_type {
            GenerationType::BeamSearch => {
                let group_size = self.num_beams / self.num_beam_groups.max(1);
                // Earlier groups' tokens may be penalized below the best 2 x group size, so a row
                // needs as many more candidates as earlier groups can pick.
                let penalized = if self.diversity_penalty != 0.0 { (self.num_beam_groups - 1) * group_size } else { 0 };
                2 * group_size + penalized
            }
            // A larger top_k reads whole rows of logits instead (see `reads_full_rows`).
            GenerationType::TopK if self.top_k > crate::ops::MAX_TOP_K => 1,
            GenerationType::TopK => self.top_k,
            GenerationType::TopP => crate::ops::MAX_TOP_K,
        }
    }

    /// Returns whether a decode step may need whole rows of logits on the host: always
    /// for `top_k` above the GPU kernel's maximum, and for `top_p` when the nucleus does not fit
    /// in the kernel's best candidates.
    pub(crate) fn reads_full_rows(&self) -> bool {
        match self.generation_type {
            GenerationType::BeamSearch => false,
            GenerationType::TopK => self.top_k > crate::ops::MAX_TOP_K,
            GenerationType::TopP => true,
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
/// first always stays. Probabilities come from the row's `logsumexp`. Returns `None` when the
/// candidates hold less than `top_p` of the probability, so the nucleus needs more of the row.
pub(crate) fn top_p_nucleus(candidates: &[(f32, u32)], logsumexp: f32, top_p: f32) -> Option<&[(f32, u32)]> {
    let mut before = 0.0f64;
    for (index, (logit, _)) in candidates.iter().enumerate() {
        if index > 0 && before >= top_p as f64 {
            return Some(&candidates[..index]);
        }
        before += (*logit as f64 - logsumexp as f64).exp();
    }
    (before >= top_p as f64).then_some(candidates)
}

/// Keeps the `k` best candidates (sorted best first) and any that tie the k-th, as
/// transformers' `TopKLogitsWarper` keeps every logit not below the k-th largest.
pub(crate) fn top_k_with_ties(candidates: &[(f32, u32)], k: usize) -> &[(f32, u32)] {
    if k >= candidates.len() {
        return candidates;
    }
    let kth = candidates[k - 1].0;
    let ties = candidates[k..].iter().take_while(|(logit, _)| *logit >= kth).count();
    &candidates[..k + ties]
}

/// Applies the sampling logits processors to one row on the host, as the top-k kernel does on
/// the GPU: with `mask_eos` the end-of-text token is left out (transformers'
/// `MinLengthLogitsProcessor`), and tokens in `history` get transformers' repetition penalty.
/// Returns every remaining (logit, token) pair, best first with ties to the lower id, and their
/// logsumexp.
pub(crate) fn process_full_row(logits: &[f32], history: &[u32], eos: u32, mask_eos: bool, penalty: f32) -> (Vec<(f32, u32)>, f32) {
    let mut seen = vec![false; logits.len()];
    if penalty != 1.0 {
        for &token in history {
            if let Some(flag) = seen.get_mut(token as usize) {
                *flag = true;
            }
        }
    }
    let mut row: Vec<(f32, u32)> = logits
        .iter()
        .enumerate()
        .filter(|(token, _)| !(mask_eos && *token as u32 == eos))
        .map(|(token, &logit)| {
            let value = if seen[token] {
                if logit < 0.0 {
                    logit * penalty
                } else {
                    logit / penalty
                }
            } else {
                logit
            };
            (value, token as u32)
        })
        .collect();
    row.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let max = row.first().map_or(0.0, |(logit, _)| *logit as f64);
    let sum: f64 = row.iter().map(|(logit, _)| (*logit as f64 - max).exp()).sum();
    (row, (max + sum.ln()) as f32)
}

/// The n best finished hypotheses of one beam group (transformers' `BeamHypotheses`).
#[derive(Clone, Debug)]
pub(crate) struct BeamHypotheses {
    num_beams: usize,
    length_penalty: f64,
    early_stopping: EarlyStopping,
    max_length: usize,
    /// (score, tokens) in insertion order; deletion keeps the others' order.
    pub beams: Vec<(f64, Vec<u32>)>,
    worst_score: f64,
}

impl BeamHypotheses {
    pub fn new(num_beams: usize, length_penalty: f64, early_stopping: EarlyStopping, max_length: usize) -> Self {
        BeamHypotheses { num_beams, length_penalty, early_stopping, max_length, beams: Vec::new(), worst_score: 1e9 }
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

    /// transformers' test of whether a running beam can still beat the finished ones.
    pub fn is_done(&self, best_sum_logprobs: f64, cur_len: usize) -> bool {
        if self.beams.len() < self.num_beams {
            return false;
        }
        let length = match self.early_stopping {
            EarlyStopping::Immediate => return true,
            EarlyStopping::Never if self.length_penalty > 0.0 => self.max_length,
            _ => cur_len,
        };
        let highest_attainable = best_sum_logprobs / (length as f64).powf(self.length_penalty);
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
    pub diversity_penalty: f32,
    pub input_ids: Vec<Vec<u32>>,
    pub beam_scores: Vec<f32>,
    pub hyps: Vec<BeamHypotheses>,
    pub done: Vec<bool>,
}

impl BeamSearch {
    /// Starts every beam from `start` (the start token, then any prefix).
    pub fn new(batch: usize, config: &GenerationConfig, pad: u32, start: &[u32]) -> Self {
        let group_size = config.num_beams / config.num_beam_groups;
        let rows = batch * config.num_beams;
        // The first beam of each group starts at 0 and the others at -1e9, so that the beams of a
        // group do not all pick the same token at the first step.
        let beam_scores = (0..rows).map(|r| if (r % config.num_beams) % group_size == 0 { 0.0 } else { -1e9 }).collect();
        let hyps = (0..batch * config.num_beam_groups)
            .map(|_| BeamHypotheses::new(group_size, config.length_penalty, config.early_stopping, config.seq_len))
            .collect();
        BeamSearch {
            batch,
            num_beams: config.num_beams,
            groups: config.num_beam_groups,
            group_size,
            eos: config.eos_token_id,
            pad,
            diversity_penalty: config.diversity_penalty,
            input_ids: vec![start.to_vec(); rows],
            beam_scores,
            hyps,
            done: vec![false; batch * config.num_beam_groups],
        }
    }

    /// Advances one step given each row's best (score, token) pairs, best first: at least
    /// [`GenerationConfig::candidates_per_row`] of them. `stops`, when given, returns whether
    /// a sequence ends on a stop string. Returns, for each new row, the old row whose history it continues.
    pub fn step(&mut self, best: &[Vec<(f32, u32)>], vocab: usize, stops: Option<&dyn Fn(&[u32]) -> bool>) -> Vec<usize> {
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
                // transformers' HammingDiversityLogitsProcessor: the tokens that this image's
                // earlier groups picked at this step.
                let earlier = &current_tokens[b * num_beams..b * num_beams + g * gs];
                // Scores of the group's 2 * gs best continuations over all its beams.
                let mut candidates: Vec<(f32, usize)> = Vec::with_capacity(gs * best[0].len());
                for j in 0..gs {
                    let row = b * self.num_beams + g * gs + j;
                    for &(logit, token) in &best[row] {
                        let mut processed = logit;
                        if self.diversity_penalty != 0.0 {
                            let count = earlier.iter().filter(|t| **t == token).count();
                            processed -= self.diversity_penalty * count as f32;
                        }
                        candidates.push((processed + self.beam_scores[row], j * vocab + token as usize));
                    }
                }
                candidates.sort_by(|a, c| c.0.total_cmp(&a.0).then(a.1.cmp(&c.1)));
                candidates.truncate(2 * gs);

                let mut beam_idx = 0;
                for (rank, &(score, flat)) in candidates.iter().enumerate() {
                    let token = (flat % vocab) as u32;
                    let batch_beam_idx = b * gs + flat / vocab;
                    let mut extended = None;
                    let finished = token == self.eos
                        || stops.is_some_and(|stops| {
                            let mut tokens = group_input_ids[batch_beam_idx].clone();
                            tokens.push(token);
                            let stopped = stops(&tokens);
                            extended = Some(tokens);
                            stopped
                        });
                    if finished {
                        if rank >= gs {
                            continue;
                        }
                        // An end token is left out of the hypothesis (finalize adds it back); a
                        // token completing a stop string stays.
                        let tokens = extended.unwrap_or_else(|| group_input_ids[batch_beam_idx].clone());
                        self.hyps[hyp_index].add(tokens, score as f64, cur_len);
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

    /// Returns the `keep` best sequences per image (image-major, best first) with their scores,
    /// with transformers' end-token and padding rules.
    pub fn finalize(mut self, max_length: usize, keep: usize) -> Vec<(Vec<u32>, f64)> {
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
            // A stable sort by score, then popping from the end, as Python's sorted(...).pop().
            candidates.sort_by(|a, c| a.0.total_cmp(&c.0));
            for _ in 0..keep {
                best.push(candidates.pop().expect("every group contains as many hypotheses as beams"));
            }
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
    fn top_p_nucleus_beyond_candidates_is_none() {
        let flat = candidates(&[0.01; 16]);
        assert!(top_p_nucleus(&flat, 0.0, 0.5).is_none());
    }

    #[test]
    fn top_k_keeps_ties_of_kth() {
        let row = [(3.0, 7), (2.0, 1), (2.0, 4), (2.0, 9), (1.0, 0)];
        assert_eq!(top_k_with_ties(&row, 1).len(), 1);
        assert_eq!(top_k_with_ties(&row, 2).len(), 4);
        assert_eq!(top_k_with_ties(&row, 5).len(), 5);
        assert_eq!(top_k_with_ties(&row, 50).len(), 5);
    }

    #[test]
    fn full_row_penalizes_history_and_masks_eos() {
        // Token 0: 2.0 seen, divided by 2. Token 1: -1.0 seen, multiplied by 2. Token 2 is the
        // end token, masked. Token 3: 0.5 unseen, kept.
        let logits = [2.0, -1.0, 9.0, 0.5];
        let (row, logsumexp) = process_full_row(&logits, &[0, 1, 0], 2, true, 2.0);
        assert_eq!(row, vec![(1.0, 0), (0.5, 3), (-2.0, 1)]);
        let expected = (1.0f64.exp() + 0.5f64.exp() + (-2.0f64).exp()).ln() as f32;
        assert!((logsumexp - expected).abs() < 1e-6, "{logsumexp} vs {expected}");

        let (row, _) = process_full_row(&logits, &[0, 1], 2, false, 1.0);
        assert_eq!(row, vec![(9.0, 2), (2.0, 0), (0.5, 3), (-1.0, 1)]);
    }
}
