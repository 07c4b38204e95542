"""Record mlx-lm goldens for the gemma3_text decoder: the real Gemma 3 270M bundle and a tiny one.

Usage:
  record_gemma3_goldens.py real [BUNDLE]   BUNDLE defaults to models/gemma3-270m, which
                                           scripts/fetch_real_model.sh makes. Writes
                                           fixtures/goldens/gemma3_270m/greedy.json.
  record_gemma3_goldens.py tiny            Reads fixtures/generated/tiny-gemma3 (made by
                                           scripts/oracle/make_fixtures.py) and writes
                                           fixtures/goldens/tiny-gemma3.*.

Both run mlx-lm (mlx_lm.load, generate_step) on MLX's CPU backend. "f32" runs upcast every floating
parameter to float32 first, so they differ from mxgemma's fp32 decoder only by summation order;
"native" runs keep the bundle's float16 activations, as users of mlx-lm get them.

greedy.json of the real model holds, per prompt: the prompt, the chat-template text and its token
ids (HF tokenizers), and for each run the greedy token ids, their text and the top-2 logit margin
of every step. A step with a small margin may flip under a different summation order, so a test
may accept a divergence that starts at such a step. The file also records a fingerprint of every
tensor of the bundle (see tensor_fingerprint) so a test can tell it runs on another bundle.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent.parent
GOLDENS_DIR = REPO_ROOT / "fixtures" / "goldens"

REAL_PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List three primary colors.",
    "Explain photosynthesis in one sentence.",
    "Translate 'good morning' into Spanish.",
]
REAL_NEW_TOKENS = 32

# The tiny model's window is 8, so 40 teacher-forced tokens and a 12-token prompt with 20 greedy
# steps cross it many times, in prefill and in decoding.
TINY_FORCED_LENGTH = 40
TINY_PROMPT_LENGTH = 12
TINY_NEW_TOKENS = 20
TINY_SEED = 20261204

MASK64 = (1 << 64) - 1


def tensor_fingerprint(data: bytes) -> str:
    """Return sum_i w_i * (2i + 1) mod 2^64 in hex, w_i the little-endian 64-bit words of `data`
    zero-padded to a multiple of 8 bytes. Position-weighted, so moved bytes change it too."""
    padded = data + b"\0" * (-len(data) % 8)
    words = np.frombuffer(padded, dtype="<u8")
    weights = np.arange(words.size, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    with np.errstate(over="ignore"):
        total = int(np.sum(words * weights, dtype=np.uint64)) & MASK64
    return f"{total:016x}"


def bundle_fingerprints(bundle: Path) -> dict[str, str]:
    """Fingerprint every tensor of every *.safetensors file of `bundle`, by tensor name."""
    fingerprints = {}
    for shard in sorted(bundle.glob("*.safetensors")):
        raw = shard.read_bytes()
        header_length = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8 : 8 + header_length])
        base = 8 + header_length
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            begin, end = entry["data_offsets"]
            fingerprints[name] = tensor_fingerprint(raw[base + begin : base + end])
    return dict(sorted(fingerprints.items()))


def upcast_to_float32(model) -> None:
    """Upcast every floating parameter to float32 in place; quantized (integer) tensors stay."""
    import mlx.core as mx
    from mlx.utils import tree_map

    def upcast(value):
        if isinstance(value, mx.array) and mx.issubdtype(value.dtype, mx.floating):
            return value.astype(mx.float32)
        return value

    model.update(tree_map(upcast, model.parameters()))


def greedy(model, prompt_ids: list[int], max_tokens: int, eos_ids: set[int]) -> dict:
    """Greedy-decode with mlx-lm's generate_step; stop after max_tokens or an eos id."""
    import mlx.core as mx
    from mlx_lm.generate import generate_step

    tokens, margins = [], []
    sampler = lambda logprobs: mx.argmax(logprobs, axis=-1)  # noqa: E731
    for token, logprobs in generate_step(
        mx.array(prompt_ids), model, max_tokens=max_tokens, sampler=sampler
    ):
        top2 = np.sort(np.array(logprobs.astype(mx.float32)).reshape(-1))[-2:]
        tokens.append(int(token))
        margins.append(round(float(top2[1] - top2[0]), 5))
        if int(token) in eos_ids:
            break
    return {"tokens": tokens, "top2_margin": margins}


