"""The newcomer's path (issue 20): what broke when eagan was used as a new user would, each
with a test that failed before the fix."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from eagan_dsl.checker import load
from eagan_dsl.fmt import format_file
from runtime import runner
from runtime.cli import app
from runtime.display import Reporter
from runtime.search import Interrupted
from runtime.search.protocol import derive_seed

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "data" / "tiny.eagan"
GENOME = "G:nearest,nearest,conv3x3,none,none,skip,conv3x3|nearest,nearest,conv3x3,none,none,skip,conv3x3"


def _cli(*args: str) -> tuple[int, str]:
    torch.set_num_threads(1)
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.output


def _train(out: Path, *extra: str) -> tuple[int, str]:
    return _cli("train", str(TINY), "--g", GENOME, "--d", "FixedD", "--out", str(out), *extra)


def _stop_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C before the first iteration (the runner's stop flag, set as its handler would)."""

    @contextmanager
    def stop(flag: list[bool]) -> Iterator[None]:
        flag[0] = True
        yield

    monkeypatch.setattr(runner, "_stop_on_signals", stop)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted `eagan train` run of tiny.eagan."""
    out = tmp_path_factory.mktemp("train") / "run"
    code, output = _train(out)
    assert code == 0, output
    (out.parent / "output.txt").write_text(output)
    return out


def _metrics(run: Path) -> dict[str, object]:
    return json.loads((run / "final" / "metrics.json").read_text())  # type: ignore[no-any-return]


# 1, 2 ------------------------------------------------------------------------------------------
def test_ctrl_c_in_train_exits_130_and_resumes_as_a_train_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trained: Path
) -> None:
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _stop_at_once(m)
        code, output = _train(out)
    assert code == 130, output
    assert "Traceback" not in output
    assert f"eagan run --resume {out}" in output
    # item 7: the spec as `eagan fmt` leaves it (and with a comment) is the same spec
    formatted = tmp_path / "tiny.eagan"
    formatted.write_text("# formatted\n" + format_file(TINY)[1])
    code, output = _cli("run", str(formatted), "--resume", str(out))
    assert code == 0, output
    assert _metrics(out) == _metrics(trained)


# 3 ---------------------------------------------------------------------------------------------
def test_a_failed_train_leaves_no_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, output = _cli("train", str(TINY), "--g", "GNearst", "--d", "FixedD", "--out", str(out))
    assert code == 2, output
    assert not out.exists()
    code, output = _train(out)  # the corrected command is not refused
    assert code == 0, output


def test_a_failed_run_in_an_existing_folder_leaves_the_folder_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    out.mkdir()

    def broken(*args: object, **kwargs: object) -> None:
        raise runner.RunDirError("no extractor here")

    monkeypatch.setattr(runner, "Evaluator", broken)
    code, output = _cli("run", str(TINY), "--out", str(out))
    assert code == 2 and "no extractor here" in output, output
    assert out.is_dir() and list(out.iterdir()) == []


def test_an_existing_run_is_never_discarded(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "spec.eagan").write_text(TINY.read_text())
    (out / "resolved.json").write_text("{}")
    code, output = _train(out)
    assert code == 2 and "already holds a run" in output, output
    assert (out / "spec.eagan").is_file() and (out / "resolved.json").is_file()


# 10 --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", str(TINY), "--g", GENOME, "--d", "FixedD", "--epochs", "0"], "--epochs must"),
        (["run", str(TINY), "--seed", "-1"], "--seed must be in [0, 2**63 - 1]"),
        (["run", "--resume", "R", "--seed", "5"], "--seed cannot be combined with --resume"),
        (["run", "--resume", "R", "--quick"], "--quick cannot be combined with --resume"),
        (["run", "--resume", "R", "--out", "X"], "--out cannot be combined with --resume"),
    ],
)
def test_command_line_values_the_spec_would_refuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = _cli(*args)
    assert code == 2, output
    assert message in output
    assert list(tmp_path.iterdir()) == []


# 8 ---------------------------------------------------------------------------------------------
def test_no_project_size_says_so_with_the_nearest_sizes() -> None:
    from eagan_dsl.checker import check_text
    from eagan_dsl.diagnostics import SpecError

    text = (ROOT / "specs" / "digits.eagan").read_text()
    with pytest.raises(SpecError) as err:
        check_text(text.replace("resolution: 16", "resolution: 28", 1), "digits.eagan")
    hints = [d.hint or "" for d in err.value.diagnostics]
    assert (
        "no project size gives 28 pixels through 3 doublings (size 3 gives 24, size 4 gives 32); "
        "change the cells or the data resolution"
    ) in hints, hints
    assert not any("project(size: 3)" in h for h in hints)


@pytest.mark.parametrize("command", ["check", "run", "train"])
def test_a_missing_spec_reads_the_same_in_every_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    monkeypatch.chdir(tmp_path)
    extra = ["--g", GENOME, "--d", "FixedD"] if command == "train" else []
    code, output = _cli(command, "nope.eagan", *extra)
    assert code == 2 and output.strip() == "error: nope.eagan: no such file", output
    assert list(tmp_path.iterdir()) == []


def test_an_unlocated_error_names_the_file_without_0_0(tmp_path: Path) -> None:
    from eagan_dsl.diagnostics import SpecError

    with pytest.raises(SpecError) as err:
        load(tmp_path / "nope.eagan")
    assert err.value.render() == f"{tmp_path / 'nope.eagan'}: error: no such file"


# 14 --------------------------------------------------------------------------------------------
_IMPORTS_TORCH = """
import sys
from runtime.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("TORCH" if "torch" in sys.modules else "NO TORCH")
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["-h"],
        ["run"],
        ["run", "nope.eagan"],
        ["run", str(TINY), "--threads", "0"],
        ["train", str(TINY), "--g", "G", "--d", "D", "--epochs", "0"],
        ["sample", "somewhere", "-n", "0"],
    ],
    ids=lambda a: " ".join(a)[:30],
)
def test_help_and_argument_errors_do_not_import_torch(tmp_path: Path, args: list[str]) -> None:
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS_TORCH, *args],
        check=False, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert done.stdout.strip().endswith("NO TORCH"), done.stdout + done.stderr


