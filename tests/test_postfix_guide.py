"""The Postfix guide's files say what the guide says, and fit the relay they front."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ct_alias import server
from ct_alias.relay import DEFAULT_MAX_SIZE

DOCS = Path(__file__).resolve().parent.parent / "docs"
FILES = DOCS / "postfix"
GUIDE = (DOCS / "postfix.rst").read_text()
DOMAIN = "ct.example.com"
RELAY = "127.0.0.1:2525"
RETURN_PORT = "127.0.0.1:10025"
RELAY_LINE_LIMIT = 1000  # aiosmtpd refuses longer lines: 500 Line too long


def main_cf(name: str = "main.cf") -> dict[str, str]:
    """``name = value`` settings of a main.cf fragment (continuation lines joined)."""
    settings: dict[str, str] = {}
    last = None
    for line in (FILES / name).read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and last is not None:
            settings[last] += " " + line.strip()
            continue
        key, equals, value = line.partition("=")
        assert equals, f"not a main.cf line: {line!r}"
        last = key.strip()
        assert last not in settings, f"{last} set twice"
        settings[last] = value.strip()
    return settings


def master_cf(name: str = "master.cf") -> dict[str, tuple[list[str], dict[str, str]]]:
    """Services of a master.cf fragment: name -> (the eight columns, the ``-o`` options)."""
    services: dict[str, tuple[list[str], dict[str, str]]] = {}
    current = None
    for line in (FILES / name).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line[0].isspace():
            assert current is not None
            flag, _, option = line.strip().partition(" ")
            assert flag == "-o", line
            key, _, value = option.partition("=")
            services[current][1][key] = value
            continue
        columns = line.split()
        assert len(columns) >= 8, line
        current = columns[0]
        services[current] = (columns, {})
    return services


def table(name: str) -> dict[str, str]:
    rows = {}
    for line in (FILES / name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split(None, 1)
            rows[key] = value.strip()
    return rows


def seconds(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([smhdw]?)", value).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]


def test_the_guide_includes_every_file() -> None:
    included = set(re.findall(r"literalinclude:: postfix/(\S+)", GUIDE))
    assert included == {p.name for p in FILES.iterdir()}


def test_the_guide_quotes_the_files_right() -> None:
    """Every ``name = value`` the guide's prose names is the value of the files."""
    settings = {**main_cf(), **main_cf("main-opendkim.cf"), **master_cf()[RETURN_PORT][1]}
    quoted = re.findall(r"``([a-z_]+) = ([^`]+)``", " ".join(GUIDE.split()))
    assert len(quoted) >= 6
    for name, value in quoted:
        assert settings.get(name) == value, (name, value)


def test_main_cf() -> None:
    settings = main_cf()
    assert settings["relay_domains"] == f"{DOMAIN}, .{DOMAIN}"
    assert settings["transport_maps"] == "hash:/etc/postfix/ct_alias_transport"
    # one alias per transaction: serve answers the others 452 4.5.3
    assert settings["ctalias_destination_recipient_limit"] == "1"
    # the verification comes before any permit
    restrictions = [r.strip() for r in settings["smtpd_recipient_restrictions"].split(",")]
    assert restrictions[0] == "check_recipient_access hash:/etc/postfix/ct_alias_verify"
    permits = [i for i, r in enumerate(restrictions) if r.startswith("permit")]
    assert permits
    assert min(permits) > 0  # a permit before the check would skip verification
    assert settings["unverified_recipient_reject_code"] == "550"
    # the verify cache: successes for an hour at most, failures refreshed within minutes
    assert seconds(settings["address_verify_positive_expire_time"]) <= 3600
    assert seconds(settings["address_verify_positive_refresh_time"]) < seconds(
        settings["address_verify_positive_expire_time"]
    )
    assert seconds(settings["address_verify_negative_refresh_time"]) <= 300
    assert seconds(settings["address_verify_negative_expire_time"]) <= 3600
    # Postfix never accepts what the relay refuses for size
    assert int(settings["message_size_limit"]) <= DEFAULT_MAX_SIZE
    assert settings["smtpd_forbid_bare_newline"] in {"normalize", "reject"}
    assert settings["ct_alias_milters"] == ""


def test_master_cf() -> None:
    services = master_cf()
    main = main_cf()
    columns, options = services["ctalias"]
    assert columns[1:5] == ["unix", "-", "-", "n"]
    assert columns[7] == "smtp"
    assert 0 < int(columns[6]) <= server.DEFAULT_HANDOFFS  # no 451 4.3.2 for Postfix's own load
    assert int(options["smtp_line_length_limit"]) <= RELAY_LINE_LIMIT - 2
    columns, back = services[RETURN_PORT]
    assert columns[1] == "inet"
    assert columns[7] == "smtpd"
    assert back["smtpd_milters"] == "$ct_alias_milters"
    assert back["milter_default_action"] == "accept"  # no DKIM daemon, no 451 4.7.1
    assert back["smtpd_recipient_restrictions"] == "permit_mynetworks,reject"
    assert back["mynetworks"] == "127.0.0.0/8"
    # the larger size needs a cleanup of its own: cleanup enforces the limit too
    assert int(back["message_size_limit"]) > int(main["message_size_limit"])
    cleanup_columns, cleanup = services[back["cleanup_service_name"]]
    assert cleanup_columns[7] == "cleanup"
    assert cleanup_columns[6] == "0"
    assert cleanup["message_size_limit"] == back["message_size_limit"]


