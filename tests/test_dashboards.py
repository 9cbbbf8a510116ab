"""What a run shows besides its scalars: where its code came from and a card of its final metrics."""

from __future__ import annotations

import subprocess

from conftest import REPO, fast_overrides
from lenet_exp import compose, train
from tensorboard_events import load_events


def test_a_run_records_its_git_commit_and_a_card_of_its_final_metrics(tiny_root, tmp_path):
    metrics = train(compose(*fast_overrides(tiny_root)), run_dir=tmp_path / "run")
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    assert metrics["git"]["commit"] == head.stdout.strip() and isinstance(metrics["git"]["dirty"], bool)

    events = load_events(tmp_path / "run")
    card = events.Tensors("run/summary/text_summary")[0].tensor_proto.string_val[0].decode()
    assert f"| test acc | {metrics['test']['acc']:.4f} |" in card
    assert f"| best epoch | {metrics['best_epoch']} of 1 |" in card and head.stdout.strip()[:12] in card
