"""specs/inputs.py: encodings, binary refusal and typed field helpers, hand-checked."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel.errors import PerfModelError
from perfmodel.specs import inputs

TEXT = '{"name": "h\u00e9", "n": 3}\n'


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
def test_text_in_every_supported_encoding_reads_the_same(tmp_path, encoding):
    path = tmp_path / "f.json"
    path.write_bytes(TEXT.encode(encoding))
    assert inputs.read_text(path, "test file") == TEXT
    assert inputs.read_json(path, "test file") == {"name": "h\u00e9", "n": 3}


@pytest.mark.parametrize(
    "raw",
    [bytes(range(256)), b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "caf\u00e9".encode("latin-1")],
)
def test_binary_or_unknown_encoding_is_one_error_naming_the_file(tmp_path, raw):
    path = tmp_path / "blob.yaml"
    path.write_bytes(raw)
    with pytest.raises(PerfModelError, match=r"blob\.yaml: not a text GPU spec"):
        inputs.read_yaml(path, "GPU spec")


def test_missing_folder_and_oversized_files(tmp_path):
    with pytest.raises(PerfModelError, match="not found"):
        inputs.read_text(tmp_path / "none.json", "model config")
    with pytest.raises(PerfModelError, match="is a directory"):
        inputs.read_text(tmp_path, "model config")
    big = tmp_path / "big.json"
    big.write_text("x" * 2000)
    with pytest.raises(PerfModelError, match="too large"):
        inputs.read_text(big, "model config", max_bytes=1000)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[1, 2]", "must be a JSON object"),
        ("{", "malformed JSON at line 1"),
        ("[" * 100_000, "JSON"),  # nesting too deep: RecursionError inside json
        ("1" * 5000, "JSON"),  # an integer over Python's 4300-digit limit
    ],
)
def test_malformed_json(tmp_path, text, says):
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(PerfModelError, match=says):
        inputs.read_json(path, "model config")


def test_malformed_yaml_names_the_line(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: x\nefficiency: [1, 2\n")
    with pytest.raises(PerfModelError, match=r"p\.yaml: malformed YAML at line"):
        inputs.read_yaml(path, "profile")


def test_require_int_accepts_counts_only():
    data = {"a": 8, "b": 8.0, "c": 2.5, "d": True, "e": "8", "f": 0, "g": 10**400, "h": None}
    assert inputs.require_int(data, "a", "f.json") == 8
    assert inputs.require_int(data, "b", "f.json") == 8  # 8.0 from a JSON writer
    for key, says in [
        ("c", "a fraction"),
        ("d", "a boolean"),
        ("e", "a string"),
        ("f", "got 0"),
        ("g", "from 1 to 100"),
        ("h", "null"),
        ("z", "missing field 'z'"),
    ]:
        with pytest.raises(PerfModelError, match=f"f.json: .*{says}"):
            inputs.require_int(data, key, "f.json", maximum=100)
    assert inputs.require_int(data, "h", "f.json", default=4) == 4  # null = absent
    assert inputs.require_int(data, "z", "f.json", default=4) == 4


def test_require_number_is_finite_and_bounded():
    data = {"x": 3.35, "inf": math.inf, "nan": math.nan, "neg": -1, "big": 10**400, "s": "3"}
    assert inputs.require_number(data, "x", "g.yaml", positive=True) == 3.35
    for key in ("inf", "nan", "neg", "big", "s"):
        with pytest.raises(PerfModelError, match=f"g.yaml: field '{key}' must be a"):
            inputs.require_number(data, key, "g.yaml", positive=True, maximum=100)


def test_require_bool_refuses_string_booleans():
    data = {"t": True, "s": "false", "i": 0}
    assert inputs.require_bool(data, "t", "c.json") is True
    assert inputs.require_bool(data, "absent", "c.json", False) is False
    for key in ("s", "i"):
        with pytest.raises(PerfModelError, match=f"field '{key}' must be true or false"):
            inputs.require_bool(data, key, "c.json")


def test_require_str_and_lists_and_unknown_fields():
    with pytest.raises(PerfModelError, match="field 'name' must not be empty"):
        inputs.require_str({"name": "  "}, "name", "g.yaml")
    with pytest.raises(PerfModelError, match="must be a string"):
        inputs.require_str({"name": 7}, "name", "g.yaml")
    assert inputs.require_str_list({"gpus": "h100"}, "gpus", "p.yaml") == ["h100"]
    with pytest.raises(PerfModelError, match="list of non-empty names"):
        inputs.require_str_list({"gpus": ["h100", ""]}, "gpus", "p.yaml")
    with pytest.raises(PerfModelError, match="unknown field 'efficency' in a profile"):
        inputs.refuse_unknown({"name": 1, "efficency": 2}, ("name",), "p.yaml", "profile")


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_read_or_refused_in_one_error(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("b") / "x.json"
    path.write_bytes(raw)
    try:
        inputs.read_json(path, "model config", mapping=False)
    except PerfModelError as exc:
        assert "\n" not in str(exc) and "x.json" in str(exc)


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=8,
    )
)
def test_any_json_value_is_a_count_or_one_error(value):
    try:
        got = inputs.require_int({"k": value}, "k", "c.json", maximum=1 << 20)
    except PerfModelError as exc:
        assert str(exc).startswith("c.json: ")
    else:
        assert isinstance(got, int) and not isinstance(got, bool) and 1 <= got <= 1 << 20
        assert got == value
    json.dumps(value, allow_nan=True)  # the strategy stays inside JSON's types
