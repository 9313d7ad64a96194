"""The optreg hook plugin (entry-point group ``optreg``): heavyball's optimizers.

Every optimizer class heavyball exports, under its class name lower-cased (``soap``,
``psgdkron``, ``laprop``, ``muonadamw``, ...), as a lazy ``"heavyball:Class"`` target:
listing imports nothing (heavyball imports torch.compile machinery, about 2 s). Names a
builtin has (``adamw``, ``sgd``, ``nadam``, ``rmsprop``, ``muon``) stay the builtin's and
are reachable as ``optreg-heavyball:NAME``; ``optreg check`` lists them as shadowed.
"""

from __future__ import annotations

from typing import Any

from optreg import PluginRegistry, hookimpl

__all__ = ["CLASSES", "HEAVYBALL_VERSION", "NEEDS", "NOT_REGISTERED", "optreg_add_optimizers"]

HEAVYBALL_VERSION = "3.2.1"

#: the optimizer classes heavyball exports (``tests`` compares with the installed release)
CLASSES: tuple[str, ...] = (
    "ADOPT",
    "AdEMAMix",
    "AdamC",
    "AdamW",
    "HeavyKLSOAP",
    "HeavyKLShampoo",
    "HeavySOAP",
    "HeavySOAPAdEMAMix",
    "HeavySOAPNAdam",
    "HeavySOLP",
    "HyperBallAdamW",
    "KLSOAP",
    "KLShampoo",
    "LATHER",
    "LaProp",
    "LaPropOrtho",
    "MSAMLaProp",
    "Muon",
    "MuonAdamW",
    "MuonLaProp",
    "NAdam",
    "OrthoLaProp",
    "PSGDKron",
    "PSGDLRA",
    "PSGDPRO",
    "QSGD",
    "RMSprop",
    "SAMWrapper",
    "SFAdamW",
    "SGD",
    "SOAP",
    "SOAPAdEMAMix",
    "SOAPNAdam",
    "SOLP",
    "SUDSAdamW",
    "Scion",
    "SignLaProp",
    "UnscaledAdamW",
)

#: exported Optimizer subclasses that are not (params, **kwargs) optimizers
NOT_REGISTERED: dict[str, str] = {
    "PSGDBase": "an abstract base class (takes `defaults`)",
    "SOAPBase": "an abstract base class (takes `defaults`)",
    "SplitOpt": "takes `specs`, a list of (params, optimizer) pairs, not parameters",
}

#: what optreg.testing needs for some names (see optreg.testing), found with heavyball 3.2.1
NEEDS: dict[str, dict[str, Any]] = {}


@hookimpl
def optreg_add_optimizers(registry: PluginRegistry) -> None:
    """Register heavyball's optimizers (heavyball is not imported)."""
    for cls in CLASSES:
        name = cls.lower()
        needs = NEEDS.get(name)
        registry.register(
            name,
            f"heavyball:{cls}",
            description=f"heavyball.{cls}",
            requires=("heavyball",),
            metadata={"conformance": needs} if needs else {},
        )
