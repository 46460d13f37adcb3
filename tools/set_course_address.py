"""Point every Colab badge and install line at `saattn_edu.course.colab.REPOSITORY` (after publishing elsewhere).

    python tools/set_course_address.py     # rewrites README.md and the notebooks' text sources, then syncs

The notebooks are re-paired from their text sources without re-executing (only the first two cells change), and
exercises/ is rebuilt from the solutions.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from saattn_edu.course import colab  # noqa: E402  (this checkout's package, not an installed one)


def main() -> int:
    changed = []
    for path in [ROOT / "README.md", *sorted(ROOT.glob("notebooks/*.py")), *sorted(ROOT.glob("solutions/*.py"))]:
        text = path.read_text()
        new = colab.rewrite(text)
        if new != text:
            path.write_text(new)
            changed.append(path.relative_to(ROOT).as_posix())
    print(f"{len(changed)} files now point at {colab.REPOSITORY} ({colab.BRANCH}): {', '.join(changed) or 'none'}")
    if changed:
        sources = [c for c in changed if c.endswith(".py")]
        subprocess.run([sys.executable, "tools/sync_notebooks.py", "--no-execute", "--from-text", *sources],
                       cwd=ROOT, check=True)
        subprocess.run([sys.executable, "-m", "saattn_edu.cli", "build-exercises", "--force"], cwd=ROOT, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
