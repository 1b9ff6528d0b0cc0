"""`eagan run`: carry out every stage of a spec, writing the run directory as it goes, with
checkpoints at the end of every round and every N epochs, resume, and Ctrl-C that saves."""

from __future__ import annotations

import dataclasses
import io
import json
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from rich.console import Console
from torch import nn

from eagan_dsl.checker import check_text, load
from eagan_dsl.ir import Program
from eagan_dsl.settings import distance_name
from runtime import checkpoint as ckpt
from runtime.data import load_training_data
from runtime.display import Reporter
from runtime.dist import Dist, from_env, on_main, rank_device
from runtime.evaluator import Evaluator
from runtime.logs import LoggedReporter, RunLog, closing, read_csv
from runtime.rundir import (
    History,
    RunDir,
    RunDirError,
    RunLock,
    atomic_write,
    discard_run,
    environment,
)
from runtime.search import Context, Interrupted, StageResult, TrainStage, make_stage

QUICK = {"rounds": 2, "epochs": 1, "warmup": 1, "population": 4, "images": 256, "final_images": 512}
EXIT_INTERRUPTED = 130


def quick_program(program: Program) -> Program:
    """`--quick`: the same spec with rounds, epochs and images shrunk, for a smoke test."""
    stages = []
    for st in program.stages:
        s = dict(st.settings)
        for key, small in QUICK.items():
            if key in s and isinstance(s[key], int):
                s[key] = min(s[key], small)
        if st.kind == "train":
            s["epochs"] = min(int(s["epochs"]), 2)
        stages.append(dataclasses.replace(st, settings=MappingProxyType(s)))
    return dataclasses.replace(program, stages=tuple(stages))


def train_program(program: Program, g: str, d: str, epochs: int | None = None) -> Program:
    """`eagan train`: the spec reduced to one fully-train stage of (G, D), with the spec's own
    fully-train settings (or the defaults and the train/evaluate blocks when it has none). A
    resumed `train` run is rebuilt from the same arguments (recorded in resolved.json)."""
    from eagan_dsl.ir import StageIR

    stage = next((s for s in program.stages if s.kind == "train"), None)
    settings: dict[str, Any] = dict(stage.settings) if stage else {}
    if stage is None:
        from eagan_dsl.settings import TRAIN_STAGE

        settings = {k.name: k.default for k in TRAIN_STAGE}
        for block in ("train", "evaluate"):
            settings.update(program.blocks[block])
    settings["g"], settings["d"] = g, d
    if epochs is not None:
        settings["epochs"] = epochs
    train_stage = StageIR(
        stage.name if stage else "fully_train", "train", MappingProxyType(settings)
    )
    return dataclasses.replace(program, stages=(train_stage,))


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available here; use --device cpu")
    return torch.device(device)


def _sample_writer(
    run: RunDir, program: Program, device: torch.device, seed: int
) -> Callable[[str, Any], None]:
    from runtime.grids import save_grid

    fixed = torch.randn(64, program.latent_dim, generator=torch.Generator().manual_seed(seed))

    def write(name: str, generate: Any) -> None:
        was = generate.training if isinstance(generate, nn.Module) else None
        if isinstance(generate, nn.Module):
            generate.eval()
        with torch.no_grad():
            images = generate(fixed.to(device)).float().cpu()
        if isinstance(generate, nn.Module) and was is not None:
            generate.train(was)
        save_grid(images, run.samples / f"{name}.png", nrow=8)

    return write


def _plots(run: RunDir, stage: str, history: list[dict[str, Any]], fd: str = "FID") -> None:
    from runtime.plots import write_loss_plot, write_round_plots

    if stage:
        write_round_plots(run.plots, stage, history, fd)
    write_loss_plot(run.plots, [r for r in read_csv(run.root) if r["kind"] == "loss"])


