"""Write tests/fixtures/tokenizer.json: open_clip 3.3.0's own tokenizer output for tests/tokenizer.rs.

For each text in TEXTS the file stores what open_clip's SimpleTokenizer (the one
`open_clip.get_tokenizer("coca_ViT-B-32")` returns) produces:

  clean      open_clip's clean-up (`_clean_lower`: ftfy.fix_text, html.unescape x2,
             whitespace collapse, lower-case)
  encode     `tokenizer.encode(text)`: BPE ids without special tokens
  tokens_77  `tokenizer([text], context_length=77)[0]`  (open_clip's default)
  tokens_76  `tokenizer([text], context_length=76)[0]`  (CoCa's text context length)
  decode     `tokenizer.decode(encode)`
  decode_77  `tokenizer.decode(tokens_77)`  (special tokens and "!" padding included)
  caption    `decode(tokens_77).split("<end_of_text>")[0].replace("<start_of_text>", "").strip()`,
             what open_clip's README does with `model.generate` output

DECODE_CASES are id sequences for `decode` alone: broken UTF-8 made from single-byte
tokens, and generate-style outputs (padding after <end_of_text>, "!" before it, no
<end_of_text> at all).

Rerun from the repository root, with a Python that has open-clip-torch 3.3.0 (it
brings ftfy 6.3.1 and torch); no network or model weights are needed:

  python scripts/make_tokenizer_fixtures.py

The output is deterministic. Then run `cargo test --test tokenizer`.
"""

from __future__ import annotations

import json
import os

import ftfy
import open_clip
import open_clip.tokenizer as oct

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "tests", "fixtures", "tokenizer.json")

LONG_CAPTION = (
    "A crowded outdoor market on a sunny afternoon, with dozens of wooden stalls selling "
    "fresh fruit, vegetables, flowers and handmade crafts; shoppers carry woven baskets, a "
    "street musician plays an accordion near a fountain, children chase pigeons across the "
    "cobblestones, and colorful awnings in red, yellow and blue stretch overhead while old "
    "stone buildings with green shutters line both sides of the square. In the distance, a "
    "church tower rises above the rooftops, and a few clouds drift across the pale blue sky."
)

TEXTS = [
    # Plain captions and case
    "a photo of a cat",
    "A Photo Of A CAT.",
    "a dog running on the beach at sunset",
    "two people riding bicycles down a city street, with a red bus in the background.",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
    # Contractions and apostrophes
    "What's this? It's a dog's toy; isn't it?",
    "I'm sure they'll say we've done it, you're right, he'd agree",
    "IT'S LOUD! DON'T YELL, WE'RE HERE",
    "Don\u2019t stop \u2014 it\u2019s \u201cgreat\u201d",
    "rock 'n' roll, 'quoted', o'clock, \u201990s",
    "\u017f '\u017f it'\u017f",
    # Numbers, punctuation, symbols
    "numbers 1234567890 and 3.14159, 1,000,000 and the 42nd street",
    "prices: $9.99, \u20ac5, \u00a33 & \u00a5100 (50% off!!!)",
    "email: someone@example.com, url: https://example.com/path?q=1&x=2",
    "punctuation!!! ??? ... --- ;;; ::: ((( ))) [[[ ]]] {{{ }}}",
    "hashtags #sunset #nofilter @user_name",
    "x\u00b2 + y\u00b2 = z\u00b2, \u2211\u222b\u221a\u221e \u2264 \u2265 \u2260 \u00b1",
    "def f(x): return x**2  # comment",
    "\u00af\\_(\u30c4)_/\u00af (\u256f\u00b0\u25a1\u00b0)\u256f\ufe35 \u253b\u2501\u253b",
    # Accents and other scripts
    "caf\u00e9, na\u00efve, fa\u00e7ade, r\u00e9sum\u00e9, jalape\u00f1o, \u00dcber, sm\u00f6rg\u00e5sbord",
    "cafe\u0301 nai\u0308ve (decomposed accents)",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u03ba\u03b5\u03af\u03bc\u03b5\u03bd\u03bf and \u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u0442\u0435\u043a\u0441\u0442",
    "\u039f\u0394\u039f\u03a3 \u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3",
    "\u0130STANBUL \u0131i STRASSE Stra\u00dfe \u1e9e",
    "\u4e2d\u6587\u5b57\u7b26\u6d4b\u8bd5\uff1a\u4e00\u53ea\u732b\u5728\u684c\u5b50\u4e0a",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3001\u6771\u4eac\u30bf\u30ef\u30fc",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8 \uace0\uc591\uc774",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u0646\u0635 \u0663\u0664",
    "\u0939\u093f\u0928\u094d\u0926\u0940 \u092a\u093e\u0920",
    # Emoji
    "a cat \U0001f431 and a rocket \U0001f680 \U0001f600\U0001f44d\U0001f3fd \u2764\ufe0f",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 flag \U0001f1fa\U0001f1f8 \U0001f3f3\ufe0f\u200d\U0001f308",
    # HTML entities
    "Tom &amp; Jerry",
    "&amp;amp; double escaped",
    "&amp;amp;amp;lt;b&amp;gt; triple escaped",
    "fish &amp; chips <b>bold</b> &amp;amp;",
    "first line &amp;amp;\nsecond <i>line</i>\nthird &amp;amp;",
    "&lt;3 &gt;_&lt; &quot;quoted&quot; &#39;single&#39; &apos;apos&apos; &nbsp;nbsp",
    "&#233;t&#xE9; &#8217;s &#x1F600; &#128512; &#0; &#150; &#1; &#59;",
    "legacy &copy 2024 &reg; &notit; this&not that &ampersand &AMP;",
    "P&EACUTE;REZ &NTILDE; BUNDESSTRA&SZLIG;E &nTILDE;",
    "&hellip; &mdash; &ndash; &trade; &euro; 20&deg;C &frac12; 3&times;4",
    # Mojibake (UTF-8 read through single-byte encodings, CESU-8) and control characters
    "caf\u00c3\u00a9 and na\u00c3\u00afve",
    "\u00e2\u20ac\u0153quoted\u00e2\u20ac\x9d and don\u00e2\u20ac\u2122t",
    "voil\u00c3 le travail",
    "\u00e2\u0153\u201d No problems",
    "\u00f0\u0178\u02dc\u20ac smile",
    "\u00e2\u20ac\u0153 like this \u00e2\u20ac\ufffd",
    "caf\u00e9 na\u00efve \u0421\u0430\u043d\u043a\u0442".encode().decode("windows-1251"),
    "\u00c5\u0142\u00f3d\u017a \u00e8\u0161".encode().decode("macroman"),
    "\U0001f431 caf\u00e9 and don\u00e2\u20ac\u2122t",
    "cat \u00ed\xa0\u00bd\u00ed\u00b0\u00b1 cesu",
    "smart\x93quotes\x94 and \x85 an ellipsis",
    "\ufb02u\ufb03est \ufb01sh \u0133ssel",
    "\uff2c\uff2f\uff35\uff24\u3000\uff2e\uff2f\uff29\uff33\uff25\uff33 \uff11\uff12\uff13 \uff76\uff80\uff76\uff85",
    "bell\x07 null\x00 esc\x1b[31mred\x1b[0m bom\ufeff end",
    # Whitespace
    "multiple   spaces\tand\ttabs\nand\nnewlines\r\nCRLF",
    "   leading and trailing whitespace   \n\n",
    "a\u00a0b\u2003c\u3000d\u200be\u2028f\x1cg",
    "",
    "   \t\n ",
    "!!!",
    "a",
    # Special token names inside the text
    "<start_of_text> literal special tokens <end_of_text> inside",
    "x!<end_of_text> y<end_of_text> <START_OF_TEXT>",
    # Length
    LONG_CAPTION,
    "a " * 75,
    "a " * 76,
    "supercalifragilisticexpialidocious" * 12,
]


