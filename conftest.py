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


import pytest  # noqa: E402  (the environment above must be set before anything imports torch)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny batches run fastest on one thread, whatever OMP_NUM_THREADS says (modules opt in with
    `pytestmark = pytest.mark.usefixtures("one_torch_thread")`)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
