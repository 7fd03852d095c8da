"""Black-box survey of Debian NUT 2.8.0's SNMP MIB mappings (snmp-ups run as an oracle, never its source).

For one mapping name, `tests/snmpagent.py` serves a catch-all agent whose answers follow a *scheme*
(deterministic per OID), Debian's ``/lib/nut/snmp-ups -s x -x mibs=NAME -DD -d 1`` reads it, and we keep:

* the agent's request log (which OIDs, in which order);
* the driver's debug trace: which variable each OID feeds (``get_and_process_data: VAR (OID)``), read as a
  string or an integer, in the first (init) pass or the update pass, and the commands it added;
* the variables it printed.

Schemes: ``code`` (an INTEGER per OID, 1000..8999, distinct enough to show scaling: 1961 -> ``196.10``
is x0.1), ``k<N>`` (the INTEGER N everywhere: walks enumerations), ``str`` (an OCTET STRING per OID),
``ticks`` (TimeTicks code). Count OIDs (``*.count``: outlets, groups, phases tables) are always answered
2 (``device.count`` 1, which keeps the driver out of daisy-chain mode; ``*.phases`` 1), found by a first
short discovery run; ``ups.status``/``ups.alarm`` OIDs are also probed one at a time (the others answer
a neutral 0) to see which token each value of each OID gives.

Through Debian's upsd (one upsd, one driver and one agent per mapping, all in parallel) the survey also
lists the instant commands and writable variables, runs each command and each writable variable once,
and records the SET the agent received.

Command line (results as JSON and a readable summary under ``--out``, default /tmp/snmp-survey)::

    .venv/bin/python tests/snmpsurvey.py apc_pdu xppc        # or --all

Used as a library by tests/test_snmp_mibs_blackbox.py (`run_driver`, `Scheme`, `discover_counts`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from snmpagent import Entry, Oid, SnmpAgent, parse_oid  # noqa: E402

SNMP_UPS = Path("/lib/nut/snmp-ups")
COMMUNITY = "survey"

# NUT 2.8.0's mapping names in its --list order (SNMP-FACTS §2; apc_pdu has three entry points).
MAPPINGS = (
    "apc_ats", "apc_pdu", "apcc", "baytech", "bestpower", "cpqpower", "cyberpower", "delta_ups",
    "eaton_ats16_nmc", "eaton_ats16_nm2", "eaton_ats30", "eaton_epdu", "emerson_avocent_pdu",
    "aphel_revelation", "aphel_genesisII", "pulizzi_switched1", "pulizzi_switched2", "hpe_epdu", "huawei",
    "mge", "netvision", "pw", "pxgx_ups", "raritan", "raritan-px2", "xppc", "tripplite", "ietf",
)


def code(oid: Oid) -> int:
    """A deterministic INTEGER in 1000..8999 for an OID (its last components weigh most)."""
    h = 0
    for part in oid:
        h = (h * 31 + part) % 1_000_003
    return 1000 + h % 8000


@dataclass
class Scheme:
    """How the catch-all agent answers: a base rule for every OID plus per-OID overrides."""

    name: str
    overrides: dict[str, Entry] = field(default_factory=dict)
    # templates (with "%i") whose index > 2 does not exist: NUT guesses some table sizes by probing
    templates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self._missing = [re.compile(re.escape(t.lstrip(".")).replace("%i", r"(\d+)") + "$") for t in self.templates]

    def base(self, oid: Oid) -> Entry:
        if self.name == "code":
            return ("2", code(oid))
        if self.name == "str":
            return ("4", f"S{code(oid)}")
        if self.name == "ticks":
            return ("67", code(oid))
        if self.name == "big":
            return ("2", 123456789)
        m = re.fullmatch(r"k(-?\d+)", self.name)
        if m:
            return ("2", int(m.group(1)))
        raise ValueError(f"unknown survey scheme {self.name!r}")

    def answer(self, oid: Oid) -> Entry | None:
        text = ".".join(map(str, oid))
        found = self.overrides.get(text)
        if found is not None:
            return found
        for pat in self._missing:
            m = pat.match(text)
            if m and int(m.group(1)) > 2:
                return None
        return self.base(oid)

    def derive(self, name: str | None = None, overrides: dict[str, Entry] | None = None) -> Scheme:
        """The same counts and templates with another base scheme and/or more overrides."""
        return Scheme(name or self.name, {**self.overrides, **(overrides or {})}, self.templates)


@dataclass
class Fetch:
    """One ``get_and_process_data`` step of the driver's trace."""

    var: str
    oid: str  # without leading dot; "" when the driver had no OID (a constant or a computed value)
    kind: str  # "str", "int", "status" or "?"
    phase: str  # "init" or "update"
    value: str | None = None  # what su_setinfo got (None: nothing published from this step)


