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
alias, a missing setting, an unknown conversation), 2 on bad usage (an unknown
option, a bad or empty value of a flag or variable). Messages name flags and
variables, never the library's parameters.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from . import __version__
from ._cli_admin import (
    cmd_db_upgrade,
    cmd_forget,
    cmd_keys_generate,
    cmd_keys_rotate,
    cmd_purge,
)
from ._cli_config import (
    DEFAULT_DB,
    FLAGS,
    BadValue,
    non_empty,
    not_negative,
    positive,
    tracker_from_args,
)
from ._cli_policy import add_rule_flags, cmd_policy_set, cmd_policy_show
from ._cli_serve import cmd_serve, one_line
from .aliases import Role
from .errors import (
    CtAliasError,
    InvalidArgument,
    UnknownAddressKey,
    UnknownAlias,
)
from .timeline import alias_to_dict
from .tracker import DEFAULT_STORE

if TYPE_CHECKING:
    pass

__all__ = ["main"]


def _print_json(data: Any, out: TextIO) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False), file=out)


# -- commands ------------------------------------------------------------------


def _cmd_mask(args: argparse.Namespace, out: TextIO) -> int:
    tracker = tracker_from_args(args)
    alias = tracker.mask(
        args.address, conversation=args.conversation, store=args.store, role=args.role
    )
    if args.json:
        _print_json(alias_to_dict(alias, tracker.clock.now(), context=True), out)
    else:
        print(alias.address, file=out)
    return 0


def _cmd_unmask(args: argparse.Namespace, out: TextIO) -> int:
    tracker = tracker_from_args(args)
    alias = tracker.unmask(args.alias, reason=args.reason)
    if args.json:
        _print_json(alias_to_dict(alias, tracker.clock.now(), real=True, context=True), out)
    else:
        print(alias.real_address, file=out)
    return 0


