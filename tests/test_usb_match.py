"""USB device matching (nutlite.usb.match): each of NUT's settings, the regular expression rules NUT
documents (extended syntax, whole string, case-insensitive, blanks around the device's string
ignored), bad values, port = auto, finding a re-enumerated device again."""

from __future__ import annotations

import pytest

from nutlite.usb.match import SETTINGS, UsbConfigError, UsbDeviceInfo, UsbMatcher, compile_ere

# the APC Back-UPS 500 of the usbsim example (its product string really ends in a blank)
APC = UsbDeviceInfo(0x051D, 0x0002, bus=1, address=2, port_path=(1,), vendor="American Power Conversion",
                    product="Back-UPS 500 FW: 6.5.I USB FW: c1 ", serial="AB0427******")
EATON = UsbDeviceInfo(0x0463, 0xFFFF, bus=3, address=7, port_path=(2, 4), vendor="EATON", product="5E",
                      serial=None)
NO_STRINGS = UsbDeviceInfo(0x0665, 0x5161, bus=1, address=5, port_path=(3,),
                           strings_error="string 1 could not be read: permission denied")


def m(**values: str) -> UsbMatcher:
    return UsbMatcher.from_config(values)


def test_settings_are_nuts():
    assert SETTINGS == ("vendorid", "productid", "vendor", "product", "serial", "bus", "device", "busport")


def test_no_settings_takes_any_device():
    assert m().matches(APC) and m().matches(NO_STRINGS)
    assert m().describe() == "any device"


@pytest.mark.parametrize("value", ["051d", "051D", "51d", "0x051d", "0X051D", " 051d "])
def test_vendorid_plain_hex_equals_the_id(value):
    assert m(vendorid=value).matches(APC)
    assert not m(vendorid=value).matches(EATON)


@pytest.mark.parametrize("value,apc,eaton", [
    ("051d*", True, False),          # NUT's own example: a regex over the 4 hex digits
    ("0463|09ae", False, True),
    ("0[0-9a-f]{3}", True, True),
    ("[[:xdigit:]]{4}", True, True),
    ("05", False, False),            # the whole id must match, not a prefix
    ("05.*", True, False),
])
def test_vendorid_regex_matches_the_whole_four_digit_id(value, apc, eaton):
    assert m(vendorid=value).matches(APC) is apc
    assert m(vendorid=value).matches(EATON) is eaton


def test_productid():
    assert m(productid="0002").matches(APC)
    assert m(productid="FFFF").matches(EATON)
    assert not m(productid="0002").matches(EATON)
    assert m(vendorid="0463", productid="ffff").matches(EATON)
    assert not m(vendorid="051d", productid="ffff").matches(APC)


@pytest.mark.parametrize("value", ["APC", "zzzz", "12345", "0x"])
def test_vendorid_that_no_id_can_match_is_refused(value):
    with pytest.raises(UsbConfigError) as e:
        UsbMatcher.from_config({"vendorid": value}, "ups.conf [myups]")
    msg = str(e.value)
    assert msg.startswith(f"ups.conf [myups]: vendorid = '{value}': ")
    assert "hexadecimal" in msg
    assert e.value.setting == "vendorid" and e.value.value == value


def test_productid_bad_regex_is_refused():
    with pytest.raises(UsbConfigError, match=r"^productid = '\(0002': not a valid regular expression"):
        m(productid="(0002")


def test_vendor_regex_whole_string_case_insensitive():
    assert m(vendor="American Power Conversion").matches(APC)
    assert m(vendor="american power conversion").matches(APC)
    assert m(vendor="AMERICAN.*").matches(APC)
    assert not m(vendor="American").matches(APC)       # anchored at both ends
    assert not m(vendor="Power").matches(APC)
    assert m(vendor=".*Power.*").matches(APC)
    assert m(vendor="eaton|apc|american power conversion").matches(APC)


def test_product_ignores_the_blanks_around_the_devices_string():
    # "Back-UPS 500 FW: 6.5.I USB FW: c1 " -- NUT matches it without its trailing blank
    assert m(product="Back-UPS 500 FW: 6.5.I USB FW: c1").matches(APC)
    assert m(product=".*c1").matches(APC)
    assert m(product=".*(Smart|Back)-?UPS.*").matches(APC)   # the man page's example
    assert not m(product="Back-UPS").matches(APC)
    assert m(product="5e").matches(EATON)


def test_serial():
    assert m(serial=r"AB0427\*+").matches(APC)
    assert not m(serial="AB0427").matches(APC)
    # a device without a serial string: the empty string
    assert not m(serial="AB.*").matches(EATON)
    assert m(serial="").matches(EATON)


def test_string_settings_on_a_device_whose_strings_cannot_be_read():
    # matches on its ids ...
    assert m(vendorid="0665", productid="5161").matches(NO_STRINGS)
    # ... but not when a string setting asks for text it could not give; the reason says why
    why = m(vendorid="0665", product="Megatec.*").mismatch(NO_STRINGS)
    assert why == "product no string (string 1 could not be read: permission denied) does not match 'Megatec.*'"
    assert m(product="Megatec.*").mismatch(NO_STRINGS, strings=False) is None


def test_bus_device_busport_are_three_digit_numbers():
    assert m(bus="001").matches(APC) and not m(bus="003").matches(APC)
    assert m(bus="00[1-3]").matches(APC) and m(bus="00[1-3]").matches(EATON)
    assert m(device="002").matches(APC) and not m(device="007").matches(APC)
    assert m(device="00[1-2]").matches(APC)
    assert m(busport="001").matches(APC)
    assert m(busport="004").matches(EATON)       # the port on the parent hub: the last in 2.4
    assert not m(busport="002").matches(EATON)
    assert m(busport="00[0-9]").matches(EATON)
    # a plain number equals the number, whatever its digits
    assert m(bus="1").matches(APC) and m(device="2").matches(APC) and m(busport="4").matches(EATON)
    # a device whose port is unknown (old libusb) has no busport
    assert not m(busport="001").matches(UsbDeviceInfo(0x051D, 2, bus=1, address=2))


