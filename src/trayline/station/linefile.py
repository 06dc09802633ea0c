"""The commented starter ``trayline.toml`` that ``trayline line init`` writes.

It is a working line for the SKU given (the virtual tray runs it as is) and a
reference: every key the schema knows appears once, with a comment that says
what it does. ``render_starter`` fills in the SKU's facts (Gen 3 setup done,
Cat M1) so the file tells the engineer what applies to their product.
"""

from __future__ import annotations

from trayline.core.skus import Sku

__all__ = ["render_starter"]

_TEMPLATE = """\
# trayline.toml — one line: one product built at one site.  Docs: docs/line-config.md
# Every problem in this file is reported as FILE:LINE: key: what is wrong.

[line]
product = "{product}"          # Particle product ID or slug the units are provisioned into
sku = "{sku}"                  # {radio}; serials start with {prefixes}
station = "station-1"          # this bench's name (events and leases carry it)
retest_limit = 2               # a failed unit may be tested again this many times

[site]
country = "US"                 # ISO country of the CM. {cat_m1_note}
name = ""                      # free text, e.g. the CM's name

[bundles]                      # created with `trayline firmware bundle create`
test = "{sku_lower}-test"          # test firmware: its user part speaks the test-firmware protocol
production = "{sku_lower}-production"

# Parts the operator scans after the device sticker, in any order.
# pattern: a Python regular expression the whole barcode must match.
# unique: the database refuses a serial already linked to another unit.
[[parts]]
name = "battery"
pattern = "BAT-[0-9]{{8}}"
required = true
unique = true

[[parts]]
name = "enclosure"
pattern = "ENC-[0-9]{{8}}"
required = true
unique = true

# The test plan (docs/test-firmware.md): steps run in order against the test firmware.
[test_plan]
timeout_s = 5                  # per firmware step and for the hello
stop_on_fail = true

[[test_plan.steps]]
name = "power"
kind = "measure"
measurements = [
  {{ name = "vbat", unit = "V", low = 3.6, high = 4.3 }},
  {{ name = "temp", unit = "C", low = 10, high = 45 }},
]

[[test_plan.steps]]
name = "radio"
kind = "run"
test = "radio"
timeout_s = 30
measurements = [{{ name = "rssi", unit = "dBm", low = -105 }}]
{setup_step}
# How `trayline provision run --from-line` provisions the ready units.
[provisioning]
group = "{{date:%Y%m%d}}_{{count:04d}}"   # device group per run (strftime date, run counter)
naming = true                  # name each device after its serial (Particle's recommendation)
claim = "none"                 # none | import (claim_user = "team@example.com") | each

# Slots: one programmer probe (and test port) per fixture position.
# backend: virtual, openocd, nrfjprog, jlink, pyocd, particle-cli, daplink, stm32, usb
# probe: the probe's serial; empty = the device placed there (virtual line).
# port: the test firmware's serial port (e.g. /dev/ttyACM0); empty = found per device.
[slots.A]
backend = "virtual"
probe = ""
port = ""

[slots.B]
backend = "virtual"

[slots.C]
backend = "virtual"

[slots.D]
backend = "virtual"
"""

_SETUP_STEP = """
[[test_plan.steps]]             # Gen 3 on Device OS < 4: skip listening mode (the guide)
name = "setup_done"
kind = "setup_done"
"""


def render_starter(sku: Sku, product: str) -> str:
    cat_m1 = (
        "Cat M1 SKU: at a CM in China (CN) the cloud connectivity step is skipped."
        if sku.lte_cat_m1
        else ""
    )
    return _TEMPLATE.format(
        product=product,
        sku=sku.name,
        sku_lower=sku.name.lower(),
        radio=sku.radio,
        prefixes=", ".join(sku.serial_prefixes),
        cat_m1_note=cat_m1,
        setup_step=_SETUP_STEP if sku.setup_done_applies else "",
    )