@dataclass
class Run:
    """What one driver run against one scheme showed."""

    mapping: str
    scheme: str
    rc: int | None
    seconds: float
    vars: dict[str, str]
    gets: list[str]  # distinct OIDs in first-request order
    requests: int
    fetches: list[Fetch]
    commands: list[str]  # su_addcmd lines
    detected: str  # the "Detected ..." line, or the refusal
    error: str = ""
    device_count_oids: list[str] = field(default_factory=list)  # daisy-chain device.count candidates
    guessed: list[str] = field(default_factory=list)  # templates whose size the driver guessed
    trace_tail: str = ""  # the trace's last lines (when the driver did not finish)
    probe: tuple[str, str] = ("", "")  # the variable and OID that mibs=NAME tested before accepting


_FETCH = re.compile(r"get_and_process_data: (\S+) \((\S*)\)")
_SETINFO = re.compile(r"entering su_setinfo\((\S+?), (.*)\)$")
_ADDCMD = re.compile(r"su_addcmd: adding command '([^']+)'|Adding template command (\S+)")


def parse_trace(text: str) -> tuple[list[Fetch], list[str], str]:
    """The -DD trace of one run: the fetch steps, the commands added, the detection line."""
    fetches: list[Fetch] = []
    commands: list[str] = []
    detected = ""
    phase = "detect"
    for raw in text.splitlines():
        line = raw.split("\t", 1)[-1]
        if "entering upsdrv_initinfo" in line:
            phase = "init"
        elif "entering upsdrv_updateinfo" in line and phase == "init":
            phase = "update"
        if m := _FETCH.search(line):
            oid = m.group(2).lstrip(".")
            fetches.append(Fetch(m.group(1), "" if oid == "(null)" else oid, "?", phase))
        elif "su_ups_get: requesting" in line and fetches:
            f = fetches[-1]
            f.kind = "str" if "get_str" in line else "status" if "for ups.status" in line else "int"
        elif (m := _SETINFO.search(line)) and fetches and fetches[-1].var == m.group(1):
            fetches[-1].value = m.group(2)
        elif m := _ADDCMD.search(line):
            cmd = m.group(1) or m.group(2)
            if cmd not in commands:
                commands.append(cmd)
        elif line.startswith("Detected ") or "did not match" in line or "No supported device" in line:
            detected = detected or line.strip()
    return fetches, commands, detected