def test_every_setting_must_match():
    both = m(vendorid="051d", product="Back-UPS.*", bus="001")
    assert both.matches(APC)
    assert both.mismatch(UsbDeviceInfo(0x051D, 2, bus=2, address=2, product="Back-UPS")) == \
        "bus '002' does not match '001'"


def test_mismatch_names_the_setting_and_both_values():
    assert m(product="Smart.*").mismatch(APC) == \
        "product 'Back-UPS 500 FW: 6.5.I USB FW: c1' does not match 'Smart.*'"
    assert m(vendorid="0463").mismatch(APC) == "vendorid '051d' does not match '0463'"


@pytest.mark.parametrize("setting", ["vendor", "product", "serial", "bus", "device", "busport"])
def test_a_regex_that_does_not_compile_names_the_setting_and_the_value(setting):
    with pytest.raises(UsbConfigError) as e:
        UsbMatcher.from_config({setting: "Back(UPS"}, "ups.conf [ups]")
    assert str(e.value).startswith(f"ups.conf [ups]: {setting} = 'Back(UPS': not a valid regular expression")


@pytest.mark.parametrize("pattern,text,ok", [
    ("[[:alpha:]]+-UPS", "Back-UPS", True),
    ("[[:digit:]]{3}", "500", True),
    ("[[:upper:]]+", "apc", True),               # case-insensitive even in classes
    (r"a[\]b", "a\\b", True),                    # a backslash is literal inside [ ] in POSIX
    ("[]x]+", "]x]", True),                      # ']' first in a bracket is literal
    ("[^]x]", "y", True),
    (r"\<Back\>.*", "Back-UPS", True),          # GNU word boundaries
    ("Smart|Back", "Back", True),
    ("(Smart|Back)-?UPS", "BackUPS", True),
    ("a{2,3}", "aaa", True),
    ("a{2,3}", "aaaa", False),
])
def test_posix_extended_syntax(pattern, text, ok):
    assert (compile_ere(pattern).fullmatch(text) is not None) is ok


@pytest.mark.parametrize("pattern,why", [
    ("[[:foo:]]", "unknown character class [:foo:]"),
    ("[abc", "unmatched ["),
    ("(?i)apc", "'(?' is not extended regular expression syntax"),
    ("apc\\", "trailing backslash"),
])
def test_syntax_ere_lacks_is_refused(pattern, why):
    with pytest.raises(UsbConfigError) as e:
        m(vendor=pattern)
    assert why in str(e.value)


def test_non_text_value_is_refused():
    with pytest.raises(UsbConfigError, match="expected a text value"):
        UsbMatcher.from_config({"vendorid": 0x051D})  # type: ignore[dict-item]


def test_port_and_other_keys_are_ignored():
    mm = UsbMatcher.from_config({"port": "/dev/usb/hiddev0", "driver": "usbhid-ups", "pollinterval": "2"})
    assert mm.criteria == () and mm.matches(APC)


def test_port_auto_takes_the_first_match_in_enumeration_order():
    apc2 = UsbDeviceInfo(0x051D, 0x0002, bus=1, address=9, product="Back-UPS 700", serial="XYZ")
    assert m(vendorid="051d").first([EATON, APC, apc2]) is APC
    assert m(vendorid="051d", serial="XYZ").first([EATON, APC, apc2]) is apc2
    assert m(vendorid="09ae").first([EATON, APC]) is None


def test_describe():
    assert m(vendorid="051d", product="Back.*").describe() == "vendorid=051d, product='Back.*'"
    assert APC.describe() == \
        '051d:0002 "American Power Conversion" "Back-UPS 500 FW: 6.5.I USB FW: c1" at bus 001 device 002 (port 1-1)'
    assert EATON.node == "/dev/bus/usb/003/007"
    assert EATON.ids == "0463:ffff"


def test_same_device_finds_a_reenumerated_device_at_a_new_address():
    configured = m(vendorid="051d", device="002")
    again = configured.same_device(APC)
    moved = UsbDeviceInfo(0x051D, 0x0002, bus=1, address=3, port_path=(1,), vendor="American Power Conversion",
                          product="Back-UPS 500 FW: 6.5.I USB FW: c1 ", serial="AB0427******")
    assert not configured.matches(moved)        # device=002 no longer holds ...
    assert again.matches(moved)                 # ... but it is the same UPS
    # another UPS of the same model (other serial) is not taken for it
    other = UsbDeviceInfo(0x051D, 0x0002, bus=1, address=4, vendor="American Power Conversion",
                          product="Back-UPS 500 FW: 6.5.I USB FW: c1 ", serial="ZZ999")
    assert not again.matches(other)
    assert not again.matches(EATON)
    # strings that cannot be read this time do not count against it
    unread = UsbDeviceInfo(0x051D, 0x0002, bus=1, address=5, strings_error="string 1 could not be read: timeout")
    assert again.matches(unread)


def test_same_device_keeps_bus_and_busport():
    two = m(vendorid="0463", busport="004").same_device(EATON)
    twin = UsbDeviceInfo(0x0463, 0xFFFF, bus=3, address=8, port_path=(2, 3), vendor="EATON", product="5E")
    assert not two.matches(twin)
    assert two.matches(UsbDeviceInfo(0x0463, 0xFFFF, bus=3, address=9, port_path=(2, 4), vendor="EATON",
                                     product="5E"))
