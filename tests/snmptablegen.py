"""Draft nutlite's SNMP MIB tables from the black-box survey of Debian's snmp-ups (tests/snmpsurvey.py).

The survey ran NUT's driver against catch-all agents and recorded, per mapping, which OID fed which
variable in which order, in which pass, what each printed for known inputs (so the scaling), what
each constant input printed (so enumerations and ``ups.status`` tokens), the commands and the SETs
they sent. This turns that record into the table format of nutlite.snmp.mib, one family file per
vendor (nutlite/drivers/tables/snmp/<family>.py). The files are then read and kept by hand; rerun
this only to redraft a family from a new survey.

    .venv/bin/python tests/snmptablegen.py --survey /tmp/sv [--family apc ...]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from snmpagent import parse_oid  # noqa: E402
from snmpsurvey import code  # noqa: E402

from nutlite.drivers.tables.snmp import FAMILIES  # noqa: E402
from nutlite.snmp.values import scaled  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "nutlite" / "drivers" / "tables" / "snmp"
SCALES = (1, 0.1, 0.01, 0.001, 0.0001, 10, 100, 1000, 60, 3, 0.5, 0.2, 0.05, 0.00001)
FAMILY_DOC = {
    "apc": "APC PowerNet-MIB: network-managed Smart-UPS (apcc), switched PDUs (apc_pdu), transfer switches (apc_ats)",
    "baytech": "Bay Technical Associates PDUs (baytech)",
    "cyberpower": "CyberPower RMCARD (cyberpower)",
    "delta": "Delta / Minuteman UPSes (delta_ups)",
    "eaton_ats": "Eaton automatic transfer switches (eaton_ats16_nmc, eaton_ats16_nm2, eaton_ats30)",
    "eaton_pdu": "Eaton / Aphel / Pulizzi PDUs (eaton_epdu, aphel_revelation, aphel_genesisII, pulizzi_switched1/2)",
    "eaton_ups": "Eaton XUPS-MIB (pw, pxgx_ups) and Best Power (bestpower) UPSes",
    "emerson": "Emerson / Avocent PDUs (emerson_avocent_pdu)",
    "hpe": "HP / HPE: Compaq CPQPOWER UPSes (cpqpower), HPE ePDUs (hpe_epdu)",
    "huawei": "Huawei UPS5000 and similar with a GSE card (huawei)",
    "ietf": "RFC 1628 UPS-MIB (ietf), and the same under Tripp Lite's entry point (tripplite)",
    "mge": "MGE / Eaton MGE-MIB (mge)",
    "netvision": "Socomec Net Vision cards, older MIB tree (netvision)",
    "raritan": "Raritan PDUs (raritan, raritan-px2)",
    "xppc": "Tripp Lite / Phoenixtec PPC-MIB (xppc)",
}


#: what the survey cannot show, found on the real recordings: extra keyword arguments per (mapping, variable)
HAND = {
    **{(m, v): ', default="1"' for m in ("ietf", "tripplite")
       for v in ("input.phases", "output.phases", "input.bypass.phases")},
}


#: (mapping, variable, OID) read in every pass although the all-answering survey showed them in the
#: first only: APC's three-phase and high-precision frequencies win over the integer one when present
#: (checked with NUT on the apcc probe recording, with and without each OID)
HAND_DYNAMIC = {("apcc", v, "1.3.6.1.4.1.318.1.1.1." + o) for v, o in (
    ("input.frequency", "9.2.2.1.4.1"), ("input.frequency", "3.3.4.0"),
    ("output.frequency", "9.3.2.1.4.1"), ("output.frequency", "4.3.2.0"))}


#: conversions found by varying one OID at a time against NUT: (mapping, variable, OID) -> (how, aux OID)
HAND_CONVERT = {
    ("apcc", "ambient.temperature", "1.3.6.1.4.1.318.1.1.10.2.3.2.1.4.1"):
        ("unit_fahrenheit", "1.3.6.1.4.1.318.1.1.10.2.3.2.1.5.1"),
}


#: writable variables the survey's upsd pass could not see (their value was not published for the
#: survey's answers), found in the recordings' upsrw -l lists: (mapping, variable) -> upsd type
HAND_RW = {(m, "ups.start.auto"): "RW ENUM STRING:128" for m in ("pw", "pxgx_ups")}


def nut_list() -> dict[str, tuple[str, list[str], str]]:
    """name -> (version, entry points, check OID) from Debian's ``snmp-ups -x mibs=--list``."""
    out = subprocess.run(["/lib/nut/snmp-ups", "-s", "x", "-x", "port=127.0.0.1", "-x", "mibs=--list"],
                         capture_output=True, text=True, timeout=20).stdout
    got: dict[str, tuple[str, list[str], str]] = {}
    for line in out.splitlines():
        m = re.match(r"\s*\d+\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", line)
        if m:
            name, ver, point, check = m.groups()
            prev = got.get(name, (ver, [], ""))
            got[name] = (ver, [*prev[1], point.lstrip(".")], "" if check == "<NULL>" else check.lstrip("."))
    return got


