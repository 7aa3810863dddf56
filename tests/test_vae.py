"""V: the ConvVAE, its losses, training with resume, checkpoints and the shipped models."""

import json
import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl

from wmlib import checkpoints
from wmlib import vae as vae_module
from wmlib.checkpoints import CheckpointError, assets_dir, read_metadata, read_unit, save_checkpoint
from wmlib.config import VAEConfig
from wmlib.rollouts import save_episode
from wmlib.vae import (
    ConvVAE,
    decode_latents,
    dimension_effects,
    encode_frames,
    encode_rollouts,
    kl_divergence,
    load_vae,
    reconstruction_error,
    reparameterize,
    train_vae,
    vae_loss,
)

# --- the model --------------------------------------------------------------------------------


def test_parameter_count_matches_the_paper():
    assert ConvVAE(VAEConfig()).num_params == 4_348_547


def test_parameter_count_follows_z_dim():
    # only the three dense layers touching z change: 2 * (1024 * dz + dz) + dz * 1024
    dz = 16 - 32
    assert ConvVAE(VAEConfig(z_dim=16)).num_params == 4_348_547 + 2 * (1024 * dz + dz) + dz * 1024


def test_shapes_through_the_model():
    torch.manual_seed(0)
    vae = ConvVAE(VAEConfig(z_dim=8))
    x = torch.rand(5, 3, 64, 64)
    out = vae(x)
    assert out.x_hat.shape == (5, 3, 64, 64)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (5, 8)
    assert float(out.x_hat.detach().min()) >= 0.0 and float(out.x_hat.detach().max()) <= 1.0
    mu, logvar = vae.encode(x)
    assert torch.allclose(mu, out.mu) and torch.allclose(logvar, out.logvar)
    assert vae.decode(torch.zeros(2, 8)).shape == (2, 3, 64, 64)


def test_forward_uses_the_given_eps():
    vae = ConvVAE(VAEConfig(z_dim=4))
    x = torch.rand(2, 3, 64, 64)
    eps = torch.zeros(2, 4)
    out = vae(x, eps=eps)
    assert torch.equal(out.z, out.mu)


@pytest.mark.parametrize("bad, words", [
    (torch.rand(2, 64, 64, 3), "frames_to_tensor"),
    (torch.rand(3, 64, 64), "(B, 3, 64, 64)"),
    (torch.rand(2, 3, 32, 32), "(B, 3, 64, 64)"),
    (torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8), "float"),
])
def test_bad_images_give_a_clear_error(bad, words):
    with pytest.raises(ValueError, match="expected") as info:
        ConvVAE(VAEConfig(z_dim=4)).encode(bad)
    assert words in str(info.value)


def test_bad_latents_and_configs_give_a_clear_error():
    vae = ConvVAE(VAEConfig(z_dim=4))
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        vae.decode(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="64x64"):
        ConvVAE(VAEConfig(image_size=96))


# --- the math ---------------------------------------------------------------------------------


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(16, 32, generator=g) * 2
    logvar = torch.randn(16, 32, generator=g)
    prior = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch_kl(Normal(mu, torch.exp(0.5 * logvar)), prior)
    assert torch.allclose(kl_divergence(mu, logvar), expected.sum(-1), rtol=1e-5, atol=1e-5)


def test_kl_is_zero_at_the_prior_and_stable():
    assert torch.equal(kl_divergence(torch.zeros(3, 5), torch.zeros(3, 5)), torch.zeros(3))
    assert torch.isfinite(kl_divergence(torch.zeros(1, 2), torch.tensor([[-200.0, 40.0]]))).all()


def test_reparameterize_has_the_right_moments_and_gradients():
    mu = torch.tensor([[1.0, -2.0]]).repeat(200_000, 1)
    logvar = torch.tensor([[math.log(0.25), math.log(9.0)]]).repeat(200_000, 1)
    torch.manual_seed(0)
    z = reparameterize(mu, logvar)
    assert torch.allclose(z.mean(0), torch.tensor([1.0, -2.0]), atol=0.02)
    assert torch.allclose(z.std(0), torch.tensor([0.5, 3.0]), atol=0.02)
    mu1 = torch.zeros(1, 2, requires_grad=True)
    lv1 = torch.zeros(1, 2, requires_grad=True)
    reparameterize(mu1, lv1, torch.tensor([[2.0, -1.0]])).sum().backward()
    assert torch.equal(mu1.grad, torch.ones(1, 2))
    assert torch.allclose(lv1.grad, torch.tensor([[1.0, -0.5]]))


