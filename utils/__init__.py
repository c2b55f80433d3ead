"""Reusable, tested logic for the GRPO scheduling course.

Notebooks import from here so that the code a learner reads, the code the tests check
and the code the training run calls are the same code. Submodules import lazily:
`import utils` stays cheap and never pulls in torch.
"""

__version__ = "0.1.0"
