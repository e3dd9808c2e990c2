"""Hostile real addresses: a clear InvalidAddress, or an alias that fits RFC 5321 and round-trips.

Whatever is passed to ``mask`` — quoted local parts, comments, IP literals,
homographs, mixed scripts, addresses exactly at the length limits, control
and invisible characters, normalisation forms — the tracker either refuses it
with :class:`InvalidAddress` (a non-empty ``reason``, the address not in the
message, nothing stored) or issues an alias that is ASCII, lower case, within
every RFC 5321 limit, and unmasks (in any case) to the normalised address.
"""

from __future__ import annotations

import unicodedata
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ct_alias import (
    CtAliasError,
    FrozenClock,
    InvalidAddress,
    Policy,
    RealAddress,
    Tracker,
    UnrepresentableAddress,
    normalize_address,
)
from ct_alias.testing import CountingStorage

from .hostile import (
    DOMAIN,
    OTHER_STORE,
    POLICIES,
    SIMPLE_STORE,
    START,
    make_tracker,
    rfc5321_problems,
)

STRICT_STORE = "strict-simple"
STORES = ("default", SIMPLE_STORE, OTHER_STORE, STRICT_STORE)
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def hostile_tracker() -> Tracker:
    policies = {
        **POLICIES,
        STRICT_STORE: Policy(domain=DOMAIN, strategy="simple", on_unrepresentable="error"),
    }
    return make_tracker(
        CountingStorage(),
        FrozenClock(START),
        ["0H2qXHj6-6lPEBbtYZbqFLqjZYYOWFSk7eK3ivjcc-I"],
        policies=policies,
    )


def store_of(tracker: Tracker) -> CountingStorage:
    store = tracker.storage
    assert isinstance(store, CountingStorage)
    return store


def domain_of_length(length: int, letter: str = "d") -> str:
    """A valid domain name of exactly ``length`` octets: labels of at most 63, then ``.com``."""
    labels = []
    rest = length - len("com")
    while rest > 0:
        take = min(64, rest)  # a label and its dot
        if rest - take == 1:
            take -= 1
        labels.append(letter * (take - 1))
        rest -= take
    domain = ".".join([*labels, "com"])
    assert len(domain) == length
    return domain


def check_outcome(tracker: Tracker, address: object, store: str = "default") -> str | None:
    """Mask ``address``; return the alias, or None when refused (checking how either way)."""
    calls = store_of(tracker).total
    refused: InvalidAddress | None = None
    try:
        alias = tracker.mask(address, conversation="o1", store=store)  # type: ignore[arg-type]
    except InvalidAddress as exc:
        refused = exc
    if refused is not None:
        assert isinstance(refused.reason, str), refused
        assert refused.reason.strip(), refused
        assert refused.address is address
        message = str(refused)
        if isinstance(address, str) and len(address) >= 6:
            assert address not in message, message
            assert address not in repr(refused), repr(refused)
            local = address.rpartition("@")[0]
            if len(local) >= 6:
                assert local not in message, message
        if isinstance(refused, UnrepresentableAddress):
            assert store == STRICT_STORE
        else:
            assert store_of(tracker).total == calls, "a refused address touched storage"
        return None
    real = normalize_address(address)
    assert not rfc5321_problems(alias.address), (address, rfc5321_problems(alias.address))
    assert alias.real_address == real.address
    assert tracker.unmask(alias.address).real_address == real.address
    assert tracker.unmask(alias.address.upper()).address == alias.address
    assert tracker.mask(address, conversation="o1", store=store) == alias  # type: ignore[arg-type]
    policy = tracker.policy_for(store)
    representable = not (real.quoted or real.smtputf8)
    if alias.strategy == "simple":
        assert policy.strategy == "simple"
        assert alias.address.startswith(real.local.lower() + "@" + real.domain + "-")
    else:
        assert COMPLEXISH(alias.address, policy.domain), alias.address
        if policy.strategy == "simple" and representable and simple_fits(real, policy.domain):
            pytest.fail(f"{address!r} fell back to a complex alias without reason")
    return alias.address


def simple_fits(real: RealAddress, alias_domain: str) -> bool:
    """Whether a simple alias of ``real`` would fit every RFC 5321 limit."""
    domain = f"{real.domain}-{'x' * 24}.{alias_domain}"
    return not real.domain.startswith("[") and not rfc5321_problems(
        f"{real.local.lower()}@{domain}"
    )


