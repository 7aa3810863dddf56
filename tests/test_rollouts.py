"""Rollout collection and the streaming datasets."""

import numpy as np
import pytest
import torch

from wmlib.rollouts import (
    FrameDataset,
    RolloutFileError,
    SequenceDataset,
    collect,
    frames_to_tensor,
    load_episode,
    rollout_files,
)


@pytest.fixture(scope="module")
def pixel_rollouts(tmp_path_factory):
    out = tmp_path_factory.mktemp("rollouts")
    paths = collect("cartpole-pixels", 3, out, seed=7, max_steps=30, progress=False)
    return out, paths


def test_collect_writes_one_file_per_episode(pixel_rollouts):
    out, paths = pixel_rollouts
    # named by the seed each episode was reset with (seed 7: 7, 8, 9), so collections can share a folder
    assert [p.name for p in paths] == ["episode_00007.npz", "episode_00008.npz", "episode_00009.npz"]
    assert rollout_files(out) == paths
    ep = load_episode(paths[0])
    T = len(ep["actions"])
    assert 1 <= T <= 30
    assert ep["frames"].shape == (T + 1, 64, 64, 3) and ep["frames"].dtype == np.uint8
    assert ep["actions"].dtype == np.int64 and ep["rewards"].shape == (T,)
    assert ep["terminated"][-1] or ep["truncated"][-1]
    assert not (ep["terminated"][:-1] | ep["truncated"][:-1]).any()


def test_collect_is_seeded(tmp_path, pixel_rollouts):
    _, paths = pixel_rollouts
    again = collect("cartpole-pixels", 1, tmp_path, seed=7, max_steps=30, progress=False)
    a, b = load_episode(paths[0]), load_episode(again[0])
    assert np.array_equal(a["actions"], b["actions"]) and np.array_equal(a["frames"], b["frames"])


def test_state_rollouts(tmp_path):
    (path,) = collect("cartpole", 1, tmp_path, seed=0, progress=False)
    ep = load_episode(path)
    assert ep["observations"].shape == (len(ep["actions"]) + 1, 4)


def test_frame_dataset_streams_every_frame_once(pixel_rollouts):
    out, paths = pixel_rollouts
    total = sum(len(load_episode(p)["frames"]) for p in paths)
    frames = list(FrameDataset(paths, buffer_frames=8, seed=0))
    assert len(frames) == total
    assert frames[0].shape == (3, 64, 64) and frames[0].dtype == torch.float32
    assert 0.0 <= float(torch.stack(frames).min()) and float(torch.stack(frames).max()) <= 1.0
    # shuffled: not the order of the first file
    first = frames_to_tensor(load_episode(paths[0])["frames"])
    assert not all(torch.equal(frames[i], first[i]) for i in range(min(5, len(first))))


def test_frame_dataset_works_with_a_dataloader(pixel_rollouts):
    _, paths = pixel_rollouts
    loader = torch.utils.data.DataLoader(FrameDataset(paths, buffer_frames=16), batch_size=10)
    batch = next(iter(loader))
    assert batch.shape == (10, 3, 64, 64)


def test_sequence_dataset_windows_and_mask(tmp_path):
    for i, T in enumerate([10, 4]):
        np.savez_compressed(tmp_path / f"ep{i}.npz", mu=np.arange(T * 2, dtype=np.float32).reshape(T, 2),
                            actions=np.arange(T))
    ds = SequenceDataset(sorted(tmp_path.glob("*.npz")), ["mu", "actions"], seq_len=5)
    windows = list(ds)
    assert len(windows) == 3  # two from the 10-step episode, one padded from the 4-step one
    for w in windows:
        assert w["mu"].shape == (5, 2) and w["mask"].shape == (5,)
    assert sorted(int(w["mask"].sum()) for w in windows) == [4, 5, 5]
    no_pad = list(SequenceDataset(sorted(tmp_path.glob("*.npz")), ["mu"], seq_len=5, pad=False))
    assert len(no_pad) == 2


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(RolloutFileError, match="does not exist"):
        load_episode(tmp_path / "nope.npz")
    with pytest.raises(RolloutFileError, match="no .npz rollout files"):
        rollout_files(tmp_path)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(RolloutFileError, match="not a readable"):
        load_episode(bad)
    np.savez(tmp_path / "partial.npz", frames=np.zeros((3, 64, 64, 3), np.uint8), actions=np.zeros(2))
    with pytest.raises(RolloutFileError, match="lacks rewards"):
        load_episode(tmp_path / "partial.npz")
    np.savez(tmp_path / "short.npz", frames=np.zeros((2, 64, 64, 3), np.uint8), actions=np.zeros(2),
             rewards=np.zeros(2), terminated=np.zeros(2, bool), truncated=np.zeros(2, bool))
    with pytest.raises(RolloutFileError, match="T\\+1"):
        load_episode(tmp_path / "short.npz")
    with pytest.raises(RolloutFileError, match="lacks the array"):
        list(SequenceDataset([tmp_path / "short.npz"], ["mu"], seq_len=2))


def test_frames_to_tensor_checks_its_input():
    assert frames_to_tensor(np.zeros((64, 64, 3), np.uint8)).shape == (1, 3, 64, 64)
    with pytest.raises(ValueError, match="uint8"):
        frames_to_tensor(np.zeros((2, 64, 64, 3), np.float32))
