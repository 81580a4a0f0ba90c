"""Name-to-object registries: the extension points of audiocraft_mmd.

Estimators, stream sources, evaluate-stage plugins, solvers, patterns, quantizers, autoencoders and
audio losses are each a :class:`Registry`; configs name an entry, and new entries plug in with
``@REGISTRY.register(name)``. The registries AudioCraft's builders consult (solvers, patterns,
quantizers, autoencoders, losses) are defined here, at the bottom of the import graph: the classes
register themselves on import, and :mod:`audiocraft_mmd.integration` makes AudioCraft's builders look
them up.
"""

import typing as tp

T = tp.TypeVar("T")


class Registry(dict):
    """A dict from names to objects, filled by a decorator, whose look-ups fail with clear errors.

    Args:
        kind: What the entries are (e.g. ``"estimator"``), for error messages.
    """

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> tp.Callable[[T], T]:
        """Decorator registering an object under ``name``; re-registering another object is an error."""
        def decorator(obj: T) -> T:
            if name in self and self[name] is not obj:
                raise ValueError(f"{self.kind} name {name!r} is already registered to {self[name]!r}")
            self[name] = obj
            return obj
        return decorator

    def lookup(self, name: str) -> tp.Any:
        """The object registered under ``name``; ValueError listing the registered names otherwise."""
        try:
            return self[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name from a config
            raise ValueError(f"Unknown {self.kind} {name!r}; available {self.kind}s: {sorted(self)}") from None


# `solver=<name>` builds SOLVERS[name](cfg); `codebooks_pattern.modeling=<name>` builds PATTERNS[name](n_q, ...).
SOLVERS = Registry("solver")
register_solver = SOLVERS.register
PATTERNS = Registry("pattern")
register_pattern = PATTERNS.register
# `encodec.quantizer=<name>` builds QUANTIZERS[name](dimension=<latent>, **cfg.<name>).
QUANTIZERS = Registry("quantizer")
register_quantizer = QUANTIZERS.register
# `encodec.autoencoder=<name>` builds AUTOENCODERS[name](cfg) -> (encoder, decoder); AudioCraft's `seanet` otherwise.
AUTOENCODERS = Registry("autoencoder")
register_autoencoder = AUTOENCODERS.register
# `losses.<name>=<weight>` on the compression solver builds LOSSES[name](**cfg.<name>); AudioCraft's names otherwise.
LOSSES = Registry("loss")
register_loss = LOSSES.register
