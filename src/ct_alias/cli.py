"""The ``ct-alias`` command line (also ``python -m ct_alias``).

Configuration comes from flags and the environment:

==================  =========================  ===============================================
flag                variable                   meaning
==================  =========================  ===============================================
``--db``            ``CT_ALIAS_DB``            storage URL (default ``sqlite:///ct_alias.db``)
``--keys``          ``CT_ALIAS_KEYS``          signing keys, comma-separated, oldest first
``--index-key``     ``CT_ALIAS_INDEX_KEY``     the blind-index key (set once, never change)
``--domain``        ``CT_ALIAS_DOMAIN``        the alias domain
``--strategy``      ``CT_ALIAS_STRATEGY``      ``complex`` (default) or ``simple``
``--address-keys``  ``CT_ALIAS_ADDRESS_KEYS``  address-encryption keys, oldest first
==================  =========================  ===============================================

Exit status: 0 on success, 1 with a one-line message on an error (an expired
alias, a missing setting), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TextIO

from . import __version__
from .aliases import Role
from .errors import (
    ConfigurationError,
    CtAliasError,
    PublicIndexKeyWarning,
    StorageError,
    UnknownAlias,
)
from .policy import Policy
from .storage.base import Storage
from .timeline import alias_to_dict
from .tracker import DEFAULT_STORE, Rotation, Tracker

if TYPE_CHECKING:
    from .auth import Authenticator

__all__ = ["main"]

DEFAULT_DB = "sqlite:///ct_alias.db"


class UsageError(ConfigurationError):
    """A setting the command needs is missing."""


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name) or default


def _key_list(flag: str | None, variable: str) -> list[str]:
    """Keys from a flag or the environment: comma-separated, oldest first."""
    raw = flag or _env(variable) or ""
    return [k.strip() for k in raw.split(",") if k.strip()]


def _keys(args: argparse.Namespace) -> list[str]:
    keys = _key_list(args.keys, "CT_ALIAS_KEYS")
    if not keys:
        raise UsageError(
            "no signing keys: set CT_ALIAS_KEYS (comma-separated, oldest first) or pass --keys; "
            "make one with `ct-alias keys generate`"
        )
    return keys


def _domain(args: argparse.Namespace) -> str:
    domain = args.domain or _env("CT_ALIAS_DOMAIN")
    if not domain:
        raise UsageError("no alias domain: set CT_ALIAS_DOMAIN or pass --domain")
    return domain


def _open_storage(url: str, *, upgrade: bool = False) -> Storage:
    from .storage.registry import storage_from_url  # noqa: PLC0415 - keeps startup light

    storage = storage_from_url(url)
    if upgrade:
        storage.upgrade()
    return storage


def _tracker(args: argparse.Namespace) -> Tracker:
    keys = _keys(args)
    policy = Policy(
        domain=_domain(args),
        strategy=args.strategy or _env("CT_ALIAS_STRATEGY") or "complex",
    )
    address_keys = _key_list(args.address_keys, "CT_ALIAS_ADDRESS_KEYS")
    index_key = args.index_key or _env("CT_ALIAS_INDEX_KEY")
    if index_key is None:
        print(
            "ct-alias: warning: no index key (set CT_ALIAS_INDEX_KEY or pass --index-key; make "
            "one with `ct-alias keys generate` and never change it): the public default lets "
            "someone holding the database confirm a guessed address",
            file=sys.stderr,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PublicIndexKeyWarning)  # said above, in CLI words
        return Tracker(
            storage=_open_storage(args.db or _env("CT_ALIAS_DB", DEFAULT_DB) or DEFAULT_DB),
            keys=keys,
            default_policy=policy,
            index_key=index_key,
            address_keys=address_keys or None,
        )


def _print_json(data: Any, out: TextIO) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False), file=out)


# -- commands ------------------------------------------------------------------


def _cmd_mask(args: argparse.Namespace, out: TextIO) -> int:
    tracker = _tracker(args)
    alias = tracker.mask(
        args.address, conversation=args.conversation, store=args.store, role=args.role
    )
    if args.json:
        _print_json(alias_to_dict(alias, tracker.clock.now(), context=True), out)
    else:
        print(alias.address, file=out)
    return 0


def _cmd_unmask(args: argparse.Namespace, out: TextIO) -> int:
    tracker = _tracker(args)
    alias = tracker.unmask(args.alias, reason=args.reason)
    if args.json:
        _print_json(alias_to_dict(alias, tracker.clock.now(), real=True, context=True), out)
    else:
        print(alias.real_address, file=out)
    return 0


def _cmd_timeline(args: argparse.Namespace, out: TextIO) -> int:
    timeline = _tracker(args).timeline(
        args.conversation, store=args.store, limit=args.limit, after=args.after
    )
    if args.json:
        print(
            timeline.to_json(include_real_addresses=args.include_real_addresses, indent=2), file=out
        )
    elif args.html:
        out.write(timeline.to_html(include_real_addresses=args.include_real_addresses))
    else:
        from ._render import render_timeline  # noqa: PLC0415

        print(render_timeline(timeline), file=out)
    return 0


def _cmd_purge(args: argparse.Namespace, out: TextIO) -> int:
    count = _tracker(args).purge(older_than=timedelta(days=args.older_than_days))
    print(f"purged {count} alias(es)", file=out)
    return 0


def _cmd_db_upgrade(args: argparse.Namespace, out: TextIO) -> int:
    url = args.db or _env("CT_ALIAS_DB", DEFAULT_DB) or DEFAULT_DB
    _open_storage(url, upgrade=True)
    print(f"database schema is up to date: {_redact(url)}", file=out)
    return 0


def _cmd_keys_generate(args: argparse.Namespace, out: TextIO) -> int:
    for _ in range(args.count):
        print(secrets.token_urlsafe(32), file=out)
    return 0


def _cmd_keys_rotate(args: argparse.Namespace, out: TextIO) -> int:
    tracker = _tracker(args)

    def report(progress: Rotation) -> None:
        print(
            f"scanned {progress.scanned}, re-sealed {progress.resealed} "
            f"(resume with --after {progress.last_key})",
            file=out,
            flush=True,
        )

    result = tracker.rotate_address_keys(
        batch_size=args.batch_size, after=args.after, progress=report
    )
    print(
        f"done: scanned {result.scanned}, re-sealed {result.resealed}; "
        "the older address keys can now be removed",
        file=out,
    )
    return 0


def _cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    from .relay import Relay  # noqa: PLC0415
    from .server import RelayHandler, SMTPDeliverer, run_server  # noqa: PLC0415

    _configure_logging(args.log_level)
    host, port = _host_port(args.listen, "--listen")
    deliver = args.deliver.removeprefix("smtp://")
    down_host, down_port = _host_port(deliver, "--deliver")
    if args.handoffs < 1:
        raise UsageError("--handoffs must be a positive number")
    tracker = _tracker(args)
    deliverer = SMTPDeliverer(down_host, down_port)
    _check_before_serving(tracker, deliverer, wait=args.wait)
    relay = Relay(tracker, authenticator=_authenticator(args), max_size=args.max_size)
    relay_handler = RelayHandler(relay, deliverer, handoffs=args.handoffs)

    def ready(address: tuple[str, int]) -> None:
        print(
            f"ct-alias relay listening on {address[0]}:{address[1]}, "
            f"delivering to {down_host}:{down_port}",
            file=out,
            flush=True,
        )

    run_server(relay_handler, host, port, hostname=args.hostname, ready=ready)
    return 0


#: aiosmtpd's protocol logger: at INFO it writes every envelope address it is given.
_PROTOCOL_LOGGER = "mail.log"


def _configure_logging(level_name: str) -> None:
    """Log to stderr, one line per record; an application may do this, the library never does.

    Real addresses are never written at the levels a default run enables:
    ct_alias's own lines name aliases, conversations and codes, and
    aiosmtpd's protocol logger (which names every ``MAIL FROM`` and ``RCPT
    TO``) stays at WARNING unless ``--log-level debug`` asks for it.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(_OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    level = logging.getLevelName(level_name.upper())
    logging.basicConfig(level=level, handlers=[handler])
    logging.getLogger(_PROTOCOL_LOGGER).setLevel(max(level, logging.WARNING))
    if level <= logging.DEBUG:
        logging.getLogger(_PROTOCOL_LOGGER).setLevel(logging.DEBUG)
        logging.getLogger(__name__).warning(
            "--log-level debug writes real addresses (the SMTP protocol log): do not keep it on"
        )


def _authenticator(args: argparse.Namespace) -> Authenticator | None:
    """The sender authenticator ``serve`` was asked for, or None (nobody is authenticated)."""
    from .auth import DKIM, AuthenticationResults  # noqa: PLC0415 - the auth extra

    authserv_id = args.authserv_id or _env("CT_ALIAS_AUTHSERV_ID")
    if authserv_id and args.dkim:
        raise UsageError("give --authserv-id or --dkim, not both")
    if args.dkim:
        return DKIM()
    if authserv_id:
        return AuthenticationResults(authserv_id)
    logging.getLogger(__name__).warning(
        "no sender authentication (--authserv-id or --dkim): every sender is shown unverified "
        "and no outside sender gets an alias"
    )
    return None


class _Unavailable(CtAliasError):
    """Something ``serve`` needs is not there."""


def _check_before_serving(tracker: Tracker, deliverer: Any, *, wait: bool) -> None:
    """Read the database and greet the downstream server; wait for both with ``--wait``."""
    delay = 1.0
    while True:
        problems = []
        try:
            tracker.timeline("ct-alias-start-up-check", limit=1)
        except StorageError as exc:
            problems.append(f"database unavailable: {_one_line(exc)}")
        try:
            deliverer.check()
        except CtAliasError as exc:
            problems.append(f"downstream {deliverer.host}:{deliverer.port} unavailable: {exc}")
        if not problems:
            return
        if not wait:
            raise _Unavailable("cannot serve: " + "; ".join(problems))
        print(
            f"ct-alias: waiting: {'; '.join(problems)}; trying again in {delay:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(delay)
        delay = min(delay * 2, 30.0)


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


class _OneLineFormatter(logging.Formatter):
    """Log records on one line: an exception is its type and message, not a traceback."""

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        """``Type: message`` of the exception, on the record's line."""
        return f"{ei[0].__name__}: {_one_line(ei[1])}"

    def format(self, record: logging.LogRecord) -> str:
        """The record on one line."""
        return super().format(record).replace("\n", " | ")


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from ._demo import run_demo  # noqa: PLC0415

    return run_demo(out, db=args.db, as_json=args.json)


def _host_port(text: str, flag: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"{flag} must be HOST:PORT, not {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.partition(":")[0]
        return f"{scheme}://{user}:***@{host}"
    return url


# -- parser --------------------------------------------------------------------


def _config_flags(parser: argparse.ArgumentParser, *, tracker: bool = True) -> None:
    group = parser.add_argument_group("configuration (flags override the environment)")
    group.add_argument("--db", help=f"storage URL [CT_ALIAS_DB, default {DEFAULT_DB}]")
    if tracker:
        group.add_argument(
            "--keys", help="signing keys, comma-separated, oldest first [CT_ALIAS_KEYS]"
        )
        group.add_argument("--index-key", help="blind-index key [CT_ALIAS_INDEX_KEY]")
        group.add_argument("--domain", help="alias domain, e.g. ct.example.com [CT_ALIAS_DOMAIN]")
        group.add_argument(
            "--strategy", help="alias strategy: complex (default) or simple [CT_ALIAS_STRATEGY]"
        )
        group.add_argument(
            "--address-keys",
            help="address-encryption keys, comma-separated, oldest first [CT_ALIAS_ADDRESS_KEYS]",
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ct-alias",
        description="Order-scoped e-mail masking: aliases and the order timeline.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="on an error, print the traceback after the one-line message (default: off)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _alias_commands(sub)
    _admin_commands(sub)
    return parser


def _alias_commands(sub: Any) -> None:
    """demo, mask, unmask, timeline."""
    demo = sub.add_parser("demo", help="play a whole order on a throw-away SQLite file")
    demo.add_argument("--json", action="store_true", help="print the final timelines as JSON")
    demo.add_argument("--db", help="keep the demo's data in this storage URL instead")
    demo.set_defaults(func=_cmd_demo)

    mask = sub.add_parser("mask", help="print the alias of an address in a conversation")
    mask.add_argument("address")
    mask.add_argument("--conversation", "-c", required=True, help="the order id")
    mask.add_argument("--store", "-s", default=DEFAULT_STORE, help="the store (tenant)")
    mask.add_argument("--role", "-r", default=Role.CUSTOMER.value, choices=[r.value for r in Role])
    mask.add_argument("--json", action="store_true")
    _config_flags(mask)
    mask.set_defaults(func=_cmd_mask)

    unmask = sub.add_parser("unmask", help="print the real address behind an alias")
    unmask.add_argument("alias")
    unmask.add_argument("--reason", help="why (recorded on the timeline)")
    unmask.add_argument("--json", action="store_true")
    _config_flags(unmask)
    unmask.set_defaults(func=_cmd_unmask)

    timeline = sub.add_parser("timeline", help="show a conversation's timeline")
    timeline.add_argument("conversation")
    timeline.add_argument(
        "--store", "-s", default=DEFAULT_STORE, help="the store (tenant) whose conversation"
    )
    shape = timeline.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="the JSON export")
    shape.add_argument(
        "--html", action="store_true", help="an HTML fragment for an order page (no script)"
    )
    timeline.add_argument("--include-real-addresses", action="store_true")
    timeline.add_argument("--limit", type=int)
    timeline.add_argument("--after", help="the nextAfter cursor of the previous page")
    _config_flags(timeline)
    timeline.set_defaults(func=_cmd_timeline)


def _admin_commands(sub: Any) -> None:
    """purge, db upgrade, serve, keys."""
    purge = sub.add_parser("purge", help="remove addresses of aliases that stopped working")
    purge.add_argument("--older-than-days", type=int, default=0, metavar="DAYS")
    _config_flags(purge)
    purge.set_defaults(func=_cmd_purge)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = db_sub.add_parser("upgrade", help="create or upgrade the schema")
    _config_flags(upgrade, tracker=False)
    upgrade.set_defaults(func=_cmd_db_upgrade)

    serve = sub.add_parser("serve", help="run the SMTP relay")
    serve.add_argument("--listen", default="127.0.0.1:2525", help="HOST:PORT to listen on")
    serve.add_argument(
        "--deliver", default="smtp://127.0.0.1:25", help="the downstream MTA, smtp://HOST:PORT"
    )
    serve.add_argument("--max-size", type=int, default=25 * 1024 * 1024, help="bytes")
    serve.add_argument("--hostname", help="the name the relay greets with")
    serve.add_argument(
        "--authserv-id",
        help="trust the Authentication-Results of this authserv-id (your MTA's) "
        "[CT_ALIAS_AUTHSERV_ID]",
    )
    serve.add_argument(
        "--dkim",
        action="store_true",
        help="verify DKIM signatures in process instead (the auth extra; needs DNS)",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="what to log (default info; no level but debug writes a real address)",
    )
    serve.add_argument(
        "--handoffs",
        type=int,
        default=8,
        help="deliveries that may run at once; more transactions get 451 4.3.2 (default 8)",
    )
    serve.add_argument(
        "--wait",
        action="store_true",
        help="if the database or the downstream server is down at start, wait for them",
    )
    _config_flags(serve)
    serve.set_defaults(func=_cmd_serve)

    keys = sub.add_parser("keys", help="secret keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    generate = keys_sub.add_parser("generate", help="print new random keys")
    generate.add_argument("--count", type=int, default=1)
    generate.set_defaults(func=_cmd_keys_generate)
    rotate = keys_sub.add_parser(
        "rotate", help="re-seal stored addresses with the newest address key (resumable)"
    )
    rotate.add_argument("--batch-size", type=int, default=500)
    rotate.add_argument("--after", help="resume after this record key (from a progress line)")
    _config_flags(rotate)
    rotate.set_defaults(func=_cmd_keys_rotate)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 error, 2 usage)."""
    stdout = out or sys.stdout
    parser = _parser()
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace, TextIO], int] = args.func
    try:
        return command(args, stdout)
    except UnknownAlias as exc:
        return _fail(
            args,
            exc,
            f"{exc}: is --index-key (CT_ALIAS_INDEX_KEY) the one it was stored with, "
            "and --db (CT_ALIAS_DB) its database?",
        )
    except CtAliasError as exc:
        return _fail(args, exc, str(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`ct-alias demo | head`)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _fail(args: argparse.Namespace, exc: BaseException, message: str) -> int:
    """Print the error on one line (and its traceback with ``--verbose``); return 1."""
    print(f"ct-alias: error: {_one_line(message)}", file=sys.stderr)
    if args.verbose:
        traceback.print_exception(exc, file=sys.stderr)
    return 1
