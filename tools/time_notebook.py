"""Run a chapter on a fresh kernel and print each code cell's wall time: how the chapters' compute times are measured.

    python tools/time_notebook.py course/05_dream.ipynb                 # default size (unset WMLIB_FAST first)
    WMLIB_FAST=1 python tools/time_notebook.py course/05_dream.ipynb    # fast mode, as CI runs it
    python tools/time_notebook.py course/05_dream.ipynb --out /tmp/05_run.ipynb   # keep the outputs

The kernel starts in the notebook's own folder, as in JupyterLab. Prints one line per code cell (its index among
all cells, seconds, its first line) as it finishes, then the total. A cell that raises stops the run with
nbclient's error, which names the cell.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebook", type=Path)
    p.add_argument("--out", type=Path, default=None, help="write the executed notebook here")
    p.add_argument("--timeout", type=int, default=1800, help="seconds one cell may take")
    args = p.parse_args(argv)
    nb = nbformat.read(args.notebook, as_version=4)
    client = NotebookClient(nb, timeout=args.timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(args.notebook.resolve().parent)}})
    start = time.perf_counter()
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            t0 = time.perf_counter()
            client.execute_cell(cell, i)
            first = cell.source.splitlines()[0][:70] if cell.source.strip() else ""
            print(f"cell {i:3d} {time.perf_counter() - t0:8.1f} s  {first}", flush=True)
    print(f"total {time.perf_counter() - start:.0f} s", flush=True)
    if args.out is not None:
        nbformat.write(nb, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
