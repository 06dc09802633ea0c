"""``trayline provision``: import, group, name and claim a batch of devices, resumably.

Exit codes (``run``): 0 every device provisioned; 1 some devices failed for
good (the report lists them) or are still incomplete, or the cloud could not be
reached (nothing done; run again); 2 bad input, usage or configuration (token,
API URL, an API URL that does not answer as the Particle API), nothing sent;
3 stopped on an unrecoverable error (token refused, product not found, a
permission the token lacks); 4 store problem; 5 another process works this job
(the message names it); 130 Ctrl-C and 143 SIGTERM (the job is marked
interrupted; run the same command again to resume).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from trayline.cli.console import err, fail, out
from trayline.cli.countdown import countdown
from trayline.cli.interrupt import Interrupted, exit_interrupted, run_interruptibly
from trayline.cli.line import LineOption, line_handoff
from trayline.cli.options import EXIT_STORE, DbOption, RateLimitOption, WideOption, open_db
from trayline.cli.provision_tables import problems_table, report_table, status_table
from trayline.cli.tables import print_table
from trayline.cli.token import TokenFileOption, resolve_token
from trayline.core.ids import GroupName, InvalidIdentifier, ProductRef
from trayline.inputs import InputError, read_inputs
from trayline.particle.auth import AccessToken
from trayline.particle.client import ParticleClient, api_url_from_env
from trayline.particle.errors import (
    AuthError,
    CloudError,
    InvalidApiUrl,
    NotAnApi,
    PermissionDenied,
)
from trayline.particle.ratelimit import (
    HostWindow,
    InvalidRateLimit,
    RateLimit,
    RateLimiter,
    rate_limit_from_env,
)
from trayline.provisioning.engine import (
    EngineOptions,
    NoProgress,
    Outcome,
    dry_run,
    open_job,
    run_job,
)
from trayline.provisioning.journal import CloudIdentity, JobSpec, Journal, JournalInput
from trayline.provisioning.lease import JobBusy, JobLease
from trayline.provisioning.plan import Step
from trayline.reports.provisioning import (
    DeviceReportRow,
    JobSummary,
    job_report,
    job_summaries,
    render_csv,
    render_json,
)
from trayline.station.handoff import write_back
from trayline.store.audit import StoreAudit, StoreSerialBudget
from trayline.store.db import Store, StoreError

app = typer.Typer(
    help=(
        "Provision devices in the Particle Cloud: import into the product, add to a group, "
        "name after the serial, optionally claim. Resumable: re-run the same command to "
        "continue.\n\nExample: trayline provision run --product 12345 --input tray.csv --group-auto"
    ),
    no_args_is_help=True,
)

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class NameMode(StrEnum):
    serial = "serial"
    none = "none"


class ClaimMode(StrEnum):
    none = "none"
    import_ = "import"
    each = "each"


class ReportFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


STEP_LABELS = {
    Step.GROUP: "group exists",
    Step.IMPORT: "import",
    Step.LOCATE: "find device IDs",
    Step.JOIN: "add to group",
    Step.SERIAL: "find serials",
    Step.NAME: "rename to serial",
    Step.CLAIM: "claim",
    Step.VERIFY: "verify",
}


class RichProgress:
    """Progress bars per step, on stderr so stdout stays clean for reports."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[Step, TaskID] = {}

    def step_started(self, step: Step, total: int) -> None:
        task = self._tasks.get(step)
        if task is None:
            self._tasks[step] = self._progress.add_task(STEP_LABELS[step], total=total)
        else:
            self._progress.reset(task, total=total)

    def advance(self, step: Step, count: int = 1) -> None:
        self._progress.advance(self._tasks[step], count)

    def step_finished(self, step: Step) -> None:
        pass

    def notice(self, message: str) -> None:
        self._progress.console.print(message, markup=False, highlight=False)


class NoticesOnly(NoProgress):
    """With ``--json``: no bars, but what a person must know still goes to stderr."""

    def notice(self, message: str) -> None:
        err.print(message, markup=False, highlight=False)


