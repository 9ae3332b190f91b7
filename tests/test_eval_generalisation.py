"""Tests of benchmarks/eval_generalisation.py: shifts, subsets, a --quick run."""

from __future__ import annotations

import importlib.util
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "eval_generalisation.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("eval_generalisation", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.integers(40, 216, size=(6, 16, 16), dtype=np.uint8)


def test_shifts_change_what_they_document(bench, images):
    values = images.astype(float)
    flat = bench.shift_contrast(images, 0.6).astype(float)
    assert flat.std() < 0.7 * values.std()
    np.testing.assert_allclose(flat.mean(axis=(1, 2)), values.mean(axis=(1, 2)), atol=1)
    assert bench.shift_gamma(images, 1.5).mean() < images.mean()
    assert bench.shift_gamma(images, 1 / 1.5).mean() > images.mean()
    brighter = bench.shift_brightness(images, 0.1).astype(float)
    np.testing.assert_allclose(brighter, values + 25.5, atol=0.5)
    # blur and a coarser resolution remove pixel-to-pixel differences
    for shifted in (bench.shift_blur(images), bench.shift_resolution(images)):
        assert np.abs(np.diff(shifted.astype(float), axis=2)).mean() < (
            0.5 * np.abs(np.diff(values, axis=2)).mean()
        )
    noisy = bench.shift_noise(images, 0.05).astype(float)
    assert 0.04 * 255 < (noisy - values).std() < 0.06 * 255
    np.testing.assert_array_equal(bench.shift_noise(images), bench.shift_noise(images))
    for function in bench.SHIFTS.values():
        if function is not None:
            shifted = function(images)
            assert shifted.shape == images.shape
            assert shifted.dtype == np.uint8


def test_volume_shifts_act_along_the_depth_too(bench):
    rng = np.random.default_rng(0)
    volumes = rng.integers(40, 216, size=(3, 8, 8, 8), dtype=np.uint8)
    values = volumes.astype(float)
    volume_shifts = bench.shifts(3)
    assert volume_shifts.keys() == bench.SHIFTS.keys()
    assert bench.shifts(2) is bench.SHIFTS
    for name in ("blur", "lowres"):
        shifted = volume_shifts[name](volumes)
        assert shifted.shape == volumes.shape
        assert shifted.dtype == np.uint8
        # smoother along the depth (axis 1), which the 2-D shifts leave alone
        depth = np.abs(np.diff(shifted.astype(float), axis=1)).mean()
        assert depth < 0.5 * np.abs(np.diff(values, axis=1)).mean()
        # the 2-D shift of each slice leaves the depth's differences larger
        slices = bench.SHIFTS[name](volumes.reshape(-1, 8, 8)).reshape(volumes.shape)
        assert np.abs(np.diff(slices.astype(float), axis=1)).mean() > 1.5 * depth
    assert bench.build("moderate", 0, spatial_dims=3).augmentation[0].translate == (
        0.05,
        0.05,
        0.05,
    )


def test_shifts_keep_rgb_channels_apart(bench):
    rgb = np.zeros((2, 12, 12, 3), dtype=np.uint8)
    rgb[..., 0] = 200  # a red image stays red: blur and resizing are per channel
    for shift in (bench.shift_blur, bench.shift_resolution):
        shifted = shift(rgb)
        assert shifted.shape == rgb.shape
        assert (shifted[..., 0] == 200).all()
        assert (shifted[..., 1:] == 0).all()


@pytest.mark.parametrize(
    ("which", "size"),
    [("all", 800), ("10%", 80), ("100", 100), ("200", 200), ("300", 300), ("600", 600)],
)
def test_subsets_are_stratified_and_seeded(bench, which, size):
    y = np.repeat([0, 1], [200, 600])
    X = np.zeros((800, 4, 4))
    rows = bench.subset(X, y, which, seed=0)
    assert len(rows) == size
    assert len(np.unique(rows)) == size
    assert abs(y[rows].mean() - 0.75) <= 0.01
    np.testing.assert_array_equal(rows, bench.subset(X, y, which, seed=0))
    if which != "all":
        assert not np.array_equal(rows, bench.subset(X, y, which, seed=1))


def test_a_subset_larger_than_the_split_is_all_of_it(bench):
    y = np.repeat([0, 1], [50, 150])
    rows = bench.subset(np.zeros((200, 4, 4)), y, "600", seed=0)
    np.testing.assert_array_equal(rows, np.arange(200))


def test_prevalence_weights_change_accuracy_not_binary_auc(bench):
    y = np.array([0, 0, 1, 1, 1, 1, 1, 1])
    proba1 = np.array([0.2, 0.6, 0.7, 0.8, 0.9, 0.4, 0.9, 0.7])
    proba = np.column_stack([1 - proba1, proba1])
    classes = np.array([0, 1])
    plain = bench.score(proba, y, classes, None)
    weights = np.where(y == 1, 8 / 12, 8 / 4)  # equal prevalence
    shifted = bench.score(proba, y, classes, weights)
    assert shifted["auc"] == pytest.approx(plain["auc"])
    assert plain["acc"] == pytest.approx(6 / 8)
    assert shifted["acc"] == pytest.approx((1 / 2 + 5 / 6) / 2)


