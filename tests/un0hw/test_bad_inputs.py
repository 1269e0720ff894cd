"""Every class of bad input, over the entry points: one line, exit code 2, refused before any
computing, and nothing left behind.

Classes: non-regular files (FIFO, device) where a file is read; folders where files are
expected and files where folders are; IR contents that pass the checksum but break the
format's meaning; calibrations without physical sense; outputs that cannot be written;
resume state that is empty, truncated or of the wrong type; devices that are not there;
sizes far beyond the machine; messages that must name the culprit as typed.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from un0hw.cli import main

UNWRITABLE = "/proc/un0hw-no/such"  # a place no process can create files in, root included


@pytest.fixture(autouse=True)
def _no_hang():
    """A FIFO or device read by mistake would block for ever: fail instead."""
    def boom(*_):
        raise TimeoutError("the command hung (a FIFO or device was read?)")
    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def run(capsys, *argv) -> tuple[int, str]:
    t0 = time.perf_counter()
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("\r")]
    errors = [ln for ln in lines if ln.startswith("un0hw: error:")]
    assert rc == 2, f"rc {rc}: {err}"
    assert len(errors) == 1 and "Traceback" not in err, err
    return rc, errors[0], time.perf_counter() - t0


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("ckpt")
    assert main(["init", "--size", "digits-n64", "-o", str(base / "tiny"), "--seed", "1"]) == 0
    return base / "tiny.safetensors"


@pytest.fixture(scope="module")
def ir_dir(tmp_path_factory, ckpt) -> Path:
    out = tmp_path_factory.mktemp("ir") / "ir"
    assert main(["compile", str(ckpt), "-o", str(out), "--tile", "32", "--bits", "6"]) == 0
    return out


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "plain.txt"
    path.write_text("not a folder\n")
    return path


# --- non-regular files and folders where files are read ---------------------------------------
@pytest.mark.parametrize("argv", [
    ["info", "{fifo}"],
    ["info", "/dev/zero"],
    ["compile", "/dev/zero", "-o", "{tmp}/ir"],
    ["info", "{ckpt}", "--key-map", "{fifo}"],
    ["info", "{ckpt}", "--key-map", "{tmp}"],
    ["compile", "{ckpt}", "-o", "{tmp}/ir", "--calibration", "{fifo}"],
    ["compile", "{ckpt}", "-o", "{tmp}/ir", "--calibration", "{tmp}"],
    ["energy", "{ckpt}", "--constants", "{fifo}"],
    ["sweep", "{fifo}", "-o", "{tmp}/sw"],
    ["sweep", "{tmp}", "-o", "{tmp}/sw"],
    ["finetune", "{ckpt}", "--nonideal", "{fifo}", "-o", "{tmp}/ft"],
    ["finetune", "{ckpt}", "--coupling", "circuit", "--calibration", "{fifo}", "-o", "{tmp}/ft"],
    ["fid", "{ckpt}", "--extractor", "inception", "--inception-weights", "/dev/zero"],
    ["inspect", "{a_file}"],
    ["train", "--data", "cifar10", "--data-root", "{a_file}", "--out", "{tmp}/run", "--encoder", "pixels"],
    ["fidelity", "{ckpt}", "--nonideal", "{fifo}"],
    ["fidelity", "{ckpt}", "--ir", "{a_file}"],
    ["fidelity", "{tmp}", "--nonideal", "{a_file}"],
    ["demo", "{fifo}", "-o", "{tmp}/report"],
])
def test_inputs_of_the_wrong_kind_are_refused(capsys, tmp_path, ckpt, fifo, a_file, argv) -> None:
    sub = {"fifo": fifo, "ckpt": ckpt, "tmp": tmp_path, "a_file": a_file}
    argv = [a.format(**sub) for a in argv]
    before = snapshot(tmp_path)
    _, line, _ = run(capsys, *argv)
    named = [a for a in argv if a.startswith("/") and a in line]
    assert named, f"the message names no path the user gave: {line}"
    assert snapshot(tmp_path) == before


# --- outputs that cannot be written: refused before computing, nothing left ---------------------
@pytest.mark.parametrize("argv, flag", [
    (["compile", "{ckpt}", "-o", "{a_file}"], "-o/--output"),
    (["compile", "{ckpt}", "-o", "{a_file}/ir"], "-o/--output"),
    (["compile", "{ckpt}", "-o", UNWRITABLE], "-o/--output"),
    (["init", "--size", "digits-n64", "-o", "{a_file}/x"], "-o/--output"),
    (["init", "--size", "digits-n64", "-o", UNWRITABLE], "-o/--output"),
    (["sample", "{ckpt}", "-o", "{tmp}"], "-o/--output"),
    (["sample", "{ckpt}", "-o", "{a_file}/x.png"], "-o/--output"),
    (["simulate", "{ckpt}", "--save", "{tmp}"], "--save"),
    (["train", "--out", "{a_file}", "--steps", "1"], "--out"),
    (["ablate", "--out", "{a_file}"], "--out"),
    (["energy", "{ckpt}", "-o", "{a_file}"], "-o/--output"),
    (["energy", "{ckpt}", "-o", UNWRITABLE], "-o/--output"),
    (["demo", "-o", "{a_file}"], "-o/--output"),
    (["demo", "-o", "{a_file}/report"], "-o/--output"),
    (["demo", "-o", UNWRITABLE], "-o/--output"),
    (["cells", "characterize", "-o", "{tmp}"], "-o/--output"),
    (["cells", "characterize", "-o", "{a_file}/cal.json"], "-o/--output"),
    (["cells", "characterize", "-o", "{tmp}/cal.json", "--plots", "{a_file}"], "--plots"),
    (["cells", "check-array", "-o", "{a_file}"], "-o/--output"),
    (["cells", "check-array", "{a_file}", "-o", "{tmp}/out"], "IR"),
    (["cells", "check-array", "--calibration", "{tmp}/nope.json", "-o", "{tmp}/out"], "--calibration"),
    (["emit", "{ir}", "-o", "{a_file}"], "-o/--output"),
    (["finetune", "{ckpt}", "--nonideal", "{spec}", "-o", "{a_file}"], "-o/--output"),
    (["sweep", "{spec}", "-o", "{a_file}"], "-o/--output"),
])
def test_unwritable_outputs_are_refused_at_once(capsys, tmp_path, ckpt, ir_dir, a_file, argv, flag) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('kind = "one-factor"\nfactor = "phase_noise_rad_per_sqrt_t"\nvalues = [0.1]\n'
                    '[nonideal]\nphase_noise_rad_per_sqrt_t = 0.1\n')
    sub = {"ckpt": ckpt, "tmp": tmp_path, "a_file": a_file, "ir": ir_dir, "spec": spec}
    argv = [a.format(**sub) for a in argv]
    before = snapshot(tmp_path)
    _, line, seconds = run(capsys, *argv)
    assert line.startswith(f"un0hw: error: {flag} "), line
    assert seconds < 15, f"refused only after {seconds:.0f} s of work"
    assert snapshot(tmp_path) == before


# --- IR contents that pass the checksum but break the format --------------------------------------
def _tamper(src: Path, dst: Path, change) -> Path:
    import shutil

    shutil.copytree(src, dst)
    tensors = load_file(str(dst / "weights.safetensors"))
    change(tensors)
    save_file(tensors, str(dst / "weights.safetensors"), metadata={"format": "un0hw-array/2"})
    doc = json.loads((dst / "array.json").read_text())
    from oscsim import sha256_file

    doc["weights"]["sha256"] = sha256_file(dst / "weights.safetensors")
    (dst / "array.json").write_text(json.dumps(doc))
    return dst


def _codes_out_of_range(t):
    t["omega.codes"] = t["omega.codes"].clone()
    t["omega.codes"][0] = 127  # 6-bit codes reach 31


def _nan_scale(t):
    t["omega.scale"] = torch.full_like(t["omega.scale"], float("nan"))


def _inf_block_scale(t):
    t["K.block_scales"] = t["K.block_scales"].clone()
    t["K.block_scales"].view(-1)[0] = float("inf")


def _no_decoder(t):
    for k in [k for k in t if k.startswith("decoder.") and k.endswith("weight")][:1]:
        del t[k]


def _float_codes(t):
    t["K.blocks"] = t["K.blocks"].float()


@pytest.mark.parametrize("change, words", [
    (_codes_out_of_range, "outside the declared 6-bit range"),
    (_nan_scale, "NaN/Inf"),
    (_inf_block_scale, "NaN/Inf"),
    (_no_decoder, "decoder tensor"),
    (_float_codes, "integer codes"),
])
@pytest.mark.parametrize("command", [["sample", "{ir}", "-o", "{tmp}/s.png"], ["info", "{ir}"], ["inspect", "{ir}"],
                                     ["energy", "{ir}", "--no-measure"]])
def test_ir_contents_that_break_the_format(capsys, tmp_path, ir_dir, change, words, command) -> None:
    bad = _tamper(ir_dir, tmp_path / "bad", change)
    before = snapshot(tmp_path)
    _, line, _ = run(capsys, *[a.format(ir=bad, tmp=tmp_path) for a in command])
    assert words in line and str(bad) in line, line
    assert snapshot(tmp_path) == before  # no garbage PNG


def test_an_ir_config_error_names_the_file(capsys, tmp_path, ir_dir) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(ir_dir, bad)
    doc = json.loads((bad / "array.json").read_text())
    doc["source"]["config"]["num_steps"] = -3
    (bad / "array.json").write_text(json.dumps(doc))
    _, line, _ = run(capsys, "info", bad)
    assert str(bad) in line and "array.json" in line and "num_steps" in line, line


def test_an_ir_of_the_previous_format_asks_for_a_recompile(capsys, tmp_path, ir_dir) -> None:
    import shutil

    old = tmp_path / "old"
    shutil.copytree(ir_dir, old)
    doc = json.loads((old / "array.json").read_text())
    doc["format_version"] = 1
    (old / "array.json").write_text(json.dumps(doc))
    _, line, _ = run(capsys, "inspect", old)
    assert "recompile" in line and "array.json" in line


# --- calibrations without physical sense ---------------------------------------------------------
@pytest.mark.parametrize("field, value, words", [
    ("f_min_hz", "f0_hz", "tune both ways"),
    ("f_max_hz", "f0_hz", "tune both ways"),
    ("coupler_k_rad_s", [0.0, 1e-300, 2e-300, 3e-300, 4e-300, 5e-300, 6e-300, 7e-300], "cannot move a phase"),
])
def test_calibrations_without_physical_sense(capsys, tmp_path, ckpt, field, value, words) -> None:
    from hw.calibration import Calibration

    doc = Calibration.default().to_dict()
    doc[field] = doc[value] if isinstance(value, str) else value
    cal = tmp_path / "cal.json"
    cal.write_text(json.dumps(doc))
    for argv in (["compile", ckpt, "-o", tmp_path / "ir", "--calibration", cal],
                 ["energy", ckpt, "--calibration", cal, "--no-measure"]):
        _, line, _ = run(capsys, *argv)
        assert str(cal) in line and words in line, line
    assert not (tmp_path / "ir").exists()


# --- finetune --coupling/--trim/--calibration combinations -----------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["--coupling", "cosine"], "--coupling must be one of sine, circuit, not 'cosine'"),
    (["--nonideal", "{spec}", "--trim", "open"], "--trim goes with --coupling circuit"),
    (["--nonideal", "{spec}", "--calibration", "{cal}"], "--calibration goes with --coupling circuit"),
    (["--coupling", "sine", "--trim", "closed", "--nonideal", "{spec}"], "--trim goes with --coupling circuit"),
    (["--coupling", "circuit", "--trim", "trajectory"], "--trim must be one of closed, open, not 'trajectory'"),
    (["--coupling", "circuit", "--trim", "shut"], "--trim must be one of closed, open, not 'shut'"),
    (["--coupling", "circuit", "--calibration", "{sine_cal}"], "sine-only (format 1)"),
    (["--coupling", "circuit", "--calibration", "{tmp}/missing.json"], "missing.json"),
    ([], "--nonideal is required"),
])
def test_finetune_coupling_combinations_are_refused(capsys, tmp_path, ckpt, argv, words) -> None:
    from hw.calibration import Calibration

    spec = tmp_path / "hw.toml"
    spec.write_text("[nonideal]\nphase_noise_rad_per_sqrt_t = 0.1\n")
    cal, sine_cal = tmp_path / "cal.json", tmp_path / "sine.json"
    Calibration.default().save(cal)
    Calibration.default().as_sine_only().save(sine_cal)
    sub = {"spec": spec, "cal": cal, "sine_cal": sine_cal, "tmp": tmp_path}
    before = snapshot(tmp_path)
    _, line, seconds = run(capsys, "finetune", ckpt, *[a.format(**sub) for a in argv], "-o", tmp_path / "ft")
    assert words in line and seconds < 15, line
    assert snapshot(tmp_path) == before


# --- resume state ------------------------------------------------------------------------------
@pytest.mark.parametrize("content", [b"", b"PK\x03\x04truncated", "list", "dict-missing", "wrong-type"])
def test_train_and_ablate_refuse_bad_resume_state(capsys, tmp_path, content) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    state = run_dir / "train-state.pt"
    if content == "list":
        torch.save([1, 2, 3], state)
    elif content == "dict-missing":
        torch.save({"step": 3}, state)
    elif content == "wrong-type":
        torch.save({"step": "three", "model": {}, "ema": {}, "optimizer": {}, "generator": torch.zeros(1),
                    "options": "{}", "config": "{}"}, state)
    else:
        state.write_bytes(content)
    _, line, _ = run(capsys, "train", "--size", "digits-n64", "--out", run_dir, "--steps", "2")
    assert str(state) in line and "cannot resume" in line, line
    abl = tmp_path / "abl"
    (abl / "trained-10-s0").mkdir(parents=True)
    (abl / "trained-10-s0" / "train-state.pt").write_bytes(state.read_bytes())
    _, line, _ = run(capsys, "ablate", "--out", abl, "--steps", "2", "--seeds", "1", "--size", "digits-n64")
    assert "train-state.pt" in line and "cannot resume" in line, line


@pytest.mark.parametrize("content", ["", "{\"kind\": ", "[1, 2]"])
def test_sweep_refuses_a_bad_spec_json(capsys, tmp_path, content) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('kind = "one-factor"\nfactor = "phase_noise_rad_per_sqrt_t"\nvalues = [0.1]\n')
    out = tmp_path / "out"
    out.mkdir()
    (out / "spec.json").write_text(content)
    _, line, _ = run(capsys, "sweep", spec, "-o", out)
    assert str(out / "spec.json") in line, line


def test_a_sweep_that_fails_on_its_checkpoint_leaves_nothing(capsys, tmp_path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('kind = "one-factor"\nfactor = "phase_noise_rad_per_sqrt_t"\nvalues = [0.1]\n'
                    'checkpoint = "missing.safetensors"\n')
    for out in (tmp_path / "new", tmp_path / "empty"):
        if out.name == "empty":
            out.mkdir()
        rc = main(["sweep", str(spec), "-o", str(out), "--no-progress"])
        assert rc == 2 and "missing.safetensors" in capsys.readouterr().err
        assert not (out / "spec.json").exists()
    assert not (tmp_path / "new").exists()


# --- devices, sizes and messages -----------------------------------------------------------------
@pytest.mark.parametrize("name, words", [("cuda:99", "cuda:99"), ("tpu", "cpu or cuda"), ("cuda:x", "cpu or cuda")])
def test_devices_that_are_not_there(capsys, ckpt, name, words) -> None:
    _, line, _ = run(capsys, "simulate", ckpt, "--device", name)
    assert line.startswith("un0hw: error: --device") and words in line, line


def test_a_tile_far_beyond_the_machine_is_refused_with_the_estimate(capsys, tmp_path, ckpt) -> None:
    _, line, seconds = run(capsys, "compile", ckpt, "-o", tmp_path / "ir", "--tile", "100000000")
    assert "--tile 100000000" in line and "GiB" in line and seconds < 15, line
    assert not (tmp_path / "ir").exists()


def test_a_sample_count_far_beyond_the_machine_is_refused(capsys, tmp_path, ckpt) -> None:
    _, line, seconds = run(capsys, "sample", ckpt, "-n", "100000000000", "-o", tmp_path / "s.png")
    assert "-n" in line and "GiB" in line and seconds < 15, line
    _, line, _ = run(capsys, "simulate", ckpt, "-n", "100000000000")
    assert "GiB" in line


def test_a_bad_key_map_value_names_the_key_map(capsys, tmp_path, ckpt) -> None:
    import models

    pt = models.save_release(models.load(ckpt), tmp_path / "r.pt")
    km = tmp_path / "km.json"
    km.write_text(json.dumps({"version": 1, "config": {"num_steps": -5}}))
    _, line, _ = run(capsys, "info", pt, "--key-map", km)
    assert str(km) in line, line


def test_emit_names_the_option_it_has(capsys, tmp_path, ir_dir) -> None:
    _, line, _ = run(capsys, "emit", ir_dir, "--rtl-tile", "99", "-o", tmp_path / "e")
    assert "--rtl-tile 99" in line and "--tile-index" not in line
    assert not (tmp_path / "e").exists()


def test_a_refused_pickle_keeps_whole_words(capsys, tmp_path) -> None:
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"model": Evil()}, protocol=2))
    _, line, _ = run(capsys, "info", path)
    assert "never unpickles" in line, line
    # what was refused, as one whole sentence (not torch's advice page cut at a character count)
    assert line.endswith("(Unsupported global: GLOBAL print was not an allowed global by default.)"), line


def test_brief_cuts_only_between_words() -> None:
    from oscsim.errors import brief

    long = "Weights only load failed. " + "This file can still be loaded with weights_only set to False " * 8
    text = brief(ValueError(long), limit=100)
    assert len(text) <= 102 and text.endswith(" …") and long.startswith(text[:-2].rstrip())
    assert long[len(text[:-2].rstrip())] in " ."  # the cut falls at a word's end
    assert brief(ValueError("short message")) == "short message"
    assert brief(ValueError("Traceback\n  frames\nthe point")) == "the point"


@pytest.mark.parametrize("argv, words", [
    (["cells", "check-array", "--cells", "3", "-o", "{tmp}/out"], "--cells must be in 4..8, not 3"),
    (["cells", "check-array", "--random", "0", "-o", "{tmp}/out"], "--random must be >= 1, not 0"),
    (["cells", "check-array", "{ir}", "--random", "2", "-o", "{tmp}/out"], "--random runs random arrays"),
    (["cells", "check-array", "--starts", "0", "-o", "{tmp}/out"], "--starts must be >= 1"),
])
def test_check_array_values(capsys, tmp_path, ir_dir, argv, words) -> None:
    argv = [a.format(tmp=tmp_path, ir=ir_dir) for a in argv]
    _, line, _ = run(capsys, *argv)
    assert words in line, line
    assert not (tmp_path / "out").exists()
