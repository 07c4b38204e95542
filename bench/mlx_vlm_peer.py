"""Time mlx-vlm on MLX's CPU backend on the same bundle and prompt tokens as `mxgemma bench`.

Prints one JSON object: load time, prefill and decode tokens per second, time to first token.
Prefill is one forward pass over the prompt. Decode is greedy, one token per forward pass, with
mlx-vlm's own KV cache, as its generate loop runs it.
"""

import argparse
import json
import time
from pathlib import Path

import mlx.core as mx

mx.set_default_device(mx.cpu)

from mlx_vlm.utils import load_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--prompt-file", required=True, help="JSON array of prompt token ids")
    parser.add_argument("--decode-tokens", type=int, default=128)
    args = parser.parse_args()

    with open(args.prompt_file, encoding="utf-8") as f:
        prompt = json.load(f)

    started = time.perf_counter()
    model = load_model(Path(args.bundle))
    mx.eval(model.parameters())
    load_seconds = time.perf_counter() - started

    language_model = model.language_model
    cache = language_model.make_cache()
    started = time.perf_counter()
    logits = model(mx.array([prompt]), cache=cache).logits[:, -1, :]
    token = mx.argmax(logits, axis=-1)
    mx.eval(token)
    prefill_seconds = time.perf_counter() - started

    started = time.perf_counter()
    for _ in range(args.decode_tokens):
        logits = language_model(token.reshape(1, 1), cache=cache).logits[:, -1, :]
        token = mx.argmax(logits, axis=-1)
        mx.eval(token)
    decode_seconds = time.perf_counter() - started

    print(json.dumps({
        "load_seconds": load_seconds,
        "prefill_tokens_per_second": len(prompt) / prefill_seconds,
        "time_to_first_token_seconds": prefill_seconds,
        "decode_tokens_per_second": args.decode_tokens / decode_seconds,
    }))


if __name__ == "__main__":
    main()