def test_a_recipe_candidate_is_scored_by_its_own_predictions(bench):
    data = bench.load("quick", quick=True)
    fast = {"max_epochs": 1, "tta": None, "n_members": 2}
    model = bench.build("recipe_general", 0, fast)
    assert len(model.estimator.estimators) == 2
    assert model.estimator.estimators[0][1].max_epochs == 1
    row = bench.run_fit("quick", "all", "recipe_general", 0, data, fast)
    assert set(row["scores"]) == set(bench.SHIFTS)
    # a threshold is tuned on two classes: accuracy comes from predict, which
    # need not be the arg-max's
    X, y, X_val, y_val = data
    fitted = bench.build("recipe_general", 0, fast)
    fitted.fit(X, y)
    assert row["scores"]["none"]["acc"] == pytest.approx(
        float(np.mean(fitted.predict(X_val) == y_val))
    )
    # and each of its two networks on its own, the final ones (fit on all data)
    members = bench.recipe_members(fitted)
    assert len(members) == 2
    assert all(type(m).__name__ == "MedicalCNNClassifier" for m in members)
    assert members[0] is fitted.estimator_.estimator_.estimators_[0]
    assert set(row["member_scores"]) == set(bench.SHIFTS)
    each = row["member_scores"]["none"]["auc_each"]
    assert len(each) == 2
    assert row["member_scores"]["none"]["auc"] == pytest.approx(np.mean(each))
    from sklearn.metrics import roc_auc_score

    assert each[1] == pytest.approx(
        roc_auc_score(y_val, members[1].predict_proba(X_val)[:, 1])
    )


def test_recipe_argmax_is_the_general_recipe_without_its_threshold(bench):
    from sklearn.ensemble import VotingClassifier

    fast = {"max_epochs": 1, "tta": None, "n_members": 2}
    plain = bench.build("recipe_argmax", 0, fast)
    tuned = bench.build("recipe_general", 0, fast)
    assert isinstance(plain, VotingClassifier)  # no threshold wrapper
    assert type(tuned).__name__ == "AutoThresholdClassifier"
    # the same members, seeds included
    ours = [m.get_params() for _, m in plain.estimators]
    theirs = [m.get_params() for _, m in tuned.estimator.estimators]
    assert ours == theirs
    assert bench.RECIPE_THRESHOLDS.keys() == bench.RECIPES.keys()
    # the recipes whose rows were fit with the tuned threshold keep it, though
    # make_recipe("general") now predicts the arg-max
    from sk_medcnn.recipes import make_recipe

    assert isinstance(make_recipe("general"), VotingClassifier)
    hedge = bench.build("recipe_hedge", 0, fast)
    assert type(hedge).__name__ == "AutoThresholdClassifier"


def test_recipe_mixed_is_the_general_recipe_and_the_older_rows_keep_plain_members(
    bench,
):
    """recipe_mixed is make_recipe("general") as it is; the recipes fit before
    its batch-normalised member keep five plain members with the same seeds,
    so that the configurations differ in that member only; default_members
    tells the default networks of each."""
    from sk_medcnn.recipes import make_recipe

    mixed = [m.get_params() for _, m in bench.build("recipe_mixed", 3).estimators]
    assert mixed == [
        m.get_params() for _, m in make_recipe("general", random_state=3).estimators
    ]
    assert mixed[4]["architecture_params"] == {"batch_norm": True}
    plain = bench.build("recipe_argmax", 3)
    for older in (
        plain.estimators,
        bench.build("recipe_general", 3).estimator.estimators,
    ):
        assert [m.architecture_params for _, m in older] == [None] * 5
        assert [m.get_params() for _, m in older][:4] == mixed[:4]
    assert bench.PLAIN_MEMBERS < bench.RECIPES.keys()
    assert "recipe_mixed" not in bench.PLAIN_MEMBERS
    hedge = bench.build("recipe_hedge", 3).estimator.estimators
    assert [m.architecture_params for _, m in hedge] == [None] * 5
    # which members are default networks, read from the recipes as built
    assert bench.default_members("recipe_mixed", 10) == 2 * (4 * (True,) + (False,))
    assert bench.default_members("recipe_argmax", 5) == 5 * (True,)
    assert bench.default_members("recipe_general", 5) == 5 * (True,)
    assert bench.default_members("recipe_hedge", 5) == 5 * (False,)  # augmentations
    assert bench.default_members("recipe_mixed", 1) == (True,)  # one member alone


def test_recipe_members_unwraps_every_wrapper(bench):
    from sklearn.ensemble import VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import FixedThresholdClassifier

    X = np.random.default_rng(0).normal(size=(40, 3))
    y = np.repeat([0, 1], 20)
    vote = VotingClassifier(
        [("a", LogisticRegression()), ("b", LogisticRegression(C=0.1))],
        voting="soft",
    )
    fitted = FixedThresholdClassifier(vote, threshold=0.4).fit(X, y)
    assert bench.recipe_members(fitted) == list(fitted.estimator_.estimators_)
    single = LogisticRegression().fit(X, y)
    assert bench.recipe_members(single) == [single]


def _member_row(subset, seed, ensemble, members, config="recipe_general"):
    shifts = ("none", "blur")
    return {
        "dataset": "d",
        "subset": subset,
        "config": config,
        "seed": seed,
        "scores": {
            s: {"auc": ensemble[i], "balanced_accuracy": 0.7 + 0.1 * seed}
            for i, s in enumerate(shifts)
        },
        "member_scores": {
            s: {"auc": float(np.mean(m)), "auc_each": list(m), "balanced_accuracy": 0.7}
            for s, m in zip(shifts, members, strict=True)
        },
    }


