"""nbgrader configuration: this repository is itself an nbgrader course directory.

``solutions/<assignment>/`` is nbgrader's *source* folder (instructor notebooks, generated from
the hand-edited ``*.py`` beside them) and ``notebooks/<assignment>/`` its *release* folder (the
student notebooks), so ``nbgrader generate_assignment 02_dropout`` run here rebuilds a student
notebook, and ``submitted/``, ``autograded/`` and ``feedback/`` (git-ignored) work as usual.
``python -m grader nbgrader`` (the stock nbgrader flow) and ``python -m grader export --course DIR``
copy this file into a new course directory.
"""

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
# Only notebooks are assignment material: the jupytext sources (*.py) and caches stay behind.
c.CourseDirectory.include = ["*.ipynb"]
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py"]

# One cell may not run forever (nbgrader ignores --ExecutePreprocessor.timeout when Execute is set).
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True

# Feedback must never show hidden tests.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
c.ClearHiddenTests.enforce_metadata = False
