"""Record MLX quantizer outputs for the C++ quantizers in src/convert/mx_quantize.cpp.

Writes tests/data/quantize/quantize_goldens.safetensors with, for every case NAME:
  NAME.input                  the source values in their own dtype (F32, BF16 or F16)
  NAME.mxfp4_cpu.{weight,scales}         mx.quantize(w16, mode="mxfp4", group_size=32) on MLX's CPU
  NAME.affine4.{weight,scales,biases}    mx.quantize(w16, mode="affine", bits=4, group_size=64)
  NAME.affine8.{weight,scales,biases}    the same with bits=8
  NAME.mxfp4_gpu.{weight,scales}         metal_mxfp4_model(w16) below
where w16 is the input rounded to fp16 (through fp32, ties to even), as the bundle converter
rounds every weight before quantizing.

MLX's Metal kernel cannot run here (no Apple GPU), so the GPU rule is checked against
metal_mxfp4_model, an independent NumPy transcription of the kernel fp_quantize in
mlx/backend/metal/kernels/fp_quantized.h with fp8_e8m0 (fp8.h) and fp4_e2m1 (fp4.h) as of MLX
commit 846d1762 (2026-08-22): the exponent of the scale is log2(amax / 6) rounded to nearest, as
in the published MXFP4 bundles. MLX 0.32.4 itself rounds that exponent up on both devices (its
CPU results here show it), so the mxfp4_cpu goldens and this model differ on purpose.

Usage: .venv/bin/python scripts/oracle/quantize_goldens.py
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import mlx.core as mx

mx.set_default_device(mx.cpu)

import numpy as np  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
OUT_DIR = REPO_ROOT / "tests" / "data" / "quantize"
SEED = 20261204
ROWS, COLS = 4, 128  # 16 MXFP4 groups and 8 affine groups of 64 per case


def metal_mxfp4_model(w16: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MXFP4 codes and E8M0 scales as the Metal kernel computes them, in fp32."""
    groups = w16.astype(np.float32).reshape(-1, 32)
    with np.errstate(all="ignore"):
        # simd_max is modelled as fmax: a NaN lane does not win over a number.
        amax = np.fmax.reduce(np.abs(groups), axis=1)
        s = (amax / np.float32(6.0)).astype(np.float32)
        log2_s = np.log2(s).astype(np.float32)
        # metal::round rounds half away from zero; the int conversion saturates before the clamp.
        rounded = np.sign(log2_s) * np.floor(np.abs(log2_s) + np.float32(0.5))
        n = np.clip(np.nan_to_num(rounded, nan=0.0, posinf=127.0, neginf=-127.0), -127, 127)
        scale_bytes = (n + 127).astype(np.uint8)
        scale_bytes[~np.isfinite(s)] = 0xFF
        decoded_bits = np.where(scale_bytes == 0, np.uint32(0x00400000),
                                scale_bytes.astype(np.uint32) << np.uint32(23))
        decoded = decoded_bits.astype(np.uint32).view(np.float32)
        inverse = np.where(decoded == 0, np.float32(0), np.float32(1) / decoded).astype(np.float32)
        q = (groups * inverse[:, None]).astype(np.float32)

    x = np.abs(q)
    magnitude = np.zeros(q.shape, dtype=np.uint32)
    # Thresholds of fp4_e2m1's constructor: ties go to the even mantissa.
    for threshold, code, inclusive in ((0.25, 1, False), (0.75, 2, True), (1.25, 3, False),
                                       (1.75, 4, True), (2.5, 5, False), (3.5, 6, True),
                                       (5.0, 7, False)):
        hit = x >= threshold if inclusive else x > threshold
        magnitude = np.where(hit, np.uint32(code), magnitude)
    codes = magnitude | np.where(np.signbit(q), np.uint32(8), np.uint32(0))
    codes = np.where(np.isnan(q), np.uint32(7), codes).astype(np.uint32)

    shifts = (np.arange(8, dtype=np.uint32) * 4)
    words = (codes.reshape(-1, 8) << shifts).sum(axis=1, dtype=np.uint64).astype(np.uint32)
    rows = w16.shape[0]
    return words.reshape(rows, -1), scale_bytes.reshape(rows, -1)


