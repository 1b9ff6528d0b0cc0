"""eagan's runtime: data, training, the two search stages, metrics, checkpoints and the CLI."""

# The one place eagan's version is written: pyproject.toml reads it (`dynamic = ["version"]`),
# `eagan --version` prints it and resolved.json records it.
__version__ = "0.1.0"