def q(value: object) -> str:
    """A literal in the project's style (double quotes)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{q(k)}: {q(v)}" for k, v in value.items()) + "}"
    if isinstance(value, tuple):
        return "(" + ", ".join(q(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def concrete(oid: str) -> str:
    return oid.replace("%i", "0")


def find_scale(codev: int, out: str) -> tuple[float, int | None] | None:
    if re.fullmatch(r"-?\d+\.\d$", out):
        for s in SCALES:
            if f"{codev * s:.1f}" == out:
                return s, 1
    for s in SCALES:
        if scaled(codev, s) == out:
            return s, None
    return None


def own_tokens(status: dict[str, dict[str, str]], baseline: str, var: str) -> list[str]:
    """The baseline tokens (every status OID at 0) that this OID gives: the ones that go away when the
    probe sets it to another value."""
    base = baseline.split()
    own0: list[str] = []
    for got in status.values():
        lost = list(base)
        for w in got.get(var, "").split():
            if w in lost:
                lost.remove(w)
        if len(lost) > len(own0):
            own0 = lost
    return own0


def tokens_of(all_status: dict[str, dict[str, dict[str, str]]], order: list[str], oid: str, baseline: str,
              var: str) -> dict[int, str]:
    """k -> the tokens one status/alarm OID gives at value k (the probe set it to k, all others to 0):
    what it printed, less what the OIDs read before it (at its start) and after it (at its end) give at 0."""
    own = {o: own_tokens(all_status.get(o, {}), baseline, var) for o in order}
    where = order.index(oid) if oid in order else 0
    prefix = [t for o in order[:where] for t in own[o]]
    suffix = [t for o in order[where + 1:] for t in own[o]]
    out: dict[int, str] = {}
    for k, got in all_status.get(oid, {}).items():
        words = got.get(var, "").split()
        if prefix and words[: len(prefix)] == prefix:
            words = words[len(prefix):]
        if suffix and words[len(words) - len(suffix):] == suffix:
            words = words[: len(words) - len(suffix)]
        if words:
            out[int(k)] = " ".join(words)
    return out


class Draft:
    def __init__(self, name: str, data: dict, phases3: dict | None, listing: tuple[str, list[str], str]) -> None:
        self.name, self.d, self.p3, self.listing = name, data, phases3, listing
        self.lines: list[str] = []
        self.command_oids: dict[str, str] = {}
        self.alarm_oids: set[str] = set()
        self.family: list[Draft] = []  # the drafts of the same family file before this one
        self.body = ""
        self.notes: list[str] = []

    def count_vars(self) -> set[str]:
        return {f["var"] for f in self.d["fetches"] if f["var"].endswith(".count") and f["oid"]}

    def entries(self) -> list[str]:
        d = self.d
        init = [f for f in d["fetches"] if f["phase"] == "init"]
        # read again in a later pass under any of the survey's answers (NUT drops from its later passes
        # the entries that published nothing in the first, so one scheme alone can hide it)
        update = {(f["var"], f["oid"]) for f in d["fetches"] if f["phase"] == "update"}
        for rows in d.get("fetches_by_scheme", {}).values():
            update |= {(r[0], r[1]) for r in rows if r[3] == "update"}
        k_runs = {int(n[1:]): rows for n, rows in d.get("fetches_by_scheme", {}).items() if re.fullmatch(r"k-?\d+", n)}
        counts = self.count_vars()
        seen: set[tuple[str, str]] = set()
        out: list[str] = []
        templated: set[tuple[str, str]] = set()
        groups = self._templates(init, counts)
        emitted_templates: set[str] = set()
        p1 = {(f["var"], f["oid"]) for f in init}
        p3_only: list[dict] = []
        if self.p3:
            p3_init = [f for f in self.p3["fetches"] if f["phase"] == "init"]
            p3 = {(f["var"], f["oid"]) for f in p3_init}
            p3_only = [f for f in p3_init if (f["var"], f["oid"]) not in p1]
            only1 = p1 - p3
        else:
            only1 = set()
        for idx, f in enumerate(init):
            key = (f["var"], f["oid"])
            if key in seen:
                continue
            seen.add(key)
            if key in groups:
                tkey, var_t, oid_t, each = groups[key]
                templated.add(key)
                if tkey in emitted_templates:
                    continue
                emitted_templates.add(tkey)
                out.append(self.entry(f, var_t, oid_t, key not in update, each, k_runs, idx))
                continue
            phase = ""
            if key in only1:
                phase = f", phases=1, phase_of={q(self.phase_of(f['var']))}"
            out.append(self.entry(f, f["var"], f["oid"].replace("%i", "%d"), key not in update, "", k_runs, idx, phase))
            if self.p3 and f["var"] in ("input.phases", "output.phases", "input.bypass.phases"):
                pass
        for f in p3_only:
            if (f["var"], f["oid"]) in seen:
                continue
            seen.add((f["var"], f["oid"]))
            out.append(self.entry(f, f["var"], f["oid"].replace("%i", "%d"), False, "", {}, -1,
                                  f", phases=3, phase_of={q(self.phase_of(f['var']))}"))
        return out

    @staticmethod
    def phase_of(var: str) -> str:
        if var.startswith("input.bypass."):
            return "input.bypass.phases"
        return "output.phases" if var.startswith("output.") or var.startswith("ups.load") else "input.phases"

    def _templates(self, init: list[dict], counts: set[str]) -> dict[tuple[str, str], tuple[str, str, str, str]]:
        """(var, oid) of indexed rows -> (template key, var template, oid template, count var)."""
        out: dict[tuple[str, str], tuple[str, str, str, str]] = {}
        for cv in counts:
            stem = cv[: -len(".count")]
            pat = re.compile(re.escape(stem) + r"\.(\d+)\.(.+)$")
            rows = defaultdict(list)
            for f in init:
                m = pat.match(f["var"])
                if m and not re.match(r"group\.", m.group(2)) and f["oid"]:
                    rows[m.group(2)].append((int(m.group(1)), f))
            for rest, items in rows.items():
                by_index: dict[int, list[dict]] = defaultdict(list)
                for i, f in items:
                    by_index[i].append(f)
                indices = sorted(by_index)
                var_t = f"{stem}.%i.{rest}"
                for k in range(len(by_index[indices[0]])):
                    peers = [by_index[i][k] for i in indices if k < len(by_index[i])]
                    oids = [f["oid"].replace("%i", "%d").split(".") for f in peers]
                    same_len = len({len(o) for o in oids}) == 1
                    differ = [j for j in range(len(oids[0])) if same_len and len({o[j] for o in oids}) > 1]
                    if len(differ) == 1:  # the index: the one component that changes from row to row
                        templ = ".".join("%i" if j == differ[0] else p for j, p in enumerate(oids[0]))
                    else:  # one row, or rows that share an OID
                        templ = ".".join(oids[0])
                    for f in peers:
                        out[(f["var"], f["oid"])] = (var_t + "|" + templ, var_t, templ, cv)
        return out

    def entry(self, f: dict, var: str, oid: str, static: bool, each: str, k_runs: dict, idx: int,
              extra: str = "") -> str:
        d = self.d
        static = static and (self.name, var, oid) not in HAND_DYNAMIC
        opts = (", static=True" if static else "") + (f", each={q(each)}" if each else "") + extra
        o = self.oid(oid)
        kind = f["kind"]
        if kind == "status":
            toks = tokens_of(d["status"], d["status_oids"], f["oid"], d["status_baseline"].get("ups.status", ""),
                             "ups.status")
            return f"status({o}, {q(toks)}{', each=' + q(each) if each else ''}),"
        if var == "ups.alarm" or var.endswith(".alarm"):
            # NUT puts every alarm entry's text into ups.alarm; one entry per OID carries them all
            if f["oid"] in self.alarm_oids:
                return ""
            self.alarm_oids.add(f["oid"])
            toks = tokens_of(d["status"], d["status_oids"], f["oid"], d["status_baseline"].get("ups.alarm", ""),
                             "ups.alarm")
            return f"alarm({o}, {q(toks)}{', each=' + q(each) if each else ''}),"
        value = f["value"]
        if (self.name, var, oid) in HAND_CONVERT:
            how, aux = HAND_CONVERT[(self.name, var, oid)]
            return f"converted({q(var)}, {o}, {q(how)}, {self.oid(aux)}{opts}),"
        if not f["oid"]:
            return f"const({q(var)}, {q(value or '')}),"
        opts += HAND.get((self.name, var), "")
        if (var.endswith(".count") or var.endswith(".phases")) and value and re.fullmatch(r"\d+", value):
            return f"num({q(var)}, {o}{opts}),"
        ks = self.k_outputs(f, k_runs)
        looks_enum = any(out is not None and out != str(k) and not re.fullmatch(r"-?\d+(\.\d+)?", out)
                         for k, out in ks.items())
        outs = [out for out in ks.values() if out is not None]
        if outs and all(out == "celsius" for out in outs):
            return f"converted({q(var)}, {o}, \"celsius\"{opts}),"
        if outs and all(re.fullmatch(r"1900-0\d-00", out) for out in outs):
            return f"converted({q(var)}, {o}, \"mdy_date\"{opts}),"
        if ks.get(0) == "-273":
            unit = var.replace(".temperature", ".temperature.unit")
            aux = next((g for g in self.d["fetches"] if g["var"] == unit.replace("%i", "1")
                        or g["var"] == unit.replace("%i", "0")), None)
            return f"converted({q(var)}, {o}, \"temperature\", {self.oid(aux['oid'].replace('%i', '%d')) if aux else q('')}{opts}),"
        if looks_enum or (value is None):
            codev = code(parse_oid(concrete(f["oid"])))
            unmatched = 1 if value == str(codev) else 128 if value == str(codev * 128) else 0
            # a numeric lookup prints k*128 (or k) for a code its table lacks
            enum = {k: out for k, out in ks.items() if out is not None
                    and out != str(k * (unmatched or 128)) and not (out == str(k) and unmatched != 128)}
            if not enum and not any(outs):
                self.notes.append(f"{var} {oid}: nothing published for any input; left out")
                return ""
            if not enum:
                return f"text({q(var)}, {o}{opts}),"
            return f"lookup({q(var)}, {o}, {q(enum)}{f', unmatched={unmatched}' if unmatched else ''}{opts}),"
        if kind == "str":
            return f"text({q(var)}, {o}{opts}),"
        codev = code(parse_oid(concrete(f["oid"])))
        found = find_scale(codev, value)
        if found is None:
            self.notes.append(f"{var} {oid}: code {codev} printed {value}: scaling not found")
            return f"num({q(var)}, {o}{opts}),  # FIXME: printed {value!r} for {codev}"
        s, dec = found
        sc = "" if s == 1 else f", {s!r}"
        return f"num({q(var)}, {o}{sc}{', decimals=1' if dec else ''}{opts}),"

    def k_outputs(self, f: dict, k_runs: dict) -> dict[int, str | None]:
        out: dict[int, str | None] = {}
        for k, rows in k_runs.items():
            vals = [r[4] for r in rows if r[0] == f["var"] and r[1] == f["oid"] and r[3] == "init"]
            out[k] = vals[0] if vals else None
        return out

    prefix = ""

    def oid(self, oid: str) -> str:
        if self.prefix and oid.startswith(self.prefix):
            return f"P + {q(oid[len(self.prefix):])}"
        return q(oid)

    def choose_prefix(self) -> None:
        oids = [f["oid"] for f in self.d["fetches"] if f["oid"]]
        best = Counter()
        for o in oids:
            parts = o.split(".")
            for n in range(7, len(parts)):
                best[".".join(parts[:n]) + "."] += n
        self.prefix = best.most_common(1)[0][0] if best else ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--survey", type=Path, default=Path("/tmp/sv"))
    p.add_argument("--family", nargs="*")
    p.add_argument("--wide", type=Path, default=Path("/tmp/svw"),
                   help="a survey run with --wide (constants past 12: bit masks, big codes), merged in")
    args = p.parse_args(argv)
    listing = nut_list()
    fams: dict[str, list[str]] = defaultdict(list)
    for name, fam in FAMILIES.items():
        fams[fam].append(name)
    for fam, names in fams.items():
        if args.family and fam not in args.family:
            continue
        blocks = []
        drafts: list[Draft] = []
        for name in names:
            src = args.survey / f"{name}.json"
            if not src.exists():
                print(f"{name}: no survey at {src}", file=sys.stderr)
                continue
            data = json.loads(src.read_text())
            wide = args.wide / f"{name}.json"
            if wide.exists():
                w = json.loads(wide.read_text())
                for n, rows in w.get("fetches_by_scheme", {}).items():
                    data.setdefault("fetches_by_scheme", {}).setdefault(n, rows)
                for oid, per_k in w.get("status", {}).items():
                    for k, got in per_k.items():
                        data["status"].setdefault(oid, {}).setdefault(k, got)
            p3 = args.survey / f"{name}.phases3.json"
            draft = Draft(name, data, json.loads(p3.read_text()) if p3.exists() else None, listing[name])
            cmd_file = args.survey / f"{name}.commands.json"
            draft.command_oids = json.loads(cmd_file.read_text()) if cmd_file.exists() else {}
            draft.family = list(drafts)
            blocks.append(render(draft))
            drafts.append(draft)
            for n in draft.notes:
                print(f"{name}: {n}", file=sys.stderr)
        header = [f'"""{FAMILY_DOC[fam]}.', "",
                  "Drafted by tests/snmptablegen.py from a black-box survey of NUT 2.8.0's snmp-ups (the",
                  "OIDs it reads, in its order, and what it printed for known inputs), then kept by hand.",
                  '"""', "", "from __future__ import annotations", "", "from dataclasses import replace", "",
                  "from nutlite.snmp.mib import Mapping, alarm, cmd, const, converted, lookup, num, rw, status, text", "",
                  "# ruff: noqa: E501 - one table row per line reads best", ""]
        body = "\n".join(header + blocks)
        body += "\nMAPPINGS = {m.name: m for m in (" + ", ".join(n.upper().replace("-", "_") for n in names) + ",)}\n"
        (OUT / f"{fam}.py").write_text(body)
        print(f"wrote {OUT / (fam + '.py')}")
    return 0


