"""Where the course is published: the one place that names its repository.

Colab opens a notebook from GitHub (the badge at the top of every notebook) and its setup cell installs the package
from there; the README says the same. To publish the course elsewhere, change `REPOSITORY` (and `BRANCH`) below and
run `python tools/set_course_address.py`: it rewrites the badges and install lines of the README and of every
notebook from these constants (tests/test_colab.py fails until they agree).
"""
from __future__ import annotations

import re

REPOSITORY = "saattn-edu/saattn-edu"  # owner/name on GitHub: the one line to change to publish the course elsewhere
BRANCH = "main"

PACKAGE = "saattn-edu"
INSTALL = f"{PACKAGE} @ git+https://github.com/{REPOSITORY}"  # what `pip install` gets in Colab
PIP_LINE = f'%pip install -q "{INSTALL}"'  # the setup cell's install (Colab keeps its own torch)
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
COLAB_PREFIX = f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/"

_ANY_COLAB = re.compile(r"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/[\w.-]+/")
_ANY_INSTALL = re.compile(re.escape(PACKAGE) + r" @ git\+https://github\.com/[\w.-]+/[\w.-]+")


def colab_url(path: str) -> str:
    """The address that opens `path` (relative to the repository root, e.g. notebooks/01_patterns_gallery.ipynb)
    in Colab."""
    return COLAB_PREFIX + path


def rewrite(text: str) -> str:
    """`text` with every Colab badge link and every install address pointing at REPOSITORY / BRANCH."""
    return _ANY_INSTALL.sub(INSTALL, _ANY_COLAB.sub(COLAB_PREFIX, text))
