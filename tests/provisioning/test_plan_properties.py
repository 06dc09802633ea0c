"""Property tests of the planner, the heart of resume.

From any journal state a crash can leave behind, planning a step and applying
what the cloud answers (success, a transient error, or a permanent refusal),
again and again, must end with every device done or failed — and the planner
must never send a device to a step it has already done.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from trayline.provisioning.plan import (
    ACTIVE,
    STEP_RULES,
    Change,
    DeviceState,
    JobState,
    Step,
    StepWork,
    apply_changes,
    estimate_requests,
    next_step,
)

STATUS = ["pending", "sent", "error", "done"]
COLUMN = {
    Step.IMPORT: "imported",
    Step.JOIN: "grouped",
    Step.NAME: "named",
    Step.CLAIM: "claimed",
    Step.VERIFY: "verified",
}


@st.composite
def devices(draw: st.DrawFn, key: int, group: bool, naming: bool, claiming: bool) -> DeviceState:
    by_serial = draw(st.booleans())
    failed = draw(st.sampled_from([None, None, None, "rejected", "owned-by-someone-else"]))
    device_id = None if by_serial and draw(st.booleans()) else f"{key:024x}"
    serial = draw(st.sampled_from([None, f"P028{key:011d}"]))
    if by_serial:
        serial = f"P028{key:011d}"
    state = DeviceState(
        key=key,
        identifier=serial if by_serial and serial else f"{key:024x}",
        id_kind="serial number" if by_serial else "device ID",
        device_id=device_id,
        serial=serial,
        imported=draw(st.sampled_from(STATUS)),
        grouped=draw(st.sampled_from(STATUS)) if group else "skipped",
        named=draw(st.sampled_from(STATUS)) if naming else "skipped",
        claimed=draw(st.sampled_from(STATUS)) if claiming else "skipped",
        verified=draw(st.sampled_from(STATUS)),
    )
    if state.imported != "done":
        state = replace(state, verified="pending")
    if failed == "rejected":
        state = replace(state, imported="failed", failure=failed, grouped="skipped")
    elif failed:
        state = replace(state, imported="done", claimed="failed", failure=failed)
    return state


@st.composite
def jobs(draw: st.DrawFn) -> JobState:
    group = draw(st.booleans())
    naming = draw(st.booleans())
    claiming = draw(st.booleans())
    count = draw(st.integers(min_value=0, max_value=12))
    return JobState(
        group="g" if group else None,
        group_status=draw(st.sampled_from(STATUS)) if group else "skipped",
        naming=naming,
        claim_mode="each" if claiming else "none",
        devices=tuple(draw(devices(k, group, naming, claiming)) for k in range(count)),
    )


def answer(work: StepWork, fate: st.DataObject, misses: dict[int, int]) -> list[Change]:
    """What the cloud says for each device of a step: mostly yes, sometimes later, rarely no."""
    changes = []
    for d in work.devices:
        roll = fate.draw(st.integers(0, 9))
        if roll == 0 and work.step is Step.IMPORT:
            changes.append(Change.fail(d.key, "rejected"))
            continue
        if roll == 1 and misses.get(d.key, 0) < 3 and work.step in COLUMN:
            misses[d.key] = misses.get(d.key, 0) + 1
            changes.append(Change(d.key, **{COLUMN[work.step]: "error"}))
            continue
        if work.step is Step.LOCATE:
            changes.append(Change(d.key, device_id=f"{d.key:024x}", serial=f"P028{d.key:011d}"))
        elif work.step is Step.SERIAL:
            changes.append(Change(d.key, serial=f"P028{d.key:011d}"))
        else:
            changes.append(Change(d.key, **{COLUMN[work.step]: "done"}))
    return changes


@settings(max_examples=300, deadline=None)
@given(jobs(), st.data())
def test_planning_terminates_and_never_repeats_a_done_step(
    job: JobState, fate: st.DataObject
) -> None:
    misses: dict[int, int] = {}
    state = job
    for _ in range(200):
        work = next_step(state)
        if work is None:
            break
        if work.step is Step.GROUP:
            assert state.group is not None and state.group_status in ACTIVE
            state = replace(state, group_status="done")
            continue
        assert work.devices, "a per-device step always has devices"
        for d in work.devices:
            assert not d.failed, (work.step, d)
            if work.step in COLUMN:
                assert getattr(d, COLUMN[work.step]) != "done", (work.step, d)
            if work.step is Step.LOCATE:
                assert d.device_id is None
            if work.step is Step.SERIAL:
                assert not d.serial
        state = apply_changes(state, answer(work, fate, misses))
    else:
        raise AssertionError("planning did not terminate")
    for d in state.devices:
        assert d.failed or d.verified == "done", d


@settings(max_examples=200, deadline=None)
@given(jobs())
def test_estimate_reads_the_same_rules(job: JobState) -> None:
    """Nothing to do means nothing to send; something to do costs at least one request."""
    estimate = estimate_requests(job, chunk=500, group_chunk=500, page_size=100)
    work = next_step(job)
    if work is None:
        assert sum(estimate.values()) == 0
    else:
        assert estimate[work.step] >= 1
    assert {rule.step for rule in STEP_RULES} | {Step.GROUP} == set(estimate)
