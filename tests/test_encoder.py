"""A run's encoder used elsewhere: ``python -m engine eval`` reproduces the run's own figures
from its checkpoint and evaluates it on other data; ``python -m engine export`` writes a
state_dict, TorchScript and the preprocessing that give the checkpoint's h on the same images,
and embeddings with ids, labels and file paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.data import load_dataset
from engine.encoder import export_encoder, load_encoder, load_exported
from engine.encoder.evaluate import evaluate_run
from tests.fixtures.trained_run import COLOURS, train_on_folder, write_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_on_folder(tmp_path_factory.mktemp("encoder"))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=300)


def test_eval_of_a_checkpoint_gives_the_run_s_own_figures(trained):
    store, run, _ = trained
    summary = run.summary()
    evaluation, result = evaluate_run(store, run.id)
    assert result["knn_top1"] == pytest.approx(summary["knn_top1"])
    assert result["linear_top1"] == pytest.approx(summary["linear_top1"])
    assert evaluation.status() == "finished" and evaluation.snapshots() == [summary["steps"]]
    assert evaluation.summary()["evaluated_from"] == run.id
    diag = evaluation.metrics("diagnostics")[0]  # of the snapshot's 24 test images
    assert diag["n"] == 24 and diag["alarm"]["kind"] in ("none", "dimensional", "complete")
    assert evaluation.config().data == run.config().data


def test_eval_on_another_data_set_from_the_command_line(trained, tmp_path):
    store, run, _ = trained
    other = write_folder(tmp_path / "other", per_class=10, seed=5)
    done = cli("eval", run.id, "--runs-dir", str(store.root), "--data", "folder",
               "--set", f"data.root={other}", "--set", f"data.data_dir={tmp_path}")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert 0.0 <= out["knn_top1"] <= 1.0 and "linear_top1" in out
    evaluation = store.get(out["run"])
    assert evaluation.config().data.root == str(other)
    assert len(evaluation.load_snapshot()["h"]) == 6  # 20 % of 30 images


def test_eval_says_what_is_wrong(trained, tmp_path):
    store, run, _ = trained
    done = cli("eval", "no-such-run", "--runs-dir", str(store.root))
    assert done.returncode == 2 and "no run 'no-such-run'" in done.stderr
    bare = store.create(run.config())
    done = cli("eval", bare.id, "--runs-dir", str(store.root))
    assert done.returncode == 2 and "has no checkpoint" in done.stderr
    done = cli("eval", run.id, "--runs-dir", str(store.root), "--data", "digits")
    assert done.returncode == 2 and "3-channel images" in done.stderr


def test_exported_state_dict_and_torchscript_give_the_checkpoint_s_h(trained, tmp_path):
    store, run, _ = trained
    enc = load_encoder(store, run.id)
    images = load_dataset(run.config().data).test.images
    expected = enc.embed(images)["h"]
    # the checkpoint's h is what the run itself recorded in its last snapshot
    snap = run.load_snapshot()
    np.testing.assert_allclose(expected[snap["index"]].numpy(), snap["h"], rtol=1e-4, atol=1e-5)

    report = export_encoder(enc, tmp_path / "out")
    try:
        import onnx
    except ImportError:
        assert report["onnx"] == "skipped: the onnx package is not installed (pip install onnx)"
    else:  # the ONNX file gives the same h (onnx's own reference runtime)
        from onnx.reference import ReferenceEvaluator

        assert report["onnx"] == "encoder.onnx", report["onnx"]
        prep = json.loads((tmp_path / "out" / "preprocessing.json").read_text())
        sample = ((images[:8].float() / 255 - torch.tensor(prep["mean"]).view(1, 3, 1, 1))
                  / torch.tensor(prep["std"]).view(1, 3, 1, 1))
        (h,) = ReferenceEvaluator(onnx.load(str(tmp_path / "out" / "encoder.onnx"))).run(
            None, {"images": sample.numpy()})
        np.testing.assert_allclose(h, expected[:8].numpy(), rtol=1e-4, atol=1e-5)
    prep = json.loads((tmp_path / "out" / "preprocessing.json").read_text())
    assert (prep["image_size"], prep["channels"]) == (16, 3) and len(prep["mean"]) == 3
    x = (images.float() / 255 - torch.tensor(prep["mean"]).view(1, 3, 1, 1)) / torch.tensor(
        prep["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        from_state_dict = load_exported(tmp_path / "out")(x)
        scripted = torch.jit.load(str(tmp_path / "out" / "encoder.torchscript.pt"))(x)
    torch.testing.assert_close(from_state_dict, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(scripted, expected, rtol=1e-4, atol=1e-5)
    # the loader written beside the weights does the same, on its own
    code = ("import sys, torch; sys.path.insert(0, sys.argv[1]); "
            "from load_encoder import load_encoder; m = load_encoder(sys.argv[1]); "
            "print(sum(p.numel() for p in m.parameters()))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], cwd=ROOT,
                          capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == sum(p.numel() for p in enc.backbone.parameters())


def test_export_writes_embeddings_with_ids_labels_and_paths(trained, tmp_path):
    store, run, folder = trained
    done = cli("export", run.id, "--out", str(tmp_path / "out"), "--runs-dir",
               str(store.root), "--embeddings")
    assert done.returncode == 0, done.stderr
    emb = tmp_path / "out" / "embeddings"
    h, labels = np.load(emb / "h.npy"), np.load(emb / "labels.npy")
    paths = (emb / "paths.txt").read_text().splitlines()
    assert h.shape == (24, 64) and len(labels) == len(paths) == 24
    assert list(np.load(emb / "ids.npy")) == list(range(24))
    names = json.loads((emb / "embeddings.json").read_text())["class_names"]
    assert names == sorted(COLOURS)
    # each file is where the image of that row came from, in the class its label names
    for path, label in zip(paths, labels, strict=True):
        assert Path(path).parent == folder / names[label] and Path(path).exists()
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(emb / "embeddings.parquet").to_pydict()
    assert table["path"] == paths and table["label"] == labels.tolist()
    assert table["class"] == [names[i] for i in labels]
    np.testing.assert_array_equal(np.asarray(table["h"], dtype=np.float32), h)
