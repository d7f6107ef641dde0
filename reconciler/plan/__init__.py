"""The plan: a pure value, and the rules it is judged by. A leaf above :mod:`reconciler.model`:
nothing here imports the providers, the config, the engines or the command line.

- :mod:`.changes` — one value per object touched, and the order they run in (``STEPS``)
- :mod:`.inputs` — what a plan is made from: the remote as read (``RemoteState``, ``Source``),
  how much was read (``Refresh``), and what the platform can do (``Capabilities``)
- :mod:`.diff` — desired x remote → changes (set algebra over ids)
- :mod:`.build` — a target's plan: the diff, then the capabilities' warnings
- :mod:`.definition` — ``Plan``, ``TargetPlan``, ``Counts``
- :mod:`.endpoint` — where a target was planned
- :mod:`.fingerprint` — the remote fingerprint a plan records
- :mod:`.review` — the review in audiences (``SegmentReview``) and the safety ``Verdict``
- :mod:`.safety` — the verdict (``judge``): ``prevent_destroy``, thresholds, per-segment guards;
  what apply does with it (``enforce``); the refusal of a stale saved plan
- :mod:`.planfile` — the file format (JSON both ways, the format version, the reader)
"""

from __future__ import annotations

from .build import Overview, build_target_plan
from .definition import FORMAT_VERSION, Counts, Plan, TargetPlan
from .diff import Ownership
from .endpoint import LOCAL_SANDBOX, Endpoint, endpoint_of
from .fingerprint import fingerprint, fingerprint_sum, format_fingerprint
from .inputs import Capabilities, Refresh, RemoteState, Source
from .planfile import (
    changes_digest,
    plan_dict,
    plan_from_dict,
    plan_from_json,
    plan_json,
    planned_config,
    read_plan_file,
    save_plan,
)
from .review import Definition, Refusal, SegmentReview, SegmentStatus, Verdict
from .safety import (
    Guard,
    Guards,
    Safety,
    check_config,
    check_endpoints,
    check_fresh,
    check_verdict,
    enforce,
    judge,
)

__all__ = [
    "FORMAT_VERSION",
    "LOCAL_SANDBOX",
    "Capabilities",
    "Counts",
    "Definition",
    "Endpoint",
    "Guard",
    "Guards",
    "Overview",
    "Ownership",
    "Plan",
    "Refresh",
    "Refusal",
    "RemoteState",
    "Safety",
    "SegmentReview",
    "SegmentStatus",
    "Source",
    "TargetPlan",
    "Verdict",
    "build_target_plan",
    "changes_digest",
    "check_config",
    "check_endpoints",
    "check_fresh",
    "check_verdict",
    "endpoint_of",
    "enforce",
    "fingerprint",
    "fingerprint_sum",
    "format_fingerprint",
    "judge",
    "plan_dict",
    "plan_from_dict",
    "plan_from_json",
    "plan_json",
    "planned_config",
    "read_plan_file",
    "save_plan",
]
