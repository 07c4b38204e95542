"""Write a random-weight Gemma 4 E2B bundle in the JANG/Osaurus MXFP4 layout, streaming.

The tiny fixture runs jang_tools.convert_gemma4_mxfp on a random checkpoint. At E2B size that
converter would hold whole float32 tensors in memory (embed_tokens_per_layer alone is 9.4 GB), so
this module produces the same layout tensor by tensor instead:
  - The metadata files (config.json, jang_config.json, sidecars) come from the real converter,
    run on a source folder that has the E2B config but no weights. The weight totals are filled
    in afterwards.
  - Each tensor follows the converter's own policy (quant_policy, sanitize_key and the passthrough
    preparation of jang_tools). It becomes mxfp4 (mx.quantize on float16 rows), float16
    passthrough, or bfloat16 for the media towers and embedders.
  - Shards are cut where the converter cuts them, after the tensor that reaches 1e9 bytes. They
    are written directly in jangq's aligned layout: payloads ordered by decreasing dtype size,
    then name, and the JSON header padded with spaces to a multiple of 8 bytes.
Peak memory is about one chunk of 2^24 float32 values plus MLX's working set.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import numpy as np
from jang_tools.convert_gemma4_mxfp import (
    _MULTIMODAL_FRAGMENTS,
    MAX_SHARD,
    _prepare_passthrough,
    quant_policy,
    sanitize_key,
)
from jang_tools.format.aligned_safetensors import verify_safetensors_alignment

import gemma4_spec
import make_fixtures
import tiny_tokenizer

CHUNK_ELEMENTS = 1 << 24
MXFP4_GROUP_SIZE = 32
REAL_TOKENIZER = make_fixtures.REPO_ROOT / "node_modules" / "@lenml" / "tokenizer-gemma3" / \
    "models" / "tokenizer.json"
DTYPE_BYTES = {"U32": 4, "F16": 2, "BF16": 2, "U8": 1}


@dataclass
class OutputTensor:
    """One tensor of the output bundle and where its bytes go."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    shard: int = 0
    offset: int = 0  # absolute file offset of the payload

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * DTYPE_BYTES[self.dtype]


@dataclass
class SourceJob:
    """One checkpoint tensor and the output tensors it becomes."""

    spec: gemma4_spec.TensorSpec
    quantized: bool
    bfloat16: bool
    outputs: list[OutputTensor]


