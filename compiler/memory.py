"""How much memory the largest networks of a spec need to train, estimated from parameter counts
before anything is built (issue «Hardening»: `channels: 100000` tried to allocate 40 GB).

Training holds, per float32 parameter: the weight, its gradient, Adam's two moments and, for G,
an EMA copy: 5 × 4 bytes. A search stage holds its whole supernet (every candidate of every edge)
and its opponents: one, or P copies of the largest opponent subnet in a one-to-one stage.
Activations are not counted (they scale with the batch and the resolution, and are usually
smaller than a supernet's weights at these sizes), so the estimate is a lower bound.
"""

from __future__ import annotations

from eagan_dsl.diagnostics import Diagnostic, SpecError
from eagan_dsl.ir import Best, Program

from .params import count_params, param_range, supernet_params

BYTES_PER_PARAM = 5 * 4  # weight, gradient, Adam m and v, EMA: float32
LIMIT_BYTES = 64 * 2**30  # beyond this a spec cannot train on any one machine we know of


def _largest(program: Program, name: str) -> int:
    """The parameters of a named network: a fixed one's own, a searchable one's largest subnet."""
    if name in program.networks:
        return param_range(program.networks[name])[1]
    fixed = program.fixed.get(name)
    if fixed is None:
        return 0
    return count_params(program.networks[fixed.base], fixed.genome)


def stage_bytes(program: Program) -> dict[str, int]:
    """The estimated training memory of every search stage, in bytes."""
    out: dict[str, int] = {}
    for stage in program.stages:
        if stage.kind != "search":
            continue
        s = stage.settings
        names = s["network"] if isinstance(s["network"], tuple) else (s["network"],)
        params = sum(supernet_params(program.networks[n]) for n in names)
        opponent = s["against"] if s["against"] is not None else s["with"]
        if isinstance(opponent, Best):  # the other role of what that stage searched
            named = next((x for x in program.stages if x.name == opponent.stage), None)
            net = named.settings["network"] if named is not None else None
            searched = net if isinstance(net, str) else None
            role = (
                "discriminator" if program.networks[names[0]].role == "generator" else "generator"
            )
            opponent = searched if searched and program.networks[searched].role == role else None
        if isinstance(opponent, str):
            copies = int(s["population"]) if s["pairing"] == "one_to_one" else 1
            params += copies * _largest(program, opponent)
        out[stage.name] = params * BYTES_PER_PARAM
    return out


def memory_problems(program: Program, limit: int = LIMIT_BYTES) -> list[Diagnostic]:
    """A located error for every search stage whose networks need more than `limit` to train."""
    problems = []
    for stage in program.stages:
        need = stage_bytes(program).get(stage.name, 0)
        if need > limit:
            problems.append(
                Diagnostic(
                    f"stage {stage.name} needs about {need / 2**30:,.0f} GiB to train (its "
                    f"supernet and opponents: weights, gradients, Adam, EMA), more than the "
                    f"{limit // 2**30} GiB eagan accepts",
                    stage.span,
                    program.file,
                    hint="reduce `channels`, the candidates of its choice sets, or `population`",
                )
            )
    return problems


def check_memory(program: Program, source: str | None = None) -> None:
    """Raise `SpecError` (located at the stage) when a stage cannot fit in memory."""
    problems = memory_problems(program)
    if problems:
        err = SpecError(problems)
        if source is not None:
            err.source = source
            err.sources = {program.file: source}
        raise err
