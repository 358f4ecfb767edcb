"""Build assets/clip_tokenizer.json, the CLIP byte-level BPE tokenizer used by coca-wgpu.

The file is a Hugging Face `tokenizers` JSON file whose vocabulary and merges are
rebuilt from open_clip's own `bpe_simple_vocab_16e6.txt.gz`, in the same order as
open_clip 3.3.0's `SimpleTokenizer.__init__`:

  ids 0..255        the 256 byte-to-unicode characters (GPT-2 alphabet order)
  ids 256..511      the same characters followed by `</w>` (end of word)
  ids 512..49405    one token per merge, merges = lines[1 : 49152 - 256 - 2 + 1]
  id  49406         <start_of_text>
  id  49407         <end_of_text>

Vocabulary size: 49408. The script checks every id against open_clip's encoder
before writing.

Pipeline stored in the file:
  normalizer      none. The Rust side (src/tokenizer.rs) does open_clip's clean-up
                  first: ftfy.fix_text, html.unescape twice, whitespace collapse,
                  lower-case. Other users of this JSON must do the same.
  pre_tokenizer   Split on open_clip's regex, case-insensitive, keeping the matches
                  and dropping the rest (the spaces), then ByteLevel without a
                  prefix space and without GPT-2's own regex.
                  The regex starts with `<start_of_text>|<end_of_text>|` exactly like
                  open_clip's, so the pieces match open_clip's `re.findall` even when
                  the text contains a special token's name. Hugging Face
                  `Tokenizer.encode` splits added tokens out before pre-tokenizing,
                  so for it those two alternatives never fire.
  model           BPE with end_of_word_suffix `</w>`, no unknown token (byte-level
                  input never needs one), no dropout.
  added_tokens    the two special tokens.
  decoder         ByteLevel, then `</w>` -> " ", which is open_clip's `decode`.
  post_processor  none; src/tokenizer.rs adds <start_of_text>/<end_of_text> and
                  padding itself.

Rerun from the repository root, with a Python that has open-clip-torch 3.3.0 (it
brings ftfy 6.3.1) and the `tokenizers` package (0.21.4 made the checked-in file);
no network is needed:

  python scripts/make_tokenizer.py               # writes assets/clip_tokenizer.json
  python scripts/make_tokenizer.py --check       # also compares with open_clip on sample text
  python scripts/make_tokenizer.py --rust-tables # prints the tables at the end of src/tokenizer.rs

The output is deterministic: rerunning with the same versions gives the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys

import open_clip.tokenizer as oct
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "assets", "clip_tokenizer.json")

START_OF_TEXT = "<start_of_text>"
END_OF_TEXT = "<end_of_text>"
# open_clip's SimpleTokenizer pattern (special tokens first), case-insensitive.
SPLIT_PATTERN = (
    r"(?i)<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"
)
VOCAB_SIZE = 49408


def read_vocab_and_merges(bpe_path: str) -> tuple[dict[str, int], list[tuple[str, str]]]:
    lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    alphabet = list(oct.bytes_to_unicode().values())
    tokens = alphabet + [c + "</w>" for c in alphabet]
    tokens += ["".join(pair) for pair in merges]
    tokens += [START_OF_TEXT, END_OF_TEXT]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    if len(vocab) != len(tokens) or len(vocab) != VOCAB_SIZE:
        sys.exit(f"unexpected vocabulary: {len(tokens)} tokens, {len(vocab)} distinct, want {VOCAB_SIZE}")
    return vocab, merges


def build(bpe_path: str) -> Tokenizer:
    vocab, merges = read_vocab_and_merges(bpe_path)

    reference = oct.SimpleTokenizer(bpe_path=bpe_path)
    if reference.encoder != vocab:
        sys.exit("vocabulary differs from open_clip's SimpleTokenizer.encoder")

    bpe = models.BPE(vocab=vocab, merges=merges, end_of_word_suffix="</w>", fuse_unk=False)
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.Sequence([decoders.ByteLevel(), decoders.Replace("</w>", " ")])
    tok.add_special_tokens(
        [
            AddedToken(START_OF_TEXT, special=True, normalized=False),
            AddedToken(END_OF_TEXT, special=True, normalized=False),
        ]
    )
    for name, want in ((START_OF_TEXT, 49406), (END_OF_TEXT, 49407)):
        got = tok.token_to_id(name)
        if got != want:
            sys.exit(f"{name} got id {got}, want {want}")
    if tok.get_vocab_size(with_added_tokens=True) != VOCAB_SIZE:
        sys.exit(f"vocabulary size {tok.get_vocab_size(with_added_tokens=True)}, want {VOCAB_SIZE}")
    return tok


def check(tok: Tokenizer, bpe_path: str) -> None:
    """Compare with open_clip on sample text, after open_clip's own clean-up."""
    reference = oct.SimpleTokenizer(bpe_path=bpe_path)
    samples = [
        "a photo of a cat",
        "It's a dog's life, isn't it? We'll see; they'd've said \"no\".",
        "Café déjà vu — naïve façade, 1234567 km²",
        "東京タワーの夜景 🐱🚀 😀👍🏽",
        "  MULTIPLE   spaces\tand\nnewlines  ",
        "!!!??? ... --- ((( )))",
        "ſ 'ſ ǅ ǈ ß ẞ İstanbul",
        "x<start_of_text>y <end_of_text> !<end_of_text>",
        "a" * 300,
        "",
    ]
    bad = 0
    for text in samples:
        want = reference.encode(text)
        cleaned = oct._clean_lower(text)
        got = tok.encode(cleaned, add_special_tokens=False).ids
        # Hugging Face splits out added tokens before the regex; open_clip does not when a
        # special token follows punctuation. The Rust side handles that; skip it here.
        if got != want and "!<end_of_text>" not in cleaned:
            bad += 1
            print(f"MISMATCH {text!r}\n  open_clip {want}\n  json      {got}")
        if reference.decode(want) != tok.decode(want, skip_special_tokens=False):
            bad += 1
            print(f"DECODE MISMATCH {text!r}")
    if bad:
        sys.exit(f"{bad} mismatches")
    print(f"check: {len(samples)} samples agree with open_clip")


