"""Packaging a pretraining run (one stage or several) as the released encoder: curves on one epoch axis,
the last stage's probe-picked checkpoint, a record whose sha256 matches the file, a card from the figures."""

from __future__ import annotations

import json
import os
import re
import sys

import pytest
import torch
from pretraining_runs import fake_run, read_figure

from spcxr_monai.networks import create_gmml_vit


@pytest.fixture(scope="module")
def export(load_script):
    return load_script("release/export_encoder.py")


def test_two_stages_share_one_epoch_axis_and_the_last_stage_is_released(export, tmp_path, monkeypatch):
    weights = create_gmml_vit("tiny", img_size=32, patch_size=16).state_dict()
    first = fake_run(tmp_path / "gmml_release", [0.7, 0.5, 0.4], {2: 0.70}, best=2)
    second = fake_run(tmp_path / "gmml_continue", [0.36, 0.38], {2: 0.72}, best=2, weights=weights)
    probe, l1, stages = export.stage_curves([first, second])
    assert [e for e, _ in l1] == [1, 2, 3, 4, 5] and l1[3] == (4, pytest.approx(0.36))
    assert [h["epoch"] for h in probe["history"]] == [2, 5] and probe["best_epoch"] == 5
    assert [(s["first_epoch"], s["last_epoch"]) for s in stages] == [(1, 3), (4, 5)]

    out = tmp_path / "pretrained"
    out.mkdir()
    monkeypatch.setattr(export, "HERE", out)
    name = ["--name", "gmml-vit-tiny16-cxr128"]  # its files: gmml_vit_tiny16_cxr128.* and MODEL_CARD.md
    monkeypatch.setattr(sys, "argv", ["export_encoder.py", str(first), str(second), *name])
    export.main()
    record = json.loads((out / "gmml_vit_tiny16_cxr128.json").read_text())
    released = torch.load(out / record["file"], weights_only=True)
    assert all(v.dtype == torch.float16 for v in released.values() if v.is_floating_point())
    torch.testing.assert_close(
        released["head.to_pixels.weight"].float(), weights["head.to_pixels.weight"], atol=1e-3, rtol=1e-3
    )
    assert (
        record["chosen_epoch"] == 5
        and "encoder.sh 1 3 && bash" in record["command"]
        and "encoder.sh 2 2 &&" in record["command"]
    )
    # the figure of the chosen epoch is the last stage's own epoch 2, not the first stage's
    assert read_figure(out / "gmml_vit_tiny16_cxr128_reconstruction.png") == "gmml_continue 2"
    card = (out / "MODEL_CARD.md").read_text()
    assert "epoch 5 of 5" in card and "(0.720)" in card and "| 4 (stage 2) | 0.3600 |" in card
    assert "epochs 1-3" in card and "epochs 4-5" in card and "{" not in card.split("## Use")[0]

    # chosen by validation masked L1 instead: the last stage's lowest, epoch 4 (its own epoch 1)
    torch.save(weights, second / "models" / "model.pt")
    monkeypatch.setattr(sys, "argv", ["export_encoder.py", str(first), str(second), "--checkpoint", "model.pt", *name])
    export.main()
    record = json.loads((out / "gmml_vit_tiny16_cxr128.json").read_text())
    assert record["chosen_epoch"] == 4 and "--checkpoint model.pt" in record["command"]
    assert read_figure(out / "gmml_vit_tiny16_cxr128_reconstruction.png") == "gmml_continue 1"
    assert "epoch 4 of 5: lowest validation masked L1 of the last stage (0.3600)" in (out / "MODEL_CARD.md").read_text()


