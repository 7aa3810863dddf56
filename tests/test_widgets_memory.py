"""The imagination strip (chapter 3), driven from Python with a tiny untrained V and M."""


import numpy as np
import pytest
import torch

from wmlib.config import MDNRNNConfig, VAEConfig
from wmlib.mdnrnn import MDNRNN
from wmlib.vae import ConvVAE
from wmlib.widgets import ImaginationStrip

TILE, GAP, SCALE = 64, 2, 2


def _episode(T, seed):
    rng = np.random.default_rng(seed)
    return {"frames": rng.integers(0, 256, (T + 1, 64, 64, 3), dtype=np.uint8),
            "actions": rng.integers(0, 2, T), "rewards": np.ones(T, np.float32),
            "terminated": np.arange(T) == T - 1, "truncated": np.zeros(T, bool)}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    vae = ConvVAE(VAEConfig(z_dim=8)).eval()
    m = MDNRNN(MDNRNNConfig(z_dim=8, action_dim=2, hidden_size=16, num_mixtures=3, predict_done=True)).eval()
    return vae, m


@pytest.fixture(scope="module")
def episodes():
    return [_episode(12, 0), _episode(30, 1)]


def _width(n):
    return ((n + 1) * TILE + n * GAP) * SCALE


def test_strip_shows_real_and_imagined_rows(models, episodes):
    strip = ImaginationStrip(*models, episodes, horizon=5, scale=SCALE)
    assert strip.image.shape == ((2 * TILE + GAP) * SCALE, _width(5), 3) and strip.image.dtype == np.uint8
    # the widget is told the picture's own size, so the browser does not stretch it (blurry)
    assert (strip.image_widget.width, strip.image_widget.height) == (str(_width(5)), str((2 * TILE + GAP) * SCALE))
    assert strip.imagined_z.shape == (5, 8) and strip.done_prob.shape == (5,)
    assert strip.image_widget.value[:8] == b"\x89PNG\r\n\x1a\n"
    # The first tile of both rows is the real start frame, upscaled by nearest neighbour.
    start = np.repeat(np.repeat(episodes[0]["frames"][0], SCALE, 0), SCALE, 1)
    assert np.array_equal(strip.image[: TILE * SCALE, : TILE * SCALE], start)
    assert np.array_equal(strip.image[-TILE * SCALE :, : TILE * SCALE], start)
    # The top row holds what really happened next.
    real = np.repeat(np.repeat(episodes[0]["frames"][1], SCALE, 0), SCALE, 1)
    x = (TILE + GAP) * SCALE
    assert np.array_equal(strip.image[: TILE * SCALE, x : x + TILE * SCALE], real)


def test_controls_redraw_and_validate(models, episodes):
    strip = ImaginationStrip(*models, episodes, horizon=4, scale=SCALE, columns=10)
    strip.set(episode=1, start=20, horizon=7)
    assert strip.image.shape[1] == _width(7) and strip.start_slider.max == 29
    strip.horizon_slider.value = 3  # a learner dragging the slider redraws too
    assert strip.image.shape[1] == _width(3)
    with pytest.raises(ValueError, match="start"):
        strip.set(start=30)
    with pytest.raises(ValueError, match="episode"):
        strip.set(episode=2)
    with pytest.raises(ValueError, match="temperature"):
        strip.set(temperature=0)
    strip.set(episode=0)
    assert strip.start_slider.max == 11 and strip.start_slider.value <= 11


def test_resample_and_temperature_change_the_dream_reproducibly(models, episodes):
    a = ImaginationStrip(*models, episodes, horizon=6, seed=3)
    b = ImaginationStrip(*models, episodes, horizon=6, seed=3)
    assert torch.equal(a.imagined_z, b.imagined_z)
    first = a.imagined_z.clone()
    a.resample()
    assert not torch.equal(first, a.imagined_z)
    spread = {}
    for tau in (0.1, 2.0):
        zs = []
        for _ in range(8):
            a.set(temperature=tau).resample()
            zs.append(a.imagined_z[0])
        spread[tau] = float(torch.stack(zs).std(0).mean())
    assert spread[0.1] < spread[2.0]  # a colder imagination is a tamer one


