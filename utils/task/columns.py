"""The columns that make a row a scheduling problem: what the rewards read (TRL passes them by name)."""

PROBLEM_COLUMNS = ("events", "priority_events", "optimal_score")
