import pytest

from netsim.units import parse_bandwidth, parse_size, parse_time


@pytest.mark.parametrize(
    "text,bps",
    [("400 Gbps", 50e9), ("400Gb/s", 50e9), ("50 GB/s", 50e9), ("48.5 GiB/s", 48.5 * 2**30), ("100 Mbps", 12.5e6)],
)
def test_bandwidth(text, bps):
    assert parse_bandwidth(text) == pytest.approx(bps)


@pytest.mark.parametrize("text,sec", [("500 ns", 5e-7), ("6 us", 6e-6), ("6 µs", 6e-6), ("0.5 ms", 5e-4), ("0 s", 0)])
def test_time(text, sec):
    assert parse_time(text) == pytest.approx(sec)


@pytest.mark.parametrize("text,n", [("16 MiB", 16 * 2**20), ("1GiB", 2**30), ("1 GB", 10**9), ("4096 B", 4096), (7, 7)])
def test_size(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("bad", ["400", "400 Gbits", "-5 Gbps", "0 Gbps", "fast", 400])
def test_bad_bandwidth(bad):
    with pytest.raises(ValueError):
        parse_bandwidth(bad)


def test_bad_time_and_size():
    with pytest.raises(ValueError):
        parse_time("5 parsecs")
    with pytest.raises(ValueError):
        parse_time("-1 us")
    with pytest.raises(ValueError):
        parse_size("12 furlongs")
