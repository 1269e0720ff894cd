"""Sharded scoring: 2 CPU ranks over gloo give the single-process FID."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import models
from analysis.distributed import sharded_score
from analysis.evaluate import digits_extractor, score_model
from models.data import digits
from oscsim import NonIdeal

NONIDEAL = NonIdeal(phase_noise_rad_per_sqrt_t=0.1, coupling_bits=6, chip_seed=3, sample_seed=5)
# per_class 15 → 150 samples in 4 batches of 40 (the last one short): ranks get 2 each
SETTINGS = dict(per_class=15, seed=7, batch_size=40)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        score = sharded_score(models.load(models.SHIPPED), digits_extractor(), digits("test"), nonideal=NONIDEAL,
                              **SETTINGS)
        assert (score is None) == (rank != 0)
        if rank == 0:
            Path(out).write_text(json.dumps(score.as_dict()))
    finally:
        dist.destroy_process_group()


def single_process_score():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the ranks: the same GEMM blocking, the same sums
    try:
        return score_model(models.load(models.SHIPPED), digits_extractor(), digits("test"), nonideal=NONIDEAL,
                           **SETTINGS)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_two_gloo_ranks_give_the_single_process_fid(tmp_path: Path) -> None:
    out = tmp_path / "score.json"
    mp.spawn(_rank, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    sharded = json.loads(out.read_text())
    single = single_process_score()
    assert sharded["samples"] == single.samples == 150
    assert sharded["fid"] == pytest.approx(single.fid, rel=1e-9)
    assert (sharded["precision"], sharded["recall"], sharded["class_accuracy"]) == pytest.approx(
        (single.precision, single.recall, single.class_accuracy), rel=1e-9)


@pytest.mark.slow
def test_torchrun_entry_point(tmp_path: Path) -> None:
    """`torchrun -m analysis.distributed`: the launcher's environment, gloo on a CPU."""
    spec = tmp_path / "ni.toml"
    spec.write_text("[nonideal]\nphase_noise_rad_per_sqrt_t = 0.1\ncoupling_bits = 6\nchip_seed = 3\nsample_seed = 5\n")
    out = tmp_path / "score.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
           "-m", "analysis.distributed", "--per-class", "15", "--seed", "7", "--batch-size", "40",
           "--nonideal", str(spec), "--device", "cpu", "--json", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=240, env=env,
                   cwd=Path(__file__).resolve().parents[2])
    got = json.loads(out.read_text())
    assert got["world_size"] == 2
    assert got["fid"] == pytest.approx(single_process_score().fid, rel=1e-9)


def _fidelity_model() -> models.Un0:
    return models.Un0.init(models.PUBLISHED["n1024"].replace(n=64), seed=1)


def _fidelity_rank(rank: int, world: int, port: int, out: str) -> None:
    from analysis.distributed import sharded_fidelity
    from analysis.fidelity import feature_space

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        model = _fidelity_model()
        score = sharded_fidelity(model, model, feature_space("pixels", model.config.image_shape), nonideal=NONIDEAL,
                                 **SETTINGS)
        assert (score is None) == (rank != 0)
        if rank == 0:
            Path(out).write_text(json.dumps(score.as_dict()))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_give_the_single_process_chip_fidelity(tmp_path: Path) -> None:
    """A CIFAR-shaped model on imperfect hardware against itself: sharded = single process."""
    from analysis.evaluate import sample_plan
    from analysis.fidelity import IdealReference, chip_fidelity, feature_space

    out = tmp_path / "fidelity.json"
    mp.spawn(_fidelity_rank, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    sharded = json.loads(out.read_text())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = _fidelity_model()
        ex = feature_space("pixels", model.config.image_shape)
        labels, theta0, starts = sample_plan(model, per_class=SETTINGS["per_class"], seed=SETTINGS["seed"],
                                             batch_size=SETTINGS["batch_size"])
        single = chip_fidelity(IdealReference(model, ex, labels, theta0, starts, SETTINGS["batch_size"]), model,
                               nonideal=NONIDEAL)
    finally:
        torch.set_num_threads(threads)
    assert sharded["samples"] == single.samples == 150
    for key in ("phase_error_rad", "psnr_db", "feature_distance", "fid_vs_ideal"):
        assert sharded[key] == pytest.approx(getattr(single, key), rel=1e-9), key
    assert single.phase_error_rad > 0
