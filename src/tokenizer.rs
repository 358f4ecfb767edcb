//! CLIP text tokenizer with the exact behaviour of open_clip 3.3.0's `SimpleTokenizer`.
//!
//! CoCa's text tower and caption decoder use open_clip's byte-level BPE: 49408 ids, where
//! 49406 is `<start_of_text>`, 49407 is `<end_of_text>` and 0 (the token `!`) doubles as
//! padding. The vocabulary, merges and pre-tokenizer live in `assets/clip_tokenizer.json`,
//! a Hugging Face `tokenizers` file built by `scripts/make_tokenizer.py` from open_clip's
//! `bpe_simple_vocab_16e6.txt.gz`. [`Tokenizer::clip`] loads the copy compiled into the
//! crate, so nothing is read from disk, which keeps the module usable on wasm32.
//!
//! # What matches open_clip
//!
//! - [`Tokenizer::encode`] is `SimpleTokenizer.encode`: clean the text ([`clean`]), split it
//!   with open_clip's regex, map bytes to the BPE alphabet and apply the merges. Like
//!   open_clip, the literal strings `<start_of_text>` and `<end_of_text>` in the (lower-cased)
//!   text become the special ids when the regex reaches them as a piece of their own.
//! - [`Tokenizer::tokenize`] is `SimpleTokenizer.__call__`: `[49406] + ids + [49407]`,
//!   truncated to the context length with 49407 forced into the last slot, padded with 0.
//!   [`Tokenizer::tokenize_strict`] rejects texts that do not fit instead.
//! - [`Tokenizer::decode`] is `SimpleTokenizer.decode`: token bytes, invalid UTF-8 replaced
//!   by U+FFFD, `</w>` turned into a space. [`Tokenizer::decode_caption`] is the
//!   `decode(ids).split("<end_of_text>")[0].replace("<start_of_text>", "").strip()` that
//!   open_clip's examples apply to `generate` output.
//!
//! `tests/tokenizer.rs` checks all of this against ids written by open_clip itself
//! (`scripts/make_tokenizer_fixtures.py`).
//!
//! # The clean-up, and where it differs from Python
//!
//! open_clip cleans every text with `ftfy.fix_text` (ftfy 6.3.1, default settings), then
//! `html.unescape` twice, then collapses whitespace and lower-cases. [`clean`] reimplements
//! that chain. Reproduced:
//!
//! - ftfy's per-line segments, its "a line with `<` turns HTML unescaping off from there on"
//!   rule and its repeat-until-stable loop;
//! - ftfy's mojibake repair (`fix_encoding`) with its `is_bad` detector. It undoes UTF-8
//!   that was read through any of ftfy's ten single-byte encodings (Latin-1,
//!   Windows-1250/1251/1252/1253/1254/1257, ISO-8859-2, MacRoman, CP437), including the
//!   restore-U+00A0 and lost-byte (`�`) variants and CESU-8. It also fixes mojibake embedded
//!   in other text (`decode_inconsistent_utf8`) and reads C1 controls as Windows-1252.
//!   Examples: `cafÃ©` -> `café`, `â€œ` -> `"`, `ðŸ˜€` -> `😀`;
//! - ftfy's HTML unescaping (`&name;` with a semicolon, plus all-caps names such as
//!   `&EACUTE;`), Latin ligatures (`ﬁ` -> `fi`), full-width and half-width forms (`ＡＢＣ` ->
//!   `ABC`, U+3000 -> space), curly quotes to straight ones, line-break normalisation, ANSI
//!   terminal escapes, the control characters ftfy deletes (U+0000-0008, 000B, 000E-001F,
//!   007F, 206A-206F, FEFF, FFF9-FFFC) and Unicode NFC;
//! - `html.unescape`'s numeric references (`&#233;`, `&#xE9;`, with or without `;`, with the
//!   HTML5 rules for 0, 0x80-0x9F, surrogates, out-of-range values and non-characters) and
//!   its legacy names without `;`, including the longest-prefix rule (`&notit;` -> `¬it;`);
//! - Python's `str.split()` whitespace set (White_Space plus U+001C-001F) and `str.lower()`
//!   (full mappings and the final-sigma rule).
//!
//! Besides the fixture test, this was compared with open_clip on 60,000 generated strings
//! (random mixes of the cases above, and captions put through every encoding ftfy knows):
//! no difference apart from the gaps below.
//!
//! Known gaps:
//!
//! - Named entities: only the HTML 4.01 set (252 names: `&amp; &lt; &gt; &quot; &nbsp;
//!   &eacute; &mdash; &hellip; &euro; &trade;` ...), `&apos;`, and the all-caps aliases HTML5
//!   defines for them (`&AMP; &LT; &GT; &QUOT; &COPY; &REG;`). The ~1,900 names that only
//!   HTML5 has (`&check;`, `&NewLine;`, `&Jscr;` ...) stay as written, where Python decodes
//!   them.
//! - Unicode versions: Python 3.11 has Unicode 14. Rust's `to_lowercase` is newer, so 55
//!   capital letters added since (U+1C89, U+A7CB ...) are lower-cased here but not in
//!   Python; NFC comes from the `tokenizers` crate's Unicode 9 tables, which lack one
//!   composition Python makes (U+11935 U+11930 -> U+11938, Dives Akuru).
//! - A decimal reference longer than 4300 digits makes Python raise `ValueError`; here it
//!   becomes U+FFFD like any other out-of-range value.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use tokenizers::{Model, NormalizedString, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

/// Id of `<start_of_text>` in the bundled vocabulary.
pub const START_OF_TEXT: u32 = 49406;
/// Id of `<end_of_text>` in the bundled vocabulary.
pub const END_OF_TEXT: u32 = 49407;
/// Padding id that open_clip writes after `<end_of_text>`. It is also the token `!`.
pub const PAD: u32 = 0;
/// open_clip's default context length (`DEFAULT_CONTEXT_LENGTH`), used by CLIP models.
pub const CONTEXT_LENGTH: usize = 77;
/// Context length of open_clip's CoCa configs (`text_cfg.context_length`), which
/// `open_clip.get_tokenizer("coca_ViT-B-32")` and the other CoCa models tokenize with.
pub const COCA_CONTEXT_LENGTH: usize = 76;
/// Number of ids in the bundled vocabulary.
pub const VOCAB_SIZE: usize = 49408;

const START_OF_TEXT_TOKEN: &str = "<start_of_text>";
const END_OF_TEXT_TOKEN: &str = "<end_of_text>";

/// The bundled tokenizer file (built by `scripts/make_tokenizer.py`).
static CLIP_TOKENIZER_JSON: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/clip_tokenizer.json"));

/// Errors from loading the tokenizer, tokenizing and decoding.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The `tokenizers` crate could not parse the tokenizer JSON. Contains its error message.
    #[error(
        "failed to parse the tokenizer JSON: {0}. Pass a Hugging Face tokenizer.json with a byte-level \
         BPE model, such as assets/clip_tokenizer.json (rebuild it with scripts/make_tokenizer.py)"
    )]
    Load(String),

    /// The tokenizer JSON parses but lacks what open_clip's tokenizer needs: a pre-tokenizer,
    /// the special tokens, or tokens in the byte-level alphabet.
    #[error(
        "the tokenizer JSON is not an open_clip CLIP tokenizer: {0}. Use assets/clip_tokenizer.json \
         or a file written by scripts/make_tokenizer.py"
    )]
    NotClip(String),

    /// The pre-tokenizer or the BPE model failed on a text.
    #[error(
        "the `tokenizers` crate failed while tokenizing: {0}. This is a bug in coca-wgpu or in the \
         tokenizer JSON; please report it with the input text"
    )]
    Internal(String),

    /// A context length of 0 was requested.
    #[error(
        "context length must be at least 1 (open_clip uses {CONTEXT_LENGTH} for CLIP and \
         {COCA_CONTEXT_LENGTH} for CoCa)"
    )]
    ZeroContextLength,

    /// [`Tokenizer::tokenize_strict`] got a text that does not fit the context length.
    #[error(
        "text {index} needs {needed} tokens (with <start_of_text> and <end_of_text>) but the \
         context length is {context_length}: \"{preview}\". Shorten the text, or call \
         `tokenize`, which truncates like open_clip"
    )]
    TooLong {
        /// Position of the text in the input, from 0.
        index: usize,
        /// The text's first 80 characters, followed by `…` when it is longer.
        preview: String,
        /// Ids the text needs, counting `<start_of_text>` and `<end_of_text>`.
        needed: usize,
        /// The requested context length.
        context_length: usize,
    },

    /// [`Tokenizer::decode`] or [`Tokenizer::decode_caption`] got an id that the vocabulary does
    /// not define.
    #[error(
        "token id {id} is not in the vocabulary (ids are 0..{vocab_size}); decode only ids that \
         came from this tokenizer or from the model's {vocab_size}-way output"
    )]
    UnknownId {
        /// The id.
        id: u32,
        /// Number of ids in the vocabulary.
        vocab_size: usize,
    },
}

type Result<T> = std::result::Result<T, TokenizerError>;

/// open_clip's CLIP tokenizer. Cheap to share: all methods take `&self`, and it is `Send + Sync`.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    start_of_text: u32,
    end_of_text: u32,
    /// Bytes of every token, indexed by id (`None` for ids the file does not define).
    token_bytes: Vec<Option<Box<[u8]>>>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.token_bytes.len())
            .field("start_of_text", &self.start_of_text)
            .field("end_of_text", &self.end_of_text)
            .finish()
    }
}

impl Tokenizer {
    /// Loads the open_clip tokenizer compiled into the crate (`assets/clip_tokenizer.json`).
    ///
    /// Parsing the 1.7 MB JSON is not free, so build one and share it.
    pub fn clip() -> Result<Self> {
        Self::from_json_bytes(CLIP_TOKENIZER_JSON)
    }

    /// Loads a Hugging Face `tokenizer.json` in the layout `scripts/make_tokenizer.py` writes:
    /// a byte-level BPE model with a `</w>` end-of-word suffix, a pre-tokenizer that ends with
    /// `ByteLevel`, and `<start_of_text>` / `<end_of_text>` tokens. No normalizer is used:
    /// [`clean`] does open_clip's clean-up before the pre-tokenizer runs.
    pub fn from_json_bytes(json: &[u8]) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_bytes(json).map_err(|e| TokenizerError::Load(e.to_string()))?;
        if inner.get_pre_tokenizer().is_none() {
            return Err(TokenizerError::NotClip(
                "it has no pre_tokenizer (open_clip's regex split followed by ByteLevel)".into(),
            ));
        }
        let special = |name: &str| {
            inner.token_to_id(name).ok_or_else(|| TokenizerError::NotClip(format!("it has no `{name}` token")))
        };
        let start_of_text = special(START_OF_TEXT_TOKEN)?;
        let end_of_text = special(END_OF_TEXT_TOKEN)?;

        let vocab = inner.get_vocab(true);
        let len = vocab.values().map(|&id| id as usize + 1).max().unwrap_or(0);
        let mut token_bytes: Vec<Option<Box<[u8]>>> = vec![None; len];
        for (token, id) in vocab {
            let bytes = token_to_bytes(&token).ok_or_else(|| {
                TokenizerError::NotClip(format!(
                    "token {id} ({token:?}) has characters outside the byte-level BPE alphabet"
                ))
            })?;
            token_bytes[id as usize] = Some(bytes.into_boxed_slice());
        }
        Ok(Self { inner, start_of_text, end_of_text, token_bytes })
    }

    /// Number of ids (49408 for the bundled file).
    pub fn vocab_size(&self) -> usize {
        self.token_bytes.len()
    }

    /// Id of `<start_of_text>`.
    pub fn start_of_text_id(&self) -> u32 {
        self.start_of_text
    }

    /// Id of `<end_of_text>`.
    pub fn end_of_text_id(&self) -> u32 {
        self.end_of_text
    }

    /// Returns the wrapped Hugging Face tokenizer, for callers that need its other APIs.
    ///
    /// Its own `encode` skips [`clean`] and splits out special tokens before the regex, so it
    /// can differ from [`Tokenizer::encode`].
    pub fn hf_tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// BPE ids of `text` without `<start_of_text>` / `<end_of_text>` (open_clip's `encode`).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let cleaned = clean(text);
        if cleaned.is_empty() {
            return Ok(Vec::new());
        }
        let pre_tokenizer = self
            .inner
            .get_pre_tokenizer()
            .ok_or_else(|| TokenizerError::Internal("the pre-tokenizer disappeared after loading".into()))?;
        let mut pieces = PreTokenizedString::from(cleaned.as_str());
        pre_tokenizer.pre_tokenize(&mut pieces).map_err(|e| TokenizerError::Internal(e.to_string()))?;
        let model = self.inner.get_model();
        let mut ids = Vec::new();
        for (piece, _, _) in pieces.get_splits(OffsetReferential::Original, OffsetType::Byte) {
            // The byte-level mapping leaves these ASCII strings unchanged. open_clip's regex
            // yields them as whole pieces, and its BPE cache maps them to the special ids.
            if piece == START_OF_TEXT_TOKEN {
                ids.push(self.start_of_text);
            } else if piece == END_OF_TEXT_TOKEN {
                ids.push(self.end_of_text);
            } else {
                let tokens = model.tokenize(piece).map_err(|e| TokenizerError::Internal(e.to_string()))?;
                ids.extend(tokens.iter().map(|t| t.id));
            }
        }
        Ok(ids)
    }

    /// open_clip's `tokenizer(texts, context_length)`: one row of exactly `context_length` ids
    /// per text, `[<start_of_text>] + encode(text) + [<end_of_text>]` padded with 0. A row that
    /// is too long is cut to `context_length` and its last id set to `<end_of_text>`. The end
    /// of the text is then lost without notice; [`Tokenizer::tokenize_strict`] reports it.
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S], context_length: usize) -> Result<Vec<Vec<u32>>> {
        self.rows(texts, context_length, false)
    }

    /// Like [`Tokenizer::tokenize`], but a text that needs more than `context_length` ids
    /// (counting `<start_of_text>` and `<end_of_text>`) is an error naming the text and the
    /// length it needs.
    pub fn tokenize_strict<S: AsRef<str>>(&self, texts: &[S], context_length: usize) -> Result<Vec<Vec<u32>>> {
        self.rows(texts, context_length, true)
    }

    fn rows<S: AsRef<str>>(&self, texts: &[S], context_length: usize, strict: bool) -> Result<Vec<Vec<u32>>> {
        if context_length == 0 {
            return Err(TokenizerError::ZeroContextLength);
        }
        let mut rows = Vec::with_capacity(texts.len());
        for (index, text) in texts.iter().enumerate() {
            let text = text.as_ref();
            let ids = self.encode(text)?;
            let needed = ids.len() + 2;
            if needed > context_length && strict {
                return Err(TokenizerError::TooLong { index, preview: preview(text), needed, context_length });
            }
            let mut row = Vec::with_capacity(context_length.max(needed));
            row.push(self.start_of_text);
            row.extend_from_slice(&ids);
            row.push(self.end_of_text);
            if row.len() > context_length {
                row.truncate(context_length);
                row[context_length - 1] = self.end_of_text;
            }
            row.resize(context_length, PAD);
            rows.push(row);
        }
        Ok(rows)
    }

    /// open_clip's `decode`: the tokens' bytes joined and read as UTF-8 (invalid sequences
    /// become U+FFFD, as Python's `errors="replace"`), then every `</w>` replaced by a space.
    /// Special tokens and padding are kept as text (`<start_of_text>`, `!`).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            let token = self
                .token_bytes
                .get(id as usize)
                .and_then(|t| t.as_deref())
                .ok_or(TokenizerError::UnknownId { id, vocab_size: self.token_bytes.len() })?;
            bytes.extend_from_slice(token);
        }
        Ok(String::from_utf8_lossy(&bytes).replace("</w>", " "))
    }

    /// Decodes the caption in a generated sequence. Ids from the first `<end_of_text>` on
    /// (with the padding after it) and all `<start_of_text>` ids are dropped, and the rest is
    /// decoded and trimmed. Id 0 before `<end_of_text>` is a real `!`. Ids after the first
    /// `<end_of_text>` are not looked at, so they may be out of range.
    pub fn decode_caption(&self, ids: &[u32]) -> Result<String> {
        let end = ids.iter().position(|&id| id == self.end_of_text).unwrap_or(ids.len());
        let kept: Vec<u32> = ids[..end].iter().copied().filter(|&id| id != self.start_of_text).collect();
        let text = self.decode(&kept)?;
        Ok(text.trim_matches(is_py_space).to_string())
    }
}

