"""A directory that is not a native checkpoint is refused with NotACheckpoint, naming the path and
what is missing, by the library (GPT.from_pretrained, Engine.load) before anything is built, and by
the commands with exit code 2 (issue 8, part 3)."""

from __future__ import annotations

import pytest

from crucible.cli import main as cli
from crucible import testing
from crucible.model.engine import Engine
from crucible.model.gpt import GPT, NotACheckpoint

LOADERS = [GPT.from_pretrained, Engine.load]


def empty(d):
    d.mkdir()


def random_file(d):
    d.mkdir()
    (d / "notes.txt").write_text("not a model")


def missing(d):
    pass


def with_config(text):
    def make(d):
        d.mkdir()
        (d / "config.json").write_text(text)
        (d / "model.safetensors").write_bytes(b"\0" * 16)  # never read: the config is refused first
        (d / "tokenizer.json").write_text("{}")
    return make


garbage_config = with_config("not json")
foreign_model = with_config('{"model_type": "llama", "hidden_size": 64}')  # a Hugging Face Llama's


@pytest.mark.parametrize("make, why", [(empty, "no config.json, model.safetensors"),
                                       (random_file, "no config.json, model.safetensors"),
                                       (missing, "no such directory"),
                                       (garbage_config, "config.json: not a checkpoint config"),
                                       (foreign_model, "a 'llama' model, not a native crucible checkpoint")])
@pytest.mark.parametrize("load", LOADERS, ids=["from_pretrained", "engine"])
def test_library_names_the_directory_and_what_is_missing(tmp_path, make, why, load):
    d = tmp_path / "ckpt"
    make(d)
    with pytest.raises(NotACheckpoint) as e:
        load(d)
    assert str(d) in str(e.value)
    assert why in str(e.value)


def test_engine_needs_the_tokenizer_too(tmp_path):
    testing.random_gpt(testing.tokenizer(320)).save_pretrained(tmp_path)  # weights, no tokenizer
    assert isinstance(GPT.from_pretrained(tmp_path), GPT)
    with pytest.raises(NotACheckpoint, match=r"no tokenizer\.json"):
        Engine.load(tmp_path)


def test_not_a_checkpoint_is_a_value_error():
    assert issubclass(NotACheckpoint, ValueError)


@pytest.mark.parametrize("argv", [["chat", "--model", "native:{d}"], ["golf", "export", "{d}", "--out", "{out}"]])
def test_commands_exit_2_naming_the_directory(tmp_path, capsys, argv):
    d = tmp_path / "not-a-ckpt"
    random_file(d)
    out = tmp_path / "artifact.bin"
    assert cli([a.format(d=d, out=out) for a in argv]) == 2
    err = capsys.readouterr().err
    assert f"{d}: not a checkpoint" in err
    assert not out.exists()
