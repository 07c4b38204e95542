"""Build a small BPE tokenizer.json with the structure of Gemma's tokenizer.

Gemma 4's tokenizer (transformers v5 GemmaTokenizer) is a BPE model with byte_fallback and fuse_unk,
a Replace(" " -> "▁") normalizer, a Split(" ", merged_with_previous) pre-tokenizer and a
Sequence[Replace("▁" -> " "), ByteFallback, Fuse] decoder. This module keeps that structure and
shrinks the vocabulary so that a test bundle stays small: the five base tokens, the Gemma 4 special
tokens, the 256 byte-fallback tokens and merges learned from a short English corpus.
"""

from __future__ import annotations

import json

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers
from tokenizers import processors, trainers

BASE_TOKENS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]

# Gemma 4 special tokens, in the order of their ids in the 262144-entry vocabulary (tool tokens
# 46-52, <|think|> 98, channel 100/101, turn 105/106, <|image> 255999, <|audio> 256000 and the
# placeholders 258880-258884), so that the tiny ids keep the same relative order.
GEMMA4_SPECIAL_TOKENS = [
    "<|tool>",
    "<tool|>",
    "<|tool_call>",
    "<tool_call|>",
    "<|tool_response>",
    "<tool_response|>",
    '<|"|>',
    "<|think|>",
    "<|channel>",
    "<channel|>",
    "<|turn>",
    "<turn|>",
    "<|image>",
    "<|audio>",
    "<|image|>",
    "<|audio|>",
    "<image|>",
    "<audio|>",
    "<|video|>",
]

BYTE_TOKENS = [f"<0x{value:02X}>" for value in range(256)]


def special_token_ids() -> dict[str, int]:
    """Map every base and Gemma 4 special token string to its id in the tiny vocabulary."""
    names = BASE_TOKENS + GEMMA4_SPECIAL_TOKENS
    return {name: index for index, name in enumerate(names)}


def _train_merges(corpus: str, learned_size: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Train a BPE model on `corpus` and return its learned tokens (id order) and merges."""
    trainer_model = Tokenizer(models.BPE())
    trainer_model.normalizer = normalizers.Replace(" ", "▁")
    # Training splits before each "▁" so that merges stay inside words, which gives word-like tokens.
    # The saved tokenizer uses Gemma's own no-op Split, and BPE applies the same merges either way.
    trainer_model.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    trainer = trainers.BpeTrainer(vocab_size=learned_size, show_progress=False)
    trainer_model.train_from_iterator(corpus.splitlines(keepends=True), trainer=trainer)

    trained = json.loads(trainer_model.to_str())
    vocab = trained["model"]["vocab"]
    tokens = sorted(vocab, key=lambda token: vocab[token])
    merges = [tuple(pair) if isinstance(pair, list) else tuple(pair.split(" ", 1))
              for pair in trained["model"]["merges"]]
    return tokens, merges


def build_tokenizer(corpus: str, vocab_size: int) -> Tokenizer:
    """Build the tokenizer: base tokens, special tokens, byte tokens, then learned BPE tokens.

    Raises ValueError when `vocab_size` leaves no room for learned tokens or when training cannot
    fill the vocabulary exactly (the embedding tables are sized by `vocab_size`).
    """
    fixed = BASE_TOKENS + GEMMA4_SPECIAL_TOKENS + BYTE_TOKENS
    learned_size = vocab_size - len(fixed)
    if learned_size <= 0:
        raise ValueError(f"vocab_size {vocab_size} is too small: {len(fixed)} ids are fixed")

    learned_tokens, merges = _train_merges(corpus, learned_size)
    if len(learned_tokens) != learned_size:
        raise ValueError(
            f"BPE training produced {len(learned_tokens)} tokens, expected {learned_size}; "
            "use a longer corpus"
        )

    vocab = {token: index for index, token in enumerate(fixed + learned_tokens)}
    if len(vocab) != vocab_size:
        raise ValueError("a learned token repeats a fixed token; rename the fixed token")

    tokenizer = Tokenizer(
        models.BPE(
            vocab=vocab,
            merges=merges,
            unk_token="<unk>",
            fuse_unk=True,
            byte_fallback=True,
        )
    )
    tokenizer.normalizer = normalizers.Replace(" ", "▁")
    tokenizer.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous")
    tokenizer.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    # transformers v5 saves GemmaTokenizer (add_bos_token=False) with this template, which adds no
    # BOS: the chat template writes <bos> itself.
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A:0", pair="$A:0 $B:1", special_tokens=[]
    )
    tokenizer.add_special_tokens(
        [
            AddedToken(name, single_word=False, lstrip=False, rstrip=False, normalized=False,
                       special=True)
            for name in BASE_TOKENS + GEMMA4_SPECIAL_TOKENS
        ]
    )
    return tokenizer


def pad_vocabulary(tokenizer_json: dict, vocab_size: int) -> dict:
    """Append `<unused{i}>` tokens until the BPE vocabulary has `vocab_size` entries.

    Used by the full-size fixture, whose embedding tables have 262144 rows.
    """
    vocab = tokenizer_json["model"]["vocab"]
    next_id = len(vocab)
    unused_index = 0
    while next_id < vocab_size:
        vocab[f"<unused{unused_index}>"] = next_id
        next_id += 1
        unused_index += 1
    return tokenizer_json