@pytest.mark.parametrize("command", ["run", "train", "sample", "eval", "export", "check"])
def test_help_has_h_no_bool_placeholders_and_every_option_explained(command: str) -> None:
    code, long = _cli(command, "--help")
    assert code == 0 and _cli(command, "-h") == (code, long)
    assert "<bool>" not in long, long
    if command == "train":
        assert "--force" in long and "previous run" in long
    if command in ("run", "train"):
        assert "--threads" in long


def test_threads_is_set_and_recorded(tmp_path: Path) -> None:
    before = torch.get_num_threads()
    try:
        code, output = _train(tmp_path / "run", "--threads", "2")
        assert code == 0, output
        resolved = json.loads((tmp_path / "run" / "resolved.json").read_text())
        assert resolved["environment"]["threads"] == 2
    finally:
        torch.set_num_threads(before)
    code, output = _cli("run", "--resume", str(tmp_path / "run"), "--threads", "3")
    assert code == 2 and "--threads cannot be combined with --resume" in output


# issue 16, item 5 --------------------------------------------------------------------------------
def test_plain_logs_are_not_hard_wrapped(capsys: pytest.CaptureFixture[str]) -> None:
    from runtime.display import Reporter

    reporter = Reporter()  # stderr is captured: not a terminal
    assert not reporter.live_mode
    line = f"[search_g] hands on {GENOME} " + "x" * 100
    reporter.message(line)
    reporter.stage_start("search_g", "round 1 " + "y" * 90, 3)
    reporter.round_table(
        "search_g", 0, [{"is": 1.0, "fid": 2.0, "params": 10, "genome": GENOME, "best": True}]
    )
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == line
    assert len(lines) == 3 and lines[2].endswith(GENOME)


# 4 ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "nowhere/grid.png"], "the folder nowhere does not exist"),
        (["-n", "0"], "-n must be at least 1, not 0"),
        (["--out", "grid.txt"], "give a .png (or .jpg) file name"),
    ],
)
def test_sample_mistakes_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trained: Path, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = _cli("sample", str(trained), *args)
    assert code == 2, output
    assert output.strip() == f"error: {message}" or message in output.splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