def parse_dump(text: str) -> dict[str, str]:
    """The ``-d 1`` dump (banner line, then ``name: value``) as a dict."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(": ")
        if not sep:
            name, sep, value = line.partition(":")
        if sep and re.fullmatch(r"[A-Za-z][\w.-]*", name):
            out[name] = value
    return out


def run_driver(mapping: str, scheme: Scheme, *, timeout: float = 30.0, version: str | None = None,
               extra: Iterable[str] = ()) -> Run:
    """Run Debian's snmp-ups once (``-d 1``) against a catch-all agent answering ``scheme``.

    ``version`` defaults to v2c, or v1 when the scheme bounds guessed tables: NUT 2.8.0 guesses a
    table's size by GETting rows until an error status, and a v2c agent's noSuchInstance is none, so
    it would never stop (SNMP-FACTS §4, the pw outlet loop)."""
    version = version or ("v1" if scheme.templates else "v2c")
    agent = SnmpAgent(community=COMMUNITY, accept_all_sets=True, catch_all=scheme.answer)
    state = tempfile.mkdtemp(prefix="snmpsurvey-")
    os.chmod(state, 0o777)
    argv = [str(SNMP_UPS), "-s", "survey", "-x", "port=127.0.0.1:{port}", "-x", f"community={COMMUNITY}",
            "-x", f"snmp_version={version}", "-x", f"mibs={mapping}", "-x", "snmp_retries=0", "-DD", "-d", "1"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    for opt in extra:
        argv += ["-x", opt]
    start = time.monotonic()
    with agent:
        argv[4] = argv[4].format(port=agent.port)
        err = ""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as trace:
            proc = subprocess.Popen(argv, stdout=out, stderr=trace, stdin=subprocess.DEVNULL,
                                    env={**os.environ, "NUT_STATEPATH": state}, start_new_session=True)
            try:
                rc: int | None = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
                rc, err = None, f"snmp-ups did not finish within {timeout:.0f} s"
            out.seek(0)
            trace.seek(0)
            dump = out.read().decode("latin-1")
            text = trace.read().decode("latin-1")
        log = agent.requests()
    with contextlib.suppress(OSError):
        os.rmdir(state)
    gets: list[str] = []
    seen: set[str] = set()
    for entry in log:
        for oid, _ in entry.varbinds:
            if oid not in seen:
                seen.add(oid)
                gets.append(oid)
    fetches, commands, detected = parse_trace(text)
    run = Run(mapping, scheme.name, rc, round(time.monotonic() - start, 3), parse_dump(dump), gets,
              len(log), fetches, commands, detected, err)
    if m := re.search(r"There are (\d+) device\(s\) present", text):
        run.device_count_oids = [o for o in gets if scheme.answer(parse_oid(o)) == ("2", int(m.group(1)))]
    if rc != 0:
        run.trace_tail = "\n".join(ln for ln in text.splitlines()[-40:] if "skip the" not in ln)
    if m := re.search(r"Testing (\S+) using OID (\S+)", text):
        run.probe = (m.group(1), m.group(2).lstrip("."))
    run.guessed = list(dict.fromkeys(re.findall(r"guestimate_template_count\((\S+)\)", text)))
    return run


def count_override(var: str, phases: int = 1) -> Entry | None:
    """The constant a count-like variable's OID gets, or None for an ordinary variable."""
    if var == "device.count":
        return ("2", 1)
    if var == "ups.alarms":  # the number of alarms present; the driver then walks that many rows
        return ("2", 0)
    if var.endswith(".count"):
        return ("2", 2)
    if var.endswith(".phases"):
        return ("2", phases)
    return None


def discover_counts(mapping: str, phases: int = 1, rounds: int = 6) -> Scheme:
    """The ``code`` scheme with the mapping's count OIDs fixed and guessed tables bounded: short runs
    until no new count OID shows up."""
    overrides: dict[str, Entry] = {}
    templates: list[str] = []
    for _ in range(rounds):
        run = run_driver(mapping, Scheme("code", dict(overrides), tuple(templates)), timeout=1.5)
        new_t = [t for t in run.guessed if t not in templates]
        templates += new_t
        new: dict[str, Entry] = {}
        for f in run.fetches:
            if f.oid and (e := count_override(f.var, phases)) is not None:
                # a daisy-chain template: the trace shows "%i", the agent sees the device index (0 or 1..)
                for oid in ([f.oid.replace("%i", str(i)) for i in (0, 1, 2)] if "%i" in f.oid else [f.oid]):
                    new[oid] = e
        for oid in run.device_count_oids[:1]:
            new[oid] = ("2", 1)
        if all(overrides.get(k) == v for k, v in new.items()) and not new_t:
            break
        overrides.update(new)
    return Scheme("code", overrides, tuple(templates))


