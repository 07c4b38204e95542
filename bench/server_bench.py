#!/usr/bin/env python3
"""Drive `mxgemma serve` and `mlx_vlm.server` with N concurrent streaming chat clients.

Each server is started on 127.0.0.1 with the same bundle, then every concurrency level sends N
identical-length streaming requests at once. For each level the script prints three figures:
the aggregate decode rate (completion tokens of all requests / wall time), the per-request
decode rate ((tokens - 1) / (last chunk - first chunk)) and the time to first token. The ratios
mxgemma / mlx-vlm follow. Only loopback addresses are used.

Example (small settings: mlx-vlm on CPU decodes about 0.4 tok/s on the E2B shape):
  .venv/bin/python bench/server_bench.py -m models/e2b-random --concurrency 1,4,16 \
      --prompt-words 4 --max-tokens 8 --mlx-concurrency 1
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port, path, process, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode} before it was ready")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server on port {port} was not ready after {timeout} s")


def stream_request(port, model, prompt, max_tokens, timeout, result):
    """Sends one streaming chat request and records its timings into `result`."""
    body = json.dumps({
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    })

    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    if response.status != 200:
        result["error"] = f"HTTP {response.status}: {response.read()[:200]!r}"
        return

    chunk_times = []
    usage = None
    for raw_line in response:
        line = raw_line.decode("utf-8", "replace").strip()
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            break
        event = json.loads(payload)
        if event.get("usage"):
            usage = event["usage"]
        for choice in event.get("choices", []):
            delta = choice.get("delta", {})
            if delta.get("content") or delta.get("reasoning_content") or delta.get("reasoning") or delta.get("tool_calls"):
                chunk_times.append(time.perf_counter())
    end = time.perf_counter()

    result["wall"] = end - start
    result["ttft"] = (chunk_times[0] - start) if chunk_times else float("nan")
    # Servers may merge several tokens into one chunk; usage is exact when present.
    tokens = usage["completion_tokens"] if usage else len(chunk_times)
    result["tokens"] = tokens
    span = (chunk_times[-1] - chunk_times[0]) if len(chunk_times) > 1 else 0.0
    result["decode_rate"] = (tokens - 1) / span if tokens > 1 and span > 0 else float("nan")


def run_level(port, model, clients, prompt, max_tokens, timeout):
    results = [dict() for _ in range(clients)]
    threads = [threading.Thread(target=stream_request, args=(port, model, prompt, max_tokens, timeout, results[i]))
               for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    errors = [r["error"] for r in results if "error" in r]
    done = [r for r in results if "error" not in r and "tokens" in r]
    total_tokens = sum(r["tokens"] for r in done)
    rates = [r["decode_rate"] for r in done if r["decode_rate"] == r["decode_rate"]]
    ttfts = [r["ttft"] for r in done if r["ttft"] == r["ttft"]]
    return {
        "clients": clients,
        "completed": len(done),
        "errors": errors,
        "aggregate_tok_s": total_tokens / wall if wall > 0 else float("nan"),
        "per_request_tok_s": statistics.mean(rates) if rates else float("nan"),
        "ttft_s": statistics.mean(ttfts) if ttfts else float("nan"),
        "tokens": total_tokens,
        "wall_s": wall,
    }


def start_mxgemma(args, port):
    binary = args.mxgemma or os.path.join(REPO, "build", "bin", "mxgemma")
    command = [binary, "serve", "-m", args.model, "--host", "127.0.0.1", "--port", str(port),
               "--parallel", str(max(args.concurrency)), "--ctx-size", str(args.ctx_size),
               "--queue", "256", "--timeout", str(args.timeout)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    return subprocess.Popen(command, stderr=subprocess.PIPE if args.quiet else None), "/health"


def start_mlx_vlm(args, port):
    command = [sys.executable, "-m", "mlx_vlm.server", "--host", "127.0.0.1", "--port", str(port),
               "--model", args.model, "--max-num-seqs", str(max(args.mlx_concurrency))]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE if args.quiet else None), "/health"


def bench_server(name, start, args, levels):
    port = free_port()
    process, ready_path = start(args, port)
    try:
        load_start = time.time()
        wait_ready(port, ready_path, process, args.load_timeout)
        print(f"{name}: ready on 127.0.0.1:{port} after {time.time() - load_start:.1f} s", flush=True)
        model = args.model
        prompt = " ".join(["word"] * args.prompt_words)
        # One short request first, so lazy initialization does not count against level 1.
        run_level(port, model, 1, prompt, 2, args.timeout)
        rows = []
        for clients in levels:
            row = run_level(port, model, clients, prompt, args.max_tokens, args.timeout)
            rows.append(row)
            print(f"{name} N={clients}: {json.dumps(row)}", flush=True)
        return rows
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def decode_bound(binary, model, threads):
    """Return the read bandwidth and the single-stream decode bound that mxgemma bench measures."""
    command = [binary, "bench", "-m", model, "--prompt-tokens", "8", "--decode-tokens", "4", "--json",
               "-t", str(threads)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--model", default=os.path.join(REPO, "models", "e2b-random"), help="bundle folder")
    parser.add_argument("--mxgemma", help="mxgemma binary (default: build/bin/mxgemma)")
    parser.add_argument("--concurrency", default="1,4,16", help="client counts for mxgemma, comma-separated")
    parser.add_argument("--mlx-concurrency", default=None,
                        help="client counts for mlx-vlm (default: the same as --concurrency)")
    parser.add_argument("--prompt-words", type=int, default=16, help="words in the user message")
    parser.add_argument("--max-tokens", type=int, default=32, help="max_tokens of every request")
    parser.add_argument("--ctx-size", type=int, default=1024, help="mxgemma --ctx-size")
    parser.add_argument("--threads", type=int, default=0, help="mxgemma --threads (0: all cores)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per request")
    parser.add_argument("--load-timeout", type=float, default=600, help="seconds to wait for a server to load")
    parser.add_argument("--servers", default="mxgemma,mlx_vlm", help="which servers to run")
    parser.add_argument("--quiet", action="store_true", help="hide the servers' logs")
    args = parser.parse_args()
    args.concurrency = [int(n) for n in args.concurrency.split(",")]
    args.mlx_concurrency = [int(n) for n in args.mlx_concurrency.split(",")] if args.mlx_concurrency else args.concurrency

    servers = args.servers.split(",")
    results = {}
    if "mxgemma" in servers:
        results["mxgemma"] = {row["clients"]: row for row in bench_server("mxgemma", start_mxgemma, args, args.concurrency)}
    if "mlx_vlm" in servers:
        results["mlx_vlm"] = {row["clients"]: row for row in bench_server("mlx_vlm", start_mlx_vlm, args, args.mlx_concurrency)}

    print()
    print(f"prompt {args.prompt_words} words, max_tokens {args.max_tokens}, greedy")
    header = f"{'server':8} {'N':>3} {'done':>5} {'aggregate tok/s':>16} {'per-request tok/s':>18} {'TTFT s':>8}"
    print(header)
    for name, rows in results.items():
        for clients, row in sorted(rows.items()):
            print(f"{name:8} {clients:>3} {row['completed']:>5} {row['aggregate_tok_s']:>16.2f} "
                  f"{row['per_request_tok_s']:>18.2f} {row['ttft_s']:>8.2f}")
    if "mxgemma" in servers:
        binary = args.mxgemma or os.path.join(REPO, "build", "bin", "mxgemma")
        bench = decode_bound(binary, args.model, args.threads)
        print()
        print(f"memory-bandwidth bound for decode on this machine: read bandwidth "
              f"{bench['read_bandwidth_bytes_per_second'] / 1e9:.1f} GB/s, "
              f"{bench['weight_bytes_per_token'] / 1e9:.2f} GB of weights per token, so "
              f"{bench['decode_bound_tokens_per_second']:.1f} tok/s for one stream; N streams decoded "
              f"together share one read of the weights")
    if "mxgemma" in results and "mlx_vlm" in results:
        print()
        print("ratios mxgemma / mlx-vlm (TTFT: mlx-vlm / mxgemma, so higher is better for mxgemma)")
        for clients in sorted(set(results["mxgemma"]) & set(results["mlx_vlm"])):
            ours, theirs = results["mxgemma"][clients], results["mlx_vlm"][clients]
            ratio = lambda a, b: a / b if b and b == b and a == a else float("nan")
            print(f"N={clients}: aggregate {ratio(ours['aggregate_tok_s'], theirs['aggregate_tok_s']):.1f}x, "
                  f"per-request {ratio(ours['per_request_tok_s'], theirs['per_request_tok_s']):.1f}x, "
                  f"TTFT {ratio(theirs['ttft_s'], ours['ttft_s']):.1f}x")


if __name__ == "__main__":
    main()
