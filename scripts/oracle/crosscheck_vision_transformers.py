"""Compare the committed vision goldens (recorded with mlx-vlm) with transformers 5.25.

record_vision_goldens.py records mlx-vlm's outputs, because that environment has no torch. This
script runs transformers' Gemma4ForConditionalGeneration in float32 on the same tiny bundles,
images and prompts, and prints the largest difference from each golden. It writes nothing: it
is the second reference for the vision path, as record_audio_goldens.py is for audio.

Run: scripts/oracle/make_torch_env.sh, then .venv-torch/bin/python
scripts/oracle/crosscheck_vision_transformers.py (after record_vision_goldens.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent.parent
sys.path.insert(0, str(SCRIPT_DIR))

from record_audio_goldens import load_transformers_model  # noqa: E402
from record_vision_goldens import BUNDLES, GOLDENS_DIR, IMAGES, preprocess  # noqa: E402


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def main() -> None:
    manifest = json.loads((GOLDENS_DIR / "vision_manifest.json").read_text())
    worst = 0.0
    for bundle in BUNDLES:
        bundle_dir = REPO_ROOT / "fixtures" / "generated" / bundle
        config = json.loads((bundle_dir / "config.json").read_text())
        model = load_transformers_model(bundle_dir, config)
        single = preprocess(bundle_dir, [IMAGES[0]])
        with torch.no_grad():
            tower = model.model.vision_tower(
                pixel_values=torch.from_numpy(single["pixel_values"].astype(np.float32)),
                pixel_position_ids=torch.from_numpy(single["image_position_ids"].astype(np.int64)),
            ).last_hidden_state
            soft = model.model.embed_vision(inputs_embeds=tower)
        tower_rows = tower.reshape(-1, tower.shape[-1]).numpy()
        soft_rows = soft.reshape(-1, soft.shape[-1]).numpy()
        golden_tower = np.load(GOLDENS_DIR / f"{bundle}.vision.tiny_png.tower.npy")
        golden_soft = np.load(GOLDENS_DIR / f"{bundle}.vision.tiny_png.soft.npy")
        diffs = {
            "tower": max_abs(tower_rows[: len(golden_tower)], golden_tower),
            "soft": max_abs(soft_rows[: len(golden_soft)], golden_soft),
        }
        for prompt_name, entry in manifest["bundles"][bundle].items():
            processed = preprocess(bundle_dir, entry["images"])
            with torch.no_grad():
                logits = model(
                    input_ids=torch.tensor([entry["ids"]]),
                    pixel_values=torch.from_numpy(processed["pixel_values"].astype(np.float32)),
                    image_position_ids=torch.from_numpy(processed["image_position_ids"].astype(np.int64)),
                ).logits[0].float().numpy()
            diffs[prompt_name] = max_abs(logits, np.load(GOLDENS_DIR / f"{bundle}.vision.{prompt_name}.logits.npy"))
        print(bundle, " ".join(f"{key} {value:.2e}" for key, value in diffs.items()))
        worst = max(worst, *diffs.values())
    print(f"largest difference from the mlx-vlm goldens: {worst:.2e}")


if __name__ == "__main__":
    main()
