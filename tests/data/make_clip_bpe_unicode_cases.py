#!/usr/bin/env python3
# Writes tests/data/clip_bpe_unicode_cases.jsonl (committed; rerun only to change it): random texts built from the
# characters where a port of the CLIP tokenizer goes wrong (Unicode whitespace of both kinds, U+0345, long s,
# Final_Sigma, dotted capital I, combining marks, emoji, HTML references of every form, special tokens,
# contractions, long words), run through openai/CLIP's SimpleTokenizer algorithm as published (MIT) minus
# ftfy.fix_text, which is not installed here: so `clean` is whitespace_clean(basic_clean(text)).lower() without
# ftfy, and libclip is compared with ClipBpeOptions::fix_text = false.
# Needs the `regex` module, as the reference: python3 tests/data/make_clip_bpe_unicode_cases.py
import gzip
import html
import json
import os
import random
import sys

import regex as re

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB = os.path.join(HERE, "..", "..", "third_party", "clip_bpe", "bpe_simple_vocab_16e6.txt.gz")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


class SimpleTokenizer:
    def __init__(self, path):
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        merges = gzip.open(path).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
        merges = [tuple(m.split()) for m in merges]
        vocab = list(self.byte_encoder.values())
        vocab = vocab + [v + "</w>" for v in vocab]
        vocab += ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = dict(zip(vocab, range(len(vocab))))
        self.decoder = {v: k for k, v in self.encoder.items()}
        self.bpe_ranks = dict(zip(merges, range(len(merges))))
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
        self.pat = re.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                              re.IGNORECASE)

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = set(zip(word, word[1:]))
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                    new_word.extend(word[i:j])
                    i = j
                except ValueError:
                    new_word.extend(word[i:])
                    break
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = set(zip(word, word[1:]))
        word = " ".join(word)
        self.cache[token] = word
        return word

    @staticmethod
    def clean(text):
        text = html.unescape(html.unescape(text)).strip()  # basic_clean without ftfy.fix_text
        text = re.sub(r"\s+", " ", text).strip()  # whitespace_clean
        return text.lower()

    def encode(self, text):
        ids = []
        for token in re.findall(self.pat, self.clean(text)):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(token).split(" "))
        return ids

    def decode(self, ids):
        text = "".join(self.decoder[i] for i in ids)
        return bytearray([self.byte_decoder[c] for c in text]).decode("utf-8", errors="replace").replace("</w>", " ")


POOL = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") * 3
        + list(" \t\n\r\f\v.,;:!?'\"()[]{}<>|/\\-_+=*&#@$%^~`") * 2
        + list("\x1c\x1d\x1e\x1f\x00\x01\x7f\x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000\u200b\u180e\ufeff")
        + list("éèêëÉÀÇçñÑßøØåÅæÆœŒÿŸİıſ\u0345\u0301\u0300\u0308ΣσςΑΩωάΐДЖщЫ")
        + list("東京タワーの写真한국어ไทยاردو१२३٣½²Ⅷⅷ①")
        + ["🐱", "👍🏽", "🇫🇷", "\U0001F9D1\u200d\U0001F4BB"]
        + list("\u2018\u2019\u201c\u201d\u02bc\uff21\uff41\uff11\ufb01\u0132")
        + ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#x41;", "&#X2019;", "&#0;", "&#128;", "&#150;", "&#x110000;",
           "&#55296;", "&#1;", "&#65535;", "&nbsp;", "&not", "&notit;", "&ampx", "&AMP;", "&Amp;", "&amp", "&eacute",
           "&EACUTE;", "&#59;", "&#;", "&#x;", "&copy", "&copysr;", "&lt", "&amp;amp;", "&&", "&#9999999999999999999;",
           "<|startoftext|>", "<|endoftext|>", "<|STARTOFTEXT|>", "<|ſtartoftext|>", "'s", "'S", "'ſ", "'re", "'LL",
           "'d", "&" + "a" * 40, "don't", "it's", "x" * 50, "supercalifragilisticexpialidocious", "ΣΑΣ", "ΌΣΟΣ ",
           "İstanbul"])


def main():
    tokenizer = SimpleTokenizer(VOCAB)
    rng = random.Random(20240531)
    out = os.path.join(HERE, "clip_bpe_unicode_cases.jsonl")
    with open(out, "w") as f:
        for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 600):
            text = "".join(rng.choice(POOL) for _ in range(rng.choice([1, 2, 3, 5, 8, 13, 30, 80])))
            if rng.random() < 0.05:  # long single words: the merge loop's worst case
                text = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.choice([40, 100, 300, 1000])))
            ids = tokenizer.encode(text)
            case = {"text": text, "clean": tokenizer.clean(text), "bpe": ids, "decoded": tokenizer.decode(ids)}
            f.write(json.dumps(case) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
