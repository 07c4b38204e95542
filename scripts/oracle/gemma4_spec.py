"""Gemma 4 configs (tiny test model and true E2B) and the tensor table of a Hugging Face checkpoint.

The tensor table lists every tensor of a Gemma 4 E2B-style checkpoint under its Hugging Face name
(`model.language_model.*`, `model.vision_tower.*`, ...) with its shape in PyTorch layout, computed
from the config. Names and shapes follow transformers' `modeling_gemma4.py` (5.25) and mlx-vlm's
`models/gemma4` (0.7.10); loading the generated bundles with mlx-vlm in strict mode checks them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

SLIDING = "sliding_attention"
FULL = "full_attention"


def _text_config_common() -> dict:
    """Text-config fields that the tiny model shares with E2B."""
    return {
        "model_type": "gemma4_text",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "attention_k_eq_v": False,
        "bos_token_id": 2,
        "dtype": "bfloat16",
        "enable_moe_block": False,
        "eos_token_id": 1,
        "final_logit_softcapping": 30.0,
        "hidden_activation": "gelu_pytorch_tanh",
        "initializer_range": 0.02,
        "max_position_embeddings": 131072,
        "moe_intermediate_size": None,
        "num_experts": None,
        "num_global_key_value_heads": None,
        "pad_token_id": 0,
        "rms_norm_eps": 1e-06,
        "rope_parameters": {
            FULL: {
                "partial_rotary_factor": 0.25,
                "rope_theta": 1000000.0,
                "rope_type": "proportional",
            },
            SLIDING: {"rope_theta": 10000.0, "rope_type": "default"},
        },
        "tie_word_embeddings": True,
        "top_k_experts": None,
        "use_bidirectional_attention": None,
        "use_cache": True,
        "use_double_wide_mlp": True,
    }


def _vision_config_common() -> dict:
    return {
        "model_type": "gemma4_vision",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "hidden_activation": "gelu_pytorch_tanh",
        "initializer_range": 0.02,
        "max_position_embeddings": 131072,
        "patch_size": 16,
        "pooling_kernel_size": 3,
        "rms_norm_eps": 1e-06,
        "rope_parameters": {"rope_theta": 100.0, "rope_type": "default"},
        "standardize": False,
        "use_bidirectional_attention": None,
        "use_clipped_linears": True,
    }


def _audio_config_common() -> dict:
    return {
        "model_type": "gemma4_audio",
        "attention_chunk_size": 12,
        "attention_context_left": 13,
        "attention_context_right": 0,
        "attention_invalid_logits_value": -1000000000.0,
        "attention_logit_cap": 50.0,
        "conv_kernel_size": 5,
        "gradient_clipping": 10000000000.0,
        "hidden_act": "silu",
        "initializer_range": 0.02,
        "residual_weight": 0.5,
        "rms_norm_eps": 1e-06,
        "use_clipped_linears": True,
    }


def _top_level(text: dict, vision: dict, audio: dict, token_ids: dict) -> dict:
    """Assemble a top-level `gemma4` config.json the way the E2B checkpoint lays it out."""
    return {
        "architectures": ["Gemma4ForConditionalGeneration"],
        "model_type": "gemma4",
        "audio_config": audio,
        "audio_ms_per_token": 40,
        "audio_token_id": token_ids["<|audio|>"],
        "boa_token_id": token_ids["<|audio>"],
        "boi_token_id": token_ids["<|image>"],
        "dtype": "bfloat16",
        # transformers names the end-of-audio id eoa_token_index and mlx-vlm reads eoa_token_id,
        # so both are written.
        "eoa_token_id": token_ids["<audio|>"],
        "eoa_token_index": token_ids["<audio|>"],
        "eoi_token_id": token_ids["<image|>"],
        "eos_token_id": [token_ids["<eos>"], token_ids["<turn|>"]],
        "image_token_id": token_ids["<|image|>"],
        "initializer_range": 0.02,
        "pad_token_id": token_ids["<pad>"],
        "text_config": text,
        "tie_word_embeddings": True,
        "video_token_id": token_ids["<|video|>"],
        "vision_config": vision,
        "vision_soft_tokens_per_image": vision["default_output_length"],
    }


def tiny_config(token_ids: dict) -> dict:
    """Return the config.json of the tiny test model (every Linear `in` is a multiple of 64)."""
    text = _text_config_common()
    text.update(
        {
            "global_head_dim": 64,
            "head_dim": 32,
            "hidden_size": 128,
            "hidden_size_per_layer_input": 64,
            "intermediate_size": 256,
            "layer_types": [SLIDING, SLIDING, FULL, SLIDING, SLIDING, FULL],
            "num_attention_heads": 4,
            "num_hidden_layers": 6,
            "num_key_value_heads": 2,
            "num_kv_shared_layers": 2,
            "sliding_window": 32,
            "vocab_size": 512,
            "vocab_size_per_layer_input": 512,
        }
    )
    vision = _vision_config_common()
    vision.update(
        {
            # 70 is the smallest soft-token count the Gemma 4 image processor accepts, so the
            # processor and the vision tower agree on the patch budget (70 * 3 * 3 patches).
            "default_output_length": 70,
            "global_head_dim": 32,
            "head_dim": 32,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "num_key_value_heads": 2,
            "position_embedding_size": 64,
        }
    )
    audio = _audio_config_common()
    audio.update(
        {
            "hidden_size": 64,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "output_proj_dims": 128,
            "subsampling_conv_channels": [16, 8],
        }
    )
    return _top_level(text, vision, audio, token_ids)


def e2b_config(token_ids: dict) -> dict:
    """Return the config.json of Gemma 4 E2B (35 layers, hidden 1536, vocab 262144)."""
    text = _text_config_common()
    text.update(
        {
            "global_head_dim": 512,
            "head_dim": 256,
            "hidden_size": 1536,
            "hidden_size_per_layer_input": 256,
            "intermediate_size": 6144,
            "layer_types": ([SLIDING] * 4 + [FULL]) * 7,
            "num_attention_heads": 8,
            "num_hidden_layers": 35,
            "num_key_value_heads": 1,
            "num_kv_shared_layers": 20,
            "sliding_window": 512,
            "vocab_size": 262144,
            "vocab_size_per_layer_input": 262144,
        }
    )
    vision = _vision_config_common()
    vision.update(
        {
            "default_output_length": 280,
            "global_head_dim": 64,
            "head_dim": 64,
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_attention_heads": 12,
            "num_hidden_layers": 16,
            "num_key_value_heads": 12,
            "position_embedding_size": 10240,
        }
    )
    audio = _audio_config_common()
    audio.update(
        {
            "hidden_size": 1024,
            "num_attention_heads": 8,
            "num_hidden_layers": 12,
            "output_proj_dims": 1536,
            "subsampling_conv_channels": [128, 32],
        }
    )
    return _top_level(text, vision, audio, token_ids)


def e2b_token_ids() -> dict:
    """Return the E2B ids of the special tokens that config.json refers to."""
    return {
        "<pad>": 0,
        "<eos>": 1,
        "<bos>": 2,
        "<|tool_response>": 50,
        "<turn|>": 106,
        "<|image>": 255999,
        "<|audio>": 256000,
        "<|image|>": 258880,
        "<|audio|>": 258881,
        "<image|>": 258882,
        "<audio|>": 258883,
        "<|video|>": 258884,
    }


@dataclass(frozen=True)
class TensorSpec:
    """One checkpoint tensor: Hugging Face name, PyTorch-layout shape and how to initialize it."""

    name: str
    shape: tuple[int, ...]
    init: str  # "linear", "embedding", "norm", "residual_norm", "qk_norm", "layer_scalar",
    # "clip_min", "clip_max", "small"
    quiet_rows: tuple[int, ...] = ()  # rows drawn with QUIET_ROW_SCALE times the usual std


def _clipped_linear(prefix: str, out_dim: int, in_dim: int) -> list[TensorSpec]:
    """Tensors of a Gemma4ClippableLinear: the weight under `.linear.` and four scalar bounds."""
    return [
        TensorSpec(f"{prefix}.linear.weight", (out_dim, in_dim), "linear"),
        TensorSpec(f"{prefix}.input_min", (), "clip_min"),
        TensorSpec(f"{prefix}.input_max", (), "clip_max"),
        TensorSpec(f"{prefix}.output_min", (), "clip_min"),
        TensorSpec(f"{prefix}.output_max", (), "clip_max"),
    ]


def first_kv_shared_layer(text: dict) -> int:
    return text["num_hidden_layers"] - text["num_kv_shared_layers"]


def placeholder_ids(config: dict) -> tuple[int, ...]:
    """Ids of the image, audio and video soft-token placeholders."""
    return tuple(sorted({config["image_token_id"], config["audio_token_id"],
                         config["video_token_id"]}))


def _text_tensors(text: dict, quiet_rows: tuple[int, ...]) -> list[TensorSpec]:
    hidden = text["hidden_size"]
    ple = text["hidden_size_per_layer_input"]
    layers = text["num_hidden_layers"]
    first_shared = first_kv_shared_layer(text)
    prefix = "model.language_model"

    specs = [
        TensorSpec(f"{prefix}.embed_tokens.weight", (text["vocab_size"], hidden), "embedding",
                   quiet_rows),
        TensorSpec(
            f"{prefix}.embed_tokens_per_layer.weight",
            (text["vocab_size_per_layer_input"], layers * ple),
            "embedding",
        ),
        TensorSpec(f"{prefix}.per_layer_model_projection.weight", (layers * ple, hidden), "linear"),
        TensorSpec(f"{prefix}.per_layer_projection_norm.weight", (ple,), "norm"),
        TensorSpec(f"{prefix}.norm.weight", (hidden,), "residual_norm"),
    ]
    for index, layer_type in enumerate(text["layer_types"]):
        head_dim = text["global_head_dim"] if layer_type == FULL else text["head_dim"]
        q_dim = text["num_attention_heads"] * head_dim
        kv_dim = text["num_key_value_heads"] * head_dim
        shared = index >= first_shared
        wide = text["use_double_wide_mlp"] and shared
        intermediate = text["intermediate_size"] * (2 if wide else 1)
        layer = f"{prefix}.layers.{index}"

        specs.append(TensorSpec(f"{layer}.self_attn.q_proj.weight", (q_dim, hidden), "linear"))
        # KV-shared layers read the cache of an earlier layer, so they carry no K/V projections.
        if not shared:
            specs.append(TensorSpec(f"{layer}.self_attn.k_proj.weight", (kv_dim, hidden), "linear"))
            specs.append(TensorSpec(f"{layer}.self_attn.v_proj.weight", (kv_dim, hidden), "linear"))
        specs.append(TensorSpec(f"{layer}.self_attn.o_proj.weight", (hidden, q_dim), "linear"))
        specs.append(TensorSpec(f"{layer}.self_attn.q_norm.weight", (head_dim,), "qk_norm"))
        if not shared:
            specs.append(TensorSpec(f"{layer}.self_attn.k_norm.weight", (head_dim,), "qk_norm"))
        specs += [
            TensorSpec(f"{layer}.mlp.gate_proj.weight", (intermediate, hidden), "linear"),
            TensorSpec(f"{layer}.mlp.up_proj.weight", (intermediate, hidden), "linear"),
            TensorSpec(f"{layer}.mlp.down_proj.weight", (hidden, intermediate), "linear"),
            TensorSpec(f"{layer}.per_layer_input_gate.weight", (ple, hidden), "linear"),
            TensorSpec(f"{layer}.per_layer_projection.weight", (hidden, ple), "linear"),
        ]
        for norm in ("input_layernorm", "pre_feedforward_layernorm"):
            specs.append(TensorSpec(f"{layer}.{norm}.weight", (hidden,), "norm"))
        for norm in (
            "post_attention_layernorm",
            "post_feedforward_layernorm",
            "post_per_layer_input_norm",
        ):
            specs.append(TensorSpec(f"{layer}.{norm}.weight", (hidden,), "residual_norm"))
        specs.append(TensorSpec(f"{layer}.layer_scalar", (1,), "layer_scalar"))
    return specs


def _vision_tensors(vision: dict, text_hidden: int) -> list[TensorSpec]:
    hidden = vision["hidden_size"]
    patch = vision["patch_size"]
    heads = vision["num_attention_heads"]
    kv_heads = vision["num_key_value_heads"]
    head_dim = vision["head_dim"]
    intermediate = vision["intermediate_size"]
    prefix = "model.vision_tower"

    specs = [
        TensorSpec(f"{prefix}.patch_embedder.input_proj.weight", (hidden, 3 * patch * patch),
                   "linear"),
        TensorSpec(
            f"{prefix}.patch_embedder.position_embedding_table",
            (2, vision["position_embedding_size"], hidden),
            "small",
        ),
    ]
    for index in range(vision["num_hidden_layers"]):
        layer = f"{prefix}.encoder.layers.{index}"
        specs += _clipped_linear(f"{layer}.self_attn.q_proj", heads * head_dim, hidden)
        specs += _clipped_linear(f"{layer}.self_attn.k_proj", kv_heads * head_dim, hidden)
        specs += _clipped_linear(f"{layer}.self_attn.v_proj", kv_heads * head_dim, hidden)
        specs += _clipped_linear(f"{layer}.self_attn.o_proj", hidden, heads * head_dim)
        specs.append(TensorSpec(f"{layer}.self_attn.q_norm.weight", (head_dim,), "qk_norm"))
        specs.append(TensorSpec(f"{layer}.self_attn.k_norm.weight", (head_dim,), "qk_norm"))
        specs += _clipped_linear(f"{layer}.mlp.gate_proj", intermediate, hidden)
        specs += _clipped_linear(f"{layer}.mlp.up_proj", intermediate, hidden)
        specs += _clipped_linear(f"{layer}.mlp.down_proj", hidden, intermediate)
        for norm in (
            "input_layernorm",
            "post_attention_layernorm",
            "pre_feedforward_layernorm",
            "post_feedforward_layernorm",
        ):
            specs.append(TensorSpec(f"{layer}.{norm}.weight", (hidden,), "norm"))
    specs.append(
        TensorSpec("model.embed_vision.embedding_projection.weight", (text_hidden, hidden), "linear")
    )
    return specs


def _audio_tensors(audio: dict, text_hidden: int) -> list[TensorSpec]:
    hidden = audio["hidden_size"]
    channels = audio["subsampling_conv_channels"]
    kernel = audio["conv_kernel_size"]
    prefix = "model.audio_tower"
    sscp = f"{prefix}.subsample_conv_projection"

    # Two stride-2 3x3 convolutions shrink the 128 mel bins to 32 before the input projection.
    freq = 128
    for _ in range(2):
        freq = (freq + 2 - 3) // 2 + 1

    specs = [
        TensorSpec(f"{sscp}.layer0.conv.weight", (channels[0], 1, 3, 3), "linear"),
        TensorSpec(f"{sscp}.layer0.norm.weight", (channels[0],), "norm"),
        TensorSpec(f"{sscp}.layer1.conv.weight", (channels[1], channels[0], 3, 3), "linear"),
        TensorSpec(f"{sscp}.layer1.norm.weight", (channels[1],), "norm"),
        TensorSpec(f"{sscp}.input_proj_linear.weight", (hidden, freq * channels[1]), "linear"),
    ]
    for index in range(audio["num_hidden_layers"]):
        layer = f"{prefix}.layers.{index}"
        for block in ("feed_forward1", "feed_forward2"):
            specs.append(TensorSpec(f"{layer}.{block}.pre_layer_norm.weight", (hidden,), "norm"))
            specs += _clipped_linear(f"{layer}.{block}.ffw_layer_1", 4 * hidden, hidden)
            specs += _clipped_linear(f"{layer}.{block}.ffw_layer_2", hidden, 4 * hidden)
            specs.append(TensorSpec(f"{layer}.{block}.post_layer_norm.weight", (hidden,), "norm"))
        head_dim = hidden // audio["num_attention_heads"]
        specs.append(TensorSpec(f"{layer}.self_attn.relative_k_proj.weight", (hidden, hidden),
                                "linear"))
        specs.append(TensorSpec(f"{layer}.self_attn.per_dim_scale", (head_dim,), "small"))
        for projection in ("q_proj", "k_proj", "v_proj", "post"):
            specs += _clipped_linear(f"{layer}.self_attn.{projection}", hidden, hidden)
        specs.append(TensorSpec(f"{layer}.lconv1d.pre_layer_norm.weight", (hidden,), "norm"))
        specs += _clipped_linear(f"{layer}.lconv1d.linear_start", 2 * hidden, hidden)
        specs.append(TensorSpec(f"{layer}.lconv1d.depthwise_conv1d.weight", (hidden, 1, kernel),
                                "linear"))
        specs.append(TensorSpec(f"{layer}.lconv1d.conv_norm.weight", (hidden,), "norm"))
        specs += _clipped_linear(f"{layer}.lconv1d.linear_end", hidden, hidden)
        for norm in ("norm_pre_attn", "norm_post_attn", "norm_out"):
            specs.append(TensorSpec(f"{layer}.{norm}.weight", (hidden,), "norm"))
    output_dim = audio["output_proj_dims"]
    specs.append(TensorSpec(f"{prefix}.output_proj.weight", (output_dim, hidden), "linear"))
    specs.append(TensorSpec(f"{prefix}.output_proj.bias", (output_dim,), "small"))
    specs.append(
        TensorSpec("model.embed_audio.embedding_projection.weight", (text_hidden, output_dim),
                   "linear")
    )
    return specs


def checkpoint_tensors(config: dict) -> list[TensorSpec]:
    """List every tensor of the Hugging Face checkpoint for `config`, sorted by name."""
    text_hidden = config["text_config"]["hidden_size"]
    # A trained model never predicts a placeholder id. With random weights it could, and mlx-vlm
    # then treats the id differently in decoding (per-layer input from the id itself) than in a
    # forward pass (per-layer input of <pad>), so the placeholder rows of the tied embedding are
    # kept small and their logits stay far below the top ones.
    specs = _text_tensors(config["text_config"], placeholder_ids(config))
    specs += _vision_tensors(config["vision_config"], text_hidden)
    specs += _audio_tensors(config["audio_config"], text_hidden)
    return sorted(specs, key=lambda spec: spec.name)


def round_to_bfloat16(values: np.ndarray) -> np.ndarray:
    """Round float32 values to the nearest bfloat16 (ties to even), returned as float32.

    bfloat16-exact values convert to float16 and back without loss in float16's normal range, so
    the JANG converter (float16 input) and mlx-vlm (bfloat16 input) quantize the same numbers.
    """
    bits = values.astype(np.float32).view(np.uint32)
    rounding = np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    rounded = (bits + rounding) & np.uint32(0xFFFF0000)
    return rounded.view(np.float32)


# Standard deviations of the random weights. They keep the tied-embedding logits well inside the
# softcap of 30 (so top-2 margins vary) while every layer still moves the residual stream.
EMBEDDING_STD = 0.08
LINEAR_GAIN = 0.6  # a Linear's std is LINEAR_GAIN / sqrt(in)
NORM_STD = 0.1
SMALL_STD = 0.05
QUIET_ROW_SCALE = 0.05


def tensor_rng(seed: int, name: str) -> np.random.Generator:
    """Return a generator that depends only on the seed and the tensor name, not on write order."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


