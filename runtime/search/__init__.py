"""Algorithm 1 of the paper, one file per part: the stage protocol (`protocol.py`); the trained
networks and one training iteration (`members.py`); the search stage with warm-up, rounds,
selection and refill, many-to-one (`search_stage.py`); stage 2's one-to-one pairs, their merge and
weight-resetting (`one_to_one.py`); the coupled ablation (`coupled.py`); the fully-train stage
(`fully_train.py`). This face re-exports what the runner and the bench scripts use.
"""

from __future__ import annotations

from eagan_dsl.ir import StageIR
from runtime.search.coupled import CoupledStage
from runtime.search.fully_train import TrainStage, encode_genome, resolve_source
from runtime.search.members import EvalWrapper, Member, Trainer, input_resolution, recalibrate_bn
from runtime.search.protocol import Context, Interrupted, Stage, StageResult, derive_seed
from runtime.search.search_stage import SearchStage

__all__ = [
    "Context",
    "CoupledStage",
    "EvalWrapper",
    "Interrupted",
    "Member",
    "SearchStage",
    "Stage",
    "StageResult",
    "TrainStage",
    "Trainer",
    "derive_seed",
    "encode_genome",
    "input_resolution",
    "make_stage",
    "recalibrate_bn",
    "resolve_source",
]


def make_stage(ctx: Context, stage: StageIR) -> Stage:
    if stage.kind == "train":
        return TrainStage(ctx, stage)
    if isinstance(stage.settings["network"], tuple):
        return CoupledStage(ctx, stage)
    return SearchStage(ctx, stage)
