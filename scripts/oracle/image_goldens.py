#!/usr/bin/env python3
"""Write the Gemma 4 image preprocessing goldens under tests/data/images/.

Each test image is generated here with PIL and saved in its format. It is then read back the way
the transformers pipeline reads a file: PIL.Image.open, ImageOps.exif_transpose, then the
Gemma4ImageProcessorPil of transformers. That processor composites transparency on white
(convert_to_rgb), resizes with PIL bicubic, rescales by 1/255, patchifies and pads. torch is not
installed, so the PIL backend is the reference; mlx-vlm resizes with PIL bicubic as well.

A full pixel_values array is 2520 x 768 float32 (7.7 MB) at the E2B budget, too large to commit,
so the goldens keep for each image:
  <name>.decoded.npy        int32 [H, W, 3]: the RGB pixels the processor starts from; for
                            images over LARGE_PIXELS only its sums over rows ([H], in
                            <name>.decoded_row_sums.npy) and columns ([W, 3], in
                            <name>.decoded_column_sums.npy)
  <name>.rows.npy           float32 [R, 768]: pixel_values rows at the indices in the manifest
  <name>.row_sums.npy       float32 [max_patches]: the sum of every row (float64 sum, then cast)
  <name>.column_sums.npy    float32 [768]: the sum of every column over all rows
  <name>.positions.npy      int32 [max_patches, 2]: image_position_ids
and manifest.json with the target size, the soft-token count and the sampled row indices.
size_rule.json holds get_aspect_ratio_preserving_size for a table of sizes (or its error).

Run: .venv/bin/python scripts/oracle/image_goldens.py
"""

import io
import json
import math
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from transformers.models.gemma4.image_processing_pil_gemma4 import (
    Gemma4ImageProcessorPil,
    get_aspect_ratio_preserving_size,
)

OUT_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "images"
ROW_SAMPLE_TARGET = 8
LARGE_PIXELS = 20_000


def pattern(height, width, seed, noise=18.0):
    """Return a uint8 [H, W, 3] image with gradients, stripes and noise, so resampling matters."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    red = 255 * x / max(width - 1, 1)
    green = 255 * y / max(height - 1, 1)
    blue = 127.5 + 127.5 * np.sin(x * 0.9 + y * 0.4)
    image = np.stack([red, green, blue], axis=-1) + rng.normal(0, noise, (height, width, 3))
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def png_chunk(kind, payload):
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def encode_png_16bit_rgb(pixels):
    """Encode uint16 [H, W, 3] as a 16-bit RGB PNG (PIL cannot write one)."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].astype(">u2").tobytes() for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def save(image, fmt, **params):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def make_images():
    """Return {file name: (encoded bytes, max_soft_tokens)}."""
    images = {}

    images["tiny.png"] = (save(Image.fromarray(pattern(3, 5, 1)), "PNG"), 70)
    images["very_wide.png"] = (save(Image.fromarray(pattern(8, 800, 2)), "PNG"), 70)
    images["very_tall.png"] = (save(Image.fromarray(pattern(600, 6, 3)), "PNG"), 70)
    images["wide.bmp"] = (save(Image.fromarray(pattern(12, 90, 4)), "BMP"), 70)
    # PIL writes RGBA as 32-bit BI_RGB BMP and reads it back as RGB, ignoring the fourth byte.
    bmp_alpha = np.dstack([pattern(10, 14, 22), np.linspace(0, 255, 140).reshape(10, 14)])
    images["alpha32.bmp"] = (save(Image.fromarray(bmp_alpha.astype(np.uint8), "RGBA"), "BMP"), 70)

    gray = Image.fromarray(pattern(29, 37, 5)[..., 1])
    images["gray.png"] = (save(gray, "PNG"), 70)

    palette_source = Image.fromarray(pattern(24, 40, 6))
    palette = palette_source.quantize(colors=16)
    images["palette.png"] = (save(palette, "PNG"), 70)
    # Index 0 transparent: convert_to_rgb must show those pixels as white.
    images["palette_trns.png"] = (save(palette, "PNG", transparency=0), 70)

    # 16-bit grayscale opens as PIL mode I;16, whose convert("RGB") clips values above 255.
    gray16 = (np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 3)
    images["gray16.png"] = (save(Image.fromarray(gray16), "PNG"), 70)
    rgb16 = pattern(18, 26, 7).astype(np.uint16) * 257 + np.uint16(99)
    images["rgb16.png"] = (encode_png_16bit_rgb(rgb16), 70)

    rgba = np.dstack([pattern(30, 22, 8), np.linspace(0, 255, 30 * 22).reshape(30, 22)])
    images["alpha.png"] = (save(Image.fromarray(rgba.astype(np.uint8), "RGBA"), "PNG"), 70)
    gray_alpha = np.dstack([pattern(16, 16, 9)[..., 0], pattern(16, 16, 10)[..., 2]])
    images["gray_alpha.png"] = (save(Image.fromarray(gray_alpha, "LA"), "PNG"), 70)

    photo = Image.fromarray(pattern(48, 64, 11))
    images["photo.jpg"] = (save(photo, "JPEG", quality=90), 280)
    cmyk = Image.fromarray(pattern(32, 24, 12)).convert("CMYK")
    images["cmyk.jpg"] = (save(cmyk, "JPEG", quality=90), 70)
    gray_jpeg = Image.fromarray(pattern(20, 28, 13)[..., 0])
    images["gray.jpg"] = (save(gray_jpeg, "JPEG", quality=85), 70)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display.
    rotated = Image.fromarray(pattern(30, 50, 14))
    images["exif_rotated.jpg"] = (save(rotated, "JPEG", quality=90, exif=exif.tobytes()), 70)

    frames = [Image.fromarray(pattern(20, 30, 15 + i)).quantize(colors=32) for i in range(2)]
    images["anim.gif"] = (save(frames[0], "GIF", save_all=True, append_images=frames[1:],
                               transparency=3, duration=100), 70)

    rgba_webp = np.dstack([pattern(24, 36, 17), np.full((24, 36), 200, np.uint8)])
    rgba_webp[:6, :6, 3] = 0
    images["lossless.webp"] = (save(Image.fromarray(rgba_webp, "RGBA"), "WEBP", lossless=True), 70)
    images["lossy.webp"] = (save(Image.fromarray(pattern(26, 34, 18)), "WEBP", quality=80), 70)

    # Larger than the budget, so the resize shrinks and the bicubic filter widens (antialiasing).
    # Little noise keeps the files small.
    images["large.png"] = (save(Image.fromarray(pattern(480, 640, 19, noise=0.0)), "PNG"), 70)
    images["large.jpg"] = (save(Image.fromarray(pattern(760, 1000, 20, noise=0.0)), "JPEG",
                                quality=50), 280)
    # One side already has its target size (48), so PIL runs only the other resize pass.
    images["horizontal_pass.png"] = (save(Image.fromarray(pattern(48, 900, 23, noise=0.0)), "PNG"),
                                     70)
    images["vertical_pass.png"] = (save(Image.fromarray(pattern(900, 48, 24, noise=0.0)), "PNG"),
                                   70)
    return images


