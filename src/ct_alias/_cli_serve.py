"""``ct-alias serve``: the relay on the wire, its logging and its start-up checks."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from ._cli_config import UsageError, env_value, host_port, tracker_from_args
from ._cli_moderation import moderators_from
from .errors import CtAliasError, StorageError
from .tracker import Tracker

if TYPE_CHECKING:
    from .auth import Authenticator

__all__ = ["cmd_serve", "one_line"]

logger = logging.getLogger("ct_alias.cli")


def cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    from .relay import Relay  # noqa: PLC0415
    from .server import RelayHandler, SMTPDeliverer, run_server  # noqa: PLC0415

    _configure_logging(args.log_level)
    host, port = host_port(args.listen, "--listen")
    deliver = args.deliver.removeprefix("smtp://")
    down_host, down_port = host_port(deliver, "--deliver")
    tracker = tracker_from_args(args)
    deliverer = SMTPDeliverer(down_host, down_port)
    _check_before_serving(tracker, deliverer, wait=args.wait)
    relay = Relay(
        tracker,
        authenticator=_authenticator(args),
        max_size=args.max_size,
        moderators=moderators_from(args.moderate),
    )
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
        logger.warning(
            "--log-level debug writes real addresses (the SMTP protocol log): do not keep it on"
        )


def _authenticator(args: argparse.Namespace) -> Authenticator | None:
    """The sender authenticator ``serve`` was asked for, or None (nobody is authenticated)."""
    from .auth import DKIM, AuthenticationResults  # noqa: PLC0415 - the auth extra

    authserv_id = args.authserv_id or env_value("CT_ALIAS_AUTHSERV_ID")
    if authserv_id and args.dkim:
        raise UsageError("give --authserv-id or --dkim, not both")
    if args.dkim:
        return DKIM()
    if authserv_id:
        return AuthenticationResults(authserv_id)
    logger.warning(
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
            problems.append(f"database unavailable: {one_line(exc)}")
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


def one_line(value: object) -> str:
    return " ".join(str(value).split())


class _OneLineFormatter(logging.Formatter):
    """Log records on one line: an exception is its type and message, not a traceback."""

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        """``Type: message`` of the exception, on the record's line."""
        return f"{ei[0].__name__}: {one_line(ei[1])}"

    def format(self, record: logging.LogRecord) -> str:
        """The record on one line."""
        return super().format(record).replace("\n", " | ")
