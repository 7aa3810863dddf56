"""Helpers for tests/test_browser.py: a throwaway JupyterLab server and a headless Chromium.

The server runs the way a learner's does (`jupyter lab`, the course notebooks, the default
Python 3 kernel) with these differences, all kept inside a temporary directory:

- its root dir holds *copies* of course/*.ipynb, so nothing the browser saves reaches the repo and
  the notebooks must find their assets through wmlib (not through the repository as cwd);
- no token, bound to 127.0.0.1, app exposed as `window.jupyterapp` so the test can run commands;
- user settings: notebook windowing off (every cell is rendered, so every output can be checked),
  no autosave, no news or update checks;
- the kernel inherits WMLIB_FAST=1, TQDM_DISABLE=1 and its own WMLIB_PROGRESS_FILE.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

USER_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}
"""JupyterLab user settings for the test server (plugin path -> values)."""

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_OUTPUTS = "[data-wmlib-widget]"
"""CSS selector of the outputs that display an ipywidget (tagged by `tag_widget_outputs`)."""


def missing_browser_reason() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install -r requirements.txt)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """`jupyter lab` on 127.0.0.1 serving copies of `notebooks` from a temporary root dir."""

    def __init__(self, notebooks: list[Path], workdir: Path):
        self.workdir = Path(workdir)
        self.root = self.workdir / "root"
        self.root.mkdir(parents=True)
        for nb in notebooks:
            shutil.copy2(nb, self.root / nb.name)
        settings = self.workdir / "settings"
        for plugin, values in USER_SETTINGS.items():
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.workdir / "server.log"
        env = dict(os.environ)
        env.pop("MPLBACKEND", None)  # let the kernel pick its inline backend, as for a learner
        env.update({
            "WMLIB_FAST": "1",
            "TQDM_DISABLE": "1",
            "WMLIB_PROGRESS_FILE": str(self.workdir / "progress.json"),
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(self.workdir / "workspaces"),
            "JUPYTER_CONFIG_DIR": str(self.workdir / "config"),
            "JUPYTER_RUNTIME_DIR": str(self.workdir / "runtime"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        })
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
               "--ServerApp.port_retries=0", "--IdentityProvider.token=", "--ServerApp.password=",
               f"--ServerApp.root_dir={self.root}", "--LabApp.expose_app_in_browser=True",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # CI runs as root
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"jupyter lab did not answer on {self.url} within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else "(no log)"

    def stop(self) -> None:
        """SIGTERM (the server shuts its kernels down), then SIGKILL its process group if needed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # its own session: the server and its kernels
        except ProcessLookupError:
            pass
        self.process.wait()
        self._log.close()


# --- JupyterLab through window.jupyterapp -------------------------------------------------------

_JS_NOTEBOOK_READY = """async () => {
  const panel = window.jupyterapp.shell.currentWidget;
  await panel.context.ready;
  await panel.sessionContext.ready;
  return {kernel: panel.sessionContext.session?.kernel?.name ?? null,
          windowing: panel.content.notebookConfig.windowingMode};
}"""

_JS_RUN_ALL = """() => {
  window.__runAll = {done: false, ok: null, error: null};
  window.jupyterapp.commands.execute('notebook:run-all-cells').then(
    ok => { window.__runAll.done = true; window.__runAll.ok = ok; },
    err => { window.__runAll.done = true; window.__runAll.error = String(err); });
}"""

