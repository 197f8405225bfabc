"""Data-parallel training (``training.distributed``, issue #19): ``scenetalk train --nproc 2``
runs two gloo processes on loopback through ``torchrun`` and must follow a one-process run
with the same batch size; a rank killed with SIGKILL stops the job, ``--resume`` continues
it, with the same or another number of processes; ``--max-steps`` stops a run early.

Tolerances: the two runs differ only in the order floating-point sums are taken (a slice's
loss weighted by its share, gradients summed over ranks), so per-step losses agree to 1e-5
relative and the final weights to 1e-3. The configs use SGD and RMSprop: Adam's first
steps turn rounding-sized gradients into ±lr updates, which would need a looser bound."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs PyTorch (the train extra)")

from safetensors.numpy import load_file

from scenetalk.cli import main
from scenetalk.training.distributed import World

pytestmark = pytest.mark.slow

CONFIGS = {
    # batch 7 of 24 sentences: slices of 4 and 3, and a last batch of 3 (2 and 1)
    "caption": """
train:
  model: {type: multimodal_rnn, cell: lstm, word_dim: 16, hidden_dim: 16, dropout: 0.0}
  batch_size: 7
  epochs: 4
  lr: 0.01
  eval_every: 1000
  checkpoint_every: 2
""",
    "alignment": """
task: alignment
train:
  model: {embed_dim: 16, word_dim: 8, hidden_dim: 16, dropout: 0.0, brnn: shared}
  batch_size: 7
  epochs: 4
  optimizer: sgd
  lr: 0.01
  min_count: 1
  eval_every: 1000
  checkpoint_every: 2
