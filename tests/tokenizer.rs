//! The tokenizer against open_clip 3.3.0's own output.
//!
//! `tests/fixtures/tokenizer.json` is written by `scripts/make_tokenizer_fixtures.py` with
//! open_clip's `SimpleTokenizer`; every case must match exactly. Regenerate it after changing
//! the texts there, never by hand.

use std::sync::OnceLock;

use coca_wgpu::tokenizer::{self, Tokenizer, TokenizerError, COCA_CONTEXT_LENGTH, END_OF_TEXT, START_OF_TEXT};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    open_clip: String,
    start_of_text: u32,
    end_of_text: u32,
    vocab_size: usize,
    cases: Vec<Case>,
    decode_cases: Vec<DecodeCase>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    clean: String,
    encode: Vec<u32>,
    tokens_77: Vec<u32>,
    tokens_76: Vec<u32>,
    decode: String,
    decode_77: String,
    caption: String,
}

#[derive(Deserialize)]
struct DecodeCase {
    ids: Vec<u32>,
    decode: String,
    caption: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tokenizer.json");
        let json = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path}: {e}; run scripts/make_tokenizer_fixtures.py"));
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{path}: {e}"))
    })
}

fn clip() -> &'static Tokenizer {
    static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| Tokenizer::clip().expect("bundled tokenizer loads"))
}

/// Compares `got(case)` with `want(case)` for every case and fails once, listing every
/// mismatch, so one run shows the whole picture.
fn check_all<C, T: PartialEq + std::fmt::Debug>(
    what: &str,
    cases: &[C],
    label: impl Fn(&C) -> String,
    want: impl Fn(&C) -> T,
    got: impl Fn(&C) -> T,
) {
    let mut failures = Vec::new();
    for case in cases {
        let (w, g) = (want(case), got(case));
        if w != g {
            failures.push(format!("  {}\n    open_clip: {w:?}\n    rust:      {g:?}", label(case)));
        }
    }
    assert!(
        failures.is_empty(),
        "{what}: {} of {} cases differ from open_clip {}:\n{}",
        failures.len(),
        cases.len(),
        fixture().open_clip,
        failures.join("\n")
    );
}

fn text_label(case: &Case) -> String {
    let short: String = case.text.chars().take(60).collect();
    format!("{short:?}")
}

#[test]
fn fixture_matches_bundled_vocabulary() {
    let f = fixture();
    let tok = clip();
    assert!(f.cases.len() >= 60, "fixture has only {} texts", f.cases.len());
    assert_eq!(tok.vocab_size(), f.vocab_size);
    assert_eq!(tok.vocab_size(), tokenizer::VOCAB_SIZE);
    assert_eq!(tok.start_of_text_id(), f.start_of_text);
    assert_eq!(tok.end_of_text_id(), f.end_of_text);
    assert_eq!((START_OF_TEXT, END_OF_TEXT), (f.start_of_text, f.end_of_text));
}

#[test]
fn clean_matches_open_clip() {
    check_all("clean", &fixture().cases, text_label, |c| c.clean.clone(), |c| tokenizer::clean(&c.text));
}

#[test]
fn encode_matches_open_clip() {
    check_all(
        "encode",
        &fixture().cases,
        text_label,
        |c| c.encode.clone(),
        |c| clip().encode(&c.text).expect("encode"),
    );
}

#[test]
fn tokenize_77_matches_open_clip() {
    check_all(
        "tokenize(77)",
        &fixture().cases,
        text_label,
        |c| c.tokens_77.clone(),
        |c| clip().tokenize(&[&c.text], 77).expect("tokenize").remove(0),
    );
}

#[test]
fn tokenize_76_matches_open_clip() {
    check_all(
        "tokenize(76)",
        &fixture().cases,
        text_label,
        |c| c.tokens_76.clone(),
        |c| clip().tokenize(&[&c.text], COCA_CONTEXT_LENGTH).expect("tokenize").remove(0),
    );
}

#[test]
fn batch_tokenize_matches_row_by_row() {
    let cases = &fixture().cases;
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let rows = clip().tokenize(&texts, 77).expect("tokenize");
    assert_eq!(rows.len(), cases.len());
    for (row, case) in rows.iter().zip(cases) {
        assert_eq!(row, &case.tokens_77, "{}", text_label(case));
    }
}

#[test]
fn decode_matches_open_clip() {
    let cases = &fixture().cases;
    check_all("decode(encode)", cases, text_label, |c| c.decode.clone(), |c| clip().decode(&c.encode).expect("decode"));
    check_all(
        "decode(tokens_77)",
        cases,
        text_label,
        |c| c.decode_77.clone(),
        |c| clip().decode(&c.tokens_77).expect("decode"),
    );
    check_all(
        "decode_caption(tokens_77)",
        cases,
        text_label,
        |c| c.caption.clone(),
        |c| clip().decode_caption(&c.tokens_77).expect("decode_caption"),
    );
}

