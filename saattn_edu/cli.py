"""`saattn` console script. Subcommands register themselves with @command; add yours the same way.

    saattn build-exercises [--force] [--check] [NAME ...]
    saattn grade NOTEBOOK... [--report r.json]   saattn grade --all SUBMISSIONS/ [--csv grades.csv] [--jobs 2]
    saattn ring --world-size 4 --n 65536 [--causal] [--pattern window:1024]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

COMMANDS: dict = {}  # name -> (help, add_arguments(parser), run(args) -> exit code)


def command(name: str, help: str, add_arguments):
    """Register `run(args) -> int` as subcommand `name`."""
    def register(run):
        COMMANDS[name] = (help, add_arguments, run)
        return run

    return register


# ---- build-exercises -----------------------------------------------------------------------------------------
def _build_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", help="only these notebooks (e.g. 01_patterns); default: all")
    p.add_argument("--src", default="solutions", help="folder of solution notebooks (default: solutions)")
    p.add_argument("--dst", default="exercises", help="folder of exercise notebooks (default: exercises)")
    p.add_argument("--force", action="store_true", help="overwrite exercise notebooks a learner has edited")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a build would change a file")


@command("build-exercises", "generate exercises/ from solutions/ (never clobbers a learner's edits)", _build_args)
def _build(args) -> int:
    from .course.build import build_exercises

    report = build_exercises(args.src, args.dst, force=args.force, names=args.names, dry_run=args.check)
    for line in report.lines():
        print(line)
    if args.check:
        return 1 if report.written or report.skipped else 0
    if report.skipped:
        print(f"{len(report.skipped)} file(s) skipped: they were edited after the last build (use --force)")
    return 0


# ---- grade ---------------------------------------------------------------------------------------------------
def _grade_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", help="notebooks to grade")
    p.add_argument("--all", metavar="DIR", help="grade every .ipynb under DIR into one CSV")
    p.add_argument("--report", default="grade_report.json", help="JSON report (default: grade_report.json)")
    p.add_argument("--csv", default=None, help="CSV of points per exercise (default with --all: grades.csv)")
    p.add_argument("--timeout", type=int, default=120, help="seconds per notebook cell (default: 120)")
    p.add_argument("--check-timeout", type=float, default=10.0, help="seconds per question (default: 10)")
    p.add_argument("--limit", type=float, default=900.0,
                   help="seconds per submission, then everything it started is killed (default: 900)")
    p.add_argument("--memory-mb", type=int, default=8192, help="address space per process, MB (default: 8192)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="submissions graded at once (default: 1)")
    p.add_argument("--force", action="store_true", help="grade again what the report already holds")


def _submissions(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _grade_limits(args):
    from .course.channel import Limits

    for name in ("timeout", "check_timeout", "limit", "memory_mb", "jobs"):
        value = getattr(args, name)
        if not value > 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value!r}")
    return Limits(cell_timeout=args.timeout, check_timeout=args.check_timeout, wall=args.limit,
                  memory_bytes=args.memory_mb << 20)


@command("grade", "grade notebooks in sandboxed kernels; the grader computes every point (notebooks are only read)",
         _grade_args)
def _grade(args) -> int:
    from .course.grade import table
    from .course.processes import become_subreaper
    from .course.results import Results, grade_batch

    paths = [Path(p) for p in args.paths]
    if args.all:
        if not Path(args.all).is_dir():
            print(f"saattn grade: --all needs a folder, got {args.all!r}", file=sys.stderr)
            return 2
        paths += _submissions(Path(args.all))
    if not paths:
        print("saattn grade: no notebooks given (paths or --all DIR)", file=sys.stderr)
        return 2
    csv_path = args.csv or ("grades.csv" if args.all else None)
    try:
        limits = _grade_limits(args)
        results = Results(args.report, csv_path, root=args.all, force=args.force)  # checked before any grading
    except ValueError as exc:
        print(f"saattn grade: {exc}", file=sys.stderr)
        return 2
    if args.own_process:  # orphans of a submission whose supervisor was killed come back here, to be killed;
        become_subreaper()  # never in a caller's process (main(argv) from Python): its own children are not ours

    def show(g, skipped):
        print(table(g) + ("  (already graded: skipped; --force grades it again)" if skipped else ""), flush=True)

    grades = grade_batch(paths, results, jobs=args.jobs, on_graded=show, limits=limits)
    print(f"report: {args.report}" + (f", {csv_path}" if csv_path else ""))
    return 0 if all(g.graded for g in grades) else 1


# ---- ring ----------------------------------------------------------------------------------------------------
def _ring_args(p: argparse.ArgumentParser) -> None:
    from .distributed.options import add_arguments  # torch-free: every command builds this parser

    add_arguments(p)


@command("ring", "ring attention across local processes (gloo) or a torchrun job (nccl)", _ring_args)
def _ring(args) -> int:
    from .distributed.launch import run_parsed

    return run_parsed(args)


# ---- bench -----------------------------------------------------------------------------------------------------
_BENCH_EPILOG = """\
examples:
  saattn bench                                          # library kernel vs Flex vs SDPA, every anchor, n=16384
  saattn bench --fn mymodule:flash_attention --n 4096 16384 --json race.json
  saattn bench --fn solutions/14_capstone_kernel.ipynb:flash_attention --autotune