def oid_map(run: Run) -> dict[str, list[str]]:
    """OID -> the variables it feeds, in trace order."""
    out: dict[str, list[str]] = {}
    for f in run.fetches:
        if f.oid and f.var not in out.setdefault(f.oid, []):
            out[f.oid].append(f.var)
    return out


#: the constants beyond 0..12 that ``--wide`` also tries (bit masks, large enumerations)
WIDE = (*range(13, 21), 24, 32, 48, 64, 96, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, -1)


def survey(mapping: str, kmax: int = 12, phases: int = 1, wide: bool = False) -> dict:
    """Every scheme for one mapping, and the per-variable view (scaling, enumerations, status tokens)."""
    counts = discover_counts(mapping, phases)
    runs = {name: run_driver(mapping, counts.derive(name)) for name in ["code", "str", "ticks", "big"]}
    ks = [*range(0, kmax + 1), *(WIDE if wide else ())]
    for k in ks:
        runs[f"k{k}"] = run_driver(mapping, counts.derive(f"k{k}"))
    base = runs["code"]
    alarmish = [f for f in base.fetches if f.oid and (f.var in ("ups.status", "ups.alarm") or f.var.endswith(".alarm"))]
    status_oids = list(dict.fromkeys(f.oid for f in alarmish))
    watch = sorted({"ups.status", "ups.alarm", *(f.var for f in alarmish)})
    status: dict[str, dict[int, dict[str, str]]] = {}
    concrete = {o: o.replace("%i", "0") for o in status_oids}  # a daisy-chain template: device 0
    neutral = {concrete[o]: ("2", 0) for o in status_oids}
    base0 = run_driver(mapping, counts.derive("code", neutral))

    def probe(job: tuple[str, int]) -> dict[str, str]:
        oid, k = job
        r = run_driver(mapping, counts.derive("code", {**neutral, concrete[oid]: ("2", k)}))
        return {v: r.vars.get(v, "") for v in watch if v in r.vars}

    jobs = [(oid, k) for oid in status_oids for k in [*range(0, min(kmax, 12) + 1), *(WIDE if wide else ())]]
    with ThreadPoolExecutor(2) as pool:
        for (oid, k), got in zip(jobs, pool.map(probe, jobs), strict=True):
            status.setdefault(oid, {})[k] = got
    per_var: dict[str, dict] = {}
    for f in base.fetches:
        if f.var in per_var:
            if f.oid and f.oid not in per_var[f.var]["oids"]:
                per_var[f.var]["oids"].append(f.oid)
            continue
        code_val = code(parse_oid(f.oid.replace("%i", "0"))) if f.oid else None
        per_var[f.var] = {
            "oids": [f.oid] if f.oid else [], "kind": f.kind, "phase": f.phase,
            "code": code_val, "code_out": base.vars.get(f.var), "str_out": runs["str"].vars.get(f.var),
            "ticks_out": runs["ticks"].vars.get(f.var), "big_out": runs["big"].vars.get(f.var),
            "k": {k: runs[f"k{k}"].vars.get(f.var) for k in ks},
        }
    update_vars = sorted({f.var for f in base.fetches if f.phase == "update"})
    return {
        "mapping": mapping, "probe": base.probe, "counts": counts.overrides, "templates": list(counts.templates), "detected": base.detected, "requests": base.requests,
        "gets": base.gets, "fetches": [asdict(f) for f in base.fetches], "vars": base.vars,
        "commands_trace": base.commands, "per_var": per_var, "status_oids": status_oids,
        "status_baseline": {v: base0.vars.get(v, "") for v in watch if v in base0.vars},
        "status": status, "update_vars": update_vars,
        "runs": {n: {"rc": r.rc, "seconds": r.seconds, "requests": r.requests, "nvars": len(r.vars),
                     "error": r.error} for n, r in runs.items()},
        "vars_by_scheme": {n: r.vars for n, r in runs.items()},
        "fetches_by_scheme": {n: [[f.var, f.oid, f.kind, f.phase, f.value] for f in r.fetches] for n, r in runs.items()},
    }


# -- through Debian's upsd: commands, writable variables, the SETs they send ------------------------


