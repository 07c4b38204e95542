"""Time mlx-vlm on MLX's CPU backend encoding the same image or audio clip as `mxgemma bench`.

Prints one JSON object. For an image: the time of mlx-vlm's own Gemma 4 image processor (file to
pixel array) and of vision_tower + embed_vision, and the soft-token count. For audio: the time of
decoding and resampling (mlx-vlm's load_audio), of its Gemma 4 feature extractor and of
audio_tower + embed_audio, and the real-time factor (encode time / clip duration). Each tower is
run once to warm up and then `--repeat` times; the best run counts, as in mxgemma's bench.
"""

import argparse
import json
import time
from pathlib import Path

import mlx.core as mx

mx.set_default_device(mx.cpu)

import numpy as np  # noqa: E402
from mlx_vlm.models.gemma4.audio_feature_extractor import Gemma4AudioFeatureExtractor  # noqa: E402
from mlx_vlm.models.gemma4.processing_gemma4 import Gemma4ImageProcessor  # noqa: E402
from mlx_vlm.utils import load_audio, load_model  # noqa: E402
from PIL import Image  # noqa: E402


def best_of(repeat: int, run) -> tuple[float, object]:
    run()  # warm-up: MLX compiles and allocates on the first call
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def bench_image(model, processor_config: dict, path: str, repeat: int) -> dict:
    processor = Gemma4ImageProcessor(**processor_config["image_processor"])

    def preprocess():
        data, counts = processor(Image.open(path))
        return data, counts

    preprocess_seconds, (data, counts) = best_of(repeat, preprocess)
    pixel_values = mx.array(np.asarray(data["pixel_values"], dtype=np.float32))

    def encode():
        features = model.encode_image(pixel_values)
        mx.eval(features)
        return features

    tower_seconds, features = best_of(repeat, encode)
    return {
        "soft_tokens": int(counts[0]),
        "preprocess_seconds": preprocess_seconds,
        "tower_seconds": tower_seconds,
        "encode_seconds": preprocess_seconds + tower_seconds,
        "output_shape": list(features.shape),
    }


def bench_audio(model, processor_config: dict, path: str, repeat: int) -> dict:
    extractor_config = dict(processor_config["feature_extractor"])
    extractor_config.pop("feature_extractor_type", None)
    extractor = Gemma4AudioFeatureExtractor(**extractor_config)
    rate = extractor_config.get("sampling_rate", 16000)

    decode_seconds, samples = best_of(repeat, lambda: np.asarray(load_audio(path, sr=rate), dtype=np.float32))
    features_seconds, features = best_of(repeat, lambda: extractor(samples))
    input_features = mx.array(np.asarray(features["input_features"], dtype=np.float32))
    invalid = mx.array(~np.asarray(features["input_features_mask"], dtype=bool))

    def encode():
        encoded, _ = model.audio_tower(input_features, invalid)
        embedded = model.embed_audio(encoded)
        mx.eval(embedded)
        return embedded

    tower_seconds, embedded = best_of(repeat, encode)
    duration = len(samples) / rate
    encode_seconds = features_seconds + tower_seconds
    return {
        "clip_seconds": duration,
        "decode_seconds": decode_seconds,
        "features_seconds": features_seconds,
        "tower_seconds": tower_seconds,
        "encode_seconds": encode_seconds,
        "real_time_factor": encode_seconds / duration,
        "output_shape": list(embedded.shape),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--image")
    parser.add_argument("--audio")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not args.image and not args.audio:
        parser.error("give --image FILE, --audio FILE or both")

    started = time.perf_counter()
    model = load_model(Path(args.bundle))
    mx.eval(model.parameters())
    report = {"load_seconds": time.perf_counter() - started}
    processor_config = json.loads((Path(args.bundle) / "processor_config.json").read_text(encoding="utf-8"))
    if args.image:
        report["image"] = bench_image(model, processor_config, args.image, args.repeat)
    if args.audio:
        report["audio"] = bench_audio(model, processor_config, args.audio, args.repeat)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
