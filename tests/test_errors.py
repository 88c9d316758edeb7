"""Every error atdata raises on purpose is an AtdataError and also the fitting built-in: a scan of
the source for raises of bare built-in exceptions, and the errors of indexing a dataset."""

from __future__ import annotations

import ast
import builtins
import pathlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import atdata
from atdata import ArgumentTypeError, AtdataError, SampleIndexError, UnknownFieldError

SRC = pathlib.Path(atdata.__file__).parent
_BUILTIN = {
    n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)
} - {"NotImplementedError"}  # abstract methods: not raised on bad input

# (module, function, built-in) raises that stay bare, each with why: protocol answers that callers
# expect as the plain type, abstract methods, and internal signals caught right where they are
# raised (translated there into an AtdataError, or into a fallback).
ALLOWED = {
    ("_lazy.py", "__getattr__", "AttributeError"),  # module attribute protocol
    ("providers/__init__.py", "__getattr__", "AttributeError"),  # module attribute protocol
    ("_wire/sample.py", "__getattr__", "AttributeError"),  # dunder/private names (protocol)
    ("dataset/_batch.py", "__getattr__", "AttributeError"),  # private names (protocol)
    ("manifest/_expr.py", "__getattr__", "AttributeError"),  # private names (protocol)
    ("stores/_s3client.py", "__getattr__", "AttributeError"),  # not yet set (protocol)
    ("index/_schemas.py", "__getattr__", "AttributeError"),  # schema namespace (hasattr)
    ("_load.py", "__getattr__", "AttributeError"),  # names Dataset lacks too (protocol)
    ("_shards/compact.py", "__getitem__", "IndexError"),  # sequence protocol (internal list)
    ("_shards/bodyread.py", "_recv_all", "TimeoutError"),  # a socket's own timeout signal
    ("cli/_services.py", "_redis_command", "ConnectionError"),  # caught by its caller
    ("dataset/_hf_cache.py", "acquire", "FileNotFoundError"),  # caught in place
    ("index/_gc.py", "_delete_s3", "OSError"),  # its caller records the path as skipped
    ("dataset/_pool.py", "_np_default", "TypeError"),  # msgpack's default hook; caught
    ("atmosphere/_records.py", "unpack_metadata", "ValueError"),  # caught -> DecodeError
    ("atmosphere/_client.py", "__reduce__", "TypeError"),  # pickle protocol refusal
    ("manifest/_arrowvals.py", "string_lists", "TypeError"),  # caller -> IntegrityError
    ("manifest/_read.py", "_parse_header", "ValueError"),  # caught -> IntegrityError
    ("manifest/_sqlnan.py", "_where_of", "ValueError"),  # caller falls back
    ("providers/_redis_legacy.py", "entry_from_legacy", "TypeError"),  # caught -> DecodeError
    ("index/_entry.py", "_cbor_head", "ValueError"),  # entry identity: str/list/dict only
    ("index/_entry.py", "_dag_cbor", "TypeError"),  # entry identity: str/list/dict only
    ("viewer/_png.py", "encode_png", "ValueError"),  # internal: the viewer passes uint8
    ("testing/_atmosphere.py", "get_record", "KeyError"),  # test double of the atproto client
    ("testing/_atmosphere.py", "get_blob", "KeyError"),  # test double of the atproto client
    ("testing/_providers.py", "check_explicit_versions", "AssertionError"),  # a test's verdict
    ("testing/_providers.py", "check_schemas", "AssertionError"),  # a test's verdict
    ("testing/_providers.py", "run_provider_conformance", "AssertionError"),  # a test's verdict
}


class _Raises(ast.NodeVisitor):
    """``(module, enclosing function, built-in)`` of each ``raise <built-in>`` in a module."""

    def __init__(self, rel: str) -> None:
        self.rel = rel
        self.stack: list[str] = []
        self.found: set[tuple[str, str, str]] = set()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Raise(self, node: ast.Raise) -> None:
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if isinstance(exc, ast.Name) and exc.id in _BUILTIN:
            where = self.stack[-1] if self.stack else "<module>"
            self.found.add((self.rel, where, exc.id))


