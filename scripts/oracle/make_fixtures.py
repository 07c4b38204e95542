"""Generate the tiny Gemma 4 test bundles (random weights, E2B layout) under fixtures/generated/.

Steps, all seeded and deterministic for pinned package versions (scripts/oracle/requirements.txt):
  1. tiny-source/: a Hugging Face-layout checkpoint (`model.language_model.*` names, PyTorch conv
     layout, float32 values that are exactly representable in bfloat16) with the tokenizer, chat
     template, generation/processor configs.
  2. tiny-hf/: the JANG/Osaurus MXFP4 layout, made by the real converter
     (jang_tools.convert_gemma4_mxfp from PyPI `jang`), then each shard rewritten by
     jang_tools.format.aligned_safetensors as the published bundles are.
  3. tiny-mlxvlm/, tiny-affine/, tiny-affine8/: mlx-vlm's own convert of tiny-source, quantized
     mxfp4 g32, affine 4-bit g64 and affine 8-bit g64. They quantize what the published MXFP4
     bundle quantizes: the decoder Linears, per_layer_model_projection and embed_tokens_per_layer.
     embed_tokens, norms, layer_scalar, the towers and the embedders stay 16-bit.

`--full-size DIR` writes the true E2B config with random weights in the tiny-hf layout instead,
streaming tensor by tensor (see full_size.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent.parent
sys.path.insert(0, str(SCRIPT_DIR))

import gemma4_spec  # noqa: E402
import tiny_tokenizer  # noqa: E402

SEED = 20260412
TINY_VOCAB_SIZE = 512
DATA_DIR = SCRIPT_DIR / "data"
CHAT_TEMPLATE_PATH = DATA_DIR / "chat_template.jinja"
CORPUS_PATH = DATA_DIR / "corpus.txt"

# Names of the named special tokens in tokenizer_config.json, as transformers' Gemma 4 conversion
# script passes them to GemmaTokenizer (Gemma4Processor reads image_token, boi_token, ...).
NAMED_SPECIAL_TOKENS = {
    "image_token": "<|image|>",
    "boi_token": "<|image>",
    "eoi_token": "<image|>",
    "audio_token": "<|audio|>",
    "boa_token": "<|audio>",
    "eoa_token": "<audio|>",
    "sot_token": "<|turn>",
    "eot_token": "<turn|>",
    "soc_token": "<|channel>",
    "eoc_token": "<channel|>",
    "think_token": "<|think|>",
    "escape_token": '<|"|>',
    "str_token": "<|tool_response>",
    "etr_token": "<tool_response|>",
    "stc_token": "<|tool_call>",
    "etc_token": "<tool_call|>",
    "std_token": "<|tool>",
    "etd_token": "<tool|>",
}


def write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def generation_config(token_ids: dict) -> dict:
    """generation_config.json of Gemma 4 E2B-it, with the ids of this bundle's vocabulary."""
    return {
        "bos_token_id": token_ids["<bos>"],
        "do_sample": True,
        "eos_token_id": [
            token_ids["<eos>"],
            token_ids["<turn|>"],
            token_ids["<|tool_response>"],
        ],
        "pad_token_id": token_ids["<pad>"],
        "temperature": 1.0,
        "top_k": 64,
        "top_p": 0.95,
    }


def tokenizer_config(chat_template: str) -> dict:
    config = {
        "add_bos_token": False,
        "add_eos_token": False,
        "backend": "tokenizers",
        "bos_token": "<bos>",
        "chat_template": chat_template,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<eos>",
        "extra_special_tokens": ["<|video|>"],
        "mask_token": "<mask>",
        "model_max_length": 1000000000000000019884624838656,
        "pad_token": "<pad>",
        "padding_side": "left",
        "processor_class": "Gemma4Processor",
        "tokenizer_class": "GemmaTokenizer",
        "unk_token": "<unk>",
    }
    config.update(NAMED_SPECIAL_TOKENS)
    return config


