#!/usr/bin/env bash
# Benchmarks image and audio encoding (file to soft tokens) in mxgemma against mlx-vlm (MLX CPU
# backend) on the same bundle and files, in one run, and prints both, their ratio and the
# machine's decode bound.
# Usage: bench/media_bench.sh BUNDLE [IMAGE] [AUDIO]
# Without IMAGE, the script draws a 1024x768 test picture. Without AUDIO, it makes a 30 s, 16 kHz
# clip of speech-like noise. Pass "-" to skip one of the two. MXGEMMA_BENCH_REPEAT (default 1)
# sets the timed runs after the warm-up on both sides, because mlx-vlm takes minutes per image at
# full size.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=${1:?usage: bench/media_bench.sh BUNDLE [IMAGE] [AUDIO]}
python=.venv/bin/python
[[ -x $python ]] || { echo "media_bench: $python not found: run scripts/make_fixtures.sh first" >&2; exit 1; }
# MXGEMMA_BIN selects another build of the CLI; by default build/ is brought up to date first.
mxgemma=${MXGEMMA_BIN:-build/bin/mxgemma}
[[ -n ${MXGEMMA_BIN:-} ]] || scripts/build.sh build >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
image=${2:-$work/picture.png}
audio=${3:-$work/speech_like_30s.wav}
$python - "$work" <<'PY'
import sys
import numpy as np
import soundfile
from PIL import Image
work = sys.argv[1]
rng = np.random.default_rng(0)
# A smooth picture with some texture, so the resize and the tower see ordinary content.
y, x = np.mgrid[0:768, 0:1024]
picture = np.stack([x / 4, y / 3, (x + y) / 7], axis=-1) % 256 + rng.integers(0, 24, (768, 1024, 3))
Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(f"{work}/picture.png")
# Noise shaped by a slow syllable-rate envelope.
t = np.arange(30 * 16000) / 16000
envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
soundfile.write(f"{work}/speech_like_30s.wav", 0.2 * envelope * rng.standard_normal(t.size), 16000, subtype="PCM_16")
PY

ours_args=() peer_args=()
[[ $image != - ]] && ours_args+=(--image "$image") && peer_args+=(--image "$image")
[[ $audio != - ]] && ours_args+=(--audio "$audio") && peer_args+=(--audio "$audio")
repeat=${MXGEMMA_BENCH_REPEAT:-1}
"$mxgemma" bench -m "$bundle" "${ours_args[@]}" --repeat "$repeat" --json > "$work/mxgemma.json"
$python bench/mlx_vlm_media_peer.py "$bundle" "${peer_args[@]}" --repeat "$repeat" > "$work/peer.json"

$python - "$work/mxgemma.json" "$work/peer.json" "$repeat" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))
peer = json.load(open(sys.argv[2]))
print(f"{'':34}{'mxgemma':>12}{'mlx-vlm cpu':>14}{'ratio':>8}")
def row(label, a, b):
    print(f"{label:34}{a:12.3f}{b:14.3f}{b / a:7.2f}x")
if "image" in ours:
    o, p = ours["image"], peer["image"]
    print(f"image: {o['width_after_resize']}x{o['height_after_resize']} after resizing, "
          f"{o['soft_tokens']} soft tokens (mlx-vlm: {p['soft_tokens']})")
    row("  preprocess (s)", o["preprocess_seconds"], p["preprocess_seconds"])
    row("  vision tower + embedder (s)", o["tower_seconds"], p["tower_seconds"])
    row("  encode one image (s)", o["encode_seconds"], p["encode_seconds"])
if "audio" in ours:
    o, p = ours["audio"], peer["audio"]
    print(f"audio: {o['clip_seconds']:.1f} s clip, {o['soft_tokens']} soft tokens")
    row("  decode and resample (s)", o["decode_seconds"], p["decode_seconds"])
    row("  log-mel features (s)", o["features_seconds"], p["features_seconds"])
    row("  audio tower + embedder (s)", o["tower_seconds"], p["tower_seconds"])
    row("  real-time factor", o["real_time_factor"], p["real_time_factor"])
print(f"{ours['threads']} threads, {ours['kernel_isa']} kernels; best of {sys.argv[3]} timed runs after a warm-up on both sides")
print(f"read bandwidth {ours['read_bandwidth_bytes_per_second'] / 1e9:.2f} GB/s -> text decode bound "
      f"{ours['decode_bound_tokens_per_second']:.2f} tok/s "
      f"({ours['weight_bytes_per_token'] / 2**30:.3f} GiB of weights per token)")
PY