def record_real(bundle: Path) -> None:
    import mlx.core as mx
    from mlx_lm import load

    model, tokenizer = load(str(bundle))
    generation = json.loads((bundle / "generation_config.json").read_text(encoding="utf-8"))
    eos_ids = set(generation["eos_token_id"])

    prompts = []
    for prompt in REAL_PROMPTS:
        messages = [{"role": "user", "content": prompt}]
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        # The chat template writes <bos> itself.
        ids = tokenizer.encode(text, add_special_tokens=False)
        prompts.append({"prompt": prompt, "prompt_text": text, "prompt_ids": ids, "runs": {}})

    for variant in ("native", "f32"):
        if variant == "f32":
            upcast_to_float32(model)
        for entry in prompts:
            run = greedy(model, entry["prompt_ids"], REAL_NEW_TOKENS, eos_ids)
            run["text"] = tokenizer.decode(run["tokens"])
            entry["runs"][variant] = run
            mx.clear_cache()

    out = {
        "bundle": str(bundle.relative_to(REPO_ROOT)) if bundle.is_relative_to(REPO_ROOT) else str(bundle),
        "recorded_with": "mlx-lm 0.32.2, mlx 0.32.4 (CPU backend), greedy generate_step",
        "new_tokens": REAL_NEW_TOKENS,
        "eos_token_ids": sorted(eos_ids),
        "prompts": prompts,
        "tensor_fingerprints": bundle_fingerprints(bundle),
    }
    out_dir = GOLDENS_DIR / "gemma3_270m"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "greedy.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
    for entry in prompts:
        native, f32 = entry["runs"]["native"], entry["runs"]["f32"]
        print(f"{entry['prompt']!r}: f32 {f32['text']!r}; min margin {min(f32['top2_margin'])}; "
              f"native equals f32: {native['tokens'] == f32['tokens']}")


def record_tiny() -> None:
    import mlx.core as mx
    from mlx_lm import load

    bundle = REPO_ROOT / "fixtures" / "generated" / "tiny-gemma3"
    model, _ = load(str(bundle))
    upcast_to_float32(model)
    config = json.loads((bundle / "config.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng(TINY_SEED)
    # Ids from 3 up, so no <pad>, <eos> or <bos> falls inside the sequences.
    forced = [2] + rng.integers(3, config["vocab_size"], TINY_FORCED_LENGTH - 1).tolist()
    prompt = [2] + rng.integers(3, config["vocab_size"], TINY_PROMPT_LENGTH - 1).tolist()

    logits = model(mx.array([forced]))[0].astype(mx.float32)
    np.save(GOLDENS_DIR / f"tiny-gemma3.seq{TINY_FORCED_LENGTH}.f32.npy", np.array(logits))
    run = greedy(model, prompt, TINY_NEW_TOKENS, eos_ids=set())
    out = {
        "bundle": "fixtures/generated/tiny-gemma3",
        "recorded_with": "mlx-lm 0.32.2, mlx 0.32.4 (CPU backend), parameters upcast to float32",
        "forced_ids": forced,
        "prompt_ids": prompt,
        "greedy": run,
        "tensor_fingerprints": bundle_fingerprints(bundle),
    }
    (GOLDENS_DIR / "tiny-gemma3.json").write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"tiny-gemma3: greedy {run['tokens']}, min margin {min(run['top2_margin'])}")


def main() -> None:
    import mlx.core as mx

    mx.set_default_device(mx.cpu)
    if len(sys.argv) >= 2 and sys.argv[1] == "real":
        record_real(Path(sys.argv[2]).resolve() if len(sys.argv) > 2
                    else REPO_ROOT / "models" / "gemma3-270m")
    elif len(sys.argv) == 2 and sys.argv[1] == "tiny":
        record_tiny()
    else:
        raise SystemExit("usage: record_gemma3_goldens.py real [BUNDLE] | tiny")


if __name__ == "__main__":
    main()