def COMPLEXISH(alias: str, domain: str) -> bool:
    token, _, alias_domain = alias.partition("@")
    return alias_domain == domain and len(token) == 40 and token[0] == "1"


# -- hand-picked -------------------------------------------------------------------------

INVALID = [
    "",
    "plainaddress",
    "@example.com",
    "mariasilva@",
    "mariasilva@@example.com",
    "maria(comment)silva@example.com",
    "mariasilva@example.com (comment)",
    "(comment)mariasilva@example.com",
    "Maria Silva <mariasilva@example.com>",
    "<mariasilva@example.com>",
    "mariasilva@[192.0.2.1]",
    "mariasilva@[IPv6:2001:db8::1]",
    "mariasilva@192.0.2.1",
    "mariasilva@localhost",
    "mariasilva@example",
    "mariasilva@example.com.",
    ".mariasilva@example.com",
    "mariasilva.@example.com",
    "maria..silva@example.com",
    "mariasilva@example..com",
    "mariasilva@.example.com",
    "mariasilva@-example.com",
    "mariasilva@example-.com",
    "mariasilva@exa_mple.com",
    "mariasilva\r\n@example.com",
    "mariasilva@example.com\r\nBcc: victim@example.org",
    "mariasilva\n@example.com",
    "mariasilva\x00@example.com",
    "mariasilva@exam\x00ple.com",
    "maria\tsilva@example.com",
    "mariasilva@example.com\t",
    " mariasilva@example.com",
    "mariasilva@example.com ",
    "maria silva@example.com",
    "mariasilva\u200e@example.com",  # LTR mark
    "mariasilva\u200f@example.com",  # RTL mark
    "maria\u202esilva@example.com",  # RTL override
    "maria\u202dsilva@example.com",  # LTR override
    "maria\u2066silva@example.com",  # isolate
    "maria\u200dsilva@example.com",  # zero-width joiner
    "maria\u200bsilva@example.com",  # zero-width space
    "maria\ufeffsilva@example.com",  # BOM
    "maria\u00adsilva@example.com",  # soft hyphen
    "mariasilva@exa\u00admple.com",
    "mariasilva\uff20example.com",  # fullwidth at sign
    "mariasilva@\U0001f600.com",  # emoji domain
    '"maria\r\nsilva"@example.com',
    '"maria\x00silva"@example.com',
    '"maria\tsilva"@example.com',
    '"mariasilva@example.com',
    'maria"silva"@example.com',
    "maria\\@silva@example.com",
    "mariasilva@example.com@example.org",
    "x" * 2000 + "@example.com",
    "mariasilva@" + "a" * 64 + ".com",  # a 64-octet label
    "m" * 64 + "@" + domain_of_length(190),  # 255 octets
    "mariasilva@" + ("\u00fc" * 60) + ".de",  # 60 characters, but too long once IDNA-encoded
]

VALID = [
    "mariasilva@example.com",
    "Maria.Silva+pedido-1@Example.COM.br",
    "maria_silva@sub-domain.example-shop.com.br",
    '"maria silva"@example.com',
    '"maria@silva"@example.com',
    '"maria\\"silva"@example.com',
    '"\U0001f600"@example.com',
    "\U0001f600@example.com",  # emoji local part (SMTPUTF8)
    "jo\u00e3o@exemplo.com.br",
    "jo\u00e3o@ex\u00e9mplo.com.br",
    "mariasilva@p\u0430ypal.com",  # Cyrillic a: a homograph of paypal.com
    "mariasilva@\u0440\u0430\u0443\u0440\u0430l.com",  # mostly Cyrillic, mixed script
    "mariasilva@m\u00fcnchen.de",
    "mariasilva@xn--mnchen-3ya.de",
    "mariasilva@\u4f8b\u3048.jp",
    "\u7528\u6237@\u4f8b\u5b50.\u516c\u53f8",
    "mariasilva@example\u3002com",  # ideographic full stop: a dot for IDNA
    "mariasilva@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",  # fullwidth domain (NFKC)
    "\uff4d\uff41\uff52\uff49\uff41@example.com",  # fullwidth local part
    "mariasilva@example.museum",
    "mariasilva@a.b.c.d.e.f.g.example.com",
    "x@" + "a" * 63 + ".com",  # a 63-octet label
    "m" * 64 + "@example.com",  # a 64-octet local part
    "m" * 64 + "@" + domain_of_length(189),  # 254 octets exactly
    "mariasilva@" + domain_of_length(242),  # as long as a domain can be here
    "mariasilva@" + "d" * 37 + ".com",  # the simple tag's label just fits (37+1+24 < 63)
    "mariasilva@" + "d" * 20 + "." + "t" * 38,  # the tag no longer fits the last label
]