# 11 --------------------------------------------------------------------------------------------
class _Anything:
    pass


@pytest.mark.parametrize("kind", ["text", "objects", "truncated"])
def test_damaged_weights_never_advise_unsafe_loading(
    tmp_path: Path, trained: Path, kind: str
) -> None:
    bad = tmp_path / "fake.pth"
    if kind == "text":
        bad.write_text("not weights")
    elif kind == "objects":
        torch.save({"w": torch.zeros(2), "o": _Anything}, bad)
    else:
        torch.save({"w": torch.zeros(64)}, bad)
        bad.write_bytes(bad.read_bytes()[:100])
    outputs = [
        _cli("export", "--spec", str(TINY), "--genome", GENOME, "--out", str(tmp_path / "x"),
             "--weights", str(bad)),
        _cli("eval", str(trained), "--data", "cifar10", "--inception-weights", str(bad),
             "--no-download", "-n", "20"),
    ]  # fmt: skip
    for code, output in outputs:
        assert code == 2, output
        assert str(bad) in output
        for leak in ("weights_only", "Re-running", "file an issue", "trusted source"):
            assert leak not in output, output
    if kind == "objects":
        assert "eagan loads only tensors" in outputs[0][1]


# 7 ---------------------------------------------------------------------------------------------
def test_shipped_specs_are_formatted() -> None:
    code, output = _cli("fmt", "--check", *map(str, sorted((ROOT / "specs").glob("*.eagan"))))
    assert code == 0, output


def test_resume_compares_specs_by_meaning() -> None:
    text = TINY.read_text()
    assert runner.same_meaning(format_file(TINY)[1] + "# a comment\n", text, TINY)
    assert not runner.same_meaning(text.replace("seed: 0", "seed: 1"), text, TINY)
    assert not runner.same_meaning(text.replace("k: 3)", "k: 5)", 1), text, TINY)


# 6 ---------------------------------------------------------------------------------------------
class _Bars(Reporter):
    """A quiet reporter that records each bar (stage, total, done) and can stop the run."""

    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__(Console(file=io.StringIO(), width=120), live=False)
        self.bars: list[tuple[str, int, int]] = []
        self.stop_after, self.steps = stop_after, 0
        self.flag: list[bool] = [False]

    def stage_start(self, stage: str, description: str, total: int, done: int = 0) -> None:
        super().stage_start(stage, description, total, done)
        self.bars.append((stage, total, done))

    def step(self, d: float, g: float, epoch: int) -> None:
        super().step(d, g, epoch)
        self.steps += 1
        if self.steps == self.stop_after:
            self.flag[0] = True


def test_a_resumed_bar_continues_where_it_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.set_num_threads(1)
    out, first, second = tmp_path / "run", _Bars(stop_after=12), _Bars()

    @contextmanager
    def signals(flag: list[bool]) -> Iterator[None]:
        first.flag = flag
        yield

    program = runner.train_program(load(TINY), GENOME, "FixedD")
    with monkeypatch.context() as m:
        m.setattr(runner, "_stop_on_signals", signals)
        with pytest.raises(Interrupted):
            runner.run_program(
                program,
                TINY,
                out,
                "cpu",
                reporter=first,
                train={"g": GENOME, "d": "FixedD", "epochs": None},
            )
    runner.resume(out, reporter=second)
    ((stage, total, done),) = second.bars
    assert (stage, done) == ("fully_train", 12) and first.bars == [(stage, total, 0)]
    assert second.done == total == 12 + second.steps

    live = Reporter(Console(file=io.StringIO(), width=120), live=True)
    live.stage_start("search_g", "round 1/2", 20, done=12)
    assert live.progress.tasks[0].completed == 12