def random_rows(spec: TensorSpec, rng: np.random.Generator, start: int, stop: int) -> np.ndarray:
    """Draw rows [start, stop) of `spec` (rows along axis 0; the whole tensor for 0-d specs).

    Rows must be requested in order from 0 with the same generator, so a tensor drawn in chunks
    equals the tensor drawn at once.
    """
    shape = spec.shape
    row_shape = (stop - start,) + tuple(shape[1:]) if shape else ()

    if spec.init == "embedding":
        values = rng.normal(0.0, EMBEDDING_STD, size=row_shape)
    elif spec.init == "linear":
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        values = rng.normal(0.0, LINEAR_GAIN / np.sqrt(fan_in), size=row_shape)
    elif spec.init == "norm":
        values = 1.0 + rng.normal(0.0, NORM_STD, size=row_shape)
    elif spec.init == "residual_norm":
        # Norms whose output is added to the residual stream (and the final norm) sit near 2. The
        # layers then outweigh the token's own embedding in the residual stream, so the tied
        # logits do not favour the input token and greedy decoding does not just repeat it. The
        # final norm doubles the logit margins without changing any argmax.
        values = 2.0 * (1.0 + rng.normal(0.0, NORM_STD, size=row_shape))
    elif spec.init == "qk_norm":
        # Gemma 4 attention uses scale 1.0 and relies on the learned q_norm/k_norm weights. Weights
        # near head_dim^-1/4 give q.k the usual 1/sqrt(head_dim) temperature. Weights near 1 would
        # make softmax so sharp that 16-bit runs drift far from float32 ones.
        values = shape[0] ** -0.25 * (1.0 + rng.normal(0.0, NORM_STD, size=row_shape))
    elif spec.init == "layer_scalar":
        values = rng.uniform(0.7, 1.3, size=row_shape)
    elif spec.init == "clip_min":
        values = np.asarray(-rng.uniform(1.0, 3.0))
    elif spec.init == "clip_max":
        values = np.asarray(rng.uniform(1.0, 3.0))
    elif spec.init == "small":
        values = rng.normal(0.0, SMALL_STD, size=row_shape)
    else:
        raise ValueError(f"tensor {spec.name}: unknown init kind {spec.init!r}")
    for row in spec.quiet_rows:
        if start <= row < stop:
            values[row - start] *= QUIET_ROW_SCALE
    return round_to_bfloat16(np.asarray(values, dtype=np.float32))


def random_tensor(spec: TensorSpec, seed: int) -> np.ndarray:
    """Draw the whole tensor of `spec` as float32 (bfloat16-exact values)."""
    rows = spec.shape[0] if spec.shape else 1
    values = random_rows(spec, tensor_rng(seed, spec.name), 0, rows)
    return np.array(values, dtype=np.float32).reshape(spec.shape)