@contextmanager
def _stop_on_signals(flag: list[bool]) -> Iterator[None]:
    """The first Ctrl-C (or SIGTERM from a pre-empting scheduler) asks the run to stop at the next
    iteration boundary and save; a second Ctrl-C stops at once."""

    def handler(signum: int, frame: Any) -> None:
        if flag[0] and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag[0] = True

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: no handlers, Ctrl-C stays a KeyboardInterrupt
        pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def state_problem(state: Any, stages: int | None) -> str | None:
    """What is wrong with a checkpoint's state as `Runner.state` writes it, or None."""
    if not isinstance(state, dict):
        return "it is not a mapping"
    kinds: dict[str, tuple[type, ...]] = {
        "stage_index": (int,),
        "stage_state": (dict, type(None)),
        "results": (dict,),
        "torch_rng": (torch.Tensor,),
        "history_lines": (int,),
    }
    for key, types in kinds.items():
        if key not in state:
            return f"'{key}' is missing"
        if not isinstance(state[key], types) or isinstance(state[key], bool):
            return f"'{key}' is a {type(state[key]).__name__}"
    if state["stage_index"] < 0 or (stages is not None and state["stage_index"] > stages):
        return f"'stage_index' is {state['stage_index']}, the spec has {stages} stage(s)"
    if state["history_lines"] < 0:
        return f"'history_lines' is {state['history_lines']}"
    if state["torch_rng"].dtype != torch.uint8:
        return "'torch_rng' is not a random generator's state"
    if not all(isinstance(k, str) and isinstance(v, dict) for k, v in state["results"].items()):
        return "'results' is not a mapping of stage names to results"
    return None


def _bad_state(loaded: ckpt.Loaded, problem: str) -> ckpt.BadCheckpoint:
    return ckpt.BadCheckpoint(
        f"{loaded.path} does not hold a run's state as this version of eagan writes it "
        f"({problem}): it was damaged or crafted; remove it (with its .json) to resume from the "
        "previous checkpoint, or start the run again with --force"
    )