def upsd_survey(mappings: list[str], schemes: dict[str, Scheme], version: str = "v2c",
                exercise: bool = True, settle: float = 0.0, set_rw: bool = True, wait: float = 1.5) -> dict[str, dict]:
    """One Debian upsd with one snmp-ups and one catch-all agent (``code`` scheme) per mapping:
    ``LIST VAR``/``LIST CMD``/``LIST RW`` (with types) and, if ``exercise``, the SET each command (and
    if ``set_rw`` each writable variable) sends, waiting up to ``wait`` seconds for each."""
    from nutenv import NutEnv, UpsSpec  # noqa: PLC0415 - only this part needs the NUT test helpers

    agents = {m: SnmpAgent(community=COMMUNITY, accept_all_sets=True, catch_all=schemes[m].answer)
              for m in mappings}
    for a in agents.values():
        a.start()
    names = {m: re.sub(r"[^A-Za-z0-9]", "", m) for m in mappings}
    specs = [UpsSpec(names[m], driver="snmp-ups", port=f"127.0.0.1:{agents[m].port}",
                     options={"community": COMMUNITY, "snmp_version": "v1" if schemes[m].templates else version,
                              "mibs": m, "snmp_retries": "1"})
             for m in mappings]
    results: dict[str, dict] = {}
    base = Path(tempfile.mkdtemp(prefix="snmpsurvey-upsd-"))
    env = NutEnv(base, specs, driver_flavour="debian", upsd_flavour="debian")
    try:
        env.start(wait=False)
        env.wait_ready(timeout=60)
        if settle:
            time.sleep(settle)
        for m in mappings:
            results[m] = _one_upsd(env, names[m], agents[m], exercise, set_rw, wait)
    finally:
        env.stop()
        for a in agents.values():
            a.stop()
    return results


def _listing(conn: object, what: str, ups: str) -> dict[str, str]:
    lines = conn.request_list(f"LIST {what} {ups}", timeout=10)  # type: ignore[attr-defined]
    out: dict[str, str] = {}
    for line in lines[1:-1]:
        parts = line.split(" ", 3)
        out[parts[2]] = parts[3][1:-1] if len(parts) > 3 else ""
    return out


def _one_upsd(env: object, ups: str, agent: SnmpAgent, exercise: bool, set_rw: bool, wait: float) -> dict:
    res: dict = {"sets": {}}
    with env.connect(timeout=10) as c:  # type: ignore[attr-defined]
        res["vars"] = _listing(c, "VAR", ups)
        res["cmds"] = sorted(_listing(c, "CMD", ups))
        rw = _listing(c, "RW", ups)
        res["rw"] = {}
        for var, value in rw.items():
            typ = c.request(f"GET TYPE {ups} {var}", timeout=10)
            extra: list[str] = []
            if "ENUM" in typ:
                extra = [ln.split('"')[1] for ln in c.request_list(f"LIST ENUM {ups} {var}", timeout=10)[1:-1]]
            elif "RANGE" in typ:
                extra = [" ".join(ln.split(" ")[3:]) for ln in c.request_list(f"LIST RANGE {ups} {var}", timeout=10)[1:-1]]
            res["rw"][var] = {"value": value, "type": typ.split(" ", 3)[-1] if typ.startswith("TYPE") else typ,
                              "choices": extra}
        if not exercise:
            return res
        assert c.request("USERNAME admin", timeout=10).startswith("OK")
        assert c.request("PASSWORD adminpw", timeout=10).startswith("OK")
        jobs = [(f"INSTCMD {ups} {cmd}", cmd) for cmd in res["cmds"]]
        for var, info in (res["rw"] if set_rw else {}).items():
            new = info["choices"][0] if info["choices"] and "ENUM" in info["type"] else (
                info["choices"][0].split()[0] if info["choices"] else ("x" if "STRING" in info["type"] else "3"))
            jobs.append((f'SET VAR {ups} {var} "{new}"', f"set {var}={new}"))
        for line, label in jobs:
            n = len(agent.requests())
            reply = c.request(line, timeout=15)
            deadline = time.monotonic() + wait
            sets: list = []
            while time.monotonic() < deadline:
                sets = [vb for e in agent.requests()[n:] if e.pdu == "SET" for vb in e.varbinds]
                if sets or not reply.startswith("OK"):
                    break
                time.sleep(0.05)
            res["sets"][label] = {"reply": reply, "set": [[o, list(v) if v else None] for o, v in sets]}
    return res