def _bare_raises() -> set[tuple[str, str, str]]:
    found: set[tuple[str, str, str]] = set()
    for path in sorted(SRC.rglob("*.py")):
        v = _Raises(path.relative_to(SRC).as_posix())
        v.visit(ast.parse(path.read_text(encoding="utf-8")))
        found |= v.found
    return found


def test_no_bare_builtin_raises_outside_the_reviewed_list():
    found = _bare_raises()
    assert sorted(found - ALLOWED) == [], (
        "raise an error of atdata._errors instead (or, for a signal caught right where it is "
        "raised, add it to ALLOWED with the reason)"
    )
    assert sorted(ALLOWED - found) == []  # a stale entry: remove it


def test_every_error_class_is_an_atdata_error_and_a_builtin():
    from atdata import _errors

    for name in _errors.__all__:
        cls = getattr(_errors, name)
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            continue
        assert issubclass(cls, AtdataError), name
        builtin = [b for b in cls.__mro__ if b.__name__ in _BUILTIN and b is not Exception]
        if cls not in (AtdataError, _errors.AppViewError):
            assert builtin, f"{name} also needs the fitting built-in"


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    d = tmp_path_factory.mktemp("errs")
    return atdata.write_samples(
        [{"x": i} for i in range(5)], str(d / "e-%02d.tar"), maxcount=2, key="index", fsync=False
    )


def test_index_errors_are_atdata_errors(ds):
    for bad in (lambda: ds[5], lambda: ds[-6], lambda: list(ds.select([9])), lambda: ds[0:2][2]):
        with pytest.raises(SampleIndexError) as ei:
            bad()
        assert isinstance(ei.value, IndexError) and isinstance(ei.value, AtdataError)
    with pytest.raises(SampleIndexError, match="sample index 5 out of range for a dataset of 5"):
        ds[5]
    assert SampleIndexError.__mro__[1:3] == (AtdataError, IndexError)


def test_length_unknown_is_an_atdata_type_error(ds):
    with pytest.raises(atdata.LengthUnknownError, match="filtered dataset") as ei:
        len(ds.filter(lambda s: s["x"] > 1))
    assert isinstance(ei.value, TypeError)
    assert [s["x"] for s in list(ds.filter(lambda s: s["x"] > 1))] == [2, 3, 4]  # list() falls back


def test_dictsample_unknown_field_is_key_and_attribute_error(ds):
    s = ds[1]
    with pytest.raises(
        UnknownFieldError, match=r"no field 'y' \(sample '00000001'\); fields: \['x'\]"
    ):
        s["y"]
    with pytest.raises(KeyError):
        s["y"]
    with pytest.raises(AttributeError, match="no field 'y'"):
        _ = s.y
    assert not hasattr(s, "y") and getattr(s, "y", 7) == 7
    batch = next(ds.ordered(batch_size=2))
    with pytest.raises(UnknownFieldError, match=r"first key: '00000000'.* no field 'y'"):
        _ = batch.y
    assert not hasattr(batch, "y")


def test_wrong_argument_types_are_atdata_errors(tmp_path):
    with pytest.raises(ArgumentTypeError, match="needs the shards"):
        atdata.Dataset()
    with pytest.raises(ArgumentTypeError, match="lacks debug"):
        atdata.configure_logging(object())
    with pytest.raises(atdata.DataNotFoundError, match="not an NSID"):
        atdata.lexicons.get_lexicon_path("nope")
    with pytest.raises(FileNotFoundError, match="atdata ships"):
        atdata.lexicons.load_lexicon("a.b.nothere")


# -- positions: integers or a boolean mask; floats refused, not truncated ----------------------
@pytest.mark.parametrize(
    "bad, shown",
    [
        ([1.5], "1.5 (float) at entry 0"),
        ([0, 2.0], "2.0 (float) at entry 1"),
        (np.array([1.0, 2.0]), "1.0 (float) at entry 0"),
        ([None], "None (NoneType) at entry 0"),
        (["00000001"], "'00000001' (str) at entry 0"),
    ],
)
def test_select_refuses_non_integer_positions(ds, bad, shown):
    with pytest.raises(ArgumentTypeError, match="sample positions must be integers") as ei:
        ds.select(bad)
    assert shown in str(ei.value)
    assert isinstance(ei.value, TypeError)


