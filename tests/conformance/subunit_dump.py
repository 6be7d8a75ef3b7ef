"""Run by the Tempest venv's python: a subunit v2 stream on stdin -> one JSON object per test on stdout.

Each line: {"id", "status", "reason"}; status is subunit's (success, fail, skip,
xfail, uxsuccess); reason is the skip reason, or the failure's exception and message
(cut to 400 characters). Lives apart from the rest of the tier because python-subunit is
installed in .venv-tempest only.
"""

import itertools
import json
import sys

import subunit
import testtools


def _text(details: dict, key: str) -> str:
    content = details.get(key)
    return "".join(content.iter_text()) if content is not None else ""


def _reason(test: dict) -> str:
    details = test["details"]
    if test["status"] == "skip":
        return _text(details, "reason").strip()
    lines = _text(details, "traceback").strip().splitlines()
    frames = [n for n, line in enumerate(lines) if line.startswith("  File ")]
    # The exception and its message: what follows the last frame and its source line.
    tail = lines[frames[-1] + 1:] if frames else lines[-1:]
    # The frame's source line and Python 3.11's ~~~^^^ markers are indented; the exception is not.
    tail = list(itertools.dropwhile(lambda line: line.startswith("    "), tail))
    return " ".join(line.strip() for line in tail)[:400]


def emit(test: dict) -> None:
    print(json.dumps({"id": test["id"], "status": test["status"], "reason": _reason(test)}))


def main() -> None:
    stream = subunit.ByteStreamToStreamResult(sys.stdin.buffer, non_subunit_name="stdout")
    result = testtools.StreamToDict(emit)
    result.startTestRun()
    try:
        stream.run(result)
    finally:
        result.stopTestRun()


if __name__ == "__main__":
    main()
