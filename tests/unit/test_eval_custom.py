"""Custom metrics: loaded from a file or a module path, called per row, errors named clearly."""

from __future__ import annotations

import sys
import textwrap

import pytest

from mason.evaluate.custom import (
    CustomMetricError,
    load_custom_metric,
    mean,
    score_rows,
)

ROWS = [
    {"id": "r1", "question": "What holds bricks?", "reference": "Mortar holds bricks.", "prediction": "Mortar.",
     "source": "Bricks are held by mortar.", "model": "tuned"},
    {"id": "r2", "question": "How thick?", "reference": "10 mm", "prediction": "", "source": None, "model": "tuned"},
]

METRICS_PY = textwrap.dedent("""
    def keyword_hit(row):
        return float("mortar" in row["prediction"].lower())

    def lengths(row):
        return {"answer_words": len(row["prediction"].split()), "ratio": None if not row["prediction"] else 1}

    def broken(row):
        return 1 / len(row["prediction"])

    def text(row):
        return "high"

    def clash(row):
        return {"rougeL": 1.0}
""")


@pytest.fixture
def metrics_file(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "metrics.py").write_text(METRICS_PY)
    return folder


def test_function_from_a_file_relative_to_the_yaml_folder(metrics_file):
    metric = load_custom_metric("metrics.py:keyword_hit", metrics_file)
    values = score_rows(metric, ROWS, reserved={"rougeL"})
    assert values == {"keyword_hit": [1.0, 0.0]}
    assert mean(values["keyword_hit"]) == 0.5


def test_dict_results_name_several_metrics_and_none_is_no_score(metrics_file):
    values = score_rows(load_custom_metric("metrics.py:lengths", metrics_file), ROWS, reserved=set())
    assert values == {"answer_words": [1.0, 0.0], "ratio": [1.0, None]}
    assert mean(values["ratio"]) == 1.0


def test_function_from_a_module_path(tmp_path, monkeypatch):
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "scores.py").write_text("def short(row):\n    return len(row['prediction']) < 20\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        metric = load_custom_metric("mypkg.scores:short", tmp_path / "elsewhere")
        assert score_rows(metric, ROWS, reserved=set()) == {"short": [1.0, 1.0]}
    finally:
        for name in ("mypkg", "mypkg.scores"):
            sys.modules.pop(name, None)


def test_error_in_the_user_function_names_it_and_the_row(metrics_file):
    metric = load_custom_metric("metrics.py:broken", metrics_file)
    with pytest.raises(CustomMetricError) as info:
        score_rows(metric, ROWS, reserved=set())
    msg = str(info.value)
    assert "custom metric 'metrics.py:broken' failed on row 2 (id r2, model tuned)" in msg
    assert "ZeroDivisionError" in msg and "How thick?" in msg


def test_bad_returns_and_name_clashes(metrics_file):
    with pytest.raises(CustomMetricError, match="returned str on row 1"):
        score_rows(load_custom_metric("metrics.py:text", metrics_file), ROWS, reserved=set())
    with pytest.raises(CustomMetricError, match="returns 'rougeL', which is already a metric name"):
        score_rows(load_custom_metric("metrics.py:clash", metrics_file), ROWS, reserved={"rougeL"})


def test_load_errors(metrics_file, tmp_path):
    with pytest.raises(CustomMetricError, match="no file"):
        load_custom_metric("missing.py:f", metrics_file)
    with pytest.raises(CustomMetricError, match="has no function 'nope'.*") as info:
        load_custom_metric("metrics.py:nope", metrics_file)
    assert "keyword_hit" in str(info.value)  # the hint lists what is there
    with pytest.raises(CustomMetricError, match="cannot import module 'no_such_module_xyz'"):
        load_custom_metric("no_such_module_xyz:f", metrics_file)
    (metrics_file / "bad.py").write_text("import no_such_dependency_xyz\n")
    with pytest.raises(CustomMetricError, match="importing .*bad.py failed: ModuleNotFoundError"):
        load_custom_metric("bad.py:f", metrics_file)