def test_vae_loss_by_hand():
    x = torch.zeros(2, 3, 4, 4)
    x_hat = torch.full((2, 3, 4, 4), 0.5)
    mu = torch.zeros(2, 4)
    mu[0] = 3.0  # KL 18 for image 0, 0 for image 1
    logvar = torch.zeros(2, 4)
    rec = 48 * 0.25  # 48 values off by 0.5 per image
    assert torch.allclose(reconstruction_error(x_hat, x), torch.tensor([rec, rec]))
    assert torch.isclose(vae_loss(x_hat, x, mu, logvar, 0.0), torch.tensor(rec + 9.0))
    # floor 0.5 * 4 = 2 nats per image: mean(max(18, 2), max(0, 2)) = 10
    assert torch.isclose(vae_loss(x_hat, x, mu, logvar, 0.5), torch.tensor(rec + 10.0))


def test_losses_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        reconstruction_error(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 5))
    with pytest.raises(ValueError, match="same shape"):
        kl_divergence(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="eps"):
        reparameterize(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3, 2))


# --- training ---------------------------------------------------------------------------------


def _tiny_rollouts(directory, episodes=2, steps=24, seed=0):
    """Episodes of a bright square sliding over a dark background (easy to compress)."""
    rng = np.random.default_rng(seed)
    for e in range(episodes):
        frames = np.full((steps + 1, 64, 64, 3), 20, np.uint8)
        for t in range(steps + 1):
            r, c = rng.integers(0, 48, 2)
            frames[t, r : r + 16, c : c + 16] = (230, 200, 40)
        save_episode(directory / f"episode_{e:05d}.npz", {
            "frames": frames, "actions": rng.integers(0, 2, steps), "rewards": np.ones(steps, np.float32),
            "terminated": np.zeros(steps, bool), "truncated": np.zeros(steps, bool)})
    return directory


SMALL = VAEConfig(z_dim=4, batch_size=16, learning_rate=1e-3)


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_loss_decreases_on_a_tiny_data_set(tmp_path):
    data = _tiny_rollouts(tmp_path / "data")
    result = train_vae(data, SMALL, epochs=4, seed=0, progress=False)
    losses = [h["loss"] for h in result.history]
    assert len(losses) == 4 and result.frames_seen == 4 * 50
    assert losses[-1] < 0.7 * losses[0], losses
    assert not result.vae.training


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_interrupted_training_resumes_exactly(tmp_path):
    data = _tiny_rollouts(tmp_path / "data")
    straight = train_vae(data, SMALL, epochs=2, seed=3, progress=False, max_frames_per_epoch=32)
    stem = tmp_path / "ckpt" / "v"
    first = train_vae(data, SMALL, epochs=1, seed=3, checkpoint=stem, progress=False, max_frames_per_epoch=32)
    assert set(read_unit(stem).files) == {"weights", "optimizer"}  # one unit: weights, Adam's state, JSON
    assert len(first.history) == 1
    resumed = train_vae(data, SMALL, epochs=2, seed=3, checkpoint=stem, progress=False,
                        max_frames_per_epoch=32)
    assert len(resumed.history) == 2 and resumed.frames_seen == 32  # only the second epoch ran
    assert resumed.history[0] == first.history[0]
    resumed_state = resumed.vae.state_dict()
    for name, a in straight.vae.state_dict().items():
        b = resumed_state[name]
        assert torch.allclose(a, b, atol=1e-6), name


def test_resume_refuses_another_config(tmp_path):
    data = _tiny_rollouts(tmp_path / "data", episodes=1, steps=4)
    stem = tmp_path / "v"
    save_checkpoint(ConvVAE(SMALL), SMALL, stem, metadata={"history": [{"epoch": 1}]})
    with pytest.raises(CheckpointError, match="trained with"):
        train_vae(data, VAEConfig(z_dim=8, batch_size=16), epochs=2, checkpoint=stem, progress=False)