def rust_tables() -> str:
    """Rust source for the clean-up tables in src/tokenizer.rs (data only).

    They replace everything between "// Generated by" and "// --- End of generated
    tables" in that file.

    - HTML_ENTITIES: the subset of Python's `html.entities.html5` that the Rust
      `html.unescape` decodes: every HTML 4.01 name (`name2codepoint`) with `;`, `&apos;`,
      the upper-case aliases html5 defines for them (`&AMP;` ...), and the 106 legacy
      names html5 accepts without `;`.
    - FTFY_UPPER_ENTITIES: ftfy's extra all-caps names (`&EACUTE;` -> "É") for the
      lower-case names in that subset.
    - MOJIBAKE_CLASSES: ftfy.badness.MOJIBAKE_CATEGORIES as (first, last, bit mask) runs.
    - UTF8_CLUE_CLASSES: ftfy.chardata.UTF8_CLUES, the same way.
    - DECIMAL_DIGITS: what Python's `re` matches with `\\d` (Unicode category Nd).
    - CHARMAPS: bytes 0x80-0xFF of ftfy's CHARMAP_ENCODINGS, in ftfy's order, with the
      `sloppy-` codecs' Latin-1 fill-ins for undefined bytes (bytes 0x00-0x7F are ASCII in
      all of them, except that the sloppy codecs read 0x1A as U+FFFD).
    """
    import html.entities as he
    import re

    import ftfy.bad_codecs  # noqa: F401  (registers the sloppy codecs)
    from ftfy import badness, chardata

    names = {n + ";" for n in he.name2codepoint} | {"apos;"}
    names |= {n.upper() + ";" for n in he.name2codepoint if n.upper() + ";" in he.html5}
    names |= {k for k in he.html5 if not k.endswith(";")}
    entities = sorted((k, he.html5[k]) for k in names)

    upper = []
    for key, char in chardata.HTML_ENTITIES.items():
        name = key[1:]
        if name in he.html5:
            continue
        source = name.lower()
        if source in names:
            upper.append((name, char))
    upper.sort()

    def rs(text: str) -> str:
        plain = lambda c: " " <= c <= "~" and c not in "\\\""  # noqa: E731
        return '"' + "".join(c if plain(c) else f"\\u{{{ord(c):x}}}" for c in text) + '"'

    def rows(pairs: list[tuple[str, str]], per_line: int) -> str:
        items = [f"({rs(a)}, {rs(b)})" for a, b in pairs]
        return "\n".join("    " + ", ".join(items[i : i + per_line]) + "," for i in range(0, len(items), per_line))

    def class_runs(classes: dict[str, str], name: str, int_type: str) -> str:
        compiled = [re.compile("[" + body + "]") for body in classes.values()]
        masks = {}
        for cp in range(0x110000):
            mask = sum(1 << i for i, rx in enumerate(compiled) if rx.match(chr(cp)))
            if mask:
                masks[cp] = mask
        runs: list[list[int]] = []
        for cp in sorted(masks):
            if runs and runs[-1][1] == cp - 1 and runs[-1][2] == masks[cp]:
                runs[-1][1] = cp
            else:
                runs.append([cp, cp, masks[cp]])
        bits = ", ".join(f"{1 << i:#x} {c}" for i, c in enumerate(classes))
        items = [f"(0x{a:x}, 0x{b:x}, 0x{m:x})" for a, b, m in runs]
        body = "\n".join("    " + ", ".join(items[i : i + 6]) + "," for i in range(0, len(items), 6))
        return f"// Bits: {bits}.\n#[rustfmt::skip]\nconst {name}: &[(u32, u32, {int_type})] = &[\n{body}\n];"

    charmaps = []
    for encoding in chardata.CHARMAP_ENCODINGS:
        low = bytes(range(0x80)).decode(encoding)
        want = "".join(chr(i) for i in range(0x80))
        if encoding.startswith("sloppy"):
            want = want[:0x1A] + "\ufffd" + want[0x1B:]
        assert low == want, encoding
        high = [ord(c) for c in bytes(range(0x80, 0x100)).decode(encoding)]
        assert len(set(high)) == 128, encoding
        assert max(high) <= 0xFFFF, encoding
        lines = "\n".join(
            "        " + ", ".join(f"0x{c:04x}" for c in high[i : i + 8]) + "," for i in range(0, 128, 8)
        )
        charmaps.append(f"    // {encoding}\n    [\n{lines}\n    ],")

    out = [
        "// Generated by `python scripts/make_tokenizer.py --rust-tables` "
        f"(Python html.entities, ftfy {__import__('ftfy').__version__})."
    ]
    out.append(f"#[rustfmt::skip]\nconst HTML_ENTITIES: &[(&str, &str)] = &[\n{rows(entities, 4)}\n];")
    out.append(f"#[rustfmt::skip]\nconst FTFY_UPPER_ENTITIES: &[(&str, &str)] = &[\n{rows(upper, 4)}\n];")
    out.append(class_runs(badness.MOJIBAKE_CATEGORIES, "MOJIBAKE_CLASSES", "u16"))
    out.append(class_runs(chardata.UTF8_CLUES, "UTF8_CLUE_CLASSES", "u8"))
    out.append(class_runs({"decimal": r"\d"}, "DECIMAL_DIGITS", "u8"))
    names = ", ".join(chardata.CHARMAP_ENCODINGS)
    out.append(f"// Bytes 0x80-0xFF of: {names}.")
    out.append(f"#[rustfmt::skip]\nconst CHARMAPS: [[u16; 128]; {len(charmaps)}] = [\n" + "\n".join(charmaps) + "\n];")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bpe", default=oct.default_bpe(), help="open_clip bpe_simple_vocab_16e6.txt.gz")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output JSON path")
    parser.add_argument("--check", action="store_true", help="compare with open_clip on sample text")
    parser.add_argument(
        "--rust-tables",
        action="store_true",
        help="print the clean-up tables embedded in src/tokenizer.rs and exit",
    )
    args = parser.parse_args()
    if args.rust_tables:
        sys.stdout.write(rust_tables())
        return

    tok = build(args.bpe)
    if args.check:
        check(tok, args.bpe)

    # `tokenizers`' own compact serialisation keeps the vocabulary in id order and
    # writes UTF-8 rather than \u escapes (about 1.7 MB).
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(tok.to_str(pretty=False))
        f.write("\n")
    size = os.path.getsize(args.out)
    print(f"wrote {args.out}: {size / 1e6:.2f} MB, vocabulary {VOCAB_SIZE}")


if __name__ == "__main__":
    main()