def safe_id(address: str) -> str:
    """A test id of letters, digits and ``@.+-_`` only (others as ``%xx``).

    Tools that select tests by node id (mutmut) cannot select ids containing
    ``::``, brackets or escapes; ``repr`` ids have them all.
    """
    return "".join(
        c if c.isascii() and (c.isalnum() or c in "@.+-_") else f"%{ord(c):02x}" for c in address
    )[:80]


@pytest.mark.parametrize("address", INVALID, ids=safe_id)
def test_hostile_addresses_are_refused_clearly(address: str) -> None:
    tracker = hostile_tracker()
    for store in STORES:
        assert check_outcome(tracker, address, store) is None, (address, store)
    assert len(store_of(tracker)) == 0


@pytest.mark.parametrize("address", VALID, ids=safe_id)
def test_valid_but_unusual_addresses_get_a_working_alias(address: str) -> None:
    tracker = hostile_tracker()
    for store in STORES[:3]:
        assert check_outcome(tracker, address, store) is not None, (address, store)
    real = normalize_address(address)
    if real.quoted or real.smtputf8:
        with pytest.raises(UnrepresentableAddress) as info:
            tracker.mask(address, conversation="o1", store=STRICT_STORE)
        assert info.value.reason
        assert info.value.strategy == "simple"


@pytest.mark.parametrize(
    "bad", [None, 42, 4.2, b"maria@example.com", ["maria@example.com"], object()]
)
def test_non_strings_are_invalid_addresses(bad: object) -> None:
    tracker = hostile_tracker()
    assert check_outcome(tracker, bad) is None


def test_length_edges_are_exact() -> None:
    assert len("m" * 64 + "@" + domain_of_length(189)) == 254
    tracker = hostile_tracker()
    at_limit = "m" * 64 + "@" + domain_of_length(189)
    over = "m" * 64 + "@" + domain_of_length(190)
    assert check_outcome(tracker, at_limit, SIMPLE_STORE) is not None
    assert check_outcome(tracker, over, SIMPLE_STORE) is None
    # A simple alias never lengthens past the limits: the one that would is complex.
    for label in range(30, 45):
        address = f"mariasilva@{'d' * label}.com"
        alias = check_outcome(tracker, address, SIMPLE_STORE)
        assert alias is not None
        assert all(len(part) <= 63 for part in alias.partition("@")[2].split("."))


@pytest.mark.parametrize(
    "length",
    [
        64,
        65,
        200,
    ],
)
def test_simple_aliases_keep_the_local_part_within_64_octets(length: int) -> None:
    # email-validator (non-strict) accepts local parts longer than RFC 5321's 64 octets.
    tracker = hostile_tracker()
    alias = tracker.mask("m" * length + "@example.com", conversation="o1", store=SIMPLE_STORE)
    assert not rfc5321_problems(alias.address), rfc5321_problems(alias.address)


# -- normalisation forms, case and look-alikes ---------------------------------------------


@pytest.mark.parametrize(
    "composed",
    [
        "jo\u00e3o@exemplo.com.br",
        "mariasilva@ex\u00e9mplo.com.br",
        "Ren\u00e9e@caf\u00e9.fr",
        "\u00c5sa@\u00e5re.se",
        "\u1e9b\u0323@example.com",
    ],
)
def test_nfc_and_nfd_spellings_are_one_participant(composed: str) -> None:
    tracker = hostile_tracker()
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    for store in ("default", SIMPLE_STORE):
        first = tracker.mask(composed, conversation="o1", store=store)
        second = tracker.mask(decomposed, conversation="o1", store=store)
        assert second == first
        assert unicodedata.is_normalized("NFC", first.real_address)
        assert tracker.unmask(first.address).real_address == first.real_address