def test_real_row_greys_out_after_the_episode_ends(models, episodes):
    strip = ImaginationStrip(*models, episodes, horizon=4, scale=1)
    strip.set(start=10)  # 12 steps: real frames 11 and 12 exist, then the episode is over
    tile = lambda row, k: strip.image[row * (TILE + GAP) : row * (TILE + GAP) + TILE,  # noqa: E731
                                      k * (TILE + GAP) : k * (TILE + GAP) + TILE]
    assert np.array_equal(tile(0, 2), episodes[0]["frames"][12])
    assert (tile(0, 3) == 200).all() and (tile(0, 4) == 200).all()
    assert "ended" in strip.caption.value


def _with_done_bias(m, bias):
    out = MDNRNN(m.config).eval()
    out.load_state_dict(m.state_dict())
    with torch.no_grad():
        out.done_head.weight.zero_()
        out.done_head.bias.fill_(bias)
    return out


def test_done_head_marks_imagined_ends_in_red(models, episodes):
    vae, m = models
    x = TILE + GAP
    sure = ImaginationStrip(vae, _with_done_bias(m, 20.0), episodes, horizon=3, scale=1)
    assert (sure.done_prob > 0.99).all()
    assert (sure.image[TILE + GAP, x : x + TILE] == [220, 30, 30]).all()  # top edge of the first dream tile
    never = ImaginationStrip(vae, _with_done_bias(m, -20.0), episodes, horizon=3, scale=1)
    assert (never.done_prob < 0.01).all()
    assert not (never.image[TILE + GAP, x : x + TILE] == [220, 30, 30]).all()


def test_long_dreams_wrap_into_rows_of_large_frames(models, episodes):
    from wmlib.vae import decode_latents

    vae, m = models
    strip = ImaginationStrip(vae, m, episodes, horizon=13, scale=SCALE, columns=6)
    strip.set(episode=1, start=3)
    # 14 tiles (the start frame and 13 steps) in pairs of rows of 6: three pairs, the last padded white.
    pair_h = 2 * TILE + GAP
    assert strip.image.shape == ((3 * pair_h + 2 * 8) * SCALE, (6 * TILE + 5 * GAP) * SCALE, 3)

    def tile(pair, row, col):
        y, x = (pair * (pair_h + 8) + row * (TILE + GAP)) * SCALE, col * (TILE + GAP) * SCALE
        return strip.image[y : y + TILE * SCALE, x : x + TILE * SCALE]

    big = lambda frame: np.repeat(np.repeat(frame, SCALE, 0), SCALE, 1)  # noqa: E731
    frames = episodes[1]["frames"]
    assert np.array_equal(tile(0, 0, 0), big(frames[3]))  # the real start frame
    assert np.array_equal(tile(1, 0, 0), big(frames[3 + 6]))  # tile 6 wraps to the second pair
    assert np.array_equal(tile(2, 0, 1), big(frames[3 + 13]))  # the last real frame
    imagined = decode_latents(vae, strip.imagined_z)
    assert np.array_equal(tile(1, 1, 0), big(imagined[5]))  # imagined step 6 under real step 6
    assert np.array_equal(tile(2, 1, 1), big(imagined[12]))
    assert (tile(2, 0, 2) == 255).all() and (tile(2, 1, 5) == 255).all()  # padding
    # The longest dream the slider allows still fits a notebook cell (about 800 px) at 128 px a frame.
    strip.set(horizon=strip.horizon_slider.max)
    assert strip.image.shape[1] <= 800 and SCALE * TILE >= 64
    with pytest.raises(ValueError, match="columns"):
        ImaginationStrip(vae, m, episodes, columns=0)


def test_bad_episodes_are_refused(models):
    with pytest.raises(ValueError, match="frames"):
        ImaginationStrip(*models, [{"actions": np.zeros(3)}])
    with pytest.raises(ValueError, match="at least one"):
        ImaginationStrip(*models, [])
