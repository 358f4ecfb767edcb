//! Reading plain JavaScript option objects with type checks, and the generation options.
//!
//! Every option object is checked against its list of known keys, so a typo such as `top_k`
//! (for `topK`) is an error that names the key instead of a silently ignored option.

use js_sys::{Function, Object, Reflect};
use wasm_bindgen::prelude::*;

use super::js_error;
use crate::generate::{GenerationConfig, GenerationType};

/// A JavaScript options object (`undefined` and `null` read as empty).
pub(crate) struct JsOptions {
    object: Option<Object>,
    /// The object's name in error messages, e.g. "caption options".
    label: &'static str,
}

impl JsOptions {
    /// Wraps `value` after checking that it is an object whose keys are all in `known`.
    pub fn new(value: &JsValue, label: &'static str, known: &[&str]) -> Result<JsOptions, JsValue> {
        if value.is_undefined() || value.is_null() {
            return Ok(JsOptions { object: None, label });
        }
        let Some(object) = value.dyn_ref::<Object>().filter(|_| value.is_object()) else {
            return Err(js_error(format!("{label} must be an object, got {}", describe_value(value))));
        };
        for key in Object::keys(object).iter() {
            let key = key.as_string().unwrap_or_default();
            if !known.contains(&key.as_str()) {
                return Err(js_error(unknown_key_message(label, &key, known)));
            }
        }
        Ok(JsOptions { object: Some(object.clone()), label })
    }

    /// Returns the value of `name`, or `None` when it is missing, `undefined` or `null`.
    pub fn get(&self, name: &str) -> Result<Option<JsValue>, JsValue> {
        let Some(object) = &self.object else {
            return Ok(None);
        };
        let value = Reflect::get(object, &JsValue::from_str(name))?;
        Ok((!value.is_undefined() && !value.is_null()).then_some(value))
    }

    fn invalid(&self, name: &str, expected: &str, value: &JsValue) -> JsValue {
        js_error(format!("{}: `{name}` must be {expected}, got {}", self.label, describe_value(value)))
    }

    pub fn number(&self, name: &str) -> Result<Option<f64>, JsValue> {
        match self.get(name)? {
            None => Ok(None),
            Some(value) => match value.as_f64() {
                Some(number) if number.is_finite() => Ok(Some(number)),
                _ => Err(self.invalid(name, "a finite number", &value)),
            },
        }
    }

    /// Reads a non-negative integer no larger than `max`.
    pub fn integer(&self, name: &str, max: f64) -> Result<Option<u64>, JsValue> {
        match self.get(name)? {
            None => Ok(None),
            Some(value) => match value.as_f64() {
                Some(number) if number.fract() == 0.0 && (0.0..=max).contains(&number) => Ok(Some(number as u64)),
                _ => Err(self.invalid(name, &format!("an integer from 0 to {max}"), &value)),
            },
        }
    }

