"""Chat rendering: ids and loss mask together; the same format as the tokenizer's chat template."""

import pytest

from crucible import testing
from crucible.model.chat import completion_parts, render_conversation, render_for_completion


@pytest.fixture(scope="module")
def tok():
    return testing.tokenizer(384)


CONVERSATION = {"messages": [
    {"role": "system", "content": "Answer with code."},
    {"role": "user", "content": "What is 6*7?"},
    {"role": "assistant", "content": [
        {"type": "text", "text": "Let me compute."},
        {"type": "python", "text": "print(6*7)"},
        {"type": "python_output", "text": "42\n"},
        {"type": "text", "text": "It is 42."}]},
    {"role": "user", "content": "Thanks"},
    {"role": "assistant", "content": "You're welcome."},
]}


def test_ids_and_mask(tok):
    s = tok.special_id
    ids, mask = render_conversation(tok, CONVERSATION)
    assert len(ids) == len(mask)
    assert tok.decode(ids) == (
        "<|bos|><|user_start|>Answer with code.\n\nWhat is 6*7?<|user_end|><|assistant_start|>Let me compute."
        "<|python_start|>print(6*7)<|python_end|><|output_start|>42\n<|output_end|>It is 42.<|assistant_end|>"
        "<|user_start|>Thanks<|user_end|><|assistant_start|>You're welcome.<|assistant_end|>")
    learned = tok.decode([t for t, m in zip(ids, mask) if m])
    assert learned == ("Let me compute.<|python_start|>print(6*7)<|python_end|>It is 42.<|assistant_end|>"
                       "You're welcome.<|assistant_end|>")
    for special in ("bos", "user_start", "user_end", "assistant_start", "output_start", "output_end"):
        assert all(m == 0 for t, m in zip(ids, mask) if t == s(special))


def test_matches_the_saved_chat_template(tok, tmp_path):
    """What vLLM/transformers render from tokenizer_config.json equals what we train on."""
    from transformers import AutoTokenizer
    tok.save(tmp_path)
    auto = AutoTokenizer.from_pretrained(str(tmp_path))
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "sum 1..3?"},
                {"role": "assistant", "content": "6"}, {"role": "user", "content": "and 1..4?"}]
    text = auto.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert auto.encode(text, add_special_tokens=False) == render_for_completion(tok, messages)


def test_render_for_completion_drops_the_last_answer(tok):
    ids = render_for_completion(tok, CONVERSATION)
    full, _ = render_conversation(tok, CONVERSATION)
    cut = len(full) - len(tok.encode("You're welcome.")) - 1
    assert ids == full[:cut]
    assert ids[-1] == tok.special_id("assistant_start")


def test_truncation(tok):
    ids, mask = render_conversation(tok, CONVERSATION, max_tokens=10)
    assert len(ids) == len(mask) == 10


def test_completion_parts_inverts_an_assistant_turn(tok):
    ids, _ = render_conversation(tok, CONVERSATION["messages"][:3])
    start = ids.index(tok.special_id("assistant_start"))
    assert completion_parts(tok, ids[start + 1:]) == CONVERSATION["messages"][2]["content"]


@pytest.mark.parametrize("messages, error", [
    ([], "non-empty"),
    ([{"role": "assistant", "content": "hi"}], "message 0: expected a user"),
    ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "message 1: expected a assistant"),
    ([{"role": "system", "content": "s"}], "followed by a user"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": [{"type": "image", "text": ""}]}], "parts"),
    ([{"role": "robot", "content": "a"}], "role"),
])
def test_invalid_conversations(tok, messages, error):
    with pytest.raises(ValueError, match=error):
        render_conversation(tok, {"messages": messages})


# Every role an OpenAI client sends: developer, consecutive same-role turns, tools, tool calls with
# null content, tool results, a trailing system message.
AGENT_MESSAGES = [
    {"role": "developer", "content": "You are an agent."},
    {"role": "system", "content": [{"type": "text", "text": "Use bash."}]},
    {"role": "user", "content": "List the files."},
    {"role": "user", "content": "Then stop."},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "bash", "arguments": "{\"command\": \"ls\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "a.py\nb.py"},
    {"role": "tool", "tool_call_id": "call_2", "content": "done"},
    {"role": "assistant", "content": "Two files."},
    {"role": "assistant", "content": "Anything else?"},
    {"role": "system", "content": "Be brief."},
]
TOOLS = [{"type": "function", "function": {"name": "bash", "description": "Run a command",
                                           "parameters": {"type": "object", "properties": {"command": {"type": "string"}}}}}]


def test_every_openai_role_folds_into_turns(tok):
    ids = render_for_completion(tok, AGENT_MESSAGES)
    assert tok.decode(ids) == (
        "<|bos|><|user_start|>You are an agent.\n\nUse bash.\n\nList the files.\n\nThen stop.<|user_end|>"
        "<|assistant_start|><tool_call>\n{\"name\": \"bash\", \"arguments\": {\"command\": \"ls\"}}\n</tool_call>"
        "<|assistant_end|><|user_start|><tool_response>\na.py\nb.py\n</tool_response>\n\n<tool_response>\ndone\n"
        "</tool_response><|user_end|><|assistant_start|>Two files.Anything else?<|assistant_end|>"
        "<|user_start|>Be brief.<|user_end|><|assistant_start|>")


def test_a_conversation_may_open_with_the_assistant(tok):
    ids = render_for_completion(tok, [{"role": "assistant", "content": "Hi."}, {"role": "user", "content": "Yo"}])
    assert tok.decode(ids) == ("<|bos|><|user_start|><|user_end|><|assistant_start|>Hi.<|assistant_end|>"
                               "<|user_start|>Yo<|user_end|><|assistant_start|>")


@pytest.mark.parametrize("cut", [3, 4, 7, 9, 10])
def test_the_saved_template_folds_every_role_as_the_renderer(tok, tmp_path, cut):
    from transformers import AutoTokenizer
    tok.save(tmp_path)
    auto = AutoTokenizer.from_pretrained(str(tmp_path))
    messages = AGENT_MESSAGES[:cut]
    if messages[-1]["role"] == "assistant":   # the renderer drops a final answer; the template keeps it
        messages = messages + [{"role": "user", "content": "ok"}]
    for tools in (None, TOOLS):
        text = auto.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
        assert auto.encode(text, add_special_tokens=False) == render_for_completion(tok, messages, tools)


def test_tools_become_a_system_text(tok):
    text = tok.decode(render_for_completion(tok, [{"role": "user", "content": "go"}], TOOLS))
    assert text.startswith("<|bos|><|user_start|># Tools\n")
    assert '<tools>\n{"type": "function", "function": {"name": "bash"' in text
    assert text.endswith("</tool_call>\n\ngo<|user_end|><|assistant_start|>")
