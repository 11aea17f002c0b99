"""``kafkacompat certs init DIR``: a throwaway CA, broker and client certificates, and the settings to use them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser("certs", help="make throwaway TLS certificates for a development broker")
    actions = parser.add_subparsers(dest="certs_action", required=True)
    init = actions.add_parser("init", help="write a CA, a broker certificate and client certificates into DIR")
    init.add_argument("directory", type=Path, metavar="DIR")
    init.add_argument("--hostname", action="append", default=[], metavar="NAME",
                      help="a host name or IP address the broker certificate is valid for "
                           "(repeatable; default localhost and 127.0.0.1)")
    init.add_argument("--client", action="append", default=[], metavar="NAME",
                      help="a client certificate with subject CN=NAME (repeatable; default one named client)")
    init.add_argument("--bootstrap", default="localhost:9093", metavar="HOST:PORT",
                      help="the TLS listener's address, for the printed settings (default localhost:9093)")
    return parser


def run(args: argparse.Namespace) -> int:
    from kafkacompat.security.certs import client_settings, create_certificates

    certs = create_certificates(args.directory.resolve(), tuple(args.hostname) or ("localhost", "127.0.0.1"),
                                tuple(args.client) or ("client",))
    print(f"# certificates written to {certs.directory}", file=sys.stderr)
    sys.stdout.write(client_settings(certs, args.bootstrap))
    return 0
