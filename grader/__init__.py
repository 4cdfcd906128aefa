"""The public side of the DNN Discussion 2 course kit.

``grader`` holds what every student may see: the checks with their public cases, the given
scaffolding (``grader.toolkit``), the in-notebook self-check (``grader.notebook``) and the
instructor's command line (``python -m grader``). The answers are not here: reference solutions
live in the course repository under ``solutions/`` (see ``grader.references``).
"""

__version__ = "0.1.0"
