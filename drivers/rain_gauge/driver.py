"""Tipping-bucket rain gauge counter over Modbus (uint16 or uint32 register).

The device counts tips; the driver keeps the previous count between polls (protocol
state) and returns three channels:

* ``tips``: tips since the previous successful poll (count);
* ``rain_interval``: ``tips × mm_per_tip`` (mm since the previous successful poll);
* ``rain_total``: mm accumulated since this driver object was created (the daemon's start).

A count smaller than the previous one is a *rollover* of the counter's modulus (65536 for
uint16, 2³² for uint32): ``tips = count + modulus − previous``, flag ``rollover``, counted
in :attr:`RainGaugeDriver.rollovers`. When ``max_tips_per_poll`` is configured, a decrease
whose rollover reading would exceed it is a *reset* (power cycle, the counter restarted at
0): ``tips = count``, flag ``counter_reset``, counted in :attr:`RainGaugeDriver.resets`;
an increase above it is kept but ``suspect`` with flag ``implausible``. The first poll only
takes the baseline: 0 tips, flag ``baseline``. A poll without answer leaves the state
alone, so the next answer's interval covers the whole gap.
"""

from __future__ import annotations

from typing import Any, ClassVar

from daq.driver import ChannelSpec, Driver
from daq.model import ChannelValue, Quality
from daq.schema import Field, Schema

from ..modbus.registers import RegisterReader, RegisterRef, ref_schema

OPTIONS = Schema({
    "counter": Field(ref_schema("uint16", "holding", ("uint16", "uint32")), required=True),
    "mm_per_tip": Field("float", default=0.2, min=0.0, doc="mm of rain per tip"),
    "max_tips_per_poll": Field("int", min=1, doc="tell resets from rollovers; flag jumps"),
})


class RainGaugeDriver(Driver):
    """Tipping-bucket counter → tips, rain since last poll (mm) and running total (mm)."""

    link_kind: ClassVar[str] = "modbus"
    options_schema: ClassVar[Schema] = OPTIONS
    description: ClassVar[str] = "tipping-bucket rain gauge counter (uint16/uint32)"

    def __init__(self, name: str, address: int | None, options: dict[str, Any]) -> None:
        super().__init__(name, address, options)
        self._ref = RegisterRef.from_options(options["counter"])
        self._reader = RegisterReader([self._ref])
        self.modulus = 1 << (16 * self._ref.count)
        self.mm_per_tip = float(options.get("mm_per_tip", 0.2))
        self.max_tips: int | None = options.get("max_tips_per_poll")
        self.previous: int | None = None
        self.total_mm = 0.0
        self.rollovers = 0
        self.resets = 0

    def counters(self) -> dict[str, int]:
        return {"rollovers": self.rollovers, "resets": self.resets}

    def transactions(self) -> list[int]:
        """Registers of each request one poll makes (the bus budget)."""
        return [r.count for r in self._reader.requests]

    @property
    def channels(self) -> list[ChannelSpec]:
        return [ChannelSpec("tips", "tips", "count"),
                ChannelSpec("rain_interval", "precipitation", "mm"),
                ChannelSpec("rain_total", "precipitation_total", "mm")]

    def poll(self, link: Any) -> list[ChannelValue]:
        snap = self._reader.read(link, self.address if self.address is not None else 1)
        count = int(snap.value(self._ref))
        tips, flags, quality = self.update(count)
        interval = tips * self.mm_per_tip
        raw = {"count": count}
        return [ChannelValue("tips", float(tips), "count", quality, "tips", flags, raw),
                ChannelValue("rain_interval", interval, "mm", quality, "precipitation",
                             flags, raw),
                ChannelValue("rain_total", self.total_mm, "mm", quality,
                             "precipitation_total", flags, raw)]

    def update(self, count: int) -> tuple[int, tuple[str, ...], Quality]:
        """Account for a new counter value: (tips since previous, flags, quality)."""
        prev, self.previous = self.previous, count
        if prev is None:
            return 0, ("baseline",), Quality.GOOD
        flags: tuple[str, ...] = ()
        quality = Quality.GOOD
        if count >= prev:
            tips = count - prev
            if self.max_tips is not None and tips > self.max_tips:
                flags, quality = ("implausible",), Quality.SUSPECT
        else:
            wrapped = count + self.modulus - prev
            if self.max_tips is None or wrapped <= self.max_tips:
                tips, flags = wrapped, ("rollover",)
                self.rollovers += 1
            else:
                tips, flags = count, ("counter_reset",)
                self.resets += 1
        self.total_mm += tips * self.mm_per_tip
        return tips, flags, quality