def boundary_rows(rng: np.random.Generator) -> np.ndarray:
    """Groups whose values sit exactly on E2M1 rounding boundaries after scaling.

    With amax = 6 * 2^k the scale is 2^k on both devices, so value/scale lands exactly on
    0.25, 0.75, ..., 5 (and the negatives); other rows use amax on the exponent tie
    log2(amax / 6) = k + 0.5 as near as fp16 allows, and affine groups whose edges hit
    whole codes."""
    mids = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0], dtype=np.float32)
    rows = []
    for k in (-3, 0, 4):
        group = np.concatenate([mids, -mids, mids * 0.5, -mids[::-1]]) * np.float32(2.0 ** k)
        rows.append(np.tile(group, COLS // 32))
    tie_amax = np.float32(6.0 * np.sqrt(2.0))
    row = rng.uniform(-1, 1, COLS).astype(np.float32)
    row[::32] = tie_amax
    row[1::32] = -np.float32(np.nextafter(np.float16(tie_amax), np.float16(10)))
    rows.append(row)
    return np.stack(rows)


def just_above_powers(rng: np.random.Generator) -> np.ndarray:
    """Groups whose amax is 1 to 8 fp16 steps above 6 * 2^k, so amax / 6 lies just above a power of
    two: log2 of it rounds to k in fp16 but its ceiling is k + 1. Real weights hit this often."""
    groups = []
    for k in range(-10, 5):
        boundary = np.float16(6.0 * 2.0 ** k)
        for steps in range(1, 9):
            amax = boundary
            for _ in range(steps):
                amax = np.nextafter(amax, np.float16(np.inf))
            group = (rng.uniform(-1, 1, 32) * np.float32(amax)).astype(np.float16)
            group[rng.integers(0, 32)] = amax if steps % 2 else -amax
            groups.append(group)
    values = np.concatenate(groups)
    values = np.resize(values, (len(values) + COLS - 1) // COLS * COLS)
    return values.reshape(-1, COLS)


def make_cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    normal = lambda scale: (rng.standard_normal((ROWS, COLS)) * scale).astype(np.float32)  # noqa: E731
    cases: dict[str, np.ndarray] = {
        "random_f32": normal(0.02),
        "random_wide_f32": (normal(1.0) * np.exp(rng.uniform(-6, 6, (ROWS, 1)))).astype(np.float32),
        "zeros_f16": np.zeros((ROWS, COLS), dtype=np.float16),
        "negative_zeros_f16": np.full((ROWS, COLS), -0.0, dtype=np.float16),
        "tiny_f32": normal(1e-6),
        "subnormal_f16": (rng.integers(-1023, 1024, (ROWS, COLS))
                          .astype(np.int16).view(np.uint16) & np.uint16(0x83FF)).view(np.float16),
        "huge_f32": normal(20000.0),
        "overflow_f32": normal(50000.0),
        "boundaries_f32": boundary_rows(rng),
        "just_above_powers_f16": just_above_powers(rng),
        "random_bf16": normal(0.05),
        "huge_bf16": normal(1e5),
        "constant_f16": np.full((ROWS, COLS), 3.0, dtype=np.float16),
    }
    special = normal(1.0)
    special[0, 5] = np.inf
    special[1, 40] = -np.inf
    special[2, 70] = np.nan
    special[3, 0:32] = np.nan
    cases["inf_nan_f32"] = special
    return cases


def to_fp16(values: np.ndarray, dtype_name: str) -> np.ndarray:
    with np.errstate(over="ignore"):
        if dtype_name == "bf16":
            # Round to bf16 first, because the case's source values are bf16.
            as_bf16 = mx.array(values).astype(mx.bfloat16).astype(mx.float32)
            return np.array(as_bf16).astype(np.float16)
        return values.astype(np.float32).astype(np.float16)


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, mx.array] = {}
    for name, values in make_cases().items():
        dtype_name = name.rsplit("_", 1)[1]
        if dtype_name == "bf16":
            tensors[f"{name}.input"] = mx.array(values).astype(mx.bfloat16)
        elif dtype_name == "f16":
            tensors[f"{name}.input"] = mx.array(values.astype(np.float16))
        else:
            tensors[f"{name}.input"] = mx.array(values.astype(np.float32))
        w16 = mx.array(to_fp16(values, dtype_name))

        wq, scales = mx.quantize(w16, group_size=32, bits=4, mode="mxfp4")
        tensors[f"{name}.mxfp4_cpu.weight"] = wq
        tensors[f"{name}.mxfp4_cpu.scales"] = scales
        for bits in (4, 8):
            wq, scales, biases = mx.quantize(w16, group_size=64, bits=bits, mode="affine")
            tensors[f"{name}.affine{bits}.weight"] = wq
            tensors[f"{name}.affine{bits}.scales"] = scales
            tensors[f"{name}.affine{bits}.biases"] = biases
        gpu_words, gpu_scales = metal_mxfp4_model(np.array(w16))
        tensors[f"{name}.mxfp4_gpu.weight"] = mx.array(gpu_words)
        tensors[f"{name}.mxfp4_gpu.scales"] = mx.array(gpu_scales)

    mx.eval(tensors)
    metadata_fields = {
        "seed": str(SEED),
        "mlx": metadata.version("mlx"),
        "cases": json.dumps(sorted({key.split(".")[0] for key in tensors})),
    }
    path = OUT_DIR / "quantize_goldens.safetensors"
    mx.save_safetensors(str(path), tensors, metadata=metadata_fields)
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