_JS_STATE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = [];
  let number = 0;
  for (const cell of panel.content.model.cells) {
    number++;
    if (cell.type !== 'code') continue;
    cells.push({number: number, source: cell.sharedModel.getSource(), count: cell.executionCount,
                errors: cell.outputs.toJSON().filter(o => o.output_type === 'error')
                                              .map(o => `${o.ename}: ${o.evalue}`)});
  }
  return {runAll: window.__runAll ?? null, kernel: panel.sessionContext.session?.kernel?.status ?? null,
          cells: cells};
}"""


def open_notebook(page, lab_url: str, name: str, timeout_s: float = 120.0) -> dict:
    """Open course notebook `name` in JupyterLab and wait until its kernel is ready."""
    page.goto(f"{lab_url}/lab/tree/{name}", wait_until="domcontentloaded", timeout=timeout_s * 1000)
    page.wait_for_function(
        "name => window.jupyterapp && window.jupyterapp.shell.currentWidget"
        " && window.jupyterapp.shell.currentWidget.context?.path === name", arg=name, timeout=timeout_s * 1000)
    return page.evaluate(_JS_NOTEBOOK_READY)


def run_all_cells(page, timeout_s: float) -> dict:
    """Run > Run All Cells, then wait for the run to finish and the kernel to be idle.

    Returns the notebook state: {"runAll", "kernel", "cells": [{"number", "source", "count", "errors"}]}
    for the code cells; "number" counts all cells from 1, as JupyterLab's status bar does.
    """
    page.evaluate(_JS_RUN_ALL)
    deadline = time.monotonic() + timeout_s
    while True:
        state = page.evaluate(_JS_STATE)
        if state["runAll"]["done"] and state["kernel"] == "idle":
            return state
        if time.monotonic() > deadline:
            pending = [c["number"] for c in state["cells"] if c["source"].strip() and c["count"] is None]
            raise TimeoutError(f"run all cells did not finish within {timeout_s:.0f} s (kernel {state['kernel']}, "
                               f"cells not yet run: {pending})")
        time.sleep(1.0)


def tag_widget_outputs(page) -> int:
    """Mark every output whose model holds a widget view with data-wmlib-widget; returns how many.

    (The widget renderer's node carries no mime type, so the notebook model says which they are.)
    """
    return page.evaluate(f"""() => {{
      const panel = window.jupyterapp.shell.currentWidget;
      let k = 0, number = 0;
      for (const cell of panel.content.widgets) {{
        number++;
        if (cell.model.type !== 'code') continue;
        const outputs = cell.model.outputs;
        for (let j = 0; j < outputs.length; j++) {{
          if (!('{WIDGET_VIEW}' in outputs.get(j).data)) continue;
          const holder = cell.outputArea.widgets[j].node;
          const node = holder.querySelector('.jp-OutputArea-output') ?? holder;
          node.setAttribute('data-wmlib-widget', String(k++));
          node.setAttribute('data-wmlib-cell', String(number));
        }}
      }}
      return k;
    }}""")


def wait_for_widgets(page, timeout_s: float = 30.0) -> None:
    """Wait until no widget output still says 'Loading widget...'."""
    page.wait_for_function(
        f"""() => [...document.querySelectorAll('{WIDGET_OUTPUTS}')]
                   .every(el => !el.innerText.includes('Loading widget'))""", timeout=timeout_s * 1000)


def widget_problems(page) -> list[str]:
    """Messages for every widget output that shows an error, rendered no widget, or shows an image
    stretched beyond its own size (DESIGN section 6: frames are enlarged by nearest-neighbour in
    Python so the pixels stay sharp; a browser-enlarged image is blurry)."""
    return page.evaluate(f"""() => {{
      const out = [];
      document.querySelectorAll('{WIDGET_OUTPUTS}').forEach(el => {{
        const i = `in cell ${{el.getAttribute('data-wmlib-cell')}}`;
        const text = el.innerText;
        const errorView = el.querySelector('.jupyter-widgets-error-widget');  // ipywidgets' view for a failed render
        if (errorView) {{
          errorView.parentElement.click();  // reveals the javascript error in the view
          out.push(`widget ${{i}} failed to render: ${{el.innerText.trim().slice(0, 500)}}`);
        }}
        else if (text.includes('Error displaying widget'))
          out.push(`widget ${{i}}: ${{text.trim().slice(0, 300)}}`);
        else if (!el.querySelector('.jupyter-widgets') && text.trim())  // (empty: a widget closed on purpose,
          out.push(`widget ${{i}} rendered no widget: ${{text.trim().slice(0, 300)}}`);  // e.g. a finished tqdm bar)
        el.querySelectorAll('img').forEach((img, j) => {{  // enlarged by the browser = blurry, not sharp pixels
          if (img.naturalWidth > 0 && img.clientWidth > 1.05 * img.naturalWidth)
            out.push(`widget ${{i}}, image ${{j}}: a ${{img.naturalWidth}}x${{img.naturalHeight}} px image `
                     + `is stretched to ${{img.clientWidth}}x${{img.clientHeight}} px (blurry; give it a width or `
                     + `put it in an HBox)`);
        }});
      }});
      const body = document.body.innerText;
      if (body.includes('Error displaying widget') && out.length === 0)
        out.push('"Error displaying widget" appears on the page');
      return out;
    }}""")


def image_pngs(locator) -> list[bytes]:
    """The pixels every <img> inside `locator` shows, at their own size, as PNG bytes.

    Read through a canvas, so they do not depend on layout, scrolling or what overlaps the image.
    """
    import base64

    urls = locator.evaluate("""el => [...el.querySelectorAll('img')].map(img => {
      if (!img.complete || img.naturalWidth === 0) return null;
      const canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      canvas.getContext('2d').drawImage(img, 0, 0);
      return canvas.toDataURL('image/png');
    })""")
    return [b"" if url is None else base64.b64decode(url.split(",", 1)[1]) for url in urls]


def shutdown_kernel(page) -> None:
    """Shut the notebook's kernel down (frees its memory before the next chapter)."""
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")


# --- pixels -----------------------------------------------------------------------------------------


def pixels(png: bytes):
    """PNG bytes -> uint8 (H, W, 3) array."""
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def image_difference(before: bytes, after: bytes) -> float:
    """Mean absolute pixel difference (0..255) between two PNGs; inf if their sizes differ."""
    if not before or not after:
        return 0.0 if before == after else float("inf")
    a, b = pixels(before), pixels(after)
    if a.shape != b.shape:
        return float("inf")
    return float(abs(a.astype(int) - b.astype(int)).mean())


def save_small_png(png: bytes, path: Path, max_width: int = 1000, colors: int = 128) -> int:
    """Save a screenshot as a compact PNG (at most max_width wide, a palette of `colors`); returns bytes."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    if image.width > max_width:
        image = image.resize((max_width, round(image.height * max_width / image.width)), Image.LANCZOS)
    image = image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)
    return path.stat().st_size
