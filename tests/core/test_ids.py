"""Identifier parsers: normalisation, clear errors, and nothing but InvalidIdentifier on junk."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trayline.core.ids import (
    DeviceId,
    GroupName,
    Iccid,
    Imei,
    InvalidIdentifier,
    ProductRef,
    SerialNumber,
    luhn_check_digit,
    parse_identifier,
    parse_sticker,
)

PARSERS = [
    DeviceId.parse,
    SerialNumber.parse,
    Iccid.parse,
    Imei.parse,
    GroupName.parse,
    ProductRef.parse,
    parse_sticker,
    parse_identifier,
]


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__qualname__)
@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.text(),
        st.text(alphabet="0123456789abcdefABCDEF \t\r\n-_89P"),
        st.binary().map(lambda b: b.decode("latin-1")),
    )
)
def test_random_text_raises_only_invalid_identifier(parser: object, text: str) -> None:
    try:
        parser(text)  # type: ignore[operator]
    except InvalidIdentifier as exc:
        assert str(exc)


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__qualname__)
@pytest.mark.parametrize("value", [None, 12, b"0123", ["x"]])
def test_non_text_raises_invalid_identifier(parser: object, value: object) -> None:
    with pytest.raises(InvalidIdentifier):
        parser(value)  # type: ignore[operator]


def test_device_id_normalised_lowercase() -> None:
    assert DeviceId.parse("  0123456789ABCDEF01234567\r\n") == "0123456789abcdef01234567"
    with pytest.raises(InvalidIdentifier, match="24 hexadecimal"):
        DeviceId.parse("0123456789abcdef0123456")
    with pytest.raises(InvalidIdentifier):
        DeviceId.parse("0123456789abcdef0123456g")


def test_serial_uppercase_and_prefix() -> None:
    serial = SerialNumber.parse("p028ab1234567xy")
    assert serial == "P028AB1234567XY"
    assert serial.prefix == "P028"
    with pytest.raises(InvalidIdentifier, match="15 letters"):
        SerialNumber.parse("P028AB1234567X")


def test_iccid_rules() -> None:
    assert Iccid.parse("8934076500002589174") == "8934076500002589174"
    for bad in (
        "1934076500002589174",
        "89340765",
        "89340765000025891741234",
        "89340765000025891a4",
    ):
        with pytest.raises(InvalidIdentifier):
            Iccid.parse(bad)


def test_imei_luhn() -> None:
    body = "35693803564380"
    good = body + luhn_check_digit(body)
    assert Imei.parse(good) == good
    wrong = body + str((int(good[-1]) + 1) % 10)
    with pytest.raises(InvalidIdentifier, match="check digit"):
        Imei.parse(wrong)


def test_group_name() -> None:
    assert GroupName.parse("20261124_0050") == "20261124_0050"
    assert GroupName.parse("Line-A") == "line-a"
    for bad in ("", "a b", "x" * 65, 'a"b', "grüße"):
        with pytest.raises(InvalidIdentifier, match="group name"):
            GroupName.parse(bad)


def test_product_ref() -> None:
    assert str(ProductRef.parse("01234")) == "1234"
    assert ProductRef.parse("1234").is_id
    assert ProductRef.parse("my-product-v1").value == "my-product-v1"
    with pytest.raises(InvalidIdentifier):
        ProductRef.parse("My Product")


def test_sticker_hides_secret() -> None:
    sticker = parse_sticker("P028AB1234567XY ABCDEFGHIJKLMNO\r\n")
    assert sticker.serial == "P028AB1234567XY"
    assert sticker.mobile_secret == "ABCDEFGHIJKLMNO"
    assert "ABCDEFGHIJKLMNO" not in repr(sticker)
    assert "ABCDEFGHIJKLMNO" not in str(sticker)
    assert parse_sticker("E26AAA111111111").mobile_secret is None


def test_sticker_error_never_shows_secret() -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_sticker("P028AB1234567XY SECRET\x01BAD")
    assert "SECRET" not in str(info.value)


def test_parse_identifier_classifies() -> None:
    body = "35693803564380"
    imei = body + luhn_check_digit(body)
    assert isinstance(parse_identifier("0123456789abcdef01234567"), DeviceId)
    assert isinstance(parse_identifier("P028AB1234567XY"), SerialNumber)
    assert isinstance(parse_identifier("8934076500002589174"), Iccid)
    assert isinstance(parse_identifier(imei), Imei)
