"""Record reference outputs of the Gemma 4 audio path on the tiny bundles with transformers.

The primary reference is transformers 5.25 (Gemma4ForConditionalGeneration in float32 on the
CPU) with the bundle's weights: the 16-bit tower and embedder weights widened to float32, and the
MXFP4 decoder weights dequantized to float32 with MLX's mx.dequantize. mlx-vlm 0.7.10 on MLX's
CPU backend, with every floating parameter upcast to float32, is run on the same inputs as a
cross-check, and its largest differences go into the manifest.

The clips are two deterministic speech-like noises (scripts/oracle/audio_goldens.py
speech_like), written as 16-bit WAV files to tests/data/audio/tower_1s.wav (16140 samples) and
tower_3s.wav (48140 samples) and read back, so that the C++ test decodes the same samples.
In both, the last frame's window reaches one or more samples into the padding, so its mask is 0
and so is the last position of the subsampled mask (the tower's output mask). The features are
transformers' Gemma4AudioFeatureExtractor with the bundle's processor_config.json.

For every bundle in BUNDLES and every clip this writes to fixtures/goldens/:
  <bundle>.audio.<clip>.tower.npy   float32 [n, output_proj_dims]: audio tower output at the n
                                    valid positions (the mask subsampled twice by 2)
  <bundle>.audio.<clip>.soft.npy    float32 [n, text hidden]: the same after embed_audio
  <bundle>.audio.<clip>.logits.npy  float32 [L, vocab]: logits of PROMPT with that clip (for the
                                    3 s clip on the first bundle only, to keep the set small)
and, for the first bundle only,
  <bundle>.audio.tower_3s.window13.tower.npy   the tower output when every query also attends
                                    to the key 12 frames back (13 keys, the Gemma 3n window),
                                    to show that the window choice is visible in the output
plus fixtures/goldens/audio_manifest.json: package versions, token ids, soft-token counts and
the cross-check differences.

A prompt is the user turn as text, tokenized with the bundle's tokenizer.json, in which
<|audio|> becomes <|audio> + <|audio|> x n + <audio|>, as Gemma4Processor expands it.

transformers sizes the tower's input_proj_linear as (subsampling_conv_channels[0] // 4) *
subsampling_conv_channels[1], which is the flattened width (32 mel bins after two stride-2
convolutions, times the channels) only when subsampling_conv_channels[0] is 128, as in E2B. The
tiny bundles use [16, 8], so this script gives that Linear the width the forward pass produces
(32 * 8), as mlx-vlm does.

Run: scripts/oracle/make_torch_env.sh, then .venv-torch/bin/python
scripts/oracle/record_audio_goldens.py (after make_fixtures.py). The environment is pinned in
requirements-torch.txt: torch 2.9.1 on top of requirements.txt.
"""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

import mlx.core as mx

mx.set_default_device(mx.cpu)

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
from mlx_vlm.utils import load_model  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers.models.gemma4 import modeling_gemma4  # noqa: E402
from transformers.models.gemma4.configuration_gemma4 import Gemma4Config  # noqa: E402
from transformers.models.gemma4.feature_extraction_gemma4 import (  # noqa: E402
    Gemma4AudioFeatureExtractor,
)

SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent.parent
sys.path.insert(0, str(SCRIPT_DIR))

from audio_goldens import speech_like  # noqa: E402
from record_goldens import upcast_to_float32  # noqa: E402

BUNDLES = ("tiny-hf", "tiny-mlxvlm")
AUDIO_DIR = REPO_ROOT / "tests" / "data" / "audio"
GOLDENS_DIR = REPO_ROOT / "fixtures" / "goldens"
RATE = 16000
CLIPS = {"tower_1s": 16140, "tower_3s": 48140}
CLIP_SEED = 20260405
BOS_ID = 2
PROMPT = "<|turn>user\n<|audio|>Transcribe this.<turn|>\n<|turn>model\n"
PACKAGES = ("torch", "transformers", "mlx", "mlx-vlm", "tokenizers", "numpy", "soundfile")


def write_clips() -> dict[str, np.ndarray]:
    """Write the test clips as 16-bit WAV and return the samples as read back."""
    rng = np.random.default_rng(CLIP_SEED)
    clips = {}
    for name, length in CLIPS.items():
        path = AUDIO_DIR / f"{name}.wav"
        sf.write(path, speech_like(rng, length), RATE, subtype="PCM_16")
        samples, rate = sf.read(path, dtype="float32")
        assert rate == RATE
        assert samples.shape == (length,)
        clips[name] = samples
    return clips