def byte_id(tok: oct.SimpleTokenizer, b: int) -> int:
    return tok.encoder[tok.byte_encoder[b]]


def word_ids(tok: oct.SimpleTokenizer, text: str) -> list[int]:
    return tok.encode(text)


def decode_cases(tok: oct.SimpleTokenizer) -> list[list[int]]:
    sot, eot = tok.sot_token_id, tok.eot_token_id
    cat = word_ids(tok, "a cat sitting on a mat")
    return [
        [byte_id(tok, b) for b in b"\xe2\x82"] + word_ids(tok, "a"),  # truncated 3-byte sequence
        [byte_id(tok, 0x80)] + word_ids(tok, "b"),  # lone continuation byte
        [byte_id(tok, b) for b in b"\xf0\x9f\x98"],  # truncated 4-byte sequence at the end
        [byte_id(tok, b) for b in b"\xed\xa0\x80z"],  # UTF-16 surrogate
        [byte_id(tok, b) for b in b"\xc0\xaf\xf5\xff"],  # overlong and never-valid bytes
        [byte_id(tok, b) for b in "caf\u00e9 \U0001f431".encode()],  # valid, split into bytes
        [sot] + cat + [eot] + [0] * 10,  # generate output with padding
        [sot] + cat + [0, 0] + [eot, 0, 0],  # "!!" before <end_of_text> is text
        [sot] + cat,  # hit the length limit, no <end_of_text>
        [eot, 0, 0],
        [sot, sot] + word_ids(tok, "  spaced  ") + [eot],
        [],
    ]


def main() -> None:
    tok = open_clip.get_tokenizer("coca_ViT-B-32")
    assert isinstance(tok, oct.SimpleTokenizer), type(tok)
    sot, eot = tok.sot_token_id, tok.eot_token_id

    def caption(ids: list[int]) -> str:
        return tok.decode(ids).split("<end_of_text>")[0].replace("<start_of_text>", "").strip()

    cases = []
    for text in TEXTS:
        ids = tok.encode(text)
        row77 = tok([text], context_length=77)[0].tolist()
        row76 = tok([text], context_length=76)[0].tolist()
        cases.append(
            {
                "text": text,
                "clean": oct._clean_lower(text),
                "encode": ids,
                "tokens_77": row77,
                "tokens_76": row76,
                "decode": tok.decode(ids),
                "decode_77": tok.decode(row77),
                "caption": caption(row77),
            }
        )
    decodes = [{"ids": ids, "decode": tok.decode(ids), "caption": caption(ids)} for ids in decode_cases(tok)]

    data = {
        "about": "Written by scripts/make_tokenizer_fixtures.py from open_clip's SimpleTokenizer.",
        "open_clip": open_clip.__version__,
        "ftfy": ftfy.__version__,
        "start_of_text": sot,
        "end_of_text": eot,
        "vocab_size": tok.vocab_size,
        "cases": cases,
        "decode_cases": decodes,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=True, indent=1)
        f.write("\n")
    truncated = sum(1 for c in cases if len(c["encode"]) + 2 > 77)
    print(f"wrote {OUT}: {len(cases)} texts ({truncated} truncated at 77), {len(decodes)} decode cases")


if __name__ == "__main__":
    main()
