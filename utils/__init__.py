"""Reusable, tested logic for the GRPO scheduling course, grouped by course part.

==============  =========  ==========================================================
package         notebooks  what is in it
==============  =========  ==========================================================
utils.task      01, 02     times, events and their geometry, the optimal schedule (DP),
                           the problem generator, loading data, prompts, statistics, plots
utils.rewards   03         parsing answers, the course's rewards and alternatives, the
                           reference's rewards, explain(), the checker, the reward sets,
                           the gallery and the inspector widget
utils.grpo      04         the GRPO update written out: advantages, log-probabilities,
                           ratio, clipping, KL, the loss aggregations
utils.train     05         backend, GRPO configuration, warm start, the trainer, run
                           folders and checkpoints, callbacks, group probes
utils.evaluate  06         the reference evaluation (+ CLI), baselines, reports, statistics
utils.llm       05, 06      loading models (the embedded one offline), generation paths
==============  =========  ==========================================================

Top level: ``paths`` (where things live), ``profiles`` (how big each run is), ``env``
(versions and hardware, printed at the top of every notebook), ``display`` (saved figures,
sample tables and training curves, for every notebook) and ``colab_stack`` (the Colab pins and
their checks, for CI and ``scripts/check_colab_pins.py``).

Notebooks import from a part's package (``from utils.rewards import explain``), so a
notebook's imports read as its table of contents. Heavy libraries (torch, transformers,
TRL) are imported inside the functions that need them: ``import utils`` stays cheap.
"""

__version__ = "0.2.0"
