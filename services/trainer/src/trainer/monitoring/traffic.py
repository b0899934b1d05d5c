"""``trainer traffic``: send rows drawn like the training data to a running inference server.

For trying the monitoring path end to end (sampling -> prediction log -> ``trainer drift``)
without real users: the seed's synthetic generator with another seed gives rows distributed like
the training data; ``--shift income_k=25`` adds a constant to a feature to simulate drift. Rows go
in ``--batch``-sized requests; any non-2xx answer stops with its error message.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any

from trainer.errors import TrainerError
from trainer.settings import Settings
from trainer.training import data


class TrafficError(TrainerError):
    """The server could not be reached or refused a request."""


def _shift(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or name not in data.FEATURE_NAMES:
        raise argparse.ArgumentTypeError(
            f"expected FEATURE=NUMBER with FEATURE one of {', '.join(data.FEATURE_NAMES)}"
        )
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "traffic",
        help="send synthetic rows (like the training data) to a running server's /predict",
        description="POST rows drawn like the training data to <url>/predict, for trying "
        "sampling and `trainer drift`. Exit codes: 0 sent, 1 error, 2 bad command line.",
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="server base URL")
    parser.add_argument("--rows", type=int, default=300, help="rows to send (default 300)")
    parser.add_argument("--batch", type=int, default=1, help="rows per request (default 1)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic rows")
    parser.add_argument(
        "--shift",
        type=_shift,
        action="append",
        default=[],
        metavar="FEATURE=NUMBER",
        help="add NUMBER to FEATURE in every row (repeatable), e.g. income_k=25",
    )
    parser.set_defaults(handler=run)


def records(rows: int, seed: int, shifts: list[tuple[str, float]]) -> list[dict[str, float]]:
    frame = data.synthetic(max(rows, data.MIN_ROWS), seed).frame.head(rows)
    kinds = dict(data.FEATURES)
    out: list[dict[str, float]] = []
    for row in frame[list(data.FEATURE_NAMES)].to_dict("records"):
        record = {str(name): float(value) for name, value in row.items()}
        for name, delta in shifts:
            record[name] += delta
        # Integer features go out as integers, as a client would send them.
        out.append(
            {
                name: int(value) if kinds[name] == "integer" and value.is_integer() else value
                for name, value in record.items()
            }
        )
    return out


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url + "/predict",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise TrafficError(f"{url}/predict answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrafficError(
            f"{url}/predict: cannot connect ({reason}); is a server running there? "
            "(`make traffic` targets PORT, default 8080; or pass --url)"
        ) from None


def run(args: argparse.Namespace, _settings: Settings) -> int:
    if args.rows < 1 or args.batch < 1:
        raise TrafficError("--rows and --batch must be at least 1")
    url = args.url.rstrip("/")
    rows = records(args.rows, args.seed, args.shift)
    versions: set[str] = set()
    for start in range(0, len(rows), args.batch):
        chunk = rows[start : start + args.batch]
        answer = post(url, chunk[0] if args.batch == 1 else {"instances": chunk})
        versions.add(str(answer.get("model_version")))
    shifted = ", ".join(f"{name}{delta:+g}" for name, delta in args.shift) or "none"
    sys.stdout.write(
        f"sent {len(rows)} rows to {url}/predict (seed {args.seed}, shift {shifted}); "
        f"served by {', '.join(sorted(versions))}\n"
    )
    return 0
