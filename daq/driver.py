"""The driver contract and the one way drivers are found: the ``daq.drivers`` entry points.

A driver is protocol only. The bus worker opens the transport and hands the driver a
*link* (a connected pymodbus client for ``modbus`` buses, an open pyserial port for
``serial`` buses); ``poll`` performs the device's transactions on it and returns channel
values. A driver never opens ports, sleeps or retries: the scheduler owns time, retries
and backoff. A poll that gets no answer raises :class:`~daq.errors.NoResponse`; one that
gets an answer it cannot decode raises :class:`~daq.errors.ProtocolError`. A channel that
answered with a physically impossible value is returned with quality ``bad`` and a flag.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog

from .model import ChannelValue
from .schema import Schema

log = structlog.get_logger("daq.driver")

ENTRY_POINT_GROUP = "daq.drivers"


@dataclass(frozen=True)
class ChannelSpec:
    """A channel a device produces on every poll (used for gap records when it is silent)."""

    name: str
    quantity: str = ""
    unit: str = ""


class Driver:
    """Base class of device drivers.

    Subclasses set ``link_kind`` (``"modbus"`` or ``"serial"``), ``options_schema`` (the
    schema of the device's ``options`` in the configuration) and implement ``poll``.
    ``__init__`` receives options already checked against ``options_schema``; it may raise
    :class:`~daq.errors.ConfigError` for cross-field problems.
    """

    link_kind: ClassVar[str] = "modbus"
    options_schema: ClassVar[Schema] = Schema({})
    description: ClassVar[str] = ""

    def __init__(self, name: str, address: int | None, options: dict[str, Any]) -> None:
        self.name = name
        self.address = address
        self.options = options

    @property
    def channels(self) -> list[ChannelSpec]:
        """The channels every successful poll returns."""
        return []

    def transactions(self) -> list[int]:
        """Registers (or reply bytes / 2) of each request one poll makes: the wire budget."""
        return [2]

    def counters(self) -> dict[str, int]:
        """Events the driver counted (rollovers, garbled replies …), shown by ``daq status``."""
        return {}

    def poll(self, link: Any) -> list[ChannelValue]:
        raise NotImplementedError


@dataclass(frozen=True)
class LoadFailure:
    """A driver whose entry point failed to import: quarantined, reported by ``daq drivers``."""

    name: str
    target: str
    error: str


def _load(ep: Any, failed: list[LoadFailure]) -> type[Driver] | None:
    try:
        obj = ep.load()
        if not (isinstance(obj, type) and issubclass(obj, Driver)):
            raise TypeError(f"{ep.value} is not a daq.driver.Driver subclass")
        if obj.link_kind not in ("modbus", "serial"):
            raise TypeError(f"{ep.value}.link_kind must be 'modbus' or 'serial'")
    except Exception as err:  # a third-party plugin may fail in any way at all
        failed.append(LoadFailure(ep.name, ep.value, f"{type(err).__name__}: {err}"))
        log.error("driver_quarantined", driver=ep.name, target=ep.value,
                  error=f"{type(err).__name__}: {err}")
        return None
    return obj


def discover(only: set[str] | None = None) -> tuple[dict[str, type[Driver]], list[LoadFailure]]:
    """Load every driver registered under ``daq.drivers`` (or those named in ``only``);
    failures are quarantined."""
    found: dict[str, type[Driver]] = {}
    failed: list[LoadFailure] = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if only is not None and ep.name not in only:
            continue
        obj = _load(ep, failed)
        if obj is not None:
            found[ep.name] = obj
    return found, failed


class DriverTable(Mapping[str, type[Driver]]):
    """The installed drivers by name, each imported the first time it is looked up.

    A configuration imports only the drivers it names: ``daq check`` of a site without a
    GNSS receiver never imports the NMEA driver's numpy. Iterating gives every installed
    name without importing anything (for "did you mean"). A driver that fails to import
    is missing from the table and recorded in :attr:`failures`, as :func:`discover` does.
    """

    def __init__(self) -> None:
        self._eps = {ep.name: ep for ep in
                     importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
        self._loaded: dict[str, type[Driver]] = {}
        self.failures: list[LoadFailure] = []

    def __getitem__(self, name: str) -> type[Driver]:
        if name in self._loaded:
            return self._loaded[name]
        if name not in self._eps or any(f.name == name for f in self.failures):
            raise KeyError(name)
        obj = _load(self._eps[name], self.failures)
        if obj is None:
            raise KeyError(name)
        self._loaded[name] = obj
        return obj

    def __iter__(self) -> Iterator[str]:
        return iter(self._eps)

    def __len__(self) -> int:
        return len(self._eps)


def lazy_drivers() -> tuple[DriverTable, list[LoadFailure]]:
    """:class:`DriverTable` and its (growing) list of failures."""
    table = DriverTable()
    return table, table.failures
