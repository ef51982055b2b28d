import pytest

from consentry.core.errors import FetchRefused
from consentry.core.netpolicy import address_refusal, check_url


@pytest.mark.parametrize("addr", ["127.0.0.1", "10.1.2.3", "192.168.0.5", "172.16.3.4", "169.254.1.1",
                                  "::1", "fe80::1", "fc00::1", "100.64.0.1", "0.0.0.0", "::ffff:10.0.0.1"])
def test_private_addresses_refused_by_default(addr):
    assert address_refusal(addr, allow_private=False) is not None


@pytest.mark.parametrize("addr", ["169.254.169.254", "100.100.100.200", "fd00:ec2::254"])
def test_metadata_addresses_always_refused(addr):
    assert "metadata" in address_refusal(addr, allow_private=True)


def test_public_and_allowed_loopback():
    assert address_refusal("93.184.216.34", allow_private=False) is None
    assert address_refusal("127.0.0.1", allow_private=True) is None


def fake_resolver(table):
    def resolve(host, port):
        if host not in table:
            raise OSError("no such host")
        return table[host]
    return resolve


def test_check_url_resolves_then_decides():
    r = fake_resolver({"good.example": ["93.184.216.34"], "evil.example": ["93.184.216.34", "10.0.0.7"],
                       "meta.example": ["169.254.169.254"]})
    assert check_url("https://good.example/a.jpg", False, r) == ["93.184.216.34"]
    with pytest.raises(FetchRefused) as ei:
        check_url("https://evil.example/a.jpg", False, r)
    assert ei.value.reason == "private-address"
    with pytest.raises(FetchRefused):
        check_url("http://meta.example/latest/meta-data", True, r)
    for bad, reason in (("file:///etc/passwd", "bad-scheme"), ("gopher://x/", "bad-scheme"),
                        ("https://nowhere.example/", "dns"), ("http://user:pw@good.example/", "bad-url")):
        with pytest.raises(FetchRefused) as ei:
            check_url(bad, False, r)
        assert ei.value.reason == reason
