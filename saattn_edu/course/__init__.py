"""The course build: exercise notebooks generated from solutions, and whole notebooks graded in a sandbox."""
from .build import BuildReport, build_exercises, make_exercise
from .grade import NotebookGrade, grade_notebook
from .results import grade_paths

__all__ = ["build_exercises", "make_exercise", "BuildReport", "grade_notebook", "grade_paths", "NotebookGrade"]