def render(draft: Draft) -> str:
    d = draft.d
    draft.choose_prefix()
    ver, points, check = draft.listing
    const_lines = []
    fetched = {f["var"] for f in d["fetches"]}
    dtype = d["vars"].get("device.type", "ups")
    for k, v in sorted(d["vars"].items()):
        if k in fetched or k.startswith("driver.") or k == "device.type" or re.search(r"\.-?\d+\.", k):
            continue
        if dtype == "ups" and k.startswith("device.") and d["vars"].get("ups." + k[7:]) == v:
            continue
        if (k.endswith(".count") and k != "device.count") or k in ("ups.status",) and any(f["kind"] == "status" for f in d["fetches"]):
            continue
        const_lines.append(f"        const({q(k)}, {q(v)}),")
    entries = ["        " + e for e in draft.entries() if e]
    upsd = d.get("upsd") or {}
    cmds: list[str] = []
    done: set[str] = set()
    counts = draft.count_vars()
    probes = draft.command_oids
    for c in upsd.get("cmds", []):
        vbs = (upsd.get("sets", {}).get(c) or {}).get("set") or []
        if vbs and vbs[0][1]:
            oid, (tag, value) = vbs[0][0], vbs[0][1]
            value = int(value) if tag in ("2", "65", "66", "67") else str(value)
        else:  # NUT sends nothing ("a provided or default value is needed"): the user gives the value
            oid, value = probes.get(c, ""), None
            draft.notes.append(f"command {c}: no SET seen; {'OID ' + oid if oid else 'no OID found'}")
        m = re.match(r"(outlet(?:\.group)?)\.(\d+)\.(.+)$", c)
        each = ""
        if m and f"{m.group(1)}.count" in counts:
            i, parts = m.group(2), oid.split(".") if oid else []
            pos = [j for j, p in enumerate(parts) if p == i]
            if pos:
                parts[pos[-1]] = "%i"
            oid, c, each = ".".join(parts), f"{m.group(1)}.%i.{m.group(3)}", f"{m.group(1)}.count"
            if c in done:
                continue
        done.add(c)
        cmds.append(f"        cmd({q(c)}, {draft.oid(oid) if oid else q('')}, {q(value) if value is not None else 'None'}"
                    f"{', each=' + q(each) if each else ''}),")
    rws = []
    seen_rw: set[str] = set()
    rw_items = list(upsd.get("rw", {}).items()) + [(v, {"type": t}) for (m, v), t in HAND_RW.items() if m == draft.name]
    for var, info in rw_items:
        m = re.match(r"(outlet\.group|outlet|ambient)\.(\d+)\.(.+)$", var)
        if m and f"{m.group(1)}.count" in counts:
            var = f"{m.group(1)}.%i.{m.group(3)}"
        if var in seen_rw:
            continue
        seen_rw.add(var)
        m = re.search(r"STRING:(\d+)", str(info.get("type", "")))
        rws.append(f"        rw({q(var)}{', ' + m.group(1) if m else ''}),")
    model = d["probe"][1] if d.get("probe") and d["probe"][1] else ""
    one_based = []
    for cv in sorted(counts):
        stem = cv[: -len(".count")]
        idx = {int(m.group(1)) for f in d["fetches"] if (m := re.match(re.escape(stem) + r"\.(-?\d+)\.", f["var"]))}
        if idx and min(idx) == 1:
            one_based.append(cv)
    const_name = draft.name.upper().replace("-", "_")
    ident = (f"    {q(draft.name)}, {q(ver)}, sysoid={q(tuple(points)) if len(points) > 1 else q(points[0])}, "
             f"check={q(check)},")
    body = "\n".join([f"    model={draft.oid(model) if model else q('')}, device_type={q(dtype)},"
                      + (f" one_based={q(tuple(one_based))}," if one_based else ""),
                      "    entries=(", *const_lines, *entries, "    ),",
                      "    commands=(", *cmds, "    ),",
                      "    writable=(", *rws, "    ),"])
    draft.body = f"P = {q(draft.prefix)}\n" + body
    for other in draft.family:  # the same table under another name and entry point: say so, once
        if other.body == draft.body:
            return (f"{const_name} = replace({other.name.upper().replace('-', '_')}, name={q(draft.name)}, "
                    f"version={q(ver)}, sysoid={q(tuple(points)) if len(points) > 1 else q(points[0])}, "
                    f"check={q(check)})\n")
    return "\n".join([f"P = {q(draft.prefix)}", "", f"{const_name} = Mapping(", ident, body, ")", ""])


if __name__ == "__main__":
    sys.exit(main())