def test_ensemble_gain_pairs_each_recipe_with_its_own_networks(bench, capsys):
    rows = [
        _member_row("300", 0, (0.80, 0.70), ([0.76, 0.78], [0.70, 0.66])),
        _member_row("300", 1, (0.75, 0.72), ([0.74, 0.74], [0.71, 0.71])),
        {"dataset": "d", "subset": "300", "config": "moderate", "seed": 0},
    ]
    (result,) = bench.ensemble_gain(rows)
    assert result["n_seeds"] == 2
    assert result["gain_none"] == pytest.approx((0.03 + 0.01) / 2)
    assert result["gain_shifts"] == pytest.approx((0.02 + 0.01) / 2)
    assert result["se_none"] == pytest.approx(0.01)
    assert result["best_member_none"] == pytest.approx((0.01 + 0.0) / 2)
    assert result["balanced_accuracy_none"] == pytest.approx(0.05)
    bench._print_members(rows)
    out = capsys.readouterr().out
    assert "+0.0200±0.0100" in out
    with pytest.raises(SystemExit, match="member_scores"):
        bench._print_members(rows[2:])
    # the same two fits as folds of a cross-validation: a corrected error
    folds = [
        {**row, "fold": i, "n_fit": 90, "n_evaluated": 10}
        for i, row in enumerate(rows[:2])
    ]
    (result,) = bench.ensemble_gain(folds)
    assert result["se_none"] == pytest.approx(0.01 * np.sqrt(2 * (1 / 2 + 1 / 9)))


def test_ensemble_gain_compares_the_mixed_recipe_with_its_default_networks(
    bench, capsys
):
    """recipe_mixed's fifth network is batch-normalised: the gain over one
    default network leaves it out; recipes of other networks get NaN."""
    members = ([0.70, 0.72, 0.74, 0.76, 0.90], [0.60, 0.60, 0.60, 0.60, 0.80])
    rows = [_member_row("300", 0, (0.80, 0.70), members, config="recipe_mixed")]
    (mixed,) = bench.ensemble_gain(rows)
    assert mixed["gain_none"] == pytest.approx(0.80 - 0.764)  # all five
    assert mixed["gain_default_none"] == pytest.approx(0.80 - 0.73)  # first four
    assert mixed["gain_default_shifts"] == pytest.approx(0.70 - 0.60)
    plain = _member_row("300", 0, (0.80, 0.70), members, config="recipe_argmax")
    (result,) = bench.ensemble_gain([plain])
    assert result["gain_default_none"] == pytest.approx(result["gain_none"])
    hedge = _member_row("300", 0, (0.80, 0.70), members, config="recipe_hedge")
    assert np.isnan(bench.ensemble_gain([hedge])[0]["gain_default_none"])
    bench._print_members([*rows, hedge])
    out = capsys.readouterr().out
    assert "+0.0700±nan" in out
    assert "recipe_hedge" in out


