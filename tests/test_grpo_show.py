"""utils.grpo.show: notebook 04's pictures say what they show."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from utils.grpo.show import plot_token_logprobs  # noqa: E402


def test_the_heatmap_title_names_the_answer_the_model_did_not_write():
    """Issue 25: titled "each token the model wrote" while row 3 was the DP answer put into the group."""
    logp, mask = -torch.rand(4, 6), torch.ones(4, 6)
    labels = ["answer 0", "answer 1", "answer 2", "answer 3 (DP)"]
    fig = plot_token_logprobs(logp, mask, [0.1, -0.2, 0.3, 1.5], labels, injected=[3])
    title = fig.axes[0].get_title()
    assert "the model wrote" not in title and "answer 3 (DP): put in the group, not written by the model" in title
    plt.close(fig)
    fig = plot_token_logprobs(logp, mask, [0.1, -0.2, 0.3, 1.5], labels[:3] + ["answer 3"])
    assert fig.axes[0].get_title() == "log-probability of each token the model wrote (0 = certain)"
    plt.close(fig)
    with pytest.raises(ValueError, match="not rows of a 4-answer group"):
        plot_token_logprobs(logp, mask, [0.0] * 4, injected=[4])
