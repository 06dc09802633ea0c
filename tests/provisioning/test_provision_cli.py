"""``trayline provision`` end to end: bad input, mixed input, secrets, and SIGKILL then resume."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cloudkit import OTHER_PRODUCT, PRODUCT, TOKEN, Cloud, make_cloud
from malformed_inputs import MALFORMED_INPUTS, MalformedInput
from sqlalchemy import MetaData, create_engine, select, text
from typer.testing import CliRunner

from trayline.cli.app import app
from trayline.inputs import Expect
from trayline.particle.emulator import EmulatorConfig, serve_in_background


@pytest.fixture(scope="module")
def quiet_cloud() -> Iterator[tuple[Cloud, str]]:
    cloud = make_cloud()
    with serve_in_background(cloud.app) as url:
        yield cloud, url


def env_for(url: str, db: Path | str) -> dict[str, str]:
    return {
        "PARTICLE_ACCESS_TOKEN": TOKEN,
        "PARTICLE_API_URL": url,
        "TRAYLINE_DATABASE_URL": db if isinstance(db, str) else f"sqlite:///{db}",
        "TRAYLINE_RATE_LIMIT": "100000/1",
    }


def requests_seen(url: str) -> int:
    return int(httpx2.get(f"{url}/_emulator/state").json()["counters"]["requests"])


@pytest.mark.parametrize("case", MALFORMED_INPUTS, ids=lambda case: case.id)
def test_malformed_input_exit_2_nothing_sent(
    case: MalformedInput, tmp_path: Path, quiet_cloud: tuple[Cloud, str]
) -> None:
    _, url = quiet_cloud
    path = case.create(tmp_path)
    before = requests_seen(url)
    if case.expect is Expect.ICCIDS:
        args = ["sims", "activate", "--product", str(PRODUCT), "--input", str(path)]
    else:
        args = ["provision", "run", "--product", str(PRODUCT), "--input", str(path), "--group-auto"]
    result = CliRunner().invoke(app, args, env=env_for(url, tmp_path / "t.db"))
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    where = f"{path}:" if case.file_error else f"{path}:{case.line}:"
    assert where in result.output
    if case.secret:
        assert case.secret not in result.output
    assert requests_seen(url) == before


def test_no_token_option_exists(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["provision", "run", "--product", "1", "--input", "x", "--token", "abc"]
    )
    assert result.exit_code == 2
    help_text = CliRunner().invoke(app, ["provision", "run", "--help"]).output
    assert "--token-file" in help_text


def test_dry_run_sends_nothing(db_url: str, tmp_path: Path, quiet_cloud: tuple[Cloud, str]) -> None:
    cloud, url = quiet_cloud
    devices = cloud.app.cloud.make_devices("BRN404", 30)
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(d.id for d in devices))
    args = ["provision", "run", "--product", str(PRODUCT), "--input", str(path), "--group-auto"]
    before = requests_seen(url)
    result = CliRunner().invoke(app, [*args, "--dry-run", "--json"], env=env_for(url, db_url))
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["devices"] == 30 and plan["requests"]["name"] == 30
    assert not plan["resumes_job"]
    assert requests_seen(url) == before
    done = CliRunner().invoke(app, [*args, "--json"], env=env_for(url, db_url))
    assert done.exit_code == 0, done.output
    before = requests_seen(url)
    again = CliRunner().invoke(app, [*args, "--dry-run", "--json"], env=env_for(url, db_url))
    plan = json.loads(again.stdout)
    assert plan["resumes_job"] and plan["total_requests"] == 0
    assert requests_seen(url) == before


def test_mixed_input_exit_1_and_report(db_url: str, tmp_path: Path) -> None:
    cloud = make_cloud()
    good = cloud.app.cloud.make_devices("BRN404", 12)
    elsewhere = cloud.app.cloud.make_devices("BRN404", 1, product_id=OTHER_PRODUCT)
    boron_som = cloud.app.cloud.make_devices("B404", 1)
    path = tmp_path / "mixed.txt"
    lines = [d.id for d in good[:6]] + [d.serial_number for d in good[6:]]
    lines += [good[0].id, elsewhere[0].serial_number, boron_som[0].serial_number]
    lines += ["ffffffffffffffffffffffff", "not-an-id!"]
    path.write_text("\n".join(lines) + "\n")
    with serve_in_background(cloud.app) as url:
        env = env_for(url, db_url)
        result = CliRunner().invoke(
            app,
            [
                "provision",
                "run",
                "--product",
                str(PRODUCT),
                "--input",
                str(path),
                "--group",
                "line-a",
                "--skip-invalid",
                "--json",
            ],
            env=env,
        )
        assert result.exit_code == 1, result.output
        doc = json.loads(result.stdout)
        reasons = {d["identifier"]: d["reason"] for d in doc["devices"]}
        assert set(reasons) == {
            elsewhere[0].serial_number,
            boron_som[0].serial_number,
            "ffffffffffffffffffffffff",
        }
        assert "another product" in reasons[elsewhere[0].serial_number]
        assert "platform" in reasons[boron_som[0].serial_number]
        assert doc["outcome"]["provisioned"] == 12
        assert f"{path}:{len(lines)}:" in result.stderr  # the malformed line, skipped
        assert "duplicate" in result.stderr
        report = CliRunner().invoke(
            app, ["provision", "report", str(doc["job"]["id"]), "--format", "csv"], env=env
        )
        assert report.exit_code == 0
        assert report.stdout.count("\n") == 1 + 15
        assert all(d.name == d.serial_number and d.groups == ["line-a"] for d in good)
        for output in (result.output, report.output):
            assert TOKEN not in output
        status = CliRunner().invoke(app, ["provision", "status", "--json"], env=env)
        job = json.loads(status.stdout)[0]
        assert job["api_url"] == url and job["account"] == "maker@example.com"
        seen = requests_seen(url)
    # Nothing was killed: the audit log holds every request the cloud saw, the account
    # lookup (made before the job existed) filed under the job like the rest.
    calls = audit_calls(db_url)
    assert ("GET", "/v1/user", doc["job"]["id"]) in calls
    assert len(calls) == seen and {job_id for *_, job_id in calls} == {doc["job"]["id"]}
    dump_has_no_token(db_url)


def audit_calls(db_url: str) -> list[tuple[str, str, int | None]]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT method, path_template, job_id FROM cloud_calls"))
        calls = [(str(m), str(p), j) for m, p, j in rows]
    engine.dispose()
    return calls


def dump_has_no_token(db_url: str) -> None:
    engine = create_engine(db_url)
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        for table in meta.tables.values():
            for row in conn.execute(select(table)):
                assert TOKEN not in repr(tuple(row)), table.name
    engine.dispose()
    if db_url.startswith("sqlite:///"):
        db = Path(db_url.removeprefix("sqlite:///"))
        for file in db.parent.glob(db.name + "*"):
            assert TOKEN.encode() not in file.read_bytes()


def cloud_view(url: str) -> dict[str, Any]:
    state = httpx2.get(f"{url}/_emulator/state").json()
    return {
        d["id"]: (d["product_id"], sorted(d["groups"]), d["name"], d["owner"])
        for d in state["devices"]
    }


def route_counts(url: str) -> dict[str, int]:
    counters = httpx2.get(f"{url}/_emulator/state").json()["counters"]
    return dict(counters["by_route"])


def audit_rows(db: Path) -> int:
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM cloud_calls")).scalar_one()
    engine.dispose()
    return int(count)


def renames_and_claims(url: str) -> tuple[int, int]:
    routes = route_counts(url)
    renames = sum(n for r, n in routes.items() if r.startswith("PUT ") and "{device_id}" in r)
    claims = sum(n for r, n in routes.items() if r == "POST /v1/devices")
    return renames, claims


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume(tmp_path: Path) -> None:
    """20 SIGKILLs during a 400-device job (naming + claiming; cloud at 100 requests/s, 20 ms),
    then a re-run: the cloud ends as after a clean run, and each kill repeats at most the few
    renames and claims whose answers it lost.

    Those are the requests on the wire (at most ``--concurrency``, 8 here) and the ones
    answered while the last group commit gathered and ran (at 20 ms a request, at most
    2 × 8 more): ≤ 400 + 24 per kill of each, where redoing a step would be 400. The
    rate window lets a burst of ``--concurrency`` out at its edge, so the default 32 in
    flight made a bound of 8 a matter of luck."""
    config = EmulatorConfig(seed=21, latency_ms=20, rate_limit=(100, 1.0))
    devices_per_job = 400
    concurrency = 8
    lost_per_kill = 3 * concurrency

    def command(path: Path) -> list[str]:
        return [
            sys.executable, "-m", "trayline", "provision", "run", "--product", str(PRODUCT),
            "--input", str(path), "--group", "crash-test", "--claim", "each", "--json",
            "--concurrency", str(concurrency),
        ]  # fmt: skip

    def prepare(cloud: Cloud, name: str) -> Path:
        devices = cloud.app.cloud.make_devices("BRN404", devices_per_job)
        path = tmp_path / f"{name}.txt"
        path.write_text(
            "\n".join([d.id for d in devices[:200]] + [d.serial_number for d in devices[200:]])
        )
        return path

    def env(url: str, db: str) -> dict[str, str]:
        return {
            **os.environ,
            **env_for(url, tmp_path / db),
            "TRAYLINE_RATE_LIMIT": "100/1",
            "TMPDIR": str(tmp_path),  # the host-wide rate window of this test alone
        }

    reference = make_cloud(config)
    ref_input = prepare(reference, "ref")
    with serve_in_background(reference.app) as url:
        done = subprocess.run(command(ref_input), env=env(url, "ref.db"), capture_output=True)
        assert done.returncode == 0, done.stderr.decode()
        expected = cloud_view(url)

    rng = random.Random(4)
    kills = 0
    jobs = 0
    while kills < 20:
        jobs += 1
        cloud = make_cloud(config)  # same seed: the same devices as the reference
        path = prepare(cloud, f"crash{jobs}")
        kills_this_job = 0
        with serve_in_background(cloud.app) as url:
            while kills < 20:
                process = subprocess.Popen(
                    command(path),
                    env=env(url, f"crash{jobs}.db"),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(rng.uniform(0.8, 2.4))
                if process.poll() is not None:
                    break
                process.send_signal(signal.SIGKILL)
                process.wait()
                kills += 1
                kills_this_job += 1
            final = subprocess.run(command(path), env=env(url, f"crash{jobs}.db"),
                                   capture_output=True)  # fmt: skip
            assert final.returncode == 0, final.stderr.decode()
            doc = json.loads(final.stdout)
            assert doc["outcome"]["provisioned"] == devices_per_job
            assert cloud_view(url) == expected
            renames, claims = renames_and_claims(url)
            bound = devices_per_job + lost_per_kill * kills_this_job
            assert renames <= bound, (renames, kills_this_job)
            assert claims <= bound, (claims, kills_this_job)
            # The audit log holds every call answered before a commit (the account lookup
            # included, filed once the job opens): what the cloud saw, less what was on the
            # wire or answered in the last group commit's window at each kill.
            audited = audit_rows(tmp_path / f"crash{jobs}.db")
            seen = requests_seen(url)
            assert seen - lost_per_kill * kills_this_job <= audited <= seen, (seen, audited)
            print(  # the figures, for `pytest -s`
                f"job {jobs}: {kills_this_job} kills, {renames} renames, {claims} claims "
                f"(bound {bound}), {seen} requests seen, {audited} audited"
            )
    assert kills >= 20
