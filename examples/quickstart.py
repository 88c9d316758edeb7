"""Quickstart: write typed samples, read them back, batch, view through a lens, filter, shuffle.

Run it with ``uv run python examples/quickstart.py [OUT_DIR]`` (the same code as ``atdata demo``;
read it in ``src/atdata/_demo.py``). Without OUT_DIR the shards go to a temporary directory.
"""

import sys

from atdata._demo import run_demo

if __name__ == "__main__":
    summary = run_demo(sys.argv[1] if len(sys.argv) > 1 else None)
    print(
        f"done: {summary['samples_written']} samples, {summary['shards']} shards, {summary['bytes']} bytes"
    )