def plan_jobs(config: dict) -> list[SourceJob]:
    """Decide every tensor's storage with the converter's policy, in the converter's order."""
    jobs = []
    for spec in gemma4_spec.checkpoint_tensors(config):
        policy = quant_policy(spec.name, bits=4)
        if policy.method == "skip":
            continue
        out_name = sanitize_key(spec.name)
        quantized = policy.method != "passthrough" and len(spec.shape) >= 2
        if quantized:
            if len(spec.shape) != 2 or spec.shape[1] % MXFP4_GROUP_SIZE:
                raise ValueError(f"tensor {spec.name}: shape {spec.shape} cannot be mxfp4-quantized")
            rows, cols = spec.shape
            base = out_name[: -len(".weight")] if out_name.endswith(".weight") else out_name
            outputs = [
                OutputTensor(f"{base}.weight", "U32", (rows, cols // 8)),
                OutputTensor(f"{base}.scales", "U8", (rows, cols // MXFP4_GROUP_SIZE)),
            ]
            jobs.append(SourceJob(spec, True, False, outputs))
            continue

        shape = spec.shape
        # The converter's passthrough step turns PyTorch depthwise conv1d [C, 1, K] into [C, K, 1].
        if out_name.endswith("conv1d.weight") and len(shape) == 3 and shape[-1] != 1:
            shape = (shape[0], shape[2], shape[1])
        bfloat16 = any(fragment in out_name.lower() for fragment in _MULTIMODAL_FRAGMENTS)
        outputs = [OutputTensor(out_name, "BF16" if bfloat16 else "F16", shape)]
        jobs.append(SourceJob(spec, False, bfloat16, outputs))
    return jobs


def assign_shards(jobs: list[SourceJob]) -> list[list[OutputTensor]]:
    """Group output tensors into shards as the converter does: it adds tensors in order and closes
    a shard as soon as its byte count reaches MAX_SHARD (possibly between a weight and its scales)."""
    shards: list[list[OutputTensor]] = [[]]
    shard_bytes = 0
    for job in jobs:
        for tensor in job.outputs:
            tensor.shard = len(shards) - 1
            shards[-1].append(tensor)
            shard_bytes += tensor.nbytes
            if shard_bytes >= MAX_SHARD:
                shards.append([])
                shard_bytes = 0
    if not shards[-1]:
        shards.pop()
    return shards


def aligned_header(tensors: list[OutputTensor]) -> bytes:
    """Build the safetensors header of one shard in jangq's aligned layout and set each tensor's
    absolute payload offset."""
    ordered = sorted(tensors, key=lambda tensor: (-DTYPE_BYTES[tensor.dtype], tensor.name))
    header = {}
    cursor = 0
    for tensor in ordered:
        header[tensor.name] = {
            "data_offsets": [cursor, cursor + tensor.nbytes],
            "dtype": tensor.dtype,
            "shape": list(tensor.shape),
        }
        tensor.offset = cursor
        cursor += tensor.nbytes
    encoded = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    alignment = max(8, max(DTYPE_BYTES[tensor.dtype] for tensor in tensors))
    encoded += b" " * ((-(8 + len(encoded))) % alignment)
    data_start = 8 + len(encoded)
    for tensor in tensors:
        tensor.offset += data_start
    return struct.pack("<Q", len(encoded)) + encoded


def rows_per_chunk(spec: gemma4_spec.TensorSpec) -> int:
    row_elements = int(np.prod(spec.shape[1:], dtype=np.int64)) if len(spec.shape) > 1 else 1
    return max(1, CHUNK_ELEMENTS // row_elements)


def to_bfloat16_bytes(values: np.ndarray) -> bytes:
    """Round float16-prepared values to bfloat16 with MLX, as the converter does."""
    array = mx.array(values.astype(np.float32), dtype=mx.bfloat16)
    return np.array(array.view(mx.uint16)).tobytes()


def write_job(job: SourceJob, files: list, seed: int) -> None:
    """Draw one tensor in row chunks, convert each chunk and write it at its offsets."""
    spec = job.spec
    rng = gemma4_spec.tensor_rng(seed, spec.name)

    if not job.quantized and (len(spec.shape) != 2):
        # Small tensors (scalars, vectors, conv kernels, the position table) are drawn whole.
        rows = spec.shape[0] if spec.shape else 1
        values = gemma4_spec.random_rows(spec, rng, 0, rows).reshape(spec.shape)
        prepared = _prepare_passthrough(job.outputs[0].name, values)
        payload = to_bfloat16_bytes(prepared) if job.bfloat16 else prepared.tobytes()
        os.pwrite(files[job.outputs[0].shard], payload, job.outputs[0].offset)
        return

    rows = spec.shape[0]
    step = rows_per_chunk(spec)
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        chunk = gemma4_spec.random_rows(spec, rng, start, stop)
        if job.quantized:
            weight, scales = mx.quantize(
                mx.array(chunk.astype(np.float16)),
                group_size=MXFP4_GROUP_SIZE,
                bits=4,
                mode="mxfp4",
            )
            for tensor, array in zip(job.outputs, (weight, scales)):
                data = np.array(array)
                row_bytes = data.nbytes // (stop - start)
                os.pwrite(files[tensor.shard], data.tobytes(), tensor.offset + start * row_bytes)
        else:
            prepared = _prepare_passthrough(job.outputs[0].name, chunk)
            payload = to_bfloat16_bytes(prepared) if job.bfloat16 else prepared.tobytes()
            tensor = job.outputs[0]
            row_bytes = len(payload) // (stop - start)
            os.pwrite(files[tensor.shard], payload, tensor.offset + start * row_bytes)


def full_size_tokenizer_json() -> str:
    """Return the real Gemma tokenizer if fetch_tokenizer.sh installed it, else the tiny tokenizer
    padded with <unused{i}> entries to E2B's 262144 ids."""
    if REAL_TOKENIZER.exists():
        return REAL_TOKENIZER.read_text(encoding="utf-8")
    tokenizer = tiny_tokenizer.build_tokenizer(
        make_fixtures.CORPUS_PATH.read_text(encoding="utf-8"), make_fixtures.TINY_VOCAB_SIZE
    )
    padded = tiny_tokenizer.pad_vocabulary(json.loads(tokenizer.to_str()), 262144)
    return json.dumps(padded, ensure_ascii=False, indent=2) + "\n"


def write_metadata_with_converter(out_dir: Path, config: dict, token_ids: dict,
                                  tokenizer_json: str, source_name: str) -> None:
    """Run the real converter on a weightless source so it writes config.json, jang_config.json
    and the sidecar files exactly as it would for the real checkpoint."""
    with tempfile.TemporaryDirectory() as temporary:
        source = Path(temporary) / source_name
        source.mkdir()
        make_fixtures.write_sidecars(source, config, token_ids, tokenizer_json)
        subprocess.run(
            [sys.executable, "-m", "jang_tools.convert_gemma4_mxfp", str(source), str(out_dir)],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "TQDM_DISABLE": "1"},
        )


def finish_metadata(out_dir: Path, shard_names: list[str], weight_map: dict[str, str],
                    passthrough_count: int | None = None) -> None:
    """Write the index and set the weight totals of jang_config.json from the shard files.

    The converter adds up the shard sizes once the shards are written, so its totals include the
    header padding of the aligned layout. A weightless conversion also leaves
    passthrough_tensor_count at 0, which `passthrough_count` replaces.
    """
    total_size = sum((out_dir / name).stat().st_size for name in shard_names)
    index = {"metadata": {"format": "mxfp4", "total_size": total_size}, "weight_map": weight_map}
    (out_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2),
                                                          encoding="utf-8")

    jang_path = out_dir / "jang_config.json"
    jang_config = json.loads(jang_path.read_text(encoding="utf-8"))
    if passthrough_count is not None:
        jang_config["quantization"]["passthrough_tensor_count"] = passthrough_count
    jang_config["runtime"]["total_weight_bytes"] = total_size
    jang_config["runtime"]["total_weight_gb"] = round(total_size / (1024 ** 3), 2)
    jang_path.write_text(json.dumps(jang_config, indent=2), encoding="utf-8")


def write_full_size_bundle(out_dir: Path, seed: int) -> None:
    """Write the E2B-config bundle (about 3.7 GB) to `out_dir`."""
    token_ids = gemma4_spec.e2b_token_ids()
    write_streamed_bundle(out_dir, gemma4_spec.e2b_config(token_ids), token_ids,
                          full_size_tokenizer_json(), seed, "gemma-4-E2B-it-random")


def write_streamed_bundle(out_dir: Path, config: dict, token_ids: dict, tokenizer_json: str,
                          seed: int, source_name: str) -> None:
    """Write a bundle in the JANG layout for any Gemma 4 config, streaming tensor by tensor.

    With the tiny config, seed and source name this reproduces make_fixtures' tiny-hf bundle
    byte for byte, which checks the streaming writer against the real converter.
    """
    started = time.monotonic()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    write_metadata_with_converter(out_dir, config, token_ids, tokenizer_json, source_name)

    jobs = plan_jobs(config)
    shards = assign_shards(jobs)
    shard_names = [f"model-{index + 1:05d}-of-{len(shards):05d}.safetensors"
                   for index in range(len(shards))]
    files = []
    try:
        for name, tensors in zip(shard_names, shards):
            header = aligned_header(tensors)
            size = len(header) + sum(tensor.nbytes for tensor in tensors)
            handle = os.open(out_dir / name, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            files.append(handle)
            os.ftruncate(handle, size)
            os.pwrite(handle, header, 0)
        for number, job in enumerate(jobs, 1):
            write_job(job, files, seed)
            if number % 50 == 0:
                print(f"  {number}/{len(jobs)} tensors, {time.monotonic() - started:.0f} s",
                      flush=True)
                mx.clear_cache()
    finally:
        for handle in files:
            os.close(handle)

    for name in shard_names:
        count, unaligned = verify_safetensors_alignment(out_dir / name)
        if unaligned:
            raise RuntimeError(f"{name}: {unaligned} of {count} tensors unaligned")

    weight_map = {tensor.name: shard_names[tensor.shard]
                  for job in jobs for tensor in job.outputs}
    passthrough_count = sum(1 for job in jobs if not job.quantized)
    finish_metadata(out_dir, shard_names, weight_map, passthrough_count)
    quantized_count = len(jobs) - passthrough_count
    print(f"bundle written to {out_dir} in {time.monotonic() - started:.0f} s: "
          f"{quantized_count} mxfp4 tensors, {passthrough_count} passthrough tensors, "
          f"{len(shard_names)} shards")