/// First 80 characters of `text`, for error messages.
fn preview(text: &str) -> String {
    const MAX: usize = 80;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Byte-level alphabet (open_clip's `bytes_to_unicode`)
// ---------------------------------------------------------------------------------------------

/// Bytes that stand for themselves in the BPE alphabet: `!`..`~`, `¡`..`¬`, `®`..`ÿ`.
fn byte_is_printable(b: u8) -> bool {
    matches!(b, 0x21..=0x7e | 0xa1..=0xac | 0xae..=0xff)
}

/// Maps a BPE-alphabet character back to its byte. The 68 bytes that are not printable
/// stand, in order, for U+0100, U+0101, ...
fn char_to_byte(c: char) -> Option<u8> {
    let cp = c as u32;
    if cp < 256 && byte_is_printable(cp as u8) {
        return Some(cp as u8);
    }
    // The other bytes, in order: 0x00-0x20 (33), 0x7F-0xA0 (34), 0xAD.
    match cp.checked_sub(256)? {
        n @ 0..=32 => Some(n as u8),
        n @ 33..=66 => Some((0x7f + n - 33) as u8),
        67 => Some(0xad),
        _ => None,
    }
}

fn token_to_bytes(token: &str) -> Option<Vec<u8>> {
    token.chars().map(char_to_byte).collect()
}

// ---------------------------------------------------------------------------------------------
// open_clip's clean-up
// ---------------------------------------------------------------------------------------------

/// open_clip's `_clean_lower`: `ftfy.fix_text`, `html.unescape` twice, strip, collapse
/// whitespace runs to one space, lower-case. See the module documentation for what is and is
/// not reproduced.
pub fn clean(text: &str) -> String {
    let fixed = fix_text(text);
    let once = html_unescape(&fixed);
    let unescaped = html_unescape(&once);
    let mut joined = String::with_capacity(unescaped.len());
    for word in unescaped.split(is_py_space).filter(|w| !w.is_empty()) {
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(word);
    }
    joined.to_lowercase()
}

/// Python's `str.isspace`: Unicode White_Space plus the separators U+001C-001F.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `re` `\w` for `str` patterns, close enough for ftfy's one use of it.
fn is_py_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn nfc(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    let mut n = NormalizedString::from(text);
    n.nfc();
    n.get().to_string()
}

// --- ftfy.fix_text ----------------------------------------------------------------------------

/// ftfy's `max_decode_length`: longer lines are fixed in pieces of this many characters.
const FTFY_MAX_SEGMENT_CHARS: usize = 1_000_000;
/// Upper bound for ftfy's repeat-until-unchanged loops, which have none in Python. It only
/// matters if the fixes ever cycle.
const FTFY_MAX_ROUNDS: usize = 32;

/// `ftfy.fix_text` with its default configuration.
fn fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut unescape_html = true;
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        if let Some((cut, _)) = rest[..end].char_indices().nth(FTFY_MAX_SEGMENT_CHARS) {
            end = cut;
        }
        let segment = &rest[..end];
        // "auto" HTML mode: a segment with `<` looks like real HTML, so ftfy stops unescaping,
        // and because it updates its config in place, it stays off for the later segments too.
        if unescape_html && segment.contains('<') {
            unescape_html = false;
        }
        out.push_str(&fix_segment(segment, unescape_html));
        rest = &rest[end..];
    }
    out
}

/// ftfy's `fix_and_explain` on one segment.
fn fix_segment(segment: &str, unescape_html: bool) -> String {
    let mut text = segment.to_string();
    for _ in 0..FTFY_MAX_ROUNDS {
        let before = text.clone();
        if unescape_html {
            text = ftfy_unescape_html(&text);
        }
        text = fix_encoding(&text);
        text = fix_characters(&text);
        text = fix_line_breaks(&text);
        text = remove_terminal_escapes(&text);
        text.retain(|c| !is_ftfy_control(c));
        text = nfc(&text);
        if text == before {
            break;
        }
    }
    text
}

/// ftfy's per-character fixers in its order: `fix_c1_controls`, `fix_latin_ligatures`,
/// `fix_character_width`, `uncurl_quotes`.
fn fix_characters(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c1_to_windows_1252(c).unwrap_or(c);
        let unligated: Cow<'static, str> = match latin_ligature(c) {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(c.to_string()),
        };
        for c in unligated.chars() {
            match standard_width(c) {
                Some(wide) => out.extend(wide.chars().map(uncurl_quote)),
                None => out.push(uncurl_quote(c)),
            }
        }
    }
    out
}

/// Reads a C1 control character as Windows-1252. The five bytes Windows-1252 leaves
/// undefined stay as they are ("sloppy" Windows-1252).
fn c1_to_windows_1252(c: char) -> Option<char> {
    let cp = c as u32;
    if !(0x80..=0x9f).contains(&cp) {
        return None;
    }
    char::from_u32(CHARMAPS[Charmap::SloppyWindows1252 as usize][(cp - 0x80) as usize].into())
}

fn is_windows_1252_undefined(c: char) -> bool {
    matches!(c, '\u{81}' | '\u{8d}' | '\u{8f}' | '\u{90}' | '\u{9d}')
}

/// ftfy's `LIGATURES`: Latin typographic ligatures and legacy digraphs.
fn latin_ligature(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{132}' => "IJ",
        '\u{133}' => "ij",
        '\u{149}' => "\u{2bc}n",
        '\u{1f1}' => "DZ",
        '\u{1f2}' => "Dz",
        '\u{1f3}' => "dz",
        '\u{1c4}' => "D\u{17d}",
        '\u{1c5}' => "D\u{17e}",
        '\u{1c6}' => "d\u{17e}",
        '\u{1c7}' => "LJ",
        '\u{1c8}' => "Lj",
        '\u{1c9}' => "lj",
        '\u{1ca}' => "NJ",
        '\u{1cb}' => "Nj",
        '\u{1cc}' => "nj",
        '\u{fb00}' => "ff",
        '\u{fb01}' => "fi",
        '\u{fb02}' => "fl",
        '\u{fb03}' => "ffi",
        '\u{fb04}' => "ffl",
        '\u{fb05}' => "\u{17f}t",
        '\u{fb06}' => "st",
        _ => return None,
    })
}

/// ftfy's `WIDTH_MAP`: U+3000 -> space, and U+FF01-FFEF -> their NFKC form when it differs.
fn standard_width(c: char) -> Option<String> {
    if c == '\u{3000}' {
        return Some(" ".to_string());
    }
    if !('\u{ff01}'..='\u{ffef}').contains(&c) {
        return None;
    }
    let mut n = NormalizedString::from(c.to_string());
    n.nfkc();
    let folded = n.get();
    let mut chars = folded.chars();
    if chars.next() == Some(c) && chars.next().is_none() {
        None
    } else {
        Some(folded.to_string())
    }
}

/// ftfy's `uncurl_quotes`.
fn uncurl_quote(c: char) -> char {
    match c {
        '\u{2bc}' | '\u{2018}'..='\u{201b}' => '\'',
        '\u{201c}'..='\u{201f}' => '"',
        _ => c,
    }
}

/// ftfy's `fix_line_breaks`: CRLF, CR, U+2028, U+2029 and U+0085 become `\n`.
fn fix_line_breaks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\u{2028}' | '\u{2029}' | '\u{85}' => out.push('\n'),
            _ => out.push(c),
        }
    }
    out
}

/// ftfy's `remove_terminal_escapes`: deletes `ESC [ (decimal digits or ;)* ASCII letter`.
fn remove_terminal_escapes(text: &str) -> String {
    if !text.contains('\u{1b}') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('\u{1b}') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let matched = after.strip_prefix('[').and_then(|params| {
            let params_end =
                params.find(|c: char| !(c == ';' || lookup_class(DECIMAL_DIGITS, c).is_some())).unwrap_or(params.len());
            let tail = &params[params_end..];
            tail.chars().next().filter(char::is_ascii_alphabetic).map(|_| &tail[1..])
        });
        match matched {
            Some(remaining) => rest = remaining,
            None => {
                out.push('\u{1b}');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Control characters ftfy's `remove_control_chars` deletes.
fn is_ftfy_control(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}' | '\u{e}'..='\u{1f}' | '\u{7f}'
        | '\u{206a}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffc}')
}

// --- HTML entities ----------------------------------------------------------------------------

fn lookup_entity(name: &str) -> Option<&'static str> {
    HTML_ENTITIES.binary_search_by(|(key, _)| (*key).cmp(name)).ok().map(|i| HTML_ENTITIES[i].1)
}

