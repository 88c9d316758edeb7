"""The quickstart: write typed samples, read them back, batch, view through a lens, filter, shuffle,
then record them in the index (SQLite + local disk) and load and query them by name.

``atdata demo`` and ``examples/quickstart.py`` both run :func:`run_demo`, so the example works from
an installed wheel. Everything happens on local disk (a temporary directory unless ``out`` is
given); nothing else is needed.

Examples:
    >>> import tempfile
    >>> summary = run_demo(tempfile.mkdtemp(), num_samples=20, echo=lambda *_: None)
    >>> summary["samples_written"], summary["shards"], summary["read_back"]
    (20, 2, 20)
    >>> summary["batch_image_shape"], summary["filtered_cats"]
    ((8, 8, 8, 3), 7)
    >>> summary["index_version"], summary["query_dogs_over_half"]
    ('1.0.0', 6)
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from atdata._types import NDArray
from atdata._wire.sample import PackableSample, packable
from atdata.dataset._dataset import Dataset
from atdata.dataset._write import write_samples
from atdata.lens._lens import lens

__all__ = ["ImageSample", "LabelScore", "image_to_label_score", "run_demo"]

LABELS = ("cat", "dog", "bird")


# 1. A sample type: an annotated class made packable (an image array, a label, a score).
@packable
class ImageSample(PackableSample):  # the base is optional; it types __key__, .packed ...
    """One training example: an 8x8 RGB image, its label and a confidence score."""

    image: NDArray
    label: str
    score: float


# 2. A view of it that leaves the pixels out, and the lens between the two.
@packable
class LabelScore:
    """The metadata of an :class:`ImageSample`, without the pixels."""

    label: str
    score: float


@lens
def image_to_label_score(s: ImageSample) -> LabelScore:
    """View an image sample as its label and score."""
    return LabelScore(label=s.label, score=s.score)


@image_to_label_score.putter
def _image_to_label_score_put(v: LabelScore, s: ImageSample) -> ImageSample:
    return ImageSample(image=s.image, label=v.label, score=v.score)


def make_samples(num_samples: int, seed: int = 0) -> list[ImageSample]:
    """Deterministic synthetic samples (the embedded defaults of the demo)."""
    rng = np.random.default_rng(seed)
    return [
        ImageSample(
            image=rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8),
            label=LABELS[i % len(LABELS)],
            score=round(float(rng.random()), 3),
        )
        for i in range(num_samples)
    ]


def run_demo(
    out: str | os.PathLike[str] | None = None,
    *,
    num_samples: int = 64,
    seed: int = 0,
    echo: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Run the quickstart and return a summary of what it did.

    Args:
        out: Directory for the shards (default: a new temporary directory, removed afterwards).
        num_samples: How many samples to write (10 per shard).
        seed: Seed of the synthetic data and of the shuffle.
        echo: Where the progress lines go.

    Returns:
        A dict of figures: samples written, shards, bytes, read back, batch shape, label counts...
    """
    if out is None:
        with tempfile.TemporaryDirectory(prefix="atdata-demo-") as tmp:
            return run_demo(tmp, num_samples=num_samples, seed=seed, echo=echo)
    out = os.fspath(out)

    # 3. Write: 10 samples per shard; each shard appears only once complete, with its sha256.
    pattern = os.path.join(out, "demo-%06d.tar")
    ds = write_samples(
        make_samples(num_samples, seed), pattern, maxcount=10, key="index", progress=False
    )
    infos = ds.list_shard_infos()
    echo(f"wrote {num_samples} samples into {len(infos)} shards under {out}")

    # 4. Read back, typed, with WebDataset brace notation.
    spec = os.path.join(out, f"demo-{{000000..{len(infos) - 1:06d}}}.tar")
    ds = Dataset[ImageSample](spec)
    first = ds.head(1)[0]
    echo(
        f"read back {len(ds)} samples; first: key={first.__key__} label={first.label} "
        f"image={first.image.dtype}{list(first.image.shape)}"
    )

    # 5. Batches stack the arrays with a leading batch dimension and list the other fields.
    batch = next(iter(ds.ordered(batch_size=8)))
    echo(f"a batch of 8: image {tuple(batch.image.shape)}, labels {batch.label[:4]}...")

    # 6. A lens gives a typed view; filters compose with it and with batching.
    views = ds.as_type(LabelScore)
    cats = views.filter(lambda v: v.label == "cat")
    n_cats = sum(1 for _ in cats)
    mean_score = float(np.mean([v.score for v in views]))
    echo(f"through the lens: {n_cats} cats, mean score {mean_score:.3f}")

    # 7. A seeded shuffle gives the same order on every run.
    order = [s.__key__ for s in ds.shuffled(buffer=16, seed=seed)]
    echo(f"shuffled (seed={seed}): first keys {order[:3]}")

    # 8. The index (embedded defaults: SQLite + local disk, no server): write by name with
    #    per-shard manifests, load it back by name, typed from the stored schema, and query it.
    from atdata._load import load_dataset
    from atdata.index import Index, set_default_index

    index = Index(path=os.path.join(out, "index", "index.db"))
    entry = index.write_samples(
        make_samples(num_samples, seed), name="demo-images", maxcount=10, manifest=True,
        description="atdata demo images", license="CC0-1.0", tags=["demo"],
    )  # fmt: skip
    set_default_index(index)
    try:
        named = load_dataset("@local/demo-images", split="train")
        hits = named.query("label = 'dog' AND score > 0.5")
        n_dogs = len(hits.list_locations())
    finally:
        set_default_index(None)
        index.close()
    echo(
        f"index: @local/demo-images@{entry.version} ({entry.num_samples} samples, "
        f"schema {entry.schema_ref}); query label='dog' AND score>0.5 -> {n_dogs} samples"
    )

    counts = Counter(s.label for s in views)
    summary = {
        "out": out,
        "samples_written": num_samples,
        "shards": len(infos),
        "bytes": sum(i.size for i in infos),
        "read_back": len(ds),
        "first_key": first.__key__,
        "batch_image_shape": tuple(batch.image.shape),
        "filtered_cats": n_cats,
        "mean_score": round(mean_score, 3),
        "label_counts": dict(sorted(counts.items())),
        "shuffled_first_keys": order[:3],
        "index_version": entry.version,
        "query_dogs_over_half": n_dogs,
    }
    echo(f"labels: {summary['label_counts']}")
    return summary
