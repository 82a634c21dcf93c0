#!/usr/bin/env python3
"""Write the small MaxMind DB fixtures of the --geo tests (analysis/tests/data/*.mmdb).

Needs the PyPI package mmdb-writer (`pip install mmdb-writer`); the tests themselves do not:
the generated files are committed. Both databases hold the same nested networks, one in
GeoLite2-Country's record layout ({"country": {"iso_code": ...}}) and one in IPinfo's
({"country_code": ...}), plus one network whose record names no country (counted and skipped).
What each address must give is FIXTURE_ANSWERS in analysis/src/enrich/geo.rs.

    python3 scripts/make-geo-fixtures.py analysis/tests/data

With `--bench FILE` it writes instead the 12 MB database of BENCHMARKS.md's enrichment section:
300,000 random IPv4 prefixes (/16 to /24) and 100,000 IPv6 prefixes (/32 to /48, in 2a00::/12)
in 250 two-letter codes, seed 7 (a minute or two).
"""
import sys
from pathlib import Path

from mmdb_writer import MMDBWriter
from netaddr import IPSet

# (network, the networks nested in it, economy): nested ones are cut out so every network
# written is disjoint and the tree holds the most specific answer.
NETWORKS = [
    ("17.0.0.0/8", ["17.1.2.0/24"], "US"),
    ("17.1.2.0/24", [], "DE"),
    ("10.0.0.0/8", [], "HK"),
    ("2001:db8::/32", ["2001:db8:1::/48"], "NL"),
    ("2001:db8:1::/48", [], "JP"),
]
NO_COUNTRY = "192.0.2.0/24"


def write(path, database_type, record):
    w = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=database_type,
                   languages=["en"], description="mpscan --geo test fixture")
    for net, inner, code in NETWORKS:
        w.insert_network(IPSet([net]) - IPSet(inner), record(code))
    w.insert_network(IPSet([NO_COUNTRY]), {"continent": {"code": "EU"}})
    w.to_db_file(str(path))


def bench(path):
    import random
    from netaddr import IPNetwork
    random.seed(7)
    codes = [chr(65 + i // 26) + chr(65 + i % 26) for i in range(250)]
    by = {c: [] for c in codes}
    for _ in range(300_000):
        ln = random.choice([16, 18, 20, 22, 22, 23, 24, 24, 24, 24])
        a = random.randrange(0x01000000, 0xE0000000) & ((0xFFFFFFFF << (32 - ln)) & 0xFFFFFFFF)
        by[random.choice(codes)].append(IPNetwork((a, ln), version=4))
    for _ in range(100_000):
        ln = random.choice([32, 36, 40, 44, 48])
        a = ((0x2A0 << 116) | (random.getrandbits(128) >> 12)) & (((1 << 128) - 1) << (128 - ln)) & ((1 << 128) - 1)
        by[random.choice(codes)].append(IPNetwork((a, ln), version=6))
    w = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-Country",
                   languages=["en"], description="bench")
    for c, nets in by.items():
        if nets:
            w.insert_network(IPSet(nets), {"country": {"iso_code": c}})
    w.to_db_file(str(path))


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--bench":
        return bench(sys.argv[2])
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "analysis/tests/data")
    out.mkdir(parents=True, exist_ok=True)
    write(out / "geolite2-country-test.mmdb", "GeoLite2-Country",
          lambda c: {"country": {"iso_code": c, "names": {"en": c}}, "registered_country": {"iso_code": c}})
    write(out / "ipinfo-country-test.mmdb", "ipinfo country.mmdb",
          lambda c: {"country_code": c, "country": c, "continent": "XX"})


if __name__ == "__main__":
    main()
