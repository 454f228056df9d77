"""findings.json keeps its keys: the key tree of every area's findings (and of a whole report's) on the shipped
mini model equals the one recorded before the findings became typed (tests/data/findings_key_tree.json)."""

from __future__ import annotations

import json

import pytest

from findings_cases import CASES, TREE_FILE, key_tree, report_tree
from gpt2atlas import load_model


@pytest.fixture(scope="module")
def mini():
    return load_model("mini")


def _differences(recorded, now, where="") -> list[str]:
    if isinstance(recorded, dict) and isinstance(now, dict):
        out = [f"{where}.{k}: missing now" for k in recorded if k not in now]
        out += [f"{where}.{k}: new" for k in now if k not in recorded]
        for k in recorded.keys() & now.keys():
            out += _differences(recorded[k], now[k], f"{where}.{k}")
        return out
    if isinstance(recorded, list) and isinstance(now, list):
        if recorded and now:
            return _differences(recorded[0], now[0], where + "[]")
        return [] if (not recorded) == (not now) else [f"{where}: list was {recorded!r}, now {now!r}"]
    return [] if recorded == now else [f"{where}: was {recorded!r}, now {now!r}"]


def test_every_recorded_case_is_still_run():
    assert sorted(json.loads(TREE_FILE.read_text())) == sorted([*CASES, "report"])


@pytest.mark.parametrize("case", [*CASES, "report"])
def test_the_key_tree_is_unchanged(case, mini, tmp_path):
    recorded = json.loads(TREE_FILE.read_text())[case]
    now = report_tree(mini, tmp_path) if case == "report" else key_tree(CASES[case](mini))
    assert _differences(recorded, now, case) == []


def test_the_key_tree_sees_a_renamed_key():
    before = key_tree({"a": [{"b": 1, "c": {"d": 2}}], "e": 3})
    after = key_tree({"a": [{"b": 1, "c": {"dd": 2}}], "e": 3})
    assert _differences(before, after) == [".a[].c.d: missing now", ".a[].c.dd: new"]
