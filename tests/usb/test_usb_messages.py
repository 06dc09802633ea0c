"""trayline's hand-written control messages against Google's protobuf runtime.

The messages are described here with protobuf's descriptor API, using the
field numbers and types of device-os-protobuf (``control/*.proto``,
``cloud/describe.proto``); bytes written by one side must parse on the other.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from trayline.usb.messages import (
    FirmwareModule,
    FirmwareModuleDependency,
    GetModuleInfoReply,
    IccidReply,
    StartFirmwareUpdateRequest,
    decode_bool,
    decode_string,
    encode_bool,
    encode_string,
)
from trayline.usb.wire import Fields, WireError, Writer, decode_varint, encode_varint

F = descriptor_pb2.FieldDescriptorProto


def _classes() -> dict[str, Any]:
    file = descriptor_pb2.FileDescriptorProto(
        name="trayline_test.proto", package="t", syntax="proto3"
    )

    def msg(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        m = file.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    msg("Str", ("value", 1, F.TYPE_STRING, opt, ""))
    msg("Bool", ("value", 1, F.TYPE_BOOL, opt, ""))
    msg("Iccid", ("iccid", 1, F.TYPE_STRING, opt, ""), ("imei", 2, F.TYPE_STRING, opt, ""))
    msg("Start", ("size", 1, F.TYPE_UINT32, opt, ""), ("format", 2, F.TYPE_UINT32, opt, ""))
    msg("Data", ("data", 1, F.TYPE_BYTES, opt, ""))
    msg("Dep", ("type", 1, F.TYPE_UINT32, opt, ""), ("index", 2, F.TYPE_UINT32, opt, ""),
        ("version", 3, F.TYPE_UINT32, opt, ""))  # fmt: skip
    msg(
        "Module",
        ("type", 1, F.TYPE_UINT32, opt, ""), ("index", 2, F.TYPE_UINT32, opt, ""),
        ("version", 3, F.TYPE_UINT32, opt, ""), ("store", 4, F.TYPE_UINT32, opt, ""),
        ("max_size", 5, F.TYPE_UINT32, opt, ""), ("checked_flags", 6, F.TYPE_FIXED32, opt, ""),
        ("passed_flags", 7, F.TYPE_FIXED32, opt, ""), ("hash", 8, F.TYPE_BYTES, opt, ""),
        ("dependencies", 9, F.TYPE_MESSAGE, rep, ".t.Dep"), ("size", 11, F.TYPE_UINT32, opt, ""),
    )  # fmt: skip
    msg("Info", ("modules", 2, F.TYPE_MESSAGE, rep, ".t.Module"))
    msg("Result", ("result", 1, F.TYPE_INT32, opt, ""))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    names = ("Str", "Bool", "Iccid", "Start", "Data", "Dep", "Module", "Info", "Result")
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"t.{n}")) for n in names}


PB = _classes()

MODULE = FirmwareModule(
    type=4, index=1, version=2302, store=0, max_size=491520, checked_flags=0x1E,
    passed_flags=0x1C, hash=bytes(range(32)),
    dependencies=(FirmwareModuleDependency(2, 0, 1006), FirmwareModuleDependency(8, 0, 202)),
    size=483328,
)  # fmt: skip


def test_string_and_bool_messages_match_protobuf() -> None:
    assert (
        PB["Str"].FromString(encode_string("e00fce68aabbccddeeff0011")).value
        == "e00fce68aabbccddeeff0011"
    )
    assert decode_string(PB["Str"](value="P028AB").SerializeToString()) == "P028AB"
    assert PB["Bool"].FromString(encode_bool(True)).value is True
    assert encode_bool(False) == b"" == PB["Bool"](value=False).SerializeToString()
    assert decode_bool(PB["Bool"](value=True).SerializeToString()) is True


def test_iccid_reply_both_ways() -> None:
    ours = IccidReply("89014103211118510720", "352753090123456")
    theirs = PB["Iccid"].FromString(ours.encode())
    assert (theirs.iccid, theirs.imei) == (ours.iccid, ours.imei)
    assert IccidReply.decode(PB["Iccid"](iccid="8901", imei="").SerializeToString()) == IccidReply(
        "8901", ""
    )


def test_start_firmware_update_request_matches_protobuf_bytes() -> None:
    ours = StartFirmwareUpdateRequest(300_000).encode()
    assert ours == PB["Start"](size=300_000, format=0).SerializeToString()
    assert StartFirmwareUpdateRequest.decode(ours).size == 300_000


def test_firmware_module_and_module_info_reply_both_ways() -> None:
    reply = GetModuleInfoReply((MODULE, FirmwareModule(type=7, index=0, version=7)))
    theirs = PB["Info"].FromString(reply.encode())
    first = theirs.modules[0]
    assert (first.type, first.index, first.version, first.size) == (4, 1, 2302, 483328)
    assert (first.checked_flags, first.passed_flags, first.hash) == (0x1E, 0x1C, bytes(range(32)))
    assert [(d.type, d.index, d.version) for d in first.dependencies] == [(2, 0, 1006), (8, 0, 202)]
    assert theirs.modules[1].type == 7
    again = GetModuleInfoReply.decode(theirs.SerializeToString())
    assert again == reply
    assert MODULE.valid is False and FirmwareModule(5, 2, 6, checked_flags=6, passed_flags=6).valid


def test_unknown_fields_are_skipped_and_deprecated_field_1_ignored() -> None:
    data = Writer().raw(1, b"\x08\x02").raw(2, MODULE.encode()).uint(15, 9).bytes()
    assert GetModuleInfoReply.decode(data).modules == (MODULE,)


def test_negative_int32_is_ten_byte_varint_like_protobuf() -> None:
    ours = Writer().uint(1, -120).bytes()
    assert ours == PB["Result"](result=-120).SerializeToString()
    assert Fields(ours).sint32(1) == -120


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**32 - 1, 2**63])
def test_varint_round_trip(value: int) -> None:
    assert decode_varint(encode_varint(value), 0) == (value, len(encode_varint(value)))


@pytest.mark.parametrize(
    "data", [b"\x08", b"\x0a\x05abc", b"\x0d\x01\x02", b"\x0b", b"\x00", b"\x08" + b"\xff" * 11]
)
def test_malformed_messages_raise_wire_error(data: bytes) -> None:
    with pytest.raises(WireError):
        Fields(data)


def test_wire_type_mismatch_is_reported() -> None:
    with pytest.raises(WireError, match="wire type"):
        Fields(b"\x08\x01").raw(1)