/// ftfy's `unescape_html` on `&` + optional `#` + 1-24 ASCII letters or digits + `;`.
/// Names are decoded only with their `;`, and all-caps names of lower-case entities work too
/// (`&EACUTE;` -> `É`). A numeric reference is decoded only when Python's `html.unescape`
/// consumes all of it and the result has no `;`.
fn ftfy_unescape_html(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let body = after.strip_prefix('#').unwrap_or(after);
        let run = body.bytes().take_while(u8::is_ascii_alphanumeric).count();
        if (1..=24).contains(&run) && body.as_bytes().get(run) == Some(&b';') {
            let end = (after.len() - body.len()) + run + 1;
            let entity = &rest[pos..pos + 1 + end];
            let name = &entity[1..];
            let replacement = if let Some(r) = lookup_entity(name) {
                Cow::Borrowed(r)
            } else if let Ok(i) = FTFY_UPPER_ENTITIES.binary_search_by(|(k, _)| (*k).cmp(name)) {
                Cow::Borrowed(FTFY_UPPER_ENTITIES[i].1)
            } else if name.starts_with('#') {
                match html_unescape(entity) {
                    Cow::Owned(s) if !s.contains(';') => Cow::Owned(s),
                    _ => Cow::Borrowed(entity),
                }
            } else {
                Cow::Borrowed(entity)
            };
            out.push_str(&replacement);
            rest = &rest[pos + 1 + end..];
        } else {
            out.push('&');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Python's `html.unescape` (HTML5 rules) with the entity subset described in the module docs.
fn html_unescape(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let consumed = if let Some(num) = after.strip_prefix('#') {
            unescape_numeric(num, &mut out)
        } else {
            unescape_named(after, &mut out)
        };
        match consumed {
            Some(n) => rest = &after[n..],
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// `#[0-9]+;?` or `#[xX][0-9a-fA-F]+;?` (the `#` already stripped). Returns the bytes consumed
/// after `&`, or `None` when this is not a numeric reference.
fn unescape_numeric(num: &str, out: &mut String) -> Option<usize> {
    let (radix, digits_start) = match num.as_bytes().first() {
        Some(b'0'..=b'9') => (10, 0),
        Some(b'x' | b'X') => (16, 1),
        _ => return None,
    };
    let digits = &num[digits_start..];
    let len = digits.bytes().take_while(|b| (*b as char).is_digit(radix)).count();
    if len == 0 {
        return None;
    }
    // Saturate: anything above 0x10FFFF becomes U+FFFD like in Python.
    let value = digits[..len]
        .chars()
        .fold(0u32, |acc, d| acc.saturating_mul(radix).saturating_add(d.to_digit(radix).unwrap_or(0)));
    let semicolon = usize::from(digits.as_bytes().get(len) == Some(&b';'));
    match value {
        0x00 => out.push('\u{fffd}'),
        0x0d => out.push('\r'),
        0x80..=0x9f => out.extend(char::from_u32(value).and_then(c1_to_windows_1252)),
        0xd800..=0xdfff | 0x110000.. => out.push('\u{fffd}'),
        0x01..=0x08 | 0x0b | 0x0e..=0x1f | 0x7f | 0xfdd0..=0xfdef => {}
        v if v & 0xfffe == 0xfffe => {}
        v => out.push(char::from_u32(v).unwrap_or('\u{fffd}')),
    }
    Some(1 + digits_start + len + semicolon)
}

/// `[^\t\n\f <&#;]{1,32};?`, decoded with the longest-prefix rule for names without `;`.
fn unescape_named(after: &str, out: &mut String) -> Option<usize> {
    let name_len: usize = after
        .chars()
        .take_while(|c| !matches!(c, '\t' | '\n' | '\u{c}' | ' ' | '<' | '&' | '#' | ';'))
        .take(32)
        .map(char::len_utf8)
        .sum();
    if name_len == 0 {
        return None;
    }
    let semicolon = usize::from(after.as_bytes().get(name_len) == Some(&b';'));
    let reference = &after[..name_len + semicolon];
    if let Some(r) = lookup_entity(reference) {
        out.push_str(r);
        return Some(reference.len());
    }
    // Longest prefix of at least two characters that is an entity (only legacy names without
    // `;` can match here), followed by the rest as written.
    let boundaries: Vec<usize> = reference.char_indices().map(|(i, _)| i).skip(2).collect();
    for &cut in boundaries.iter().rev() {
        if let Some(r) = lookup_entity(&reference[..cut]) {
            out.push_str(r);
            out.push_str(&reference[cut..]);
            return Some(reference.len());
        }
    }
    out.push('&');
    out.push_str(reference);
    Some(reference.len())
}

// --- ftfy.fix_encoding ------------------------------------------------------------------------

/// `ftfy.fix_encoding`: repeat one repair step until nothing changes.
fn fix_encoding(text: &str) -> String {
    let mut text = text.to_string();
    for _ in 0..FTFY_MAX_ROUNDS {
        match fix_encoding_step(&text) {
            Some(fixed) if fixed != text => text = fixed,
            _ => break,
        }
    }
    text
}

/// ftfy's `CHARMAP_ENCODINGS` in the order it tries them. The discriminant indexes `CHARMAPS`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Charmap {
    Latin1,
    SloppyWindows1252,
    SloppyWindows1251,
    SloppyWindows1250,
    SloppyWindows1253,
    SloppyWindows1254,
    SloppyWindows1257,
    Iso8859_2,
    MacRoman,
    Cp437,
}

impl Charmap {
    const ALL: [Charmap; 10] = [
        Charmap::Latin1,
        Charmap::SloppyWindows1252,
        Charmap::SloppyWindows1251,
        Charmap::SloppyWindows1250,
        Charmap::SloppyWindows1253,
        Charmap::SloppyWindows1254,
        Charmap::SloppyWindows1257,
        Charmap::Iso8859_2,
        Charmap::MacRoman,
        Charmap::Cp437,
    ];

    /// ftfy's "sloppy" codecs: undefined bytes decode as Latin-1, and byte 0x1A stands for
    /// U+FFFD (so U+001A itself cannot be written).
    fn is_sloppy(self) -> bool {
        matches!(
            self,
            Charmap::SloppyWindows1252
                | Charmap::SloppyWindows1251
                | Charmap::SloppyWindows1250
                | Charmap::SloppyWindows1253
                | Charmap::SloppyWindows1254
                | Charmap::SloppyWindows1257
        )
    }

    /// Encodes `c` as one byte, or returns `None` when this encoding has no byte for it.
    fn encode_char(self, c: char) -> Option<u8> {
        match c {
            '\u{1a}' if self.is_sloppy() => None,
            '\u{fffd}' if self.is_sloppy() => Some(0x1a),
            _ if c.is_ascii() => Some(c as u8),
            _ => {
                static REVERSE: OnceLock<Vec<HashMap<char, u8>>> = OnceLock::new();
                let reverse = REVERSE.get_or_init(|| {
                    CHARMAPS
                        .iter()
                        .map(|high| {
                            high.iter()
                                .zip(0x80u8..=0xff)
                                .filter_map(|(&cp, b)| char::from_u32(cp.into()).map(|c| (c, b)))
                                .collect()
                        })
                        .collect()
                });
                reverse[self as usize].get(&c).copied()
            }
        }
    }

    fn encode(self, text: &str) -> Option<Vec<u8>> {
        text.chars().map(|c| self.encode_char(c)).collect()
    }
}

/// Runs one step of ftfy's `_fix_encoding_one_step_and_explain`. Returns `None` when the
/// text should stay as it is.
fn fix_encoding_step(text: &str) -> Option<String> {
    if text.is_ascii() || !is_bad(text) {
        return None;
    }
    // The common case: UTF-8 that was decoded with a single-byte encoding.
    let mut latin1_possible = false;
    for charmap in Charmap::ALL {
        let Some(mut bytes) = charmap.encode(text) else { continue };
        latin1_possible |= charmap == Charmap::Latin1;
        if charmap != Charmap::MacRoman && find_bytes(&bytes, ALTERED_UTF8).is_some() {
            bytes = restore_byte_a0(&bytes);
        }
        if charmap.is_sloppy() {
            bytes = replace_lossy_sequences(&bytes);
        }
        let decoded = if bytes.contains(&0xed) || bytes.contains(&0xc0) {
            decode_utf8_variants(&bytes)
        } else {
            String::from_utf8(bytes).ok()
        };
        if decoded.is_some() {
            return decoded;
        }
    }
    // Mojibake next to text that no single-byte encoding can write: fix the pieces.
    let fixed = decode_inconsistent_utf8(text);
    if fixed != text {
        return Some(fixed);
    }
    // Latin-1 text with C1 controls: read as strict Windows-1252 (fails on its undefined bytes).
    if latin1_possible && !text.chars().any(is_windows_1252_undefined) {
        let fixed: String = text.chars().map(|c| c1_to_windows_1252(c).unwrap_or(c)).collect();
        if fixed != text {
            return Some(fixed);
        }
    }
    if text.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)) {
        return Some(text.chars().map(|c| c1_to_windows_1252(c).unwrap_or(c)).collect());
    }
    None
}

/// ftfy's `utf-8-variants` codec: UTF-8, plus CESU-8 surrogate pairs and Java's `C0 80` for
/// U+0000. `None` on anything else that is not valid UTF-8.
fn decode_utf8_variants(bytes: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.push_str(valid);
                return Some(out);
            }
            Err(e) => {
                let (valid, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).ok()?);
                if bad.starts_with(&[0xc0, 0x80]) {
                    out.push('\u{0}');
                    rest = &bad[2..];
                } else if let [0xed, b1 @ 0xa0..=0xaf, b2 @ 0x80..=0xbf, 0xed, b4 @ 0xb0..=0xbf, b5 @ 0x80..=0xbf, ..] =
                    *bad
                {
                    let cp = (u32::from(b1 & 0x0f) << 16)
                        + (u32::from(b2 & 0x3f) << 10)
                        + (u32::from(b4 & 0x0f) << 6)
                        + u32::from(b5 & 0x3f)
                        + 0x10000;
                    out.push(char::from_u32(cp)?);
                    rest = &bad[6..];
                } else {
                    return None;
                }
            }
        }
    }
}

// Bits of UTF8_CLUE_CLASSES (ftfy.chardata.UTF8_CLUES).
const UTF8_FIRST_OF_2: u8 = 0x1;
const UTF8_FIRST_OF_3: u8 = 0x2;
const UTF8_FIRST_OF_4: u8 = 0x4;
const UTF8_CONTINUATION: u8 = 0x8;
const UTF8_CONTINUATION_STRICT: u8 = 0x10;

fn utf8_clue(c: char) -> u8 {
    lookup_class(UTF8_CLUE_CLASSES, c).unwrap_or(0)
}

/// Length in characters of ftfy's `UTF8_DETECTOR_RE` match at `chars[at]`: not after a strict
/// continuation character, then one or more (lead, continuation...) groups, trying the 2-,
/// 3- and 4-byte shapes in that order.
fn utf8_detector_match(chars: &[char], at: usize) -> Option<usize> {
    if at > 0 && utf8_clue(chars[at - 1]) & UTF8_CONTINUATION_STRICT != 0 {
        return None;
    }
    let mut end = at;
    while let Some(len) =
        [(UTF8_FIRST_OF_2, 2), (UTF8_FIRST_OF_3, 3), (UTF8_FIRST_OF_4, 4)].iter().find_map(|&(lead, len)| {
            let group = chars.get(end..end + len)?;
            let hit =
                utf8_clue(group[0]) & lead != 0 && group[1..].iter().all(|&c| utf8_clue(c) & UTF8_CONTINUATION != 0);
            hit.then_some(len)
        })
    {
        end += len;
    }
    (end > at).then_some(end - at)
}

