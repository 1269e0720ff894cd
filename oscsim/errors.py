"""The one exception type of the simulator room."""


class OscsimError(ValueError):
    """Invalid input to the simulator: names what was expected and what arrived."""


def brief(exc: BaseException, limit: int = 200) -> str:
    """One line for an error message from a library's exception: its last non-empty line
    (where Python libraries put the point), whole if it fits in `limit` characters, else
    cut after the last full sentence or clause that fits, with an ellipsis — never mid-word."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[-1] if lines else type(exc).__name__
    if len(text) <= limit:
        return text
    head = text[:limit]
    for mark in (". ", "; ", ", ", " "):
        cut = head.rfind(mark)
        if cut > limit // 3:
            return head[: cut + (1 if mark != " " else 0)].rstrip() + " …"
    return head + " …"