def test_members_needs_saved_runs_and_prints_alone(bench, tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(["--members"])
    assert "--members reads saved runs" in capsys.readouterr().err
    saved = str(tmp_path / "runs.json")
    for other in (["--rst"], ["--versus", "a", "b"]):
        with pytest.raises(SystemExit):
            bench.parse_args(["--table", saved, "--members", *other])
        assert "--members prints its own table" in capsys.readouterr().err


def test_recipe_members_finds_the_networks_under_auto_threshold(bench):
    from sklearn.ensemble import VotingClassifier
    from sklearn.linear_model import LogisticRegression

    from sk_medcnn.recipes import AutoThresholdClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    vote = VotingClassifier(
        [("a", LogisticRegression()), ("b", LogisticRegression(C=0.1))],
        voting="soft",
    )
    for labels in ([0, 1], [0, 1, 2]):
        y = np.resize(labels, 60)
        fitted = AutoThresholdClassifier(vote, random_state=0).fit(X, y)
        members = bench.recipe_members(fitted)
        assert len(members) == 2
        assert all(isinstance(m, LogisticRegression) for m in members)
        # the final networks, fit on all the data, not the threshold's copy
        assert all(m.coef_.shape[1] == 3 for m in members)
        final = fitted.estimator_
        final = getattr(final, "estimator_", final)  # two classes: tuned threshold
        assert members == list(final.estimators_)
    single = AutoThresholdClassifier(LogisticRegression(), random_state=0)
    single.fit(X, np.resize([0, 1], 60))
    assert bench.recipe_members(single) == [single.estimator_.estimator_]


@pytest.mark.slow
def test_quick_run_saves_every_shift_and_prints_the_table(bench, tmp_path, capsys):
    path = tmp_path / "gen.json"
    args = ["--quick", "--configs", "no_aug", "strong", "--seeds", "0", "1"]
    rows = bench.main([*args, "--json", str(path)])
    saved = json.loads(path.read_text())
    assert len(rows) == len(saved["rows"]) == 4
    for row in saved["rows"]:
        assert row["fit_s"] > 0
        assert set(row["scores"]) == set(bench.SHIFTS)
        for scores in row["scores"].values():
            assert all(0 <= scores[m] <= 1 for m in bench.METRICS)
    cells = saved["summary"]
    assert len(cells) == 2 * len(bench.SHIFTS)
    assert all(math.isfinite(c["auc_sd"]) for c in cells)  # two seeds
    gaps = bench.gaps(cells)
    assert min(g["worst"] for g in gaps.values()) >= 0
    # the best configuration of each cell falls short by 0 there
    assert sum(g["cells_within_0.01"] for g in gaps.values()) >= len(bench.SHIFTS)
    out = capsys.readouterr().out
    assert "| prevalence |" in out
    assert "Shortfall of AUC" in out
    # --resume skips what is saved; --table prints saved runs without fitting
    assert len(bench.main([*args, "--json", str(path), "--resume"])) == 4
    capsys.readouterr()
    bench.main(["--table", str(path)])
    assert "| fit s (CPU s) |" in capsys.readouterr().out
    bench.main(["--table", str(path), "--rst"])
    assert "   * - prevalence" in capsys.readouterr().out


def test_the_default_augmentation_is_the_chosen_configuration(bench):
    """MedicalCNNClassifier()'s "auto" is the "moderate" candidate, step by step."""
    from sk_medcnn import MedicalCNNClassifier
    from sk_medcnn.augmentation import default_augmentation

    assert MedicalCNNClassifier().augmentation == "auto"
    assert set(bench.CONFIGS["moderate"][1]) == {"augmentation"}
    assert bench.CONFIGS["no_aug"][1] == {"augmentation": None}
    chosen = bench.CONFIGS["moderate"][1]["augmentation"]()
    default = default_augmentation()
    assert [type(step) for _, step in chosen.steps] == [
        type(step) for _, step in default.steps
    ]
    for (_, ours), (_, theirs) in zip(chosen.steps, default.steps, strict=True):
        assert ours.get_params() == theirs.get_params()


def test_configurations_are_pinned_to_the_defaults_their_rows_had(bench):
    """Every configuration but "defaults" and "defaults_bn" keeps the
    classifier's former class weights and schedule; "defaults" is
    MedicalCNNClassifier() as it is, "defaults_bn" that with batch norm."""
    from sk_medcnn import MedicalCNNClassifier

    defaults = bench.build("defaults", 0)
    assert defaults.get_params() == {
        **MedicalCNNClassifier().get_params(),
        "random_state": 0,
    }
    with_bn = bench.build("defaults_bn", 0, spatial_dims=3)
    assert with_bn.get_params() == {
        **MedicalCNNClassifier(architecture_params={"batch_norm": True}).get_params(),
        "random_state": 0,
    }
    from sk_medcnn.estimators._network import fit_architecture_params

    # volumes keep the default head under the added batch norm
    assert fit_architecture_params(with_bn, 3) == {
        "global_pool": "max",
        "batch_norm": True,
    }
    assert bench.UNPINNED == {"defaults", "defaults_bn"}
    for name in bench.CONFIGS:
        if name in bench.UNPINNED:
            continue
        params = bench.build(name, 0, spatial_dims=3).get_params()
        assert "auto" not in (params["class_weight"], params["lr_schedule"]), name
    for name in ("moderate", "no_aug", "moderate_flat", "moderate_onecycle"):
        params = bench.build(name, 0, spatial_dims=3).get_params()
        expected = "onecycle" if name.endswith("onecycle") else "cosine"
        assert (params["class_weight"], params["lr_schedule"]) == (None, expected)
    params = bench.build("moderate_bal_onecycle", 0).get_params()
    assert (params["class_weight"], params["lr_schedule"]) == (
        "balanced",
        "onecycle",
    )
    # a --set override still wins
    overridden = bench.build("moderate", 0, {"lr_schedule": "step"})
    assert overridden.lr_schedule == "step"


def _row(config, seed, none, shifted, subset="300"):
    """A saved fit of RetinaMNIST: AUC unshifted and under one shift."""
    scores = {"none": {"auc": none}, "blur": {"auc": shifted}}
    return {
        "dataset": "retina",
        "subset": subset,
        "config": config,
        "seed": seed,
        "scores": scores,
    }


def test_paired_compares_the_same_fits_only(bench, tmp_path, capsys):
    def row(seed, none, shifted, config="moderate", subset="300"):
        return _row(config, seed, none, shifted, subset)

    before = [row(0, 0.70, 0.60), row(1, 0.80, 0.70), row(2, 0.9, 0.9, "strong")]
    after = [row(0, 0.72, 0.62), row(1, 0.80, 0.74), row(5, 0.1, 0.1)]
    (result,) = bench.paired(before, after)
    assert result["n_seeds"] == 2  # seed 5 has no pair; "strong" none in after
    assert math.isclose(result["diff"], 0.02)  # each fit: the mean over shifts
    assert math.isclose(result["before"], (0.65 + 0.75) / 2)
    assert math.isclose(result["seed_sd"], np.std([0.65, 0.75], ddof=1))
    paths = [tmp_path / "before.json", tmp_path / "after.json"]
    for path, rows in zip(paths, (before, after), strict=True):
        path.write_text(json.dumps({"rows": rows}))
    bench.main(["--paired", *map(str, paths)])
    assert "+0.0200" in capsys.readouterr().out


def test_set_reads_literals_and_strings_and_refuses_the_rest(bench):
    settings = bench._settings(["memory_format=contiguous", "max_epochs=3", "lr=1e-3"])
    assert settings == {"memory_format": "contiguous", "max_epochs": 3, "lr": 1e-3}
    for bad in ("max_epochs", "=3", "not a name=1"):
        with pytest.raises(SystemExit, match="NAME=VALUE"):
            bench._settings([bad])


def test_versus_pairs_two_configurations_by_seed(bench, tmp_path, capsys):
    row = _row

    rows = [
        row("moderate", 0, 0.70, 0.60),
        row("moderate", 1, 0.80, 0.70),
        row("hedge", 0, 0.74, 0.60),
        row("hedge", 1, 0.82, 0.74),
        row("hedge", 2, 0.10, 0.10),  # no moderate fit of seed 2: not paired
        row("hedge", 0, 0.10, 0.10, subset="all"),  # nor of this subset
    ]
    (result,) = bench.versus(rows, "moderate", "hedge")
    assert (result["subset"], result["n_seeds"]) == ("300", 2)
    assert math.isclose(result["diff_none"], 0.03)
    assert math.isclose(result["se_none"], np.std([0.04, 0.02], ddof=1) / np.sqrt(2))
    assert math.isclose(result["diff_shifts"], np.mean([0.02, 0.03]))
    path = tmp_path / "runs.json"
    path.write_text(json.dumps({"rows": rows}))
    bench.main(["--table", str(path), "--versus", "moderate", "hedge"])
    assert "+0.0300" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="'strong' has no fits"):
        bench.main(["--table", str(path), "--versus", "moderate", "strong"])
    # --configs chooses the columns of --table, not the fits --versus pairs
    bench.main(
        ["--table", str(path), "--configs", "no_aug", "--versus", "moderate", "hedge"]
    )
    assert "+0.0300" in capsys.readouterr().out
    lone = [row("moderate", 7, 0.5, 0.5, subset="all"), row("hedge", 8, 0.5, 0.5)]
    path.write_text(json.dumps({"rows": lone}))
    with pytest.raises(SystemExit, match="no data set, subset and seed"):
        bench.main(["--table", str(path), "--versus", "moderate", "hedge"])
    with pytest.raises(SystemExit):
        bench.main(["--table", str(path), "--rst", "--versus", "moderate", "hedge"])
    with pytest.raises(SystemExit):  # argparse: --versus needs saved runs
        bench.main(["--versus", "moderate", "hedge"])
    assert "--versus compares saved runs" in capsys.readouterr().err


