"""The everyday commands: ``topics``, ``produce``, ``consume``, ``groups``, ``cluster``, ``acls``,
``transactions``.

Each talks the Kafka protocol to any broker through :mod:`kafkacompat.client`
(``--bootstrap-server``, Kafka's ``host:port[,host:port...]`` list), so they
work against Apache Kafka as well as against kafkacompat. One module per
command family, each with ``add_parser(sub)`` and ``run(args, cluster)``;
this module adds the shared options and turns every failure into one line on
stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys

from kafkacompat.client import DEFAULT_BOOTSTRAP, ClientError, Cluster
from kafkacompat.protocol import DecodeError
from kafkacompat.tools import acls, cluster, consume, groups, produce, topics, transactions

COMMANDS = {"topics": topics, "produce": produce, "consume": consume, "groups": groups, "cluster": cluster,
            "acls": acls, "transactions": transactions}


def common_options(parser: argparse.ArgumentParser, *, leaf: bool = True) -> None:
    """``--bootstrap-server`` and ``--json``, accepted before and after a family's action.

    A leaf parser suppresses its defaults so that a value given to the family
    parser (``groups --bootstrap-server H:P list``) is not reset by the leaf.
    """
    parser.add_argument("--bootstrap-server", metavar="HOST:PORT[,...]",
                        default=argparse.SUPPRESS if leaf else DEFAULT_BOOTSTRAP,
                        help=f"any broker of the cluster (default {DEFAULT_BOOTSTRAP})")
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS if leaf else False,
                        help="machine output: JSON on stdout")


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    for module in COMMANDS.values():
        module.add_parser(sub).set_defaults(tool=module)


def run(args: argparse.Namespace) -> int:
    try:
        with Cluster(args.bootstrap_server) as connected:
            return args.tool.run(args, connected)
    except (ClientError, DecodeError) as exc:
        print(f"kafkacompat {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader of our stdout went away (| head): stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
