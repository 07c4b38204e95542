#!/usr/bin/env python3
"""Real-client check of `mxgemma serve` with the official `openai` Python package.

Starts the server on the tiny fixture on a free loopback port, then runs a plain request, a
streamed one, a tool-call round trip (call, tool result, final answer), thinking on and off, and
stop sequences. Exits non-zero on the first failed check. Not part of ctest, because the C++
tests must not need Python; run it by hand:

  .venv/bin/python tests/server/openai_client_test.py [--mxgemma build/bin/mxgemma]
"""

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import time

import openai

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check(condition, message):
    if not condition:
        raise AssertionError(message)
    print(f"ok: {message}")


def run_checks(client, model):
    messages = [{"role": "user", "content": "Say hello"}]

    plain = client.chat.completions.create(model=model, messages=messages, max_tokens=12, seed=3)
    check(plain.choices[0].message.role == "assistant", "plain: assistant message")
    check(plain.usage.completion_tokens <= 12, "plain: usage within max_tokens")

    chunks = list(client.chat.completions.create(model=model, messages=messages, max_tokens=12, seed=3, stream=True,
                                                 stream_options={"include_usage": True}))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check(streamed == (plain.choices[0].message.content or ""), "stream: deltas equal the plain content")
    check(chunks[-1].usage.completion_tokens == plain.usage.completion_tokens, "stream: usage chunk last")

    call = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Weather in Paris?"}],
                                          tools=TOOLS, tool_choice="required", max_tokens=24, seed=1)
    tool_calls = call.choices[0].message.tool_calls
    check(call.choices[0].finish_reason == "tool_calls" and tool_calls, "tools: required yields a call")
    check(tool_calls[0].function.name == "get_weather", "tools: the call names the tool")
    json.loads(tool_calls[0].function.arguments)
    followup = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [tc.model_dump() for tc in tool_calls]},
        {"role": "tool", "tool_call_id": tool_calls[0].id, "content": "sunny, 21 C"},
    ]
    answer = client.chat.completions.create(model=model, messages=followup, tools=TOOLS, max_tokens=12, seed=1)
    check(answer.choices[0].message.role == "assistant", "tools: final answer after the tool result")

    for thinking in (True, False):
        reply = client.chat.completions.create(model=model, messages=messages, max_tokens=8, seed=2,
                                               extra_body={"chat_template_kwargs": {"enable_thinking": thinking}})
        check(reply.choices[0].finish_reason in ("stop", "length"), f"thinking {thinking}: answered")

    content = ""
    for seed in range(1, 40):
        content = client.chat.completions.create(model=model, messages=messages, max_tokens=30,
                                                 seed=seed).choices[0].message.content or ""
        stop = next((content[i:i + 2] for i in range(1, len(content) - 1) if content[i:i + 2].isalnum()), None)
        if stop:
            break
    check(stop is not None, "stop: found an answer to cut")
    cut = client.chat.completions.create(model=model, messages=messages, max_tokens=30, seed=seed, stop=[stop])
    check(cut.choices[0].message.content == content[:content.index(stop)], "stop: content cut before the stop string")
    check(cut.choices[0].finish_reason == "stop", "stop: finish_reason stop")

    run_media_checks(client, model)

    try:
        client.chat.completions.create(model=model, messages=messages, n=2)
        check(False, "errors: n=2 rejected")
    except openai.BadRequestError as error:
        check(error.status_code == 400, "errors: n=2 rejected with 400")


def run_media_checks(client, model):
    with open(os.path.join(REPO, "tests", "data", "images", "tiny.png"), "rb") as image:
        url = "data:image/png;base64," + base64.b64encode(image.read()).decode()
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                             {"type": "image_url", "image_url": {"url": url}}]}]
    plain = client.chat.completions.create(model=model, messages=messages, max_tokens=8, temperature=0)
    check(plain.usage.prompt_tokens > 60, "image: prompt tokens count the image's soft tokens")
    chunks = list(client.chat.completions.create(model=model, messages=messages, max_tokens=8, temperature=0,
                                                 stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check(streamed == (plain.choices[0].message.content or ""), "image: stream equals the plain answer")

    try:
        client.chat.completions.create(model=model, max_tokens=4, messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,bm90IGFuIGltYWdl"}}]}])
        check(False, "image: a non-image rejected")
    except openai.BadRequestError as error:
        check(error.body["param"] == "messages[0].content[0].image_url.url", "image: the error names the part")

    with open(os.path.join(REPO, "tests", "data", "audio", "tone_440.wav"), "rb") as audio:
        transcription = client.audio.transcriptions.create(model=model, file=audio, language="en")
    check(isinstance(transcription.text, str) and transcription.text, "transcription: text returned")
    with open(os.path.join(REPO, "tests", "data", "audio", "tone_440.wav"), "rb") as audio:
        plain_text = client.audio.transcriptions.create(model=model, file=audio, language="en", response_format="text")
    check(plain_text == transcription.text, "transcription: response_format text gives the same text")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mxgemma", default=os.path.join(REPO, "build", "bin", "mxgemma"))
    parser.add_argument("--bundle", default=os.path.join(REPO, "fixtures", "generated", "tiny-hf"))
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([args.mxgemma, "serve", "-m", args.bundle, "--host", "127.0.0.1", "--port", str(port),
                               "--api-key", "test-key", "--parallel", "2", "--ctx-size", "2048"])
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="test-key", max_retries=0)
        for _ in range(100):
            try:
                model = client.models.list().data[0].id
                break
            except openai.APIConnectionError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the server did not start")
        run_checks(client, model)
        print("all checks passed")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
