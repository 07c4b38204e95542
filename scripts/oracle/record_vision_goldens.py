"""Record reference outputs of the Gemma 4 vision path on the tiny bundles with mlx-vlm.

mlx-vlm runs on MLX's CPU backend with every floating parameter upcast to float32 (quantized
weights unchanged), as for the text goldens. The images are tests/data/images/tiny.png (288 x 480
after resizing, 60 soft tokens) and alpha.png (432 x 336, 63 soft tokens). They are preprocessed
by transformers' Gemma4ImageProcessorPil with the bundle's processor_config.json, which is what
src/media/image_processor.h reproduces.

For every bundle in BUNDLES this writes to fixtures/goldens/:
  <bundle>.vision.tiny_png.tower.npy    float32 [n, vision hidden]: vision tower output (pooled,
                                        scaled by sqrt(hidden), padding cells dropped)
  <bundle>.vision.tiny_png.soft.npy     float32 [n, text hidden]: the same after embed_vision,
                                        the soft tokens that replace the image tokens
  <bundle>.vision.one_image.logits.npy  float32 [L, vocab]: logits for a prompt with tiny.png
  <bundle>.vision.two_images.logits.npy float32 [L, vocab]: logits for tiny.png and alpha.png
and fixtures/goldens/vision_manifest.json with the token ids of both prompts, the soft-token
counts and the package versions.

A prompt is the user turn as text, tokenized with the bundle's tokenizer.json, in which each
<|image|> becomes <|image> + <|image|> x n + <image|>, as Gemma4Processor expands it.

transformers' Gemma 4 model needs torch, which this environment leaves out, so
crosscheck_vision_transformers.py compares these goldens with transformers from .venv-torch. Both
references use causal attention in the decoder when text_config.use_bidirectional_attention is
null, as in the tiny bundles and E2B.

Run: .venv/bin/python scripts/oracle/record_vision_goldens.py (after make_fixtures.py)
"""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

import mlx.core as mx

mx.set_default_device(mx.cpu)

import numpy as np  # noqa: E402
from mlx_vlm.utils import load_model  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers.models.gemma4.image_processing_pil_gemma4 import (  # noqa: E402
    Gemma4ImageProcessorPil,
)

SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent.parent
sys.path.insert(0, str(SCRIPT_DIR))

from record_goldens import upcast_to_float32  # noqa: E402

BUNDLES = ("tiny-hf", "tiny-mlxvlm")
IMAGES_DIR = REPO_ROOT / "tests" / "data" / "images"
IMAGES = ("tiny.png", "alpha.png")
GOLDENS_DIR = REPO_ROOT / "fixtures" / "goldens"
BOS_ID = 2
PROMPTS = {
    "one_image": "<|turn>user\n<|image|>Describe this picture.<turn|>\n<|turn>model\n",
    "two_images": "<|turn>user\nCompare <|image|> with <|image|> please.<turn|>\n<|turn>model\n",
}
PACKAGES = ("mlx", "mlx-vlm", "transformers", "tokenizers", "numpy", "pillow")


def preprocess(bundle_dir: Path, names: list[str]) -> dict:
    """Run transformers' Gemma 4 image processor on the named test images."""
    config = json.loads((bundle_dir / "processor_config.json").read_text())["image_processor"]
    kwargs = {k: v for k, v in config.items() if k not in ("image_processor_type", "processor_class")}
    processor = Gemma4ImageProcessorPil(**kwargs)
    images = []
    for name in names:
        with Image.open(IMAGES_DIR / name) as image:
            images.append(ImageOps.exif_transpose(image).copy())
    return processor(images, return_tensors="np")


def expand_image_tokens(ids: list[int], counts: list[int], config: dict) -> list[int]:
    """Replace the i-th image token by begin-of-image, counts[i] image tokens, end-of-image."""
    image_id, boi_id, eoi_id = config["image_token_id"], config["boi_token_id"], config["eoi_token_id"]
    expanded, image_index = [], 0
    for token in ids:
        if token != image_id:
            expanded.append(token)
            continue
        expanded += [boi_id] + [image_id] * counts[image_index] + [eoi_id]
        image_index += 1
    if image_index != len(counts):
        raise ValueError(f"prompt has {image_index} image tokens for {len(counts)} images")
    return expanded


def record_bundle(bundle_dir: Path) -> dict:
    name = bundle_dir.name
    config = json.loads((bundle_dir / "config.json").read_text())
    model = load_model(bundle_dir)
    upcast_to_float32(model)
    tokenizer = Tokenizer.from_file(str(bundle_dir / "tokenizer.json"))
    manifest = {}

    single_image = preprocess(bundle_dir, [IMAGES[0]])
    pixel_values = mx.array(single_image["pixel_values"].astype(np.float32))
    positions = mx.array(single_image["image_position_ids"].astype(np.int32))
    tower = model.vision_tower(pixel_values, positions)
    soft = model.embed_vision(tower)
    mx.eval(tower, soft)
    np.save(GOLDENS_DIR / f"{name}.vision.tiny_png.tower.npy", np.array(tower[0], dtype=np.float32))
    np.save(GOLDENS_DIR / f"{name}.vision.tiny_png.soft.npy", np.array(soft[0], dtype=np.float32))

    for prompt_name, text in PROMPTS.items():
        image_names = list(IMAGES[: text.count("<|image|>")])
        processed = preprocess(bundle_dir, image_names)
        counts = [int(n) for n in processed["num_soft_tokens_per_image"]]
        ids = [BOS_ID] + tokenizer.encode(text, add_special_tokens=False).ids
        ids = expand_image_tokens(ids, counts, config)
        output = model(
            mx.array([ids]),
            pixel_values=mx.array(processed["pixel_values"].astype(np.float32)),
            image_position_ids=mx.array(processed["image_position_ids"].astype(np.int32)),
        )
        logits = output.logits[0].astype(mx.float32)
        mx.eval(logits)
        np.save(GOLDENS_DIR / f"{name}.vision.{prompt_name}.logits.npy", np.array(logits))
        manifest[prompt_name] = {"images": image_names, "soft_tokens": counts, "ids": ids}
    return manifest


def main() -> None:
    manifest = {
        "packages": {p: metadata.version(p) for p in PACKAGES},
        "device": "mlx cpu, float32 parameters",
        "bundles": {},
    }
    for bundle in BUNDLES:
        manifest["bundles"][bundle] = record_bundle(REPO_ROOT / "fixtures" / "generated" / bundle)
    (GOLDENS_DIR / "vision_manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
