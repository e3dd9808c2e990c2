"""Real addresses: normalised, keyed, never shown in full."""

from __future__ import annotations

import pytest

from ct_alias import (
    ConfigurationError,
    normalize_address,
)
from ct_alias.blind_index import BlindIndex
from ct_alias.crypto import Cleartext
from ct_alias.strategies import ComplexStrategy, SimpleStrategy

CUSTOMER = "maria@example.com.br"


def test_reprs_hide_secrets_and_addresses() -> None:
    real = normalize_address("Maria.Silva@Example.com")
    assert "maria" not in repr(real).lower()
    assert "example.com" in repr(real)
    assert repr(BlindIndex()) == "<BlindIndex public>"
    assert repr(BlindIndex("bf4_lCU2EFGR-wGMGvzpZ6QIcPvzg-BDDFwJeS2Pv3k")) == "<BlindIndex keyed>"
    assert "secret" not in repr(BlindIndex("bf4_lCU2EFGR-wGMGvzpZ6QIcPvzg-BDDFwJeS2Pv3k"))
    assert BlindIndex("bf4_lCU2EFGR-wGMGvzpZ6QIcPvzg-BDDFwJeS2Pv3k").keyed
    assert not BlindIndex().keyed
    with pytest.raises(ConfigurationError):
        BlindIndex("")
    from ct_alias.codec import AliasCodec

    assert (
        repr(ComplexStrategy(AliasCodec("jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE")))
        == "ComplexStrategy()"
    )
    assert (
        repr(SimpleStrategy(AliasCodec("jPd850cY-Uq_ghDkUTkoMensWfsbMm98IiEjupxxAYE")))
        == "SimpleStrategy()"
    )
    assert repr(Cleartext()) == "Cleartext()"
