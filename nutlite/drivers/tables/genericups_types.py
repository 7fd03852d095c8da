"""The contact-closure cable types of ``genericups`` (``upstype = 0 .. 23``), as data.

Each type says which serial lines the cable uses, in the same syntax as the ``CP``/``OL``/``LB``/``RB``/
``BYPASS``/``SD`` overrides of ups.conf (``-`` in front = active low, ``A+B`` = several lines, ``none`` =
not used); :mod:`nutlite.drivers.programs.genericups` parses both with the same code.

* ``cp``: the lines the computer holds high to power the cable (``DTR``, ``RTS``, ``ST``);
* ``ol``/``lb``/``rb``/``bypass``: the input lines (``CTS``, ``DCD``, ``RNG``, ``DSR``) that say on line,
  low battery, replace battery and bypass;
* ``sd``: the lines raised to tell the UPS to cut power (``ST`` alone = send a break), or ``None``
  when nobody knows how the cable does it (killpower then fails, as on Debian).

The line assignments are those of NUT's genericups(8) manual page, checked against Debian's
``/lib/nut/genericups`` 2.8.0 with the modem-line test double (``tests/fakemodem``). Where the two
disagree, the data follows the binary (what a working NUT setup does today) and says so in ``note``.
``mfr``/``model`` are the ``ups.mfr``/``ups.model`` values Debian's driver publishes for the type; the
descriptions are nutlite's own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CableType:
    """One contact-closure cable (``upstype``): its number, wiring and the UPS it is for."""

    number: int
    description: str
    mfr: str
    model: str
    cp: str
    ol: str
    lb: str
    sd: str | None
    rb: str = "none"
    bypass: str = "none"
    note: str = ""


CABLE_TYPES: tuple[CableType, ...] = (
    CableType(0, "UPSONIC LAN Saver 600", "UPSONIC", "LAN Saver 600",
              cp="DTR+RTS", ol="-CTS", lb="DCD", sd="RTS",
              note="the manual page says SD=DTR; Debian 2.8.0 raises RTS"),
    CableType(1, "APC Back-UPS, Back-UPS Pro or Smart-UPS on a 940-0095A/C cable", "APC", "Back-UPS",
              cp="DTR", ol="-RNG", lb="DCD", sd="RTS"),
    CableType(2, "APC Back-UPS, Back-UPS Pro or Smart-UPS on a 940-0020B/C cable", "APC", "Back-UPS",
              cp="RTS", ol="-CTS", lb="DCD", sd="DTR+RTS"),
    CableType(3, "PowerTech Comp1000, cable powered from DTR", "PowerTech", "Comp1000",
              cp="DTR", ol="-CTS", lb="DCD", sd="DTR+RTS",
              note="the manual page says OL=CTS; Debian 2.8.0 reads on line when CTS is low"),
    CableType(4, "generic RUPS", "Generic", "Generic RUPS model",
              cp="RTS", ol="CTS", lb="-DCD", sd="-RTS"),
    CableType(5, "Tripp Lite with a LAN 2.2 interface (black 73-0844 cable)", "TrippLite", "Internet Office Series",
              cp="DTR", ol="CTS", lb="-DCD", sd="DTR+RTS"),
    CableType(6, "Best Patriot on an INT51 cable", "Best", "Patriot",
              cp="DTR", ol="CTS", lb="-DCD", sd="RTS"),
    CableType(7, "CyberPower Power99; also Upsonic Power Guardian PG-500, Belkin Home Office "
                 "(F6H350/500/650-SER), Eaton management card contact config 3 with cable 66033",
              "CyberPower", "Power99",
              cp="RTS", ol="CTS", lb="-DCD", sd="DTR"),
    CableType(8, "Nitram Elite 500", "Nitram", "Elite UPS",
              cp="DTR", ol="CTS", lb="-DCD", sd=None),
    CableType(9, "APC Back-UPS, Back-UPS Pro or Smart-UPS on a 940-0023A cable", "APC", "Back-UPS",
              cp="none", ol="-DCD", lb="CTS", sd="RTS"),
    CableType(10, "Victron Lite with the crack cable", "Victron", "Lite",
              cp="RTS", ol="CTS", lb="-DCD", sd="DTR"),
    CableType(11, "Powerware 3115", "Powerware", "3115",
              cp="DTR", ol="-CTS", lb="-DCD", sd="ST"),
    CableType(12, "APC Back-UPS Office on a 940-0119A cable", "APC", "Back-UPS Office",
              cp="RTS", ol="-CTS", lb="DCD", sd="DTR"),
    CableType(13, "RPT Repoteck RPT-800A or RPT-162A", "RPT", "Repoteck",
              cp="DTR+RTS", ol="DCD", lb="-CTS", sd="ST"),
    CableType(14, "Online P-series", "Online", "P250, P500, P750, P1250",
              cp="DTR", ol="DCD", lb="-CTS", sd="RTS"),
    CableType(15, "Powerware 5119 or 5125", "Powerware", "5119",
              cp="DTR", ol="CTS", lb="-DCD", sd="ST"),
    CableType(16, "Nitram Elite 2002", "Nitram", "Elite UPS",
              cp="DTR+RTS", ol="CTS", lb="-DCD", sd=None),
    CableType(17, "PowerKinetics 9001", "PowerKinetics", "9001",
              cp="DTR", ol="CTS", lb="-DCD", sd=None),
    CableType(18, "Tripp Lite Omni 450LAN with Martin's cabling", "TrippLite", "Omni 450LAN",
              cp="DTR", ol="CTS", lb="DCD", sd=None,
              note="the manual page says SD=none; Debian 2.8.0 has no shutdown line for it (killpower fails)"),
    CableType(19, "Fideltronik Ares series", "Fideltronik", "Ares Series",
              cp="DTR", ol="CTS", lb="-DCD", sd="RTS"),
    CableType(20, "Powerware 5119 RM", "Powerware", "5119 RM",
              cp="DTR", ol="-CTS", lb="DCD", sd="ST"),
    CableType(21, "generic RUPS 2000 (Megatec M2501 cable)", "Generic", "Generic RUPS 2000",
              cp="RTS", ol="CTS", lb="-DCD", sd="RTS+DTR"),
    CableType(22, "Gamatronic, any model with the alarm interface (also CyberPower SL series)",
              "Gamatronic Electronic Industries", "Generic Alarm UPS",
              cp="RTS", ol="CTS", lb="-DCD", sd="DTR"),
    CableType(23, "FTTx (fibre to the x) battery backup with a 4-wire telemetry interface",
              "Generic", "Generic FTTx Battery Backup",
              cp="RTS", ol="CTS", lb="-DCD", rb="-RNG", bypass="-DSR", sd="none",
              note="SD=none: killpower drops every output line (as Debian 2.8.0 does)"),
)

assert [t.number for t in CABLE_TYPES] == list(range(len(CABLE_TYPES)))
