"""Root pytest configuration: the test run always uses the course's FAST sizes.

`pytest` from the repository root runs the unit tests (tests/) and every chapter notebook
(course/, via nbval). Setting the variables here, before any kernel starts, means the notebook
kernels inherit them too.
"""

import os

os.environ.setdefault("WMLIB_FAST", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
# The tests use small networks on single frames: one thread each avoids the test process and the notebook
# kernels spinning against each other on a 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Exercises record progress in a file; the test run keeps its own instead of the learner's.
if "WMLIB_PROGRESS_FILE" not in os.environ:
    import tempfile

    os.environ["WMLIB_PROGRESS_FILE"] = os.path.join(tempfile.mkdtemp(prefix="wmlib-test-"), "progress.json")


# The English chapters run as shipped (pytest_ignore_collect below says where). The Chinese chapters (course/zh/)
# hold the same code cells byte for byte and the same metadata, and no code cell depends on the folder it runs in
# (both checked by tests/test_zh.py), so executing all of them again would repeat the English runs cell for cell
# (about a quarter of CI's time). nbval still runs the first Chinese chapter, from course/zh/ itself.
collect_ignore_glob = ["course/zh/0[1-9]_*.ipynb"]


def _browser_runs_the_chapters(config) -> bool:
    """Whether this run's browser tests execute every English chapter in JupyterLab (tests/test_browser.py).

    True when Chromium and playwright are here, tests/test_browser.py is among what this run collects (no path
    given, the repository, tests/ or that file), and no -m or -k could deselect it.
    """
    from pathlib import Path

    from tests.browser_support import missing_browser_reason

    root = Path(__file__).resolve().parent
    wanted = {root, root / "tests", root / "tests" / "test_browser.py"}
    paths = {Path(arg.split("::")[0]).resolve() for arg in config.args}
    return (not config.option.markexpr and not config.option.keyword and bool(paths & wanted)
            and missing_browser_reason() is None)


def pytest_ignore_collect(collection_path, config):
    # Each English chapter runs as shipped once per test run: in JupyterLab in headless Chromium when the browser
    # tests run (they also fail on any error output or cell that did not run, and check that every widget renders),
    # else here under nbval. tests/test_notebooks.py runs each one again with the exercises solved.
    if collection_path.suffix == ".ipynb" and collection_path.parent.name == "course":
        if not hasattr(config, "_wmlib_browser_runs_chapters"):
            config._wmlib_browser_runs_chapters = _browser_runs_the_chapters(config)
        if config._wmlib_browser_runs_chapters:
            return True
    return None


import pytest  # noqa: E402  (the environment above must be set before anything imports torch)
import torch  # noqa: E402

from wmlib.config import MDNRNNConfig, VAEConfig  # noqa: E402
from wmlib.mdnrnn import MDNRNN  # noqa: E402
from wmlib.vae import ConvVAE  # noqa: E402

TINY_Z, TINY_H = 4, 8
"""The tiny models' latent size Z and M's hidden size H."""


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny batches run fastest on one thread, whatever OMP_NUM_THREADS says (modules opt in with
    `pytestmark = pytest.mark.usefixtures("one_torch_thread")`)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_mdnrnn(action_dim: int = 2, seed: int = 1, done_bias: float = -0.5, reward: bool = False) -> MDNRNN:
    """An untrained M (Z 4, H 8, K 3) with a done head whose end depends strongly on the memory,
    and a reward head with reward=True."""
    torch.manual_seed(seed)
    m = MDNRNN(MDNRNNConfig(z_dim=TINY_Z, action_dim=action_dim, hidden_size=TINY_H, num_mixtures=3,
                            predict_done=True, predict_reward=reward)).eval()
    with torch.no_grad():
        m.done_head.weight.mul_(4.0)
        m.done_head.bias.fill_(done_bias)
    return m


@pytest.fixture
def make_tiny_mdnrnn():
    """tiny_mdnrnn itself, for variants (another done bias, action size or seed)."""
    return tiny_mdnrnn


@pytest.fixture
def tiny_done_mdnrnn() -> MDNRNN:
    """A tiny untrained M with a done head (Z 4, A 2 one-hot, H 8)."""
    return tiny_mdnrnn()


@pytest.fixture
def tiny_reward_mdnrnn() -> MDNRNN:
    """A tiny untrained M with a reward head beside its done head (Z 4, A 2, H 8)."""
    return tiny_mdnrnn(reward=True)


@pytest.fixture
def tiny_vae() -> ConvVAE:
    """An untrained V with z of size 4 (the tiny M's)."""
    torch.manual_seed(0)
    return ConvVAE(VAEConfig(z_dim=TINY_Z)).eval()
