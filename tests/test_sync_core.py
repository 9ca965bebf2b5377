"""The pure sync core: clock, merge rule, batch encoding and change parsing."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.batch import BodyDecodeError, BodyTooLarge, decode, encode
from sync.clock import ClockDriftError, ClockFormatError, HLCTimestamp, HybridLogicalClock
from sync.merge import Action, decide
from sync.protocol import ErrorCode, Op
from sync.records import BatchFormatError, BatchTooLarge, Change, ChangeResult, Record, parse_push

# --- hybrid logical clock ---------------------------------------------------------------

walls = st.lists(st.integers(min_value=0, max_value=2**45), min_size=1, max_size=40)


@given(walls)
def test_the_clock_never_runs_backwards_whatever_the_wall_clock_does(readings: list[int]) -> None:
    it = iter(readings)
    clock = HybridLogicalClock("tab1", wall=lambda: next(it))
    stamps = [clock.now() for _ in readings]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


@given(st.integers(0, 2**45), st.integers(0, 2**45), st.integers(0, 1000))
def test_after_receiving_a_stamp_the_clock_is_past_it(
    wall: int, remote_ms: int, counter: int
) -> None:
    clock = HybridLogicalClock("tab1", wall=lambda: wall)
    remote = HLCTimestamp(remote_ms, counter, "server")
    received = clock.receive(remote)
    assert (received.millis, received.counter) > (remote.millis, remote.counter)
    assert clock.now() > received


@given(
    st.integers(0, 10**14),
    st.integers(0, 10**10 - 2),
    st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True),
)
def test_an_encoded_stamp_round_trips_and_sorts_like_the_clock(
    ms: int, counter: int, node: str
) -> None:
    stamp = HLCTimestamp(ms, counter, node)
    assert HLCTimestamp.decode(stamp.encode()) == stamp
    later = HLCTimestamp(ms, counter + 1, node)
    assert stamp.encode() < later.encode()


def test_a_stamp_too_far_ahead_is_refused_and_leaves_the_clock_alone() -> None:
    clock = HybridLogicalClock("server", wall=lambda: 1_000_000)
    before = clock.now()
    with pytest.raises(ClockDriftError):
        clock.receive(HLCTimestamp(1_000_000 + 10**12, 0, "tab"), max_drift_ms=300_000)
    assert clock.now().millis == before.millis


@pytest.mark.parametrize("text", ["", "12", "a-b-c", "1-2-", "-1-x"])
def test_a_malformed_stamp_is_refused(text: str) -> None:
    with pytest.raises(ClockFormatError):
        HLCTimestamp.decode(text)


# --- the merge rule -----------------------------------------------------------------------


def change(op: Op = Op.UPSERT, base: int = 0, **data: int) -> Change:
    return Change("visits", "r", op, "c", base, dict(data) if op is Op.UPSERT else None)


def stored(version: int = 1, deleted: bool = False, **data: int) -> Record:
    return Record("visits", "r", version, deleted, dict(data))


@pytest.mark.parametrize(
    ("current", "incoming", "action"),
    [
        (None, change(patients=1), Action.INSERT),
        (None, change(Op.DELETE), Action.INSERT),
        (stored(1, patients=1), change(base=1, patients=2), Action.UPDATE),
        (stored(1, patients=1), change(base=1, patients=1), Action.DUPLICATE),
        (stored(1, patients=1), change(base=0, patients=1), Action.DUPLICATE),
        (stored(2, patients=1), change(base=1, patients=3), Action.CONFLICT),
        (stored(1, patients=1), change(base=5, patients=3), Action.CONFLICT),
        (stored(1, patients=1), change(Op.DELETE, base=1), Action.DELETE),
        (stored(2, patients=1), change(Op.DELETE, base=1), Action.CONFLICT),
        (stored(2, deleted=True), change(base=2, patients=1), Action.CONFLICT),
        (stored(2, deleted=True), change(Op.DELETE, base=1), Action.DUPLICATE),
        (
            stored(2, patients=1),
            Change("visits", "r", Op.RESOLVE, "c", 2, None, resolves="x"),
            Action.RESOLVE,
        ),
    ],
)
def test_the_merge_rule(current: Record | None, incoming: Change, action: Action) -> None:
    assert decide(current, incoming).action is action


@given(st.integers(0, 5), st.integers(1, 5), st.booleans(), st.integers(0, 3), st.integers(0, 3))
def test_a_tombstone_is_never_revived(
    base: int, version: int, is_delete: bool, a: int, b: int
) -> None:
    incoming = change(Op.DELETE, base) if is_delete else change(base=base, patients=a)
    decision = decide(stored(version, deleted=True, patients=b), incoming)
    assert not decision.changes_record


# --- batches on the wire --------------------------------------------------------------------


def test_a_body_round_trips_through_gzip_and_keeps_chinese_text() -> None:
    body = {"notes": "村民反映头痛，已处理"}
    assert decode(encode(body), content_encoding="gzip", max_bytes=10_000) == body
    assert decode(encode(body, compress=False), content_encoding=None, max_bytes=10_000) == body


def test_a_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b" " * 5_000_000)
    with pytest.raises(BodyTooLarge):
        decode(bomb, content_encoding="gzip", max_bytes=100_000)


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (b"\x1f\x8b broken", "gzip"),
        (gzip.compress(b'{"a": 1}')[:-6], "gzip"),
        (b'{"a": ', None),
        (b"\xff", None),
        (b"{}", "br"),
    ],
)
def test_an_undecodable_body_says_why(data: bytes, encoding: str | None) -> None:
    with pytest.raises(BodyDecodeError):
        decode(data, content_encoding=encoding, max_bytes=10_000)


def test_a_push_over_the_change_limit_is_too_large() -> None:
    body = {"device_id": "t", "batch_id": "b", "changes": [{}] * 3}
    with pytest.raises(BatchTooLarge) as info:
        parse_push(body, max_changes=2)
    assert info.value.limit == 2


def test_a_push_without_its_envelope_fields_names_them() -> None:
    with pytest.raises(BatchFormatError) as info:
        parse_push({"changes": "no"}, max_changes=10)
    assert set(info.value.errors) == {"device_id", "batch_id", "changes"}


def test_each_unreadable_change_becomes_a_rejected_result_in_its_place() -> None:
    body = {
        "device_id": "t",
        "batch_id": "b",
        "changes": [
            {"collection": "visits", "id": "a", "op": "upsert", "change_id": "c1", "data": {}},
            {"collection": "visits", "id": "b", "op": "explode", "change_id": "c2"},
            {
                "collection": "visits",
                "id": "c",
                "op": "upsert",
                "change_id": "c3",
                "base_version": -1,
                "data": {},
            },
            {"collection": "visits", "id": "d", "op": "resolve", "change_id": "c4"},
        ],
    }
    items = parse_push(json.loads(json.dumps(body)), max_changes=10).items
    assert isinstance(items[0], Change)
    assert [type(i) for i in items[1:]] == [ChangeResult] * 3
    assert "op" in items[1].errors and "base_version" in items[2].errors  # type: ignore[union-attr]
    assert "resolves" in items[3].errors  # type: ignore[union-attr]
    assert items[1].code is ErrorCode.INVALID_REQUEST  # type: ignore[union-attr]
