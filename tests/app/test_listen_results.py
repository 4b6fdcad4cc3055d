"""``listen results``: closed-form oracles for the intervals and the tests, malformed files, the outputs, the CLI."""
from __future__ import annotations

import argparse
import json
import math

import pytest

from mixbridge.app import listen
from mixbridge.app.listen_results import (
    RESULTS_FORMAT,
    ListenResultsError,
    aggregate,
    format_table,
    holm,
    mean_ci,
    paired_test,
    read_submissions,
    write_results,
)

#: Float agreement of closed forms with scipy (double precision, a few operations).
EXACT = 1e-9


def submission(listener: str, ratings: dict[str, dict[str, float]]) -> dict:
    """A page submission with ``ratings[item][condition]``."""
    trials = [{"item": item, "index": k, "condition_order": sorted(r), "ratings": r, "switches": []}
              for k, (item, r) in enumerate(ratings.items())]
    return {"format": RESULTS_FORMAT, "version": 1, "page_id": "p1", "style": "mushra", "listener": listener,
            "seed": 1, "trial_order": list(ratings), "trials": trials}


def test_mean_ci_is_students_t():
    """t(0.975, 2 df) has the closed form (2p - 1) / sqrt(2 p (1 - p)) = 4.30265 (p = 0.975)."""
    t975 = 0.95 / math.sqrt(2 * 0.975 * 0.025)
    s = mean_ci([10, 20, 30])
    assert s["n"] == 3 and s["mean"] == 20 and s["sd"] == pytest.approx(10, abs=EXACT)
    assert s["ci95"] == pytest.approx(t975 * 10 / math.sqrt(3), abs=EXACT)
    assert mean_ci([42])["ci95"] is None


def test_wilcoxon_exact_p():
    """n pairs all in one direction with distinct differences: the exact two-sided p is 2 / 2^n."""
    a, b = [50, 60, 70, 80, 90], [49, 58, 67, 76, 85]
    r = paired_test(a, b)
    assert r["n"] == 5 and r["p"] == pytest.approx(2 / 2 ** 5, abs=EXACT) and r["median_difference"] == 3
    assert paired_test(a + [99], b + [93])["p"] == pytest.approx(2 / 2 ** 6, abs=EXACT)
    zero = paired_test([10, 20], [10, 20])
    assert zero["p"] is None and "zero" in zero["reason"]
    assert paired_test([], [])["reason"].startswith("no listener")


def test_holm():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.2, None, 0.3]) == [pytest.approx(0.4), None, pytest.approx(0.4)]  # monotone: 0.3 -> 0.4
    assert holm([0.6, 0.9]) == [1.0, 1.0]  # capped at 1


def test_aggregate_pairs_by_listener_and_item():
    subs = [submission(f"l{k}", {"s1": {"dmc": 60 + k, "sum": 40 + 2 * k, "reference": 95},
                                 "s2": {"dmc": 70 + k, "sum": 30 + k, "reference": 100}}) for k in range(3)]
    out = aggregate(subs)
    assert out["conditions"] == ["dmc", "reference", "sum"] and out["listeners"] == ["l0", "l1", "l2"]
    dmc = [60, 61, 62, 70, 71, 72]
    assert out["per_condition"]["dmc"]["mean"] == pytest.approx(sum(dmc) / 6, abs=EXACT)
    assert out["per_condition"]["dmc"]["ci95"] == pytest.approx(mean_ci(dmc)["ci95"], abs=EXACT)
    assert out["per_item"]["s1"]["sum"]["mean"] == pytest.approx(42, abs=EXACT)
    pair = next(p for p in out["pairs"] if (p["a"], p["b"]) == ("dmc", "sum"))
    assert pair["n"] == 6 and pair["p"] == pytest.approx(2 / 2 ** 6, abs=1e-12)  # dmc > sum in all 6 pairs
    assert pair["p_holm"] >= pair["p"]
    assert all(not s["fails"] for s in out["screening"])
    table = format_table(out)
    assert "dmc vs sum" in table and "±" in table


def test_screening_and_duplicates():
    subs = [submission("good", {"s1": {"a": 50, "reference": 95}, "s2": {"a": 40, "reference": 92}}),
            submission("bad", {"s1": {"a": 50, "reference": 95}, "s2": {"a": 60, "reference": 70}}),
            submission("good", {"s1": {"a": 70, "reference": 95}, "s2": {"a": 40, "reference": 92}})]
    out = aggregate(subs)
    assert [s["listener"] for s in out["screening"] if s["fails"]] == ["bad"]
    assert any("rated s1/a 2 times" in n for n in out["notices"])
    assert out["per_item"]["s1"]["a"]["mean"] == pytest.approx((60 + 50) / 2)  # good's two s1 ratings averaged
    screened = aggregate(subs, exclude_screened=True)
    assert screened["listeners"] == ["good"] and screened["excluded_listeners"] == ["bad"]


def test_reads_jsonl_downloads_and_arrays(tmp_path):
    one, two = submission("a", {"s": {"x": 1, "y": 2}}), submission("b", {"s": {"x": 3, "y": 4}})
    (tmp_path / "c.jsonl").write_text(json.dumps(one) + "\n\n" + json.dumps(two) + "\n")
    (tmp_path / "ratings.json").write_text(json.dumps(one, indent=1))
    (tmp_path / "all.json").write_text(json.dumps([one, two]))
    got = read_submissions([tmp_path / "c.jsonl", tmp_path / "ratings.json", tmp_path / "all.json"])
    assert [s["listener"] for s in got] == ["a", "b", "a", "a", "b"]


@pytest.mark.parametrize("text,match", [
    ("", "empty; no listener has submitted"),
    ("listener,trial\nx,1\n", r"x.jsonl:1: not JSON"),
    (json.dumps({"format": "other"}), "'format' is 'other'"),
    (json.dumps(submission("a", {"s": {"x": 150}})), r"rating of 'x' is 150; ratings are numbers in 0..100"),
    (json.dumps({**submission("a", {"s": {"x": 1}}), "listener": ""}), "'listener' '' must be text"),
])
def test_malformed_files_are_named(tmp_path, text, match):
    (tmp_path / "x.jsonl").write_text(text)
    with pytest.raises(ListenResultsError, match=match):
        read_submissions([tmp_path / "x.jsonl"])


def test_write_results_and_cli(tmp_path, capsys):
    subs = [submission(f"l{k}", {"s1": {"a": 60 + k, "b": 40}, "s2": {"a": 50, "b": 45 - k}}) for k in range(3)]
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(s) + "\n" for s in subs))
    paths = write_results(aggregate(subs), tmp_path / "w")
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(paths["json"].read_text())["per_condition"]["b"]["n"] == 6
    parser = argparse.ArgumentParser(prog="mixbridge")
    listen.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["listen", "results", str(tmp_path / "r.jsonl"), "-o", str(tmp_path / "cli")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "a vs b" in out
    assert (tmp_path / "cli" / "results.json").is_file() and (tmp_path / "cli" / "ratings.png").is_file()