def test_resume_refuses_other_rollouts(tmp_path):
    stem = tmp_path / "v"
    config = VAEConfig(z_dim=8, batch_size=4)
    train_vae(_tiny_rollouts(tmp_path / "a", episodes=1, steps=4), config, epochs=1, checkpoint=stem, progress=False)
    recollected = _tiny_rollouts(tmp_path / "b", episodes=2, steps=4)
    with pytest.raises(CheckpointError, match="other data"):
        train_vae(recollected, config, epochs=2, checkpoint=stem, progress=False)


def test_training_without_rollouts_says_how_to_make_them(tmp_path):
    with pytest.raises(ValueError, match="python -m wmlib collect"):
        train_vae(tmp_path / "nothing", SMALL, progress=False)


def test_train_vae_accepts_a_learner_loss(tmp_path):
    data = _tiny_rollouts(tmp_path / "data", episodes=1, steps=8)
    calls = []

    def my_loss(x_hat, x, mu, logvar, kl_tolerance):
        calls.append(kl_tolerance)
        return vae_loss(x_hat, x, mu, logvar, kl_tolerance)

    train_vae(data, SMALL, epochs=1, progress=False, loss_fn=my_loss)
    assert calls and all(c == SMALL.kl_tolerance for c in calls)


# --- frames in, frames out --------------------------------------------------------------------


def test_encode_decode_frames_and_rollouts(tmp_path):
    vae = ConvVAE(VAEConfig(z_dim=6)).eval()
    frames = np.random.default_rng(0).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    mu, logvar = encode_frames(vae, frames, batch_size=2)
    assert mu.shape == logvar.shape == (5, 6)
    out = decode_latents(vae, mu)
    assert out.shape == (5, 64, 64, 3) and out.dtype == np.uint8
    assert decode_latents(vae, np.zeros(6)).shape == (1, 64, 64, 3)
    with pytest.raises(ValueError, match="uint8"):
        encode_frames(vae, frames.astype(np.float32))
    data = _tiny_rollouts(tmp_path / "data", episodes=2, steps=5)
    paths = encode_rollouts(vae, data, tmp_path / "latents", progress=False)
    with np.load(paths[0]) as f:
        assert f["mu"].shape == (6, 6) and f["logvar"].shape == (6, 6) and f["actions"].shape == (5,)
        assert "frames" not in f.files


def test_dimension_effects_rank_a_dead_dimension_last():
    torch.manual_seed(0)
    vae = ConvVAE(VAEConfig(z_dim=4)).eval()
    with torch.no_grad():
        vae.fc_decode.weight[:, 2] = 0.0  # z_2 cannot change the picture
    effects = dimension_effects(vae, torch.zeros(3, 4))
    assert effects.shape == (4,)
    assert float(effects[2]) == 0.0 and (effects[[0, 1, 3]] > 0).all()


# --- checkpoints ------------------------------------------------------------------------------


@pytest.fixture
def fake_assets(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "assets_dir", lambda: tmp_path)
    return tmp_path


def test_missing_shipped_checkpoint_names_file_and_command(fake_assets):
    with pytest.raises(CheckpointError) as info:
        load_vae("cartpole")
    msg = str(info.value)
    assert str(fake_assets / "cartpole_vae.json") in msg
    assert "python -m wmlib train-vae" in msg and "python -m wmlib collect" in msg