/// ftfy's `decode_inconsistent_utf8`: runs that look like UTF-8 mojibake are fixed on their
/// own when they are shorter than the text and look bad by themselves.
fn decode_inconsistent_utf8(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        match utf8_detector_match(&chars, i) {
            Some(len) => {
                let run: String = chars[i..i + len].iter().collect();
                if len < chars.len() && is_bad(&run) {
                    out.push_str(&fix_encoding(&run));
                } else {
                    out.push_str(&run);
                }
                i += len;
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

/// One position of a fixed-length byte pattern: inclusive ranges.
type ByteClass = &'static [(u8, u8)];

const CONT: ByteClass = &[(0x80, 0xbf)];
const SPACE: ByteClass = &[(b' ', b' ')];
/// Continuation bytes except 0x85 and 0xA0 (ftfy's `[\x80-\x84\x86-\x9f\xa1-\xbf]`).
const CONT_NO_85_A0: ByteClass = &[(0x80, 0x84), (0x86, 0x9f), (0xa1, 0xbf)];

/// ftfy's `ALTERED_UTF8_RE`: UTF-8 sequences whose 0xA0 byte became a space.
const ALTERED_UTF8: &[&[ByteClass]] = &[
    &[&[(0xc2, 0xc3), (0xc5, 0xc5), (0xce, 0xce), (0xd0, 0xd0), (0xd9, 0xd9)], SPACE],
    &[&[(0xe2, 0xe3)], SPACE, CONT_NO_85_A0],
    &[&[(0xe0, 0xe3)], CONT_NO_85_A0, SPACE],
    &[&[(0xf0, 0xf0)], SPACE, CONT, CONT],
    &[&[(0xf0, 0xf0)], CONT, SPACE, CONT],
    &[&[(0xf0, 0xf0)], CONT, CONT, SPACE],
];

const SUB: (u8, u8) = (0x1a, 0x1a);
const QM: (u8, u8) = (b'?', b'?');
const SUB_OR_QM: ByteClass = &[SUB, QM];
const SUB_OR_CONT: ByteClass = &[SUB, (0x80, 0xbf)];
const SUB_QM_OR_CONT: ByteClass = &[SUB, QM, (0x80, 0xbf)];

/// ftfy's `LOSSY_UTF8_RE`: UTF-8 sequences with bytes lost to 0x1A (U+FFFD) or `?`.
const LOSSY_UTF8: &[&[ByteClass]] = &[
    &[&[(0xc2, 0xdf)], &[SUB]],
    &[&[(0xc2, 0xc3)], &[QM]],
    &[&[(0xed, 0xed)], &[(0xa0, 0xaf)], SUB_OR_QM, &[(0xed, 0xed)], &[(0xb0, 0xbf)], SUB_QM_OR_CONT],
    &[&[(0xed, 0xed)], &[(0xa0, 0xaf)], SUB_QM_OR_CONT, &[(0xed, 0xed)], &[(0xb0, 0xbf)], SUB_OR_QM],
    &[&[(0xe0, 0xef)], SUB_OR_QM, SUB_OR_CONT],
    &[&[(0xe0, 0xef)], SUB_OR_CONT, SUB_OR_QM],
    &[&[(0xf0, 0xf4)], SUB_OR_QM, SUB_OR_CONT, SUB_OR_CONT],
    &[&[(0xf0, 0xf4)], SUB_OR_CONT, SUB_OR_QM, SUB_OR_CONT],
    &[&[(0xf0, 0xf4)], SUB_OR_CONT, SUB_OR_CONT, SUB_OR_QM],
    &[&[SUB]],
];

/// Length of the first alternative (in order, like a regex alternation) matching at `at`.
fn match_bytes_at(bytes: &[u8], at: usize, alternatives: &[&[ByteClass]]) -> Option<usize> {
    alternatives.iter().find_map(|pattern| {
        let window = bytes.get(at..at + pattern.len())?;
        let hit =
            window.iter().zip(pattern.iter()).all(|(b, class)| class.iter().any(|(lo, hi)| (*lo..=*hi).contains(b)));
        hit.then_some(pattern.len())
    })
}

fn find_bytes(bytes: &[u8], alternatives: &[&[ByteClass]]) -> Option<usize> {
    (0..bytes.len()).find(|&i| match_bytes_at(bytes, i, alternatives).is_some())
}

/// Like `re.sub`: scans left to right, replacing non-overlapping matches.
fn replace_bytes(bytes: &[u8], alternatives: &[&[ByteClass]], replace: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match match_bytes_at(bytes, i, alternatives) {
            Some(len) => {
                out.extend(replace(&bytes[i..i + len]));
                i += len;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// ftfy's `restore_byte_a0`.
fn restore_byte_a0(bytes: &[u8]) -> Vec<u8> {
    // `\xc3 ` not followed by ` `, `quele`, `quela`, `quilo` or `s ` is "à " that lost its
    // 0xA0: insert it and keep the space (French "à la", not "àla").
    let mut with_a_grave = Vec::with_capacity(bytes.len() + 4);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0xc3 && bytes.get(i + 1) == Some(&b' ') {
            let next = &bytes[i + 2..];
            let excluded = [&b" "[..], b"quele", b"quela", b"quilo", b"s "].iter().any(|p| next.starts_with(p));
            if !excluded {
                with_a_grave.extend_from_slice(&[0xc3, 0xa0, b' ']);
                i += 2;
                continue;
            }
        }
        with_a_grave.push(bytes[i]);
        i += 1;
    }
    replace_bytes(&with_a_grave, ALTERED_UTF8, |m| m.iter().map(|&b| if b == b' ' { 0xa0 } else { b }).collect())
}

/// ftfy's `replace_lossy_sequences`: such sequences become the UTF-8 of U+FFFD.
fn replace_lossy_sequences(bytes: &[u8]) -> Vec<u8> {
    replace_bytes(bytes, LOSSY_UTF8, |_| "\u{fffd}".as_bytes().to_vec())
}

// --- ftfy.badness.is_bad ----------------------------------------------------------------------

// Bits of MOJIBAKE_CLASSES (ftfy.badness.MOJIBAKE_CATEGORIES).
const COMMON: u16 = 0x1;
const C1: u16 = 0x2;
const BAD: u16 = 0x4;
const LAW: u16 = 0x8;
const CURRENCY: u16 = 0x10;
const START_PUNCT: u16 = 0x20;
const END_PUNCT: u16 = 0x40;
const NUMERIC: u16 = 0x80;
const KAOMOJI: u16 = 0x100;
const UPPER_ACCENTED: u16 = 0x200;
const LOWER_ACCENTED: u16 = 0x400;
const UPPER_COMMON: u16 = 0x800;
const LOWER_COMMON: u16 = 0x1000;
const BOX: u16 = 0x2000;

fn mojibake_class(c: char) -> u16 {
    lookup_class(MOJIBAKE_CLASSES, c).unwrap_or(0)
}

/// Finds the mask of the run in `table` (sorted, non-overlapping `(first, last, mask)`) that
/// contains `c`.
fn lookup_class<T: Copy>(table: &[(u32, u32, T)], c: char) -> Option<T> {
    let cp = c as u32;
    let i = table.partition_point(|&(_, last, _)| last < cp);
    table.get(i).filter(|&&(first, _, _)| first <= cp).map(|&(_, _, mask)| mask)
}

/// One position of a `BADNESS_RE` alternative.
#[derive(Clone, Copy)]
enum CharClass {
    /// Any character in one of the categories (bit mask) or in the string.
    Set(u16, &'static str),
    /// `\s`
    Space,
    /// `\w`
    Word,
    /// `[^A-Za-z]`
    NotAsciiLetter,
    /// `.` (anything but `\n`)
    NotNewline,
}

impl CharClass {
    fn matches(self, c: char) -> bool {
        match self {
            CharClass::Set(mask, chars) => mojibake_class(c) & mask != 0 || chars.contains(c),
            CharClass::Space => is_py_space(c),
            CharClass::Word => is_py_word(c),
            CharClass::NotAsciiLetter => !c.is_ascii_alphabetic(),
            CharClass::NotNewline => c != '\n',
        }
    }
}

const fn cat(mask: u16) -> CharClass {
    CharClass::Set(mask, "")
}
const fn chars(s: &'static str) -> CharClass {
    CharClass::Set(0, s)
}

const AZ: &str = "abcdefghijklmnopqrstuvwxyz";
const AZ_BOTH: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// `BADNESS_RE` from ftfy 6.3.1 `badness.py`, one slice per alternative (`[a-z]\s?[ÃÂ][ ]` is
/// split in two). The `bool` marks the alternative anchored at the start of the text (`^`).
const BADNESS: &[(bool, &[CharClass])] = {
    use CharClass::*;
    const ALL_BUT_COMMON: u16 =
        BAD | LOWER_ACCENTED | UPPER_ACCENTED | BOX | START_PUNCT | END_PUNCT | CURRENCY | NUMERIC | LAW;
    const ACCENTED: u16 = LOWER_ACCENTED | UPPER_ACCENTED;
    &[
        (false, &[cat(C1)]),
        (false, &[cat(ALL_BUT_COMMON), cat(BAD)]),
        (false, &[chars(AZ_BOTH), cat(LOWER_COMMON | UPPER_COMMON), cat(BAD)]),
        (false, &[cat(BAD), cat(ALL_BUT_COMMON & !BAD)]),
        (false, &[cat(LOWER_ACCENTED | LOWER_COMMON | BOX | END_PUNCT | CURRENCY | NUMERIC), cat(UPPER_ACCENTED)]),
        (false, &[cat(BOX | END_PUNCT | CURRENCY | NUMERIC), cat(LOWER_ACCENTED)]),
        (false, &[cat(LOWER_ACCENTED | BOX | END_PUNCT), cat(CURRENCY)]),
        (false, &[Space, cat(UPPER_ACCENTED), cat(CURRENCY)]),
        (false, &[cat(UPPER_ACCENTED | BOX), cat(NUMERIC | LAW)]),
        (false, &[cat(ACCENTED | BOX | CURRENCY | END_PUNCT), cat(START_PUNCT), cat(NUMERIC)]),
        (false, &[cat(ACCENTED | CURRENCY | NUMERIC | BOX | LAW), cat(END_PUNCT), cat(START_PUNCT)]),
        (false, &[cat(CURRENCY | NUMERIC | BOX), cat(START_PUNCT)]),
        (false, &[chars(AZ), cat(UPPER_ACCENTED), cat(START_PUNCT | CURRENCY)]),
        (false, &[cat(BOX), cat(KAOMOJI)]),
        (false, &[cat(ACCENTED | CURRENCY | NUMERIC | START_PUNCT | END_PUNCT | LAW), cat(BOX)]),
        (false, &[cat(BOX), cat(END_PUNCT)]),
        (false, &[cat(ACCENTED), cat(START_PUNCT | END_PUNCT), Word]),
        (false, &[chars("\u{152}\u{153}"), NotAsciiLetter]),
        (false, &[cat(UPPER_ACCENTED), chars("\u{b0}")]),
        (false, &[
            chars("\u{c2}\u{c3}\u{ce}\u{d0}"),
            Set(START_PUNCT | END_PUNCT,
                "\u{20ac}\u{153}\u{160}\u{161}\u{a2}\u{a3}\u{178}\u{17e}\u{a0}\u{ad}\u{ae}\u{a9}\u{b0}\u{b7}\u{bb}\u{2013}\u{2014}\u{b4}"),
        ]),
        (false, &[chars("\u{d7}"), chars("\u{b2}\u{b3}")]),
        (false, &[
            chars("\u{d8}\u{d9}"),
            Set(COMMON | CURRENCY | BAD | NUMERIC | START_PUNCT, "\u{178}\u{160}\u{ae}\u{b0}\u{b5}\u{bb}"),
            chars("\u{d8}\u{d9}"),
            Set(COMMON | CURRENCY | BAD | NUMERIC | START_PUNCT, "\u{178}\u{160}\u{ae}\u{b0}\u{b5}\u{bb}"),
        ]),
        (false, &[chars("\u{e0}"), chars("\u{b2}\u{b5}\u{b9}\u{bc}\u{bd}\u{be}")]),
        (false, &[chars("\u{221a}"), chars("\u{b1}\u{2202}\u{2020}\u{2260}\u{ae}\u{2122}\u{b4}\u{2264}\u{2265}\u{a5}\u{b5}\u{f8}")]),
        (false, &[chars("\u{2248}"), chars("\u{b0}\u{a2}")]),
        (false, &[chars("\u{201a}"), chars("\u{c4}"), chars("\u{ec}\u{ee}\u{ef}\u{f2}\u{f4}\u{fa}\u{f9}\u{fb}\u{2020}\u{b0}\u{a2}\u{3c0}")]),
        (false, &[chars("\u{201a}"), chars("\u{e2}\u{f3}"), chars("\u{e0}\u{e4}\u{b0}\u{ea}")]),
        (false, &[chars("\u{432}"), chars("\u{402}")]),
        (false, &[
            chars("\u{412}\u{413}\u{420}\u{421}"),
            Set(C1 | BAD | START_PUNCT | END_PUNCT | CURRENCY, "\u{b0}\u{b5}"),
            chars("\u{412}\u{413}\u{420}\u{421}"),
        ]),
        (false, &[
            chars("\u{413}"), chars("\u{45e}"), chars("\u{412}"), chars("\u{402}"), chars("\u{412}"),
            NotNewline,
            chars("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ "),
        ]),
        (false, &[chars("\u{c3}"), chars("\u{a0}\u{a1}")]),
        (false, &[chars(AZ), chars("\u{c3}\u{c2}"), chars(" ")]),
        (false, &[chars(AZ), Space, chars("\u{c3}\u{c2}"), chars(" ")]),
        (true, &[chars("\u{c3}\u{c2}"), chars(" ")]),
        (false, &[Set(END_PUNCT, "abcdefghijklmnopqrstuvwxyz.,?!"), chars("\u{c2}"), Set(START_PUNCT | END_PUNCT, " ")]),
        (false, &[chars("\u{3b2}"), chars("\u{20ac}"), chars("\u{2122}\u{a0}\u{386}\u{ad}\u{ae}\u{b0}")]),
        (false, &[
            chars("\u{392}\u{393}\u{39e}\u{39f}"),
            Set(C1 | BAD | START_PUNCT | END_PUNCT | CURRENCY, "\u{b0}"),
            chars("\u{392}\u{393}\u{39e}\u{39f}"),
        ]),
        (false, &[chars("\u{101}"), chars("\u{20ac}")]),
    ]
};

/// `ftfy.badness.is_bad`: does the text contain a sequence that is typical of mojibake?
fn is_bad(text: &str) -> bool {
    if text.is_ascii() {
        return false;
    }
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len()).any(|start| {
        // Every alternative has a class without ASCII characters among its first
        // `BADNESS_ASCII_REACH` positions (checked by a unit test), so a window of ASCII
        // characters cannot start a match.
        let reach = chars.len().min(start + BADNESS_ASCII_REACH);
        if chars[start..reach].iter().all(char::is_ascii) {
            return false;
        }
        BADNESS.iter().any(|&(anchored, pattern)| {
            (!anchored || start == 0)
                && chars
                    .get(start..start + pattern.len())
                    .is_some_and(|window| window.iter().zip(pattern.iter()).all(|(&c, class)| class.matches(c)))
        })
    })
}

const BADNESS_ASCII_REACH: usize = 3;

// --- Generated tables -------------------------------------------------------------------------
// Everything from here to "End of generated tables" is the output of
// `python scripts/make_tokenizer.py --rust-tables`. Regenerate it rather than editing it.

// Generated by `python scripts/make_tokenizer.py --rust-tables` (Python html.entities, ftfy 6.3.1).
#[rustfmt::skip]
const HTML_ENTITIES: &[(&str, &str)] = &[
    ("AElig", "\u{c6}"), ("AElig;", "\u{c6}"), ("AMP", "&"), ("AMP;", "&"),
    ("Aacute", "\u{c1}"), ("Aacute;", "\u{c1}"), ("Acirc", "\u{c2}"), ("Acirc;", "\u{c2}"),
    ("Agrave", "\u{c0}"), ("Agrave;", "\u{c0}"), ("Alpha;", "\u{391}"), ("Aring", "\u{c5}"),
    ("Aring;", "\u{c5}"), ("Atilde", "\u{c3}"), ("Atilde;", "\u{c3}"), ("Auml", "\u{c4}"),
    ("Auml;", "\u{c4}"), ("Beta;", "\u{392}"), ("COPY", "\u{a9}"), ("COPY;", "\u{a9}"),
    ("Ccedil", "\u{c7}"), ("Ccedil;", "\u{c7}"), ("Chi;", "\u{3a7}"), ("Dagger;", "\u{2021}"),
    ("Delta;", "\u{394}"), ("ETH", "\u{d0}"), ("ETH;", "\u{d0}"), ("Eacute", "\u{c9}"),
    ("Eacute;", "\u{c9}"), ("Ecirc", "\u{ca}"), ("Ecirc;", "\u{ca}"), ("Egrave", "\u{c8}"),
    ("Egrave;", "\u{c8}"), ("Epsilon;", "\u{395}"), ("Eta;", "\u{397}"), ("Euml", "\u{cb}"),
    ("Euml;", "\u{cb}"), ("GT", ">"), ("GT;", ">"), ("Gamma;", "\u{393}"),
    ("Iacute", "\u{cd}"), ("Iacute;", "\u{cd}"), ("Icirc", "\u{ce}"), ("Icirc;", "\u{ce}"),
    ("Igrave", "\u{cc}"), ("Igrave;", "\u{cc}"), ("Iota;", "\u{399}"), ("Iuml", "\u{cf}"),
    ("Iuml;", "\u{cf}"), ("Kappa;", "\u{39a}"), ("LT", "<"), ("LT;", "<"),
    ("Lambda;", "\u{39b}"), ("Mu;", "\u{39c}"), ("Ntilde", "\u{d1}"), ("Ntilde;", "\u{d1}"),
    ("Nu;", "\u{39d}"), ("OElig;", "\u{152}"), ("Oacute", "\u{d3}"), ("Oacute;", "\u{d3}"),
    ("Ocirc", "\u{d4}"), ("Ocirc;", "\u{d4}"), ("Ograve", "\u{d2}"), ("Ograve;", "\u{d2}"),
    ("Omega;", "\u{3a9}"), ("Omicron;", "\u{39f}"), ("Oslash", "\u{d8}"), ("Oslash;", "\u{d8}"),
    ("Otilde", "\u{d5}"), ("Otilde;", "\u{d5}"), ("Ouml", "\u{d6}"), ("Ouml;", "\u{d6}"),
    ("Phi;", "\u{3a6}"), ("Pi;", "\u{3a0}"), ("Prime;", "\u{2033}"), ("Psi;", "\u{3a8}"),
    ("QUOT", "\u{22}"), ("QUOT;", "\u{22}"), ("REG", "\u{ae}"), ("REG;", "\u{ae}"),
    ("Rho;", "\u{3a1}"), ("Scaron;", "\u{160}"), ("Sigma;", "\u{3a3}"), ("THORN", "\u{de}"),
    ("THORN;", "\u{de}"), ("TRADE;", "\u{2122}"), ("Tau;", "\u{3a4}"), ("Theta;", "\u{398}"),
    ("Uacute", "\u{da}"), ("Uacute;", "\u{da}"), ("Ucirc", "\u{db}"), ("Ucirc;", "\u{db}"),
    ("Ugrave", "\u{d9}"), ("Ugrave;", "\u{d9}"), ("Upsilon;", "\u{3a5}"), ("Uuml", "\u{dc}"),
    ("Uuml;", "\u{dc}"), ("Xi;", "\u{39e}"), ("Yacute", "\u{dd}"), ("Yacute;", "\u{dd}"),
    ("Yuml;", "\u{178}"), ("Zeta;", "\u{396}"), ("aacute", "\u{e1}"), ("aacute;", "\u{e1}"),
    ("acirc", "\u{e2}"), ("acirc;", "\u{e2}"), ("acute", "\u{b4}"), ("acute;", "\u{b4}"),
    ("aelig", "\u{e6}"), ("aelig;", "\u{e6}"), ("agrave", "\u{e0}"), ("agrave;", "\u{e0}"),
    ("alefsym;", "\u{2135}"), ("alpha;", "\u{3b1}"), ("amp", "&"), ("amp;", "&"),
    ("and;", "\u{2227}"), ("ang;", "\u{2220}"), ("apos;", "'"), ("aring", "\u{e5}"),
    ("aring;", "\u{e5}"), ("asymp;", "\u{2248}"), ("atilde", "\u{e3}"), ("atilde;", "\u{e3}"),
    ("auml", "\u{e4}"), ("auml;", "\u{e4}"), ("bdquo;", "\u{201e}"), ("beta;", "\u{3b2}"),
    ("brvbar", "\u{a6}"), ("brvbar;", "\u{a6}"), ("bull;", "\u{2022}"), ("cap;", "\u{2229}"),
    ("ccedil", "\u{e7}"), ("ccedil;", "\u{e7}"), ("cedil", "\u{b8}"), ("cedil;", "\u{b8}"),
    ("cent", "\u{a2}"), ("cent;", "\u{a2}"), ("chi;", "\u{3c7}"), ("circ;", "\u{2c6}"),
    ("clubs;", "\u{2663}"), ("cong;", "\u{2245}"), ("copy", "\u{a9}"), ("copy;", "\u{a9}"),
    ("crarr;", "\u{21b5}"), ("cup;", "\u{222a}"), ("curren", "\u{a4}"), ("curren;", "\u{a4}"),
    ("dArr;", "\u{21d3}"), ("dagger;", "\u{2020}"), ("darr;", "\u{2193}"), ("deg", "\u{b0}"),
    ("deg;", "\u{b0}"), ("delta;", "\u{3b4}"), ("diams;", "\u{2666}"), ("divide", "\u{f7}"),
    ("divide;", "\u{f7}"), ("eacute", "\u{e9}"), ("eacute;", "\u{e9}"), ("ecirc", "\u{ea}"),
    ("ecirc;", "\u{ea}"), ("egrave", "\u{e8}"), ("egrave;", "\u{e8}"), ("empty;", "\u{2205}"),
    ("emsp;", "\u{2003}"), ("ensp;", "\u{2002}"), ("epsilon;", "\u{3b5}"), ("equiv;", "\u{2261}"),
    ("eta;", "\u{3b7}"), ("eth", "\u{f0}"), ("eth;", "\u{f0}"), ("euml", "\u{eb}"),
    ("euml;", "\u{eb}"), ("euro;", "\u{20ac}"), ("exist;", "\u{2203}"), ("fnof;", "\u{192}"),
    ("forall;", "\u{2200}"), ("frac12", "\u{bd}"), ("frac12;", "\u{bd}"), ("frac14", "\u{bc}"),
    ("frac14;", "\u{bc}"), ("frac34", "\u{be}"), ("frac34;", "\u{be}"), ("frasl;", "\u{2044}"),
    ("gamma;", "\u{3b3}"), ("ge;", "\u{2265}"), ("gt", ">"), ("gt;", ">"),
    ("hArr;", "\u{21d4}"), ("harr;", "\u{2194}"), ("hearts;", "\u{2665}"), ("hellip;", "\u{2026}"),
    ("iacute", "\u{ed}"), ("iacute;", "\u{ed}"), ("icirc", "\u{ee}"), ("icirc;", "\u{ee}"),
    ("iexcl", "\u{a1}"), ("iexcl;", "\u{a1}"), ("igrave", "\u{ec}"), ("igrave;", "\u{ec}"),
    ("image;", "\u{2111}"), ("infin;", "\u{221e}"), ("int;", "\u{222b}"), ("iota;", "\u{3b9}"),
    ("iquest", "\u{bf}"), ("iquest;", "\u{bf}"), ("isin;", "\u{2208}"), ("iuml", "\u{ef}"),
    ("iuml;", "\u{ef}"), ("kappa;", "\u{3ba}"), ("lArr;", "\u{21d0}"), ("lambda;", "\u{3bb}"),
    ("lang;", "\u{27e8}"), ("laquo", "\u{ab}"), ("laquo;", "\u{ab}"), ("larr;", "\u{2190}"),
    ("lceil;", "\u{2308}"), ("ldquo;", "\u{201c}"), ("le;", "\u{2264}"), ("lfloor;", "\u{230a}"),
    ("lowast;", "\u{2217}"), ("loz;", "\u{25ca}"), ("lrm;", "\u{200e}"), ("lsaquo;", "\u{2039}"),
    ("lsquo;", "\u{2018}"), ("lt", "<"), ("lt;", "<"), ("macr", "\u{af}"),
    ("macr;", "\u{af}"), ("mdash;", "\u{2014}"), ("micro", "\u{b5}"), ("micro;", "\u{b5}"),
    ("middot", "\u{b7}"), ("middot;", "\u{b7}"), ("minus;", "\u{2212}"), ("mu;", "\u{3bc}"),
    ("nabla;", "\u{2207}"), ("nbsp", "\u{a0}"), ("nbsp;", "\u{a0}"), ("ndash;", "\u{2013}"),
    ("ne;", "\u{2260}"), ("ni;", "\u{220b}"), ("not", "\u{ac}"), ("not;", "\u{ac}"),
    ("notin;", "\u{2209}"), ("nsub;", "\u{2284}"), ("ntilde", "\u{f1}"), ("ntilde;", "\u{f1}"),
    ("nu;", "\u{3bd}"), ("oacute", "\u{f3}"), ("oacute;", "\u{f3}"), ("ocirc", "\u{f4}"),
    ("ocirc;", "\u{f4}"), ("oelig;", "\u{153}"), ("ograve", "\u{f2}"), ("ograve;", "\u{f2}"),
    ("oline;", "\u{203e}"), ("omega;", "\u{3c9}"), ("omicron;", "\u{3bf}"), ("oplus;", "\u{2295}"),
    ("or;", "\u{2228}"), ("ordf", "\u{aa}"), ("ordf;", "\u{aa}"), ("ordm", "\u{ba}"),
    ("ordm;", "\u{ba}"), ("oslash", "\u{f8}"), ("oslash;", "\u{f8}"), ("otilde", "\u{f5}"),
    ("otilde;", "\u{f5}"), ("otimes;", "\u{2297}"), ("ouml", "\u{f6}"), ("ouml;", "\u{f6}"),
    ("para", "\u{b6}"), ("para;", "\u{b6}"), ("part;", "\u{2202}"), ("permil;", "\u{2030}"),
    ("perp;", "\u{22a5}"), ("phi;", "\u{3c6}"), ("pi;", "\u{3c0}"), ("piv;", "\u{3d6}"),
    ("plusmn", "\u{b1}"), ("plusmn;", "\u{b1}"), ("pound", "\u{a3}"), ("pound;", "\u{a3}"),
    ("prime;", "\u{2032}"), ("prod;", "\u{220f}"), ("prop;", "\u{221d}"), ("psi;", "\u{3c8}"),
    ("quot", "\u{22}"), ("quot;", "\u{22}"), ("rArr;", "\u{21d2}"), ("radic;", "\u{221a}"),
    ("rang;", "\u{27e9}"), ("raquo", "\u{bb}"), ("raquo;", "\u{bb}"), ("rarr;", "\u{2192}"),
    ("rceil;", "\u{2309}"), ("rdquo;", "\u{201d}"), ("real;", "\u{211c}"), ("reg", "\u{ae}"),
    ("reg;", "\u{ae}"), ("rfloor;", "\u{230b}"), ("rho;", "\u{3c1}"), ("rlm;", "\u{200f}"),
    ("rsaquo;", "\u{203a}"), ("rsquo;", "\u{2019}"), ("sbquo;", "\u{201a}"), ("scaron;", "\u{161}"),
    ("sdot;", "\u{22c5}"), ("sect", "\u{a7}"), ("sect;", "\u{a7}"), ("shy", "\u{ad}"),
    ("shy;", "\u{ad}"), ("sigma;", "\u{3c3}"), ("sigmaf;", "\u{3c2}"), ("sim;", "\u{223c}"),
    ("spades;", "\u{2660}"), ("sub;", "\u{2282}"), ("sube;", "\u{2286}"), ("sum;", "\u{2211}"),
    ("sup1", "\u{b9}"), ("sup1;", "\u{b9}"), ("sup2", "\u{b2}"), ("sup2;", "\u{b2}"),
    ("sup3", "\u{b3}"), ("sup3;", "\u{b3}"), ("sup;", "\u{2283}"), ("supe;", "\u{2287}"),
    ("szlig", "\u{df}"), ("szlig;", "\u{df}"), ("tau;", "\u{3c4}"), ("there4;", "\u{2234}"),
    ("theta;", "\u{3b8}"), ("thetasym;", "\u{3d1}"), ("thinsp;", "\u{2009}"), ("thorn", "\u{fe}"),
    ("thorn;", "\u{fe}"), ("tilde;", "\u{2dc}"), ("times", "\u{d7}"), ("times;", "\u{d7}"),
    ("trade;", "\u{2122}"), ("uArr;", "\u{21d1}"), ("uacute", "\u{fa}"), ("uacute;", "\u{fa}"),
    ("uarr;", "\u{2191}"), ("ucirc", "\u{fb}"), ("ucirc;", "\u{fb}"), ("ugrave", "\u{f9}"),
    ("ugrave;", "\u{f9}"), ("uml", "\u{a8}"), ("uml;", "\u{a8}"), ("upsih;", "\u{3d2}"),
    ("upsilon;", "\u{3c5}"), ("uuml", "\u{fc}"), ("uuml;", "\u{fc}"), ("weierp;", "\u{2118}"),
    ("xi;", "\u{3be}"), ("yacute", "\u{fd}"), ("yacute;", "\u{fd}"), ("yen", "\u{a5}"),
    ("yen;", "\u{a5}"), ("yuml", "\u{ff}"), ("yuml;", "\u{ff}"), ("zeta;", "\u{3b6}"),
    ("zwj;", "\u{200d}"), ("zwnj;", "\u{200c}"),
];
#[rustfmt::skip]
const FTFY_UPPER_ENTITIES: &[(&str, &str)] = &[
    ("AACUTE;", "\u{c1}"), ("ACIRC;", "\u{c2}"), ("ACUTE;", "\u{b4}"), ("AELIG;", "\u{c6}"),
    ("AGRAVE;", "\u{c0}"), ("ALEFSYM;", "\u{2135}"), ("ALPHA;", "\u{391}"), ("AND;", "\u{2227}"),
    ("ANG;", "\u{2220}"), ("APOS;", "'"), ("ARING;", "\u{c5}"), ("ASYMP;", "\u{2248}"),
    ("ATILDE;", "\u{c3}"), ("AUML;", "\u{c4}"), ("BDQUO;", "\u{201e}"), ("BETA;", "\u{392}"),
    ("BRVBAR;", "\u{a6}"), ("BULL;", "\u{2022}"), ("CAP;", "\u{2229}"), ("CCEDIL;", "\u{c7}"),
    ("CEDIL;", "\u{b8}"), ("CENT;", "\u{a2}"), ("CHI;", "\u{3a7}"), ("CIRC;", "\u{2c6}"),
    ("CLUBS;", "\u{2663}"), ("CONG;", "\u{2245}"), ("CRARR;", "\u{21b5}"), ("CUP;", "\u{222a}"),
    ("CURREN;", "\u{a4}"), ("DAGGER;", "\u{2020}"), ("DARR;", "\u{2193}"), ("DEG;", "\u{b0}"),
    ("DELTA;", "\u{394}"), ("DIAMS;", "\u{2666}"), ("DIVIDE;", "\u{f7}"), ("EACUTE;", "\u{c9}"),
    ("ECIRC;", "\u{ca}"), ("EGRAVE;", "\u{c8}"), ("EMPTY;", "\u{2205}"), ("EMSP;", "\u{2003}"),
    ("ENSP;", "\u{2002}"), ("EPSILON;", "\u{395}"), ("EQUIV;", "\u{2261}"), ("ETA;", "\u{397}"),
    ("EUML;", "\u{cb}"), ("EURO;", "\u{20ac}"), ("EXIST;", "\u{2203}"), ("FNOF;", "\u{191}"),
    ("FORALL;", "\u{2200}"), ("FRAC12;", "\u{bd}"), ("FRAC14;", "\u{bc}"), ("FRAC34;", "\u{be}"),
    ("FRASL;", "\u{2044}"), ("GAMMA;", "\u{393}"), ("GE;", "\u{2265}"), ("HARR;", "\u{2194}"),
    ("HEARTS;", "\u{2665}"), ("HELLIP;", "\u{2026}"), ("IACUTE;", "\u{cd}"), ("ICIRC;", "\u{ce}"),
    ("IEXCL;", "\u{a1}"), ("IGRAVE;", "\u{cc}"), ("IMAGE;", "\u{2111}"), ("INFIN;", "\u{221e}"),
    ("INT;", "\u{222b}"), ("IOTA;", "\u{399}"), ("IQUEST;", "\u{bf}"), ("ISIN;", "\u{2208}"),
    ("IUML;", "\u{cf}"), ("KAPPA;", "\u{39a}"), ("LAMBDA;", "\u{39b}"), ("LANG;", "\u{27e8}"),
    ("LAQUO;", "\u{ab}"), ("LARR;", "\u{2190}"), ("LCEIL;", "\u{2308}"), ("LDQUO;", "\u{201c}"),
    ("LE;", "\u{2264}"), ("LFLOOR;", "\u{230a}"), ("LOWAST;", "\u{2217}"), ("LOZ;", "\u{25ca}"),
    ("LRM;", "\u{200e}"), ("LSAQUO;", "\u{2039}"), ("LSQUO;", "\u{2018}"), ("MACR;", "\u{af}"),
    ("MDASH;", "\u{2014}"), ("MICRO;", "\u{39c}"), ("MIDDOT;", "\u{b7}"), ("MINUS;", "\u{2212}"),
    ("MU;", "\u{39c}"), ("NABLA;", "\u{2207}"), ("NBSP;", "\u{a0}"), ("NDASH;", "\u{2013}"),
    ("NE;", "\u{2260}"), ("NI;", "\u{220b}"), ("NOT;", "\u{ac}"), ("NOTIN;", "\u{2209}"),
    ("NSUB;", "\u{2284}"), ("NTILDE;", "\u{d1}"), ("NU;", "\u{39d}"), ("OACUTE;", "\u{d3}"),
    ("OCIRC;", "\u{d4}"), ("OELIG;", "\u{152}"), ("OGRAVE;", "\u{d2}"), ("OLINE;", "\u{203e}"),
    ("OMEGA;", "\u{3a9}"), ("OMICRON;", "\u{39f}"), ("OPLUS;", "\u{2295}"), ("OR;", "\u{2228}"),
    ("ORDF;", "\u{aa}"), ("ORDM;", "\u{ba}"), ("OSLASH;", "\u{d8}"), ("OTILDE;", "\u{d5}"),
    ("OTIMES;", "\u{2297}"), ("OUML;", "\u{d6}"), ("PARA;", "\u{b6}"), ("PART;", "\u{2202}"),
    ("PERMIL;", "\u{2030}"), ("PERP;", "\u{22a5}"), ("PHI;", "\u{3a6}"), ("PI;", "\u{3a0}"),
    ("PIV;", "\u{3a0}"), ("PLUSMN;", "\u{b1}"), ("POUND;", "\u{a3}"), ("PRIME;", "\u{2032}"),
    ("PROD;", "\u{220f}"), ("PROP;", "\u{221d}"), ("PSI;", "\u{3a8}"), ("RADIC;", "\u{221a}"),
    ("RANG;", "\u{27e9}"), ("RAQUO;", "\u{bb}"), ("RARR;", "\u{2192}"), ("RCEIL;", "\u{2309}"),
    ("RDQUO;", "\u{201d}"), ("REAL;", "\u{211c}"), ("RFLOOR;", "\u{230b}"), ("RHO;", "\u{3a1}"),
    ("RLM;", "\u{200f}"), ("RSAQUO;", "\u{203a}"), ("RSQUO;", "\u{2019}"), ("SBQUO;", "\u{201a}"),
    ("SCARON;", "\u{160}"), ("SDOT;", "\u{22c5}"), ("SECT;", "\u{a7}"), ("SHY;", "\u{ad}"),
    ("SIGMA;", "\u{3a3}"), ("SIGMAF;", "\u{3a3}"), ("SIM;", "\u{223c}"), ("SPADES;", "\u{2660}"),
    ("SUB;", "\u{2282}"), ("SUBE;", "\u{2286}"), ("SUM;", "\u{2211}"), ("SUP1;", "\u{b9}"),
    ("SUP2;", "\u{b2}"), ("SUP3;", "\u{b3}"), ("SUP;", "\u{2283}"), ("SUPE;", "\u{2287}"),
    ("SZLIG;", "SS"), ("TAU;", "\u{3a4}"), ("THERE4;", "\u{2234}"), ("THETA;", "\u{398}"),
    ("THETASYM;", "\u{398}"), ("THINSP;", "\u{2009}"), ("TILDE;", "\u{2dc}"), ("TIMES;", "\u{d7}"),
    ("UACUTE;", "\u{da}"), ("UARR;", "\u{2191}"), ("UCIRC;", "\u{db}"), ("UGRAVE;", "\u{d9}"),
    ("UML;", "\u{a8}"), ("UPSIH;", "\u{3d2}"), ("UPSILON;", "\u{3a5}"), ("UUML;", "\u{dc}"),
    ("WEIERP;", "\u{2118}"), ("XI;", "\u{39e}"), ("YACUTE;", "\u{dd}"), ("YEN;", "\u{a5}"),
    ("YUML;", "\u{178}"), ("ZETA;", "\u{396}"), ("ZWJ;", "\u{200d}"), ("ZWNJ;", "\u{200c}"),
];
// Bits: 0x1 common, 0x2 c1, 0x4 bad, 0x8 law, 0x10 currency, 0x20 start_punctuation, 0x40 end_punctuation, 0x80 numeric, 0x100 kaomoji, 0x200 upper_accented, 0x400 lower_accented, 0x800 upper_common, 0x1000 lower_common, 0x2000 box.
#[rustfmt::skip]
const MOJIBAKE_CLASSES: &[(u32, u32, u16)] = &[
    (0x80, 0x9f, 0x2), (0xa0, 0xa0, 0x1), (0xa1, 0xa1, 0x20), (0xa2, 0xa3, 0x10), (0xa4, 0xa4, 0x4), (0xa5, 0xa5, 0x10),
    (0xa6, 0xa6, 0x4), (0xa7, 0xa7, 0x8), (0xa8, 0xa8, 0x4), (0xa9, 0xa9, 0x20), (0xaa, 0xaa, 0x4), (0xab, 0xab, 0x20),
    (0xac, 0xac, 0x4), (0xad, 0xad, 0x1), (0xae, 0xae, 0x40), (0xaf, 0xaf, 0x4), (0xb0, 0xb0, 0x100), (0xb1, 0xb3, 0x80),
    (0xb4, 0xb4, 0x1), (0xb5, 0xb5, 0x80), (0xb6, 0xb6, 0x8), (0xb7, 0xb7, 0x1), (0xb8, 0xb8, 0x4), (0xb9, 0xb9, 0x80),
    (0xba, 0xba, 0x4), (0xbb, 0xbb, 0x40), (0xbc, 0xbe, 0x80), (0xbf, 0xbf, 0x20), (0xc0, 0xd1, 0x200), (0xd2, 0xd6, 0x100),
    (0xd7, 0xd7, 0x80), (0xd8, 0xd8, 0x200), (0xd9, 0xdb, 0x100), (0xdc, 0xdc, 0x300), (0xdd, 0xdd, 0x200), (0xde, 0xde, 0x800),
    (0xdf, 0xf1, 0x400), (0xf2, 0xf6, 0x100), (0xf7, 0xf7, 0x80), (0xf8, 0xfb, 0x100), (0xfc, 0xfc, 0x500), (0x100, 0x100, 0x200),
    (0x101, 0x101, 0x400), (0x102, 0x102, 0x200), (0x103, 0x103, 0x400), (0x104, 0x104, 0x200), (0x105, 0x105, 0x400), (0x106, 0x106, 0x200),
    (0x107, 0x107, 0x400), (0x10c, 0x10c, 0x200), (0x10d, 0x10d, 0x400), (0x10e, 0x10e, 0x200), (0x10f, 0x10f, 0x400), (0x110, 0x110, 0x200),
    (0x111, 0x111, 0x400), (0x112, 0x112, 0x200), (0x113, 0x113, 0x400), (0x116, 0x116, 0x200), (0x117, 0x117, 0x400), (0x118, 0x118, 0x200),
    (0x119, 0x119, 0x400), (0x11a, 0x11a, 0x200), (0x11b, 0x11b, 0x400), (0x11e, 0x11e, 0x200), (0x11f, 0x11f, 0x400), (0x122, 0x122, 0x200),
    (0x123, 0x123, 0x400), (0x12a, 0x12a, 0x200), (0x12b, 0x12b, 0x400), (0x12f, 0x12f, 0x400), (0x130, 0x130, 0x200), (0x136, 0x136, 0x200),
    (0x137, 0x137, 0x400), (0x139, 0x139, 0x200), (0x13a, 0x13a, 0x400), (0x13b, 0x13b, 0x200), (0x13c, 0x13c, 0x400), (0x13d, 0x13d, 0x200),
    (0x13e, 0x13e, 0x400), (0x141, 0x141, 0x200), (0x142, 0x142, 0x400), (0x143, 0x143, 0x200), (0x145, 0x145, 0x200), (0x147, 0x147, 0x200),
    (0x14c, 0x14c, 0x100), (0x150, 0x150, 0x100), (0x152, 0x152, 0x200), (0x153, 0x153, 0x400), (0x155, 0x155, 0x400), (0x158, 0x158, 0x200),
    (0x15a, 0x15a, 0x200), (0x15b, 0x15b, 0x400), (0x15e, 0x15e, 0x200), (0x15f, 0x15f, 0x400), (0x160, 0x160, 0x200), (0x161, 0x161, 0x400),
    (0x162, 0x162, 0x200), (0x164, 0x164, 0x200), (0x165, 0x165, 0x400), (0x16a, 0x16a, 0x100), (0x16e, 0x16e, 0x200), (0x170, 0x170, 0x200),
    (0x172, 0x172, 0x100), (0x178, 0x179, 0x200), (0x17a, 0x17a, 0x400), (0x17b, 0x17b, 0x200), (0x17c, 0x17c, 0x400), (0x17d, 0x17d, 0x200),
    (0x17e, 0x17e, 0x400), (0x192, 0x192, 0x4), (0x2c6, 0x2c7, 0x4), (0x2d8, 0x2d8, 0x4), (0x2db, 0x2dc, 0x4), (0x2dd, 0x2dd, 0x40),
    (0x384, 0x385, 0x20), (0x386, 0x386, 0x800), (0x388, 0x38a, 0x800), (0x38c, 0x38c, 0x800), (0x38e, 0x38f, 0x800), (0x391, 0x3ab, 0x800),
    (0x3ac, 0x3c9, 0x1000), (0x401, 0x42f, 0x800), (0x430, 0x45f, 0x1000), (0x490, 0x490, 0x200), (0x491, 0x491, 0x400), (0x2013, 0x2015, 0x1),
    (0x2018, 0x2018, 0x20), (0x2019, 0x2019, 0x1), (0x201a, 0x201a, 0x20), (0x201c, 0x201c, 0x20), (0x201d, 0x201d, 0x40), (0x201e, 0x201e, 0x20),
    (0x2020, 0x2021, 0x4), (0x2022, 0x2022, 0x20), (0x2026, 0x2026, 0x1), (0x2030, 0x2030, 0x4), (0x2039, 0x2039, 0x20), (0x203a, 0x203a, 0x40),
    (0x2044, 0x2044, 0x80), (0x20a7, 0x20a7, 0x10), (0x20ac, 0x20ac, 0x10), (0x2116, 0x2116, 0x80), (0x2122, 0x2122, 0x40), (0x2202, 0x2202, 0x80),
    (0x2206, 0x2206, 0x80), (0x220f, 0x220f, 0x80), (0x2211, 0x2211, 0x80), (0x221a, 0x221a, 0x80), (0x221e, 0x221e, 0x80), (0x2229, 0x2229, 0x80),
    (0x222b, 0x222b, 0x80), (0x2248, 0x2248, 0x80), (0x2260, 0x2261, 0x80), (0x2264, 0x2265, 0x80), (0x2310, 0x2310, 0x4), (0x2502, 0x2502, 0x2000),
    (0x250c, 0x250c, 0x2000), (0x2510, 0x2510, 0x2000), (0x2518, 0x2518, 0x2000), (0x251c, 0x251c, 0x2000), (0x2524, 0x2524, 0x2000), (0x252c, 0x252c, 0x2000),
    (0x253c, 0x253c, 0x2000), (0x2550, 0x256c, 0x2000), (0x2580, 0x2580, 0x2000), (0x2584, 0x2584, 0x2000), (0x2588, 0x2588, 0x2000), (0x258c, 0x258c, 0x2000),
    (0x2590, 0x2593, 0x2000), (0x25ca, 0x25ca, 0x4), (0xf8ff, 0xf8ff, 0x20), (0xfb01, 0xfb02, 0x400), (0xfffd, 0xfffd, 0x4),
];
// Bits: 0x1 utf8_first_of_2, 0x2 utf8_first_of_3, 0x4 utf8_first_of_4, 0x8 utf8_continuation, 0x10 utf8_continuation_strict.
#[rustfmt::skip]
const UTF8_CLUE_CLASSES: &[(u32, u32, u8)] = &[
    (0x20, 0x20, 0x8), (0x80, 0xbf, 0x18), (0xc2, 0xc5, 0x1), (0xc6, 0xc6, 0x19), (0xc7, 0xd7, 0x1), (0xd8, 0xd8, 0x19),
    (0xd9, 0xdf, 0x1), (0xe0, 0xe5, 0x2), (0xe6, 0xe6, 0x1a), (0xe7, 0xef, 0x2), (0xf0, 0xf0, 0x4), (0xf3, 0xf3, 0x4),
    (0xf8, 0xf8, 0x18), (0x100, 0x100, 0x1), (0x101, 0x101, 0x2), (0x102, 0x102, 0x1), (0x103, 0x103, 0x2), (0x104, 0x104, 0x18),
    (0x105, 0x105, 0x1a), (0x106, 0x106, 0x1), (0x107, 0x107, 0x2), (0x10c, 0x10c, 0x1), (0x10d, 0x10d, 0x2), (0x10e, 0x10e, 0x1),
    (0x10f, 0x10f, 0x2), (0x110, 0x110, 0x1), (0x111, 0x111, 0x4), (0x112, 0x112, 0x1), (0x113, 0x113, 0x2), (0x116, 0x116, 0x1),
    (0x117, 0x117, 0x2), (0x118, 0x118, 0x1), (0x119, 0x119, 0x2), (0x11a, 0x11a, 0x1), (0x11b, 0x11b, 0x2), (0x11e, 0x11e, 0x1),
    (0x11f, 0x11f, 0x4), (0x122, 0x122, 0x1), (0x123, 0x123, 0x2), (0x12a, 0x12a, 0x1), (0x12b, 0x12b, 0x2), (0x12f, 0x12f, 0x2),
    (0x130, 0x130, 0x1), (0x136, 0x136, 0x1), (0x137, 0x137, 0x2), (0x139, 0x139, 0x1), (0x13a, 0x13a, 0x2), (0x13b, 0x13b, 0x1),
    (0x13c, 0x13c, 0x2), (0x13d, 0x13e, 0x18), (0x141, 0x141, 0x19), (0x142, 0x142, 0x18), (0x143, 0x143, 0x1), (0x145, 0x145, 0x1),
    (0x147, 0x147, 0x1), (0x14c, 0x14c, 0x1), (0x150, 0x150, 0x1), (0x152, 0x153, 0x18), (0x155, 0x155, 0x2), (0x156, 0x157, 0x18),
    (0x158, 0x158, 0x1), (0x15a, 0x15a, 0x19), (0x15b, 0x15b, 0x18), (0x15e, 0x15e, 0x19), (0x15f, 0x15f, 0x18), (0x160, 0x160, 0x19),
    (0x161, 0x161, 0x1c), (0x162, 0x162, 0x1), (0x164, 0x165, 0x18), (0x16a, 0x16a, 0x1), (0x16e, 0x16e, 0x1), (0x170, 0x170, 0x1),
    (0x172, 0x172, 0x1), (0x178, 0x178, 0x18), (0x179, 0x179, 0x19), (0x17a, 0x17a, 0x1a), (0x17b, 0x17b, 0x19), (0x17c, 0x17c, 0x18),
    (0x17d, 0x17d, 0x19), (0x17e, 0x17e, 0x18), (0x192, 0x192, 0x18), (0x2c6, 0x2c7, 0x18), (0x2d8, 0x2d8, 0x18), (0x2db, 0x2dd, 0x18),
    (0x384, 0x386, 0x18), (0x388, 0x38a, 0x18), (0x38c, 0x38c, 0x18), (0x38e, 0x38f, 0x18), (0x392, 0x3a1, 0x1), (0x3a3, 0x3af, 0x1),
    (0x3b0, 0x3bf, 0x2), (0x3c0, 0x3c0, 0x4), (0x3c3, 0x3c3, 0x4), (0x401, 0x40c, 0x18), (0x40e, 0x40f, 0x18), (0x412, 0x42f, 0x1),
    (0x430, 0x43f, 0x2), (0x440, 0x440, 0x4), (0x443, 0x443, 0x4), (0x451, 0x45c, 0x18), (0x45e, 0x45f, 0x18), (0x490, 0x491, 0x18),
    (0x2013, 0x2015, 0x8), (0x2018, 0x201a, 0x8), (0x201c, 0x201e, 0x8), (0x2020, 0x2021, 0x18), (0x2022, 0x2022, 0x8), (0x2026, 0x2026, 0x8),
    (0x2030, 0x2030, 0x18), (0x2039, 0x203a, 0x18), (0x20ac, 0x20ac, 0x18), (0x2116, 0x2116, 0x18), (0x2122, 0x2122, 0x18),
];
// Bits: 0x1 decimal.
#[rustfmt::skip]
const DECIMAL_DIGITS: &[(u32, u32, u8)] = &[
    (0x30, 0x39, 0x1), (0x660, 0x669, 0x1), (0x6f0, 0x6f9, 0x1), (0x7c0, 0x7c9, 0x1), (0x966, 0x96f, 0x1), (0x9e6, 0x9ef, 0x1),
    (0xa66, 0xa6f, 0x1), (0xae6, 0xaef, 0x1), (0xb66, 0xb6f, 0x1), (0xbe6, 0xbef, 0x1), (0xc66, 0xc6f, 0x1), (0xce6, 0xcef, 0x1),
    (0xd66, 0xd6f, 0x1), (0xde6, 0xdef, 0x1), (0xe50, 0xe59, 0x1), (0xed0, 0xed9, 0x1), (0xf20, 0xf29, 0x1), (0x1040, 0x1049, 0x1),
    (0x1090, 0x1099, 0x1), (0x17e0, 0x17e9, 0x1), (0x1810, 0x1819, 0x1), (0x1946, 0x194f, 0x1), (0x19d0, 0x19d9, 0x1), (0x1a80, 0x1a89, 0x1),
    (0x1a90, 0x1a99, 0x1), (0x1b50, 0x1b59, 0x1), (0x1bb0, 0x1bb9, 0x1), (0x1c40, 0x1c49, 0x1), (0x1c50, 0x1c59, 0x1), (0xa620, 0xa629, 0x1),
    (0xa8d0, 0xa8d9, 0x1), (0xa900, 0xa909, 0x1), (0xa9d0, 0xa9d9, 0x1), (0xa9f0, 0xa9f9, 0x1), (0xaa50, 0xaa59, 0x1), (0xabf0, 0xabf9, 0x1),
    (0xff10, 0xff19, 0x1), (0x104a0, 0x104a9, 0x1), (0x10d30, 0x10d39, 0x1), (0x11066, 0x1106f, 0x1), (0x110f0, 0x110f9, 0x1), (0x11136, 0x1113f, 0x1),
    (0x111d0, 0x111d9, 0x1), (0x112f0, 0x112f9, 0x1), (0x11450, 0x11459, 0x1), (0x114d0, 0x114d9, 0x1), (0x11650, 0x11659, 0x1), (0x116c0, 0x116c9, 0x1),
    (0x11730, 0x11739, 0x1), (0x118e0, 0x118e9, 0x1), (0x11950, 0x11959, 0x1), (0x11c50, 0x11c59, 0x1), (0x11d50, 0x11d59, 0x1), (0x11da0, 0x11da9, 0x1),
    (0x16a60, 0x16a69, 0x1), (0x16ac0, 0x16ac9, 0x1), (0x16b50, 0x16b59, 0x1), (0x1d7ce, 0x1d7ff, 0x1), (0x1e140, 0x1e149, 0x1), (0x1e2f0, 0x1e2f9, 0x1),
    (0x1e950, 0x1e959, 0x1), (0x1fbf0, 0x1fbf9, 0x1),
];
// Bytes 0x80-0xFF of: latin-1, sloppy-windows-1252, sloppy-windows-1251, sloppy-windows-1250, sloppy-windows-1253, sloppy-windows-1254, sloppy-windows-1257, iso-8859-2, macroman, cp437.
#[rustfmt::skip]
const CHARMAPS: [[u16; 128]; 10] = [
    // latin-1
    [
        0x0080, 0x0081, 0x0082, 0x0083, 0x0084, 0x0085, 0x0086, 0x0087,
        0x0088, 0x0089, 0x008a, 0x008b, 0x008c, 0x008d, 0x008e, 0x008f,
        0x0090, 0x0091, 0x0092, 0x0093, 0x0094, 0x0095, 0x0096, 0x0097,
        0x0098, 0x0099, 0x009a, 0x009b, 0x009c, 0x009d, 0x009e, 0x009f,
        0x00a0, 0x00a1, 0x00a2, 0x00a3, 0x00a4, 0x00a5, 0x00a6, 0x00a7,
        0x00a8, 0x00a9, 0x00aa, 0x00ab, 0x00ac, 0x00ad, 0x00ae, 0x00af,
        0x00b0, 0x00b1, 0x00b2, 0x00b3, 0x00b4, 0x00b5, 0x00b6, 0x00b7,
        0x00b8, 0x00b9, 0x00ba, 0x00bb, 0x00bc, 0x00bd, 0x00be, 0x00bf,
        0x00c0, 0x00c1, 0x00c2, 0x00c3, 0x00c4, 0x00c5, 0x00c6, 0x00c7,
        0x00c8, 0x00c9, 0x00ca, 0x00cb, 0x00cc, 0x00cd, 0x00ce, 0x00cf,
        0x00d0, 0x00d1, 0x00d2, 0x00d3, 0x00d4, 0x00d5, 0x00d6, 0x00d7,
        0x00d8, 0x00d9, 0x00da, 0x00db, 0x00dc, 0x00dd, 0x00de, 0x00df,
        0x00e0, 0x00e1, 0x00e2, 0x00e3, 0x00e4, 0x00e5, 0x00e6, 0x00e7,
        0x00e8, 0x00e9, 0x00ea, 0x00eb, 0x00ec, 0x00ed, 0x00ee, 0x00ef,
        0x00f0, 0x00f1, 0x00f2, 0x00f3, 0x00f4, 0x00f5, 0x00f6, 0x00f7,
        0x00f8, 0x00f9, 0x00fa, 0x00fb, 0x00fc, 0x00fd, 0x00fe, 0x00ff,
    ],
    // sloppy-windows-1252
    [
        0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
        0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008d, 0x017d, 0x008f,
        0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
        0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e, 0x0178,
        0x00a0, 0x00a1, 0x00a2, 0x00a3, 0x00a4, 0x00a5, 0x00a6, 0x00a7,
        0x00a8, 0x00a9, 0x00aa, 0x00ab, 0x00ac, 0x00ad, 0x00ae, 0x00af,
        0x00b0, 0x00b1, 0x00b2, 0x00b3, 0x00b4, 0x00b5, 0x00b6, 0x00b7,
        0x00b8, 0x00b9, 0x00ba, 0x00bb, 0x00bc, 0x00bd, 0x00be, 0x00bf,
        0x00c0, 0x00c1, 0x00c2, 0x00c3, 0x00c4, 0x00c5, 0x00c6, 0x00c7,
        0x00c8, 0x00c9, 0x00ca, 0x00cb, 0x00cc, 0x00cd, 0x00ce, 0x00cf,
        0x00d0, 0x00d1, 0x00d2, 0x00d3, 0x00d4, 0x00d5, 0x00d6, 0x00d7,
        0x00d8, 0x00d9, 0x00da, 0x00db, 0x00dc, 0x00dd, 0x00de, 0x00df,
        0x00e0, 0x00e1, 0x00e2, 0x00e3, 0x00e4, 0x00e5, 0x00e6, 0x00e7,
        0x00e8, 0x00e9, 0x00ea, 0x00eb, 0x00ec, 0x00ed, 0x00ee, 0x00ef,
        0x00f0, 0x00f1, 0x00f2, 0x00f3, 0x00f4, 0x00f5, 0x00f6, 0x00f7,
        0x00f8, 0x00f9, 0x00fa, 0x00fb, 0x00fc, 0x00fd, 0x00fe, 0x00ff,
    ],
    // sloppy-windows-1251
    [
        0x0402, 0x0403, 0x201a, 0x0453, 0x201e, 0x2026, 0x2020, 0x2021,
        0x20ac, 0x2030, 0x0409, 0x2039, 0x040a, 0x040c, 0x040b, 0x040f,
        0x0452, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
        0x0098, 0x2122, 0x0459, 0x203a, 0x045a, 0x045c, 0x045b, 0x045f,
        0x00a0, 0x040e, 0x045e, 0x0408, 0x00a4, 0x0490, 0x00a6, 0x00a7,
        0x0401, 0x00a9, 0x0404, 0x00ab, 0x00ac, 0x00ad, 0x00ae, 0x0407,
        0x00b0, 0x00b1, 0x0406, 0x0456, 0x0491, 0x00b5, 0x00b6, 0x00b7,
        0x0451, 0x2116, 0x0454, 0x00bb, 0x0458, 0x0405, 0x0455, 0x0457,
        0x0410, 0x0411, 0x0412, 0x0413, 0x0414, 0x0415, 0x0416, 0x0417,
        0x0418, 0x0419, 0x041a, 0x041b, 0x041c, 0x041d, 0x041e, 0x041f,
        0x0420, 0x0421, 0x0422, 0x0423, 0x0424, 0x0425, 0x0426, 0x0427,
        0x0428, 0x0429, 0x042a, 0x042b, 0x042c, 0x042d, 0x042e, 0x042f,
        0x0430, 0x0431, 0x0432, 0x0433, 0x0434, 0x0435, 0x0436, 0x0437,
        0x0438, 0x0439, 0x043a, 0x043b, 0x043c, 0x043d, 0x043e, 0x043f,
        0x0440, 0x0441, 0x0442, 0x0443, 0x0444, 0x0445, 0x0446, 0x0447,
        0x0448, 0x0449, 0x044a, 0x044b, 0x044c, 0x044d, 0x044e, 0x044f,
    ],
    // sloppy-windows-1250
    [
        0x20ac, 0x0081, 0x201a, 0x0083, 0x201e, 0x2026, 0x2020, 0x2021,
        0x0088, 0x2030, 0x0160, 0x2039, 0x015a, 0x0164, 0x017d, 0x0179,
        0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
        0x0098, 0x2122, 0x0161, 0x203a, 0x015b, 0x0165, 0x017e, 0x017a,
        0x00a0, 0x02c7, 0x02d8, 0x0141, 0x00a4, 0x0104, 0x00a6, 0x00a7,
        0x00a8, 0x00a9, 0x015e, 0x00ab, 0x00ac, 0x00ad, 0x00ae, 0x017b,
        0x00b0, 0x00b1, 0x02db, 0x0142, 0x00b4, 0x00b5, 0x00b6, 0x00b7,
        0x00b8, 0x0105, 0x015f, 0x00bb, 0x013d, 0x02dd, 0x013e, 0x017c,
        0x0154, 0x00c1, 0x00c2, 0x0102, 0x00c4, 0x0139, 0x0106, 0x00c7,
        0x010c, 0x00c9, 0x0118, 0x00cb, 0x011a, 0x00cd, 0x00ce, 0x010e,
        0x0110, 0x0143, 0x0147, 0x00d3, 0x00d4, 0x0150, 0x00d6, 0x00d7,
        0x0158, 0x016e, 0x00da, 0x0170, 0x00dc, 0x00dd, 0x0162, 0x00df,
        0x0155, 0x00e1, 0x00e2, 0x0103, 0x00e4, 0x013a, 0x0107, 0x00e7,
        0x010d, 0x00e9, 0x0119, 0x00eb, 0x011b, 0x00ed, 0x00ee, 0x010f,
        0x0111, 0x0144, 0x0148, 0x00f3, 0x00f4, 0x0151, 0x00f6, 0x00f7,
        0x0159, 0x016f, 0x00fa, 0x0171, 0x00fc, 0x00fd, 0x0163, 0x02d9,
    ],
    // sloppy-windows-1253
    [
        0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
        0x0088, 0x2030, 0x008a, 0x2039, 0x008c, 0x008d, 0x008e, 0x008f,
        0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
        0x0098, 0x2122, 0x009a, 0x203a, 0x009c, 0x009d, 0x009e, 0x009f,
        0x00a0, 0x0385, 0x0386, 0x00a3, 0x00a4, 0x00a5, 0x00a6, 0x00a7,
        0x00a8, 0x00a9, 0x00aa, 0x00ab, 0x00ac, 0x00ad, 0x00ae, 0x2015,
        0x00b0, 0x00b1, 0x00b2, 0x00b3, 0x0384, 0x00b5, 0x00b6, 0x00b7,
        0x0388, 0x0389, 0x038a, 0x00bb, 0x038c, 0x00bd, 0x038e, 0x038f,
        0x0390, 0x0391, 0x0392, 0x0393, 0x0394, 0x0395, 0x0396, 0x0397,
        0x0398, 0x0399, 0x039a, 0x039b, 0x039c, 0x039d, 0x039e, 0x039f,
        0x03a0, 0x03a1, 0x00d2, 0x03a3, 0x03a4, 0x03a5, 0x03a6, 0x03a7,
        0x03a8, 0x03a9, 0x03aa, 0x03ab, 0x03ac, 0x03ad, 0x03ae, 0x03af,
        0x03b0, 0x03b1, 0x03b2, 0x03b3, 0x03b4, 0x03b5, 0x03b6, 0x03b7,
        0x03b8, 0x03b9, 0x03ba, 0x03bb, 0x03bc, 0x03bd, 0x03be, 0x03bf,
        0x03c0, 0x03c1, 0x03c2, 0x03c3, 0x03c4, 0x03c5, 0x03c6, 0x03c7,
        0x03c8, 0x03c9, 0x03ca, 0x03cb, 0x03cc, 0x03cd, 0x03ce, 0x00ff,
    ],
    // sloppy-windows-1254
    [
        0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
        0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008d, 0x008e, 0x008f,
        0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
        0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x009e, 0x0178,
        0x00a0, 0x00a1, 0x00a2, 0x00a3, 0x00a4, 0x00a5, 0x00a6, 0x00a7,
        0x00a8, 0x00a9, 0x00aa, 0x00ab, 0x00ac, 0x00ad, 0x00ae, 0x00af,
        0x00b0, 0x00b1, 0x00b2, 0x00b3, 0x00b4, 0x00b5, 0x00b6, 0x00b7,
        0x00b8, 0x00b9, 0x00ba, 0x00bb, 0x00bc, 0x00bd, 0x00be, 0x00bf,
        0x00c0, 0x00c1, 0x00c2, 0x00c3, 0x00c4, 0x00c5, 0x00c6, 0x00c7,
        0x00c8, 0x00c9, 0x00ca, 0x00cb, 0x00cc, 0x00cd, 0x00ce, 0x00cf,
        0x011e, 0x00d1, 0x00d2, 0x00d3, 0x00d4, 0x00d5, 0x00d6, 0x00d7,
        0x00d8, 0x00d9, 0x00da, 0x00db, 0x00dc, 0x0130, 0x015e, 0x00df,
        0x00e0, 0x00e1, 0x00e2, 0x00e3, 0x00e4, 0x00e5, 0x00e6, 0x00e7,
        0x00e8, 0x00e9, 0x00ea, 0x00eb, 0x00ec, 0x00ed, 0x00ee, 0x00ef,
        0x011f, 0x00f1, 0x00f2, 0x00f3, 0x00f4, 0x00f5, 0x00f6, 0x00f7,
        0x00f8, 0x00f9, 0x00fa, 0x00fb, 0x00fc, 0x0131, 0x015f, 0x00ff,
    ],
    // sloppy-windows-1257
    [
        0x20ac, 0x0081, 0x201a, 0x0083, 0x201e, 0x2026, 0x2020, 0x2021,
        0x0088, 0x2030, 0x008a, 0x2039, 0x008c, 0x00a8, 0x02c7, 0x00b8,
        0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
        0x0098, 0x2122, 0x009a, 0x203a, 0x009c, 0x00af, 0x02db, 0x009f,
        0x00a0, 0x00a1, 0x00a2, 0x00a3, 0x00a4, 0x00a5, 0x00a6, 0x00a7,
        0x00d8, 0x00a9, 0x0156, 0x00ab, 0x00ac, 0x00ad, 0x00ae, 0x00c6,
        0x00b0, 0x00b1, 0x00b2, 0x00b3, 0x00b4, 0x00b5, 0x00b6, 0x00b7,
        0x00f8, 0x00b9, 0x0157, 0x00bb, 0x00bc, 0x00bd, 0x00be, 0x00e6,
        0x0104, 0x012e, 0x0100, 0x0106, 0x00c4, 0x00c5, 0x0118, 0x0112,
        0x010c, 0x00c9, 0x0179, 0x0116, 0x0122, 0x0136, 0x012a, 0x013b,
        0x0160, 0x0143, 0x0145, 0x00d3, 0x014c, 0x00d5, 0x00d6, 0x00d7,
        0x0172, 0x0141, 0x015a, 0x016a, 0x00dc, 0x017b, 0x017d, 0x00df,
        0x0105, 0x012f, 0x0101, 0x0107, 0x00e4, 0x00e5, 0x0119, 0x0113,
        0x010d, 0x00e9, 0x017a, 0x0117, 0x0123, 0x0137, 0x012b, 0x013c,
        0x0161, 0x0144, 0x0146, 0x00f3, 0x014d, 0x00f5, 0x00f6, 0x00f7,
        0x0173, 0x0142, 0x015b, 0x016b, 0x00fc, 0x017c, 0x017e, 0x02d9,
    ],
    // iso-8859-2
    [
        0x0080, 0x0081, 0x0082, 0x0083, 0x0084, 0x0085, 0x0086, 0x0087,
        0x0088, 0x0089, 0x008a, 0x008b, 0x008c, 0x008d, 0x008e, 0x008f,
        0x0090, 0x0091, 0x0092, 0x0093, 0x0094, 0x0095, 0x0096, 0x0097,
        0x0098, 0x0099, 0x009a, 0x009b, 0x009c, 0x009d, 0x009e, 0x009f,
        0x00a0, 0x0104, 0x02d8, 0x0141, 0x00a4, 0x013d, 0x015a, 0x00a7,
        0x00a8, 0x0160, 0x015e, 0x0164, 0x0179, 0x00ad, 0x017d, 0x017b,
        0x00b0, 0x0105, 0x02db, 0x0142, 0x00b4, 0x013e, 0x015b, 0x02c7,
        0x00b8, 0x0161, 0x015f, 0x0165, 0x017a, 0x02dd, 0x017e, 0x017c,
        0x0154, 0x00c1, 0x00c2, 0x0102, 0x00c4, 0x0139, 0x0106, 0x00c7,
        0x010c, 0x00c9, 0x0118, 0x00cb, 0x011a, 0x00cd, 0x00ce, 0x010e,
        0x0110, 0x0143, 0x0147, 0x00d3, 0x00d4, 0x0150, 0x00d6, 0x00d7,
        0x0158, 0x016e, 0x00da, 0x0170, 0x00dc, 0x00dd, 0x0162, 0x00df,
        0x0155, 0x00e1, 0x00e2, 0x0103, 0x00e4, 0x013a, 0x0107, 0x00e7,
        0x010d, 0x00e9, 0x0119, 0x00eb, 0x011b, 0x00ed, 0x00ee, 0x010f,
        0x0111, 0x0144, 0x0148, 0x00f3, 0x00f4, 0x0151, 0x00f6, 0x00f7,
        0x0159, 0x016f, 0x00fa, 0x0171, 0x00fc, 0x00fd, 0x0163, 0x02d9,
    ],
    // macroman
    [
        0x00c4, 0x00c5, 0x00c7, 0x00c9, 0x00d1, 0x00d6, 0x00dc, 0x00e1,
        0x00e0, 0x00e2, 0x00e4, 0x00e3, 0x00e5, 0x00e7, 0x00e9, 0x00e8,
        0x00ea, 0x00eb, 0x00ed, 0x00ec, 0x00ee, 0x00ef, 0x00f1, 0x00f3,
        0x00f2, 0x00f4, 0x00f6, 0x00f5, 0x00fa, 0x00f9, 0x00fb, 0x00fc,
        0x2020, 0x00b0, 0x00a2, 0x00a3, 0x00a7, 0x2022, 0x00b6, 0x00df,
        0x00ae, 0x00a9, 0x2122, 0x00b4, 0x00a8, 0x2260, 0x00c6, 0x00d8,
        0x221e, 0x00b1, 0x2264, 0x2265, 0x00a5, 0x00b5, 0x2202, 0x2211,
        0x220f, 0x03c0, 0x222b, 0x00aa, 0x00ba, 0x03a9, 0x00e6, 0x00f8,
        0x00bf, 0x00a1, 0x00ac, 0x221a, 0x0192, 0x2248, 0x2206, 0x00ab,
        0x00bb, 0x2026, 0x00a0, 0x00c0, 0x00c3, 0x00d5, 0x0152, 0x0153,
        0x2013, 0x2014, 0x201c, 0x201d, 0x2018, 0x2019, 0x00f7, 0x25ca,
        0x00ff, 0x0178, 0x2044, 0x20ac, 0x2039, 0x203a, 0xfb01, 0xfb02,
        0x2021, 0x00b7, 0x201a, 0x201e, 0x2030, 0x00c2, 0x00ca, 0x00c1,
        0x00cb, 0x00c8, 0x00cd, 0x00ce, 0x00cf, 0x00cc, 0x00d3, 0x00d4,
        0xf8ff, 0x00d2, 0x00da, 0x00db, 0x00d9, 0x0131, 0x02c6, 0x02dc,
        0x00af, 0x02d8, 0x02d9, 0x02da, 0x00b8, 0x02dd, 0x02db, 0x02c7,
    ],
    // cp437
    [
        0x00c7, 0x00fc, 0x00e9, 0x00e2, 0x00e4, 0x00e0, 0x00e5, 0x00e7,
        0x00ea, 0x00eb, 0x00e8, 0x00ef, 0x00ee, 0x00ec, 0x00c4, 0x00c5,
        0x00c9, 0x00e6, 0x00c6, 0x00f4, 0x00f6, 0x00f2, 0x00fb, 0x00f9,
        0x00ff, 0x00d6, 0x00dc, 0x00a2, 0x00a3, 0x00a5, 0x20a7, 0x0192,
        0x00e1, 0x00ed, 0x00f3, 0x00fa, 0x00f1, 0x00d1, 0x00aa, 0x00ba,
        0x00bf, 0x2310, 0x00ac, 0x00bd, 0x00bc, 0x00a1, 0x00ab, 0x00bb,
        0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562, 0x2556,
        0x2555, 0x2563, 0x2551, 0x2557, 0x255d, 0x255c, 0x255b, 0x2510,
        0x2514, 0x2534, 0x252c, 0x251c, 0x2500, 0x253c, 0x255e, 0x255f,
        0x255a, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550, 0x256c, 0x2567,
        0x2568, 0x2564, 0x2565, 0x2559, 0x2558, 0x2552, 0x2553, 0x256b,
        0x256a, 0x2518, 0x250c, 0x2588, 0x2584, 0x258c, 0x2590, 0x2580,
        0x03b1, 0x00df, 0x0393, 0x03c0, 0x03a3, 0x03c3, 0x00b5, 0x03c4,
        0x03a6, 0x0398, 0x03a9, 0x03b4, 0x221e, 0x03c6, 0x03b5, 0x2229,
        0x2261, 0x00b1, 0x2265, 0x2264, 0x2320, 0x2321, 0x00f7, 0x2248,
        0x00b0, 0x2219, 0x00b7, 0x221a, 0x207f, 0x00b2, 0x25a0, 0x00a0,
    ],
];
// --- End of generated tables -----------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badness_alternatives_need_early_non_ascii() {
        for (i, (_, pattern)) in BADNESS.iter().enumerate() {
            let has_non_ascii_slot =
                pattern.iter().take(BADNESS_ASCII_REACH).any(|class| (0u8..0x80).all(|b| !class.matches(b as char)));
            assert!(
                has_non_ascii_slot,
                "BADNESS alternative {i} can start with {BADNESS_ASCII_REACH} ASCII characters"
            );
        }
    }

    #[test]
    fn byte_alphabet_round_trips() {
        let mut seen = std::collections::HashSet::new();
        for cp in 0..0x200u32 {
            if let Some(b) = char::from_u32(cp).and_then(char_to_byte) {
                assert!(seen.insert(b), "byte {b:#x} has two characters");
            }
        }
        assert_eq!(seen.len(), 256);
    }
}
