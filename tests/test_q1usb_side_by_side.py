"""Q1 over USB side by side: Debian NUT 2.8.0's /lib/nut/nutdrv_qx and /lib/nut/blazer_usb and nutlite's
drivers of the same names read one usbsim Megatec device (a fake libusb-1.0 serving a USB-serial
bridge, ../shared/tools/usbsim), each with Debian's upsd, through the cypress, phoenix, ippon and
krauler transports (and fabula for nutdrv_qx). They publish the same variables through
OL -> OB -> OB LB (replies changed through usbsim's control file), and an instant command reaches the
device as the same bytes (usbsim's log).

usbsim is built once per session; without NUT, gcc or usbsim the tests are skipped, or fail with
NUTLITE_REQUIRE_REAL_NUT=1.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from nutlite.drivers.transports import q1usb
from tests.nutenv import NutEnv, UpsSpec, compare_vars, get_var, real_nut_available, upsd_list, wait_for
from tests.test_usb_transport import _unavailable, usbsim_lib  # noqa: F401 - the session fixture

#: intended differences: driver.version is nutlite's release, driver.version.usb names the libusb
#: binding (pyusb)
INTENDED = ("driver.version", "driver.version.usb")

OL = "(230.4 229.8 230.1 018 50.0 13.7 30.0 00001001"
OB = "(230.4 000.0 230.1 025 00.0 12.2 30.0 10001001"
OB_LB = "(000.0 000.0 229.8 025 00.0 10.9 30.0 11001001"
RATING = "#230.0 003 12.00 50.0"
VENDOR = "#USBSIM          Q1-SIM     V1.0      "

#: transport -> (usb id, extra device lines, ups.conf settings)
BRIDGES: dict[str, tuple[str, list[str], dict[str, str]]] = {
    "cypress": ("0665:5161", [], {}),
    "phoenix": ("06da:0601", [], {}),
    "ippon": ("06da:0003", ["maxpacket 64"], {}),
    "krauler": ("0001:0000", [], {}),
    "fabula": ("0001:0000", [], {"subdriver": "fabula", "vendorid": "0001", "productid": "0000"}),
}
#: not compared: Debian's 2.8.0 hunnox subdriver refuses usbsim's replies ("qx_process_answer: short
#: reply (input.voltage)" for a full 46-byte Q1 reply), so there is no oracle for it here
#: the string descriptor indexes the string-descriptor bridges read the replies from
STRING_INDEX = {"Q1": 3, "I": 12, "F": 13}


def device_file(base: Path, transport: str) -> Path:
    usb_id, extra, _ = BRIDGES[transport]
    lines = [f"usb {usb_id}", "bcddevice 0002", "string 1 : Cypress Semiconductor", "string 2 : USB to Serial",
             "imanufacturer 1", "iproduct 2", "iserial 0",
             "descriptor: 06 00 ff 09 01 a1 01 15 00 26 ff 00 75 08 95 08 09 01 81 02 09 01 91 02 c0", *extra]
    if transport in ("krauler", "fabula"):
        lines += [f"string {STRING_INDEX['Q1']} : {OL}", f"string {STRING_INDEX['I']} : {VENDOR}",
                  f"string {STRING_INDEX['F']} : {RATING}"]
    else:
        lines += [f"megatec Q1 : {OL}", f"megatec F : {RATING}", f"megatec I : {VENDOR}"]
    path = base / f"{transport}.dev"
    path.write_text("\n".join(lines) + "\n")
    return path


def status_line(transport: str, reply: str) -> str:
    if transport in ("krauler", "fabula"):
        return f"string {STRING_INDEX['Q1']} : {reply}"
    return f"megatec Q1 : {reply}"


@pytest.fixture(scope="module")
def need_nut() -> None:
    if not real_nut_available() or not Path("/lib/nut/nutdrv_qx").exists() or not Path("/lib/nut/blazer_usb").exists():
        _unavailable("Debian's NUT 2.8.0 (/lib/nut/nutdrv_qx, blazer_usb, upsd) is not installed")


def start(base: Path, lib: Path, transport: str, driver: str, flavour: str,
          options: dict[str, str] | None = None, debug: bool = False) -> NutEnv:
    base.mkdir(parents=True, exist_ok=True)
    (base / "control").write_text("")
    dev = device_file(base, transport)
    env_vars = {"LD_LIBRARY_PATH": str(lib), "USBSIM_DEVICE": str(dev), "USBSIM_CONTROL": str(base / "control"),
                "USBSIM_LOG": str(base / "usbsim.log"), **({"USBSIM_DEBUG": "2"} if debug else {})}
    opts = {"pollinterval": "1", **BRIDGES[transport][2], **(options or {})}
    if driver == "nutdrv_qx":
        opts.setdefault("protocol", "megatec")  # skips the ~20 s probe of Debian's driver
        if not opts["protocol"]:
            del opts["protocol"]
        opts.setdefault("pollfreq", "2")  # Debian's refreshes the values only every pollfreq s
    spec = UpsSpec("ups", driver=driver, port="auto", options=opts, env=env_vars)
    return NutEnv(base, [spec], driver_flavour=flavour, upsd_flavour="debian").start_together(socket_timeout=40)


def control(base: Path, line: str) -> None:
    with open(base / "control", "a") as f:
        f.write(line + "\n")


def sim_log(base: Path) -> str:
    try:
        return (base / "usbsim.log").read_text(errors="replace")
    except FileNotFoundError:
        return ""


def status_of(env: NutEnv) -> str:
    return upsd_list(env, "ups").get("ups.status", "")


CASES = [(t, "nutdrv_qx") for t in BRIDGES] + [(t, "blazer_usb") for t in ("cypress", "phoenix", "ippon", "krauler")]


@pytest.mark.parametrize(("transport", "driver"), CASES)
def test_same_variables_through_ol_ob_lb(transport: str, driver: str, tmp_path: Path, usbsim_lib: Path,  # noqa: F811
                                         need_nut: None) -> None:
    seen: dict[str, list[dict[str, str]]] = {}
    for flavour in ("debian", "nutlite"):
        base = tmp_path / flavour
        env = start(base, usbsim_lib, transport, driver, flavour)
        try:
            steps = [upsd_list(env, "ups")]
            for reply, want in ((OB, "OB"), (OB_LB, "OB LB")):
                control(base, status_line(transport, reply))
                wait_for(lambda w=want, e=env: status_of(e) == w, 15, f"ups.status {want}", env)
                batt = f"{float(reply.split()[5]):.2f}"
                wait_for(lambda b=batt, e=env: upsd_list(e, "ups").get("battery.voltage") == b, 10,
                         "the new reply's values", env)
                steps.append(upsd_list(env, "ups"))
            seen[flavour] = steps
        finally:
            env.stop()
    for step, (deb, mine) in enumerate(zip(seen["debian"], seen["nutlite"], strict=True)):
        assert compare_vars(deb, mine, INTENDED) == [], f"step {step} ({transport}, {driver})"
        assert len(deb) > 20


def _sent(log: str) -> list[str]:
    """The SET_REPORTs in usbsim's log that are not the status poll (Q1)."""
    return [s for s in re.findall(r"SET_REPORT (\w+ 0x[0-9a-f]{2} : [0-9a-f ]+)", log)
            if not s.split(" : ")[1].startswith("51 31 0d")]