@contextmanager
def _restoring(loaded: ckpt.Loaded) -> Iterator[None]:
    """A checksum-valid checkpoint whose contents do not fit the spec: one clear error."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as err:
        raise _bad_state(loaded, f"{type(err).__name__}: {err}") from None


class Runner:
    def __init__(
        self,
        program: Program,
        run_dir: RunDir,
        device: torch.device,
        seed: int,
        reporter: Reporter,
        inception_weights: str | None = None,
        observe: Callable[[str, dict[str, Any]], None] | None = None,
        dist: Dist | None = None,
    ) -> None:
        """Under torchrun every rank builds a Runner; only rank 0 writes the run directory and the
        display (the others keep the history in memory and stay silent)."""
        self.program = program
        self.run_dir = run_dir
        self.dist = dist or Dist()
        self.history = run_dir.history() if self.dist.main else History(None)
        if not self.dist.main:
            reporter = Reporter(Console(file=io.StringIO()), live=False)
        # metrics.csv and TensorBoard (rank 0): every iteration and round passes through the log
        self.log = RunLog(
            run_dir.root if self.dist.main else None, int(program.blocks["run"]["log_every"])
        )
        logged = LoggedReporter(reporter, self.log)
        self.stop = [False]
        self.fd = reporter.distance = distance_name(str(program.blocks["evaluate"]["extractor"]))
        evaluator = Evaluator(program, program.blocks["evaluate"], device, inception_weights)
        write_samples = (
            _sample_writer(run_dir, program, device, seed)
            if self.dist.main
            else lambda name, g: None
        )

        def samples(name: str, generate: Any) -> None:
            write_samples(name, generate)
            self.log.image(name, run_dir.samples / f"{name}.png")

        self.ctx = Context(
            program=program,
            data=load_training_data(program.data, device),
            device=device,
            seed=seed,
            evaluators={"search": evaluator, "final": evaluator},
            report=logged,
            history=self.history,
            samples=samples,
            observe=observe,
            checkpoint=self.save,
            stop_requested=lambda: self.stop[0],
            checkpoint_every=int(program.blocks["run"]["checkpoint_every"]),
            dist=self.dist,
            log=self.log,
        )
        self.index = 0
        self.current: Any = None
        self.pending: dict[str, Any] | None = None
        self.restored: ckpt.Loaded | None = None
        self.stage_seconds: dict[str, float] = {}
        # a checkpoint after the "start" one (or a resume): the run holds work worth keeping
        self.progressed = False

    # ------------------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        return {
            "stage_index": self.index,
            "stage_state": self.current.state_dict() if self.current is not None else None,
            "results": {name: r.state_dict() for name, r in self.ctx.results.items()},
            "torch_rng": torch.get_rng_state(),
            "history_lines": len(self.history.records),
            "log": self.log.state(),
        }

    def save(self, reason: str) -> None:
        """A checkpoint (every rank calls this at the same points: the state gathers what ranks
        hold alone, such as stage-2 pairs in progress; rank 0 writes it)."""
        stage = (
            self.program.stages[self.index].name
            if self.index < len(self.program.stages)
            else "done"
        )
        meta = {
            "reason": reason,
            "stage": stage,
            "stage_index": self.index,
            "history_lines": len(self.history.records),
            "world_size": self.dist.world,
        }
        state = self.state()
        self.log.flush()  # the rows and events the checkpoint counts are on disk
        on_main(self.dist, lambda: ckpt.save(self.run_dir.checkpoints, state, meta))
        self.progressed = self.progressed or reason != "start"

    def restore(self, loaded: ckpt.Loaded) -> None:
        state = loaded.state
        problem = state_problem(state, len(self.program.stages))
        if problem:
            raise _bad_state(loaded, problem)
        with _restoring(loaded):
            self.history.truncate(int(state["history_lines"]))
            self.log.restore(state.get("log"))
            torch.set_rng_state(state["torch_rng"])
            for name, rs in state["results"].items():
                self.ctx.results[name] = StageResult.from_state(self.program, rs, self.ctx.device)
        self.index = int(state["stage_index"])
        self.pending = state["stage_state"]
        self.restored = loaded

    # ------------------------------------------------------------------------------ run
    def run(self, resume: ckpt.Loaded | None = None) -> None:
        self.pending = None
        self.restored = None
        if resume is not None:
            self.restore(resume)
            self.progressed = True
        else:
            self.log.start()
            self.save("start")  # so that a run killed at any later point can be resumed
        report = self.ctx.report
        with _stop_on_signals(self.stop), report, closing(self.log):
            if self.dist.main and hasattr(report, "header"):
                report.header(self._plan())
                report.run_progress(self._planned_iterations(), self.log.step)
            try:
                while self.index < len(self.program.stages):
                    stage = self.program.stages[self.index]
                    started = time.monotonic()
                    self.current = make_stage(self.ctx, stage)
                    if self.pending is not None:
                        with _restoring(self.restored):
                            self.current.load_state_dict(self.pending)
                        self.pending = None
                    if isinstance(self.current, TrainStage):
                        self._finish(self.current)
                    else:
                        result = self.current.run()
                        self.ctx.results[stage.name] = result
                        self.ctx.notify(
                            "result",
                            stage=stage.name,
                            module=result.module,
                            genome=result.genome,
                            result=result,
                        )
                        if self.dist.main:
                            _plots(self.run_dir, stage.name, self.history.records, self.fd)
                        report.message(f"[{stage.name}] hands on {self._encode(result)}")
                    self.index += 1
                    self.current = None
                    self.stage_seconds[stage.name] = time.monotonic() - started
                    self.save(f"{stage.name} done")
                if self.dist.main and hasattr(report, "summary"):
                    report.summary(self._summary())
            except Interrupted:
                self.save("interrupted")
                report.message(
                    f"interrupted: checkpoint saved; continue with  eagan run --resume {self.run_dir.root}"
                )
                raise

    def _plan(self) -> list[tuple[str, str]]:
        """The header of the display: where, on what, from which seed, the stages in order."""
        resolved = self.run_dir.root / "resolved.json"
        env = json.loads(resolved.read_text()).get("environment", {}) if resolved.is_file() else {}
        stages = []
        for st in self.program.stages:
            s = st.settings
            if st.kind == "train":
                stages.append(f"{st.name} (train {s['epochs']} epochs)")
            else:
                net = s["network"] if isinstance(s["network"], str) else "+".join(s["network"])
                stages.append(
                    f"{st.name} ({net}, P {s['population']}, {s['rounds']} rounds, "
                    f"warm-up {s['warmup']})"
                )
        return [
            ("run directory", str(self.run_dir.root)),
            (
                "device",
                (
                    f"{self.ctx.device} · seed {self.ctx.seed} · threads "
                    f"{env.get('threads', torch.get_num_threads())}"
                ),
            ),
            ("stages", " → ".join(stages)),
        ]

    def _planned_iterations(self) -> int:
        """The training iterations of every stage (warm-up, rounds, fully-train), as the stages
        count them: the whole run's progress."""
        total = 0
        for st in self.program.stages:
            s = st.settings
            bd, n_critic = int(s["batch"]["d"]), int(s["n_critic"])
            iters = max(self.ctx.data.batches_per_epoch(bd) // n_critic, 1)
            if st.kind == "train":
                total += int(s["epochs"]) * iters
            else:
                total += (int(s["warmup"]) + int(s["rounds"]) * int(s["epochs"])) * iters
        return total

    def _summary(self) -> list[tuple[str, str]]:
        """The end of the display: the picks, the final metrics, time per stage, the files."""
        rows = []
        for name, result in self.ctx.results.items():
            from runtime.nets import params_of

            genome = result.genome
            rows.append(
                (
                    f"{name} picked",
                    f"{self._encode(result)} ({params_of(self.program, genome):,} params)",
                )
            )
        final = self.run_dir.final / "metrics.json"
        if final.is_file():
            m = json.loads(final.read_text())
            rows.append(
                (
                    "final",
                    (
                        f"IS {m['is']:.3f} ± {m['is_std']:.3f}, {m.get('distance', 'FID')} "
                        f"{m['fid']:.3f} ({m['images']} images); G {m['g_params']:,} params, "
                        f"D {m['d_params']:,} params"
                    ),
                )
            )
        if self.stage_seconds:
            rows.append(
                (
                    "time",
                    ", ".join(f"{k} {v / 60:.1f} min" for k, v in self.stage_seconds.items())
                    + " (this process)",
                )
            )
        rows.append(("files", f"{self.run_dir.root} (history.jsonl, final/, plots/, samples/)"))
        return rows

    def _encode(self, result: StageResult) -> str:
        from eagan_dsl.genome import GenomeSpace

        return GenomeSpace(self.program.networks[result.genome.network]).encode(result.genome)

    def _finish(self, stage: TrainStage) -> None:
        from compiler.export import export_network

        metrics = stage.run()
        if not self.dist.main:
            return
        self.run_dir.write_json("final/metrics.json", metrics)
        self.log.evaluation(stage.stage.name, int(metrics["epochs"]), metrics, "final")
        _plots(self.run_dir, "", self.history.records)
        g_final = stage.G.evaluated()
        for module, genome in ((g_final, stage.g_genome), (stage.D.module, stage.d_genome)):
            export_network(
                self.program,
                genome.network,
                genome,
                module.state_dict(),
                self.run_dir.final,
                force=True,
            )
        if stage.best is not None:  # eval_every: the best-FID pair, exported like final/
            best = self.run_dir.final / "best"
            for module, genome in zip(stage.best_modules(), (stage.g_genome, stage.d_genome)):
                export_network(
                    self.program, genome.network, genome, module.state_dict(), best, force=True
                )
            self.run_dir.write_json("final/best/metrics.json", metrics["best"])
        self.ctx.report.message(
            f"[{stage.stage.name}] IS {metrics['is']:.3f} ± {metrics['is_std']:.3f}  {metrics['distance']} {metrics['fid']:.3f} "
            f"({metrics['images']} images) → {self.run_dir.final}"
        )


def run(
    spec: Path,
    out: Path,
    device: str = "auto",
    seed: int | None = None,
    quick: bool = False,
    force: bool = False,
    inception_weights: str | None = None,
    reporter: Reporter | None = None,
    observe: Callable[[str, dict[str, Any]], None] | None = None,
) -> Path:
    """Check SPEC and run all its stages into OUT."""
    from compiler.memory import check_memory

    program = load(spec)
    check_memory(program, Path(spec).read_text(encoding="utf-8", errors="replace"))
    if quick:
        program = quick_program(program)
    return run_program(
        program, spec, out, device, seed, force, inception_weights, reporter, quick, observe
    )


def run_program(
    program: Program,
    spec: Path,
    out: Path,
    device: str = "auto",
    seed: int | None = None,
    force: bool = False,
    inception_weights: str | None = None,
    reporter: Reporter | None = None,
    quick: bool = False,
    observe: Callable[[str, dict[str, Any]], None] | None = None,
    train: dict[str, Any] | None = None,
) -> Path:
    """Run PROGRAM into OUT. `train` (the `eagan train` arguments g, d, epochs) is recorded, so
    that a resumed train run is again a train run. A run that fails before its first checkpoint
    after the start leaves no run directory behind (the corrected command can use OUT)."""
    dist = from_env()
    dev = rank_device(dist, resolve_device(device))
    seed = int(program.blocks["run"]["seed"]) if seed is None else seed
    torch.manual_seed(seed)
    env = environment(str(dev), seed)
    env["quick"] = quick
    env["world_size"] = dist.world
    if train is not None:
        env["train"] = train

    lock = RunLock(out)  # rank 0 holds DIR/.lock for the run's life

    made: list[bool] = []  # this process created (or replaced) the run directory

    def create() -> RunDir:
        run_dir = RunDir.create(out, spec, force=force, lock=lock)
        made.append(True)
        run_dir.write_resolved(program, env)
        return run_dir

    created = not out.exists()
    runner: Runner | None = None
    try:
        run_dir = on_main(dist, create)
        report = reporter or Reporter()
        if quick and dist.main:
            report.message(
                "--quick: rounds, epochs, population and images are shrunk for a smoke test"
            )
        if dist.active and dist.main:
            report.message(
                f"distributed: {dist.world} processes ({dist.backend}); rank 0 writes {out}"
            )
        runner = Runner(program, run_dir, dev, seed, report, inception_weights, observe, dist)
        _run_and_close(dist, runner)
    except Interrupted:
        raise
    except BaseException:
        if made and (runner is None or not runner.progressed):
            discard_run(out, created)
        raise
    finally:
        lock.release()
    return out


def _run_and_close(dist: Dist, runner: Runner, loaded: ckpt.Loaded | None = None) -> None:
    """Run, then leave the process group, so that no process exits with gloo's threads still
    running (which can abort it at exit: "terminate called without an active exception"). Only
    where every rank stops together: at the end, and on an interruption (all ranks raise it after
    the collective checkpoint); after any other error a peer may still wait in a collective, and
    destroying the group could hang."""
    try:
        runner.run(loaded)
    except Interrupted:
        dist.close()
        raise
    dist.barrier()
    dist.close()


def resume(
    out: Path,
    spec: Path | None = None,
    device: str | None = None,
    force: bool = False,
    inception_weights: str | None = None,
    reporter: Reporter | None = None,
    observe: Callable[[str, dict[str, Any]], None] | None = None,
) -> Path:
    """Continue the run in OUT from its newest intact checkpoint, with the run's own spec, seed
    and --quick setting; a different SPEC is refused unless `force` (then recorded)."""
    dist = from_env()
    lock = RunLock(out)  # rank 0 holds DIR/.lock until the resumed run ends
    try:
        # rank 0 reads the run directory (other nodes may not see it) and hands it to every rank
        loaded_run = on_main(dist, lambda: _read_run(out, spec, force, lock))
        _resume_run(out, loaded_run, dist, device, inception_weights, reporter, observe)
    finally:
        lock.release()
    return out


def _resume_run(
    out: Path,
    loaded_run: tuple[str, dict[str, Any], ckpt.Loaded],
    dist: Dist,
    device: str | None,
    inception_weights: str | None,
    reporter: Reporter | None,
    observe: Callable[[str, dict[str, Any]], None] | None,
) -> None:
    run_dir = RunDir(out)
    text, resolved, loaded = loaded_run
    env = resolved["environment"]
    # errors are located in the run's own copy (the spec that is resumed); paths in the spec stay
    # those of the original run (relative to the original spec file)
    saved_spec = out / "spec.eagan"
    program = check_text(text, str(saved_spec))
    root = resolved.get("data", {}).get("root")
    program = dataclasses.replace(
        program,
        file=resolved.get("file") or str(saved_spec),
        data=dataclasses.replace(program.data, root=root),
    )
    train = env.get("train")
    if isinstance(train, dict):  # an `eagan train` run: one fully-train stage again
        program = train_program(program, train["g"], train["d"], train.get("epochs"))
    if env.get("quick"):
        program = quick_program(program)
    report = reporter or Reporter()
    if dist.main:
        for skipped in loaded.skipped:
            report.message(f"skipped a damaged checkpoint, using the previous one: {skipped}")
        report.message(f"resuming {out} from {loaded.path.name} ({loaded.meta.get('reason')})")
        was = int(loaded.meta.get("world_size", 1))
        if was != dist.world:
            report.message(
                f"note: this run was checkpointed with {was} process(es) and resumes with {dist.world}: it "
                "continues correctly, but data-parallel steps (warm-up, stage 1, fully-train) split batches "
                "differently, so the result is not bit-identical to an uninterrupted run (stage-2 pairs are)"
            )
    threads = env.get("threads")
    if isinstance(threads, int) and threads > 0 and threads != torch.get_num_threads():
        # results are bit-identical only with the same number of threads (reductions split)
        if dist.main:
            report.message(
                f"torch threads set to {threads}, as when the run started (it found "
                f"{torch.get_num_threads()}): the same count keeps the results bit-identical"
            )
        torch.set_num_threads(threads)
    saved = str(env.get("device", "auto"))
    dev = rank_device(
        dist, resolve_device(device or (saved.split(":")[0] if dist.active else saved))
    )
    seed = int(env["seed"])
    runner = Runner(program, run_dir, dev, seed, report, inception_weights, observe, dist)
    _run_and_close(dist, runner, loaded)


def _read_run(
    out: Path, spec: Path | None, force: bool, lock: RunLock | None = None
) -> tuple[str, dict[str, Any], ckpt.Loaded]:
    """The run's spec text (or SPEC's, with --force, recorded), resolved.json and newest intact
    checkpoint; `lock` is taken first, so that no other process resumes the run meanwhile."""
    run_dir = RunDir(out)
    saved_spec = out / "spec.eagan"
    resolved_path = out / "resolved.json"
    if not saved_spec.is_file() or not resolved_path.is_file():
        raise RunDirError(
            f"{out} is not a run directory (no spec.eagan / resolved.json); check the path"
        )
    if lock is not None:
        lock.acquire()
    try:
        text = saved_spec.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise RunDirError(
            f"{saved_spec} is not UTF-8 text (byte {err.start}): the run directory is damaged"
        ) from None
    resolved = _read_resolved(resolved_path)
    env = resolved["environment"]
    if spec is not None and not same_meaning(
        spec.read_text(encoding="utf-8", errors="replace"), text, spec
    ):
        if not force:
            raise RunDirError(
                f"{spec} differs from the spec this run was started with ({saved_spec}); resume without "
                "a spec, or pass --force to continue with the new one (it is recorded)"
            )
        text = spec.read_text(encoding="utf-8")
        atomic_write(saved_spec, text.encode())
        env.setdefault("forced_spec_changes", []).append(str(spec))
        run_dir.write_json("resolved.json", {**resolved, "environment": env})
    loaded = ckpt.load_latest(run_dir.checkpoints)
    _check_history(out / "history.jsonl", loaded)
    return text, resolved, loaded


def _meaning(value: Any) -> Any:
    """A checked program as plain data without source positions: what the spec says, not where
    (comments and layout are not in the program at all)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            tuple(
                (f.name, _meaning(getattr(value, f.name)))
                for f in dataclasses.fields(value)
                if f.name not in ("span", "file")
            ),
        )
    if isinstance(value, Mapping):
        return tuple((str(k), _meaning(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(_meaning(v) for v in value)
    return value


def same_meaning(text: str, saved: str, path: Path) -> bool:
    """Resume compares specs by meaning: `eagan fmt` (layout, comments) changes nothing."""
    if text == saved:
        return True
    return bool(_meaning(check_text(text, str(path))) == _meaning(check_text(saved, str(path))))


def _read_resolved(path: Path) -> dict[str, Any]:
    """resolved.json, with every field that resume reads checked."""

    def damaged(what: str) -> RunDirError:
        return RunDirError(
            f"{path}: {what}; the run directory is damaged (restore resolved.json from a copy, "
            "or start the run again with --force)"
        )

    try:
        resolved = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise damaged(f"not valid JSON ({err})") from None
    if not isinstance(resolved, dict):
        raise damaged(f"a JSON {type(resolved).__name__}, not an object")
    env = resolved.get("environment")
    if not isinstance(env, dict):
        raise damaged("'environment' is missing or not an object")
    seed = env.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise damaged("'environment.seed' is missing or not an integer")
    checks = {
        "file": (resolved.get("file"), (str, type(None))),
        "data": (resolved.get("data", {}), (dict,)),
        "environment.device": (env.get("device", "auto"), (str,)),
        "environment.threads": (env.get("threads"), (int, type(None))),
        "environment.quick": (env.get("quick", False), (bool,)),
        "environment.forced_spec_changes": (env.get("forced_spec_changes", []), (list,)),
        "environment.train": (env.get("train"), (dict, type(None))),
    }
    for name, (value, types) in checks.items():
        if not isinstance(value, types):
            raise damaged(f"'{name}' is a {type(value).__name__}")
    root = resolved.get("data", {}).get("root")
    if not isinstance(root, (str, type(None))):
        raise damaged("'data.root' is not a path")
    train = env.get("train")
    if isinstance(train, dict) and not (
        isinstance(train.get("g"), str)
        and isinstance(train.get("d"), str)
        and isinstance(train.get("epochs"), (int, type(None)))
    ):
        raise damaged("'environment.train' does not hold g, d and epochs")
    return resolved


def _check_history(path: Path, loaded: ckpt.Loaded) -> None:
    """The history must hold every record the checkpoint counts (a lost or shortened one is
    refused, nothing changed); records written after the checkpoint are dropped (they are
    written again)."""
    problem = state_problem(loaded.state, None)
    if problem:
        raise _bad_state(loaded, problem)
    lines = int(loaded.state["history_lines"])
    records = []
    if path.is_file():
        raw = path.read_bytes().decode("utf-8", errors="replace")
        records = [line for line in raw.splitlines() if line.strip()]
    if len(records) < lines:
        raise RunDirError(
            f"{path} holds {len(records)} record(s), but {loaded.path.name} was taken after "
            f"{lines}: the history was lost or shortened. Nothing was changed: restore the file, "
            "or start the run again with --force"
        )
    for number, line in enumerate(records[:lines], 1):
        try:
            ok = isinstance(json.loads(line), dict)
        except ValueError:
            ok = False
        if not ok:
            raise RunDirError(
                f"{path}:{number}: not a JSON record: the history is damaged; restore it, or start "
                "the run again with --force"
            )
    if len(records) > lines:
        atomic_write(path, "".join(line + "\n" for line in records[:lines]).encode())
