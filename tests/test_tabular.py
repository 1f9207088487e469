"""The tabular (entity-embedding) trainer: model, preprocessing, training on synthetic-rossmann
with planted truth, saved runs, ``embedlab predict``, presets, and the ``table-csv`` dataset."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import embedlab
from embedlab.errors import DataError, EmbedlabError, UsageError
from embedlab.training.models import EntityEmbeddingNet, emb_sz_rule
from embedlab.trainers.base import EncodedRows
from embedlab.trainers.tabular import PRESETS, TabularTrainer
from embedlab.trainers.tabular_processor import TabularProcessor, rmspe

# small, quick settings: ~20k synthetic rows, a small MLP
FAST = {"layers": "128,64", "epochs": 5, "bs": 128, "lr": 5e-3, "seed": 1, "threads": 1}


@pytest.fixture(scope="module")
def synth():
    return embedlab.load_dataset("synthetic-rossmann", n_stores=40, seed=1)  # 40 stores x 400 days


@pytest.fixture(scope="module")
def synth_run(synth):
    return TabularTrainer().train(synth, dict(FAST), progress=False)


def _partial_dependence(run, frame: pd.DataFrame, column: str, values) -> np.ndarray:
    """Mean predicted log sales with ``column`` set to each value (centred): one predict call."""
    copies = []
    for v in values:
        f = frame.copy()
        f[column] = pd.Series([v] * len(f), index=f.index, dtype=object if isinstance(v, str) else None)
        copies.append(f)
    pred = np.log(TabularTrainer().predict(run, pd.concat(copies, ignore_index=True))["Sales"].to_numpy())
    out = pred.reshape(len(values), len(frame)).mean(1)
    return out - out.mean()


# ---------------------------------------------------------------------------- model
def test_model_shapes_groups_and_small_init():
    torch.manual_seed(0)
    m = EntityEmbeddingNet([11, 5], [4, 3], 2, [16, 8], [0.0, 0.1], 0.0, (0.0, 10.0), names=["a", "b"])
    with torch.no_grad():
        out = m(torch.randint(0, 5, (32, 2)), torch.randn(32, 2))
    assert out.shape == (32,)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 10.0
    assert list(m.layer_groups()) == ["embeddings", "body", "head"]
    n_params = sum(p.numel() for g in m.layer_groups().values() for p in g)
    assert n_params == sum(p.numel() for p in m.parameters())
    w = m.embeds[0].weight.detach()
    assert float(w.std()) < 0.02 and float(w.abs().max()) <= 0.02 + 1e-6  # truncated normal, std 0.01
    m.init_output(7.5)
    m.eval()
    with torch.no_grad():
        assert abs(float(m(torch.zeros(4, 2, dtype=torch.long), torch.zeros(4, 2)).mean()) - 7.5) < 1.0
    # rebuilt from its recorded hyper-parameters: same architecture, same outputs
    m2 = EntityEmbeddingNet.from_hparams(json.loads(json.dumps(m.hparams)))
    m2.load_state_dict(m.state_dict())
    m2.eval()
    x = (torch.randint(0, 5, (8, 2)), torch.randn(8, 2))
    assert torch.allclose(m(*x), m2(*x))


def test_model_without_continuous_and_classification_head():
    m = EntityEmbeddingNet([4, 4], [2, 2], 0, [8], [0.0], n_out=3, batchnorm=False)
    out = m(torch.randint(0, 4, (5, 2)), torch.zeros(5, 0))
    assert out.shape == (5, 3)


def test_emb_sz_rule_matches_fastai():
    assert emb_sz_rule(1116) == round(1.6 * 1116**0.56)
    assert emb_sz_rule(10**9) == 600


# ---------------------------------------------------------------------------- preprocessing
def test_processor_vocab_unknown_missing_and_training_statistics():
    train = pd.DataFrame({"c": [3, 1, 3, 2], "s": ["x", "y", None, "x"], "n": [1.0, np.nan, 3.0, 5.0]})
    proc = TabularProcessor.fit(train, ["c", "s"], ["n"])
    assert proc.cat_names == ["c", "s", "n_na"]  # a NaN indicator for the continuous column with NaN
    spec = {c["name"]: c for c in proc.categorical}
    assert spec["c"]["vocab"] == [1, 2, 3] and spec["s"]["vocab"] == ["x", "y"]
    new = pd.DataFrame({"c": [2, 99, None], "s": ["y", "zzz", None], "n": [np.nan, 3.0, 100.0]})
    cats, conts = proc.transform(new)
    assert cats[:, 0].tolist() == [2, 0, 0]  # unknown and missing -> the reserved row 0
    assert cats[:, 1].tolist() == [2, 0, 0]
    assert cats[:, 2].tolist() == [2, 1, 1]  # n_na: code 2 = "missing"
    fill = 3.0  # the training median
    mean = np.mean([1.0, fill, 3.0, 5.0])
    std = np.std([1.0, fill, 3.0, 5.0])
    assert conts[0, 0] == pytest.approx((fill - mean) / std, rel=1e-5)
    assert conts[2, 0] == pytest.approx((100.0 - mean) / std, rel=1e-5)  # validation values never refit
    again = TabularProcessor.from_dict(json.loads(json.dumps(proc.to_dict())))
    c2, n2 = again.transform(new)
    assert torch.equal(cats, c2) and torch.equal(conts, n2)


def test_processor_missing_column_is_one_line_error():
    proc = TabularProcessor.fit(pd.DataFrame({"a": [1, 2], "b": [0.5, 1.0]}), ["a"], ["b"])
    with pytest.raises(DataError, match="column 'b' is missing"):
        proc.transform(pd.DataFrame({"a": [1]}))


def test_rmspe_skips_zero_sales():
    assert rmspe([100, 0, 200], [90, 50, 220]) == pytest.approx(np.sqrt((0.1**2 + 0.1**2) / 2))


# ---------------------------------------------------------------------------- planted truth
def test_synthetic_training_beats_mean_per_store_by_a_wide_margin(synth, synth_run):
    va = synth.valid
    baseline = va["Store"].map(synth.train.groupby("Store")["Sales"].mean())
    base = rmspe(va["Sales"], baseline)
    model = synth_run.metrics["valid_rmspe"]
    assert model < 0.6 * base, (model, base)
    assert synth_run.metrics["valid_rmspe"] == pytest.approx(
        rmspe(va["Sales"], TabularTrainer().predict(synth_run, va)["Sales"]), rel=1e-4
    )
    for key in ("valid_rmspe", "valid_mape", "valid_rmse_log", "train_seconds"):
        assert key in synth_run.metrics
    assert len(synth_run.history) == FAST["epochs"]


def test_synthetic_weekday_month_state_store_effects_are_recovered(synth, synth_run):
    from embedlab_datasets.synthetic_rossmann import TYPE_EFFECT

    sample = synth.train.sample(1000, random_state=0)
    for col, min_corr in (("DayOfWeek", 0.95), ("Month", 0.85), ("State", 0.7)):
        truth = synth.entities[col]["true_effect"].dropna()
        curve = _partial_dependence(synth_run, sample, col, list(truth.index))
        corr = np.corrcoef(curve, truth.to_numpy())[0, 1]
        assert corr > min_corr, (col, corr)
    stores = synth.entities["Store"]
    own = stores["true_effect"] - stores["StoreType"].map(TYPE_EFFECT)  # the type has its own table
    curve = _partial_dependence(synth_run, sample, "Store", list(stores.index))
    assert np.corrcoef(curve, own.to_numpy())[0, 1] > 0.6


def test_synthetic_planted_function_and_promo_lift_are_recovered(synth, synth_run):
    from embedlab_datasets.synthetic_rossmann import planted_mean

    va = synth.valid
    truth = planted_mean(va, synth.entities)
    pred = np.log(TabularTrainer().predict(synth_run, va)["Sales"].to_numpy())
    assert np.corrcoef(pred, truth)[0, 1] > 0.98
    assert np.abs(pred - truth).mean() < 0.05  # the noise (sd 0.08) is not learned
    residual = pred - truth
    promo = va["Promo"].to_numpy() == 1
    # the promo lift (0.25) is in the predictions: no promo/no-promo gap left in the residuals
    assert abs(residual[promo].mean() - residual[~promo].mean()) < 0.05


def test_learned_weekday_embedding_encodes_the_planted_cycle(synth, synth_run):
    from scipy.spatial.distance import pdist
    from scipy.stats import spearmanr

    table = synth_run.table("DayOfWeek")
    md = table.metadata
    # each day's planted pair: its main effect and its east-west interaction at the stores' spread
    spread = synth.entities["State"]["true_east"].std()
    truth = np.c_[md["true_effect"], md["true_shape"] * spread]
    # days with similar planted effects sit close together in the embedding
    rho = spearmanr(pdist(table.vectors), pdist(truth)).correlation
    assert rho > 0.6, rho
    # and the embedding's two leading directions carry both planted numbers
    centred = table.vectors - table.vectors.mean(0)
    pcs = centred @ np.linalg.svd(centred)[2][:2].T
    design = np.c_[pcs, np.ones(len(pcs))]
    for planted in truth.T:
        fit = design @ np.linalg.lstsq(design, planted, rcond=None)[0]
        assert np.corrcoef(fit, planted)[0, 1] > 0.85


# ---------------------------------------------------------------------------- the run
def test_run_tables_labels_and_annotations(synth_run):
    names = synth_run.table_names
    for name in (
        "Store",
        "State",
        "DayOfWeek",
        "Month",
        "Week",
        "Day",
        "StoreType",
        "Assortment",
        "PromoInterval",
        "StateHoliday",
    ):
        assert name in names
    assert not any(n.endswith("_na") for n in names)
    dow = synth_run.table("DayOfWeek")
    assert list(dow.labels) == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert dow.attrs["cycle_length"] == 7 and list(dow.metadata["cycle_order"]) == list(range(7))
    assert synth_run.table("Month").attrs["cycle_length"] == 12
    assert synth_run.table("Month").labels[0] == "Jan"
    assert synth_run.table("Week").attrs["cycle_length"] == 52
    assert synth_run.table("Day").attrs["cycle_length"] == 31
    state = synth_run.table("State")
    assert "Bavaria" in list(state.labels) and {"latitude", "longitude"} <= set(state.metadata)
    store = synth_run.table("Store")
    assert store.attrs["color_column"] == "StoreType" and store.attrs["target_column"] == "mean_sales"
    assert {"StoreType", "Assortment", "State", "CompetitionDistance", "mean_sales", "count"} <= set(store.metadata)
    assert len(store) == 40 and store.vectors.shape == (40, emb_sz_rule(41))  # reserved row 0 left out
    # counts come from the training rows
    assert int(dow.metadata["count"].sum()) == synth_run.metrics["train_rows"]


def test_saved_run_predicts_like_the_trained_model_and_has_no_pickle(synth, synth_run, tmp_path):
    out = synth_run.save(tmp_path / "run")
    loaded = embedlab.load_run(out)
    meta = json.loads((out / "run.json").read_text())
    for key in ("preprocess", "y_range", "categorical", "continuous"):
        assert key in meta["tabular"]
    assert meta["preset"] == "default" and meta["split"]["name"] == "last-days"
    assert not list(out.glob("*.pt")) and not list(out.glob("*.pkl"))
    a = TabularTrainer().predict(synth_run, synth.valid)["Sales"].to_numpy()
    b = TabularTrainer().predict(loaded, synth.valid)["Sales"].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_predict_closed_stores_zero_unknown_categories_no_error(synth, synth_run):
    test = synth.test.copy()
    test["StateHoliday"] = test["StateHoliday"].astype(object)
    test.loc[test.index[:5], "Open"] = 0
    test.loc[test.index[5:10], "Store"] = 999_999  # a store never seen
    test.loc[test.index[10:15], "StateHoliday"] = "zz"
    preds = TabularTrainer().predict(synth_run, test)
    assert list(preds.columns) == ["Id", "Sales"] and len(preds) == len(test)
    assert preds["Id"].is_monotonic_increasing
    closed = set(test["Id"][test["Open"] == 0])
    assert (preds.loc[preds["Id"].isin(closed), "Sales"] == 0).all()
    assert np.isfinite(preds["Sales"]).all() and (preds.loc[~preds["Id"].isin(closed), "Sales"] > 0).all()


def test_encode_rows_is_the_models_view_of_the_rows(synth, synth_run):
    rows = synth.valid.head(300).reset_index(drop=True)
    enc = TabularTrainer().encode_rows(synth_run, rows, "validation rows")
    assert isinstance(enc, EncodedRows) and len(enc) == 300 and enc.task == "regression"
    assert enc.target_transform == "log" and enc.classes is None
    proc = TabularProcessor.from_dict(synth_run.meta["tabular"]["preprocess"])
    assert enc.categorical == proc.cat_names
    cats, conts = proc.transform(rows)
    np.testing.assert_array_equal(enc.codes, cats.numpy())
    assert enc.codes.dtype == np.int64 and enc.continuous.dtype == np.float32
    np.testing.assert_array_equal(enc.continuous, conts.numpy())
    assert len(enc.embeddings) == enc.codes.shape[1]
    for j, name in enumerate(enc.categorical):
        assert enc.embeddings[j].dtype == np.float32 and enc.embeddings[j].shape[0] > enc.codes[:, j].max()
        if name in synth_run.tables:  # row 0 is the unknown row; the table holds the others
            np.testing.assert_array_equal(enc.embeddings[j][1:], synth_run.table(name).vectors)
    np.testing.assert_array_equal(enc.target, rows["Sales"].to_numpy(dtype="float64"))
    # the prediction is exp(output): predict() multiplies it by the run's RMSPE scale
    scale = synth_run.meta["tabular"]["scale"]
    np.testing.assert_allclose(enc.prediction * scale, TabularTrainer().predict(synth_run, rows)["Sales"], rtol=1e-6)
    unlabelled = TabularTrainer().encode_rows(synth_run, rows.drop(columns=["Sales"]).head(5), "test rows")
    assert np.isnan(unlabelled.target).all() and np.isfinite(unlabelled.prediction).all()
    with pytest.raises(DataError, match="test rows: column 'Store' is missing"):
        TabularTrainer().encode_rows(synth_run, rows.drop(columns=["Store"]), "test rows")


def test_encode_rows_of_a_classifier_gives_class_indices_and_probabilities(table_file):
    ds = embedlab.load_dataset("table-csv", file=table_file, target="Big", task="classify", cat="Store,Month")
    run = TabularTrainer().train(ds, {**FAST, "epochs": 1, "layers": "16"}, progress=False)
    rows = ds.valid.head(40).reset_index(drop=True)
    enc = TabularTrainer().encode_rows(run, rows)
    assert enc.task == "classify" and enc.classes == ["no", "yes"] and enc.prediction.shape == (40, 2)
    np.testing.assert_allclose(enc.prediction.sum(1), 1.0)
    np.testing.assert_array_equal(enc.target, (rows["Big"] == "yes").to_numpy(dtype="float64"))
    assert run.task == "classify" and run.meta["task"] == "classify"


def test_run_task_is_recorded_and_read_from_older_runs(synth_run, tmp_path):
    from embedlab.run import Run

    assert synth_run.meta["task"] == "regression" and synth_run.task == "regression"
    out = synth_run.save(tmp_path / "run")
    meta = json.loads((out / "run.json").read_text())
    assert meta["task"] == "regression"
    # a run.json written before the top-level key: the tabular record says, collab runs are ratings
    older = {k: v for k, v in meta.items() if k != "task"}
    assert Run(older, {}).task == "regression"
    assert Run({**older, "tabular": {**older["tabular"], "task": "classify"}}, {}).task == "classify"
    assert Run({"dataset": "ml", "kind": "collab"}, {}).task == "regression"
    assert Run({"dataset": "x", "kind": "tmp-kind"}, {}).task is None
    assert Run({**meta, "tabular": {**meta["tabular"], "task": "classify"}}, {}).task == "regression"  # top level wins


def test_same_seed_same_run(synth):
    cfg = {**FAST, "epochs": 1, "train_sample": 3000}
    a = TabularTrainer().train(synth, dict(cfg), progress=False)
    b = TabularTrainer().train(synth, dict(cfg), progress=False)
    assert a.metrics["valid_rmspe"] == b.metrics["valid_rmspe"]
    np.testing.assert_array_equal(a.table("Store").vectors, b.table("Store").vectors)


def test_guo2016_preset_uses_the_papers_features_and_sizes(synth):
    run = TabularTrainer().train(
        synth, {"preset": "guo2016", "epochs": 1, "train_sample": 3000, "layers": "32,16"}, progress=False
    )
    assert set(run.table_names) == {"Store", "DayOfWeek", "Day", "Month", "Year", "Promo", "State"}
    from embedlab_datasets.rossmann import GUO2016_COLUMNS

    sizes = GUO2016_COLUMNS["emb_sizes"]
    for name, size in sizes.items():
        assert run.table(name).dim == size
    assert run.meta["tabular"]["categorical"] == GUO2016_COLUMNS["categorical"]  # the paper's order
    assert run.config["emb_size"] == sizes and list(run.config["emb_size"]) == list(sizes)
    assert run.meta["tabular"]["continuous"] == [] and run.config["loss"] == "mae"
    assert run.metrics["train_rows"] == 3000


def test_the_trainer_names_no_datasets_columns():
    # a preset's columns are the dataset's (Dataset.column_sets); the trainer keeps only recipes
    assert PRESETS["guo2016"]["column_set"] == "guo2016"
    assert not any(key in preset for preset in PRESETS.values() for key in ("categorical", "emb_sizes"))
    import embedlab.trainers.tabular as tabular
    import embedlab.trainers.tabular_options as tabular_options

    for module in (tabular, tabular_options):  # the trainer and its presets
        source = open(module.__file__, encoding="utf-8").read()
        assert '"DayOfWeek"' not in source and '"Promo": 1' not in source


def test_guo2016_on_a_dataset_without_the_column_set_is_a_one_line_error(table_file, tmp_path):
    ds = embedlab.load_dataset("table-csv", file=table_file, target="Sales", cat="Store,DayOfWeek")
    assert ds.column_sets == {}
    with pytest.raises(UsageError, match=r"--preset guo2016 .*dataset 'table-csv' defines no 'guo2016' column set"):
        TabularTrainer().train(ds, {"preset": "guo2016", "epochs": 1}, progress=False)
    from embedlab.cli import make_cli

    res = CliRunner().invoke(
        make_cli(),
        [
            "train",
            "table-csv",
            "--file",
            str(table_file),
            "--target",
            "Sales",
            "--cat",
            "Store",
            "--preset",
            "guo2016",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert res.exit_code != 0 and "Traceback" not in res.output
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, res.output
    assert "'table-csv'" in errors[0] and "guo2016" in errors[0] and "--preset default" in errors[0]
    assert not (tmp_path / "r").exists()


def test_a_column_set_the_dataset_defines_drives_guo2016(table_file):
    ds = embedlab.load_dataset("table-csv", file=table_file, target="Sales", log_target=True, cat="Store,Month")
    ds.column_sets = {
        "guo2016": {"categorical": ["Month", "Store"], "continuous": ["Promo"], "emb_sizes": {"Store": 3}}
    }
    run = TabularTrainer().train(ds, {"preset": "guo2016", "epochs": 1, "layers": "8"}, progress=False)
    assert run.meta["tabular"]["categorical"] == ["Month", "Store"] and run.meta["tabular"]["continuous"] == ["Promo"]
    assert run.table("Store").dim == 3 and run.config["emb_size"] == {"Store": 3}


def test_config_errors_are_usage_errors(synth):
    trainer = TabularTrainer()
    with pytest.raises(UsageError, match="--ps"):
        trainer.train(synth, {"layers": "10,5", "ps": "0.1", "epochs": 1}, progress=False)
    with pytest.raises(UsageError, match="not a categorical column"):
        trainer.train(synth, {"emb_size": ("Nope=3",), "epochs": 1}, progress=False)
    with pytest.raises(UsageError, match="--exclude 'Nope'"):
        trainer.train(synth, {"exclude": "Nope", "epochs": 1}, progress=False)
    with pytest.raises(UsageError, match="COLUMN=SIZE"):
        trainer.train(synth, {"emb_size": ("Store:3",), "epochs": 1}, progress=False)


def test_exclude_and_emb_size_override(synth):
    run = TabularTrainer().train(
        synth,
        {**FAST, "epochs": 1, "train_sample": 2000, "exclude": "Week,AfterPromo", "emb_size": ("Store=7",)},
        progress=False,
    )
    assert "Week" not in run.table_names and run.table("Store").dim == 7
    assert "AfterPromo" not in run.meta["tabular"]["continuous"]


def test_excluding_a_column_drops_its_preset_size_but_not_an_explicit_one(synth):
    trainer = TabularTrainer()
    cfg = trainer.resolve_config({"preset": "guo2016", "exclude": "Store"}, synth)
    assert "Store" not in cfg["emb_size"] and cfg["emb_size"]["State"] == 6
    assert trainer._columns(synth, cfg)[0] == ["DayOfWeek", "Day", "Month", "Year", "Promo", "State"]
    with pytest.raises(UsageError, match="--emb-size Store=.*not a categorical column"):
        trainer._columns(
            synth, trainer.resolve_config({"preset": "guo2016", "exclude": "Store", "emb_size": ("Store=4",)}, synth)
        )


def test_lr_find_runs_and_restores(synth):
    result = TabularTrainer().lr_find(synth, {**FAST, "train_sample": 4000}, progress=False)
    assert len(result.lrs) > 5 and np.all(np.isfinite(result.losses[:5]))


# ---------------------------------------------------------------------------- CLI
def test_cli_train_and_predict_synthetic(tmp_path):
    from embedlab.cli import make_cli

    runner = CliRunner()
    out = tmp_path / "synth-rossmann"
    res = runner.invoke(
        make_cli(),
        [
            "train",
            "synthetic-rossmann",
            "--stores",
            "24",
            "--days",
            "200",
            "--layers",
            "32,16",
            "--epochs",
            "1",
            "-q",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert (out / "run.json").is_file() and (out / "weights.safetensors").is_file()
    sub = tmp_path / "submission.csv"
    res = runner.invoke(make_cli(), ["predict", str(out), "--out", str(sub)])
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(sub)
    assert list(frame.columns) == ["Id", "Sales"] and len(frame) == 24 * 48
    assert frame["Id"].tolist() == sorted(frame["Id"]) and (frame["Sales"] >= 0).all()


def test_cli_help_lists_trainer_and_dataset_options():
    from embedlab.cli import make_cli

    res = CliRunner().invoke(make_cli(), ["train", "rossmann", "--help"])
    assert res.exit_code == 0
    for opt in ("--data-dir", "--split", "--preset", "--layers", "--emb-size", "--y-range", "--stores"):
        assert opt in res.output


# ---------------------------------------------------------------------------- table-csv
@pytest.fixture(scope="module")
def table_file(tmp_path_factory, synth):
    path = tmp_path_factory.mktemp("table") / "sales.csv"
    cols = ["Store", "DayOfWeek", "Month", "Promo", "State", "Date", "Sales", "SchoolHoliday"]
    frame = pd.concat([synth.train, synth.valid])[cols].copy()
    frame["Temperature"] = np.random.default_rng(0).normal(10, 5, len(frame)).round(1)
    frame["Big"] = (frame["Sales"] > frame["Sales"].median()).map({True: "yes", False: "no"})
    frame.to_csv(path, index=False)
    return path


def test_table_csv_log_regression_with_last_days_and_entity_meta(table_file, tmp_path):
    stores = tmp_path / "stores.csv"
    pd.DataFrame(
        {
            "Store": range(1, 41),
            "label": [f"shop {i}" for i in range(1, 41)],
            "region": ["n" if i % 2 else "s" for i in range(1, 41)],
        }
    ).to_csv(stores, index=False)
    ds = embedlab.load_dataset(
        "table-csv",
        file=table_file,
        target="Sales",
        log_target=True,
        cat="Store,DayOfWeek,Month,State",
        cont="Promo,Temperature,SchoolHoliday",
        date_col="Date",
        valid_last_days=48,
        entity_meta=(f"Store={stores}",),
    )
    assert ds.split["name"] == "last-days" and ds.valid["Date"].min() == ds.valid["Date"].max() - pd.Timedelta(days=47)
    run = TabularTrainer().train(ds, {**FAST, "epochs": 3}, progress=False)
    assert run.metrics["valid_rmspe"] < 0.2
    store = run.table("Store")
    assert store.labels[0] == "shop 1" and "region" in store.metadata
    assert run.table("DayOfWeek").attrs["cycle_length"] == 7  # calendar columns are annotated
    preds = TabularTrainer().predict(run, pd.read_csv(table_file).head(50))
    # the prediction beside the columns that say which row it is (no --id: the date and entities)
    assert list(preds.columns)[-1] == "Sales" and {"Date", "Store"} <= set(preds.columns)
    assert (preds["Sales"] > 0).all() and len(preds) == 50


def test_table_csv_classification(table_file, tmp_path):
    ds = embedlab.load_dataset(
        "table-csv", file=table_file, target="Big", task="classify", cat="Store,DayOfWeek,Month", cont="Promo"
    )
    run = TabularTrainer().train(ds, {**FAST, "epochs": 2, "layers": "32"}, progress=False)
    assert run.metrics["valid_accuracy"] > 0.8 and run.metrics["valid_logloss"] < 0.5
    assert run.meta["tabular"]["classes"] == ["no", "yes"]
    out = run.save(tmp_path / "clf")
    res = CliRunner().invoke(
        __import__("embedlab.cli", fromlist=["make_cli"]).make_cli(),
        ["predict", str(out), "--file", str(table_file), "--out", str(tmp_path / "p.csv")],
    )
    assert res.exit_code == 0, res.output
    p = pd.read_csv(tmp_path / "p.csv")
    assert list(p.columns)[-3:] == ["Big", "prob_no", "prob_yes"] and "Store" in p.columns  # keys first
    assert np.allclose(p["prob_no"] + p["prob_yes"], 1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"target": "Salez"}, "did you mean 'Sales'"),
        ({"cat": "Store,DayofWeek"}, "column 'DayofWeek' given to --cat not found"),
        ({"cont": "Temprature"}, "the columns are: Store, DayOfWeek"),
        ({"date_col": "Day", "valid_last_days": 5}, "'Day' given to --date not found"),
        ({"target": "Big", "log_target": True}, "non-numeric value '(yes|no)'"),
        ({"cont": "State"}, "continuous column 'State' has a non-numeric value"),
    ],
)
def test_table_csv_checks_columns_up_front(table_file, kwargs, message):
    base = {"file": table_file, "target": "Sales", "cat": "Store", "cont": None}
    with pytest.raises(EmbedlabError, match=message):
        embedlab.load_dataset("table-csv", **{**base, **kwargs})


def test_table_csv_usage_errors(table_file, tmp_path):
    with pytest.raises(UsageError, match="--cat and/or --cont"):
        embedlab.load_dataset("table-csv", file=table_file, target="Sales")
    with pytest.raises(UsageError, match="need --date"):
        embedlab.load_dataset("table-csv", file=table_file, target="Sales", cat="Store", valid_last_days=3)
    with pytest.raises(UsageError, match="COLUMN=FILE"):
        embedlab.load_dataset("table-csv", file=table_file, target="Sales", cat="Store", entity_meta=("Store",))
    bad = tmp_path / "neg.csv"
    pd.DataFrame({"a": [1, 2, 3], "y": [1.0, 0.0, 2.0]}).to_csv(bad, index=False)
    with pytest.raises(DataError, match="positive targets"):
        embedlab.load_dataset("table-csv", file=bad, target="y", cat="a", log_target=True)


def test_a_one_row_training_batch_uses_the_running_statistics():
    """The last batch of an epoch can hold one row (training rows = k * bs + 1): batch norm in
    training mode has no variance for it, so it normalises with the running statistics (left
    unchanged) instead of failing; bigger batches are torch's BatchNorm1d exactly."""
    import torch

    from embedlab.training.models import BatchNorm1d

    torch.manual_seed(0)
    ours, theirs = BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    theirs.load_state_dict(ours.state_dict())
    batch = torch.randn(8, 3)
    assert torch.equal(ours(batch), theirs(batch))
    before = ours.running_mean.clone()
    one = torch.randn(1, 3)
    out = ours(one)
    assert torch.equal(ours.running_mean, before)
    ours.eval()
    assert torch.allclose(out, ours(one))
