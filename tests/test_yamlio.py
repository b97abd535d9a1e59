"""The JSON mirror of the shipped YAML files (specs/yamlio.py): current, identical to what
PyYAML parses (types and key order too), used only for the exact text it was made from."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from perfmodel.specs import yamlio

SHIPPED = yamlio.shipped_yaml_files()


def test_the_mirror_is_what_the_shipped_files_give():
    """Rebuilt from the shipped files: a file added or edited since
    `python validation/build_optable_store.py` last ran fails here."""
    current = json.loads(yamlio.MIRROR.read_text(encoding="utf-8"))
    assert current == yamlio.mirror_entries(SHIPPED), (
        "perfmodel/data/yaml_mirror.json is stale; run python validation/build_optable_store.py"
    )


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_file_loads_from_the_mirror_as_yaml_parses_it(path):
    text = path.read_text(encoding="utf-8")
    assert yamlio.text_key(text) in yamlio._mirror(), path
    assert yamlio.identical(yamlio.safe_load(text), yamlio.yaml_load(text))


def test_other_text_is_parsed_as_yaml():
    text = SHIPPED[0].read_text(encoding="utf-8") + "\nadded_here: 1.5\n"
    assert yamlio.text_key(text) not in yamlio._mirror()
    assert yamlio.safe_load(text)["added_here"] == 1.5
    with pytest.raises(yamlio.YAMLError):
        yamlio.safe_load("a: [1, 2\n")


def test_each_load_is_a_fresh_object():
    text = SHIPPED[0].read_text(encoding="utf-8")
    first = yamlio.safe_load(text)
    first["name"] = "changed"
    assert yamlio.safe_load(text)["name"] != "changed"


@pytest.mark.parametrize(
    "a,b",
    [
        (1, 1.0),
        (1, True),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
        ([1.0], [1]),
        ({1: "x"}, {"1": "x"}),
    ],
)
def test_identical_sees_types_and_order(a, b):
    assert a == b or isinstance(a, dict)  # equal to Python, or keyed alike
    assert not yamlio.identical(a, b)
    assert yamlio.identical(a, a) and yamlio.identical(float("nan"), float("nan"))


def test_documents_json_cannot_return_are_left_to_yaml(tmp_path):
    path = tmp_path / "dated.yaml"
    path.write_text("when: 2024-01-02\nplain: 1\n", encoding="utf-8")
    other = tmp_path / "plain.yaml"
    other.write_text("plain: 1\n", encoding="utf-8")
    entries = yamlio.mirror_entries([path, other])
    assert list(entries) == [yamlio.text_key("plain: 1\n")]


def test_loading_shipped_specs_never_imports_pyyaml():
    code = (
        "import sys\n"
        "from perfmodel.specs.hardware import load_gpu, list_gpus\n"
        "from perfmodel.specs.models import load_model\n"
        "from perfmodel.specs.profile import profile_for\n"
        "[profile_for(g) for g in list_gpus()]; load_model('405b'); load_gpu('h100')\n"
        "assert 'yaml' not in sys.modules, 'yaml imported'\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "ok", proc.stderr