def test_corrupt_checkpoint_names_file_and_command(fake_assets):
    save_checkpoint(ConvVAE(SMALL), SMALL, fake_assets / "carracing_vae")
    (fake_assets / "carracing_vae.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError) as info:
        load_vae("carracing")
    assert "carracing_vae.safetensors" in str(info.value) and "python -m wmlib train-vae" in str(info.value)


def test_mismatched_config_names_the_file(fake_assets):
    save_checkpoint(ConvVAE(SMALL), SMALL, fake_assets / "cartpole_vae")
    meta = json.loads((fake_assets / "cartpole_vae.json").read_text())
    meta["config"]["z_dim"] = 32
    (fake_assets / "cartpole_vae.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not fit ConvVAE") as info:
        load_vae("cartpole")
    assert "rebuild it with" in str(info.value)


def test_half_precision_round_trip(tmp_path):
    vae = ConvVAE(SMALL)
    save_checkpoint(vae, SMALL, tmp_path / "v", half=True)
    loaded = load_vae(str(tmp_path / "v"))
    w = loaded.state_dict()["fc_mu.weight"]
    assert w.dtype == torch.float32
    assert torch.allclose(w, vae.state_dict()["fc_mu.weight"], atol=1e-3)


@pytest.mark.parametrize("name", ["cartpole", "carracing"])
def test_shipped_checkpoints_load_without_pickle(name):
    path = assets_dir() / f"{name}_vae.safetensors"
    with open(path, "rb") as f:  # safetensors: an 8-byte header length, then a JSON header
        header_len = int.from_bytes(f.read(8), "little")
        assert f.read(1) == b"{" and header_len < path.stat().st_size
    vae = load_vae(name)
    assert vae.num_params == 4_348_547 and not vae.training
    meta = read_metadata(name, "vae")
    assert meta["command"].startswith("python -m wmlib train-vae") and "seed" in meta
    assert meta["history"][-1]["reconstruction"] < meta["history"][0]["reconstruction"]


def test_shipped_cartpole_vae_reconstructs_real_frames():
    from wmlib.envs import make_env

    env = make_env("cartpole-pixels")
    frames = []
    obs, _ = env.reset(seed=12345)
    frames.append(obs)
    for a in [0, 1, 1, 0, 0, 1, 0, 1]:
        obs, *_ = env.step(a)
        frames.append(obs)
    env.close()
    frames = np.stack(frames)
    vae = load_vae("cartpole")
    recon = vae_module.reconstruct(vae, frames)
    per_image = ((recon.astype(np.float32) - frames) / 255.0) ** 2
    sse = per_image.reshape(len(frames), -1).sum(1)
    blank = ((255.0 - frames) / 255.0) ** 2  # a white frame: what "forgetting everything" costs
    assert sse.mean() < 0.25 * blank.reshape(len(frames), -1).sum(1).mean()


# --- command line -----------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_trains_resumes_and_encodes(tmp_path, capsys):
    from wmlib.cli import main

    data = _tiny_rollouts(tmp_path / "data", episodes=2, steps=10)
    out, work = tmp_path / "assets" / "v", tmp_path / "work" / "v"
    argv = ["train-vae", "--rollouts", str(data), "--out", str(out), "--work", str(work), "--epochs", "1",
            "--z-dim", "4", "--batch-size", "8", "--lr", "1e-3", "--half", "--threads", "1"]
    assert main(argv) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["metadata"]["command"].startswith("python -m wmlib train-vae --rollouts")
    assert "--epochs 1" in meta["metadata"]["command"] and "--half" in meta["metadata"]["command"]
    assert len(meta["metadata"]["history"]) == 1
    argv[argv.index("--epochs") + 1] = "2"  # extend the same run: only epoch 2 trains
    assert main(argv) == 0
    assert len(json.loads(out.with_suffix(".json").read_text())["metadata"]["history"]) == 2
    assert load_vae(str(out)).config.z_dim == 4
    assert main(["encode", "--vae", str(out), "--rollouts", str(data), "--out", str(tmp_path / "z")]) == 0
    with np.load(tmp_path / "z" / "episode_00000.npz") as f:
        assert f["mu"].shape == (11, 4)
    capsys.readouterr()


# --- the smooth random policy the CarRacing V was trained on -----------------------------------


class _SpaceOnly:
    def __init__(self, space, seed):
        self.action_space = space
        space.seed(seed)


def _actions(space, seed, n=400):
    from wmlib.rollouts import smooth_random_policy

    act = smooth_random_policy(_SpaceOnly(space, seed))
    return np.array([act(None, {}) for _ in range(n)])


def test_smooth_random_policy_drives_gently_and_reproducibly():
    import gymnasium as gym

    car = gym.spaces.Box(np.array([-1, 0, 0], np.float32), np.array([1, 1, 1], np.float32))
    a = _actions(car, seed=5)
    assert np.array_equal(a, _actions(car, seed=5))
    assert all(car.contains(x) for x in a)
    uniform = np.array([car.sample() for _ in range(400)])
    assert np.abs(np.diff(a, axis=0)).mean() < 0.2 * np.abs(np.diff(uniform, axis=0)).mean()  # slow changes
    assert 0.05 <= a[:, 1].mean() <= 0.35 and (a[:, 2] < 0.05).mean() > 0.7  # gentle gas, little brake
    sticky = _actions(gym.spaces.Discrete(2), seed=0)
    assert set(np.unique(sticky)) == {0, 1} and (sticky[1:] != sticky[:-1]).mean() < 0.15