# -- which OID offers each command ------------------------------------------------------------------


def _commands_added(mapping: str, scheme: Scheme, missing: str) -> set[str]:
    """The commands NUT's driver adds (v1) when the agent lacks ``missing`` (noSuchName)."""
    def answer(oid: Oid) -> Entry | None:
        return None if ".".join(map(str, oid)) == missing else scheme.answer(oid)

    agent = SnmpAgent(community=COMMUNITY, accept_all_sets=True, catch_all=answer)
    state = tempfile.mkdtemp(prefix="snmpsurvey-")
    os.chmod(state, 0o777)
    argv = [str(SNMP_UPS), "-s", "x", "-x", "port=127.0.0.1:{port}", "-x", f"community={COMMUNITY}", "-x",
            "snmp_version=v1", "-x", f"mibs={mapping}", "-x", "snmp_retries=0", "-DD", "-d", "1"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    with agent:
        argv[4] = argv[4].format(port=agent.port)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                              env={**os.environ, "NUT_STATEPATH": state}, errors="replace")
    with contextlib.suppress(OSError):
        os.rmdir(state)
    init = proc.stderr.split("entering upsdrv_updateinfo")[0]
    return {m.group(1) or m.group(2) for m in _ADDCMD.finditer(init)}


def command_oids(mapping: str, data: dict) -> dict[str, str]:
    """command -> the OID whose absence makes NUT drop it ("" when no single OID does): the GET that
    decides whether the device offers it. ``data`` is the mapping's survey (counts, OIDs asked)."""
    scheme = Scheme("code", {k: tuple(v) for k, v in data["counts"].items()}, tuple(data["templates"]))
    full = _commands_added(mapping, scheme, "")
    if not full:
        return {}
    probe = (data.get("probe") or ["", ""])[1]
    candidates = [g for g in data["gets"] if g not in data["counts"] and g != probe]
    owner: dict[str, str] = {}
    with ThreadPoolExecutor(3) as pool:
        for oid, got in zip(candidates, pool.map(lambda g: _commands_added(mapping, scheme, g), candidates),
                            strict=True):
            for c in sorted(full - got):
                owner.setdefault(c, oid)
    return {c: owner.get(c, "") for c in sorted(full)}


# -- summary -------------------------------------------------------------------------------------


def _fmt_k(k: dict) -> str:
    vals = {int(i): v for i, v in k.items()}
    if all(v is None for v in vals.values()):
        return "-"
    if all(v == str(i) for i, v in vals.items() if v is not None):
        return "plain"
    return " ".join(f"{i}={v!r}" for i, v in vals.items() if v is not None and v != str(i)) or "plain"