def test_wall_time_from_a_subset_of_the_figures(export, tmp_path):
    """A stage that came back from a lent machine keeps the figures of a few epochs: the time per epoch comes
    from their epoch numbers, not from how many there are."""
    for epoch, seconds in ((1, 1000.0), (10, 1054.0), (20, 1114.0)):  # 6 s per epoch
        figure = tmp_path / f"reconstruction_epoch{epoch:03d}.png"
        figure.write_bytes(b"png")
        os.utime(figure, (seconds, seconds))
    assert export.wall_hours(tmp_path, 20) * 3600 == pytest.approx(120.0)
    assert export._duration(120 / 3600) == "2 min" and export._duration(1.64) == "1.6 h"
    (tmp_path / "reconstruction_epoch010.png").unlink()
    (tmp_path / "reconstruction_epoch020.png").unlink()
    assert export.wall_hours(tmp_path, 20) is None  # one figure: no time


def test_the_card_names_the_tokens_each_stage_s_monitor_read(export):
    stages = [{"stage": n, "probe_block": block} for n, block in ((5, None), (6, None), (7, 8))]
    assert export._probe_tokens(stages) == "final tokens (stages 5-6), block 8's tokens (stage 7)"
    assert export._probe_tokens(stages[:2]) == "final tokens"


def test_a_missing_figure_is_refused_before_anything_is_written(export, tmp_path, monkeypatch, capsys):
    run = fake_run(tmp_path / "gmml_release", [0.5, 0.4], {2: 0.7}, best=2, weights={"w": torch.ones(2)})
    out = tmp_path / "pretrained"
    out.mkdir()
    monkeypatch.setattr(export, "HERE", out)
    argv = [
        "export_encoder.py",
        str(run),
        "--figure",
        str(tmp_path / "missing.png"),
        "--name",
        "gmml-vit-tiny16-cxr128",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit):
        export.main()
    assert "missing.png: no such file" in capsys.readouterr().err and not any(out.iterdir())


def test_the_study_s_rows_survive_a_re_export(export, tmp_path, monkeypatch):
    """The rows measured after a release live in a file the card includes: exporting again keeps them."""
    run = fake_run(tmp_path / "gmml_release", [0.5, 0.4], {2: 0.7}, best=2, weights={"w": torch.ones(2)})
    out = tmp_path / "pretrained"
    out.mkdir()
    monkeypatch.setattr(export, "HERE", out)
    monkeypatch.setattr(export, "MEASURED", tmp_path / "measured")
    argv = ["export_encoder.py", str(run), "--name", "gmml-vit-tiny16-cxr128"]
    monkeypatch.setattr(sys, "argv", argv)
    export.main()
    card = (out / "MODEL_CARD.md").read_text()
    assert "Measured for this release" not in card and "drift set).\n\nRead both" in card

    (tmp_path / "measured").mkdir()
    (tmp_path / "measured" / "gmml_vit_tiny16_cxr128.md").write_text("Measured for this release: val 0.123.\n")
    export.main()
    card = (out / "MODEL_CARD.md").read_text()
    assert "drift set).\n\nMeasured for this release: val 0.123.\n\nRead both" in card

    other = tmp_path / "rows.md"
    other.write_text("Measured elsewhere: val 0.456.")
    monkeypatch.setattr(sys, "argv", [*argv, "--measured", str(other)])
    export.main()
    card = (out / "MODEL_CARD.md").read_text()
    assert "Measured elsewhere: val 0.456." in card and "0.123" not in card
    assert json.loads((out / "gmml_vit_tiny16_cxr128.json").read_text())["command"].endswith(f"--measured {other}")


def test_each_release_s_card_carries_its_measured_rows(export):
    from spcxr_monai.pretrained import HERE

    files = sorted(export.MEASURED.glob("*.md"))
    assert {f.stem for f in files} >= {"gmml_vit_tiny16_cxr128_v7", "gmml_vit_tiny16_cxr128_v8"}
    for measured in files:
        name = next(n for n, e in export.RELEASED.items() if e["file"].removesuffix(".pt") == measured.stem)
        assert measured.read_text().strip() in (HERE / export.RELEASED[name]["card"]).read_text(), measured


