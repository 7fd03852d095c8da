"""NUT 2.8.0's SNMP MIB mappings as data tables, one file per vendor family (format: nutlite.snmp.mib).

``NAMES`` is the order in which ``mibs=auto`` tries them (NUT's ``mibs=--list`` order); ``load(name)``
imports a mapping's family file on first use.
"""

from __future__ import annotations

import importlib

from nutlite.snmp.mib import Mapping

#: mapping name -> family module (in NUT's --list order)
FAMILIES: dict[str, str] = {
    "apc_ats": "apc", "apc_pdu": "apc", "apcc": "apc", "baytech": "baytech", "bestpower": "eaton_ups",
    "cpqpower": "hpe", "cyberpower": "cyberpower", "delta_ups": "delta", "eaton_ats16_nmc": "eaton_ats",
    "eaton_ats16_nm2": "eaton_ats", "eaton_ats30": "eaton_ats", "eaton_epdu": "eaton_pdu",
    "emerson_avocent_pdu": "emerson", "aphel_revelation": "eaton_pdu", "aphel_genesisII": "eaton_pdu",
    "pulizzi_switched1": "eaton_pdu", "pulizzi_switched2": "eaton_pdu", "hpe_epdu": "hpe",
    "huawei": "huawei", "mge": "mge", "netvision": "netvision", "pw": "eaton_ups", "pxgx_ups": "eaton_ups",
    "raritan": "raritan", "raritan-px2": "raritan", "xppc": "xppc", "tripplite": "ietf", "ietf": "ietf",
}
NAMES: tuple[str, ...] = tuple(FAMILIES)


def load(name: str) -> Mapping:
    """The mapping called ``name``; KeyError if there is none."""
    module = importlib.import_module(f"{__name__}.{FAMILIES[name]}")
    mapping: Mapping = module.MAPPINGS[name]
    return mapping


def mappings() -> list[Mapping]:
    return [load(n) for n in NAMES]


def list_text() -> str:
    """What ``mibs=--list`` prints: one line per entry point, in the order mibs=auto tries them."""
    lines = ["MIB mappings of snmp-ups, in the order mibs=auto tries them:", "",
             f" {'#':>3}  {'mapping':<22} {'version':>7}  {'entry point (sysObjectID)':<34} check OID"]
    n = 0
    for m in mappings():
        for point in m.entry_points:
            n += 1
            lines.append(f" {n:>3}  {m.name:<22} {m.version:>7}  .{point:<33} "
                         f"{'.' + m.check if m.check else '-'}")
    lines += ["", f"In all: {len(NAMES)} mappings, {n} entry points."]
    return "\n".join(lines) + "\n"