def extract_features(bundle_dir: Path, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    config = json.loads((bundle_dir / "processor_config.json").read_text())["feature_extractor"]
    kwargs = {k: v for k, v in config.items() if k not in ("feature_extractor_type", "processor_class")}
    extractor = Gemma4AudioFeatureExtractor(**kwargs)
    # A list of one clip, as Gemma4Processor passes it (see audio_goldens.py).
    out = extractor([samples], return_tensors=None)
    return np.asarray(out["input_features"][0], np.float32), np.asarray(out["input_features_mask"][0], bool)


def subsampled_mask(mask: np.ndarray) -> np.ndarray:
    """Subsample the mask as the tower does: two stride-2 convolutions keep every other frame."""
    return mask[::2][::2]


def bundle_tensors(bundle_dir: Path, config: dict) -> dict[str, np.ndarray]:
    """Read every tensor of the bundle as float32, dequantizing those with a .scales sidecar."""
    raw = {}
    for shard in sorted(bundle_dir.glob("*.safetensors")):
        raw.update(mx.load(str(shard)))
    quant = config.get("quantization") or {}
    tensors = {}
    for name, value in raw.items():
        if name.endswith((".scales", ".biases")):
            continue
        module = name[: -len(".weight")] if name.endswith(".weight") else None
        if module is not None and module + ".scales" in raw:
            spec = quant.get(module, quant) if isinstance(quant.get(module), dict) else quant
            value = mx.dequantize(value, raw[module + ".scales"], raw.get(module + ".biases"),
                                  group_size=spec["group_size"], bits=spec["bits"],
                                  mode=spec.get("mode", "affine"))
        tensors[name] = np.array(value.astype(mx.float32))
    return tensors


def hf_state_dict(tensors: dict[str, np.ndarray], config: dict) -> dict[str, torch.Tensor]:
    """Rename bundle tensors to Gemma4ForConditionalGeneration's names and PyTorch layouts."""
    channels = config["audio_config"]["subsampling_conv_channels"]
    state = {}
    for name, value in tensors.items():
        if name.startswith("language_model.model."):
            hf_name = "model.language_model." + name[len("language_model.model."):]
        else:
            hf_name = "model." + name
        if name.endswith("subsample_conv_projection.layer0.conv.weight") or name.endswith(
            "subsample_conv_projection.layer1.conv.weight"
        ):
            in_channels = 1 if ".layer0." in name else channels[0]
            # MLX stores Conv2d as [out, kh, kw, in], PyTorch as [out, in, kh, kw].
            if value.shape[1:3] == (3, 3) and value.shape[3] == in_channels:
                value = value.transpose(0, 3, 1, 2)
        if name.endswith("depthwise_conv1d.weight"):
            value = value.transpose(0, 2, 1)  # [channels, kernel, 1] -> [channels, 1, kernel]
        if value.ndim == 1 and value.shape == (1,) and name.endswith(("_min", "_max")):
            value = value.reshape(())
        state[hf_name] = torch.from_numpy(np.ascontiguousarray(value))
    return state


def load_transformers_model(bundle_dir: Path, config: dict) -> torch.nn.Module:
    hf_config = Gemma4Config(**config)
    model = modeling_gemma4.Gemma4ForConditionalGeneration(hf_config).float().eval()
    tensors = bundle_tensors(bundle_dir, config)
    sscp = model.model.audio_tower.subsample_conv_projection
    width = tensors["audio_tower.subsample_conv_projection.input_proj_linear.weight"].shape[1]
    sscp.input_proj_linear = torch.nn.Linear(width, hf_config.audio_config.hidden_size, bias=False)
    missing, unexpected = model.load_state_dict(hf_state_dict(tensors, config), strict=False)
    # KV-shared decoder layers read another layer's cache, so the bundle omits their k/v.
    shared_start = config["text_config"]["num_hidden_layers"] - config["text_config"]["num_kv_shared_layers"]
    allowed_missing = {"lm_head.weight"}
    for layer in range(shared_start, config["text_config"]["num_hidden_layers"]):
        for part in ("k_proj.weight", "v_proj.weight", "k_norm.weight"):
            allowed_missing.add(f"model.language_model.layers.{layer}.self_attn.{part}")
    if set(missing) - allowed_missing or unexpected:
        raise RuntimeError(f"{bundle_dir.name}: missing {sorted(set(missing) - allowed_missing)}, "
                           f"unexpected {sorted(unexpected)}")
    model.tie_weights()
    return model


def expand_audio_tokens(ids: list[int], count: int, config: dict) -> list[int]:
    audio_id, boa_id, eoa_id = config["audio_token_id"], config["boa_token_id"], config["eoa_token_id"]
    expanded = []
    for token in ids:
        expanded += [boa_id] + [audio_id] * count + [eoa_id] if token == audio_id else [token]
    return expanded


def transformers_outputs(model, features: np.ndarray, mask: np.ndarray, ids: list[int]):
    input_features = torch.from_numpy(features)[None]
    input_mask = torch.from_numpy(mask)[None]
    with torch.no_grad():
        tower = model.model.audio_tower(input_features, input_mask, return_dict=True)
        valid = tower.attention_mask[0]
        tower_rows = tower.last_hidden_state[0][valid]
        soft = model.model.embed_audio(inputs_embeds=tower_rows)
        logits = model(input_ids=torch.tensor([ids]), input_features=input_features,
                       input_features_mask=input_mask).logits[0]
    return tower_rows.numpy(), soft.numpy(), logits.float().numpy()


def window13_tower(model, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Run the tower with the left window widened by one key (q - k in [0, 12] in E2B)."""
    original = modeling_gemma4.sliding_window_mask_function

    def widened(window):
        return original((window[0] + 1, window[1]))

    modeling_gemma4.sliding_window_mask_function = widened
    try:
        with torch.no_grad():
            tower = model.model.audio_tower(torch.from_numpy(features)[None], torch.from_numpy(mask)[None],
                                            return_dict=True)
    finally:
        modeling_gemma4.sliding_window_mask_function = original
    return tower.last_hidden_state[0][tower.attention_mask[0]].numpy()


def mlx_vlm_outputs(model, features: np.ndarray, mask: np.ndarray, ids: list[int]):
    input_features = mx.array(features)[None]
    invalid = mx.array(~mask)[None]
    tower, _ = model.audio_tower(input_features, invalid)
    rows = int(subsampled_mask(mask).sum())
    # Valid frames come first, so the valid tower rows are the first ones.
    tower = tower[0, :rows]
    soft = model.embed_audio(tower)
    output = model(mx.array([ids]), input_features=input_features, input_features_mask=mx.array(mask)[None])
    logits = output.logits[0].astype(mx.float32)
    mx.eval(tower, soft, logits)
    return np.array(tower), np.array(soft), np.array(logits)


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def record_bundle(bundle_dir: Path, clips: dict[str, np.ndarray], first_bundle: bool) -> dict:
    name = bundle_dir.name
    config = json.loads((bundle_dir / "config.json").read_text())
    hf_model = load_transformers_model(bundle_dir, config)
    mlx_model = load_model(bundle_dir)
    upcast_to_float32(mlx_model)
    tokenizer = Tokenizer.from_file(str(bundle_dir / "tokenizer.json"))
    text_ids = [BOS_ID] + tokenizer.encode(PROMPT, add_special_tokens=False).ids

    entry = {}
    for clip, samples in clips.items():
        features, mask = extract_features(bundle_dir, samples)
        count = min(int(subsampled_mask(mask).sum()), 750)
        ids = expand_audio_tokens(text_ids, count, config)
        tower, soft, logits = transformers_outputs(hf_model, features, mask, ids)
        if tower.shape[0] != count:
            raise RuntimeError(f"{name} {clip}: tower gave {tower.shape[0]} rows for {count} soft tokens")
        mlx_tower, mlx_soft, mlx_logits = mlx_vlm_outputs(mlx_model, features, mask, ids)

        prefix = GOLDENS_DIR / f"{name}.audio.{clip}"
        np.save(f"{prefix}.tower.npy", tower.astype(np.float32))
        np.save(f"{prefix}.soft.npy", soft.astype(np.float32))
        if first_bundle or clip == "tower_1s":
            np.save(f"{prefix}.logits.npy", logits.astype(np.float32))
        entry[clip] = {
            "wav": f"tests/data/audio/{clip}.wav",
            "num_frames": int(features.shape[0]),
            "num_valid_frames": int(mask.sum()),
            "soft_tokens": count,
            "ids": ids,
            "mlx_vlm_max_abs_diff": {
                "tower": max_abs(tower, mlx_tower),
                "soft": max_abs(soft, mlx_soft),
                "logits": max_abs(logits, mlx_logits),
            },
        }
        if first_bundle and clip == "tower_3s":
            widened = window13_tower(hf_model, features, mask)
            np.save(f"{prefix}.window13.tower.npy", widened.astype(np.float32))
            entry[clip]["window13_max_abs_diff"] = max_abs(tower, widened)
        print(name, clip, json.dumps({k: v for k, v in entry[clip].items() if k != "ids"}))
    return entry


def main() -> None:
    torch.manual_seed(0)
    clips = write_clips()
    manifest = {
        "packages": {p: metadata.version(p) for p in PACKAGES},
        "reference": "transformers Gemma4ForConditionalGeneration, float32, CPU",
        "cross_check": "mlx-vlm on mlx cpu, float32 parameters",
        "prompt": PROMPT,
        "bundles": {},
    }
    for index, bundle in enumerate(BUNDLES):
        bundle_dir = REPO_ROOT / "fixtures" / "generated" / bundle
        manifest["bundles"][bundle] = record_bundle(bundle_dir, clips, first_bundle=index == 0)
    (GOLDENS_DIR / "audio_manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