def test_card_only_adds_later_rows_without_touching_weights_or_record(export, tmp_path, monkeypatch, capsys):
    """Rows measured after a release reach its card from the committed record alone: the same card a full
    re-export writes, the weights and the record byte for byte as they were."""
    run = fake_run(tmp_path / "gmml_release", [0.5, 0.4], {2: 0.7}, best=2, weights={"w": torch.ones(2)})
    out = tmp_path / "pretrained"
    out.mkdir()
    monkeypatch.setattr(export, "HERE", out)
    monkeypatch.setattr(export, "MEASURED", tmp_path / "measured")
    (tmp_path / "measured").mkdir()
    rows = tmp_path / "measured" / "gmml_vit_tiny16_cxr128.md"
    rows.write_text("Measured for this release: val 0.123.\n")
    name = ["--name", "gmml-vit-tiny16-cxr128"]
    monkeypatch.setattr(sys, "argv", ["export_encoder.py", str(run), *name])
    export.main()
    kept = {f: (out / f).read_bytes() for f in ("gmml_vit_tiny16_cxr128.pt", "gmml_vit_tiny16_cxr128.json")}

    rows.write_text("Measured for this release: val 0.123. Segmentation: Dice 0.948.\n")
    monkeypatch.setattr(sys, "argv", ["export_encoder.py", "--card-only", *name])
    export.main()
    card = (out / "MODEL_CARD.md").read_text()
    assert "val 0.123. Segmentation: Dice 0.948.\n\nRead both" in card
    assert all((out / f).read_bytes() == data for f, data in kept.items())
    monkeypatch.setattr(sys, "argv", ["export_encoder.py", str(run), *name])
    export.main()
    assert (out / "MODEL_CARD.md").read_text() == card  # what a full re-export writes

    for argv in ([str(run), "--card-only"], ["--card-only", "--measured", str(tmp_path / "missing.md")], []):
        monkeypatch.setattr(sys, "argv", ["export_encoder.py", *argv, *name])
        with pytest.raises(SystemExit):
            export.main()
    err = capsys.readouterr().err
    assert "no runs, --weights or --figure" in err
    assert "missing.md: no such file" in err and "or pass --card-only" in err

    (out / "gmml_vit_tiny16_cxr128.json").unlink()
    monkeypatch.setattr(sys, "argv", ["export_encoder.py", "--card-only", *name])
    with pytest.raises(SystemExit, match="no record of release 'gmml-vit-tiny16-cxr128'"):
        export.main()


@pytest.mark.parametrize(
    "version, successor", [("v3", "v4"), ("v4", "v5"), ("v5", "v6"), ("v6", "v7"), ("v7", "v8"), ("v8", None)]
)
def test_committed_cards_are_what_card_only_writes(export, tmp_path, monkeypatch, version, successor):
    """Every card since v3 comes from its record and measured rows alone (no hand edits to lose on a rewrite); a
    superseded release's card names the release after it and where its weights went, the default's says so."""
    from spcxr_monai.pretrained import DEFAULT, HERE

    name = f"gmml-vit-tiny16-cxr128-{version}"
    entry = export.RELEASED[name]
    stem = entry["file"].removesuffix(".pt")
    (tmp_path / f"{stem}.json").write_bytes((HERE / f"{stem}.json").read_bytes())
    monkeypatch.setattr(export, "HERE", tmp_path)
    export.rewrite_card(name)
    card = (tmp_path / entry["card"]).read_text()
    assert card == (HERE / entry["card"]).read_text()
    if successor is None:
        assert name == DEFAULT and f"`--pretrained_checkpoint {name}` (the default, also `released`)" in card
    else:
        assert f"(the default until {successor}; `released` is `{DEFAULT}`; its weights are in the git history" in card


def test_every_card_names_the_current_default():
    """The cards before v3 (an older template, not rewritten by ``--card-only``) say which release is ``released``
    by hand; a release that forgets one of them fails here."""
    from spcxr_monai.pretrained import DEFAULT, HERE

    named = {
        card.name: re.findall(r"`released` is `([^`]+)`", card.read_text()) for card in HERE.glob("MODEL_CARD*.md")
    }
    assert sum(bool(names) for names in named.values()) == len(named) - 1  # every card but the default's
    assert all(name == DEFAULT for names in named.values() for name in names), named