def processor_config(soft_tokens_per_image: int) -> dict:
    """processor_config.json of E2B, with the image soft-token budget of this bundle."""
    return {
        "audio_ms_per_token": 40,
        "audio_seq_length": 750,
        "feature_extractor": {
            "dither": 0.0,
            "feature_extractor_type": "Gemma4AudioFeatureExtractor",
            "feature_size": 128,
            "fft_overdrive": False,
            "frame_length_ms": 20.0,
            "hop_length_ms": 10.0,
            "input_scale_factor": 1.0,
            "max_frequency": 8000.0,
            "mel_floor": 0.001,
            "min_frequency": 0.0,
            "padding_side": "right",
            "padding_value": 0.0,
            "per_bin_mean": None,
            "per_bin_stddev": None,
            "preemphasis": 0.0,
            "preemphasis_htk_flavor": True,
            "return_attention_mask": True,
            "sampling_rate": 16000,
        },
        "image_processor": {
            "do_convert_rgb": True,
            "do_normalize": False,
            "do_rescale": True,
            "do_resize": True,
            "image_mean": [0.0, 0.0, 0.0],
            "image_processor_type": "Gemma4ImageProcessor",
            "image_std": [1.0, 1.0, 1.0],
            "max_soft_tokens": soft_tokens_per_image,
            "patch_size": 16,
            "pooling_kernel_size": 3,
            "resample": 3,
            "rescale_factor": 0.00392156862745098,
        },
        "image_seq_length": soft_tokens_per_image,
        "processor_class": "Gemma4Processor",
        "video_processor": {
            "do_sample_frames": True,
            "max_soft_tokens": 70,
            "num_frames": 32,
            "patch_size": 16,
            "pooling_kernel_size": 3,
            "video_processor_type": "Gemma4VideoProcessor",
        },
    }


def write_sidecars(out_dir: Path, config: dict, token_ids: dict, tokenizer_json: str) -> None:
    """Write config.json and every non-weight file a Gemma 4 checkpoint ships."""
    chat_template = CHAT_TEMPLATE_PATH.read_text(encoding="utf-8")
    write_json(out_dir / "config.json", config)
    write_json(out_dir / "generation_config.json", generation_config(token_ids))
    write_json(out_dir / "tokenizer_config.json", tokenizer_config(chat_template))
    write_json(
        out_dir / "processor_config.json",
        processor_config(config["vision_config"]["default_output_length"]),
    )
    (out_dir / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
    shutil.copyfile(CHAT_TEMPLATE_PATH, out_dir / "chat_template.jinja")


def write_source_checkpoint(out_dir: Path, config: dict) -> None:
    """Write the random Hugging Face-layout weights as one float32 model.safetensors."""
    from safetensors.numpy import save_file

    tensors = {
        spec.name: gemma4_spec.random_tensor(spec, SEED)
        for spec in gemma4_spec.checkpoint_tensors(config)
    }
    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})


def make_source(out_dir: Path) -> None:
    tokenizer = tiny_tokenizer.build_tokenizer(
        CORPUS_PATH.read_text(encoding="utf-8"), TINY_VOCAB_SIZE
    )
    token_ids = tiny_tokenizer.special_token_ids()
    config = gemma4_spec.tiny_config(token_ids)

    reset_dir(out_dir)
    write_sidecars(out_dir, config, token_ids, tokenizer.to_str(pretty=True) + "\n")
    write_source_checkpoint(out_dir, config)