#[test]
fn decode_cases_match_open_clip() {
    let cases = &fixture().decode_cases;
    let label = |c: &DecodeCase| format!("{:?}", c.ids);
    check_all("decode", cases, label, |c| c.decode.clone(), |c| clip().decode(&c.ids).expect("decode"));
    check_all(
        "decode_caption",
        cases,
        label,
        |c| c.caption.clone(),
        |c| clip().decode_caption(&c.ids).expect("decode_caption"),
    );
}

#[test]
fn truncation_keeps_end_of_text_last() {
    let long = fixture().cases.iter().find(|c| c.encode.len() > 100).expect("a long fixture text");
    for context_length in [77, 76, 5, 2, 1] {
        let row = clip().tokenize(&[&long.text], context_length).unwrap().remove(0);
        assert_eq!(row.len(), context_length);
        assert_eq!(row[context_length - 1], END_OF_TEXT);
        if context_length > 1 {
            assert_eq!(row[0], START_OF_TEXT);
            assert_eq!(&row[1..context_length - 1], &long.encode[..context_length - 2]);
        }
    }
}

#[test]
fn strict_tokenize_accepts_exact_fit() {
    let tok = clip();
    let fits = "a ".repeat(75); // 75 tokens + <start_of_text> + <end_of_text> = 77
    assert_eq!(tok.tokenize_strict(&[&fits], 77).unwrap(), tok.tokenize(&[&fits], 77).unwrap());
}

#[test]
fn strict_tokenize_rejects_long_text() {
    let long = "a ".repeat(75);
    let err = clip().tokenize_strict(&["a photo of a cat", &long], 76).unwrap_err();
    match &err {
        TokenizerError::TooLong { index, needed, context_length, preview } => {
            assert_eq!((*index, *needed, *context_length), (1, 77, 76));
            assert!(preview.starts_with("a a a"), "{preview}");
            assert!(preview.ends_with('…'), "long texts are shortened in the message: {preview}");
        }
        other => panic!("expected TooLong, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("text 1 needs 77 tokens"), "{message}");
    assert!(message.contains("context length is 76"), "{message}");
}

#[test]
fn zero_context_length_is_an_error() {
    let err = clip().tokenize(&["a cat"], 0).unwrap_err();
    assert!(matches!(err, TokenizerError::ZeroContextLength), "{err:?}");
    assert!(clip().tokenize_strict(&["a cat"], 0).is_err());
}

#[test]
fn empty_batch_gives_no_rows() {
    let none: [&str; 0] = [];
    assert!(clip().tokenize(&none, 77).unwrap().is_empty());
}

#[test]
fn decode_rejects_ids_outside_the_vocabulary() {
    let tok = clip();
    let err = tok.decode(&[320, 49408]).unwrap_err();
    assert!(matches!(err, TokenizerError::UnknownId { id: 49408, vocab_size: 49408 }), "{err:?}");
    assert!(err.to_string().contains("49408"), "{err}");
    assert!(tok.decode(&[u32::MAX]).is_err());
    assert!(tok.decode_caption(&[START_OF_TEXT, 999_999, END_OF_TEXT]).is_err());
    // After <end_of_text> nothing is looked at.
    let cat = tok.encode("a cat").unwrap();
    let mut generated = vec![START_OF_TEXT];
    generated.extend(&cat);
    generated.extend([END_OF_TEXT, 999_999]);
    assert_eq!(tok.decode_caption(&generated).unwrap(), "a cat");
}

#[test]
fn large_and_odd_inputs_do_not_panic() {
    let tok = clip();
    let mut big = String::new();
    for i in 0..20_000 {
        big.push_str(["word ", "&amp;", "ÃƒÂ©", "\u{0}", "🐱", "\r\n", "x".repeat(300).as_str()][i % 7]);
    }
    let row = tok.tokenize(&[&big], 77).unwrap().remove(0);
    assert_eq!((row.len(), row[0], row[76]), (77, START_OF_TEXT, END_OF_TEXT));

    let one_long_word = "é".repeat(200_000);
    assert!(tok.encode(&one_long_word).unwrap().len() > 1000);
}

#[test]
fn tokenizer_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync + Clone>() {}
    shareable::<Tokenizer>();
}

#[test]
fn loading_invalid_json_is_an_error() {
    let err = Tokenizer::from_json_bytes(b"{not json").unwrap_err();
    assert!(matches!(err, TokenizerError::Load(_)), "{err:?}");
}