def test_paired_gaps_compare_shared_seeds_and_flag_clear_shortfalls(
    bench, tmp_path, capsys
):
    row = _row
    rows = [
        # "ahead" leads "base" by 0.05 +- 0.01 on seeds 0-2: clearly over 0.01
        *(row("base", seed, 0.70 + d, 0.70) for seed, d in enumerate((0, 0.01, 0))),
        *(row("ahead", seed, 0.75 + d, 0.70) for seed, d in enumerate((0, 0, 0.02))),
        # "wild" leads "base" by more on average (0.097), too unsteadily to be clear
        *(row("wild", seed, v, 0.70) for seed, v in enumerate((1.00, 0.61, 0.80))),
        # "lucky" looks best by its mean, but shares only two seeds with them
        row("lucky", 0, 0.99, 0.99),
        row("lucky", 1, 0.99, 0.99),
    ]
    stats = bench.paired_gaps(rows)
    assert set(stats) == {"base", "ahead", "wild"}  # "lucky" compared with none
    assert stats["base"]["skipped"] == 0
    base = stats["base"]
    assert base["cells"] == 2
    assert base["within"] == 1  # blur: all level at 0.70
    worst = base["worst_cell"]
    assert (worst.dataset, worst.subset, worst.shift, worst.leader) == (
        "retina",
        "300",
        "none",
        "wild",
    )
    assert math.isclose(worst.shortfall, np.mean([0.30, -0.10, 0.10]))
    # the shortfall is to the leader; "clearly" is any steady lead over 0.01
    (clear,) = base["clearly_short"]
    assert (clear.leader, clear.seeds) == ("ahead", 3)
    assert math.isclose(clear.shortfall, np.mean([0.05, 0.04, 0.07]))
    assert math.isclose(clear.se, np.std([0.05, 0.04, 0.07], ddof=1) / np.sqrt(3))
    assert stats["wild"]["clearly_short"] == []
    path = tmp_path / "runs.json"
    for r in rows:  # what print_table needs besides the AUC
        r.update(fit_s=1.0, fit_cpu_s=1.0)
        for scores in r["scores"].values():
            scores.update(acc=0.5, balanced_accuracy=0.5)
    path.write_text(json.dumps({"rows": rows}))
    bench.main(["--table", str(path)])
    out = capsys.readouterr().out
    assert "clearly: retina 300 none: 0.053" in out
    assert "behind ahead (3 seeds)" in out
    assert "lucky" in out  # in the tables, not among the paired lines
    assert "  lucky " not in out.split("paired by seed")[1]


def test_paired_gaps_name_no_leader_where_none_is_ahead(bench):
    rows = [_row(config, seed, 0.8, 0.7) for config in "ab" for seed in range(3)]
    rows += [_row("c", seed, 0.8, 0.7) for seed in range(2)]  # too few shared
    stats = bench.paired_gaps(rows)
    for config in "ab":  # level: a shortfall of 0, not "0.000 behind" the other
        assert stats[config]["worst"] == 0.0
        assert stats[config]["worst_cell"].leader is None
    assert "c" not in stats
    assert stats["a"]["skipped"] == 0
    with pytest.raises(ValueError, match="min_seeds must be >= 2"):
        bench.paired_gaps(rows, min_seeds=1)


