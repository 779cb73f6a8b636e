"""KeepaliveSettings: the kernel's ranges, clear errors, apply and read back."""

import socket

import pytest

from netkit import KeepaliveSettings, SettingError
from netkit.keepalive import KERNEL_DEFAULTS, read_keepalive


@pytest.mark.parametrize(
    "field, value, range_text",
    [
        ("idle", 0, "1..32767"),
        ("idle", 32768, "1..32767"),
        ("intvl", 0, "1..32767"),
        ("intvl", 32768, "1..32767"),
        ("cnt", 0, "1..127"),
        ("cnt", 128, "1..127"),
        ("cnt", -1, "1..127"),
    ],
)
def test_out_of_range_value_names_field_value_and_range(field, value, range_text):
    with pytest.raises(SettingError) as info:
        KeepaliveSettings(**{field: value})
    message = str(info.value)
    assert field in message and str(value) in message and range_text in message
    assert info.value.field.startswith(field)


@pytest.mark.parametrize("value", [1.5, "3", True, None])
def test_non_integer_values_are_refused(value):
    with pytest.raises(SettingError, match="cnt"):
        KeepaliveSettings(cnt=value)


def test_user_timeout_must_be_a_non_negative_int():
    with pytest.raises(SettingError, match="TCP_USER_TIMEOUT"):
        KeepaliveSettings(user_timeout_ms=-1)


@pytest.mark.parametrize("idle, intvl, cnt", [(1, 1, 1), (32767, 32767, 127)])
def test_range_edges_are_accepted(idle, intvl, cnt):
    assert KeepaliveSettings(idle, intvl, cnt).to_dict() == {"idle": idle, "intvl": intvl, "cnt": cnt}


def test_settings_are_hashable_values():
    assert KeepaliveSettings(1, 1, 3) == KeepaliveSettings(1, 1, 3)
    assert len({KeepaliveSettings(1, 1, 3), KeepaliveSettings(1, 1, 3)}) == 1


def test_apply_is_read_back_from_the_kernel(netkit_lab):
    sock = netkit_lab.server.socket("ipv4")
    try:
        assert read_keepalive(sock) == KeepaliveSettings(
            KERNEL_DEFAULTS["idle"], KERNEL_DEFAULTS["intvl"], KERNEL_DEFAULTS["cnt"], 0
        ), "a fresh namespace starts at the kernel defaults 7200/75/9, not the host's values"
        held = KeepaliveSettings(3, 2, 5, user_timeout_ms=1500).apply(sock)
        assert held == KeepaliveSettings(3, 2, 5, 1500)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    finally:
        sock.close()