def _cmd_timeline(args: argparse.Namespace, out: TextIO) -> int:
    timeline = tracker_from_args(args).timeline(
        args.conversation, store=args.store, limit=args.limit, after=args.after
    )
    if args.after is None and not timeline.participants and not timeline.entries:
        of_store = "" if args.store == DEFAULT_STORE else f" of store {args.store!r}"
        raise _NotFound(
            f"no conversation {args.conversation!r}{of_store} in this storage (--db, CT_ALIAS_DB): "
            "nothing was masked or recorded for it"
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


class _NotFound(CtAliasError):
    """What the command was asked about does not exist."""


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from ._demo import run_demo  # noqa: PLC0415

    return run_demo(out, db=args.db, as_json=args.json)


# -- parser --------------------------------------------------------------------


class _HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default (when it has one and does not say it)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if "default" in text or "required" in text or not action.option_strings:
            return text
        if default is False:
            return f"{text} (default: off)"
        if default not in (None, argparse.SUPPRESS):
            return f"{text} (default: %(default)s)"
        return text


def _config_flags(parser: argparse.ArgumentParser, *, tracker: bool = True) -> None:
    group = parser.add_argument_group("configuration (flags override the environment)")
    group.add_argument(
        "--db", type=non_empty, help=f"storage URL [CT_ALIAS_DB, default {DEFAULT_DB}]"
    )
    if tracker:
        group.add_argument(
            "--keys",
            type=non_empty,
            help="signing keys, comma-separated, oldest first [CT_ALIAS_KEYS, required]",
        )
        group.add_argument(
            "--index-key",
            type=non_empty,
            help="blind-index key, never changed [CT_ALIAS_INDEX_KEY, default: a public key, "
            "with a warning]",
        )
        group.add_argument(
            "--domain",
            type=non_empty,
            help="alias domain, e.g. ct.example.com [CT_ALIAS_DOMAIN, required]",
        )
        group.add_argument(
            "--strategy",
            type=non_empty,
            help="alias strategy: complex or simple [CT_ALIAS_STRATEGY, default complex]",
        )
        group.add_argument(
            "--address-keys",
            type=non_empty,
            help="address-encryption keys, comma-separated, oldest first "
            "[CT_ALIAS_ADDRESS_KEYS, default: none, addresses stored as given]",
        )


class _SubParser(argparse.ArgumentParser):
    """Sub-command parsers: their sub-commands and help use the same rules."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(**kwargs)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ct-alias",
        description="Order-scoped e-mail masking: aliases and the order timeline.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="on an error, print the traceback after the one-line message (default: off)",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_SubParser
    )

    _alias_commands(sub)
    _admin_commands(sub)
    return parser


def _alias_commands(sub: Any) -> None:
    """demo, mask, unmask, timeline."""
    demo = sub.add_parser("demo", help="play a whole order on a throw-away SQLite file")
    demo.add_argument("--json", action="store_true", help="print the final timelines as JSON")
    demo.add_argument(
        "--db",
        type=non_empty,
        help="keep the demo's data in this storage URL (default: a throw-away SQLite file)",
    )
    demo.set_defaults(func=_cmd_demo)

    mask = sub.add_parser("mask", help="print the alias of an address in a conversation")
    mask.add_argument("address", type=non_empty, help="the real e-mail address to mask")
    mask.add_argument(
        "--conversation", "-c", required=True, type=non_empty, help="the order id (required)"
    )
    mask.add_argument(
        "--store", "-s", default=DEFAULT_STORE, type=non_empty, help="the store (tenant)"
    )
    mask.add_argument(
        "--role",
        "-r",
        default=Role.CUSTOMER.value,
        choices=[r.value for r in Role],
        help="whose address it is",
    )
    mask.add_argument("--json", action="store_true", help="print the alias as JSON")
    _config_flags(mask)
    mask.set_defaults(func=_cmd_mask)

    unmask = sub.add_parser("unmask", help="print the real address behind an alias")
    unmask.add_argument("alias", type=non_empty, help="the alias address")
    unmask.add_argument(
        "--reason",
        type=non_empty,
        help="why, recorded on the timeline as an audit entry (default: none, not recorded)",
    )
    unmask.add_argument(
        "--json", action="store_true", help="print the alias and its real address as JSON"
    )
    _config_flags(unmask)
    unmask.set_defaults(func=_cmd_unmask)

    timeline = sub.add_parser("timeline", help="show a conversation's timeline")
    timeline.add_argument("conversation", type=non_empty, help="the order id")
    timeline.add_argument(
        "--store",
        "-s",
        default=DEFAULT_STORE,
        type=non_empty,
        help="the store (tenant) whose conversation it is (default: %(default)s)",
    )
    shape = timeline.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="the JSON export")
    shape.add_argument(
        "--html", action="store_true", help="an HTML fragment for an order page (no script)"
    )
    timeline.add_argument(
        "--include-real-addresses",
        action="store_true",
        help="show the participants' real addresses in --json or --html",
    )
    timeline.add_argument("--limit", type=positive, help="at most this many entries (default: all)")
    timeline.add_argument(
        "--after",
        type=non_empty,
        help="the nextAfter cursor of the previous page (default: the first page)",
    )
    _config_flags(timeline)
    timeline.set_defaults(func=_cmd_timeline)


def _admin_commands(sub: Any) -> None:
    """purge, forget, db upgrade, serve, keys."""
    purge = sub.add_parser("purge", help="remove addresses of aliases that stopped working")
    purge.add_argument(
        "--older-than-days",
        type=not_negative,
        default=0,
        metavar="DAYS",
        help="only aliases that stopped working at least DAYS days ago",
    )
    _config_flags(purge)
    purge.set_defaults(func=cmd_purge)

    forget = sub.add_parser(
        "forget", help="erase an address everywhere (its aliases, timeline texts)"
    )
    forget.add_argument("address", type=non_empty, help="the real e-mail address to forget")
    forget.add_argument("--json", action="store_true", help="print the receipt as JSON")
    _config_flags(forget)
    forget.set_defaults(func=cmd_forget)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = db_sub.add_parser("upgrade", help="create or upgrade the schema")
    _config_flags(upgrade, tracker=False)
    upgrade.set_defaults(func=cmd_db_upgrade)

    serve = sub.add_parser("serve", help="run the SMTP relay")
    serve.add_argument("--listen", default="127.0.0.1:2525", help="HOST:PORT to listen on")
    serve.add_argument(
        "--deliver", default="smtp://127.0.0.1:25", help="the downstream MTA, smtp://HOST:PORT"
    )
    serve.add_argument(
        "--max-size", type=positive, default=25 * 1024 * 1024, help="largest message, in bytes"
    )
    serve.add_argument(
        "--hostname", help="the name the relay greets with (default: this host's FQDN)"
    )
    serve.add_argument(
        "--authserv-id",
        help="trust the Authentication-Results of this authserv-id (your MTA's) "
        "[CT_ALIAS_AUTHSERV_ID, default: none, every sender unverified]",
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
        type=positive,
        default=8,
        help="deliveries that may run at once; beyond, DATA gets 451 4.3.2 (default 8)",
    )
    serve.add_argument(
        "--moderate",
        action="append",
        metavar="RULE[=SETTING]",
        help="show every message to a shipped moderator, repeatable: attachment-types[=TYPE,...],"
        " attachment-size[=BYTES], contact-details[=flag|refuse]"
        " [CT_ALIAS_MODERATE, ';'-separated; default: none]",
    )
    serve.add_argument(
        "--wait",
        action="store_true",
        help="if the database or the downstream is down at start, wait (default: exit 1)",
    )
    _config_flags(serve)
    serve.set_defaults(func=cmd_serve)

    _policy_commands(sub)

    keys = sub.add_parser("keys", help="secret keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    generate = keys_sub.add_parser("generate", help="print new random keys")
    generate.add_argument("--count", type=positive, default=1, help="how many keys to print")
    generate.set_defaults(func=cmd_keys_generate)
    rotate = keys_sub.add_parser(
        "rotate", help="re-seal stored addresses with the newest address key (resumable)"
    )
    rotate.add_argument(
        "--batch-size", type=positive, default=500, help="records read and written per batch"
    )
    rotate.add_argument(
        "--after",
        type=non_empty,
        help="resume after this record key, from a progress line (default: from the start)",
    )
    _config_flags(rotate)
    rotate.set_defaults(func=cmd_keys_rotate)


def _policy_commands(sub: Any) -> None:
    """Policy set, policy show."""
    policy = sub.add_parser("policy", help="a store's policy, kept in the database")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")
    set_ = policy_sub.add_parser(
        "set", help="store a store's policy (every tracker on the database uses it)"
    )
    set_.add_argument("store", metavar="STORE", help="the store (shop) name")
    set_.add_argument(
        "--mask", choices=["simple", "complex"], help="the alias type (default: unchanged)"
    )
    set_.add_argument(
        "--domain",
        type=non_empty,
        help="alias domain [CT_ALIAS_DOMAIN for a store without a stored policy]",
    )
    set_.add_argument("--ttl-days", type=positive, help="how long aliases live, in days")
    set_.add_argument(
        "--grace-days", type=not_negative, help="how long ended aliases keep working, in days"
    )
    set_.add_argument(
        "--end-on",
        help="order events that end the aliases, comma-separated, e.g. invoiced,canceled",
    )
    set_.add_argument(
        "--max-contacts", type=not_negative, help="outside senders one conversation may have"
    )
    add_rule_flags(set_)
    _config_flags(set_, tracker=False)
    set_.set_defaults(func=cmd_policy_set)
    show = policy_sub.add_parser("show", help="print the stored policies as JSON")
    show.add_argument("store", metavar="STORE", nargs="?", help="only this store's")
    _config_flags(show, tracker=False)
    show.set_defaults(func=cmd_policy_show)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 error, 2 usage)."""
    stdout = out or sys.stdout
    parser = _parser()
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace, TextIO], int] = args.func
    try:
        return command(args, stdout)
    except CtAliasError as exc:
        return _report(args, exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`ct-alias demo | head`)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _report(args: argparse.Namespace, exc: CtAliasError) -> int:
    """Print an error in the command line's words; return the exit status."""
    if isinstance(exc, InvalidArgument):
        flag = FLAGS.get(exc.name, exc.name)
        if args.command == "timeline" and exc.name == "conversation":
            flag = "CONVERSATION"
        if args.command == "policy" and exc.name == "store":
            flag = "STORE"
        print(f"ct-alias {args.command}: error: invalid {flag}: {exc.reason}", file=sys.stderr)
        return 2
    if isinstance(exc, BadValue):
        print(f"ct-alias {args.command}: error: {exc}", file=sys.stderr)
        return 2
    message = str(exc)
    if isinstance(exc, UnknownAddressKey):
        message = (
            f"a stored address was sealed with address key {exc.key_id!r}, which is not in "
            "--address-keys (CT_ALIAS_ADDRESS_KEYS): add it back, oldest first, to read it"
        )
    elif isinstance(exc, UnknownAlias):
        message = (
            f"{exc}: is --index-key (CT_ALIAS_INDEX_KEY) the one it was stored with, "
            "and --db (CT_ALIAS_DB) its database?"
        )
    return _fail(args, exc, message)


def _fail(args: argparse.Namespace, exc: BaseException, message: str) -> int:
    """Print the error on one line (and its traceback with ``--verbose``); return 1."""
    print(f"ct-alias: error: {one_line(message)}", file=sys.stderr)
    if args.verbose:
        traceback.print_exception(exc, file=sys.stderr)
    return 1
