"""Upstream manifests read as ours: real tar offsets, and the samples they miss read from the shard.

Upstream atdata 0.7 records ``__offset__`` as a running sum of payload sizes (not a tar offset)
and can leave samples out of a shard's manifest. Before such rows are queried, each key's offset
and size are replaced with the ones a header scan of the shard finds, and the samples the
manifest misses are read from the shard, so a query sees every sample. Done in Arrow (no pandas).

Examples:
    >>> import os, tempfile, atdata, pyarrow as pa
    >>> d = tempfile.mkdtemp()
    >>> ds = atdata.write_samples([{"x": i} for i in range(3)], os.path.join(d, "a.tar"), key="index")
    >>> rows = pa.table({"__key__": ["00000002"], "__offset__": [0], "__size__": [9], "x": [2]})
    >>> t = repair_legacy(rows, shard=ds.list_shards()[0], json_path="a.manifest.json",
    ...                   kinds={"x": "numeric"}, source=ds.source)
    >>> t.column("__key__").to_pylist(), t.column("x").to_pylist()
    (['00000000', '00000001', '00000002'], [0, 1, 2])
"""

from __future__ import annotations

import logging
from typing import Any

from atdata._errors import IntegrityError
from atdata._shards.sources import is_remote
from atdata.manifest._arrowvals import array_of, empty_table, string_lists

__all__ = ["repair_legacy", "shard_members"]

log = logging.getLogger("atdata")


def shard_members(shard: str, source: Any) -> dict[str, tuple[int, int]]:
    """Sample key -> ``(offset, size)`` of its ``.msgpack`` member, from a header scan."""
    from atdata._shards.tar import iter_tar, scan_tar_file, split_member_name

    where = f" in shard {shard}"
    if not is_remote(shard):
        entries = scan_tar_file(shard, where)
    else:
        f = source.open_shard(shard)
        try:
            entries = [(n, o, len(d)) for n, o, d in iter_tar(f.read, where)]
        finally:
            f.close()
    out = {}
    for name, off, size in entries:
        key, ext = split_member_name(name)
        if ext == "msgpack":
            out[key] = (off, size)
    return out


def _replace(table: Any, name: str, arr: Any) -> Any:
    return table.set_column(table.column_names.index(name), name, arr)


def repair_legacy(
    table: Any, *, shard: str, json_path: str, kinds: dict[str, str], source: Any
) -> Any:
    """An upstream manifest's rows with real tar offsets, plus rows for the samples it misses
    (in the shard's order).

    Args:
        table: The manifest's rows (set fields already ``list<string>``).
        shard: The shard the manifest sits beside.
        json_path: The manifest header (for messages).
        kinds: Field -> manifest kind (which fields the added rows carry).
        source: Reads the shard's missing samples (``read_range``).

    Raises:
        IntegrityError: When the manifest lists keys the shard does not hold.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    fix = f"rebuild it with: atdata manifest build {shard} --force"
    members = shard_members(shard, source)
    if not table.num_columns:
        table = empty_table([("__key__", "string"), ("__offset__", "int64"), ("__size__", "int64")])
    keys = table.column("__key__").to_pylist()
    known = set(keys)
    stray = known - set(members)
    if stray:
        raise IntegrityError(
            f"manifest {json_path} lists {len(stray)} key(s) shard {shard} does not hold "
            f"(e.g. {sorted(stray)[0]!r}); {fix}"
        )
    if keys:
        table = _replace(table, "__offset__", array_of([members[k][0] for k in keys]))
        table = _replace(table, "__size__", array_of([members[k][1] for k in keys]))
    missing = [k for k in members if k not in known]
    if not missing:
        return table
    log.warning(
        "manifest %s misses %d of the %d samples in %s (written by upstream atdata); reading them "
        "from the shard. Rebuild it: atdata manifest build %s --force",
        json_path,
        len(missing),
        len(members),
        shard,
        shard,
    )
    from atdata._wire.sample import unpack_payload

    read = getattr(source, "read_range", None)
    raws = []
    for k in missing:
        off, size = members[k]
        if read is not None:
            raws.append(unpack_payload(read(shard, off, size), f" in shard {shard}, sample {k!r}"))
        else:  # pragma: no cover - sources without ranged reads
            raws.append({})
    cols = {
        "__key__": array_of(missing),
        "__offset__": array_of([members[k][0] for k in missing]),
        "__size__": array_of([members[k][1] for k in missing]),
    }
    for name, kind in kinds.items():
        vals = [r.get(name) for r in raws]
        if kind == "set":
            cols[name] = string_lists([None if v is None else [str(x) for x in v] for v in vals])
        elif all(v is None for v in vals) and name in table.column_names:
            cols[name] = pa.nulls(len(vals), table.column(name).type)
        else:
            cols[name] = array_of(vals)
    extra = pa.Table.from_arrays(list(cols.values()), names=list(cols))
    out = pa.concat_tables([table, extra], promote_options="permissive")
    order = {k: i for i, k in enumerate(members)}
    rank = array_of([order[k] for k in out.column("__key__").to_pylist()])
    return out.take(pc.sort_indices(rank))
