"""Runs that start from weights: pretrained files (ImageNet's or the user's) and another run's
encoder (the second stage: a classifier, frozen or fine-tuned)."""

import json

import pytest
import torch

from engine.config import RunConfig
from engine.encoder.parent import parent_run
from engine.models import build_backbone
from engine.models.pretrained import imagenet_file, load_pretrained
from engine.preflight import check_run
from engine.train.loop import Trainer
from engine.train.runner import run_foreground
from engine.train.store import RunStore

SMALL = {"data.train_size": 320, "data.test_size": 96, "data.image_size": 16,
         "model.width": 8, "train.device": "cpu", "train.max_seconds": 0,
         "train.batch_size": 32, "eval.every_seconds": 1000, "eval.knn_train_size": 320,
         "eval.diagnostics_every_steps": 0, "eval.linear_probe": False,
         "train.checkpoint_every_seconds": 0}


def torchvision_like_file(path, seed: int = 1):  # noqa: ANN001, ANN201
    """A resnet18 state dict as torchvision saves it (with its ``fc`` classifier), made here
    from random weights: no download."""
    import torchvision

    torch.manual_seed(seed)
    net = torchvision.models.resnet18(weights=None)
    torch.save(net.state_dict(), path)
    return net.state_dict()


def test_pretrained_file_loads_into_the_backbone(tmp_path) -> None:
    saved = torchvision_like_file(tmp_path / "w.pth")
    backbone = build_backbone("resnet18", 3, 32)
    report = load_pretrained(backbone, str(tmp_path / "w.pth"), "resnet18")
    assert report["skipped"] == ["fc.bias", "fc.weight"]
    own = backbone.state_dict()
    for name, value in own.items():
        assert torch.equal(value, saved[name]), name