anchor patterns (all causal): causal, sliding_w1024, longformer_w512_g64, bigbird_blk128, strided_l256.
Each contender is checked first (float32 autograd at n=2048, then Flex at full n): a wrong one gets its error, not
a time. Times are triton.testing.do_bench medians (ms), forward and forward+backward; SDPA runs dense causal.
Without a CUDA GPU it prints why and exits 0 (nothing to time)."""


def _bench_args(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = _BENCH_EPILOG
    p.add_argument("--fn", help="your attention fn(q, k, v, pattern): module:function, file.py:function or "
                                "notebook.ipynb:function (its check/race cells are skipped)")
    p.add_argument("--name", default="yours", help="its column in the table (default: yours)")
    p.add_argument("--patterns", nargs="+", default=None, metavar="NAME", help="anchors to run (default: all five)")
    p.add_argument("--n", type=int, nargs="+", default=[16384], help="sequence lengths (default: 16384)")
    p.add_argument("--autotune", action="store_true", help="also Flex compiled with max-autotune (45-100 s a mask)")
    p.add_argument("--no-library", action="store_true", help="leave out the library's Triton kernel")
    p.add_argument("--no-flex", action="store_true", help="leave out FlexAttention")
    p.add_argument("--sdpa", nargs="*", default=["flash", "cudnn"], choices=["flash", "cudnn"],
                   help="SDPA backends timed dense causal (default: flash cudnn; none: --sdpa)")
    p.add_argument("--forward-only", action="store_true", help="time the forward only")
    p.add_argument("--batch", type=int, default=1, help="B (default 1)")
    p.add_argument("--heads", type=int, default=16, help="H (default 16)")
    p.add_argument("--head-dim", type=int, default=128, help="D (default 128)")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    p.add_argument("--json", default="saattn_bench.json", help="JSON of every row (default: saattn_bench.json)")


@command("bench", "race an attention function against the library kernel, FlexAttention and SDPA on a GPU",
         _bench_args)
def _bench(args) -> int:
    from .bench.race import NO_GPU, gpu_available, race

    if not gpu_available():
        print(f"saattn bench: {NO_GPU}")
        return 0
    race(args.fn, patterns=args.patterns, n=args.n, name=args.name, library=not args.no_library,
         flex=not args.no_flex, autotune=args.autotune, sdpa=tuple(args.sdpa), backward=not args.forward_only,
         B=args.batch, H=args.heads, D=args.head_dim, dtype=args.dtype, out=args.json)
    return 0


# ---- entry point -----------------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="saattn", description="saattn-edu course tools")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_, add_arguments, run) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_, description=help_)
        add_arguments(sp)
        sp.set_defaults(run=run)
    return p


def main(argv=None) -> int:
    """The `saattn` command; main([...]) from Python runs a command without touching the caller's processes."""
    args = parser().parse_args(argv)
    args.own_process = argv is None  # a real command line: this process exists for the command
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