def reset_dir(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


def run_jang_converter(source_dir: Path, out_dir: Path) -> None:
    """Convert with jang_tools.convert_gemma4_mxfp, then align every shard like jangq's writer."""
    from jang_tools.format.aligned_safetensors import (
        rewrite_aligned_safetensors,
        verify_safetensors_alignment,
    )

    reset_dir(out_dir)
    subprocess.run(
        [sys.executable, "-m", "jang_tools.convert_gemma4_mxfp", str(source_dir), str(out_dir)],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    shards = sorted(out_dir.glob("model-*.safetensors"))
    for shard in shards:
        rewrite_aligned_safetensors(shard)
        count, unaligned = verify_safetensors_alignment(shard)
        if unaligned:
            raise RuntimeError(f"{shard}: {unaligned} of {count} tensors unaligned after rewrite")

    # jang 2.5.50 on PyPI neither aligns its shards nor counts the padding in its totals. The jangq
    # converter aligns each shard as it writes it and then sums the aligned files, so the totals
    # are recomputed here.
    import full_size

    index = json.loads((out_dir / "model.safetensors.index.json").read_text(encoding="utf-8"))
    full_size.finish_metadata(out_dir, [shard.name for shard in shards], index["weight_map"])


def published_split_predicate(path: str, module) -> bool:
    """Select what the published MXFP4 bundle quantizes: all text-decoder Linears,
    per_layer_model_projection and embed_tokens_per_layer. The tied embed_tokens, the towers and the
    multimodal embedders stay 16-bit."""
    if not hasattr(module, "to_quantized"):
        return False
    if not path.startswith("language_model."):
        return False
    return path != "language_model.model.embed_tokens"


# Tokenizer files that mlx-vlm's convert re-saves through transformers. The re-saved
# tokenizer_config.json drops add_bos_token and chat_template and adds loader flags (is_local,
# local_files_only), so the source copies are restored and every bundle shares one tokenizer.
SHARED_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def run_mlxvlm_convert(source_dir: Path, out_dir: Path, mode: str, bits: int,
                       group_size: int) -> None:
    import warnings

    from mlx_vlm.convert import convert

    # transformers warns that some of the 128 mel filters of the audio feature extractor are empty
    # at 257 FFT bins. That is a property of Gemma 4's processor config, not of the fixture.
    warnings.filterwarnings("ignore", message="At least one mel filter has all zero values")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    convert(
        str(source_dir),
        mlx_path=str(out_dir),
        quantize=True,
        q_group_size=group_size,
        q_bits=bits,
        q_mode=mode,
        quant_predicate=published_split_predicate,
    )
    for name in SHARED_TOKENIZER_FILES:
        shutil.copyfile(source_dir / name, out_dir / name)


def bundle_sha256(bundle_dir: Path) -> dict[str, str]:
    """Return {file name: sha256 hex} for every file of a bundle directory."""
    digests = {}
    for path in sorted(bundle_dir.iterdir()):
        if path.is_file():
            digests[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def warn_if_goldens_stale(generated_dir: Path) -> None:
    """Warn when a generated file differs from the one the committed goldens were recorded on."""
    manifest_path = REPO_ROOT / "fixtures" / "goldens" / "manifest.json"
    if not manifest_path.exists():
        return
    recorded = json.loads(manifest_path.read_text(encoding="utf-8"))["bundles"]
    changed = []
    for bundle, files in recorded.items():
        bundle_dir = generated_dir / bundle
        current = bundle_sha256(bundle_dir) if bundle_dir.is_dir() else {}
        changed += [f"{bundle}/{name}" for name, digest in files.items()
                    if current.get(name) != digest]
        changed += [f"{bundle}/{name}" for name in current if name not in files]
    if changed:
        print(f"warning: {len(changed)} generated files differ from those the goldens in "
              f"fixtures/goldens were recorded on ({', '.join(changed[:4])}...); check the package "
              "versions against scripts/oracle/requirements.txt or rerun "
              "scripts/oracle/record_goldens.py", file=sys.stderr)


# A tiny Gemma 3 (gemma3_text) in the layout of google/gemma-3-270m's config.json. The values
# differ from the defaults where a decoder could silently use the wrong one: query_pre_attn_scalar
# is not head_dim, full layers scale RoPE positions linearly, and the window of 8 is short.
TINY_GEMMA3_CONFIG = {
    "architectures": ["Gemma3ForCausalLM"],
    "model_type": "gemma3_text",
    "hidden_size": 96,  # sqrt(96) is not a bfloat16 value, so the embedding scale's rounding shows
    "intermediate_size": 128,
    "num_hidden_layers": 6,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "query_pre_attn_scalar": 48,
    "sliding_window": 8,
    "sliding_window_pattern": 3,
    "layer_types": ["sliding_attention", "sliding_attention", "full_attention"] * 2,
    "rope_theta": 1000000.0,
    "rope_local_base_freq": 10000.0,
    "rope_scaling": {"rope_type": "linear", "factor": 8.0},
    "rms_norm_eps": 1e-6,
    "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 4096,
    "attn_logit_softcapping": None,
    "final_logit_softcapping": None,
    "tie_word_embeddings": True,
    "torch_dtype": "float32",
}


def tiny_gemma3_tensors(config: dict, seed: int) -> dict:
    """Random float32 weights with Gemma3ForCausalLM names. Norm weights are centered on 0,
    because Gemma 3 scales by (1 + w)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    head_dim = config["head_dim"]
    q_width = config["num_attention_heads"] * head_dim
    kv_width = config["num_key_value_heads"] * head_dim

    def dense(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    def norm(width: int) -> np.ndarray:
        return (0.3 * rng.standard_normal(width)).astype(np.float32)

    tensors = {"model.embed_tokens.weight": (0.5 * rng.standard_normal(
        (config["vocab_size"], hidden))).astype(np.float32)}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        tensors[p + "self_attn.q_proj.weight"] = dense(q_width, hidden)
        tensors[p + "self_attn.k_proj.weight"] = dense(kv_width, hidden)
        tensors[p + "self_attn.v_proj.weight"] = dense(kv_width, hidden)
        tensors[p + "self_attn.o_proj.weight"] = dense(hidden, q_width)
        tensors[p + "self_attn.q_norm.weight"] = norm(head_dim)
        tensors[p + "self_attn.k_norm.weight"] = norm(head_dim)
        tensors[p + "mlp.gate_proj.weight"] = dense(inter, hidden)
        tensors[p + "mlp.up_proj.weight"] = dense(inter, hidden)
        tensors[p + "mlp.down_proj.weight"] = dense(hidden, inter)
        for name in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                     "post_feedforward_layernorm"):
            tensors[p + name + ".weight"] = norm(hidden)
    tensors["model.norm.weight"] = norm(hidden)
    return tensors


def make_tiny_gemma3(generated_dir: Path) -> None:
    """Write tiny-gemma3-source/ (Hugging Face layout) and tiny-gemma3/, mlx-lm's mxfp4 g32 convert
    of it with embed_tokens and the norms in float16, the split of scripts/fetch_real_model.sh.

    A quantized embedding would also change the reference: mlx-lm dequantizes an mxfp4
    QuantizedEmbedding to bfloat16, so its scaled embedding rows would be rounded to bfloat16."""
    from mlx_lm.convert import convert
    from safetensors.numpy import save_file

    tokenizer = tiny_tokenizer.build_tokenizer(
        CORPUS_PATH.read_text(encoding="utf-8"), TINY_VOCAB_SIZE
    )
    token_ids = tiny_tokenizer.special_token_ids()
    config = dict(TINY_GEMMA3_CONFIG, vocab_size=TINY_VOCAB_SIZE,
                  bos_token_id=token_ids["<bos>"], eos_token_id=token_ids["<eos>"],
                  pad_token_id=token_ids["<pad>"])
    source_dir = generated_dir / "tiny-gemma3-source"
    reset_dir(source_dir)
    write_json(source_dir / "config.json", config)
    write_json(source_dir / "generation_config.json", generation_config(token_ids))
    write_json(source_dir / "tokenizer_config.json",
               tokenizer_config(CHAT_TEMPLATE_PATH.read_text(encoding="utf-8")))
    (source_dir / "tokenizer.json").write_text(tokenizer.to_str(pretty=True) + "\n", encoding="utf-8")
    save_file(tiny_gemma3_tensors(config, SEED), str(source_dir / "model.safetensors"),
              metadata={"format": "pt"})

    out_dir = generated_dir / "tiny-gemma3"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    convert(str(source_dir), mlx_path=str(out_dir), quantize=True, q_group_size=32, q_bits=4,
            q_mode="mxfp4", dtype="float16",
            quant_predicate=lambda path, module: not path.endswith("embed_tokens"))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(source_dir / name, out_dir / name)


def make_tiny_bundles(generated_dir: Path) -> None:
    started = time.monotonic()
    source_dir = generated_dir / "tiny-source"
    make_source(source_dir)
    run_jang_converter(source_dir, generated_dir / "tiny-hf")
    run_mlxvlm_convert(source_dir, generated_dir / "tiny-mlxvlm", "mxfp4", 4, 32)
    run_mlxvlm_convert(source_dir, generated_dir / "tiny-affine", "affine", 4, 64)
    run_mlxvlm_convert(source_dir, generated_dir / "tiny-affine8", "affine", 8, 64)
    make_tiny_gemma3(generated_dir)
    print(f"tiny bundles written to {generated_dir} in {time.monotonic() - started:.1f} s")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "fixtures" / "generated",
        help="folder that receives the tiny bundles (default: fixtures/generated)",
    )
    parser.add_argument(
        "--full-size",
        type=Path,
        metavar="DIR",
        help="write a random-weight bundle with the true E2B config to DIR (about 3.7 GB) "
             "instead of the tiny bundles",
    )
    parser.add_argument(
        "--print-sha256",
        action="store_true",
        help="print the sha256 of every generated file",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    # The goldens are recorded on MLX's CPU backend. Quantizing on the same device keeps the
    # fixture bytes the same on machines with and without a GPU.
    import mlx.core as mx

    mx.set_default_device(mx.cpu)

    if args.full_size is not None:
        import full_size

        full_size.write_full_size_bundle(args.full_size, SEED)
        return

    make_tiny_bundles(args.out)
    if args.out.resolve() == (REPO_ROOT / "fixtures" / "generated").resolve():
        warn_if_goldens_stale(args.out)
    if args.print_sha256:
        for bundle in sorted(path for path in args.out.iterdir() if path.is_dir()):
            for name, digest in bundle_sha256(bundle).items():
                print(f"{digest}  {bundle.name}/{name}")


if __name__ == "__main__":
    main()
