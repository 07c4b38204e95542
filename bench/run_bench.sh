#!/usr/bin/env bash
# Benchmarks mxgemma against mlx-vlm (MLX CPU backend) on the same bundle and prompt tokens, in one
# run, and prints both with their ratios and the machine's decode bound.
# Usage: bench/run_bench.sh BUNDLE [PROMPT_TOKENS] [DECODE_TOKENS]
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=${1:?usage: bench/run_bench.sh BUNDLE [PROMPT_TOKENS] [DECODE_TOKENS]}
prompt_tokens=${2:-512}
decode_tokens=${3:-128}
python=.venv/bin/python
[[ -x $python ]] || { echo "run_bench: $python not found: run scripts/make_fixtures.sh first" >&2; exit 1; }
# MXGEMMA_BIN selects another build of the CLI; by default build/ is brought up to date first.
mxgemma=${MXGEMMA_BIN:-build/bin/mxgemma}
[[ -n ${MXGEMMA_BIN:-} ]] || scripts/build.sh build >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The prompt: BOS, then spread-out ids of the bundle's vocabulary.
$python - "$bundle" "$prompt_tokens" > "$work/prompt.json" <<'PY'
import json, sys
config = json.load(open(f"{sys.argv[1]}/config.json"))
vocab = config.get("text_config", config)["vocab_size"]
count = int(sys.argv[2])
print(json.dumps([2] + [3 + (i * 7919) % (vocab - 3) for i in range(1, count)]))
PY

"$mxgemma" bench -m "$bundle" --prompt-file "$work/prompt.json" --decode-tokens "$decode_tokens" --json \
  > "$work/mxgemma.json"
$python bench/mlx_vlm_peer.py "$bundle" --prompt-file "$work/prompt.json" --decode-tokens "$decode_tokens" \
  > "$work/peer.json"

$python - "$work/mxgemma.json" "$work/peer.json" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))
peer = json.load(open(sys.argv[2]))
print(f"{'':28}{'mxgemma':>12}{'mlx-vlm cpu':>14}{'ratio':>8}")
for key, label in [("load_seconds", "load time (s)"),
                   ("prefill_tokens_per_second", "prefill (tok/s)"),
                   ("time_to_first_token_seconds", "time to first token (s)"),
                   ("decode_tokens_per_second", "decode (tok/s)")]:
    lower_is_better = key.endswith("seconds")
    ratio = peer[key] / ours[key] if lower_is_better else ours[key] / peer[key]
    print(f"{label:28}{ours[key]:12.3f}{peer[key]:14.3f}{ratio:7.2f}x")
print(f"prompt {ours['prompt_tokens']} tokens, decode {ours['decode_tokens']} tokens, "
      f"{ours['threads']} threads, {ours['kernel_isa']} kernels")
print(f"tokenizer load {ours['tokenizer_load_seconds']:.2f} s (part of mxgemma's load time)")
print(f"peak RSS {ours['peak_rss_bytes'] / 2**30:.2f} GiB, weights read per token "
      f"{ours['weight_bytes_per_token'] / 2**30:.3f} GiB")
print(f"read bandwidth {ours['read_bandwidth_bytes_per_second'] / 1e9:.2f} GB/s -> decode bound "
      f"{ours['decode_bound_tokens_per_second']:.2f} tok/s; mxgemma decode is "
      f"{100 * ours['decode_fraction_of_bound']:.0f}% of it")
PY
