"""Team scripts for examples/claims_team.py's teams on the scripted model; test_teams.py runs
them, and tests/record_histories.py records them with a worker kill mid-turn."""

from __future__ import annotations

__all__ = [
    "HANDOFF_TEXT",
    "NOTE",
    "RESTART_CASES",
    "ROUND_ROBIN_KILL",
    "SELECTOR_SCRIPT",
]

NOTE = '!call create_claim_note {"claim_id": 123, "text": "Customer called."}'

ROUND_ROBIN_KILL = (
    "@claims_specialist !say I will look at claim 123.\n"
    "@reviewer !say Please add a note.\n"
    f"@claims_specialist {NOTE}\n"
    "@reviewer !say APPROVED"
)
SELECTOR_SCRIPT = (
    "Please ask claims_specialist to add a note to claim 123.\n"
    f"@claims_specialist {NOTE}\n"
    "@triage !say Ask the reviewer to check it.\n"
    "@reviewer !say Approved. TERMINATE"
)
HANDOFF_TEXT = "add a note to claim 123 that the customer called"

RESTART_CASES = {
    # team, message, speakers in order
    "round_robin": (
        "claims-round-robin",
        ROUND_ROBIN_KILL,
        ["claims_specialist", "reviewer", "claims_specialist", "reviewer"],
    ),
    "selector": ("claims-selector", SELECTOR_SCRIPT, ["claims_specialist", "triage", "reviewer"]),
    "handoff": ("claims-team", HANDOFF_TEXT, ["triage", "claims_specialist"]),
}