def summary_md(data: dict, upsd: dict | None) -> str:
    lines = [f"# {data['mapping']}", "", f"detected: {data['detected']}",
             f"requests (code scheme): {data['requests']}, distinct OIDs {len(data['gets'])}",
             f"count overrides: {data['counts']}", ""]
    lines += ["| var | OIDs | kind | phase | code -> out | str | ticks | big | k 0..12 |", "|---|---|---|---|---|---|---|---|---|"]
    for var, pv in data["per_var"].items():
        lines.append(f"| {var} | {' '.join(pv['oids'])} | {pv['kind']} | {pv['phase']} | {pv['code']} -> "
                     f"{pv['code_out']!r} | {pv['str_out']!r} | {pv['ticks_out']!r} | {pv['big_out']!r} | {_fmt_k(pv['k'])} |")
    lines += ["", f"status baseline (status OIDs = 0): {data['status_baseline']}"]
    for oid, per_k in data["status"].items():
        lines.append(f"* {oid}: " + "; ".join(f"{k}={v}" for k, v in per_k.items()))
    lines += ["", f"update-pass vars: {' '.join(data['update_vars'])}", "",
              "vars (code scheme):", *[f"    {k}: {v}" for k, v in sorted(data["vars"].items())]]
    if upsd:
        lines += ["", f"upsd cmds: {' '.join(upsd.get('cmds', []))}", "rw:"]
        lines += [f"    {k}: {v}" for k, v in upsd.get("rw", {}).items()]
        lines += ["sets:", *[f"    {k}: {v}" for k, v in upsd.get("sets", {}).items()]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="black-box survey of NUT's snmp-ups MIB mappings")
    p.add_argument("mappings", nargs="*")
    p.add_argument("--all", action="store_true")
    p.add_argument("--out", type=Path, default=Path("/tmp/snmp-survey"))
    p.add_argument("--jobs", type=int, default=4)
    p.add_argument("--no-upsd", action="store_true")
    p.add_argument("--phases", type=int, default=1)
    p.add_argument("--kmax", type=int, default=12, help="constant schemes k0..kN walk enumerations")
    p.add_argument("--wide", action="store_true", help="also the constants of WIDE (bit masks, big codes)")
    p.add_argument("--upsd-only", action="store_true", help="reuse the saved JSON, redo the upsd pass")
    p.add_argument("--commands", action="store_true",
                   help="reuse the saved JSON: find each command's OID (<name>.commands.json)")
    args = p.parse_args(argv)
    names = list(MAPPINGS) if args.all else args.mappings
    bad = [n for n in names if n not in MAPPINGS]
    if bad or not names:
        print(f"snmpsurvey: unknown or no mapping names {bad}; known: {' '.join(MAPPINGS)}", file=sys.stderr)
        return 2
    if not SNMP_UPS.exists():
        print("snmpsurvey: /lib/nut/snmp-ups missing (apt-get install nut-snmp)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.phases == 1 else f".phases{args.phases}"

    def write(n: str, d: dict) -> None:
        old = args.out / f"{n}{suffix}.json"
        if "upsd" not in d and old.exists():  # keep an earlier upsd pass
            d["upsd"] = json.loads(old.read_text()).get("upsd")
        (args.out / f"{n}{suffix}.json").write_text(json.dumps(d, indent=1, default=list))
        (args.out / f"{n}{suffix}.md").write_text(summary_md(d, d.get("upsd")))

    datas: dict[str, dict] = {}
    if args.commands:
        for n in names:
            found = command_oids(n, json.loads((args.out / f"{n}.json").read_text()))
            (args.out / f"{n}.commands.json").write_text(json.dumps(found, indent=1))
            print(f"{n}: {len(found)} commands, {sum(1 for o in found.values() if o)} with an OID", flush=True)
        return 0
    if args.upsd_only:
        datas = {n: json.loads((args.out / f"{n}{suffix}.json").read_text()) for n in names}
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(survey, n, kmax=args.kmax, phases=args.phases, wide=args.wide): n for n in names if n not in datas}
        for fut in as_completed(futures):
            n = futures[fut]
            try:
                datas[n] = fut.result()
            except Exception as exc:  # noqa: BLE001 - report and go on with the other mappings
                print(f"{n}: survey failed: {type(exc).__name__}: {exc}", flush=True)
                continue
            write(n, datas[n])
            print(f"{n}: {len(datas[n]['vars'])} vars, {datas[n]['requests']} requests", flush=True)
    if not args.no_upsd and datas:
        upsd = upsd_survey(list(datas), {n: Scheme("code", d["counts"], tuple(d["templates"])) for n, d in datas.items()})
        for n, d in datas.items():
            d["upsd"] = upsd.get(n)
            write(n, d)
            print(f"{n}: upsd cmds {len((upsd.get(n) or {}).get('cmds', []))} rw {len((upsd.get(n) or {}).get('rw', {}))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
