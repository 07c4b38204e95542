#!/usr/bin/env python3
"""Render goldens for `mxgemma template` with transformers' apply_chat_template(tokenize=False).

Each case is a request file (tests/data/template_command/requests/<name>.json) as the command
reads it, rendered on the tiny fixture bundle (fixtures/generated/tiny-hf) with the bundle's own
template or with a template of tests/data/chat_templates/templates/. The rendered prompts go to
tests/data/template_command/goldens.json; tests/cli/template_command_test.cpp compares byte for byte.

The older Gemma 4 template revision (the tiny bundle's, and gemma4_mlx_vlm.jinja) reads tool
results only from "tool_responses" on the assistant message, and mxgemma folds OpenAI-style
"tool" messages into that form for it. For those cases the golden is transformers' rendering of
the request after fold_tool_messages below, a Python rewrite of the same rule.

Run from the repository root (after scripts/make_fixtures.sh):
    .venv/bin/python scripts/oracle/template_command_goldens.py
"""

import copy
import json
import pathlib

from transformers import AutoTokenizer

REPO = pathlib.Path(__file__).resolve().parents[2]
BUNDLE = REPO / "fixtures" / "generated" / "tiny-hf"
TEMPLATES = REPO / "tests" / "data" / "chat_templates" / "templates"
OUT = REPO / "tests" / "data" / "template_command"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "array", "items": {"type": "integer"}, "description": "Days ahead"},
                "options": {
                    "type": "object",
                    "properties": {"hourly": {"type": "boolean"}, "note": {"type": ["string", "null"]}},
                },
            },
            "required": ["city"],
        },
    },
}

TOOL_ROUND_TRIP = [
    {"role": "system", "content": "You answer weather questions."},
    {"role": "user", "content": "Weather in Paris and Oslo?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}},
            {"id": "call_2", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "18 C, sunny"},
    {"role": "tool", "tool_call_id": "call_2", "name": "get_weather",
     "content": [{"type": "text", "text": "4 C, "}, {"type": "text", "text": "rain"}]},
    {"role": "assistant", "content": "Paris is sunny at 18 C; Oslo has rain at 4 C."},
    {"role": "user", "content": "Thanks \u2014 and tomorrow?"},
]

# (name, template file under TEMPLATES or None for the bundle's own, request)
CASES = [
    ("system_multi_turn", None, {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi there."},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Name a prime number."},
        ],
        "add_generation_prompt": True,
    }),
    ("no_generation_prompt", None, {
        "messages": [{"role": "user", "content": "  spaced  "}, {"role": "assistant", "content": "ok"}],
    }),
    ("tools_required", None, {
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": [WEATHER_TOOL],
        "tool_choice": "required",
        "add_generation_prompt": True,
    }),
    ("thinking_on", None, {
        "messages": [
            {"role": "system", "content": "Think step by step."},
            {"role": "user", "content": "Is 91 prime?"},
        ],
        "add_generation_prompt": True,
        "enable_thinking": True,
    }),
    ("reasoning_and_nulls", None, {
        "messages": [
            {"role": "user", "content": "Is 91 prime?", "name": None},
            {"role": "assistant", "content": "No: 91 = 7 x 13.", "reasoning_content": "Try 7.",
             "tool_calls": None},
            {"role": "user", "content": "And 97?"},
        ],
        "add_generation_prompt": True,
        "enable_thinking": True,
    }),
    ("tool_messages_older_revision", None, {
        "messages": TOOL_ROUND_TRIP, "tools": [WEATHER_TOOL], "add_generation_prompt": True,
    }),
    ("tool_messages_older_google", "gemma4_mlx_vlm.jinja", {
        "messages": TOOL_ROUND_TRIP, "tools": [WEATHER_TOOL], "add_generation_prompt": True,
    }),
    ("tool_messages_newer_revision", "gemma4_26b_gguf.jinja", {
        "messages": TOOL_ROUND_TRIP, "tools": [WEATHER_TOOL], "add_generation_prompt": True,
    }),
    ("tool_messages_newer_osaurus", "gemma4_26b_gguf_osaurus.jinja", {
        "messages": TOOL_ROUND_TRIP, "tools": [WEATHER_TOOL], "tool_choice": "required",
        "add_generation_prompt": True, "enable_thinking": True,
    }),
]

# Templates that read tool results only from "tool_responses" (the older Gemma 4 revision).
OLDER_REVISION = {None, "gemma4_mlx_vlm.jinja"}


def fold_tool_messages(messages):
    """Move each run of "tool" messages into "tool_responses" of the assistant message before it."""
    folded = []
    assistant = None
    for message in messages:
        if message.get("role") != "tool":
            folded.append(message)
            assistant = message if message.get("role") == "assistant" else None
            continue
        if assistant is None:
            folded.append(message)
            continue
        name = None
        for call in assistant.get("tool_calls") or []:
            if "tool_call_id" in message and call.get("id") == message["tool_call_id"]:
                name = call["function"]["name"]
                break
        if name is None:
            name = message.get("name")
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(part["text"] for part in content if part.get("type") == "text")
        response = {"name": name, "response": content} if name is not None else {"response": content}
        assistant.setdefault("tool_responses", []).append(response)
    return folded


def main():
    tokenizer = AutoTokenizer.from_pretrained(BUNDLE)
    (OUT / "requests").mkdir(parents=True, exist_ok=True)
    goldens = []
    for name, template_file, request in CASES:
        path = OUT / "requests" / (name + ".json")
        path.write_text(json.dumps(request, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        arguments = copy.deepcopy(request)
        messages = arguments.pop("messages")
        if template_file in OLDER_REVISION:
            messages = fold_tool_messages(messages)
        if template_file is not None:
            arguments["chat_template"] = (TEMPLATES / template_file).read_text(encoding="utf-8")
        rendered = tokenizer.apply_chat_template(messages, tokenize=False, **arguments)
        goldens.append({"name": name, "template": template_file, "expected": rendered})
    (OUT / "goldens.json").write_text(json.dumps({"cases": goldens}, indent=1, ensure_ascii=False) + "\n",
                                      encoding="utf-8")
    print(f"wrote {len(goldens)} cases to {OUT}")


if __name__ == "__main__":
    main()
