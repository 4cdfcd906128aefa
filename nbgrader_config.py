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

# ---- The kit behind nbgrader's buttons (docs/nbgrader.md) -----------------------------------
# Autograde (CLI and formgrader) grades with the kit's sandboxed grader instead of a kernel, and
# Validate (CLI and the lab extension) runs the student's self-check. To opt out and get stock
# nbgrader, delete this block (or set DNN_KIT_NBGRADER=stock in the environment).
import os  # noqa: E402

if os.environ.get("DNN_KIT_NBGRADER", "kit") != "stock":
    from grader.nbgrader_steps import GradeInSandbox, SelfCheck, configurable_validator

    c.Autograde.autograde_preprocessors = [
        GradeInSandbox,  # in place of nbgrader.preprocessors.Execute
        "nbgrader.preprocessors.IgnorePattern",
        "nbconvert.preprocessors.ClearMetadataPreprocessor",
        "nbgrader.preprocessors.LimitOutput",
        "nbgrader.preprocessors.SaveAutoGrades",
        "nbgrader.preprocessors.AssignLatePenalties",
        "nbgrader.preprocessors.CheckCellMetadata",
    ]
    configurable_validator()  # nbgrader 0.9.6 does not mark Validator.preprocessors configurable
    from nbgrader.preprocessors import CheckCellMetadata, ClearOutput

    c.Validator.preprocessors = [CheckCellMetadata, ClearOutput, SelfCheck]