def test_standardised_and_hedged_candidates_build_what_they_describe(bench):
    from sk_medcnn.preprocessing import IntensityNormalizer

    standardised = bench.build("zscore_moderate", 0, spatial_dims=3)
    normalizer, classifier = (step for _, step in standardised.steps)
    assert isinstance(normalizer, IntensityNormalizer)
    assert normalizer.per_image
    assert normalizer.spatial_dims == 3
    assert classifier.augmentation[0].translate == (0.05, 0.05, 0.05)
    assert bench.build("zscore_no_aug", 0).steps[-1][1].augmentation is None
    hedge = bench.build("recipe_hedge", 0, {"max_epochs": 1})
    members = [member for _, member in hedge.estimator.estimators]
    assert len(members) == len(bench.MEMBER_AUGMENTATIONS["recipe_hedge"]) == 5
    assert all(member.max_epochs == 1 for member in members)
    # affine only, then intensity changes of growing strength: RandomIntensity's
    # contrast 0.2, 0.2, 0.3, 0.4
    from sk_medcnn.augmentation import RandomAffine

    assert isinstance(members[0].augmentation, RandomAffine)
    contrasts = [m.augmentation.steps[1][1].contrast for m in members[1:]]
    assert contrasts == [0.2, 0.2, 0.3, 0.4]
    assert members[2].augmentation.steps[-1][1].std == 0.04  # recipe_noise's noise
    fewer = bench.build("recipe_hedge", 0, {"n_members": 2})
    assert len(fewer.estimator.estimators) == 2
    more = bench.build("recipe_hedge", 0, {"n_members": 6})  # the list starts over
    assert isinstance(more.estimator.estimators[5][1].augmentation, RandomAffine)
    one = bench.build("recipe_hedge", 0, {"n_members": 1})  # no ensemble
    assert isinstance(one.estimator.augmentation, RandomAffine)


def test_the_class_weight_candidate_balances_the_classes(bench):
    assert bench.build("moderate_bal", 0, spatial_dims=3).class_weight == "balanced"
    assert bench.build("moderate", 0, spatial_dims=3).class_weight is None
    warm = bench.build("moderate_bal_onecycle", 0, spatial_dims=3)
    assert (warm.class_weight, warm.lr_schedule) == ("balanced", "onecycle")


def test_head_candidates_set_the_global_pool(bench):
    flat = bench.build("moderate_flat", 0, spatial_dims=3)
    assert flat.architecture_params == {"global_pool": None}
    assert flat.augmentation[0].translate == (0.05, 0.05, 0.05)
    assert bench.build("moderate_gavg", 0).architecture_params == {"global_pool": "avg"}


@pytest.mark.parametrize("share", [0.1, 0.25])
def test_thin_keeps_the_other_classes_and_makes_the_share(bench, share):
    y = np.repeat([0, 1, 2], [300, 500, 100])
    rows = bench.thin(y, 1, share)
    kept = y[rows]
    assert np.all(np.diff(rows) > 0)
    assert np.sum(kept == 0) == 300
    assert np.sum(kept == 2) == 100
    assert np.mean(kept == 1) == pytest.approx(share, abs=0.002)
    np.testing.assert_array_equal(rows, bench.thin(y, 1, share))  # seeded
    assert not np.array_equal(rows, bench.thin(y, 1, share, seed=1))


def test_thin_refuses_a_share_the_class_cannot_make(bench):
    y = np.repeat([0, 1], [100, 10])
    with pytest.raises(ValueError, match=r"share=0\.5 needs 100 images of class 1"):
        bench.thin(y, 1, 0.5)
    for share in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"share must be in \(0, 1\)"):
            bench.thin(y, 1, share)


def test_a_rare_variant_has_its_base_data_sets_dimensions(bench, monkeypatch):
    monkeypatch.setitem(bench.RARE, "vessel_rare5", ("vessel", 1, 0.05))
    assert bench.spatial_dims_of("vessel_rare5") == 3
    assert bench.spatial_dims_of("vessel") == 3
    assert bench.spatial_dims_of("pneumonia_rare10") == 2


def test_rare_variants_name_real_data_sets_and_rare_shares(bench):
    for base, _label, share in bench.RARE.values():
        assert base in bench.DATASETS
        assert 0.0 < share < 0.5
    # one below the class-weight rule's bound and one above it
    from sk_medcnn.estimators._classifier import AUTO_CLASS_WEIGHT_SHARE

    shares = sorted(share for *_, share in bench.RARE.values())
    assert shares[0] < AUTO_CLASS_WEIGHT_SHARE < shares[-1]


def test_a_rare_variant_thins_the_training_split_only(bench):
    base, label, share = bench.RARE["pneumonia_rare10"]
    if not bench.DATASETS[base].exists():
        pytest.skip(f"{bench.DATASETS[base]} is absent")
    X, y, X_val, y_val = bench.load("pneumonia_rare10")
    _, y_base, X_val_base, y_val_base = bench.load(base)
    assert np.mean(y == label) == pytest.approx(share, abs=0.001)
    assert np.sum(y != label) == np.sum(y_base != label)
    assert len(X) == len(y) < len(y_base)
    np.testing.assert_array_equal(y_val, y_val_base)
    np.testing.assert_array_equal(X_val, X_val_base)


