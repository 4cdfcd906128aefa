"""Turning what the student's process sent back into judged case results (trusted side)."""

from __future__ import annotations

from grader.checks import MISCONCEPTIONS
from grader.checks.base import Case, CaseResult, Check, Returned, run_judge
from grader.runner.child import decode_array, encode_array

#: the case message of a function that still raises NotImplementedError (the released stub);
#: the reports count a notebook whose every case says this as "not attempted"
NOT_IMPLEMENTED_MESSAGE = "not implemented yet: the function still raises NotImplementedError"


def wire_case(key: str, case: Case) -> dict:
    """What the child receives for a case: the plan and the inputs, never the expectations."""
    return {
        "key": key,
        "plan": case.plan,
        "returns": case.returns,
        "inputs": {name: encode_array(array) for name, array in case.inputs.items()},
    }


def to_returned(encoded: dict) -> Returned:
    """Rebuild a :class:`Returned` from the child's JSON description (no pickle, numbers only)."""
    if not isinstance(encoded, dict):
        return Returned("unsupported", "unknown")
    kind = str(encoded.get("kind", "unsupported"))
    array = None
    if "data" in encoded:
        try:
            array = decode_array(encoded["data"])
        except Exception:  # noqa: BLE001 - a malformed payload is simply not a valid answer
            return Returned("unsupported", "undecodable data")
        if array.dtype.kind not in "biuf":
            return Returned("unsupported", f"array of {array.dtype}")
    items = tuple(to_returned(i) for i in encoded.get("items", [])) if kind == "sequence" else ()
    return Returned(
        kind,
        str(encoded.get("type", "")),
        encoded.get("dtype"),
        array,
        items,
        int(encoded.get("length", 0) or 0),
    )


def judge_event(check: Check, case: Case, event: dict | None, failure: str = "") -> CaseResult:
    """Judge one case from the child's event (or from the reason there is none)."""
    if event is None:
        return CaseResult(case.name, False, failure or "no result", points=case.points)
    error = event.get("error")
    notes = [f"your code warned: {w}" for w in event.get("warnings", [])[:3]]
    if error:
        if error.get("type") == "PlanError":
            message = error.get("message", "")
        elif error.get("type") == "NotImplementedError":
            message = NOT_IMPLEMENTED_MESSAGE
        else:
            message = f"your code raised {error.get('type')}: {error.get('message')}"
            if error.get("trace"):
                message += f"\n{error['trace']}"
        return CaseResult(case.name, False, message, notes=tuple(notes), points=case.points)
    outputs = {name: to_returned(value) for name, value in (event.get("outputs") or {}).items()}
    result = run_judge(check.judge, case, outputs)
    result.notes = tuple(result.notes) + tuple(notes)
    return result


def hints_for(diagnosis: list[str]) -> list[str]:
    return [f"[{d}] {MISCONCEPTIONS[d].hint}" for d in diagnosis if d in MISCONCEPTIONS]