    pub fn boolean(&self, name: &str) -> Result<Option<bool>, JsValue> {
        match self.get(name)? {
            None => Ok(None),
            Some(value) => value.as_bool().map(Some).ok_or_else(|| self.invalid(name, "true or false", &value)),
        }
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, JsValue> {
        match self.get(name)? {
            None => Ok(None),
            Some(value) => value.as_string().map(Some).ok_or_else(|| self.invalid(name, "a string", &value)),
        }
    }

    pub fn function(&self, name: &str) -> Result<Option<Function>, JsValue> {
        match self.get(name)? {
            None => Ok(None),
            Some(value) => value.dyn_into::<Function>().map(Some).map_err(|value| self.invalid(name, "a function", &value)),
        }
    }
}

/// Names a JavaScript value's type for error messages: "a string", "an ArrayBuffer", "null".
pub(crate) fn describe_value(value: &JsValue) -> String {
    if value.is_undefined() {
        return "undefined".into();
    }
    if value.is_null() {
        return "null".into();
    }
    if let Some(text) = value.as_string() {
        let preview: String = text.chars().take(40).collect();
        return format!("the string \"{preview}\"");
    }
    if let Some(number) = value.as_f64() {
        return format!("the number {number}");
    }
    if let Some(flag) = value.as_bool() {
        return format!("{flag}");
    }
    if value.is_function() {
        return "a function".into();
    }
    let constructor = value
        .dyn_ref::<Object>()
        .map(|object| object.constructor().name())
        .and_then(|name| name.as_string())
        .filter(|name| !name.is_empty());
    match constructor {
        Some(name) => format!("an object of type {name}"),
        None => "an object".into(),
    }
}

fn unknown_key_message(label: &str, key: &str, known: &[&str]) -> String {
    let camel = snake_to_camel(key);
    if camel != key && known.contains(&camel.as_str()) {
        return format!("{label}: unknown option `{key}`; the JavaScript name is `{camel}`");
    }
    format!("{label}: unknown option `{key}`; known options are {}", known.join(", "))
}

fn snake_to_camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Options of `caption`: the fields of [`GenerationConfig`] in camelCase, plus the JavaScript
/// extras `prefix` and `onToken`.
pub(crate) const CAPTION_OPTIONS: &[&str] = &[
    "generationType",
    "seqLen",
    "maxSeqLen",
    "temperature",
    "topP",
    "topK",
    "padTokenId",
    "eosTokenId",
    "sotTokenId",
    "numBeams",
    "numBeamGroups",
    "minSeqLen",
    "repetitionPenalty",
    "fixedOutputLength",
    "lengthPenalty",
    "seed",
    "beamScoring",
    "diversityPenalty",
    "earlyStopping",
    "numReturnSequences",
    "stopStrings",
    "prefix",
    "onToken",
];

/// Largest integer that a JavaScript number represents exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Builds a [`GenerationConfig`] from caption options; missing options keep open_clip's defaults.
/// The values are checked against each other later, by `GenerationConfig::validate`.
pub(crate) fn generation_config(options: &JsOptions) -> Result<GenerationConfig, JsValue> {
    let mut config = GenerationConfig::default();
    let size = |name: &str| options.integer(name, u32::MAX as f64).map(|v| v.map(|v| v as usize));
    let id = |name: &str| options.integer(name, u32::MAX as f64).map(|v| v.map(|v| v as u32));

    if let Some(name) = options.string("generationType")? {
        config.generation_type =
            name.parse::<GenerationType>().map_err(|e| js_error(format!("caption options: `generationType`: {e}")))?;
    }
    if let Some(v) = size("seqLen")? {
        config.seq_len = v;
    }
    if let Some(v) = size("maxSeqLen")? {
        config.max_seq_len = v;
    }
    if let Some(v) = options.number("temperature")? {
        config.temperature = v as f32;
    }
    if let Some(v) = options.number("topP")? {
        config.top_p = v as f32;
    }
    if let Some(v) = size("topK")? {
        config.top_k = v;
    }
    if let Some(v) = id("padTokenId")? {
        config.pad_token_id = Some(v);
    }
    if let Some(v) = id("eosTokenId")? {
        config.eos_token_id = v;
    }
    if let Some(v) = id("sotTokenId")? {
        config.sot_token_id = v;
    }
    if let Some(v) = size("numBeams")? {
        config.num_beams = v;
    }
    if let Some(v) = size("numBeamGroups")? {
        config.num_beam_groups = v;
    }
    if let Some(v) = size("minSeqLen")? {
        config.min_seq_len = v;
    }
    if let Some(v) = options.number("repetitionPenalty")? {
        config.repetition_penalty = v as f32;
    }
    if let Some(v) = options.boolean("fixedOutputLength")? {
        config.fixed_output_length = v;
    }
    if let Some(v) = options.number("lengthPenalty")? {
        config.length_penalty = v;
    }
    if let Some(v) = options.integer("seed", MAX_SAFE_INTEGER)? {
        config.seed = v;
    }
    if let Some(name) = options.string("beamScoring")? {
        config.beam_scoring = name.parse().map_err(|e| js_error(format!("caption options: `beamScoring`: {e}")))?;
    }
    if let Some(v) = options.number("diversityPenalty")? {
        config.diversity_penalty = v as f32;
    }
    if let Some(value) = options.get("earlyStopping")? {
        // transformers takes true, false or "never".
        let text = match (value.as_bool(), value.as_string()) {
            (Some(flag), _) => flag.to_string(),
            (None, Some(text)) => text,
            _ => return Err(options.invalid("earlyStopping", "true, false or \"never\"", &value)),
        };
        config.early_stopping = text.parse().map_err(|e| js_error(format!("caption options: `earlyStopping`: {e}")))?;
    }
    if let Some(v) = size("numReturnSequences")? {
        config.num_return_sequences = v;
    }
    if let Some(value) = options.get("stopStrings")? {
        let strings = js_sys::Array::is_array(&value)
            .then(|| js_sys::Array::from(&value).iter().map(|s| s.as_string()).collect::<Option<Vec<String>>>())
            .flatten();
        config.stop_strings = strings.ok_or_else(|| options.invalid("stopStrings", "an array of strings", &value))?;
    }
    Ok(config)
}
