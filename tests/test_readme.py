"""The README's Python snippets: every block parses, and the self-contained ones run as written.

A block runs in a fresh directory (``ATDATA_HOME`` there too) after the setup its section
assumes (the names the prose around it takes as given: ``samples``, ``ds``, ``tokenize`` ...).
When its last statement is a comparison (``ImageSample.from_bytes(s.packed) == s``), it must
hold. Blocks that need a network, a PDS, a GPU or hours of data (federation, ingest from S3,
torch) are only parsed.
"""

from __future__ import annotations

import ast
import pathlib
import re
import sys
import types

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[tuple[str, str]]:
    """``(section heading, code)`` of every ``python`` block, in order."""
    out, heading = [], ""
    for m in re.finditer(
        r"^(#{2,3} [^\n]+)$|^```python\n(.*?)^```", README.read_text(), re.M | re.S
    ):
        if m.group(1):
            heading = m.group(1).lstrip("# ").strip()
        else:
            out.append((heading, m.group(2)))
    return out


_SAMPLE_TYPE = next(code for head, code in _blocks() if head == "Samples")
_IMAGES = (
    _SAMPLE_TYPE
    + "\nsamples = [ImageSample(image=np.full((3, 4, 4), i, 'u1'), label='cd'[i % 2], score=i / 10)"
    "\n           for i in range(10)]"
    "\nds = atdata.write_samples(samples, 'img/data-%06d.tar', maxcount=4, manifest=True)\n"
)

# section -> (setup run first, replacements applied to the block)
RUNNABLE: dict[str, tuple[str, dict[str, str]]] = {
    "Samples": ("", {}),
    "Lenses": (_IMAGES, {}),
    "load_dataset": (
        _IMAGES
        + "atdata.write_samples(samples[:6], 'data/train-000.tar')\n"
        + "atdata.write_samples(samples[6:], 'data/test-000.tar')\n",
        {},
    ),
    "Index and storage": (_IMAGES, {}),
    "Manifests and queries": (
        "import atdata\n@atdata.packable\nclass Shot:\n    label: str\n    confidence: float\n"
        "samples = [Shot(label=['dog', 'cat', 'cow'][i % 3], confidence=i / 29) for i in range(30)]\n",
        {},
    ),
    "Arrow, pandas, polars, Hugging Face": (
        _IMAGES
        + "import pandas as pd\nindex = atdata.Index()\n"
        + "df = pd.DataFrame({'label': ['a', 'b'], 'score': [1.0, 2.0]})\n",
        {"hf = ds.to_hf()": "hf = None"},  # importing `datasets` takes seconds: test_arrow_hf.py
    ),
    "Ingest (JSONL, CSV, parquet, Hugging Face)": (
        "import json, os, zstandard, atdata\nos.makedirs('raw')\n"
        "rows = [{'event_id': i % 180, 'duration': -1 if i == 7 else i, 'kind': 'ab'[i % 2]}"
        " for i in range(200)]\n"
        "text = ''.join(json.dumps(r) + '\\n' for r in rows).encode()\n"
        "open('raw/events-0.jsonl.zst', 'wb').write(zstandard.ZstdCompressor().compress(text))\n",
        {"s3://raw/": "raw/"},  # the same files, local
    ),
    "Viewer": (
        _IMAGES + "import shutil\nshutil.copytree('img', 'data/pets')\n"
        "atdata.Index().write(samples, name='mnist')\n",
        {},
    ),
    "Watch a directory": (
        "import atdata\n@atdata.packable\nclass Text:\n    text: str\n"
        "def tokenize(s):\n    return {'n': len(s.text.split())}\n"
        "atdata.write_samples([Text(text=f'a b {i}') for i in range(6)], 'incoming/in-%03d.tar',"
        " maxcount=3, manifest=True)\n",
        {"w.run()": "report = w.poll_once()"},
    ),
}


def test_every_python_block_parses():
    blocks = _blocks()
    assert len(blocks) >= 12
    for head, code in blocks:
        try:
            ast.parse(code)
        except SyntaxError as exc:  # pragma: no cover - the failure message
            pytest.fail(f"README section {head!r}: {exc}")


@pytest.mark.parametrize("section", sorted(RUNNABLE))
def test_block_runs_as_written(section, tmp_path, monkeypatch):
    setup, replace = RUNNABLE[section]
    (code,) = [c for head, c in _blocks() if head == section]
    for old, new in replace.items():
        assert old in code, f"README section {section!r} no longer has {old!r}"
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ATDATA_HOME", str(tmp_path / "home"))
    module = types.ModuleType("readme_snippets")  # classes defined here need a real module
    monkeypatch.setitem(sys.modules, module.__name__, module)
    ns = module.__dict__
    exec(compile(setup, f"<setup of {section}>", "exec"), ns)
    tree = ast.parse(code)
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    if last is not None and isinstance(last.value, ast.Compare):
        tree.body.pop()
    exec(compile(tree, f"<README: {section}>", "exec"), ns)
    if last is not None and isinstance(last.value, ast.Compare):
        expr = ast.Expression(last.value)
        assert eval(compile(expr, f"<README: {section}>", "eval"), ns), ast.unparse(last)
    if section == "load_dataset":
        assert sorted(ns["dd"]) == ["test", "train"] and len(ns["train"]) == 6
    if section == "Index and storage":
        assert (ns["entry"].version, ns["entry"].num_samples, len(ns["ds"])) == ("1.0.0", 10, 10)
    if section == "Manifests and queries":
        assert [s.label for s in ns["dogs"]] == ["dog"] and ns["r"].stats.rows_matched == 1
    if section == "Ingest (JSONL, CSV, parquet, Hugging Face)":
        r = ns["report"]  # row 187 repeats id 7, whose first row was invalid: not a duplicate
        got = (r.rows_read, r.rows_written, r.duplicates, r.rejected, len(ns["ds"]))
        assert got == (200, 180, 19, {"validate": 1}, 180)
    if section == "Lenses":
        assert [v.label for v in ns["views"]][:3] == ["c", "d", "c"]
    if section == "Arrow, pandas, polars, Hugging Face":
        got = [(b.label, b.image.dtype.str, b.image.tobytes()) for b in ns["back"]]
        assert got == [(s.label, "|u1", s.image.tobytes()) for s in ns["ds"]]
        assert ns["t"].num_rows == 10 and ns["index"].get_dataset("digits").num_samples == 2
    if section == "Watch a directory":
        assert ns["report"].processed == ["in-000.tar", "in-001.tar"]
