"""`crucible data filter`: each rule rejects what it names, keeps clean records, and reports per rule."""

import json

from crucible.cli import main
from crucible.posttrain.filters import Filters, NearDuplicates, load_filters, run_filters


def chat(answer, user="question?"):
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


CLEAN = chat("def add(a, b):\n    return a + b")
BAD = {
    "html_tags": chat("Here it is: <div>code</div>"),
    "stock_labels": chat("Answer: 42"),
    "placeholder_images": chat("See ![diagram](https://example.com/placeholder.png)"),
    "emoji_runs": chat("Done! \U0001F600\U0001F601\U0001F602"),
    "hedges_refusals": chat("As an AI language model, I cannot do that."),
    "repeated_lines": chat("x = 1\nprint(x)\nprint(x)\nprint(x)"),
    "length": chat(""),
    "think_unclosed": chat("<think>hmm, so the answer is 3"),
    "answer_inside_think": chat("<think>the answer is 3</think>   "),
    "tool_tags_unbalanced": chat("<tool_call>run()"),
    "tool_outputs_per_call": chat("<tool_call>a</tool_call><tool_output>1</tool_output><tool_output>2</tool_output>"),
}


def records(rows):
    return [(f"in.jsonl:{i + 1}", r) for i, r in enumerate(rows)]


def test_each_rule_rejects_its_case_and_clean_records_pass():
    kept, report = run_filters(records([CLEAN, *BAD.values()]), Filters())
    assert kept == [CLEAN]
    for rule in BAD:
        assert report["rules"][rule]["count"] == 1, rule


def test_think_closed_with_an_answer_after_it_is_kept():
    ok = chat("<think>add them</think>\nreturn a + b")
    kept, _ = run_filters(records([ok]), Filters())
    assert kept == [ok]


def test_two_outputs_for_one_python_part_are_rejected():
    parts = [{"type": "python", "text": "print(1)"}, {"type": "python_output", "text": "1"},
             {"type": "python_output", "text": "1"}]
    record = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": parts}]}
    kept, report = run_filters(records([record]), Filters())
    assert kept == []
    assert "tool_outputs_per_call" in report["rules"]


def test_exact_and_near_duplicates_keep_the_first():
    text = " ".join(f"word{i}" for i in range(100))   # one word changed: Jaccard of 5-grams 0.90
    near = text.replace("word30", "other30")
    kept, report = run_filters(records([chat(text), chat(text), chat(near), CLEAN]), Filters())
    assert kept == [chat(text), CLEAN]
    assert report["rules"]["exact_duplicate"]["examples"] == ["in.jsonl:2"]
    assert report["rules"]["near_duplicate"]["examples"] == ["in.jsonl:3"]


def test_near_duplicate_detector_separates_unrelated_texts():
    nd = NearDuplicates(0.85)
    assert not nd.seen(" ".join(f"a{i}" for i in range(50)))
    assert not nd.seen(" ".join(f"b{i}" for i in range(50)))


def test_cli_writes_kept_records_and_a_report_with_shares(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in [CLEAN, BAD["stock_labels"], BAD["html_tags"], CLEAN]))
    cfg = tmp_path / "filters.toml"
    cfg.write_text('[regex]\nstock_labels = "(?im)^\\\\s*answer\\\\s*:"\n[dedup]\nnear = 0\n')
    assert main(["data", "filter", str(src), "--out", str(tmp_path / "out.jsonl"), "--config", str(cfg)]) == 0
    kept = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    report = json.loads((tmp_path / "out.jsonl.report.json").read_text())
    assert kept == [CLEAN, BAD["html_tags"]]          # html_tags is not in this config's [regex]
    assert report["rules"]["stock_labels"]["share"] == 0.25
    assert report["rules"]["exact_duplicate"]["count"] == 1
    assert "stock_labels" in capsys.readouterr().out


def test_a_bad_config_exits_2(tmp_path, capsys):
    cfg = tmp_path / "filters.toml"
    cfg.write_text("[regex]\nbroken = \"(\"\n")
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(CLEAN) + "\n")
    assert main(["data", "filter", str(src), "--out", str(tmp_path / "o.jsonl"), "--config", str(cfg)]) == 2
    assert str(cfg) in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()
    assert load_filters(None).near_dedup == 0.85
