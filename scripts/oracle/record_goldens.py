"""Record reference outputs of the tiny Gemma 4 bundles with mlx-vlm on MLX's CPU backend.

For every bundle in BUNDLES this writes to fixtures/goldens/:
  <bundle>.seq<L>.native.npy   float32 [L, vocab]: teacher-forced logits of one forward pass over
                               the whole sequence, model as mlx-vlm loads it (16-bit activations)
  <bundle>.seq<L>.f32.npy      the same with every floating parameter upcast to float32 first
                               (quantized weights and uint8 scales unchanged, so the same math)
  <bundle>.greedy.json         64 greedy tokens after the 9- and 45-token prompts from mlx-vlm's
                               generate_step (KV cache, temperature 0), native and f32, with the
                               top-2 logit margin of every step
  <bundle>.seq9.f32.<name>.npy intermediate activations of the f32 run for the 9-token sequence:
                               embed [L, hidden], per_layer_inputs [L, layers, ple],
                               layer<i> [L, hidden] (decoder layer i output)
and fixtures/goldens/manifest.json with package versions, the seed, the token sequences and the
sha256 of every file of every generated bundle. Run make_fixtures.py first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import mlx.core as mx

# The goldens are defined as MLX CPU results; select the device before mlx-vlm creates its streams.
mx.set_default_device(mx.cpu)

import numpy as np  # noqa: E402
from mlx.utils import tree_map  # noqa: E402
from mlx_vlm.generate.ar import generate_step  # noqa: E402
from mlx_vlm.utils import load_model  # noqa: E402

SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent.parent
sys.path.insert(0, str(SCRIPT_DIR))

import make_fixtures  # noqa: E402

BUNDLES = ("tiny-hf", "tiny-mlxvlm", "tiny-affine", "tiny-affine8")
SEQUENCE_LENGTHS = (1, 9, 45, 100)
GREEDY_PROMPT_LENGTHS = (9, 45)
GREEDY_STEPS = 64
INTERMEDIATES_LENGTH = 9
# Float32 cached decoding and one float32 forward pass differ only by summation order.
CACHE_TOLERANCE = 1e-3
BOS_ID = 2
PACKAGES = ("mlx", "mlx-cpu", "mlx-vlm", "mlx-lm", "jang", "numpy", "safetensors", "tokenizers",
            "transformers", "jinja2")


def token_sequences(vocab_size: int, excluded_ids: set[int]) -> dict[int, list[int]]:
    """Draw the fixed test sequences: BOS, then ids from the vocabulary.

    Sequences are prefixes of one draw, so the shorter goldens are checks on the longer ones too.
    The multimodal placeholder ids are excluded because mlx-vlm zeroes their per-layer inputs.
    """
    rng = np.random.default_rng(make_fixtures.SEED)
    allowed = np.array([i for i in range(3, vocab_size) if i not in excluded_ids])
    body = rng.choice(allowed, size=max(SEQUENCE_LENGTHS) - 1).tolist()
    return {length: [BOS_ID] + body[: length - 1] for length in SEQUENCE_LENGTHS}


def upcast_to_float32(model) -> None:
    """Upcast every floating parameter to float32 in place; integer (quantized) tensors stay."""

    def upcast(value):
        if isinstance(value, mx.array) and mx.issubdtype(value.dtype, mx.floating):
            return value.astype(mx.float32)
        return value

    model.update(tree_map(upcast, model.parameters()))
    mx.eval(model.parameters())


def forward_logits(model, ids: list[int]) -> np.ndarray:
    output = model(mx.array([ids]))
    logits = output.logits[0].astype(mx.float32)
    mx.eval(logits)
    return np.array(logits)


def top2_margin(values: np.ndarray) -> float:
    first, second = np.sort(values.astype(np.float64))[-2:][::-1]
    return float(first - second)


def greedy_continuation(model, prompt: list[int]) -> tuple[dict, np.ndarray]:
    """Generate GREEDY_STEPS tokens with mlx-vlm's generate_step at temperature 0.

    Returns the golden record and the log-probabilities of every step [steps, vocab]. The margin
    is taken on the log-probabilities, which differ from the logits by a constant per step, so it
    equals the top-2 logit margin.
    """
    tokens = []
    margins = []
    step_logprobs = []
    steps = generate_step(mx.array([prompt]), model, None, None, max_tokens=GREEDY_STEPS,
                          temperature=0.0)
    for token, logprobs in steps:
        logprobs_np = np.array(logprobs.astype(mx.float32)).reshape(-1)
        tokens.append(int(token.item() if hasattr(token, "item") else token))
        margins.append(round(top2_margin(logprobs_np), 6))
        step_logprobs.append(logprobs_np)
        if len(tokens) == GREEDY_STEPS:
            break
    return {"tokens": tokens, "top2_margin": margins}, np.stack(step_logprobs)


def cache_mismatch(model, prompt: list[int], tokens: list[int], step_logprobs: np.ndarray) -> float:
    """Return the max |difference| between the cached decode's log-probabilities and those of
    one teacher-forced pass over prompt + tokens.

    A large value means mlx-vlm's KV-cache path (ring buffer for sliding layers, shared KV) and
    its one-pass path (windowed mask) disagree, so the goldens would contradict each other.
    """
    logits = forward_logits(model, prompt + tokens[:-1])[len(prompt) - 1:].astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    logprobs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(np.abs(logprobs - step_logprobs).max())


def save_intermediates(model, ids: list[int], prefix: Path) -> list[Path]:
    """Save the embedding output, the combined per-layer inputs and every decoder layer output."""
    input_ids = mx.array([ids])
    text_model = model.language_model.model
    features = model.get_input_embeddings(input_ids=input_ids)
    per_layer_inputs = text_model.project_per_layer_inputs(
        features.inputs_embeds, features.per_layer_inputs
    )
    hidden_sink: list = []
    model(input_ids, capture_layer_ids=list(range(len(text_model.layers))),
          hidden_sink=hidden_sink)

    arrays = {"embed": features.inputs_embeds[0], "per_layer_inputs": per_layer_inputs[0]}
    for index, hidden in enumerate(hidden_sink):
        arrays[f"layer{index}"] = hidden[0]
    written = []
    for name, array in arrays.items():
        path = prefix.with_name(f"{prefix.name}.{name}.npy")
        np.save(path, np.array(array.astype(mx.float32)))
        written.append(path)
    return written


def record_bundle(bundle_dir: Path, goldens_dir: Path, sequences: dict[int, list[int]],
                  placeholders: set[int]) -> dict:
    """Record every golden of one bundle; return the greedy results for the report."""
    name = bundle_dir.name
    greedy: dict = {"steps": GREEDY_STEPS, "runs": []}
    runs_by_length = {length: {"prompt_length": length, "prompt_ids": sequences[length]}
                      for length in GREEDY_PROMPT_LENGTHS}

    for variant in ("native", "f32"):
        model = load_model(bundle_dir)
        if variant == "f32":
            upcast_to_float32(model)
        for length, ids in sequences.items():
            np.save(goldens_dir / f"{name}.seq{length}.{variant}.npy", forward_logits(model, ids))
        for length in GREEDY_PROMPT_LENGTHS:
            record, step_logprobs = greedy_continuation(model, sequences[length])
            hit = sorted(set(record["tokens"]) & placeholders)
            if hit:
                raise RuntimeError(f"{name} {variant}: greedy run after {length} tokens emits "
                                   f"placeholder ids {hit}; mlx-vlm decodes them unlike its "
                                   "forward pass, so change the seed")
            if variant == "f32":
                mismatch = cache_mismatch(model, sequences[length], record["tokens"],
                                          step_logprobs)
                if mismatch > CACHE_TOLERANCE:
                    raise RuntimeError(f"{name}: cached decode after {length} tokens differs from "
                                       f"one forward pass by {mismatch:.3g} in log-probability")
            runs_by_length[length][variant] = record
        if variant == "f32":
            save_intermediates(model, sequences[INTERMEDIATES_LENGTH],
                               goldens_dir / f"{name}.seq{INTERMEDIATES_LENGTH}.f32")

    greedy["runs"] = [runs_by_length[length] for length in GREEDY_PROMPT_LENGTHS]
    (goldens_dir / f"{name}.greedy.json").write_text(json.dumps(greedy, indent=1) + "\n",
                                                     encoding="utf-8")
    return greedy


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(generated_dir: Path, goldens_dir: Path, sequences: dict[int, list[int]]) -> None:
    bundles = {}
    for bundle_dir in sorted(path for path in generated_dir.iterdir() if path.is_dir()):
        bundles[bundle_dir.name] = make_fixtures.bundle_sha256(bundle_dir)
    goldens = {
        path.name: file_sha256(path)
        for path in sorted(goldens_dir.iterdir())
        if path.is_file() and path.name != "manifest.json"
    }
    manifest = {
        "generator": "scripts/oracle/make_fixtures.py + scripts/oracle/record_goldens.py",
        "device": "mlx cpu",
        "packages": package_versions(),
        "seed": make_fixtures.SEED,
        "sequences": {f"seq{length}": ids for length, ids in sequences.items()},
        "greedy_steps": GREEDY_STEPS,
        "greedy_prompts": [f"seq{length}" for length in GREEDY_PROMPT_LENGTHS],
        "bundles": bundles,
        "goldens": goldens,
    }
    (goldens_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n",
                                               encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=Path, default=REPO_ROOT / "fixtures" / "generated",
                        help="folder with the bundles written by make_fixtures.py")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "fixtures" / "goldens",
                        help="folder that receives the goldens")
    args = parser.parse_args()

    missing = [name for name in BUNDLES if not (args.generated / name / "config.json").exists()]
    if missing:
        raise SystemExit(f"bundles not found in {args.generated}: {', '.join(missing)}; "
                         "run scripts/make_fixtures.sh first")

    config = json.loads((args.generated / BUNDLES[0] / "config.json").read_text(encoding="utf-8"))
    excluded = {config["image_token_id"], config["audio_token_id"], config["video_token_id"]}
    sequences = token_sequences(config["text_config"]["vocab_size"], excluded)

    args.out.mkdir(parents=True, exist_ok=True)
    for stale in args.out.glob("tiny-*"):
        stale.unlink()

    for name in BUNDLES:
        started = time.monotonic()
        greedy = record_bundle(args.generated / name, args.out, sequences, excluded)
        margins = [margin for run in greedy["runs"] for margin in run["f32"]["top2_margin"]]
        agree = [run["native"]["tokens"] == run["f32"]["tokens"] for run in greedy["runs"]]
        print(f"{name}: {time.monotonic() - started:.1f} s, f32 top-2 margin "
              f"min {min(margins):.4f} median {np.median(margins):.4f}, "
              f"native greedy equals f32 greedy: {agree}")

    write_manifest(args.generated, args.out, sequences)


if __name__ == "__main__":
    main()
