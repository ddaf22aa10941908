"""Config errors before anything is made: ``check_run`` names the key or file in one line, and
the CLI exits with status 2 without creating a run folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import cli
from engine.config import RunConfig
from engine.data import clear_memory_cache
from engine.preflight import check_run


def _images(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(
            folder / f"img{i}.png")


@pytest.fixture
def data_env(tmp_path, monkeypatch):
    monkeypatch.delenv("SSL_STUDIO_LAN", raising=False)
    monkeypatch.setenv("SSL_STUDIO_DATA", str(tmp_path / "cache"))
    clear_memory_cache()
    yield tmp_path
    clear_memory_cache()


@pytest.mark.parametrize("overrides, words", [
    ({"train.batch_size": 0}, "train.batch_size must be at least 2"),
    ({"data.image_size": 4096}, "data.image_size must be at most 512"),
    ({"train.optimizer": "rmsprop"}, "train.optimizer must be one of adamw, sgd"),
    ({"method.name": "nope"}, "method.name: unknown method 'nope'"),
    ({"method.temperature": -1}, "method.temperature must be between"),
    ({"model.backbone": "nope"}, "model.backbone: unknown backbone"),
    ({"model.backbone": "pixels"}, "model.backbone: pixels has no parameters to train"),
    ({"data.name": "nope"}, "data.name: unknown data set"),
    ({"augment.preset": "nope"}, "augment.preset: unknown augmentation preset"),
    ({"augment.disable": "nope"}, "augment.disable names unknown op"),
    ({"data.name": "folder", "data.root": "/no/such/folder"}, "data.root: .* does not exist"),
])
def test_a_bad_run_is_one_line_naming_the_key(overrides, words):
    with pytest.raises(ValueError, match=words) as bad:
        check_run(RunConfig().with_overrides(overrides))
    assert "\n" not in str(bad.value)


def test_a_folder_without_images_is_named(data_env):
    (data_env / "empty" / "a").mkdir(parents=True)
    (data_env / "empty" / "a" / "notes.txt").write_text("no images here")
    cfg = RunConfig().with_overrides({"data.name": "folder", "data.root": str(data_env / "empty")})
    with pytest.raises(ValueError, match="data.root: no readable images in"):
        check_run(cfg)


def test_an_untrained_baseline_is_a_run():
    check_run(RunConfig().with_overrides({"model.backbone": "pixels", "train.epochs": 0,
                                          "train.max_seconds": 0}))


def test_labels_are_checked_when_the_method_needs_them(data_env):
    _images(data_env / "flat", 4)
    _images(data_env / "classes" / "a", 4)
    flat = {"data.name": "folder", "data.root": str(data_env / "flat")}
    check_run(RunConfig().with_overrides(flat))  # SimCLR needs no labels
    with pytest.raises(ValueError, match="method.name: supcon needs labels"):
        check_run(RunConfig().with_overrides({**flat, "method.name": "supcon"}))
    check_run(RunConfig().with_overrides({"data.name": "folder", "method.name": "supcon",
                                          "data.root": str(data_env / "classes")}))


def _cli(tmp_path: Path, capsys, *args: str) -> tuple[int, str]:
    runs = tmp_path / "runs"
    rc = cli.main(["train", "--runs-dir", str(runs), "--quiet", *args])
    err = capsys.readouterr().err
    assert not runs.exists() or not any(runs.iterdir()), "a run folder was made"
    return rc, err


@pytest.mark.parametrize("name, text, words", [
    ("broken.yaml", "train:\n  batch_size: [1\n  epochs: 2\n", "broken.yaml: not valid YAML"),
    ("list.yaml", "- a\n- b\n", "list.yaml: a run configuration is a mapping"),
    ("junk.json", "nope{", "junk.json: not valid JSON at line 1"),
    ("section.yaml", "trian: {}\n", "section.yaml: unknown config section"),
    ("value.yaml", "train: {batch_size: big}\n", "value.yaml: train.batch_size: cannot use"),
])
def test_a_bad_config_file_is_named_with_status_2(tmp_path, capsys, name, text, words):
    path = tmp_path / name
    path.write_text(text)
    rc, err = _cli(tmp_path, capsys, "--config", str(path))
    assert rc == 2 and words in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_a_missing_config_file_is_named(tmp_path, capsys):
    rc, err = _cli(tmp_path, capsys, "--config", str(tmp_path / "missing.yaml"))
    assert rc == 2 and "missing.yaml: cannot read the file" in err


@pytest.mark.parametrize("sets, words", [
    (["train.batch_size=0"], "train.batch_size"),
    (["data.image_size=4096"], "data.image_size"),
    (["data.name=folder", "data.root=/no/such/folder"], "does not exist"),
    (["method.name=supcon", "data.name=folder", "data.root={flat}"], "supcon needs labels"),
])
def test_every_invalid_set_exits_2_before_a_run_folder(data_env, capsys, sets, words):
    _images(data_env / "flat", 4)
    args = [a for s in sets for a in ("--set", s.format(flat=data_env / "flat"))]
    rc, err = _cli(data_env, capsys, *args)
    assert rc == 2 and words in err and err.startswith("error: "), err
    assert len(err.strip().splitlines()) == 1, err


def test_skipped_files_are_reported_before_the_run(data_env, capsys):
    _images(data_env / "photos" / "a", 4)
    _images(data_env / "photos" / "b", 4)
    (data_env / "photos" / "a" / "broken.jpg").write_bytes(b"not a jpeg")
    cfg = RunConfig().with_overrides({"data.name": "folder", "data.image_size": 8,
                                      "data.root": str(data_env / "photos")})
    dataset = cli.prepare_run(cfg)
    assert dataset.skipped == 1 and dataset.describe()["skipped"] == 1
    assert "skipped 1 unreadable file(s): a/broken.jpg" in capsys.readouterr().err


EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "assets" / "runs").glob("*.*"))


def test_there_are_example_runs():
    assert {"simclr_shapes.yaml", "supcon_shapes.yaml"} <= {p.name for p in EXAMPLES}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_run_loads_and_passes_the_check(path):
    cfg = cli.load_config(str(path), [])
    check_run(cfg)
    assert cfg.name, "an example names its run"


def test_skipped_files_are_recorded_in_the_run_summary(data_env):
    from engine.train.runner import run_foreground
    from engine.train.store import RunStore

    _images(data_env / "photos" / "a", 4)
    _images(data_env / "photos" / "b", 4)
    (data_env / "photos" / "b" / "broken.png").write_bytes(b"\x89PNG junk")
    cfg = RunConfig().with_overrides({
        "data.name": "folder", "data.image_size": 16, "data.root": str(data_env / "photos"),
        "train.epochs": 1, "train.max_seconds": 0, "train.batch_size": 4,
        "eval.knn_train_size": 8, "eval.knn_test_size": 8, "eval.snapshot_size": 8,
        "eval.linear_probe": False, "eval.diagnostics_every_steps": 0,
    })
    run, last = run_foreground(cfg, RunStore(data_env / "runs"))
    assert last["type"] == "finished", last
    assert run.summary()["skipped_files"] == 1
