#!/usr/bin/env python3
"""The libvirt reference of the daemon bench, through libvirt's own Python binding.

Defines DOMAINS small domains (never started), then measures dom.info() and
listAllDomains() calls per second on one connection, and define + undefine x100 done one
after the other; prints one JSON object and undefines what it defined. Installs nothing:
exits 3 when the binding is missing, 4 when no libvirt URI answers.

  python3 libvirt-rates.py [URI] [DOMAINS] [SECONDS]
"""
import json
import sys
import time

try:
    import libvirt
except ImportError:
    sys.exit(3)

XML = """<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"""
PREFIX = 'vkbench-'


def open_first(uris):
    libvirt.registerErrorHandler(lambda *_: None, None)
    for uri in uris:
        try:
            return uri, libvirt.open(uri)
        except libvirt.libvirtError:
            continue
    sys.exit(4)


def rate(fn, seconds):
    deadline = time.monotonic() + seconds
    calls = 0
    t0 = time.monotonic()
    while time.monotonic() < deadline:
        for _ in range(50):
            fn()
        calls += 50
    return calls / (time.monotonic() - t0)


def main():
    uris = [sys.argv[1]] if len(sys.argv) > 1 and sys.argv[1] else ['qemu:///system', 'test:///default']
    domains = int(sys.argv[2]) if len(sys.argv) > 2 else 11
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 2.0
    uri, conn = open_first(uris)
    for d in conn.listAllDomains():
        if d.name().startswith(PREFIX) and not d.isActive():
            d.undefine()
    defined = [conn.defineXML(XML.format(name=f'{PREFIX}{i}')) for i in range(domains)]
    try:
        dom = defined[0]
        rate(dom.info, 0.3)
        info = rate(dom.info, seconds)
        listing = rate(conn.listAllDomains, seconds)
        t0 = time.monotonic()
        tmp = [conn.defineXML(XML.format(name=f'{PREFIX}tmp{i}')) for i in range(100)]
        for d in tmp:
            d.undefine()
        define_ms = (time.monotonic() - t0) * 1000
        print(json.dumps({'uri': uri, 'version': conn.getLibVersion(), 'domains': domains,
                          'info': info, 'list': listing, 'defineUndefine100Ms': define_ms}))
    finally:
        for d in defined:
            d.undefine()


main()
