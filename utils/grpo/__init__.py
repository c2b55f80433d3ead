"""Notebook 04: the GRPO update, written out and checked against TRL's own loss.

Rewards -> group advantages (:mod:`.advantages`) -> ... (the rest of the update follows).
"""

from .advantages import group_advantages
