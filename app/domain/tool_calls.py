"""Tool-calling conversations (TRL's format: an assistant turn with ``tool_calls`` and no
``content``, ``tool`` turns with their ``tool_call_id``, the tool schemas in a ``tools`` column):
checking them, showing them, and the chat template they are rendered with when the model's own
ignores tools (SmolLM2's does: it would drop the calls and fail on a turn without content)."""

from __future__ import annotations

import json
from typing import Any

# ChatML with tools as Hermes / Qwen2.5 write them: the schemas in the system turn, each call as
# <tool_call>{"name": …, "arguments": …}</tool_call>, each result as a user-side <tool_response>.
# (transformers renders templates with trim_blocks: a newline right after a tag is {{ '\\n' }}.)
TOOL_CHAT_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n"
    "{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}\n\n{% endif %}"
    "You can call these tools. For each call, reply with "
    "<tool_call>{\"name\": …, \"arguments\": …}</tool_call>.\n<tools>"
    "{% for tool in tools %}{{ '\\n' }}{{ tool | tojson }}{% endfor %}"
    "{{ '\\n' }}</tools><|im_end|>\n"
    "{% elif messages[0]['role'] == 'system' %}"
    "<|im_start|>system\n{{ messages[0]['content'] }}<|im_end|>\n{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{% elif message['role'] == 'assistant' %}<|im_start|>assistant\n"
    "{% if message['content'] %}{{ message['content'] }}{% endif %}"
    "{% for call in (message['tool_calls'] or []) %}"
    "{% set f = call['function'] if call['function'] is defined else call %}"
    "{% if message['content'] or not loop.first %}{{ '\\n' }}{% endif %}<tool_call>\n"
    "{\"name\": {{ f['name'] | tojson }}, \"arguments\": "
    "{{ f['arguments'] if f['arguments'] is string else f['arguments'] | tojson }}}"
    "\n</tool_call>{% endfor %}<|im_end|>\n"
    "{% elif message['role'] == 'tool' %}<|im_start|>user\n<tool_response>\n"
    "{{ message['content'] }}\n</tool_response><|im_end|>\n"
    "{% else %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def is_tool_row(row: dict[str, Any]) -> bool:
    """A row with tools or a conversation that calls one."""
    if row.get("tools"):
        return True
    messages = row.get("messages")
    return isinstance(messages, list) and any(
        isinstance(m, dict) and (m.get("tool_calls") or m.get("role") == "tool") for m in messages)


def supports_tools(tokenizer: Any) -> bool:
    template = getattr(tokenizer, "chat_template", None) or ""
    return isinstance(template, str) and "tool_calls" in template and "tools" in template


def use_tool_template(tokenizer: Any) -> bool:
    """Give ``tokenizer`` the tool-calling template unless its own renders tools; whether it
    changed (the adapter's saved tokenizer then carries it, so inference formats alike)."""
    if supports_tools(tokenizer):
        return False
    tokenizer.chat_template = TOOL_CHAT_TEMPLATE
    return True


def parse_tools(value: Any) -> list[dict[str, Any]] | None:
    """A ``tools`` cell as a list of schemas (JSON text decoded), None when empty."""
    if value is None or value == "":
        return None
    return json.loads(value) if isinstance(value, str) else value


def tools_problem(value: Any) -> str | None:
    """Why a ``tools`` cell is not a list of function schemas, or None."""
    try:
        tools = parse_tools(value)
    except json.JSONDecodeError as exc:
        return f"is not valid JSON: {exc.msg} at char {exc.pos}"
    if tools is None:
        return None
    if not isinstance(tools, list):
        return 'must be a list of tools like [{"type": "function", "function": {"name": …}}]'
    for number, tool in enumerate(tools, 1):
        function = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            return f"tool {number} has no function name"
    return None


def tool_calls_problem(calls: Any) -> str | None:
    """Why an assistant turn's ``tool_calls`` are not TRL's shape, or None."""
    if not isinstance(calls, list) or not calls:
        return "tool_calls must be a non-empty list"
    for number, call in enumerate(calls, 1):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            return f"tool call {number} has no function name"
        if not isinstance(function.get("arguments", {}), (dict, str)):
            return f"tool call {number} arguments must be an object"
    return None


def describe_call(call: dict[str, Any]) -> str:
    """``add(a=1, b=2)`` for the preview."""
    function = call.get("function") or {}
    arguments = function.get("arguments") or {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return f"{function.get('name')}({arguments})"
    inner = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in arguments.items())
    return f"{function.get('name')}({inner})"


def for_trainer(row: dict[str, Any]) -> dict[str, Any]:
    """The row as Arrow can hold it: tools as JSON text (TRL decodes it), call arguments as JSON
    text (their keys differ from call to call)."""
    out = dict(row)
    if "tools" in out:
        tools = parse_tools(out["tools"])
        out["tools"] = json.dumps(tools) if tools else None
    messages = out.get("messages")
    if isinstance(messages, list):
        out["messages"] = [_flat_message(m) for m in messages]
    return out


def _flat_message(message: dict[str, Any]) -> dict[str, Any]:
    calls = message.get("tool_calls")
    flat = {"role": message["role"], "content": message.get("content") or "",
            "tool_calls": None, "tool_call_id": message.get("tool_call_id")}
    if calls:
        flat["tool_calls"] = [{"type": c.get("type", "function"), "function": {
            "name": c["function"]["name"],
            "arguments": (c["function"].get("arguments") if isinstance(
                c["function"].get("arguments"), str) else json.dumps(
                c["function"].get("arguments") or {}))}} for c in calls]
    return flat
