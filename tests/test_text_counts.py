"""Counts in text output read as English: '1 GPU', '1 sequence per replica', '2 replicas'.

One helper (specs.units.plural) writes every count with its noun; these tests read what the
user sees through the entry point and fail on a singular count with a plural noun or a
'noun(s)' placeholder."""

from __future__ import annotations

import re

import pytest

from perfmodel.cli.main import main
from perfmodel.specs.units import plural

# '1 GPUs', '1 sequences', '1 replicas', ... or 'candidate(s)' anywhere in the text
WRONG = re.compile(
    r"(?<![\d.,])1 (GPUs|sequences|replicas|nodes|candidates|rows|points|requests|files"
    r"|LongBench points)\b"
    r"|\w\(s\)"
)


def test_plural_hand_cases():
    assert plural(1, "GPU") == "1 GPU"
    assert plural(2, "GPU") == "2 GPUs"
    assert plural(0, "replica") == "0 replicas"
    assert plural(1, "sequence") == "1 sequence"
    assert plural(8, "h100-sxm GPU") == "8 h100-sxm GPUs"
    assert plural(3, "child", "children") == "3 children"
    assert plural(1.0, "LongBench point") == "1 LongBench point"  # a budget of 1.0 points
    assert plural(0.5, "LongBench point") == "0.5 LongBench points"


def _text(capsys, *argv: str) -> str:
    assert main(list(argv)) == 0
    out, err = capsys.readouterr()
    return re.sub(r"[\s│╭╮╰╯─]+", " ", out + err)  # panels wrap lines: read it as one line


def test_recommend_says_one_sequence_per_replica(capsys):
    text = _text(capsys, "recommend", "--model", "8b", "--bsz", "1", "--gpu", "h100")
    assert "1 sequence per replica" in text
    assert "on 1 node of 8" in text
    assert not WRONG.search(text), WRONG.search(text)


def test_capacity_counts_one_gpu_and_one_candidate(capsys):
    text = _text(
        capsys, "capacity", "--model", "8b", "--qps", "1", "--prompt-len", "1k",
        "--output-len", "100", "--gpus", "h100", "--slo-ttft", "2", "--slo-tpot", "0.1",
    )  # fmt: skip
    assert "on 1 node (1 replica of TP1" in text
    assert "(1 GPU)" in text
    assert not WRONG.search(text), WRONG.search(text)


@pytest.mark.parametrize(
    "argv",
    [
        ("predict", "--model", "8b", "--num-gpus", "1"),
        ("specprefill", "--model", "70b", "--speculator", "8b", "--num-gpus", "8"),
        ("recommend", "--model", "70b", "--bsz", "64"),
    ],
)
def test_no_singular_count_with_a_plural_noun(capsys, argv):
    text = _text(capsys, *argv)
    assert not WRONG.search(text), WRONG.search(text)