def test_maps_and_the_relay_agree() -> None:
    assert table("ct_alias_transport") == {
        DOMAIN: f"ctalias:[127.0.0.1]:{RELAY.rsplit(':', 1)[1]}",
        f".{DOMAIN}": f"ctalias:[127.0.0.1]:{RELAY.rsplit(':', 1)[1]}",
    }
    assert table("ct_alias_verify") == {
        DOMAIN: "reject_unverified_recipient",
        f".{DOMAIN}": "reject_unverified_recipient",
    }
    assert f"--listen {RELAY} --deliver smtp://{RETURN_PORT}" in GUIDE


def test_before_queue_proxy() -> None:
    ((_, (columns, options)),) = master_cf("master-proxy.cf").items()
    assert columns[1] == "inet"
    assert columns[7] == "smtpd"
    assert options["smtpd_proxy_filter"] == RELAY
    assert "speed_adjust" not in options.get("smtpd_proxy_options", "")
    assert seconds(options["smtpd_proxy_timeout"]) >= 60


def test_opendkim() -> None:
    conf = dict(
        line.split(None, 1)
        for line in (FILES / "opendkim.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert conf["Mode"] == "sv"  # signs what the relay hands back, verifies incoming mail
    assert conf["KeyTable"] == "file:/etc/opendkim/key.table"
    assert conf["SigningTable"] == "refile:/etc/opendkim/signing.table"
    assert conf["InternalHosts"] == "refile:/etc/opendkim/trusted.hosts"
    host, port = conf["Socket"].removeprefix("inet:").split("@")[::-1]
    assert main_cf("main-opendkim.cf")["ct_alias_milters"] == f"inet:{host}:{port}"
    keys = table("key.table")
    signing = table("signing.table")
    assert set(signing) == {f"*@{DOMAIN}", f"*@*.{DOMAIN}"}
    assert set(signing.values()) <= set(keys)
    assert keys["ct"].startswith(f"{DOMAIN}:")
    assert "127.0.0.1" in (FILES / "trusted.hosts").read_text().split()


def test_postfix_reads_the_files_without_a_warning(tmp_path: Path) -> None:
    """With Postfix installed (CI installs it), the fragments load into its real configuration."""
    postconf = shutil.which("postconf", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if postconf is None or not Path("/etc/postfix/main.cf").exists():
        if os.environ.get("CI"):
            pytest.fail("Postfix is not installed; CI is set, so this is a failure, not a skip")
        pytest.skip("Postfix is not installed")
    config = tmp_path / "postfix"
    config.mkdir()
    for name, extra in (("main.cf", ("main.cf", "main-auth.cf")), ("master.cf", ("master.cf",))):
        original = Path("/etc/postfix", name).read_text()
        added = "\n".join((FILES / part).read_text() for part in extra)
        (config / name).write_text(original + "\n" + added)
    for flags in (["-n"], ["-M"], ["-P"]):
        done = subprocess.run(
            [postconf, "-c", str(config), *flags],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "warning" not in done.stderr.lower(), done.stderr
    listed = subprocess.run(
        [postconf, "-c", str(config), "-P"], capture_output=True, text=True, check=True
    ).stdout
    assert f"{RETURN_PORT}/inet/cleanup_service_name = ctcleanup" in listed
    assert "ctcleanup/unix/message_size_limit = 27262976" in listed


def conf_file(name: str) -> dict[str, str]:
    """``Name value`` settings of an OpenDKIM or OpenDMARC configuration file."""
    return dict(
        line.split(None, 1)
        for line in (FILES / name).read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )


def test_sender_authentication() -> None:
    """The verifiers write under one authserv-id; the sender's own fields of it are dropped."""
    dkim, dmarc = conf_file("opendkim.conf"), conf_file("opendmarc.conf")
    authserv_id = dmarc["AuthservID"]
    assert dkim["AuthservID"] == authserv_id == dmarc["TrustedAuthservIDs"]
    assert f"--authserv-id {authserv_id}" in GUIDE
    settings = main_cf("main-auth.cf")
    assert settings["milter_default_action"] == "tempfail"  # no verdict, no mail
    milters = [m.strip() for m in settings["smtpd_milters"].split(",")]
    dkim_host, dkim_port = dkim["Socket"].removeprefix("inet:").split("@")[::-1]
    dmarc_host, dmarc_port = dmarc["Socket"].removeprefix("inet:").split("@")[::-1]
    assert milters == [f"inet:{dkim_host}:{dkim_port}", f"inet:{dmarc_host}:{dmarc_port}"]
    assert settings["header_checks"] == "regexp:/etc/postfix/ct_alias_header_checks"
    # the return port keeps its own milters: relayed mail is signed, not judged
    assert master_cf()[RETURN_PORT][1]["smtpd_milters"] == "$ct_alias_milters"
    (rule,) = [
        line
        for line in (FILES / "ct_alias_header_checks").read_text().splitlines()
        if line.startswith("/")
    ]
    pattern, _, action = rule.rpartition("/ ")
    assert action == "IGNORE"
    regex = re.compile(pattern[1:].replace("[:space:]", r"\s"), re.IGNORECASE)
    assert regex.search(f"Authentication-Results: {authserv_id}; dmarc=pass header.from=x")
    assert regex.search(f"authentication-results:{authserv_id.upper()}; none")
    assert not regex.search(f"Authentication-Results: {authserv_id}.evil.example; dmarc=pass")
    assert not regex.search("Authentication-Results: mx.example.com.br; dkim=pass")
