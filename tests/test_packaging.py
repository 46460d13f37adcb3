"""The install files agree with each other, and the package keeps its layering promises."""
import re
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest's own dependency tomli reads TOML the same way
    import tomli as tomllib

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_requirements() -> dict:
    """name -> Requirement of every dependency and extra in pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return {r.name.lower(): r for r in map(Requirement, reqs)}


def _environment_requirements() -> dict:
    """name -> Requirement of every conda and pip line of environment.yml (python, pip and -e . left out)."""
    reqs = {}
    for line in (ROOT / "environment.yml").read_text().split("dependencies:", 1)[1].splitlines():
        m = re.match(r"^\s*-\s+(.+)$", line.split("#")[0].rstrip())
        if m and m.group(1) not in {"pip:", "pip", "-e ."} and not m.group(1).startswith("python"):
            r = Requirement(m.group(1))
            reqs[r.name.lower()] = r
    return reqs


def test_environment_yml_lists_the_same_packages_as_pyproject():
    py, env = _pyproject_requirements(), _environment_requirements()
    only_py, only_env = sorted(py.keys() - env.keys()), sorted(env.keys() - py.keys())
    assert not only_py, f"in pyproject.toml but not environment.yml: {only_py}"
    assert not only_env, f"in environment.yml but not pyproject.toml: {only_env}"


def test_environment_yml_asks_for_the_same_versions_and_platforms():
    """Same specifier and marker in both files; environment.yml may pin torch to the version constraints.txt pins."""
    py, env = _pyproject_requirements(), _environment_requirements()
    for name, r in py.items():
        e = env[name]
        assert str(e.marker) == str(r.marker), f"{name}: marker {e.marker} in environment.yml, {r.marker} in pyproject"
        if name == "torch":
            pinned = [s.version for s in e.specifier if s.operator == "=="]
            assert pinned and r.specifier.contains(pinned[0]), f"torch: {e.specifier} does not satisfy {r.specifier}"
        else:
            assert e.specifier == r.specifier, f"{name}: {e.specifier} in environment.yml, {r.specifier} in pyproject"


def test_torch_is_pinned_everywhere_it_is_installed():
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text()
    assert "torch==2.13.0" in (ROOT / "environment.yml").read_text()
    assert "-c constraints.txt" in (ROOT / "Makefile").read_text()


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make lab" in readme


def test_patterns_and_reference_import_without_torch():
    """DESIGN.md: patterns/ and reference/ work with NumPy alone (torch is imported lazily above them)."""
    code = (
        "import sys; import saattn_edu.patterns, saattn_edu.reference, saattn_edu.complexity; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'triton')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_console_script_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["saattn"] == "saattn_edu.cli:main"


def test_readme_pictures_exist():
    readme = (ROOT / "README.md").read_text()
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert pictures, "the README shows no screenshot"
    missing = [p for p in pictures if not p.startswith("http") and not (ROOT / p).is_file()]
    assert missing == [], f"README pictures missing: {missing}"
