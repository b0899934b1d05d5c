"""`trainer drift` on a schema-3 classifier with categorical, boolean and nullable features.

The reference is a real manifest (validated by the contract on write) whose profile has
category shares for ``city`` and a boolean, a histogram for ``sqft`` and class shares for the
predictions; the logs are written as the inference service writes them."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from artifact_contract import (
    CategoryShares,
    DataRef,
    Feature,
    Histogram,
    Profile,
)
from artifact_contract.testing import publish_run
from PIL import Image

from trainer.cli import main
from trainer.monitoring.chart import MAX_CATEGORY_BARS, panel_bars
from trainer.monitoring.drift import Score
from trainer.policy import POLICY_FILE
from trainer.settings import Settings

POLICY = POLICY_FILE
CITIES = ["Lyon", "Nice", "Paris"]
CITY_SHARES = [0.5, 0.2, 0.3]
# A long name, as users' columns have: the printed table must still line up.
MEMBER = "is_member_of_the_loyalty_programme"
MEMBER_SHARES = [0.4, 0.6]  # "false", "true"
CLASSES = [0, 1]  # integer labels: the profile spells them "0", "1"
CLASS_SHARES = [0.7, 0.3]
METRICS = {
    "accuracy": 0.8,
    "balanced_accuracy": 0.75,
    "f1_macro": 0.76,
    "log_loss": 0.45,
    "roc_auc": 0.85,
    "baseline_accuracy": 0.7,
    "baseline_log_loss": 0.61,
}


def publish(root_dir: Path) -> Path:
    profile = Profile(
        bins=4,
        features={
            "sqft": Histogram(
                edges=[300.0, 700.0, 1000.0, 1500.0, 4000.0],
                proportions=[0.25, 0.25, 0.25, 0.25],
                rows=900,
            ),
            "city": CategoryShares(
                categories=CITIES, proportions=CITY_SHARES, unseen=0.0, rows=1000
            ),
            MEMBER: CategoryShares(
                categories=["false", "true"], proportions=MEMBER_SHARES, unseen=0.0, rows=1000
            ),
        },
        prediction=CategoryShares(
            categories=["0", "1"], proportions=CLASS_SHARES, unseen=0.0, rows=200
        ),
    )
    publish_run(
        root_dir,
        input_schema=[
            Feature(name="sqft", type="number", min=300.0, max=4000.0, nullable=True),
            Feature(name="city", type="categorical", categories=tuple(CITIES)),
            Feature(name=MEMBER, type="boolean"),
        ],
        output={"name": "churned", "task": "classification", "classes": CLASSES},
        data=DataRef(source="test.csv", sha256="a" * 64, rows=1000),
        params={"seed": 1},
        metrics=METRICS,
        git=None,
        examples=[],
        profile=profile,
    )
    return root_dir


def rows(
    count: int,
    seed: int,
    cities: list[str] = CITIES,
    city_shares: list[float] = CITY_SHARES,
    class_shares: list[float] = CLASS_SHARES,
    missing_sqft: float = 0.1,
) -> list[dict[str, Any]]:
    draw = random.Random(seed)
    out = []
    for _ in range(count):
        sqft = None if draw.random() < missing_sqft else draw.choice([500.0, 800.0, 1200.0, 2500.0])
        features = {
            "sqft": sqft,
            "city": draw.choices(cities, city_shares)[0],
            MEMBER: draw.random() < MEMBER_SHARES[1],
        }
        out.append({"features": features, "prediction": draw.choices(CLASSES, class_shares)[0]})
    return out


def write_log(path: Path, served: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8") as log:
        for index, row in enumerate(served):
            record = {"ts": "2026-11-26T10:00:00.000Z", "event": "prediction"}
            record |= {"request_id": f"r{index}", "model_version": "v001", **row}
            log.write(json.dumps(record) + "\n")
    return path


def drift(tmp_path: Path, log: Path) -> tuple[int, dict[str, Any], Path]:
    root = publish(tmp_path / "artifacts")
    out = tmp_path / "report"
    # No --policy, and no checkout around tmp_path: the policy shipped in the package is used.
    argv = ["drift", "--log", str(log), "--artifact-root", str(root), "--out", str(out)]
    code = main(argv, settings=Settings.from_env({}, cwd=tmp_path))
    return code, json.loads((out / "report.json").read_text()), out


def test_categories_booleans_and_classes_drawn_like_training_do_not_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, _ = drift(tmp_path, write_log(tmp_path / "p.jsonl", rows(2000, seed=1)))
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert report["drifted"] == []
    city = report["scores"]["city"]
    assert city["categories"] == CITIES and "edges" not in city
    assert city["reference"] == [*CITY_SHARES, 0.0]  # one bin per category, then unseen
    assert city["observed"][-1] == 0.0
    member = report["scores"][MEMBER]
    assert member["categories"] == ["false", "true"]
    assert member["observed"][1] == pytest.approx(0.6, abs=0.04)
    prediction = report["scores"]["prediction"]
    assert prediction["categories"] == ["0", "1"]
    assert prediction["observed"][0] == pytest.approx(0.7, abs=0.04)
    # Nulls are counted, not binned (the profile holds non-missing values only).
    sqft = report["scores"]["sqft"]
    assert sqft["missing"] == pytest.approx(200, abs=40) and "categories" not in sqft
    assert sum(sqft["observed"]) == pytest.approx(1.0, abs=1e-5)  # rounded shares


def test_unseen_categories_and_shifted_classes_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = rows(
        2000,
        seed=2,
        cities=[*CITIES, "Marseille"],  # a city training never saw
        city_shares=[0.3, 0.1, 0.2, 0.4],
        class_shares=[0.4, 0.6],
    )
    code, report, out = drift(tmp_path, write_log(tmp_path / "p.jsonl", served))
    printed = capsys.readouterr().out
    assert code == 4
    assert report["drifted"] == ["city", "prediction"]
    assert report["scores"]["city"]["observed"][-1] == pytest.approx(0.4, abs=0.04)
    assert report["scores"]["city"]["psi"] > 1.0
    assert "DRIFT: city, prediction at or past the policy threshold" in printed
    # The table's columns line up whatever the feature names' lengths.
    table = printed.splitlines()[1:6]
    assert len({line.index("0.25") for line in table[1:]}) == 1, printed
    with Image.open(out / "chart.png") as image:
        image.verify()
    with Image.open(out / "chart.png") as image:
        assert image.size[1] >= 600  # 4 panels: 2 rows


def test_a_log_with_strings_where_the_profile_has_numbers_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = rows(200, seed=3)
    served[5]["features"]["sqft"] = "large"
    log = write_log(tmp_path / "p.jsonl", served)
    root = publish(tmp_path / "artifacts")
    argv = ["drift", "--log", str(log), "--artifact-root", str(root), "--policy", str(POLICY)]
    code = main([*argv, "--out", str(tmp_path / "r")], settings=Settings.from_env({}, cwd=tmp_path))
    err = capsys.readouterr().err
    assert code == 1
    assert err == (
        "error: sqft: the log holds non-numeric values where the profile has numbers "
        "(is the log from another model?)\n"
    )
    assert not (tmp_path / "r").exists()


def test_a_chart_panel_groups_the_smallest_of_many_categories() -> None:
    categories = [f"c{index:02d}" for index in range(30)]
    reference = [1 / 30] * 30 + [0.0]
    observed = [0.5] + [0.3 / 29] * 29 + [0.2]  # c00 grew, 20 % unseen
    item = Score("shop", 1.0, 0.25, reference, observed, categories=categories)
    labels, drawn_reference, drawn_observed = panel_bars(item)
    assert len(labels) == MAX_CATEGORY_BARS + 1  # the largest, "(N others)", "(unseen)"
    assert labels[0] == "c00" and labels[-2:] == ["(19 others)", "(unseen)"]
    assert sum(drawn_reference) == pytest.approx(1.0) and sum(drawn_observed) == pytest.approx(1.0)
    assert drawn_observed[-1] == 0.2
    few = Score("city", 0.0, 0.25, [*CITY_SHARES, 0.0], [*CITY_SHARES, 0.0], categories=CITIES)
    assert panel_bars(few)[0] == [*CITIES, "(unseen)"]
