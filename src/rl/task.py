"""The T-Maze as a benchmark of the pipeline (``benchmark=tmaze``).

It has the interface the pipeline reads from a supervised benchmark (``name``, ``task``,
``input_size``, ``output_size``, ``seq_length``, ``setup``, ``train_dataloader``,
``train_inputs``, ``n_train``), so that warm-up, the VAA measurements and the run's
bookkeeping are the same code; ``task == "rl"`` sends stage 2 to the DRQN
(:mod:`src.rl.drqn`) instead of supervised training.

The inputs of warm-up and of the VAA measurements are the exploration histories that fill
the replay buffer before learning (docs/method.md: the training inputs, targets unused), cut to
their first ``L + 1`` steps. [choice] Every history has at least that many (no exit can be
reached in fewer than ``L + 1`` actions), so the histories need no padding, and the prefixes
that warm-up and VAA draw in ``1..L+1`` are all real histories: the cue, then the corridor
up to the junction, the part of an episode whose memory matters. The authors use every
prefix of every buffered history instead. Exploration goes on until the buffer is full
*and* at least ``MIN_HISTORIES`` histories were played (64 envs at a time), so that long
mazes, whose buffer holds few histories, still give warm-up and VAA enough of them.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from src.benchmarks.base import check_int
from src.rl.drqn import INPUT_SIZE, ReplayBuffer, play
from src.rl.tmaze import TMazeEnv, horizon


#: Exploration histories collected at least, for warm-up and VAA, even when fewer fit in the
#: buffer (long mazes): the buffer keeps the newest of them.
MIN_HISTORIES = 256


class TMazeTask:
    """The environment's and the agent's settings (``conf/benchmark/tmaze.yaml``), and the
    replay buffer, filled by the exploration policy in :meth:`setup`."""

    name = "tmaze"
    task = "rl"
    input_size = INPUT_SIZE
    output_size = 4  # one Q-value per action

    def __init__(self, batch_size: int, length: int = 10, stochasticity: float = 0.0,
                 episodes: int = 2000, capacity: int = 8192, steps_per_episode: int = 10,
                 target_every: int = 20, epsilon: float = 0.2, eval_every: int = 20,
                 eval_rollouts: int = 50, vaa_every: int = 200, stop_when_solved: bool = False,
                 data_seed: int = 0) -> None:
        TMazeEnv(length, stochasticity)  # its own one-line checks of both
        check_int("trainer.batch_size", batch_size, 2, "warm-up's VAA* compares samples")
        check_int("benchmark.episodes", episodes, 1)
        check_int("benchmark.capacity", capacity, 1)
        check_int("benchmark.steps_per_episode", steps_per_episode, 1)
        check_int("benchmark.target_every", target_every, 1)
        check_int("benchmark.eval_every", eval_every, 1)
        check_int("benchmark.eval_rollouts", eval_rollouts, 1)
        check_int("benchmark.vaa_every", vaa_every, 1)
        check_int("benchmark.data_seed", data_seed, 0)
        if isinstance(epsilon, bool) or not 0.0 <= float(epsilon) <= 1.0:
            raise ValueError(f"benchmark.epsilon={epsilon!r} is invalid: it is a probability, "
                             "in [0, 1]")
        self.batch_size = batch_size
        self.length, self.stochasticity = int(length), float(stochasticity)
        self.episodes, self.capacity = episodes, capacity
        self.steps_per_episode, self.target_every = steps_per_episode, target_every
        self.epsilon, self.eval_every, self.eval_rollouts = float(epsilon), eval_every, eval_rollouts
        if not isinstance(stop_when_solved, bool):
            raise ValueError(f"benchmark.stop_when_solved={stop_when_solved!r} must be true or "
                             "false")
        self.vaa_every, self.data_seed = vaa_every, data_seed
        self.stop_when_solved = stop_when_solved
        self.seq_length = horizon(self.length)  # the longest history: chrono's t_max
        self.buffer = ReplayBuffer(capacity)
        self._histories: Tensor | None = None

    def make_env(self, seed: int) -> TMazeEnv:
        env = TMazeEnv(self.length, self.stochasticity)
        env.reset(seed=seed)
        return env

    def setup(self, stage: str | None = None) -> None:
        """Fill the replay buffer with exploration episodes (once), ``data_seed`` drawing
        them: the same buffer for every cell and warm-up of a sweep."""
        if self._histories is not None:
            return
        gen = torch.Generator().manual_seed(self.data_seed)
        envs = [self.make_env(self.data_seed * 1000 + i) for i in range(64)]
        first = []
        while not self.buffer.full or len(first) < MIN_HISTORIES:
            for episode in play(None, envs, 1.0, gen):
                self.buffer.add(episode)
                first.append(episode.inputs[: self.length + 1])
        self._histories = torch.stack(first, dim=1)  # (L + 1, N, 9), time-major

    @property
    def n_train(self) -> int:
        self.setup()
        return self._histories.shape[1]

    def train_inputs(self, n: int) -> Tensor:
        """The first ``n`` exploration histories, cut to ``L + 1`` steps, ``(L + 1, n, 9)``."""
        self.setup()
        if not 1 <= n <= self.n_train:
            raise ValueError(
                f"the T-Maze's replay buffer holds {self.n_train} exploration histories, fewer "
                f"than the {n} asked for (vaa.groups x vaa.group_size); raise "
                "benchmark.capacity or lower vaa.group_size")
        return self._histories[:, :n]

    def train_dataloader(self) -> DataLoader:
        """Warm-up's batches: the exploration histories, shuffled, ``(x,)`` time-major."""
        self.setup()
        data = TensorDataset(self._histories.transpose(0, 1))
        return DataLoader(data, batch_size=self.batch_size, shuffle=True,
                          collate_fn=lambda items: (torch.stack([x for (x,) in items], 1),))