def make_orientation_images():
    """Return {file name: JPEG bytes} for EXIF orientations 2..8 of one small image."""
    images = {}
    source = Image.fromarray(pattern(3, 5, 21))
    for orientation in range(2, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        images[f"orientation_{orientation}.jpg"] = save(source, "JPEG", quality=95,
                                                        exif=exif.tobytes())
    return images


def reference_arrays(data, max_soft_tokens):
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    processor = Gemma4ImageProcessorPil(max_soft_tokens=max_soft_tokens)
    decoded = processor.convert_to_rgb(image)
    batch = processor(images=[image], return_tensors="np")
    return (decoded, batch["pixel_values"][0], batch["image_position_ids"][0],
            int(batch["num_soft_tokens_per_image"][0]))


def sample_rows(num_valid, num_total):
    stride = max(1, math.ceil(num_valid / ROW_SAMPLE_TARGET))
    rows = list(range(0, num_valid, stride))
    rows.append(num_valid - 1)
    if num_valid < num_total:
        rows.append(num_valid)  # the first padding row
    return sorted(set(rows))


def size_rule_table():
    cases = []
    for height, width in [(1, 1), (3, 5), (48, 48), (100, 100), (480, 640), (803, 803),
                          (1080, 1920), (8, 800), (600, 6), (1, 5000), (5000, 1), (2, 300000),
                          (1000, 1), (804, 804), (768, 1024), (17, 4000)]:
        for tokens in (70, 140, 280, 560, 1120):
            entry = {"height": height, "width": width, "max_soft_tokens": tokens}
            try:
                target = get_aspect_ratio_preserving_size(height, width, 16, tokens * 9, 3)
                entry["target"] = list(target)
            except ValueError as error:
                entry["error"] = str(error).split(".")[0]
            cases.append(entry)
    return cases


def write_image_goldens(name, data, tokens):
    """Write the goldens of one image and return its manifest entry."""
    (OUT_DIR / name).write_bytes(data)
    decoded, pixels, positions, soft_tokens = reference_arrays(data, tokens)
    num_valid = int((positions[:, 0] >= 0).sum())
    rows = sample_rows(num_valid, pixels.shape[0])
    stem = OUT_DIR / name
    decoded_full = decoded.shape[0] * decoded.shape[1] <= LARGE_PIXELS
    if decoded_full:
        np.save(f"{stem}.decoded.npy", decoded.astype(np.int32))
    else:
        sums = decoded.astype(np.int32)
        np.save(f"{stem}.decoded_row_sums.npy", sums.sum(axis=(1, 2)).astype(np.int32))
        np.save(f"{stem}.decoded_column_sums.npy", sums.sum(axis=0).astype(np.int32))
    np.save(f"{stem}.rows.npy", pixels[rows].astype(np.float32))
    np.save(f"{stem}.row_sums.npy", pixels.astype(np.float64).sum(axis=1).astype(np.float32))
    np.save(f"{stem}.column_sums.npy", pixels.astype(np.float64).sum(axis=0).astype(np.float32))
    np.save(f"{stem}.positions.npy", positions.astype(np.int32))
    return {"max_soft_tokens": tokens, "num_soft_tokens": soft_tokens,
            "target_height": int(positions[:num_valid, 1].max() + 1) * 16,
            "target_width": int(positions[:num_valid, 0].max() + 1) * 16,
            "num_patches": num_valid, "rows": rows, "decoded_full": bool(decoded_full)}


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    images = {name: write_image_goldens(name, data, tokens)
              for name, (data, tokens) in make_images().items()}

    for name, data in make_orientation_images().items():
        (OUT_DIR / name).write_bytes(data)
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
        np.save(OUT_DIR / f"{name}.decoded.npy", np.asarray(image.convert("RGB"), np.int32))

    manifest = {"images": images, "orientation_images": sorted(make_orientation_images())}
    text = json.dumps(manifest).replace("}, ", "},\n ")
    (OUT_DIR / "manifest.json").write_text(text + "\n")
    (OUT_DIR / "size_rule.json").write_text(json.dumps(size_rule_table(), indent=1) + "\n")
    total = sum(path.stat().st_size for path in OUT_DIR.iterdir())
    print(f"wrote {len(images)} images and goldens to {OUT_DIR} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
