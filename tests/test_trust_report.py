"""``dist-logreg report`` on bad values: one line, exit 2; user strings escaped (issue 18, 4)."""

import json

import pytest

from tests.fake_runs import write_bench, write_train_run
from tests.test_model_cli import dl


def one_line(r, code=2):
    assert r.returncode == code, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def edit_jsonl(path, line_no, **changes):
    lines = path.read_text().splitlines()
    rec = json.loads(lines[line_no - 1])
    rec.update(changes)
    lines[line_no - 1] = json.dumps(rec)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "file, change, want",
    [
        (
            "metrics.jsonl",
            {"step": "x"},
            "metrics.jsonl line 2: step: expected a whole number >= 0, got 'x'",
        ),  # noqa: E501
        (
            "metrics.jsonl",
            {"seconds": float("nan")},
            "metrics.jsonl line 2: seconds: expected a finite number >= 0, got nan",
        ),  # noqa: E501
        ("metrics.jsonl", {"seconds": 1e308}, "metrics.jsonl line 2: seconds: expected at most"),
        (
            "metrics.jsonl",
            {"seconds": -0.5},
            "metrics.jsonl line 2: seconds: expected a finite number >= 0, got -0.5",
        ),  # noqa: E501
        (
            "metrics.jsonl",
            {"rank": 99},
            "metrics.jsonl line 2: rank: expected a rank from 0 to 2 (3 ranks), got 99",
        ),  # noqa: E501
        (
            "metrics.jsonl",
            {"bytes": "big"},
            "metrics.jsonl line 2: bytes: expected a finite number >= 0, got 'big'",
        ),  # noqa: E501
        (
            "steps.jsonl",
            {"comm_s": float("inf")},
            "steps.jsonl line 2: comm_s: expected a finite number >= 0, got inf",
        ),  # noqa: E501
        ("steps.jsonl", {"rank": -1}, "steps.jsonl line 2: rank: expected a rank from 0 to 2"),
    ],
)
def test_bad_values_in_a_run_are_one_line_and_exit_2(tmp_path, file, change, want):
    run = write_train_run(tmp_path / "r")
    edit_jsonl(run / file, 2, **change)
    line = one_line(dl("report", str(run), "--out", str(tmp_path / "o")))
    assert want in line


@pytest.mark.parametrize(
    "key, value, want",
    [
        ("world_size", "two", "summary.json: world_size: expected an integer >= 1, got 'two'"),
        ("world_size", 0, "summary.json: world_size: expected an integer >= 1, got 0"),
    ],
)
def test_bad_summary_values(tmp_path, key, value, want):
    run = write_train_run(tmp_path / "r")
    s = json.loads((run / "summary.json").read_text())
    s[key] = value
    (run / "summary.json").write_text(json.dumps(s))
    assert want in one_line(dl("report", str(run), "--out", str(tmp_path / "o")))


@pytest.mark.parametrize(
    "edit, want",
    [
        (lambda d: d.update(records=[]), "expected at least one record, got none"),
        (
            lambda d: d["records"][1].update(bytes="big"),
            "record 1: bytes: expected a whole number of bytes >= 1, got 'big'",
        ),  # noqa: E501
        (
            lambda d: d["records"][1].update(time_s=float("nan")),
            "record 1: time_s: expected a finite number of seconds > 0, got nan",
        ),  # noqa: E501
        (lambda d: d["records"][1].update(time_s=1e308), "record 1: time_s: expected at most"),
        (
            lambda d: d["records"][1].update(busbw=-3),
            "record 1: busbw: expected a finite number >= 0, got -3",
        ),  # noqa: E501
    ],
)
def test_bad_bench_values_are_one_line_and_exit_2(tmp_path, edit, want):
    path = write_bench(tmp_path / "b.json")
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    assert want in one_line(dl("report", str(path), "--out", str(tmp_path / "o")))


def test_user_strings_are_escaped_in_markdown_and_html(tmp_path):
    evil_tag = "<script>alert(1)</script>\n# injected heading *bold* [link](http://x)"
    run = write_train_run(tmp_path / "x<img src=x onerror=alert(1)>", tag=evil_tag)
    out = tmp_path / "o"
    r = dl("report", str(run), "--out", str(out))
    assert r.returncode == 0, r.stderr
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for doc in (md, html):
        assert "<script>" not in doc and "<img src=x" not in doc
    assert "\n# injected" not in md and "#injected" not in md.replace("\\#", "")
    assert "&lt;script&gt;" in md and "\\*bold\\*" in md and "\\[link\\]" in md
    assert not any(line.startswith("# injected") for line in md.splitlines())


def test_runs_of_different_world_sizes_are_compared_with_a_word(tmp_path):
    a = write_train_run(tmp_path / "a", p=2, late_rank=1, tag="two")
    b = write_train_run(tmp_path / "b", p=3, tag="three")
    out = tmp_path / "o"
    r = dl("report", str(a), str(b), "--out", str(out))
    assert r.returncode == 0, r.stderr
    md = (out / "report.md").read_text()
    assert "different world sizes (2, 3 ranks)" in md
    c = write_train_run(tmp_path / "c", p=2, late_rank=1, tag="two again")
    dl("report", str(a), str(c), "--out", str(tmp_path / "o2"))
    assert "different world sizes" not in (tmp_path / "o2" / "report.md").read_text()