# 5 ---------------------------------------------------------------------------------------------
def test_eval_of_a_runs_final_reproduces_its_numbers(trained: Path) -> None:
    metrics = _metrics(trained)
    recorded = metrics["eval"]
    assert isinstance(recorded, dict)
    assert recorded["splits"] == 1 and recorded["images"] == metrics["images"] == 128
    assert recorded["reference"] == "digits" and recorded["extractor"] == "lenet"
    assert recorded["seed"] == derive_seed(0, "fully_train", "final")
    for where in (trained / "final", trained):
        out = where / "eval.json"
        code, output = _cli("eval", str(where), "--device", "cpu", "--json-out", str(out))
        assert code == 0, output
        result = json.loads(out.read_text())
        assert (result["is_mean"], result["is_std"], result["fid"]) == (
            metrics["is"],
            metrics["is_std"],
            metrics["fid"],
        )
        out.unlink()


# 15 --------------------------------------------------------------------------------------------
def test_the_lenet_distance_is_called_fd_everywhere(trained: Path) -> None:
    from eagan_dsl.settings import distance_name
    from runtime.display import population_table

    assert (distance_name("lenet"), distance_name("lenet-digits16")) == ("FD", "FD")
    assert distance_name("inception") == distance_name("inception-v3-tf-2015-12-05") == "FID"
    metrics = _metrics(trained)
    assert metrics["distance"] == "FD" and isinstance(metrics["fid"], float)
    said = (trained.parent / "output.txt").read_text()
    assert f"FD {metrics['fid']:.3f}" in said and "FID" not in said, said
    code, output = _cli("eval", str(trained), "--device", "cpu")
    assert code == 0 and "FD" in output and "FID" not in output, output
    record = {"is": 1.0, "fid": 2.0, "params": 3, "genome": "G:x", "rank": 0}
    console = Console(file=io.StringIO(), width=80)
    console.print(population_table("s", 0, [record], distance="FD"))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "FD" in shown and "FID" not in shown


@pytest.mark.parametrize("command", ["eval", "sample"])
@pytest.mark.parametrize("where", ["run", "run/final"])
def test_an_unfinished_run_has_not_finished(tmp_path: Path, command: str, where: str) -> None:
    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    (run / "spec.eagan").write_text(TINY.read_text())
    code, output = _cli(command, str(tmp_path / where))
    assert code == 2, output
    assert output.startswith(f"error: {run}: this run has not finished"), output


def test_export_without_weights_says_they_are_untrained(tmp_path: Path) -> None:
    code, output = _cli("export", "--spec", str(TINY), "--genome", GENOME, "--out", str(tmp_path))
    assert code == 0, output
    assert "untrained weights" in output


# 16 --------------------------------------------------------------------------------------------
def test_sample_grids_are_enlarged_to_be_seen(trained: Path, tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    out = tmp_path / "grid.png"
    code, output = _cli("sample", str(trained), "-n", "16", "--out", str(out))
    assert code == 0 and "each pixel shown as 7×7" in output, output
    grids = [out, *sorted((trained / "samples").glob("*.png"))]
    assert len(grids) > 1
    for path in grids:
        with Image.open(path) as img:
            pixels = np.asarray(img.convert("RGB"))
        assert pixels.shape[1] >= 512, (path, pixels.shape)
        # nearest-neighbour: every pixel of the true-size grid is an exact square
        f = 7 if path == out else 4  # 16 digits: 4 across, 4·18+2 = 74 px; 64: 8 across, 146 px
        small = pixels[::f, ::f]
        assert (np.repeat(np.repeat(small, f, 0), f, 1) == pixels).all(), path


# 9 ---------------------------------------------------------------------------------------------
def test_did_you_mean_for_a_misspelt_network(tmp_path: Path) -> None:
    spec = tmp_path / "s.eagan"
    spec.write_text(TINY.read_text().replace("discriminator FixedD", "discriminator FixedDisc"))
    code, output = _cli("export", "--spec", str(spec), "--genome", "FixedDsc", "--out",
                        str(tmp_path / "x"))  # fmt: skip
    assert code == 2 and "did you mean 'FixedDisc'?" in output, output
    code, output = _cli("train", str(spec), "--g", GENOME, "--d", "FixedDsc", "--out",
                        str(tmp_path / "r"))  # fmt: skip
    assert code == 2 and "did you mean 'FixedDisc'?" in output, output
    assert not (tmp_path / "x").exists() and not (tmp_path / "r").exists()
