from __future__ import annotations

from ..plan import Plan, plan_json


def render_json(plan: Plan) -> str:
    """The plan as JSON (stable key order; validates against ``schemas/plan.schema.json``)."""
    return plan_json(plan, indent=2) + "\n"