def test_case_variants_are_one_participant_but_look_alikes_are_not() -> None:
    tracker = hostile_tracker()
    base = tracker.mask("mariasilva@paypal.com", conversation="o1", store=SIMPLE_STORE)
    assert tracker.mask("MariaSilva@PayPal.COM", conversation="o1", store=SIMPLE_STORE) == base
    homograph = tracker.mask("mariasilva@p\u0430ypal.com", conversation="o1", store=SIMPLE_STORE)
    assert homograph.address != base.address
    assert homograph.real_address == "mariasilva@xn--pypal-4ve.com"
    # the readable alias shows the punycode, never a look-alike of the real domain
    assert "paypal.com" not in homograph.address
    assert homograph.address.isascii()
    cyrillic_local = tracker.mask("m\u0430riasilva@paypal.com", conversation="o1")
    assert (
        cyrillic_local.address != tracker.mask("mariasilva@paypal.com", conversation="o1").address
    )
    fullwidth = tracker.mask("\uff4d\uff41\uff52\uff49\uff41@example.com", conversation="o1")
    assert fullwidth.address != tracker.mask("maria@example.com", conversation="o1").address


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("\ufb01nance@example.com", "finance@example.com"),
        ("stra\u00dfe@example.com", "strasse@example.com"),
    ],
)
def test_addresses_that_differ_beyond_case_are_distinct_participants(
    first: str, second: str
) -> None:
    tracker = hostile_tracker()
    tracker.mask(first, conversation="o1")
    other = tracker.mask(second, conversation="o1")
    # ``second`` is all ASCII: mail to its alias must not go to the non-ASCII mailbox.
    assert other.real_address == second


# -- generated -------------------------------------------------------------------------------

_hostile_char = st.sampled_from(
    [
        *'aZ09._-+@"\\()<>[],;: \t\r\n\x00',
        "\u00e9",
        "\u0301",
        "\u0430",
        "\u200b",
        "\u200d",
        "\u200e",
        "\u202e",
        "\uff20",
        "\u3002",
        "\U0001f600",
        "\ufb01",
        "\u00df",
        "\u0130",
        "\u212a",
        "\ud7ff",
    ]
)
_word = st.text(_hostile_char, min_size=1, max_size=12) | st.from_regex(
    r"[a-z0-9]{1,70}", fullmatch=True
)
HOSTILE = st.one_of(
    st.text(max_size=300),
    st.emails(),
    st.builds(
        lambda a, b: f"{a}@{b}", _word, st.lists(_word, min_size=1, max_size=5).map(".".join)
    ),
    st.builds(
        lambda a, labels, tld: f"{a}@{'.'.join([*labels, tld])}",
        st.from_regex(r"[a-z0-9.+_-]{1,64}", fullmatch=True),
        st.lists(st.from_regex(r"[a-z0-9-]{1,70}", fullmatch=True), min_size=1, max_size=5),
        st.sampled_from(["com", "br", "de", "xn--p1ai"]),
    ),
)


@SETTINGS
@given(address=HOSTILE, store=st.sampled_from(STORES))
def test_any_text_is_refused_clearly_or_masked_correctly(address: str, store: str) -> None:
    tracker = hostile_tracker()
    try:
        outcome = check_outcome(tracker, address, store)
    except CtAliasError as exc:  # pragma: no cover - reported with the input
        pytest.fail(f"{address!r} raised {type(exc).__name__}: {exc}")
    if outcome is None or store == STRICT_STORE:
        return
    for form in ("NFC", "NFD", "NFKC"):
        spelled = unicodedata.normalize(form, address)
        if spelled == address:
            continue
        try:
            again = tracker.mask(spelled, conversation="o1", store=store)
        except InvalidAddress:
            continue
        if form != "NFKC":  # canonical equivalents are one participant
            assert again.address == outcome, (address, form)


@SETTINGS
@given(address=st.emails())
def test_aliases_outlive_their_address_text(address: str) -> None:
    """The alias keeps working to its expiry and is refused after, whatever the address."""
    clock = FrozenClock(START)
    tracker = make_tracker(CountingStorage(), clock)
    try:
        alias = tracker.mask(address, conversation="o1", store=SIMPLE_STORE)
    except InvalidAddress:
        return
    clock.advance(timedelta(days=60) - timedelta(seconds=1))
    assert tracker.unmask(alias.address).address == alias.address
    clock.advance(timedelta(seconds=1))
    with pytest.raises(CtAliasError):
        tracker.unmask(alias.address)