""",
}


def write_config(squares: Path, folder: Path, task: str) -> Path:
    path = folder / f"{task}.yaml"
    path.write_text(f"dataset: {squares / 'data.json'}\nfeatures: {squares / 'features'}\n" + CONFIGS[task])
    return path


def scenetalk(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``scenetalk ARGS`` in a new process (so that ``--nproc`` starts torchrun for real)."""
    return subprocess.run([sys.executable, "-m", "scenetalk", *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, timeout=timeout)


def losses(run: Path) -> np.ndarray:
    return np.array([h["loss"] for h in json.loads((run / "history.json").read_text())["train"]])


def weights(run: Path) -> dict[str, np.ndarray]:
    return {k: v.astype(np.float64) for k, v in load_file(run / "last" / "model.safetensors").items()
            if k.startswith("model.")}


def assert_same_run(a: Path, b: Path) -> None:
    la, lb = losses(a), losses(b)
    assert len(la) == len(lb) == 16
    np.testing.assert_allclose(lb, la, rtol=1e-5, atol=1e-6)
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        np.testing.assert_allclose(wb[key], wa[key], atol=1e-3, err_msg=key)


def test_a_batch_splits_into_contiguous_slices_of_nearly_equal_size():
    idx = torch.arange(7)
    parts = [World(rank, 2).shard(idx) for rank in range(2)]
    assert [p.tolist() for p in parts] == [[0, 1, 2, 3], [4, 5, 6]]
    assert World().shard(idx) is idx and World().main and not World(1, 2).main


@pytest.mark.parametrize("task", ["caption", "alignment"])
def test_two_processes_follow_one_process_with_the_same_batch(squares, tmp_path, task):
    config = write_config(squares, tmp_path, task)
    one = scenetalk("train", str(config), "--out", str(tmp_path / "one"), "--quiet")
    two = scenetalk("train", str(config), "--out", str(tmp_path / "two"), "--quiet", "--nproc", "2")
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert_same_run(tmp_path / "one", tmp_path / "two")
    # rank 0 alone printed the result and validated: the same scores as one process
    result, alone = json.loads(two.stdout)["best_val"], json.loads(one.stdout)["best_val"]
    assert json.loads(two.stdout)["steps"] == 16 and result.keys() == alone.keys()
    assert all(result[k] == pytest.approx(alone[k], abs=2e-4) for k in result if k != "time")
    assert (tmp_path / "two" / "best").is_dir() and (tmp_path / "two" / "curves.png").is_file()


KILL_RANK_1 = """
import os, signal
from scenetalk.training import loop

_run = loop.Trainer.run

def run(self):
    if self.world.rank == 1:
        def die(step):
            if step == {step}:
                os.kill(os.getpid(), signal.SIGKILL)
        self.on_step = die
    return _run(self)

loop.Trainer.run = run
"""


def test_a_killed_rank_stops_the_job_and_resume_continues_it(squares, tmp_path):
    config = write_config(squares, tmp_path, "alignment")
    reference = scenetalk("train", str(config), "--out", str(tmp_path / "reference"), "--quiet")
    assert reference.returncode == 0, reference.stderr
    # rank 1 kills itself with SIGKILL after step 5 (sitecustomize runs in each torchrun worker)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(KILL_RANK_1.replace("{step}", "5"))
    env = {"PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")])}
    killed = scenetalk("train", str(config), "--out", str(tmp_path / "run"), "--quiet", "--nproc", "2", env=env,
                       timeout=120)
    assert killed.returncode != 0
    state = json.loads((tmp_path / "run" / "last" / "config.json").read_text())
    assert state["trainer"]["step"] == 4   # the last checkpoint before the kill (every 2 steps)
    resumed = scenetalk("train", str(config), "--out", str(tmp_path / "run"), "--quiet", "--nproc", "2",
                        "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.split("\n", 1)[1])["resumed_from_step"] == 4
    assert_same_run(tmp_path / "reference", tmp_path / "run")


def test_max_steps_stops_a_run_and_resume_with_another_world_size_finishes_it(squares, tmp_path, capsys):
    config = write_config(squares, tmp_path, "caption")
    reference = scenetalk("train", str(config), "--out", str(tmp_path / "reference"), "--quiet")
    assert reference.returncode == 0, reference.stderr
    first = scenetalk("train", str(config), "--out", str(tmp_path / "run"), "--quiet", "--nproc", "2",
                      "--max-steps", "5")
    assert first.returncode == 0, first.stderr
    stopped = json.loads(first.stdout)
    assert stopped["steps"] == 5 and (tmp_path / "run" / "best").is_dir()
    validated = [h["step"] for h in json.loads((tmp_path / "run" / "history.json").read_text())["val"]]
    assert validated == [4, 5]   # the epoch's end, and where it stopped
    # the rest on one process, in this one
    capsys.readouterr()
    assert main(["train", str(config), "--out", str(tmp_path / "run"), "--quiet", "--resume"]) == 0
    assert "resuming" in capsys.readouterr().out
    assert_same_run(tmp_path / "reference", tmp_path / "run")


@pytest.mark.parametrize("args, message", [
    (["--nproc", "0"], "--nproc must be a number of processes from 1"),
    (["--max-steps", "0"], "max_steps must be a whole number of steps"),
])
def test_bad_process_and_step_counts_are_one_line_errors(squares, tmp_path, capsys, args, message):
    config = write_config(squares, tmp_path, "caption")
    assert main(["train", str(config), "--out", str(tmp_path / "run"), "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "last").exists()


@pytest.mark.parametrize("task", ["caption", "alignment"])
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on the development machine)")
def test_a_run_on_the_gpu_follows_the_run_on_the_cpu(squares, tmp_path, task):
    config = write_config(squares, tmp_path, task)
    text = config.read_text().replace("train:\n", "train:\n  device: cpu\n")
    config.write_text(text)
    gpu = tmp_path / "gpu.yaml"
    gpu.write_text(text.replace("device: cpu", "device: cuda"))
    for path, out in ((config, "cpu"), (gpu, "gpu")):
        assert main(["train", str(path), "--out", str(tmp_path / out), "--quiet"]) == 0
    assert_same_run(tmp_path / "cpu", tmp_path / "gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine with a GPU trains on it")
def test_asking_for_a_gpu_without_one_is_a_one_line_error(squares, tmp_path, capsys):
    config = write_config(squares, tmp_path, "caption")
    config.write_text(config.read_text().replace("train:\n", "train:\n  device: cuda\n"))
    assert main(["train", str(config), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "device: cuda" in err and "no CUDA GPU" in err and len(err.strip().splitlines()) == 1

