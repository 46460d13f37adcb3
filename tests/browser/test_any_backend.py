"""Figures whatever the shell sets: a JupyterLab whose server (and so its kernels) runs with MPLBACKEND=Agg, as on
servers, in Docker images and in CI. Before the course chose its backend itself, lessons showed
`<Figure size 520x500 with 2 Axes>` and the explorer its sliders with no pictures there.
(`MPLBACKEND=Agg make test-browser` runs every notebook that way.)"""
from __future__ import annotations

import pytest

from test_jupyterlab import EXPLORER_LESSON, move_the_explorer, run_and_check

pytestmark = pytest.mark.browser


def test_lesson_and_explorer_under_agg(lab_agg, page):
    dom = run_and_check(page, lab_agg, EXPLORER_LESSON, shot="agg__01_patterns_gallery.png")
    assert dom["images"] > 0, f"no matplotlib picture on the page: {dom}"
    move_the_explorer(page, shot="agg__explorer_slider.png")


def test_a_lesson_of_plots_under_agg(lab_agg, page):
    dom = run_and_check(page, lab_agg, "notebooks/00_why_attention_is_quadratic.ipynb", shot="agg__00.png")
    assert dom["images"] > 0, f"no matplotlib picture on the page: {dom}"
