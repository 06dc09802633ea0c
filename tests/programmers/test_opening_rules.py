"""opening.only_probe and slot_args: the rules every backend's open follows."""

from __future__ import annotations

import pytest

from trayline.programmers.base import ProbeNotFound, SeveralProbes, SlotPolicy
from trayline.programmers.opening import only_probe, slot_args
from trayline.programmers.registry import OpenRequest
from trayline.programmers.tool import ErrorPattern, match_failure

from .fakes import expect_failure


def test_exactly_one_probe_is_taken() -> None:
    assert only_probe(["51012345"], slot="slot 1", what="J-Link", none="none") == "51012345"


def test_no_probe_says_how_the_backend_looked() -> None:
    expect_failure(
        lambda: only_probe([], slot="slot 1", what="J-Link", none="no J-Link attached (--ids)"),
        ProbeNotFound,
        slot="slot 1",
        words="no J-Link attached (--ids)",
    )


def test_several_probes_are_listed_never_the_first_taken() -> None:
    caught = expect_failure(
        lambda: only_probe(["A1", ""], slot="slot 2", what="ST-LINK", none="none"),
        SeveralProbes,
        slot="slot 2",
        words="2 ST-LINKs attached (A1, (no serial)); name one with --probe",
    )
    assert isinstance(caught, SeveralProbes)


def test_several_message_can_be_the_backends_own() -> None:
    with pytest.raises(SeveralProbes, match=r"^slot 3: several devices in DFU mode \(a, b\)"):
        only_probe(
            ["a", "b"],
            slot="slot 3",
            what="device",
            none="none",
            several="several devices in DFU mode ({ids}); name one",
        )


def test_slot_args_carry_slot_platform_and_policy() -> None:
    policy = SlotPolicy(allow_unlock=True)
    request = OpenRequest(probe_id="x", slot="slot 4", platform_id=10, policy=policy)
    assert slot_args(request) == {"slot": "slot 4", "platform_id": 10, "policy": policy}


def test_match_failure_takes_the_first_pattern_and_names_the_line() -> None:
    table = (
        ErrorPattern.of(r"protect", ProbeNotFound, "first: {0}"),
        ErrorPattern.of(r"locked", SeveralProbes, "second: {0}"),
    )
    error = match_failure("ok\nchip locked and protected\n", table, slot="s", transcript="t")
    assert isinstance(error, ProbeNotFound)
    assert str(error) == "s: first: chip locked and protected"
    assert error.transcript == "t"
    assert match_failure("all fine", table, slot="s", transcript="") is None
