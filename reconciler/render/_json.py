from __future__ import annotations

from ..plan import Plan


def render_json(plan: Plan) -> str:
    """The plan as JSON (stable key order; validates against ``schemas/plan.schema.json``)."""
    return plan.to_json(indent=2) + "\n"