def test_select_refuses_single_values_and_mixed_masks(ds):
    with pytest.raises(ArgumentTypeError, match=r"got 3 \(int\); for one sample use ds\[i\]"):
        ds.select(3)
    with pytest.raises(ArgumentTypeError, match="got 'ab'"):
        ds.select("ab")
    with pytest.raises(ArgumentTypeError, match="1 booleans mixed with 1 integers"):
        ds.select([True, 3])
    with pytest.raises(ArgumentTypeError, match=r"1-D .* shape \(1, 2\)"):
        ds.select(np.array([[0, 1]]))
    with pytest.raises(ArgumentTypeError, match=r"got 1.5 \(float\)"):
        ds[1.5]
    with pytest.raises(ArgumentTypeError, match=r"ds.select"):
        ds[[0, 1]]
    with pytest.raises(ArgumentTypeError, match="slice bounds must be integers"):
        ds[0:1.5]


def test_boolean_masks_select_like_numpy(ds):
    mask = [True, False, True, False, True]
    assert [s["x"] for s in ds.select(mask)] == [0, 2, 4]
    assert [s["x"] for s in ds.select(np.array(mask))] == [0, 2, 4]
    assert [s["x"] for s in ds.select(np.array([False] * 5))] == []
    sub = ds.subset([4, 3, 1])
    assert [s["x"] for s in sub.select([False, True, True])] == [3, 1]
    with pytest.raises(SampleIndexError, match="mask of 3 entries for a dataset of 5 samples"):
        ds.select(mask[:3])
    with pytest.raises(SampleIndexError, match="mask of 5 entries for a selection of 3"):
        sub.select(mask)
    assert [s["x"] for s in ds.select(np.array([3, -1], dtype=np.int8))] == [3, 4]
    assert [s["x"] for s in ds.select(np.array([0, 4], dtype=np.uint64))] == [0, 4]


@given(st.lists(st.booleans(), min_size=5, max_size=5))
def test_mask_property(ds, mask):
    want = [i for i, b in enumerate(mask) if b]
    assert [s["x"] for s in ds.select(mask)] == want
    assert [s["x"] for s in ds.select(np.array(mask, dtype=bool))] == want


def test_torch_tensors_as_positions(ds):
    torch = pytest.importorskip("torch")
    assert [s["x"] for s in ds.select(torch.tensor([4, 0]))] == [4, 0]
    assert [s["x"] for s in ds.select(torch.tensor([1, 0, 0, 0, 1]).bool())] == [0, 4]
    with pytest.raises(ArgumentTypeError, match="at entry 0"):
        ds.select(torch.tensor([0.5]))


@pytest.mark.parametrize(
    "call, msg",
    [
        (lambda ds: ds.head(-1), "n must be >= 0, got -1"),
        (lambda ds: ds.to_dict(limit=-2), "limit must be >= 0, got -2"),
        (
            lambda ds: list(ds.ordered(batch_size=2.5)),
            r"batch_size must be an integer >= 1, got 2.5",
        ),
        (lambda ds: list(ds.ordered(batch_size=True)), r"got True \(bool\)"),
        (lambda ds: list(ds.shuffled(batch_size=0)), "batch_size must be >= 1, got 0"),
    ],
)
def test_counts_are_checked(ds, call, msg):
    with pytest.raises(atdata.ConfigError, match=msg):
        call(ds)


def test_positions_past_the_end_are_refused_when_selected(ds):
    with pytest.raises(SampleIndexError, match="sample index 7 out of range for a dataset of 5"):
        ds.select([0, 7, 9])  # local shards: counted cheaply, so len() is never wrong
    assert len(ds.select([4, 0])) == 2
    with pytest.raises(atdata.ConfigError, match=r"ds\[::0\]: a slice step cannot be zero"):
        ds[::0]
    with pytest.raises(ArgumentTypeError, match=r"ds\[0:1.5\]: slice bounds"):
        ds[0:1.5]