@app.command()
def run(
    product: str | None = typer.Option(None, "--product", help="Product ID or slug."),
    input_file: Path | None = typer.Option(
        None, "--input", help="Device IDs / serials, one per line, or a tray-list CSV."
    ),
    from_line: bool = typer.Option(
        False,
        "--from-line",
        help="Provision the line's ready units with trayline.toml's [provisioning] policy.",
    ),
    line_config: Path = LineOption,
    group: str | None = typer.Option(None, "--group", help="Device group to add devices to."),
    group_auto: bool = typer.Option(
        False, "--group-auto", help="Group named YYYYMMDD_NNNN (today, device count)."
    ),
    name: NameMode = typer.Option(NameMode.serial, "--name", help="Rename devices to serial."),
    claim: ClaimMode = typer.Option(
        ClaimMode.none,
        "--claim",
        help="none; import (claim_user on import); each (claim each device to the token's user).",
    ),
    claim_user: str | None = typer.Option(
        None, "--claim-user", help="Product team member's email, with --claim import."
    ),
    chunk: int = typer.Option(500, "--chunk", min=1, max=10_000, help="Identifiers per import."),
    concurrency: int = typer.Option(
        32, "--concurrency", min=1, max=512, help="Requests in flight at most."
    ),
    rate_limit: str | None = RateLimitOption,
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Go on without invalid input lines (they are reported)."
    ),
    dry: bool = typer.Option(False, "--dry-run", help="Print the plan and request count only."),
    wait_for_budget: bool = typer.Option(
        False,
        "--wait-for-budget",
        help="When the 50-per-hour serial-lookup budget is spent (used to name why a serial "
        "was refused), wait for it with a countdown instead of going on without.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document, no bars."),
    token_file: Path | None = TokenFileOption,
    db: str | None = DbOption,
) -> None:
    """Provision every device of an input file; re-run the same command to resume.

    Example:
      export PARTICLE_ACCESS_TOKEN=...   # or --token-file ~/.particle-token (mode 0600)
      trayline provision run --product my-product --input tray-0042.csv --group-auto
      trayline provision run --from-line -c trayline.toml
    """
    handoff = line_handoff(line_config, db) if from_line else None
    if handoff is not None:
        product, input_file, group = handoff.product, handoff.input_file, handoff.group
        name = NameMode.serial if handoff.naming else NameMode.none
        claim, claim_user = ClaimMode(handoff.claim), handoff.claim_user
    if product is None or input_file is None:
        fail("give --product and --input, or --from-line")
    try:
        product_ref = ProductRef.parse(product)
        group_name = GroupName.parse(group) if group is not None else None
        limit = rate_limit_from_env(rate_limit)
    except (InvalidIdentifier, InvalidRateLimit) as exc:
        fail(str(exc))
    if group_name and group_auto:
        fail("give --group NAME or --group-auto, not both")
    if claim is ClaimMode.import_ and not claim_user:
        fail("--claim import needs --claim-user EMAIL (a product team member)")
    if claim_user and not _EMAIL.fullmatch(claim_user):
        fail(f"--claim-user {claim_user!r} is not an email address")
    if claim_user and claim is not ClaimMode.import_:
        fail("--claim-user goes with --claim import")

    try:
        result = read_inputs(input_file)
        for duplicate in result.duplicates:
            err.print(f"warning: {duplicate}", markup=False, highlight=False)
        result.raise_if_invalid(skip_invalid=skip_invalid)
    except InputError as exc:
        fail(str(exc))
    if result.problems:
        for problem in result.problems:
            err.print(f"skipped: {problem}", markup=False, highlight=False)

    spec = JobSpec(
        product=str(product_ref),
        group=group_name,
        group_auto=group_auto,
        naming=name is NameMode.serial,
        claim_mode=str(claim),
        claim_user=claim_user,
        input_path=str(input_file),
    )
    options = EngineOptions(chunk=chunk, concurrency=concurrency)
    devices = result.devices
    try:
        api_url = api_url_from_env()
    except InvalidApiUrl as exc:
        fail(str(exc))
    if dry:
        with open_db(db) as store:
            _print_dry_run(spec, api_url, devices, options, limit, as_json, store)
        return
    token = resolve_token(token_file)
    with open_db(db) as store:
        try:
            ran = run_interruptibly(
                lambda: _provision(
                    store, token, api_url, limit, spec, devices, options, as_json, wait_for_budget
                )
            )
            if handoff is not None:
                write_back(store, handoff.config, ran.outcome.job_id, handoff.group)
            rows = job_report(store, ran.outcome.job_id)
            summary = job_summaries(store, ran.outcome.job_id)[0]
        except Interrupted as exc:
            exit_interrupted(exc)
        except StoreError as exc:
            fail(str(exc), EXIT_STORE)
        except JobBusy as exc:
            fail(str(exc), EXIT_BUSY)
        except SetupFailed as exc:
            fail(exc.message, exc.exit_code)
    _finish(ran.outcome, rows, summary, as_json)