def test_evaluate_rest_scores_the_training_images_the_subset_left_out(bench):
    data = bench.load("quick", quick=True)
    X, y, X_val, y_val = data
    rows = bench.subset(X, y, "10%", seed=0)
    images, labels = bench.evaluation_set(data, rows, "rest")
    assert len(labels) == len(y) - len(rows)
    # disjoint from the fit: no training row is among the scored ones
    rest = np.setdiff1d(np.arange(len(y)), rows)
    np.testing.assert_array_equal(images, X[rest])
    np.testing.assert_array_equal(labels, y[rest])
    same = bench.evaluation_set(data, rows, "validation")
    assert same[0] is X_val
    assert same[1] is y_val
    with pytest.raises(ValueError, match="holds all of them"):
        bench.evaluation_set(data, np.arange(len(y)), "rest")
    with pytest.raises(ValueError, match="evaluate must be"):
        bench.evaluation_set(data, rows, "test")
    fast = {"max_epochs": 1, "tta": None}
    row = bench.run_fit("quick", "10%", "no_aug", 0, data, fast, evaluate="rest")
    assert (row["evaluated_on"], row["n_evaluated"]) == ("rest", len(rest))
    assert set(row["scores"]) == set(bench.SHIFTS)
    plain = bench.run_fit("quick", "10%", "no_aug", 0, data, fast)
    assert "evaluated_on" not in plain
    assert plain["scores"]["none"] != row["scores"]["none"]


def test_tables_refuse_rows_of_two_evaluation_sets(bench, tmp_path, capsys):
    validation, rest = tmp_path / "validation.json", tmp_path / "rest.json"
    validation.write_text(json.dumps({"rows": [_row("moderate", 0, 0.7, 0.6)]}))
    rows = [
        {**_row(config, seed, auc, auc), "evaluated_on": "rest"}
        for config, seed, auc in [("moderate", 0, 0.8), ("hedge", 0, 0.9)]
    ]
    rest.write_text(json.dumps({"rows": rows}))
    # one evaluation set at a time is fine
    bench.main(["--table", str(rest), "--versus", "moderate", "hedge"])
    assert "+0.1000" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="scored on different images"):
        bench.main(["--table", str(validation), str(rest)])
    with pytest.raises(SystemExit):  # argparse: the whole split leaves no rest
        bench.main(["--evaluate", "rest", "--subsets", "all", "--datasets", "retina"])
    assert "leaves none" in capsys.readouterr().err
    # --resume would take a validation fit for done and mix the two in one file
    resume = ["--configs", "moderate", "--seeds", "0", "--resume"]
    with pytest.raises(SystemExit, match="--evaluate validation; --evaluate rest"):
        bench.main(
            [
                *resume,
                "--evaluate",
                "rest",
                "--subsets",
                "300",
                "--json",
                str(validation),
            ]
        )
    with pytest.raises(SystemExit, match="--evaluate rest; --evaluate validation"):
        bench.main([*resume, "--json", str(rest)])
    with pytest.raises(SystemExit, match="scored on different images"):
        bench.main(["--paired", str(validation), str(rest)])


def test_a_quick_run_can_score_the_rest(bench, tmp_path):
    path = tmp_path / "rest.json"
    args = ["--quick", "--evaluate", "rest", "--configs", "no_aug", "--seeds", "0"]
    (row,) = bench.main([*args, "--json", str(path)])
    y = bench.load("quick", quick=True)[1]
    assert row["subset"] == "10%"
    assert row["n_fit"] + row["n_evaluated"] == len(y)
    assert row["evaluated_on"] == "rest"


def test_cv_split_cuts_the_pooled_splits_into_stratified_folds(bench):
    data = bench.load("quick", quick=True)
    X, y, X_val, y_val = data
    pooled = np.concatenate([X, X_val]).reshape(len(y) + len(y_val), -1)
    held = []
    for fold in range(bench.CV_FOLDS):
        X_fit, y_fit, X_eval, y_eval = bench.cv_split(data, seed=0, fold=fold)
        assert len(y_fit) + len(y_eval) == len(pooled)
        # each fold keeps the pooled class shares (within one image)
        assert abs(np.sum(y_eval == 1) - len(y_eval) * np.mean(y == 1)) <= 1.5
        # no evaluated image is among the fitted ones
        fitted = {row.tobytes() for row in X_fit.reshape(len(y_fit), -1)}
        assert not any(r.tobytes() in fitted for r in X_eval.reshape(len(y_eval), -1))
        held.extend(r.tobytes() for r in X_eval.reshape(len(y_eval), -1))
    # the folds cover the pooled images once each
    assert sorted(held) == sorted(row.tobytes() for row in pooled)
    # the seed draws the folds; the same seed, the same folds
    same = bench.cv_split(data, seed=0, fold=3)[3]
    np.testing.assert_array_equal(same, bench.cv_split(data, seed=0, fold=3)[3])
    assert not np.array_equal(same, bench.cv_split(data, seed=1, fold=3)[3])
    for fold in (-1, bench.CV_FOLDS):
        with pytest.raises(ValueError, match="fold must be in"):
            bench.cv_split(data, seed=0, fold=fold)


