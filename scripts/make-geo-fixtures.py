#!/usr/bin/env python3
"""Write the small MaxMind DB fixtures of the --geo tests (analysis/tests/data/*.mmdb).

Needs the PyPI package mmdb-writer (`pip install mmdb-writer`); the tests themselves do not:
the generated files are committed. Both databases hold the same nested networks, one in
GeoLite2-Country's record layout ({"country": {"iso_code": ...}}) and one in IPinfo's
({"country_code": ...}), plus one network whose record names no country (counted and skipped).
What each address must give is FIXTURE_ANSWERS in analysis/src/enrich/geo.rs.

    python3 scripts/make-geo-fixtures.py analysis/tests/data
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


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "analysis/tests/data")
    out.mkdir(parents=True, exist_ok=True)
    write(out / "geolite2-country-test.mmdb", "GeoLite2-Country",
          lambda c: {"country": {"iso_code": c, "names": {"en": c}}, "registered_country": {"iso_code": c}})
    write(out / "ipinfo-country-test.mmdb", "ipinfo country.mmdb",
          lambda c: {"country_code": c, "country": c, "continent": "XX"})


if __name__ == "__main__":
    main()
