"""Lenses: @lens/@putter, composition, the LensNetwork, Dataset.as_type, and the lens laws."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import atdata
from atdata import DictSample, Lens, LensNetwork, LensNotFoundError
from atdata.testing import assert_lens_laws, check_lens_laws, strategy_for


@atdata.packable
class Photo:
    image: atdata.NDArray
    label: str
    score: float
    note: str | None = None


@atdata.packable
class Meta:
    label: str
    score: float


@atdata.packable
class Label:
    label: str


@dataclasses.dataclass
class Summary:  # not @packable: reachable from DictSample only through registered lenses
    text: str


@atdata.lens
def photo_meta(p: Photo) -> Meta:
    return Meta(label=p.label, score=p.score)


@photo_meta.putter
def _photo_meta_put(v: Meta, p: Photo) -> Photo:
    return Photo(image=p.image, label=v.label, score=v.score, note=p.note)


@atdata.lens
def meta_label(m: Meta) -> Label:
    return Label(label=m.label)


@meta_label.putter
def _meta_label_put(v: Label, m: Meta) -> Meta:
    return Meta(label=v.label, score=m.score)


@atdata.lens
def label_summary(x: Label) -> Summary:
    return Summary(text=f"<{x.label}>")


def _photo(i: int) -> Photo:
    return Photo(image=np.full((2, 2), i, dtype="u1"), label=["cat", "dog"][i % 2], score=i / 4)


# -- basics -----------------------------------------------------------------------------------


def test_lens_get_put_and_types():
    p = _photo(3)
    assert photo_meta.source_type is Photo and photo_meta.view_type is Meta
    assert photo_meta.source is Photo and photo_meta.view is Meta  # short aliases
    assert photo_meta.__name__ == "photo_meta" and photo_meta.__wrapped__ is photo_meta._get
    assert photo_meta(p) == Meta(label="dog", score=0.75)
    back = photo_meta.put(Meta(label="owl", score=9.0), p)
    assert back == Photo(image=p.image, label="owl", score=9.0)
    assert repr(photo_meta) == "Lens(photo_meta: Photo -> Meta)"
    assert label_summary.has_putter is False
    # no putter: the trivial putter hands back the very source it was given
    src = Label(label="y")
    assert label_summary.put(Summary(text="x"), src) is src


def test_composition_get_and_put():
    both = photo_meta | meta_label
    assert both.source_type is Photo and both.view_type is Label
    assert both.name == both.__name__ == "photo_meta | meta_label"
    assert repr(meta_label @ photo_meta) == "Lens(photo_meta | meta_label: Photo -> Label)"
    p = _photo(2)
    assert both.get(p) == Label(label="cat")
    assert both.put(Label(label="emu"), p) == Photo(image=p.image, label="emu", score=0.5)
    no_put = meta_label | label_summary
    m = Meta(label="a", score=1.0)
    assert no_put.get(m) == Summary(text="<a>")
    assert not no_put.has_putter and no_put.put(Summary(text="z"), m) is m
    assert (label_summary @ meta_label).get(m) == Summary(text="<a>")


def test_composition_refuses_non_lenses():
    with pytest.raises(TypeError):
        photo_meta | (lambda m: m)
    with pytest.raises(TypeError):
        photo_meta @ 3


def test_getter_must_take_exactly_one_parameter():
    def two(a: Meta, b: int) -> Label:
        return Label(label=a.label)

    def none() -> Label:
        return Label(label="")

    with pytest.raises(
        ValueError, match=r"exactly one parameter \(the source\), got 2: \['a', 'b'\]"
    ):
        Lens(two)
    with pytest.raises(atdata.ConfigError, match=r"exactly one parameter \(the source\), got 0"):
        Lens(none)


def test_unannotated_getter_is_a_config_error():
    with pytest.raises(atdata.ConfigError, match="annotate the getter's parameter"):
        Lens(lambda s: s)
    with pytest.raises(atdata.ConfigError, match="pass source= and view= explicitly"):
        Lens(_bad_hint_getter)


def _bad_hint_getter(s: NoSuchType) -> Label:  # type: ignore[name-defined]  # noqa: F821
    return Label(label="")


def test_lens_over_types_defined_in_a_function():
    net = LensNetwork.isolated()

    @atdata.packable
    class Inner:
        x: int

    @atdata.packable
    class Outer:
        x: int
        y: int

    @atdata.lens(network=net)
    def outer_inner(o: Outer) -> Inner:
        return Inner(x=o.x)

    assert outer_inner.source_type is Outer and outer_inner.view_type is Inner
    assert net.find(Outer, Inner) is outer_inner is net.transform(Outer, Inner)
    with pytest.raises(LensNotFoundError):  # registered on `net` only
        LensNetwork().transform(Outer, Inner)


# -- the network ------------------------------------------------------------------------------


def _chain_net():
    net = LensNetwork.isolated()
    types = {n: type(n, (), {}) for n in "ABCDE"}

    def edge(a: str, b: str) -> Lens:
        return net.register(
            Lens(
                lambda s: f"{s}>{b}",
                source=types[a],
                view=types[b],
                name=f"{a.lower()}_{b.lower()}",
            )
        )

    return net, types, edge


def test_network_composes_a_chain():
    net, t, edge = _chain_net()
    edge("A", "B")
    edge("B", "C")
    lz = net.find(t["A"], t["C"])
    assert lz.name == "a_b | b_c"
    assert lz.get("s") == "s>B>C"


def test_network_prefers_the_shorter_chain():
    net, t, edge = _chain_net()
    edge("A", "B")  # registered first: A -> B -> C -> D is found first by a depth-first walk
    edge("B", "C")
    edge("C", "D")
    edge("A", "E")
    edge("E", "D")
    lz = net.find(t["A"], t["D"])
    assert lz.name == "a_e | e_d"
    assert lz.get("s") == "s>E>D"
    edge("A", "D")
    assert net.find(t["A"], t["D"]).name == "a_d"


def test_every_packable_is_reachable_from_dict_sample():
    net = LensNetwork.isolated()  # empty: the implicit decode lens does it
    p = _photo(1)
    d = DictSample.from_bytes(p.packed)
    for view, expected in [
        (Photo, p),
        (Meta, Meta(label="dog", score=0.25)),
        (Label, Label(label="dog")),
    ]:
        lz = net.find(DictSample, view)
        assert lz.name == f"DictSample->{view.__name__}"
        assert lz.get(d) == expected


def test_dict_sample_then_registered_chain():
    # Summary is not packable: DictSample -> Label (decode) -> Summary (registered)
    lz = LensNetwork().find(DictSample, Summary)
    assert lz.name == "DictSample->Label | label_summary"
    assert lz.get(DictSample(label="cat", other=1)) == Summary(text="<cat>")


def test_dict_sample_chain_is_shortest():
    net = LensNetwork.isolated()

    @atdata.packable
    class A:
        v: str

    @atdata.packable
    class B:
        v: str

    @dataclasses.dataclass
    class Far:
        v: str

    net.register(Lens(lambda a: B(v=a.v + "b"), source=A, view=B, name="a_b"))
    net.register(Lens(lambda b: Far(v=b.v + "!"), source=B, view=Far, name="b_far"))
    lz = net.find(DictSample, Far)
    assert lz.name == "DictSample->B | b_far"  # not DictSample->A | a_b | b_far
    assert lz.get(DictSample(v="x")) == Far(v="x!")


def test_lens_not_found_lists_lenses_and_stub():
    with pytest.raises(LensNotFoundError) as ei:
        LensNetwork().find(Meta, Photo)
    msg = str(ei.value)
    assert msg.startswith(
        "No lens transforms Meta into Photo. Lenses from Meta: meta_label (Meta -> Label). "
    )
    assert (
        "    @atdata.lens\n    def meta_to_photo(source: Meta) -> Photo:\n        return Photo(...)"
        in msg
    )
    assert isinstance(ei.value, ValueError) and isinstance(ei.value, LookupError)
    with pytest.raises(LensNotFoundError, match="No lenses are registered from Summary"):
        LensNetwork().find(Summary, Label)


def test_network_is_one_shared_registry():
    assert LensNetwork() is LensNetwork() is LensNetwork.default()
    assert LensNetwork().transform(Photo, Meta) is photo_meta
    assert photo_meta in LensNetwork().list_lenses()
    iso = LensNetwork.isolated()
    assert iso is not LensNetwork() and iso.list_lenses() == []


def test_registry_maps_type_pairs_to_registered_lenses():
    # upstream's lens examples iterate LensNetwork()._registry.items() as ((src, view), lens)
    shown = {
        (src.__name__, view.__name__): lz.__name__
        for (src, view), lz in LensNetwork()._registry.items()
        if src in (Photo, Meta)
    }
    assert shown[("Photo", "Meta")] == "photo_meta" and shown[("Meta", "Label")] == "meta_label"
    iso = LensNetwork.isolated()
    assert iso._registry == {}
    iso.register(photo_meta)
    assert iso._registry == {(Photo, Meta): photo_meta}
    iso._registry.clear()  # a copy
    assert iso.list_lenses() == [photo_meta]


def test_transform_is_direct_only_find_composes():
    # Photo -> Meta -> Label is registered as two lenses: find composes them, transform does not
    assert LensNetwork().find(Photo, Label).name == "photo_meta | meta_label"
    with pytest.raises(
        ValueError, match=r"No lens transforms Photo into Label\. Lenses from Photo: photo_meta"
    ):
        LensNetwork().transform(Photo, Label)


def test_identity_lens():
    lz = LensNetwork().find(Meta, Meta)
    m = Meta(label="a", score=1.0)
    assert lz.get(m) is m and lz.put(Meta(label="b", score=2.0), m) == Meta(label="b", score=2.0)
    ident = Lens.identity(Photo)
    assert ident.source_type is Photo and ident.view_type is Photo and ident.has_putter
    p = _photo(1)
    assert (ident | photo_meta).get(p) == photo_meta.get(p) == (photo_meta @ ident).get(p)
    q = Meta(label="q", score=0.5)
    assert (photo_meta | Lens.identity(Meta)).put(q, p) == photo_meta.put(q, p)


# -- Dataset.as_type end to end ------------------------------------------------------------


@pytest.fixture
def photo_shards(tmp_path):
    atdata.write_samples(
        [_photo(i) for i in range(10)], str(tmp_path / "p-%02d.tar"), maxcount=4, key="index"
    )
    return str(tmp_path / "p-{00..02}.tar")


def test_as_type_end_to_end(photo_shards):
    ds = atdata.Dataset[Photo](photo_shards)
    labels = ds.as_type(Label)
    got = list(labels)
    assert [x.label for x in got] == ["cat", "dog"] * 5
    assert all(type(x) is Label for x in got)
    assert [x.__key__ for x in got][:3] == ["00000000", "00000001", "00000002"]
    # untyped -> non-packable view through DictSample -> Label -> Summary
    summaries = list(atdata.Dataset(photo_shards).as_type(Summary))
    assert [s.text for s in summaries[:2]] == ["<cat>", "<dog>"]
    # untyped straight to a packable view (decode by schema)
    metas = list(atdata.Dataset(photo_shards).as_type(Meta))
    assert metas[5] == Meta(label="dog", score=1.25)


def test_as_type_keeps_filters_under_batching(photo_shards):
    ds = atdata.Dataset[Photo](photo_shards).filter(lambda p: p.score >= 1.0).as_type(Meta)
    batches = list(ds.shuffled(batch_size=3, seed=7))
    scores = sorted(s for b in batches for s in b.score)
    assert scores == [1.0, 1.25, 1.5, 1.75, 2.0, 2.25]
    assert [len(b) for b in batches] == [3, 3]


def test_as_type_without_a_lens_raises(photo_shards):
    with pytest.raises(LensNotFoundError, match="No lens transforms Label into Photo"):
        atdata.Dataset[Label](photo_shards).as_type(Photo)


# -- the lens laws ----------------------------------------------------------------------------


def test_project_lenses_obey_the_laws_on_examples():
    photos = [_photo(i) for i in range(3)] + [
        Photo(image=np.zeros(0, "f4"), label="", score=-1.5, note="n")
    ]
    metas = [Meta(label="x", score=0.0), Meta(label="", score=3.5)]
    check_lens_laws(photo_meta, photos, metas)
    check_lens_laws(meta_label, metas, [Label(label="q"), Label(label="")])
    check_lens_laws(photo_meta | meta_label, photos, [Label(label="z")])
    check_lens_laws(Lens.identity(Meta), metas, metas)


def test_project_lenses_obey_the_laws_with_hypothesis():
    assert_lens_laws(photo_meta, max_examples=40)
    assert_lens_laws(meta_label, max_examples=40)
    assert_lens_laws(photo_meta | meta_label, max_examples=40)
    assert_lens_laws(meta_label @ photo_meta, max_examples=20)
    assert_lens_laws(Lens.identity(Photo) | photo_meta | Lens.identity(Meta), max_examples=20)


def test_implicit_dict_sample_lens_obeys_the_laws():
    lz = LensNetwork().find(DictSample, Photo)
    sources = strategy_for(Photo).map(lambda p: DictSample.from_bytes(p.packed))
    assert_lens_laws(lz, sources, strategy_for(Photo), max_examples=40)
    # a payload without the optional field keeps it absent after put(get(s), s)
    s = DictSample.from_bytes(Meta(label="a", score=1.0).packed)
    s.image = atdata.encode_array(np.ones(2, "u1"))
    check_lens_laws(lz, [s], [_photo(1)])
    assert "note" not in lz.put(lz.get(s), s)


def test_broken_lens_is_reported_with_the_law_and_values():
    net = LensNetwork.isolated()

    @atdata.lens(network=net)
    def forgetful(p: Meta) -> Label:
        return Label(label=p.label)

    @forgetful.putter
    def _(v: Label, m: Meta) -> Meta:
        return Meta(label=v.label, score=0.0)

    with pytest.raises(AssertionError) as ei:
        check_lens_laws(forgetful, [Meta(label="a", score=2.0)], [Label(label="b")])
    assert str(ei.value).splitlines()[:2] == [
        "lens forgetful (Meta -> Label) breaks GetPut: put(get(s), s) != s",
        "    s = Meta(label='a', score=2.0)",
    ]
    with pytest.raises(AssertionError, match="breaks GetPut"):
        assert_lens_laws(forgetful, max_examples=30)
    # PutGet / PutPut alone hold for it
    assert_lens_laws(forgetful, laws=["put_get", "put_put"], max_examples=20)


def test_put_get_and_put_put_violations():
    net = LensNetwork.isolated()

    @atdata.lens(network=net)
    def upper(m: Label) -> Label:
        return Label(label=m.label.upper())

    @upper.putter
    def _(v: Label, m: Label) -> Label:
        return Label(label=v.label)

    with pytest.raises(AssertionError, match=r"breaks PutGet: get\(put\(v, s\)\) != v"):
        check_lens_laws(upper, [Label(label="A")], [Label(label="b")], laws=["put_get"])

    @atdata.lens(network=net)
    def counter(m: Meta) -> Label:
        return Label(label=m.label)

    @counter.putter
    def _(v: Label, m: Meta) -> Meta:
        return Meta(label=v.label, score=m.score + (0.0 if v.label == m.label else 1.0))

    with pytest.raises(
        AssertionError, match=r"breaks PutPut: put\(v2, put\(v1, s\)\) != put\(v2, s\)"
    ):
        check_lens_laws(counter, [Meta(label="a", score=0.0)], [Label(label="b"), Label(label="c")])


def test_law_helpers_refuse_bad_input():
    with pytest.raises(atdata.ConfigError, match="has no putter"):
        check_lens_laws(label_summary, [Label(label="a")], [Summary(text="x")])
    with pytest.raises(atdata.ConfigError, match="unknown lens law"):
        check_lens_laws(photo_meta, [], [Meta(label="", score=0.0)], laws=["get_get"])
    with pytest.raises(atdata.ConfigError, match="at least one view"):
        check_lens_laws(photo_meta, [_photo(0)], [])


# -- strategies -----------------------------------------------------------------------------


@atdata.packable
class Point:
    xy: atdata.NDArray
    name: str


@atdata.packable
class Everything:
    s: str
    i: int
    f: float
    b: bool
    raw: bytes
    arr: atdata.NDArray
    arr32: np.ndarray[tuple[int, ...], np.dtype[np.float32]]
    maybe_arr: atdata.NDArray | None
    tags: list[str]
    points: list[Point]
    attrs: dict[str, int]
    loose: dict
    child: Point
    maybe_child: Point | None
    maybe_i: int | None = None


@settings(max_examples=60, deadline=None, database=None)
@given(strategy_for(Everything))
def test_strategy_for_covers_every_field_kind_and_round_trips(x):
    assert isinstance(x, Everything)
    assert isinstance(x.child, Point) and type(x.arr).__name__ == "ndarray"
    assert x.arr32.dtype == np.float32
    assert x.maybe_child is None or isinstance(x.maybe_child, Point)
    assert Everything.from_bytes(x.packed) == x


@settings(max_examples=30, deadline=None, database=None)
@given(st.data())
def test_strategy_for_draws_varied_values(data):
    x = data.draw(strategy_for(Point, max_size=2))
    assert x.xy.ndim <= 3 and all(d <= 2 for d in x.xy.shape) and len(x.name) <= 8


def test_strategy_for_refuses_non_packable():
    with pytest.raises(atdata.ConfigError, match="needs a @packable type"):
        strategy_for(Summary)


def test_missing_hypothesis_names_the_fix(monkeypatch):
    from atdata.testing import _strategies

    monkeypatch.setitem(sys.modules, "hypothesis.strategies", None)
    with pytest.raises(atdata.MissingExtraError, match="pip install hypothesis"):
        _strategies.strategy_for(Point)


# -- composition laws (hypothesis) ---------------------------------------------------------


def _shift(c: int) -> Lens:
    return Lens(lambda x: x + c, lambda v, x: v - c, source=int, view=int, name=f"+{c}")


@settings(max_examples=80, deadline=None, database=None)
@given(st.lists(st.integers(-50, 50), min_size=3, max_size=3), st.integers(), st.integers())
def test_composition_is_associative_with_identity_units(cs, x, v):
    a, b, c = (_shift(k) for k in cs)
    left, right = (a | b) | c, a | (b | c)
    assert left.get(x) == right.get(x) == x + sum(cs)
    assert left.put(v, x) == right.put(v, x) == v - sum(cs)
    assert (c @ b @ a).get(x) == left.get(x)  # `@` is `|` read right to left
    ident = Lens.identity(int)
    for lz in (a, left):
        assert (ident | lz).get(x) == lz.get(x) == (lz | ident).get(x)
        assert (ident | lz).put(v, x) == lz.put(v, x) == (lz | ident).put(v, x)
    check_lens_laws(left, [x], [v, x])


def test_every_packable_type_has_a_lens_from_dictsample():
    @atdata.packable
    class Fresh:
        label: str
        score: float

    lz = LensNetwork().transform(atdata.DictSample, Fresh)  # documented: registered for every type
    got = lz(atdata.DictSample(label="a", score=0.5))
    assert isinstance(got, Fresh) and (got.label, got.score) == ("a", 0.5)
    back = lz.put(Fresh(label="b", score=1.5), atdata.DictSample(label="a", score=0.5))
    assert (back.label, back.score) == ("b", 1.5)


def test_documented_parameter_names():
    # Lens.get(s), Lens.put(v, s), Lens.putter(put), DictSample.get(key), from_bytes(bs)
    m = Meta(label="a", score=1.0)
    p = _photo(1)
    assert photo_meta.get(s=p) == photo_meta.get(p)
    assert photo_meta.put(v=m, s=p) == photo_meta.put(m, p)
    d = atdata.DictSample(x=1)
    assert d.get(key="x") == 1 and d.get(key="y", default=2) == 2
    assert Meta.from_bytes(bs=m.packed) == m and atdata.DictSample.from_bytes(bs=d.packed).x == 1


def test_lenses_pickle_for_spawned_workers():
    import pickle

    from tests._lens_defs import Full, NameOnly, full_to_name

    # a module-level lens pickles by name (its getter's name is bound to the Lens itself)
    assert pickle.loads(pickle.dumps(full_to_name)) is full_to_name
    # composed lenses and the implicit DictSample hop pickle when their parts do
    chain = LensNetwork().transform(DictSample, Full) | full_to_name
    back = pickle.loads(pickle.dumps(chain))
    src = DictSample(_data={"name": "a", "value": 3})
    assert back.get(src) == NameOnly(name="a")
    assert back.name == chain.name == "DictSample->Full | full_to_name"
    assert (back.source_type, back.view_type) == (DictSample, NameOnly)
    assert back.put(NameOnly(name="b"), src).to_dict() == {"name": "b", "value": 3}
