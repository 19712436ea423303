"""What every task's validation scores: the deployed answer, a runner's outputs through the task's host
post-processing (the line's pipeline), one image at a time as a camera delivers them."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from edgekit.backends.base import Runner
from edgekit.progress import bar


class DeployedAnswers:
    post: Callable[[list[np.ndarray]], list[Any]]     # the task's post-processor of the recipe
    frame_summary: Callable[[Any], tuple[float, str]] | None = None   # set: each pass also keeps every answer's
    frame_summaries: list[tuple[float, str]]          # score and group, of the latest pass (the drift reference's)

    def pipeline(self, runner: Runner) -> Callable[[np.ndarray], list[Any]]:
        """A batch in, the deployed answer out (post-processing included): what the line runs."""
        return lambda batch: self.post(runner.infer(batch))

    def outputs_and_answers(self, runner: Runner, x: np.ndarray, desc: str) -> Iterator[tuple[list[np.ndarray], Any]]:
        """Each pre-processed image of ``x`` at batch 1: the runner's outputs and the deployed answer from them."""
        self.frame_summaries = []
        for xi in bar(x, desc):
            outputs = runner.infer(xi[None])
            answer = self.post(outputs)[0]
            if self.frame_summary is not None:
                self.frame_summaries.append(self.frame_summary(answer))
            yield outputs, answer

    def answers(self, runner: Runner, x: np.ndarray, desc: str) -> list[Any]:
        """Each pre-processed image of ``x`` through :meth:`pipeline` at batch 1."""
        return [answer for _, answer in self.outputs_and_answers(runner, x, desc)]
