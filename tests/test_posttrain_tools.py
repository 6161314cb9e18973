"""SFT on conversations with tool calls: data checks, masks through HF chat templates and crucible's
own format, and `crucible sft` end to end.

The tokenizer (byte-level BPE with the chat markers as special tokens) and the two templates are
written here, nothing downloaded: a Qwen2.5-style one (tools in the system turn, calls as
<tool_call> JSON, tool results as <tool_response> in a user turn) and a Llama-3.1-style one (tools
in the first user turn, one call per turn as {"name", "parameters"}, results under the ipython
header). They follow those models' rendering, written anew, not copied.
"""

import json
import re
from pathlib import Path

import pytest
from test_sft import cli

from crucible.posttrain.data import DataError, Example, load_mixture
from crucible.posttrain.render import HFRenderer, NativeRenderer, TemplateError
from crucible.testing import tokenizer

TOOLS = [{"type": "function", "function": {
    "name": "bash", "description": "Run a shell command",
    "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}]


def call(command: str, call_id: str, as_string: bool = False) -> dict:
    arguments = {"command": command}
    return {"id": call_id, "type": "function",
            "function": {"name": "bash", "arguments": json.dumps(arguments) if as_string else arguments}}


def conversation(files: str = "a.py b.py", as_string: bool = False) -> dict:
    return {"tools": TOOLS, "instance_id": f"ls-{files}", "messages": [
        {"role": "system", "content": "You are a careful agent."},
        {"role": "user", "content": "Which files are here?"},
        {"role": "assistant", "content": None, "tool_calls": [call("ls", "c1", as_string)]},
        {"role": "tool", "tool_call_id": "c1", "name": "bash", "content": files},
        {"role": "assistant", "content": f"The files: {files}."}]}


SPECIALS = ["<|bos|>", "<|eos|>", "<|pad|>", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>",
            "<tool_response>", "</tool_response>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]

QWEN_STYLE = (
    "{% if tools %}<|im_start|>system\n{% if messages[0].role == 'system' %}{{ messages[0].content }}\n\n{% endif %}"
    "# Tools\n\nYou may call functions. Their signatures:\n<tools>{% for t in tools %}{{ '\\n' }}{{ t | tojson }}{% endfor %}"
    "{{ '\\n' }}</tools><|im_end|>\n"
    "{% elif messages[0].role == 'system' %}<|im_start|>system\n{{ messages[0].content }}<|im_end|>\n{% endif %}"
    "{% for m in messages %}"
    "{% if m.role == 'user' or (m.role == 'system' and not loop.first) %}"
    "<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
    "{% elif m.role == 'assistant' %}<|im_start|>assistant{% if m.content %}{{ '\\n' + m.content }}{% endif %}"
    "{% for c in m.tool_calls or [] %}{{ '\\n' }}<tool_call>\n"
    "{\"name\": \"{{ c.function.name }}\", \"arguments\": {{ c.function.arguments | tojson }}}\n</tool_call>"
    "{% endfor %}<|im_end|>\n"
    "{% elif m.role == 'tool' %}"
    "{% if loop.first or messages[loop.index0 - 1].role != 'tool' %}<|im_start|>user{% endif %}"
    "{{ '\\n' }}<tool_response>\n{{ m.content }}\n</tool_response>"
    "{% if loop.last or messages[loop.index0 + 1].role != 'tool' %}<|im_end|>\n{% endif %}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

LLAMA_STYLE = (
    "<|bos|>{% set rest = messages[1:] if messages[0].role == 'system' else messages %}"
    "<|start_header_id|>system<|end_header_id|>\n\n{% if tools %}Environment: ipython\n{% endif %}"
    "{% if messages[0].role == 'system' %}{{ messages[0].content }}{% endif %}<|eot_id|>"
    "{% for m in rest %}"
    "{% if m.role == 'user' %}<|start_header_id|>user<|end_header_id|>\n\n"
    "{% if tools and loop.first %}Given these functions, answer with a JSON function call.\n\n"
    "{% for t in tools %}{{ t | tojson(indent=4) }}\n\n{% endfor %}{% endif %}{{ m.content }}<|eot_id|>"
    "{% elif m.role == 'assistant' and m.tool_calls %}"
    "{% if m.tool_calls | length != 1 %}{{ raise_exception('This model makes one tool call at a time.') }}{% endif %}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"{{ m.tool_calls[0].function.name }}\", "
    "\"parameters\": {{ m.tool_calls[0].function.arguments | tojson }}}<|eot_id|>"
    "{% elif m.role == 'assistant' %}<|start_header_id|>assistant<|end_header_id|>\n\n{{ m.content }}<|eot_id|>"
    "{% elif m.role == 'tool' %}<|start_header_id|>ipython<|end_header_id|>\n\n{{ m.content }}<|eot_id|>"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")


def save_tokenizer(out: Path, template: str):
    """A byte-level BPE trained on a few tool conversations, the markers special, with `template`.
    (transformers renders with trim_blocks: a newline right after a tag is dropped, hence {{ '\\n' }}.)"""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    texts = [json.dumps(conversation(f"f{i}.py")) for i in range(4)]
    bpe.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|bos|>", eos_token="<|eos|>",
                                  pad_token="<|pad|>", additional_special_tokens=SPECIALS[3:])
    tok.chat_template = template
    tok.save_pretrained(out)
    return tok


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    return save_tokenizer(tmp_path_factory.mktemp("qwen"), QWEN_STYLE)


def example(row: dict, where: str = "d.jsonl:1") -> Example:
    return Example(where, messages=row["messages"], tools=row.get("tools"))


def spans(renderer, ids, mask, trained: int) -> list[str]:
    """The rendered text of each run of tokens with mask == trained."""
    out, current = [], None
    for t, m in zip(ids, mask):
        if m == trained:
            current = (current or "") + renderer.token_text(t)
        elif current is not None:
            out.append(current)
            current = None
    return out + ([current] if current is not None else [])


# -- data --------------------------------------------------------------------------------------------

def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_tool_conversations_read_with_their_tools(tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", [conversation(), conversation("c.py", as_string=True)])
    examples, _ = load_mixture([str(f)])
    assert [e.tools for e in examples] == [TOOLS, TOOLS]
    assert "tools" not in examples[0].extra
    assert examples[0].extra["instance_id"].startswith("ls-")


def broken(edit) -> dict:
    row = conversation()
    edit(row["messages"], row)
    return row


BAD = {
    "tool message answering no call": (lambda ms, r: ms.insert(2, {"role": "tool", "content": "x"}), "message 2"),
    "unknown tool_call_id": (lambda ms, r: ms[3].update(tool_call_id="c9"), "'c9'"),
    "a call answered twice": (lambda ms, r: ms.insert(4, dict(ms[3])), "message 4"),
    "arguments not JSON": (lambda ms, r: ms[2]["tool_calls"][0]["function"].update(arguments="{ls"), "not valid JSON"),
    "arguments not an object": (lambda ms, r: ms[2]["tool_calls"][0]["function"].update(arguments="[1]"), "JSON object"),
    "a call without a name": (lambda ms, r: ms[2]["tool_calls"][0]["function"].pop("name"), "tool call 0"),
    "duplicate call ids": (lambda ms, r: ms[2]["tool_calls"].append(call("pwd", "c1")), "unique"),
    "a user making calls": (lambda ms, r: ms[1].update(tool_calls=[call("ls", "u1")]), "only assistant"),
    "null content without calls": (lambda ms, r: ms[4].update(content=None), "message 4"),
    "tools not a list of objects": (lambda ms, r: r.update(tools=["bash"]), "'tools'"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_malformed_tool_records_name_file_line_and_problem(tmp_path, name):
    edit, expected = BAD[name]
    f = write_jsonl(tmp_path / "d.jsonl", [conversation(), broken(edit)])
    with pytest.raises(DataError) as e:
        load_mixture([str(f)])
    assert f"{f}:2" in str(e.value)
    assert expected in str(e.value)


def test_a_tool_message_may_answer_by_name_or_in_order(tmp_path):
    by_name = broken(lambda ms, r: ms[3].pop("tool_call_id"))
    in_order = broken(lambda ms, r: [ms[3].pop("tool_call_id"), ms[3].pop("name")])
    f = write_jsonl(tmp_path / "d.jsonl", [by_name, in_order])
    examples, _ = load_mixture([str(f)])
    assert len(examples) == 2


def test_a_preference_pair_keeps_its_tools_and_checks_its_calls(tmp_path, qwen):
    from crucible.posttrain.render import pair_examples

    prompt = conversation()["messages"][:4]
    pair = {"messages": prompt, "tools": TOOLS, "chosen": "Two files.", "rejected": "No files."}
    answering_nothing = {**pair, "messages": [m for m in prompt if m["role"] != "assistant"]}
    f = write_jsonl(tmp_path / "pairs.jsonl", [pair])
    chosen, _ = pair_examples(load_mixture([str(f)], pairs=True)[0][0])
    r = HFRenderer(qwen)
    ids, mask = r.example(chosen)
    assert json.dumps(TOOLS[0]) in qwen.decode(ids)
    assert spans(r, ids, mask, 1)[-1] == "Two files.<|im_end|>\n"
    with pytest.raises(DataError) as e:
        load_mixture([str(write_jsonl(tmp_path / "bad.jsonl", [pair, answering_nothing]))], pairs=True)
    assert f"{tmp_path / 'bad.jsonl'}:2" in str(e.value)


# -- masks -------------------------------------------------------------------------------------------

TOOL_RESULT = {"qwen": "<tool_response>\na.py b.py\n</tool_response>",
               "llama": "<|start_header_id|>ipython<|end_header_id|>\n\na.py b.py<|eot_id|>",
               "native": "<tool_response>\na.py b.py\n</tool_response>"}
TRAINED = {
    "qwen": ['<tool_call>\n{"name": "bash", "arguments": {"command": "ls"}}\n</tool_call><|im_end|>\n',
             "The files: a.py b.py.<|im_end|>\n"],
    "llama": ['{"name": "bash", "parameters": {"command": "ls"}}<|eot_id|>', "The files: a.py b.py.<|eot_id|>"],
    "native": ['<tool_call>\n{"name": "bash", "arguments": {"command": "ls"}}\n</tool_call><|assistant_end|>',
               "The files: a.py b.py.<|assistant_end|>"]}


def renderer(style: str, tmp_path):
    if style == "native":
        return NativeRenderer(tokenizer())
    return HFRenderer(save_tokenizer(tmp_path, {"qwen": QWEN_STYLE, "llama": LLAMA_STYLE}[style]))


@pytest.mark.parametrize("style", sorted(TRAINED))
def test_exactly_the_calls_and_the_answer_are_trained(style, tmp_path):
    r = renderer(style, tmp_path)
    ids, mask = r.example(example(conversation()))
    assert spans(r, ids, mask, 1) == TRAINED[style]


@pytest.mark.parametrize("style", sorted(TRAINED))
def test_tool_output_system_user_and_tools_are_masked(style, tmp_path):
    r = renderer(style, tmp_path)
    ids, mask = r.example(example(conversation()))
    masked = "".join(spans(r, ids, mask, 0))
    assert TOOL_RESULT[style] in masked
    assert "You are a careful agent." in masked
    assert "Which files are here?" in masked
    assert '"description": "Run a shell command"' in masked


# -- HF templates ------------------------------------------------------------------------------------

def test_the_tools_json_is_in_the_rendered_text(qwen):
    r = HFRenderer(qwen)
    ids, _ = r.example(example(conversation()))
    assert json.dumps(TOOLS[0]) in qwen.decode(ids)


def test_string_arguments_render_as_the_object_would(qwen):
    r = HFRenderer(qwen)
    assert r.example(example(conversation(as_string=True))) == r.example(example(conversation()))


def test_parallel_calls_and_their_results_render_in_order(qwen):
    row = conversation()
    row["messages"][2]["tool_calls"].append(call("pwd", "c2"))
    row["messages"].insert(4, {"role": "tool", "tool_call_id": "c2", "content": "/repo"})
    r = HFRenderer(qwen)
    ids, mask = r.example(example(row))
    masked = "".join(spans(r, ids, mask, 0))
    assert '{"command": "pwd"}' in spans(r, ids, mask, 1)[0]
    assert "</tool_response>\n<tool_response>\n/repo\n</tool_response><|im_end|>" in masked


def test_the_prompt_for_sampling_carries_the_tools(qwen):
    r = HFRenderer(qwen)
    prompt = qwen.decode(r.prompt(Example("p", messages=conversation()["messages"][:4], tools=TOOLS)))
    assert prompt.startswith("<|im_start|>system\nYou are a careful agent.\n\n# Tools")
    assert prompt.endswith("</tool_response><|im_end|>\n<|im_start|>assistant\n")


def test_a_template_that_rewrites_past_tool_calls_is_refused_naming_the_message(tmp_path):
    # Only the latest message keeps its calls' arguments: earlier calls are re-rendered without them.
    unstable = QWEN_STYLE.replace("{% for c in m.tool_calls or [] %}",
                                  "{% set latest = loop.last %}{% for c in m.tool_calls or [] %}"
                                  ).replace("{{ c.function.arguments | tojson }}",
                                            "{{ c.function.arguments | tojson if latest else '{}' }}")
    tok = save_tokenizer(tmp_path, unstable)
    with pytest.raises(TemplateError) as e:
        HFRenderer(tok).example(example(conversation(), "traj.jsonl:12"))
    assert "traj.jsonl:12" in str(e.value)
    assert "message 2 (assistant with tool calls)" in str(e.value)
    assert "prefix-stable" in str(e.value)


def test_a_template_that_raises_is_a_data_error_naming_the_record(tmp_path):
    tok = save_tokenizer(tmp_path, LLAMA_STYLE)
    row = conversation()
    row["messages"][2]["tool_calls"].append(call("pwd", "c2"))
    with pytest.raises(DataError) as e:
        HFRenderer(tok).example(example(row, "d.jsonl:3"))
    assert "d.jsonl:3" in str(e.value)
    assert "one tool call at a time" in str(e.value)


def test_crucible_saved_template_finds_the_native_mask_on_tool_conversations(tmp_path):
    from transformers import AutoTokenizer

    tok = tokenizer()
    tok.save(tmp_path / "tok")
    hf, native = HFRenderer(AutoTokenizer.from_pretrained(str(tmp_path / "tok"))), NativeRenderer(tok)
    for row in (conversation(), conversation(as_string=True)):
        hf_ids, hf_mask = hf.example(example(row))
        native_ids, native_mask = native.example(example(row))
        assert hf_ids == native_ids
        assert hf_mask == native_mask


# -- crucible sft end to end -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def qwen_model(qwen, tmp_path_factory):
    """A random 2-layer Llama with the Qwen-style tokenizer and template."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("qwen_model")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(qwen), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=qwen.bos_token_id, eos_token_id=qwen.convert_tokens_to_ids("<|im_end|>"),
                         pad_token_id=qwen.pad_token_id, tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(out)
    qwen.save_pretrained(out)
    return out


def test_sft_trains_on_tool_conversations_then_shows_their_mask(qwen_model, tmp_path):
    data = write_jsonl(tmp_path / "tools.jsonl", [conversation(f"f{i}.py") for i in range(6)])
    cli("sft", "--model", f"hf:{qwen_model}", "--data", data, "--max-steps", 3, "--batch-size", 2,
        "--seq-len", 512, "--val-fraction", 0, "--out", tmp_path / "run", "--no-progress")
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    start = next(r for r in log if r.get("event") == "start")
    losses = [r["loss"] for r in log if r.get("event") == "train"]
    assert start["dropped_over_long"] == 0
    assert len(losses) == 3
    assert all(0 < loss < 20 for loss in losses)
    assert (tmp_path / "run" / "config.json").is_file()

    shown = cli("sft", "--model", f"hf:{qwen_model}", "--data", data, "--show-mask", 2, "--out", tmp_path / "peek").stdout
    trained = re.findall(r"\[\[(.*?)\]\]", shown, re.S)
    assert any(t.startswith('<tool_call>\n{"name": "bash"') for t in trained)
    assert not any("<tool_response>" in t for t in trained)
    assert "<tool_response>" in shown
    assert '<span class="t">' in (tmp_path / "peek" / "mask.html").read_text()


def test_sft_refuses_a_bad_tool_record_with_exit_2_and_writes_nothing(qwen_model, tmp_path):
    bad = broken(BAD["unknown tool_call_id"][0])
    data = write_jsonl(tmp_path / "bad.jsonl", [conversation(), bad])
    p = cli("sft", "--model", f"hf:{qwen_model}", "--data", data, "--out", tmp_path / "run", check=False)
    assert p.returncode == 2
    assert f"{data}:2" in p.stderr
    assert not (tmp_path / "run").exists()
