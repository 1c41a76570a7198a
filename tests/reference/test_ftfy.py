#!/usr/bin/env python3
"""libclip's text repair and CLIP BPE against ftfy 6.3.1 and open_clip's SimpleTokenizer themselves (issue 18).

Four corpora, made here from fixed seeds:
  ftfy-cases  ftfy's own test cases (tests/data/ftfy_test_cases.json, from ftfy's repository at v6.3.1), the
              originals and their fixed forms;
  mojibake    real text in twelve languages turned into mojibake: UTF-8 bytes read as each of ftfy's ten
              single-byte codecs and as strict cp1252 with U+FFFD, once and twice, with no-break spaces lost,
              and mixed with correct text and with mojibake of another codec;
  configs     every class name and template of configs/ (templates filled with a class name);
  edge        nested entities, utf-8-variants' end-of-text quirks, control characters and terminal escapes,
              characters newer than the interpreter's Unicode among combining marks (from a review);
  random      random Unicode mixtures of the characters ftfy's heuristic looks at and of eight other blocks,
              random bytes read as a random codec, and random text mis-decoded piecewise.
For every text, four things must be identical: ftfy.badness.is_bad, ftfy.fix_encoding, ftfy.fix_text (each
against tests/reference/text_probe.cpp, which calls libclip's port) and the token ids of open_clip's
SimpleTokenizer (ftfy.fix_text + basic_clean + whitespace_clean + lower, then the BPE) against clip_tokenize.
Exits 1 on any difference, printing each (up to --show per corpus and check).

Also reported, not checked: HF transformers' CLIPTokenizer on the same texts, built from the same vocabulary and
merges (in transformers 5 CLIPTokenizerFast is the same class: the `tokenizers` library with NFC, \s+ -> " " and
lowercasing, no ftfy and no HTML unescaping), counted where its ids differ from openai/CLIP's; docs/tokenizer.md
records the counts. libclip follows openai/CLIP.

Run by ctest (reference.ftfy) in builds configured with the reference environment (CLIP_TORCH=pip, scripts/venv);
by hand: $(scripts/venv)/bin/python tests/reference/test_ftfy.py --probe build-torch2/bin/clip_text_probe \
          --tokenize build-torch2/bin/clip_tokenize
"""
import argparse
import codecs
import glob
import json
import os
import random
import re
import subprocess
import sys
import time

import ftfy
import ftfy.bad_codecs  # noqa: F401 (registers the sloppy codecs)
from ftfy import badness, chardata
from open_clip.tokenizer import SimpleTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PHRASES = [
    "café crème brûlée", "naïve résumé for the fiancée", "Straße in Zürich", "São Paulo e Brasília à noite",
    "Kraków, Łódź i Gdańsk", "Ελληνικά γράμματα", "русский язык и литература", "日本語のテキスト",
    "中文字符和标点。", "한국어 문장입니다", "Türkçe ağaç ışık", "Čeština a slovenčina", "Lietuvių kalba",
    "Tiếng Việt có dấu", "العربية الفصحى", "עברית מודרנית", "“curly quotes” and ‘single’ ones", "it’s 100 €",
    "mañana — pronto…", "coöperate • naïveté", "½ cup of 25° water", "© 2024 ™ ® §3 ¶2", "emoji 😀 🎉 👍🏽",
    "Ñandú and jalapeño", "Ærøskøbing og Åbenrå", "Þórsmörk í Íslandi", "İstanbul’da bir gün", "Zażółć gęślą jaźń",
    "Dvořák’s symphony", "Ångström unit", "a photo of a café", "the mosaic of Hagia Sophia (Ἁγία Σοφία)",
    "pesé 5 kg à 10 h", "Gàidhlig", "français, déjà vu", "Großes Öl-Gemälde", "crème fraîche à la carte",
]

ENCODINGS = list(chardata.CHARMAP_ENCODINGS)


def mis_decode(text, encoding, rounds=1):
    for _ in range(rounds):
        if encoding == "cp1252-replace":
            text = text.encode("utf-8").decode("cp1252", errors="replace")
        else:
            text = text.encode("utf-8").decode(encoding)
    return text


