"""Operator prompts: typed keys, YES/NO bench-card barcodes, script lines, --answers yes."""

from __future__ import annotations

import io
import threading
import time

import pytest

from trayline.station.prompts import (
    BENCH_CARD_NO,
    BENCH_CARD_YES,
    Prompt,
    PromptError,
    QueuedPrompts,
    ScriptedPrompts,
    StreamPrompts,
    parse_answer,
)

Q = Prompt("Is the LED green?", "led", timeout_s=5)


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("y", True),
        ("YES", True),
        (" yes\n", True),
        ("Pass", True),
        (BENCH_CARD_YES, True),
        ("n", False),
        ("No", False),
        ("FAIL", False),
        (BENCH_CARD_NO, False),
        ("P028AB1234567", None),
        ("", None),
        ("yess", None),
        ("1", None),
    ],
)
def test_parse_answer(text: str, answer: bool | None) -> None:
    assert parse_answer(text) is answer


def test_scripted_answers_in_order_then_default() -> None:
    prompts = ScriptedPrompts(["yes", "NO", False], default=True)
    assert [prompts.ask(Q) for _ in range(5)] == [True, False, False, True, True]
    assert len(prompts.asked) == 5 and prompts.asked[0].text == "Is the LED green?"


def test_script_without_an_answer_is_a_prompt_error() -> None:
    prompts = ScriptedPrompts(["y"])
    prompts.ask(Q)
    with pytest.raises(PromptError, match="no answer for 'Is the LED green\\?'"):
        prompts.ask(Q)
    with pytest.raises(ValueError, match="answer 2: 'maybe' is not yes or no"):
        ScriptedPrompts(["yes", "maybe"])


def test_stream_prompts_reask_until_yes_or_no() -> None:
    out = io.StringIO()
    prompts = StreamPrompts(io.StringIO("P028AB123\nno\n"), out)
    assert prompts.ask(Q) is False
    assert out.getvalue() == (
        "Is the LED green? [yes/no] 'P028AB123' is not an answer; yes or no? "
    )
    with pytest.raises(PromptError, match="input ended"):
        StreamPrompts(io.StringIO(""), io.StringIO()).ask(Q)


def test_queued_prompt_answered_by_a_scanned_barcode_from_another_thread() -> None:
    prompts = QueuedPrompts()
    assert prompts.answer(BENCH_CARD_YES) is False  # nobody asked yet: dropped
    result: list[bool] = []
    worker = threading.Thread(target=lambda: result.append(prompts.ask(Q)))
    worker.start()
    while prompts.waiting is None:
        time.sleep(0.001)
    assert prompts.waiting == Q
    assert prompts.answer("P028AB123") is False  # a sticker is not an answer
    assert prompts.answer(BENCH_CARD_NO) is True
    worker.join(5)
    assert result == [False]
    assert prompts.waiting is None


def test_queued_prompt_times_out() -> None:
    prompts = QueuedPrompts()
    with pytest.raises(TimeoutError):
        prompts.ask(Prompt("?", "x", timeout_s=0.05))


def test_two_slots_waiting_are_answered_oldest_first() -> None:
    prompts = QueuedPrompts()
    first, second = Prompt("slot 1: LED green?", "led", 5), Prompt("slot 2: LED green?", "led", 5)
    results: dict[str, bool] = {}

    def ask(p: Prompt) -> None:
        results[p.text] = prompts.ask(p)

    one = threading.Thread(target=ask, args=(first,))
    one.start()
    while prompts.waiting is None:
        time.sleep(0.001)
    two = threading.Thread(target=ask, args=(second,))
    two.start()
    while len(prompts.pending()) < 2:
        time.sleep(0.001)
    assert prompts.waiting == first
    assert prompts.answer("NO") is True
    one.join(5)
    assert prompts.waiting == second
    assert prompts.answer("yes") is True
    two.join(5)
    assert results == {first.text: False, second.text: True}
    assert prompts.pending() == [] and prompts.answer("yes") is False
