"""The class roster (``--roster students.csv``): one schema for every export that names students.

    id,name,email,lms_id,section
    ada,Ada Lovelace,ada@example.edu,40101,Lab A

* ``id`` (required): the student's id in the kit and in nbgrader, i.e. the folder name in
  ``submitted/<id>/<assignment>/``;
* ``name``: shown in the LMS exports and written to the nbgrader gradebook (first and last name
  split at the last space, unless the optional ``first_name`` and ``last_name`` columns are given);
* ``email``: written to the gradebook; Moodle's import identifies users by it ("Email address");
* ``lms_id``: the student's user id in the LMS: Canvas's numeric user ``ID`` column (Moodle users
  are matched by email);
* ``section`` (optional): Canvas's ``Section`` column.

Column names are case-insensitive; other columns are ignored. A roster student with no notebook
for an assignment is listed as a missing submission.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path


class RosterError(ValueError):
    """The roster cannot be read, or breaks the schema."""


@dataclass(frozen=True)
class Student:
    id: str
    name: str = ""
    email: str = ""
    lms_id: str = ""
    section: str = ""
    first_name: str = ""
    last_name: str = ""

    def names(self) -> tuple[str, str]:
        """(first, last) for nbgrader's gradebook."""
        if self.first_name or self.last_name:
            return self.first_name, self.last_name
        first, _, last = self.name.strip().rpartition(" ")
        return (first, last) if first else (last, "")


def load_roster(path: Path | None) -> dict[str, Student]:
    """``{id: Student}`` in the file's order; ``{}`` without a file."""
    if path is None:
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # Excel writes a byte-order mark
    except OSError as exc:
        raise RosterError(f"cannot read the roster {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RosterError(f"{path}: the roster must be UTF-8 text (CSV)") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [(h or "").strip().lower() for h in reader.fieldnames or []]
    if "id" not in header:
        raise RosterError(
            f"{path}: the roster needs an 'id' column (id,name,email,lms_id[,section]); "
            f"found: {', '.join(header) or 'nothing'}"
        )
    students: dict[str, Student] = {}
    for line, row in enumerate(reader, start=2):
        cells = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k}
        student_id = cells.get("id", "")
        if not student_id:
            if any(cells.values()):
                raise RosterError(f"{path}, line {line}: a student without an id")
            continue
        if student_id in students:
            raise RosterError(f"{path}, line {line}: the id {student_id!r} appears twice")
        students[student_id] = Student(
            id=student_id,
            name=cells.get("name", ""),
            email=cells.get("email", ""),
            lms_id=cells.get("lms_id", ""),
            section=cells.get("section", ""),
            first_name=cells.get("first_name", ""),
            last_name=cells.get("last_name", ""),
        )
    return students