def test_imagenet_weights_missing_say_which_file_goes_where(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    path, url = imagenet_file("resnet18")
    assert path == tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cfg = RunConfig().with_overrides({**SMALL, "model.backbone": "resnet18",
                                      "model.pretrained": "imagenet"})
    with pytest.raises(ValueError) as err:
        check_run(cfg)
    message = str(err.value)
    assert "resnet18-f37072fd.pth" in message and str(path.parent) in message and url in message
    # once the file is there, the run starts from it
    path.parent.mkdir(parents=True)
    saved = torchvision_like_file(path, seed=2)
    check_run(cfg)
    trainer = Trainer(cfg.with_overrides({"train.epochs": 0}))
    assert trainer.initialised_from["pretrained"]["loaded"] == len(saved) - 2
    assert torch.equal(trainer.method.backbone.layer1[0].conv1.weight.cpu(),
                       saved["layer1.0.conv1.weight"])


def test_imagenet_is_only_for_resnets_and_paths_must_exist(tmp_path) -> None:
    with pytest.raises(ValueError, match="imagenet weights exist for"):
        check_run(RunConfig().with_overrides({"model.pretrained": "imagenet"}))
    with pytest.raises(ValueError, match="no weights file at"):
        check_run(RunConfig().with_overrides({"model.pretrained": str(tmp_path / "x.pth")}))
    torch.save({"unrelated": torch.zeros(3)}, tmp_path / "x.pth")
    with pytest.raises(ValueError, match="fit backbone"):
        load_pretrained(build_backbone("small_cnn", 3, 16, 8), str(tmp_path / "x.pth"),
                        "small_cnn")


@pytest.fixture(scope="module")
def parent(tmp_path_factory):  # noqa: ANN001, ANN201
    """A short SupCon run: the first stage."""
    store = RunStore(tmp_path_factory.mktemp("runs"))
    cfg = RunConfig().with_overrides({**SMALL, "method.name": "supcon", "train.epochs": 2})
    run, last = run_foreground(cfg, store)
    assert last["status"] == "finished"
    return run


def backbone_state(trainer):  # noqa: ANN001, ANN201
    return {k: v.detach().clone() for k, v in trainer.method.backbone.state_dict().items()}


def second_stage(parent, freeze: bool) -> Trainer:  # noqa: ANN001
    cfg = RunConfig().with_overrides({**SMALL, "method.name": "classifier",
                                      "method.freeze_encoder": freeze, "train.epochs": 3,
                                      "model.init_from": str(parent.path)})
    check_run(cfg)
    return Trainer(cfg)


def test_frozen_second_stage_changes_no_encoder_parameter(parent) -> None:  # noqa: ANN001
    trainer = second_stage(parent, freeze=True)
    assert trainer.initialised_from["init_from"]["run"] == parent.id
    parent_state = torch.load(parent.checkpoint_path(), weights_only=False)["method"]
    start = backbone_state(trainer)
    for k, v in start.items():  # it starts from the parent's encoder, BN statistics included
        assert torch.equal(v, parent_state[f"backbone.{k}"]), k
    head = [p.detach().clone() for p in trainer.method.head.parameters()]
    events = list(trainer.events())
    end = backbone_state(trainer)
    for k in start:  # weights and BatchNorm running statistics alike
        assert torch.equal(start[k], end[k]), k
    assert any(not torch.equal(a, b) for a, b in zip(head, trainer.method.head.parameters(),
                                                       strict=True)), "the head trains"
    losses = [e["loss"] for e in events if e["type"] == "step"]
    assert losses[-1] < losses[0]
    assert 0 <= events[-1]["classifier_top1"] <= 1  # its head's test accuracy, for Compare


def test_fine_tuning_changes_the_encoder(parent) -> None:  # noqa: ANN001
    trainer = second_stage(parent, freeze=False)
    start = backbone_state(trainer)
    list(trainer.events())
    end = backbone_state(trainer)
    changed = [k for k in start if k.endswith("weight") and not torch.equal(start[k], end[k])]
    assert len(changed) >= 4


def test_init_from_checks_the_parent(parent, tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="model.init_from: no run"):
        check_run(RunConfig().with_overrides({**SMALL, "model.init_from": "nope"}))
    with pytest.raises(ValueError, match="model.width=8; set the same"):
        check_run(RunConfig().with_overrides({**SMALL, "model.width": 16,
                                              "model.init_from": str(parent.path)}))


def test_the_cli_finds_a_parent_id_in_its_own_runs_dir(parent, tmp_path, capsys) -> None:  # noqa: ANN001
    """``--runs-dir X --set model.init_from=ID``: ID is a run in X, not in the default ./runs
    (the second stage was refused there before: "no run ... in ./runs")."""
    from engine import cli

    sets = [f"{k}={v}" for k, v in {**SMALL, "method.name": "classifier", "train.epochs": 1,
                                   "model.init_from": parent.id}.items()]
    args = ["train", "--runs-dir", str(parent.path.parent), "--quiet"]
    assert cli.main([*args, *(a for s in sets for a in ("--set", s))]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "finished"
    assert summary["initialised_from"]["init_from"]["run"] == parent.id
    nowhere = ["--set", "model.init_from=no-such-run", "--set", "method.name=classifier"]
    assert cli.main(["train", "--runs-dir", str(tmp_path), "--quiet", *nowhere]) == 2
    err = capsys.readouterr().err
    assert "no run 'no-such-run'" in err and str(tmp_path) in err, err


def test_a_parent_id_is_looked_up_in_the_store_the_run_goes_to(parent) -> None:  # noqa: ANN001
    """The API and the app's registry, over a runs folder that is not the default one."""
    from engine.train.participants import ANONYMOUS
    from engine.train.registry import RunRegistry

    store = RunStore(parent.path.parent)
    cfg = RunConfig().with_overrides({**SMALL, "method.name": "classifier", "train.epochs": 1,
                                      "model.init_from": parent.id})
    run, last = run_foreground(cfg, store)
    assert last["status"] == "finished", last.get("error")
    assert run.config().model.init_from == str(parent.path)
    registry = RunRegistry(store)
    run_id = registry.submit(cfg, ANONYMOUS)
    registry.live(run_id).join(120)
    summary = store.get(run_id).summary()
    assert summary["status"] == "finished", summary.get("error")
    assert summary["initialised_from"]["init_from"]["run"] == parent.id
    moved = f"/another/machine/runs/{parent.id}"  # a run imported with its parent
    assert parent_run(moved, store).path == parent.path
    with pytest.raises(ValueError, match=f"no run 'nope'.*{store.root.name}"):
        run_foreground(cfg.with_overrides({"model.init_from": "nope"}), store)
