"""Labels: the exact ZPL, sent to a raw-socket printer on 127.0.0.1, or appended to a file."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from trayline.station.labels import (
    LabelConfig,
    LabelData,
    LabelError,
    parse_label_config,
    parse_printer,
    print_label,
    render_zpl,
)

UNIT = LabelData(serial="P028AB1234567", device_id="e00fce68a1b2c3d4e5f60718", sku="BRN404X")
EXPECTED = (
    b"^XA\n"
    b"^CI28\n"
    b"^FO20,20^BXN,6,200^FH_^FDP028AB1234567;e00fce68a1b2c3d4e5f60718^FS\n"
    b"^FO200,20^A0N,30,30^FH_^FDAcme Tracker^FS\n"
    b"^FO200,60^A0N,26,26^FH_^FDSN P028AB1234567^FS\n"
    b"^FO200,96^A0N,22,22^FH_^FDID e00fce68a1b2c3d4e5f60718^FS\n"
    b"^FO200,128^A0N,22,22^FH_^FDSKU BRN404X^FS\n"
    b"^XZ\n"
)


class Printer:
    """A Zebra-style raw port: accept one connection, keep every byte until the peer closes."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            while chunk := conn.recv(4096):
                self.received += chunk

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def printer() -> Iterator[Printer]:
    p = Printer()
    yield p
    p.close()


def test_zpl_is_exact() -> None:
    assert render_zpl(UNIT, LabelConfig("x", title="Acme Tracker")) == EXPECTED


def test_command_characters_in_text_are_hex_escaped() -> None:
    zpl = render_zpl(LabelData("P1", "e0"), LabelConfig("x", title="A^B~C_D", copies=3))
    assert b"^FH_^FDA_5EB_7EC_5FD^FS" in zpl
    assert zpl.endswith(b"^PQ3\n^XZ\n")


def test_printed_over_a_raw_socket(printer: Printer) -> None:
    where = print_label(UNIT, LabelConfig(f"tcp://127.0.0.1:{printer.port}", title="Acme Tracker"))
    printer.thread.join(5)
    assert where == f"tcp://127.0.0.1:{printer.port}"
    assert printer.received == EXPECTED


def test_refused_printer_names_host_and_port() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(LabelError) as info:
        print_label(UNIT, LabelConfig(f"tcp://127.0.0.1:{port}", timeout_s=2))
    assert str(info.value) == f"label printer 127.0.0.1:{port}: connection refused (is it on?)"


def test_file_targets_append(tmp_path: Path) -> None:
    path = tmp_path / "labels.zpl"
    cfg = LabelConfig(f"file://{path}", title="Acme Tracker")
    assert print_label(UNIT, cfg) == str(path)
    print_label(UNIT, LabelConfig(str(path), title="Acme Tracker"))
    assert path.read_bytes() == EXPECTED * 2
    with pytest.raises(LabelError, match=r"^label file .*missing/labels.zpl: No such file"):
        print_label(UNIT, LabelConfig(str(tmp_path / "missing" / "labels.zpl")))


@pytest.mark.parametrize(
    ("target", "parsed"),
    [
        ("tcp://printer.local", ("tcp", "printer.local:9100")),
        ("tcp://10.0.0.5:6101", ("tcp", "10.0.0.5:6101")),
        ("tcp://[::1]:9100", ("tcp", "[::1]:9100")),
        ("file:///srv/labels.zpl", ("file", "/srv/labels.zpl")),
        ("labels/out.zpl", ("file", "labels/out.zpl")),
    ],
)
def test_parse_printer(target: str, parsed: tuple[str, str]) -> None:
    assert parse_printer(target) == parsed


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("http://10.0.0.5/", "use tcp://HOST:PORT or file:///path"),
        ("tcp://10.0.0.5:notaport", "port is not a number"),
        ("tcp://:9100", "expected tcp://HOST:PORT"),
        ("file://server/share/x.zpl", "a file URL has no host"),
        ("  ", "empty"),
    ],
)
def test_parse_printer_refuses(target: str, words: str) -> None:
    with pytest.raises(LabelError, match=words):
        parse_printer(target)


def test_label_config_errors_name_the_key() -> None:
    cfg = parse_label_config({"printer": "tcp://10.0.0.5", "title": "T", "copies": 2})
    assert cfg == LabelConfig("tcp://10.0.0.5", "T", 6, 2, 5.0)
    cases = [
        ({}, "label.printer: missing"),
        ({"printer": "tcp://10.0.0.5", "colour": "red"}, "label.colour: unknown key"),
        ({"printer": "ftp://x"}, "label.printer: label printer ftp://x: use tcp://"),
        (
            {"printer": "a.zpl", "module_size": 0},
            "label.module_size: expected a whole number 1..12",
        ),
        ({"printer": "a.zpl", "timeout_s": 0}, "label.timeout_s: expected a number"),
        ([], "label: expected a table"),
    ]
    for data, message in cases:
        with pytest.raises(LabelError) as info:
            parse_label_config(data)
        assert str(info.value).startswith(message), str(info.value)


def test_printer_that_never_accepts_times_out_naming_host_and_port() -> None:
    """A listening socket whose accept queue is full drops new SYNs: connect hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    held: list[socket.socket] = []
    try:
        for _ in range(16):  # fill the accept queue until a connect no longer completes
            probe = socket.socket()
            probe.settimeout(0.3)
            try:
                probe.connect(("127.0.0.1", port))
            except TimeoutError:
                probe.close()
                break
            held.append(probe)
        else:
            pytest.skip("this kernel keeps accepting on a full queue; cannot simulate a hang")
        with pytest.raises(LabelError) as info:
            print_label(UNIT, LabelConfig(f"tcp://127.0.0.1:{port}", timeout_s=0.3))
        assert str(info.value) == f"label printer 127.0.0.1:{port}: no connection within 0.3 s"
    finally:
        for probe in held:
            probe.close()
        server.close()