EXIT_BUSY = 5


class SetupFailed(Exception):
    """The run could not start (the cloud or its URL is wrong): message and exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass
class _Ran:
    outcome: Outcome


async def _identify(client: ParticleClient, api_url: str) -> CloudIdentity:
    """Which account the token belongs to, asked of the cloud (the first request)."""
    try:
        account = await client.whoami()
    except NotAnApi as exc:
        raise SetupFailed(exc.message, 2) from None
    except AuthError as exc:
        raise SetupFailed(
            f"the access token was refused ({exc.message}); get a new one", 3
        ) from None
    except PermissionDenied:
        account = "(API user)"  # API users may not read /v1/user (UNCONFIRMED): one account
    except CloudError as exc:
        raise SetupFailed(
            f"cannot reach the cloud at {api_url} ({exc}); nothing done — check the network "
            f"and run the same command again",
            1,
        ) from None
    return CloudIdentity(api_url, account)


async def _provision(
    store: Store,
    token: AccessToken,
    api_url: str,
    limit: RateLimit,
    spec: JobSpec,
    devices: Sequence[JournalInput],
    options: EngineOptions,
    as_json: bool,
    wait_for_budget: bool,
) -> _Ran:
    client = ParticleClient(
        token,
        base_url=api_url,
        limiter=RateLimiter(limit, host=HostWindow.for_cloud(api_url)),
        serial_budget=StoreSerialBudget(store),
        max_connections=options.concurrency,
    )
    lookup = StoreAudit(store)  # the account lookup, filed under the job it names
    client.add_observer(lookup)
    async with client:
        identity = await _identify(client, api_url)
        client.remove_observer(lookup)
        journal, resumed = await asyncio.to_thread(
            open_job, store, spec, identity, devices, options
        )
        lookup.job_id = journal.job_id
        await asyncio.to_thread(lookup.flush)
        with JobLease(store, journal.job_id) as lease:
            if not as_json:
                verb = "resuming" if resumed else "starting"
                err.print(
                    f"{verb} job {journal.job_id}: {len(devices)} devices into {spec.product} "
                    f"({identity.account} on {api_url})",
                    markup=False,
                )
            outcome = await _run_with_bars(
                client, journal, options, as_json, lease, wait_for_budget
            )
    outcome.resumed = resumed
    return _Ran(outcome)


async def _run_with_bars(
    client: ParticleClient,
    journal: Journal,
    options: EngineOptions,
    as_json: bool,
    lease: JobLease,
    wait_for_budget: bool,
) -> Outcome:
    wait = _budget_countdown if wait_for_budget else None
    if as_json:
        return await run_job(
            client,
            journal,
            options,
            NoticesOnly(),
            lease_lost=lease.lost.is_set,
            budget_wait=wait,
        )
    bars = Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )
    with bars:
        return await run_job(
            client,
            journal,
            options,
            RichProgress(bars),
            lease_lost=lease.lost.is_set,
            budget_wait=wait,
        )


async def _budget_countdown(until: datetime) -> None:
    await countdown(until, "serial-lookup budget spent (50 per hour)")


def _finish(
    outcome: Outcome, rows: list[DeviceReportRow], summary: JobSummary, as_json: bool
) -> None:
    problems = [r for r in rows if r.state != "provisioned"]
    if as_json:
        doc = json.loads(render_json(summary, problems))
        doc["outcome"] = {
            "exit_code": outcome.exit_code,
            "resumed": outcome.resumed,
            "stopped": outcome.stopped,
            "elapsed_s": round(outcome.elapsed_s, 3),
            "requests": outcome.requests,
            "requests_by_step": outcome.by_step,
            **outcome.counts,
        }
        out.print_json(json.dumps(doc))
        raise typer.Exit(outcome.exit_code)
    _print_problems(problems)
    counts = outcome.counts
    out.print(
        f"job {outcome.job_id}: {counts['provisioned']}/{counts['devices']} provisioned, "
        f"{counts['failed']} failed, {counts['remaining']} incomplete; "
        f"{outcome.requests} requests in {outcome.elapsed_s:.1f} s"
    )
    if outcome.stopped:
        err.print(f"stopped: {outcome.stopped}", markup=False)
    elif counts["remaining"]:
        err.print("some devices are incomplete: run the same command again to continue")
    raise typer.Exit(outcome.exit_code)


def _print_dry_run(
    spec: JobSpec,
    api_url: str,
    devices: Sequence[JournalInput],
    options: EngineOptions,
    limit: RateLimit,
    as_json: bool,
    store: Store,
) -> None:
    """The plan, from the journal if this job exists; a dry run sends nothing."""
    try:
        state, estimate, existing = dry_run(spec, api_url, devices, options, store)
    except StoreError as exc:
        fail(str(exc), EXIT_STORE)
    total = sum(estimate.values())
    if as_json:
        doc = {
            "dry_run": True,
            "resumes_job": existing,
            "devices": len(state.devices),
            "group": state.group,
            "requests": {str(k): v for k, v in estimate.items()},
            "total_requests": total,
            "estimated_seconds": round(total / limit.per_second, 1),
        }
        out.print_json(json.dumps(doc))
        return
    table = Table(title=f"Plan for {len(state.devices)} devices into {spec.product}")
    table.add_column("step")
    table.add_column("requests", justify="right")
    for step, count in estimate.items():
        if count:
            table.add_row(STEP_LABELS[step], str(count))
    table.add_row("total", str(total))
    out.print(table)
    out.print(
        f"group: {state.group or '(none)'}; "
        f"{'resumes an existing job' if existing else 'a new job'}; "
        f"at {limit} requests/s-window about {total / limit.per_second:.0f} s. Nothing sent."
    )


def _print_problems(rows: list[DeviceReportRow]) -> None:
    if not rows:
        return
    print_table(problems_table(rows[:200]))
    if len(rows) > 200:
        out.print(f"… and {len(rows) - 200} more: see `trayline provision report`")


@app.command()
def status(
    job: int | None = typer.Argument(None, help="Job number (default: list every job)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    wide: bool = WideOption,
    db: str | None = DbOption,
) -> None:
    """Show provisioning jobs and how far each got.

    Fits 80 columns (job, product, group, status, ok/failed/all, created); --wide adds the
    account, cloud and input file.

    Example: trayline provision status   ·   trayline provision status 3 --wide
    """
    with open_db(db) as store:
        summaries = job_summaries(store, job)
    if job is not None and not summaries:
        fail(f"no provisioning job {job}")
    if as_json:
        out.print_json(json.dumps([asdict(s) for s in summaries]))
        return
    print_table(status_table(summaries, wide=wide), wide=wide)
    for s in summaries:
        if s.last_error:
            out.print(f"job {s.id}: {s.last_error}", markup=False)


@app.command()
def report(
    job: int = typer.Argument(..., help="Job number (see `trayline provision status`)."),
    fmt: ReportFormat = typer.Option(ReportFormat.table, "--format", help="table, csv or json."),
    wide: bool = WideOption,
    db: str | None = DbOption,
) -> None:
    """Every device of a job with its final state and, for failures, the reason.

    The table fits 80 columns: input line, the full device ID (or the input identifier when
    the cloud gave none), state and the reason, wrapped. --wide adds the serial, every step
    and the attempts. CSV and JSON always hold every field.

    Example: trayline provision report 3 --format csv > job3.csv
    """
    with open_db(db) as store:
        summaries = job_summaries(store, job)
        if not summaries:
            fail(f"no provisioning job {job}")
        rows = job_report(store, job)
    if fmt is ReportFormat.csv:
        typer.echo(render_csv(rows), nl=False)
        return
    if fmt is ReportFormat.json:
        typer.echo(render_json(summaries[0], rows))
        return
    title = f"Job {job}: {summaries[0].product} → {summaries[0].group or '(no group)'}"
    print_table(report_table(title, rows, wide=wide), wide=wide)