@pytest.mark.parametrize("transport", ["cypress", "phoenix", "ippon"])
@pytest.mark.parametrize(("driver", "command"), [("nutdrv_qx", "beeper.toggle"),
                                                 ("nutdrv_qx", "test.battery.start.quick"),
                                                 ("nutdrv_qx", "shutdown.return"),
                                                 ("blazer_usb", "shutdown.return")])
def test_instant_command_sends_debians_bytes(transport: str, driver: str, command: str, tmp_path: Path,
                                             usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    sent = {}
    for flavour in ("debian", "nutlite"):
        base = tmp_path / flavour
        env = start(base, usbsim_lib, transport, driver, flavour)
        try:
            before = len(_sent(sim_log(base)))
            with env.connect() as c:
                assert c.request("USERNAME admin").startswith("OK")
                assert c.request("PASSWORD adminpw").startswith("OK")
                assert c.request(f"INSTCMD ups {command}") == "OK"
            wait_for(lambda b=base, n=before: len(_sent(sim_log(b))) > n, 10, f"{flavour}: {command} on the wire", env)
            time.sleep(1.5)  # everything the command sends
            sent[flavour] = _sent(sim_log(base))[before:]
        finally:
            env.stop()
    if transport == "ippon":
        # Debian's ippon transport fills the last chunk after the command's CR and NUL with leftover
        # memory (it differs from run to run): compare up to the NUL
        sent = {f: _up_to_nul(v) for f, v in sent.items()}
    assert sent["nutlite"] == sent["debian"]
    assert sent["nutlite"]


def _up_to_nul(reports: list[str]) -> list[str]:
    out, wire = [], b""
    for r in reports:
        kind, data = r.split(" : ")
        wire += bytes.fromhex(data)
        if b"\r\0" in wire:
            end = wire.index(b"\r") + 2
            out.append(f"{kind} : {wire[:end].hex(' ')}")
            wire = b""
    return out


def test_unplug_replug_as_debian(tmp_path: Path, usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    """Both drivers show DATA-STALE within a few seconds of the unplug and the UPS's new state after the
    replug. (Debian's 2.8.0 nutdrv_qx also logs "libusb1: Could not open any HID devices: insufficient
    permissions on everything" at every retry while the device is away; nutlite logs one line for the
    loss and one for the return.)"""
    envs = {f: start(tmp_path / f, usbsim_lib, "cypress", "nutdrv_qx", f) for f in ("debian", "nutlite")}
    try:
        for f in envs:
            control(tmp_path / f, "unplug")
        for f, env in envs.items():
            wait_for(lambda e=env: get_var(e, "ups") == "ERR DATA-STALE", 8, f"{f}: DATA-STALE", env)
        for f in envs:
            control(tmp_path / f, status_line("cypress", OB))
            control(tmp_path / f, "replug")
        for f, env in envs.items():
            wait_for(lambda e=env: get_var(e, "ups") == 'VAR ups ups.status "OB"', 40, f"{f}: fresh data", env)
    finally:
        for env in envs.values():
            env.stop()


#: the device each id is served as (the bridge NUT's table gives it), for blazer_usb's automatic choice
AUTO_CASES = sorted((f"{v:04x}:{p:04x}", name) for (v, p), name in q1usb.BLAZER_USB_AUTO.items())


@pytest.mark.parametrize(("usb_id", "transport"), AUTO_CASES)
def test_ids_get_the_transport_debian_gives_them(usb_id: str, transport: str, tmp_path: Path, usbsim_lib: Path,  # noqa: F811
                                                 need_nut: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``subdriver``, each id nutlite claims is read by Debian's blazer_usb through the same
    bridge: the same first transfer in usbsim's log, and the same status."""
    monkeypatch.setitem(BRIDGES, transport, (usb_id, BRIDGES[transport][1], {}))
    first = {}
    for flavour in ("debian", "nutlite"):
        base = tmp_path / flavour
        env = start(base, usbsim_lib, transport, "blazer_usb", flavour)
        try:
            assert get_var(env, "ups") == 'VAR ups ups.status "OL"'
            log = sim_log(base)
            m = re.search(r"(SET_REPORT \w+ 0x[0-9a-f]{2} : 51 31 0d|GET_DESCRIPTOR string|megatec command)", log)
            first[flavour] = m.group(1) if m else "string descriptor" if transport == "krauler" else ""
        finally:
            env.stop()
    assert first["nutlite"] == first["debian"]


@pytest.mark.parametrize(("command", "index"), [("beeper.toggle", "07"), ("test.battery.start.quick", "04"),
                                                ("test.battery.start.deep", "05"), ("test.battery.stop", "0b")])
def test_krauler_command_reads_debians_string(command: str, index: str, tmp_path: Path, usbsim_lib: Path,  # noqa: F811
                                              need_nut: None) -> None:
    """krauler sends a command by reading its string descriptor: the same index as Debian's."""
    asked = {}
    for flavour in ("debian", "nutlite"):
        base = tmp_path / flavour
        env = start(base, usbsim_lib, "krauler", "nutdrv_qx", flavour, debug=True)
        try:
            with env.connect() as c:
                assert c.request("USERNAME admin").startswith("OK")
                assert c.request("PASSWORD adminpw").startswith("OK")
                c.request(f"INSTCMD ups {command}")  # usbsim has no such string: the read stalls, both say so
            wait_for(lambda b=base: index in _strings_read(sim_log(b)), 10, f"{flavour}: string {index} read", env)
            asked[flavour] = _strings_read(sim_log(base))
        finally:
            env.stop()
    assert asked["nutlite"] == asked["debian"]


def _strings_read(log: str) -> list[str]:
    """The string descriptors read with the device's language id, but the manufacturer and product
    strings (1, 2: read while matching, by libusb's and pyusb's helpers)."""
    return sorted(set(re.findall(r"control 80 06 03([0-9a-f]{2}) 0409 255", log)) - {"01", "02"})


def test_protocol_probe_over_usb_as_debian(tmp_path: Path, usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    """Without ``protocol``, both probe the UPS through the bridge and settle on the same protocol
    (driver.version.data) with the same variables."""
    seen = {}
    for flavour in ("debian", "nutlite"):
        env = start(tmp_path / flavour, usbsim_lib, "cypress", "nutdrv_qx", flavour, {"protocol": ""})
        try:
            seen[flavour] = upsd_list(env, "ups")
        finally:
            env.stop()
    assert seen["debian"]["driver.version.data"] == "Megatec 0.06"
    assert compare_vars(seen["debian"], seen["nutlite"], INTENDED) == []


DDL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ddl"
AVIEM = DDL / "Aviem_Systems" / "Aviem_Systems__Aviem_Pro_2000VA__blazer_usb__2.7.4__01.dev"
#: the listing's variables that name the NUT release and the setup it ran with, not the UPS
DDL_SETUP = ("driver.version", "driver.version.internal", "driver.parameter.synchronous",
             "driver.parameter.pollinterval", "driver.version.usb")


def listing(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("#") or ": " not in line:
            continue
        k, v = line.split(": ", 1)
        out[k.strip()] = v.strip()
    return out


def test_ddl_dump_replayed_as_its_listing(tmp_path: Path, usbsim_lib: Path, need_nut: None) -> None:  # noqa: F811
    """The Aviem Pro 2000VA (blazer_usb, Cypress 0665:5161) dump: a usbsim device answering what its
    listing shows (Q1 from the values, F from the ratings, no I: "Vendor information unavailable")
    gives the listing back from Debian's 2.8.0 blazer_usb and from nutlite's, with the dump's
    offdelay/ondelay."""
    if not AVIEM.exists():
        pytest.skip(f"the nut-ddl dumps are not there ({DDL})")
    want = listing(AVIEM)
    q1 = (f"({float(want['input.voltage']):05.1f} {float(want['input.voltage.fault']):05.1f} "
          f"{float(want['output.voltage']):05.1f} {int(want['ups.load']):03d} {float(want['input.frequency']):04.1f} "
          f"{float(want['battery.voltage']):.1f} --.- 00001001")
    rating = (f"#{float(want['input.voltage.nominal']):05.1f} {int(float(want['input.current.nominal'])):03d} "
              f"{float(want['battery.voltage.nominal']):05.2f} {float(want['input.frequency.nominal']):04.1f}")
    got = {}
    for flavour in ("debian", "nutlite"):
        base = tmp_path / flavour
        base.mkdir(parents=True)
        (base / "control").write_text("")
        dev = base / "aviem.dev"
        dev.write_text("\n".join([f"usb {want['ups.vendorid']}:{want['ups.productid']}",
                                  "descriptor: 06 00 ff 09 01 a1 01 15 00 26 ff 00 75 08 95 08 09 01 81 02 09 01 91 02 c0",
                                  f"megatec Q1 : {q1}", f"megatec F : {rating}"]) + "\n")
        spec = UpsSpec("ups", driver="blazer_usb", port="auto",
                       options={"offdelay": want["driver.parameter.offdelay"],
                                "ondelay": want["driver.parameter.ondelay"]},
                       env={"LD_LIBRARY_PATH": str(usbsim_lib), "USBSIM_DEVICE": str(dev),
                            "USBSIM_CONTROL": str(base / "control"), "USBSIM_LOG": str(base / "usbsim.log")})
        env = NutEnv(base, [spec], driver_flavour=flavour, upsd_flavour="debian")
        env.start()
        try:
            got[flavour] = upsd_list(env, "ups")
        finally:
            env.stop()
    for flavour, values in got.items():
        assert compare_vars(want, values, DDL_SETUP) == [], flavour
