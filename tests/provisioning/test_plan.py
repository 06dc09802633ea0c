"""The planner: what is left to do is a pure function of the journal."""

from __future__ import annotations

from dataclasses import replace

from trayline.provisioning.plan import DeviceState, JobState, Step, estimate_requests, next_step


def device(key: int, **kw: object) -> DeviceState:
    base = DeviceState(
        key=key,
        identifier=f"{key:024x}",
        id_kind="device ID",
        device_id=f"{key:024x}",
        serial=None,
        imported="pending",
        grouped="pending",
        named="pending",
        claimed="skipped",
        verified="pending",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def job(*devices: DeviceState, group: str | None = "g", group_status: str = "done") -> JobState:
    return JobState(
        group=group, group_status=group_status, naming=True, claim_mode="none", devices=devices
    )


def test_group_first_then_import() -> None:
    state = job(device(1), group_status="pending")
    assert next_step(state).step is Step.GROUP  # type: ignore[union-attr]
    assert next_step(job(device(1))).step is Step.IMPORT  # type: ignore[union-attr]


def test_sent_is_replayed_and_error_retried() -> None:
    work = next_step(
        job(device(1, imported="sent"), device(2, imported="error"), device(3, imported="done"))
    )
    assert work is not None and work.step is Step.IMPORT
    assert [d.key for d in work.devices] == [1, 2]


def test_order_of_steps() -> None:
    d = device(1, imported="done")
    assert next_step(job(replace(d, device_id=None, id_kind="serial number"))).step is Step.LOCATE  # type: ignore[union-attr]
    assert next_step(job(d)).step is Step.JOIN  # type: ignore[union-attr]
    d = replace(d, grouped="done")
    assert next_step(job(d)).step is Step.SERIAL  # type: ignore[union-attr]
    d = replace(d, serial="P028AB1234567XY")
    assert next_step(job(d)).step is Step.NAME  # type: ignore[union-attr]
    d = replace(d, named="done", claimed="pending")
    assert next_step(job(d)).step is Step.CLAIM  # type: ignore[union-attr]
    d = replace(d, claimed="done")
    assert next_step(job(d)).step is Step.VERIFY  # type: ignore[union-attr]
    assert next_step(job(replace(d, verified="done"))) is None


def test_failed_devices_drop_out() -> None:
    assert next_step(job(device(1, failure="rejected", imported="failed"))) is None


def test_estimate_for_a_tray_by_id() -> None:
    state = job(*(device(k) for k in range(1000)), group_status="pending")
    estimate = estimate_requests(state, chunk=500, group_chunk=500, page_size=100)
    assert estimate[Step.IMPORT] == 2
    assert estimate[Step.JOIN] == 2
    assert estimate[Step.NAME] == 1000
    assert estimate[Step.LOCATE] == 0
    assert sum(estimate.values()) / 1000 <= 1.05
