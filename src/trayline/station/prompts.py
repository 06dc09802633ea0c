"""Operator prompts: a yes/no question a test plan asks a person.

"Is the status LED green?" is answered on a bench by a key press, by scanning
the YES or NO barcode printed on the bench card, and in scripts by a line of the
script file or ``--answers yes``. The runner sees only :class:`PromptSource`:
``ask(prompt) -> bool``, raising :class:`TimeoutError` when nobody answered in
time and :class:`PromptError` when no answer can come (a script ran out).

Three sources cover the station's cases:

* :class:`QueuedPrompts` — the terminal and the web feed it whatever the operator
  typed or scanned (:meth:`QueuedPrompts.answer`); slots' worker threads block
  in :meth:`~QueuedPrompts.ask`, answered oldest question first. Answers given
  while no question waits are dropped, so a stray early scan never answers the
  next unit's question.
* :class:`ScriptedPrompts` — answers from a list (``--script`` lines) or one
  answer for every question (``--answers yes``).
* :class:`StreamPrompts` — a question on one text stream, lines read from
  another (a plain terminal without Rich, a pipe).

Accepted answers (case-insensitive, surrounding blanks ignored) are in
:data:`YES_WORDS` and :data:`NO_WORDS`; the bench card's barcodes encode
``YES`` and ``NO``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TextIO

YES_WORDS = frozenset({"y", "yes", "pass", "ok"})
NO_WORDS = frozenset({"n", "no", "fail"})
BENCH_CARD_YES = "YES"
BENCH_CARD_NO = "NO"


class PromptError(Exception):
    """No answer can come (a script without an answer, input closed)."""


@dataclass(frozen=True, slots=True)
class Prompt:
    text: str
    step: str
    timeout_s: float | None
    """None waits as long as it takes."""


class PromptSource(Protocol):
    def ask(self, prompt: Prompt) -> bool:
        """The operator's answer; :class:`TimeoutError` or :class:`PromptError` when none."""
        ...


def parse_answer(text: str) -> bool | None:
    """True for a yes, False for a no, None for anything else (a sticker scanned by mistake)."""
    word = text.strip().lower()
    if word in YES_WORDS:
        return True
    if word in NO_WORDS:
        return False
    return None


@dataclass(slots=True)
class _Pending:
    prompt: Prompt
    answer: bool | None = None


class QueuedPrompts:
    """Answers arrive from another thread (keyboard, scanner, web form); slots ask.

    Several slots may wait at once: each answer goes to the oldest question still
    waiting (the one :attr:`waiting` shows the operator), so questions are answered
    in the order they were asked. A yes or no given while nothing waits is dropped.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._pending: list[_Pending] = []

    @property
    def waiting(self) -> Prompt | None:
        """The question the next answer goes to, for the display; None when none waits."""
        with self._changed:
            open_ = [p for p in self._pending if p.answer is None]
            return open_[0].prompt if open_ else None

    def pending(self) -> list[Prompt]:
        """Every question waiting, oldest first."""
        with self._changed:
            return [p.prompt for p in self._pending if p.answer is None]

    def answer(self, text: str) -> bool:
        """Offer a typed or scanned line; True when it was a yes/no and a question took it."""
        value = parse_answer(text)
        if value is None:
            return False
        with self._changed:
            for pending in self._pending:
                if pending.answer is None:
                    pending.answer = value
                    self._changed.notify_all()
                    return True
        return False

    def ask(self, prompt: Prompt) -> bool:
        pending = _Pending(prompt)
        with self._changed:
            self._pending.append(pending)
            try:
                answered = self._changed.wait_for(
                    lambda: pending.answer is not None, timeout=prompt.timeout_s
                )
            finally:
                self._pending.remove(pending)
            if not answered or pending.answer is None:
                raise TimeoutError(prompt.timeout_s)
            return pending.answer


class ScriptedPrompts:
    """Answers in order from a script; ``default`` answers the rest (``--answers yes``)."""

    def __init__(self, answers: Iterable[str | bool] = (), *, default: bool | None = None) -> None:
        parsed: list[bool] = []
        for index, raw in enumerate(answers):
            value = raw if isinstance(raw, bool) else parse_answer(raw)
            if value is None:
                raise ValueError(f"answer {index + 1}: {raw!r} is not yes or no")
            parsed.append(value)
        self._answers = parsed
        self._default = default
        self._lock = threading.Lock()
        self.asked: list[Prompt] = []
        """Every question asked, in order (scripts and tests read it)."""

    def ask(self, prompt: Prompt) -> bool:
        with self._lock:
            self.asked.append(prompt)
            if self._answers:
                return self._answers.pop(0)
        if self._default is None:
            raise PromptError(f"the script has no answer for {prompt.text!r}")
        return self._default


class StreamPrompts:
    """Ask on ``output``, read answer lines from ``input``; lines that are not yes/no re-ask.

    Reading a stream blocks, so ``timeout_s`` is not enforced here; use
    :class:`QueuedPrompts` where a question must time out.
    """

    def __init__(self, input: TextIO, output: TextIO) -> None:
        self._input = input
        self._output = output

    def ask(self, prompt: Prompt) -> bool:
        self._output.write(f"{prompt.text} [yes/no] ")
        self._output.flush()
        for line in self._input:
            value = parse_answer(line)
            if value is not None:
                return value
            self._output.write(f"{line.strip()!r} is not an answer; yes or no? ")
            self._output.flush()
        raise PromptError(f"input ended before an answer to {prompt.text!r}")