def ftfy_cases():
    with open(os.path.join(ROOT, "tests", "data", "ftfy_test_cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    texts = []
    for case in cases:
        texts.append(case["original"])
        texts.append(case["fixed"])
        if "fixed-encoding" in case:
            texts.append(case["fixed-encoding"])
    return texts


def mojibake(rng):
    texts = []
    codecs_all = ENCODINGS + ["cp1252-replace"]
    for phrase in PHRASES:
        for enc in codecs_all:
            for rounds in (1, 2):
                try:
                    bad = mis_decode(phrase, enc, rounds)
                except UnicodeDecodeError:
                    continue
                texts.append(bad)
                texts.append("A photo of " + bad + ".")
                texts.append(bad.replace("\u00a0", " "))
                other = rng.choice(PHRASES)
                texts.append(other + " / " + bad)
                enc2 = rng.choice(codecs_all)
                try:
                    texts.append(bad + " " + mis_decode(other, enc2))
                except UnicodeDecodeError:
                    pass
                texts.append(bad + "\n" + other + "\n")
    return texts


def config_texts():
    texts = []
    with open(os.path.join(ROOT, "configs", "classes", "imagenet.txt"), encoding="utf-8") as f:
        classes = [line.rstrip("\n") for line in f if line.strip()]
    texts += classes
    for path in sorted(glob.glob(os.path.join(ROOT, "configs", "templates", "*.json"))):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        # A class may be a list of synonyms.
        names = [n for c in data.get("classes", []) for n in (c if isinstance(c, list) else [c])]
        texts += names
        for i, template in enumerate(data.get("templates", [])):
            texts.append(template.format(names[i % len(names)] if names else "thing"))
    return texts


def edge_texts(rng):
    """Corners found in review: nested entities, ftfy's `$` quirks in utf-8-variants, control characters and
    terminal escapes with digits of any script, characters newer than the interpreter's Unicode."""
    texts = ["&amp;" + "amp;" * n for n in range(0, 60, 3)]
    texts += ["a" * n + "&amp;" + "amp;" * n + " x" for n in range(0, 40, 4)]
    texts += ["Ã©À\n", "Ã©À", "Ã©À\nx", "Ã©í\xa0½í¸\n", "Ã©í\xa0½í¸¶", "Ã©í\xa0½", "Ã©í\n",
              "\x1b[31mred\x1b[0m", "\x1b[\U00011F50m", "\x1b[\U0001E4F0mx", "\x1b[٣;۴mx", "a\r\nb\rc\u2028d\u2029e",
              "a\U0001E4EE\u0301", "e\U00011F41\u0301x", "\u0130\U0001E4D0\u03a3", "\u03a3\U0001E4D0"]
    # Unicode 15+ letters, marks and digits among C0 controls, escapes and combining marks.
    newer = [chr(c) for c in list(range(0x11F00, 0x11F5A)) + list(range(0x1E4D0, 0x1E4FA)) + list(range(0x1E030, 0x1E090))]
    bits = newer + ["\u0301", "\u0323", "\u0345", "\x1b[", ";", "1", "m", "\r", "\x00", "\x07", "\x1a", "\x7f",
                    "A", "Σ", "ς", "é", "Ã", "©", " ", "\n"]
    for _ in range(3000):
        texts.append("".join(rng.choice(bits) for _ in range(rng.randint(1, 20))))
    return texts


def random_texts(rng, count):
    # Characters ftfy's categories name, the windows-1252 specials, C1 controls, box drawing, and other blocks.
    classes = [re.compile("[" + chars + "]") for chars in
               list(badness.MOJIBAKE_CATEGORIES.values()) + list(chardata.UTF8_CLUES.values())]
    heuristic = [chr(c) for c in range(0x20, 0x3000) if any(k.match(chr(c)) for k in classes)]
    pools = [
        [chr(c) for c in range(0x20, 0x7F)],
        heuristic,
        [chr(c) for c in range(0x80, 0x250)],
        [chr(c) for c in range(0x370, 0x500)],
        [chr(c) for c in range(0x2000, 0x2070)] + [chr(c) for c in range(0x2500, 0x2580)],
        [chr(c) for c in range(0x3040, 0x30FF)] + [chr(c) for c in range(0x4E00, 0x4E80)],
        [chr(c) for c in range(0x1F600, 0x1F650)],
        [" ", " ", "\u00a0", "\n", "&", ";", "#", "?"],
    ]
    texts = []
    for k in range(count):
        kind = k % 4
        if kind == 0:  # uniform over the pools
            n = rng.randint(1, 40)
            texts.append("".join(rng.choice(rng.choice(pools)) for _ in range(n)))
        elif kind == 1:  # mostly the characters the heuristic looks at, with ASCII letters and spaces
            n = rng.randint(1, 30)
            texts.append("".join(rng.choice(heuristic) if rng.random() < 0.6 else rng.choice("abcdeAZ .,!")
                                 for _ in range(n)))
        elif kind == 2:  # random bytes read with a random codec
            n = rng.randint(1, 30)
            raw = bytes(rng.choice([rng.randint(0x20, 0x7E), rng.randint(0x80, 0xFF)]) for _ in range(n))
            texts.append(raw.decode(rng.choice(ENCODINGS)))
        else:  # random text whose pieces went through random codecs
            parts = []
            for _ in range(rng.randint(1, 4)):
                piece = "".join(rng.choice(rng.choice(pools[2:7])) for _ in range(rng.randint(1, 6)))
                if rng.random() < 0.7:
                    try:
                        piece = mis_decode(piece, rng.choice(ENCODINGS), rng.choice([1, 1, 2]))
                    except UnicodeDecodeError:
                        pass
                parts.append(piece)
            texts.append(rng.choice([" ", "", "-"]).join(parts))
    return texts


def hf_tokenizer(reference):
    """HF's CLIPTokenizer from open_clip's vocabulary and merges (what the hub's vocab.json and merges.txt hold)."""
    from transformers import CLIPTokenizer

    merges = [tuple(pair) for pair, _ in sorted(reference.bpe_ranks.items(), key=lambda item: item[1])]
    return CLIPTokenizer(vocab=dict(reference.encoder), merges=merges)


def transformers_version():
    import transformers

    return transformers.__version__


def run_lines(cmd, lines):
    p = subprocess.run(cmd, input="".join(line + "\n" for line in lines).encode("utf-8"), capture_output=True)
    if p.returncode != 0:
        sys.exit("test_ftfy: %s exited %d: %s" % (" ".join(cmd), p.returncode, p.stderr.decode()[-500:]))
    out = p.stdout.decode("utf-8").split("\n")[:-1]  # not splitlines(): U+2028, U+0085 ... are in texts
    if len(out) != len(lines):
        sys.exit("test_ftfy: %s wrote %d lines for %d texts" % (cmd[0], len(out), len(lines)))
    return [json.loads(line) for line in out]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--probe", required=True, help="clip_text_probe")
    ap.add_argument("--tokenize", required=True, help="clip_tokenize")
    ap.add_argument("--random", type=int, default=100000, help="random texts (default 100000)")
    ap.add_argument("--show", type=int, default=5, help="differences printed per corpus and check")
    args = ap.parse_args()
    start = time.time()
    rng = random.Random(18)
    corpora = {
        "ftfy-cases": ftfy_cases(),
        "mojibake": mojibake(rng),
        "configs": config_texts(),
        "edge": edge_texts(rng),
        "random": random_texts(rng, args.random),
    }
    texts, owner = [], []
    for name, items in corpora.items():
        texts += items
        owner += [name] * len(items)
    print("test_ftfy: ftfy %s; %d texts (%s)" % (ftfy.__version__, len(texts),
          ", ".join("%s %d" % (k, len(v)) for k, v in corpora.items())))

    probe = run_lines([args.probe], [json.dumps(t) for t in texts])
    ours_ids = run_lines([args.tokenize, "--truncate", "--context-length", "1000000"],
                         [json.dumps({"text": t}) for t in texts])
    tokenizer = SimpleTokenizer()
    checks = {
        "is_bad": (lambda t: badness.is_bad(t), lambda i: probe[i].get("bad")),
        "fix_encoding": (ftfy.fix_encoding, lambda i: probe[i].get("encoding")),
        "fix_text": (ftfy.fix_text, lambda i: probe[i].get("text")),
        "token ids": (tokenizer.encode, lambda i: ours_ids[i].get("bpe")),
    }
    hf = hf_tokenizer(tokenizer)
    hf_ids = hf(texts, add_special_tokens=False)["input_ids"]
    failures = 0
    table = {name: {check: 0 for check in checks} for name in corpora}
    shown = {}
    for i, text in enumerate(texts):
        if "error" in probe[i]:
            print("  %s: probe error on %r: %s" % (owner[i], text, probe[i]["error"]))
            failures += 1
            continue
        for check, (reference, ours) in checks.items():
            want, got = reference(text), ours(i)
            if want != got:
                table[owner[i]][check] += 1
                failures += 1
                key = (owner[i], check)
                shown[key] = shown.get(key, 0) + 1
                if shown[key] <= args.show:
                    print("  %s / %s differs on %r:\n    ftfy/open_clip %r\n    libclip        %r"
                          % (owner[i], check, text, want, got))
    hf_table = {name: 0 for name in corpora}
    hf_untouched = [0, 0]  # texts ftfy leaves alone: [count, HF differs]
    hf_shown = 0
    for i, text in enumerate(texts):
        want = checks["token ids"][0](text)
        untouched = ftfy.fix_text(text) == text
        hf_untouched[0] += untouched
        if hf_ids[i] != want:
            hf_untouched[1] += untouched
            hf_table[owner[i]] += 1
            hf_shown += 1
            if hf_shown <= args.show:
                print("  HF CLIPTokenizer differs from openai/CLIP on %r:\n    openai/CLIP %r\n    HF          %r"
                      % (text, want, hf_ids[i]))
    print("test_ftfy: HF transformers %s CLIPTokenizer (%s) differs from openai/CLIP on: %s (reported, not checked)"
          % (transformers_version(), type(hf).__name__,
             ", ".join("%s %d of %d" % (k, hf_table[k], len(v)) for k, v in corpora.items())))
    print("test_ftfy: ... of them on texts ftfy leaves unchanged: %d of %d" % (hf_untouched[1], hf_untouched[0]))
    for name, items in corpora.items():
        print("test_ftfy: %-10s %6d texts; differences: %s" % (
            name, len(items), ", ".join("%s %d" % (c, n) for c, n in table[name].items())))
    changed = sum(1 for i, t in enumerate(texts) if probe[i].get("encoding") not in (None, t))
    print("test_ftfy: fix_encoding changed %d of %d texts; %d differences in all; %.0f s"
          % (changed, len(texts), failures, time.time() - start))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