def test_run_fit_cross_validates_the_whole_split_only(bench):
    data = bench.load("quick", quick=True)
    fast = {"max_epochs": 1, "tta": None}
    row = bench.run_fit("quick", "all", "no_aug", 0, data, fast, "cv", fold=2)
    assert (row["evaluated_on"], row["fold"]) == ("cv", 2)
    assert row["n_fit"] + row["n_evaluated"] == len(data[1]) + len(data[3])
    for which, fold in (("300", 0), ("all", None)):
        with pytest.raises(ValueError, match="subset 'all' and needs a fold"):
            bench.run_fit("quick", which, "no_aug", 0, data, fast, "cv", fold=fold)


def test_cv_rows_pair_by_seed_and_fold_with_a_corrected_error(bench, capsys):
    def row(config, seed, fold, auc):
        saved = _row(config, seed, auc, auc, subset="all")
        return {**saved, "fold": fold, "n_fit": 900, "n_evaluated": 100}

    base = [0.70, 0.72, 0.71, 0.69]
    gain = [0.01, 0.03, 0.02, 0.02]
    rows = [row("defaults", 0, fold, auc) for fold, auc in enumerate(base)]
    rows += [
        row("bn", 0, fold, auc + g)
        for fold, (auc, g) in enumerate(zip(base, gain, strict=True))
    ]
    (result,) = bench.versus(rows, "defaults", "bn")
    assert result["n_seeds"] == 4  # four folds of one seed, each its own pair
    assert math.isclose(result["diff_none"], 0.02)
    # Nadeau and Bengio: var * (1/n + n_evaluated/n_fit), not var / n
    corrected = np.std(gain, ddof=1) * np.sqrt(1 / 4 + 100 / 900)
    assert math.isclose(result["se_none"], corrected)
    assert corrected > np.std(gain, ddof=1) / 2
    # without folds the same differences get the plain standard error
    plain = [{k: v for k, v in r.items() if k != "fold"} for r in rows]
    plain = [{**r, "seed": i % 4} for i, r in enumerate(plain)]
    (result,) = bench.versus(plain, "defaults", "bn")
    assert math.isclose(result["se_none"], np.std(gain, ddof=1) / 2)
    # units with and without a fold sort together (seed 0 unfolded, then folds)
    mixed = [*rows, {**row("defaults", 0, None, 0.7), "fold": None}]
    mixed.append({**row("bn", 0, None, 0.71), "fold": None})
    assert bench.paired_gaps(mixed)["defaults"]["worst_cell"].seeds == 5
    # paired_gaps pairs the same units: bn leads in every fold
    stats = bench.paired_gaps(rows)
    assert stats["defaults"]["worst_cell"].leader == "bn"
    assert stats["defaults"]["worst_cell"].seeds == 4
    assert math.isclose(stats["defaults"]["worst_cell"].se, corrected)
    out = io.StringIO()
    bench.print_paired_gaps(rows, out)
    assert "paired by seed and fold" in out.getvalue()
    assert "behind bn (4 folds)" in out.getvalue()


def test_a_quick_run_can_cross_validate(bench, tmp_path, capsys):
    path = tmp_path / "cv.json"
    args = ["--quick", "--evaluate", "cv", "--configs", "no_aug", "--seeds", "0"]
    rows = bench.main([*args, "--json", str(path)])
    assert [row["fold"] for row in rows] == list(range(bench.CV_FOLDS))
    assert {row["subset"] for row in rows} == {"all"}
    # every pooled image scored once
    _, y, _, y_val = bench.load("quick", quick=True)
    assert sum(row["n_evaluated"] for row in rows) == len(y) + len(y_val)
    # --resume skips the folds done; --table shows them with the others refused
    assert bench.main([*args, "--json", str(path), "--resume"]) == rows
    bench.main(["--table", str(path), "--versus", "no_aug", "no_aug"])
    assert "paired by seed and fold" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # argparse: cv is of the whole split
        bench.main(["--evaluate", "cv", "--subsets", "300", "--datasets", "retina"])
    assert "--subsets all" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the rare variants' validation is unthinned
        bench.main(["--evaluate", "cv", "--datasets", "pneumonia_rare10"])
    assert "not with them" in capsys.readouterr().err
    assert bench.parse_args(["--evaluate", "cv"]).subsets == ["all"]
    with pytest.raises(SystemExit, match="--evaluate cv; --evaluate validation"):
        bench.main(["--configs", "no_aug", "--resume", "--json", str(path)])


def test_versus_compares_the_metric_asked_for(bench, tmp_path, capsys):
    def row(config, seed, auc, balanced):
        saved = _row(config, seed, auc, auc)
        for scores in saved["scores"].values():
            scores["balanced_accuracy"] = balanced
        return saved

    rows = [row("defaults", 0, 0.7, 0.6), row("bn", 0, 0.8, 0.5)]
    rows += [row("defaults", 1, 0.7, 0.6), row("bn", 1, 0.8, 0.5)]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps({"rows": rows}))
    table = ["--table", str(path), "--versus", "defaults", "bn"]
    bench.main([*table, "--metric", "balanced_accuracy"])
    out = capsys.readouterr().out
    assert out.startswith("balanced accuracy of bn minus defaults")
    assert "-0.1000" in out
    bench.main(table)
    assert "+0.1000" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench.main(["--table", str(path), "--metric", "acc"])
    assert "give --versus" in capsys.readouterr().err
