"""The latent explorer and the traversal grid, driven from Python."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from wmlib.config import VAEConfig
from wmlib.vae import ConvVAE, decode_latents
from wmlib.widgets import PNG_SIGNATURE, LatentExplorer, frame_to_png, traversal_grid, upscale


def _vae(z_dim=8, seed=0):
    torch.manual_seed(seed)
    return ConvVAE(VAEConfig(z_dim=z_dim)).eval()


def _frames(n=6, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)


def _png_pixels(png: bytes) -> np.ndarray:
    assert png[:8] == PNG_SIGNATURE
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.fixture
def explorer():
    return LatentExplorer(_vae(), _frames(), scale=2)


def test_frame_to_png_is_a_sharp_enlarged_png():
    frame = _frames(1)[0]
    pixels = _png_pixels(frame_to_png(frame, scale=3))
    assert pixels.shape == (192, 192, 3)
    assert np.array_equal(pixels, upscale(frame, 3))


def test_moving_a_slider_changes_the_png(explorer):
    before = explorer.png
    j = explorer.order[0]
    explorer.sliders[j].value = 2.5
    after = explorer.png
    assert before[:8] == after[:8] == PNG_SIGNATURE
    assert after != before
    assert explorer.z[j] == pytest.approx(2.5)
    # the picture shown is the decoding of the current z (the widget folds two layers into one
    # matrix for speed, so allow one level of rounding)
    expected = upscale(decode_latents(explorer.vae, explorer.z[None])[0], 2)
    shown = _png_pixels(after)
    assert np.abs(shown.astype(int) - expected).max() <= 1
    assert np.array_equal(shown, upscale(explorer.decoded_frame(), 2))


def test_sliders_are_ordered_by_visible_effect(explorer):
    effects = explorer.effects[explorer.order]
    assert len(explorer.order) == 8 == len(explorer.sliders)
    assert np.all(np.diff(effects) <= 0)
    assert list(explorer.sliders) == explorer.order


def test_reset_and_frame_choice_return_to_the_encoding(explorer):
    explorer.set_dim(explorer.order[1], -3.0)
    explorer.reset()
    assert np.allclose(explorer.z, explorer.mu[0])
    real_before = explorer.real_image.value
    explorer.frame_slider.value = 3  # as a learner would, through the widget
    assert explorer.frame_index == 3 and np.allclose(explorer.z, explorer.mu[3])
    assert explorer.real_image.value != real_before
    assert np.array_equal(_png_pixels(explorer.reconstruction_image.value), upscale(explorer.reconstructions[3], 2))
    for j, s in explorer.sliders.items():
        assert s.value == pytest.approx(float(np.clip(explorer.mu[3, j], -3, 3)), abs=1e-6)


def test_randomise_draws_from_the_prior_reproducibly():
    a = LatentExplorer(_vae(), _frames(2), seed=7)
    b = LatentExplorer(_vae(), _frames(2), seed=7)
    a.randomise()
    b.randomise()
    assert np.array_equal(a.z, b.z) and not np.allclose(a.z, a.mu[0])
    assert a.png == b.png


def test_set_z_renders_once_and_checks_its_input(explorer, monkeypatch):
    calls = []
    original = explorer._render
    monkeypatch.setattr(explorer, "_render", lambda: (calls.append(1), original()))
    explorer.set_z(np.zeros(8))
    assert len(calls) == 1 and np.array_equal(explorer.z, np.zeros(8))
    with pytest.raises(ValueError, match=r"\(8,\)"):
        explorer.set_z(np.zeros(5))
    with pytest.raises(ValueError, match="0..7"):
        explorer.set_dim(8, 1.0)
    with pytest.raises(ValueError, match="0..5"):
        explorer.show_frame(6)


def test_fewer_sliders_and_dimensions_without_one():
    ex = LatentExplorer(_vae(), _frames(3), n_sliders=3)
    assert len(ex.sliders) == 3
    hidden = next(j for j in range(8) if j not in ex.sliders)
    before = ex.png
    ex.set_dim(hidden, 3.0)
    assert ex.z[hidden] == 3.0 and ex.png != before


def test_bad_frames_give_a_clear_error():
    with pytest.raises(ValueError, match="uint8 frames"):
        LatentExplorer(_vae(), _frames().astype(np.float32))
    with pytest.raises(ValueError, match="n_sliders"):
        LatentExplorer(_vae(), _frames(), n_sliders=0)


def test_fast_decoder_matches_the_model():
    from wmlib.widgets.frames import _FastDecoder

    vae = _vae(z_dim=32, seed=3)
    z = torch.randn(4, 32, generator=torch.Generator().manual_seed(0)) * 2
    with torch.no_grad():
        assert torch.allclose(_FastDecoder(vae)(z), vae.decode(z), atol=1e-5)


def test_traversal_grid_sweeps_one_dimension_per_row():
    vae = _vae()
    z = np.zeros(8, np.float32)
    fig = traversal_grid(vae, z, dims=[5, 2], values=[-2.0, 0.0, 2.0])
    ax = fig.axes[0]
    mosaic = np.asarray(ax.images[0].get_array())
    assert mosaic.shape == (2 * 64, 3 * 64, 3)
    z_row1_col2 = z.copy()
    z_row1_col2[2] = 2.0
    assert np.array_equal(mosaic[64:, 128:], decode_latents(vae, z_row1_col2[None])[0])
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["z[5]", "z[2]"]
    with pytest.raises(ValueError, match=r"\(8,\)"):
        traversal_grid(vae, np.zeros(4))
    import matplotlib.pyplot as plt

    plt.close("all")


def test_default_traversal_picks_the_most_visible_dimensions():
    vae = _vae()
    with torch.no_grad():
        vae.fc_decode.weight[:, :4] = 0.0  # dims 0..3 draw nothing
    fig = traversal_grid(vae, np.zeros(8), n_dims=4)
    labels = {t.get_text() for t in fig.axes[0].get_yticklabels()}
    assert labels == {"z[4]", "z[5]", "z[6]", "z[7]"}
    import matplotlib.pyplot as plt

    plt.close("all")
