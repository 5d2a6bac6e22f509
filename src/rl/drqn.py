"""A deep recurrent Q-network (DRQN) for the T-Maze, as a LightningModule.

The Q-network is the project's :class:`src.rnn.StackedRNN` (any cell, the warmed/plain
split of partial warm-up), read out to one value per action. Its input at step t is the
observation ``o_t``, the one-hot previous action ``a_{t-1}`` and the previous reward
``r_{t-1}`` (zeros at t = 0): 4 + 4 + 1 = 9 values (:func:`step_input`).

Learning follows the authors' code (github glambrechts/warmup, ``reinforcement.py``):
a replay buffer filled by the exploration policy before learning, then per episode one
epsilon-greedy episode played into the buffer and ``steps_per_episode`` Adam steps on the
squared TD error ``(Q(h_t, a_t) - r_t - gamma * max_a Q_target(h_{t+1}, a))^2`` (no
bootstrap past an exit; a cut at the horizon bootstraps), the target network copied from
the online one every ``target_every`` episodes, and a greedy evaluation every
``eval_every`` episodes. With ``stop_when_solved`` (the cpu scale's setting), learning stops
at the first evaluation that finds the greedy policy optimal.

Two choices differ from the authors' code, both for speed, and neither changes what is
learned from:

* the buffer holds **whole histories** (episodes), up to ``capacity`` transitions (oldest
  episodes dropped first). A batch is ``batch_size`` histories drawn uniformly, and the
  loss is the mean over *all* their transitions, each computed in one pass over the
  history. The authors draw single transitions and rerun each one's history prefix.
* the 50 evaluation roll-outs are played side by side, as one batch of environments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

from src.rl.tmaze import EXPLORATION, GAMMA, GOAL_REWARD, TMazeEnv

INPUT_SIZE = 4 + 4 + 1  # observation, previous action (one-hot), previous reward


def step_input(obs: np.ndarray, action: int | None, reward: float) -> np.ndarray:
    """The network's input at one step: observation, one-hot previous action, previous reward."""
    x = np.zeros(INPUT_SIZE, dtype=np.float32)
    x[:4] = obs
    if action is not None:
        x[4 + action] = 1.0
    x[8] = reward
    return x


@dataclass
class Episode:
    """One history: ``inputs`` ``(T + 1, 9)`` (the input before each action, and after the
    last), ``actions`` and ``rewards`` ``(T,)``, ``terminated``: it ended at an exit (no
    bootstrap from the last input) rather than at the horizon."""

    inputs: Tensor
    actions: Tensor
    rewards: Tensor
    terminated: bool

    @property
    def transitions(self) -> int:
        return len(self.actions)

    @property
    def total_return(self) -> float:
        return float(self.rewards.sum())


class ReplayBuffer:
    """Whole histories, at most ``capacity`` transitions (the oldest histories go first)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.episodes: list[Episode] = []
        self.transitions = 0

    def __len__(self) -> int:
        return len(self.episodes)

    @property
    def full(self) -> bool:
        return self.transitions >= self.capacity

    def add(self, episode: Episode) -> None:
        self.episodes.append(episode)
        self.transitions += episode.transitions
        while self.transitions - self.episodes[0].transitions >= self.capacity:
            self.transitions -= self.episodes.pop(0).transitions

    def sample(self, n: int, generator: torch.Generator | None = None) -> list[Episode]:
        idx = torch.randint(len(self.episodes), (n,), generator=generator)
        return [self.episodes[i] for i in idx.tolist()]


def batch_of(episodes: list[Episode]) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Padded time-major tensors of a batch of histories: inputs ``(T + 1, B, 9)``, actions
    and rewards ``(T, B)``, ``valid`` ``(T, B)`` (a real transition), ``bootstrap`` ``(T, B)``
    (its target adds the next value: every transition but an exit)."""
    inputs = pad_sequence([e.inputs for e in episodes])
    actions = pad_sequence([e.actions for e in episodes])
    rewards = pad_sequence([e.rewards for e in episodes])
    lengths = torch.tensor([e.transitions for e in episodes])
    t = torch.arange(actions.shape[0]).unsqueeze(1)
    valid = t < lengths
    exits = torch.tensor([e.terminated for e in episodes])
    bootstrap = valid & ~((t == lengths - 1) & exits)
    return inputs, actions, rewards, valid, bootstrap


@torch.no_grad()
def play(net, envs: list[TMazeEnv], epsilon: float, generator: torch.Generator,
         goals: list[str | None] | None = None) -> list[Episode]:
    """One episode in each of ``envs``, side by side: epsilon-greedy around the exploration
    policy (``epsilon=1``: the exploration policy alone, and ``net`` is not run; ``0``:
    greedy). Returns the histories in the order of ``envs``."""
    n = len(envs)
    goals = goals or [None] * n
    obs = [env.reset(options={"goal": g} if g else None)[0] for env, g in zip(envs, goals)]
    inputs = [[step_input(o, None, 0.0)] for o in obs]
    actions: list[list[int]] = [[] for _ in range(n)]
    rewards: list[list[float]] = [[] for _ in range(n)]
    ended = [False] * n
    exited = [False] * n
    states = None
    explore = torch.tensor(EXPLORATION, dtype=torch.float)
    device = next(net.parameters()).device if epsilon < 1.0 else None
    while not all(ended):
        if epsilon < 1.0:
            x = torch.from_numpy(np.stack([h[-1] for h in inputs])).to(device)
            q, states = net(x.unsqueeze(0), states)
            greedy = q[0].argmax(-1).cpu()
        else:
            greedy = torch.zeros(n, dtype=torch.long)
        random = torch.rand(n, generator=generator) < epsilon
        drawn = torch.multinomial(explore, n, replacement=True, generator=generator)
        chosen = torch.where(random, drawn, greedy).tolist()
        for i, env in enumerate(envs):
            if ended[i]:
                continue
            o, r, terminated, truncated, _ = env.step(chosen[i])
            actions[i].append(chosen[i])
            rewards[i].append(r)
            inputs[i].append(step_input(o, chosen[i], r))
            ended[i], exited[i] = terminated or truncated, terminated
    return [Episode(torch.from_numpy(np.stack(inputs[i])), torch.tensor(actions[i]),
                    torch.tensor(rewards[i], dtype=torch.float), exited[i]) for i in range(n)]


def is_optimal(episodes: list[Episode], length: int) -> bool:
    """Greedy histories, one per goal side, are optimal: the cued exit after ``L`` steps right,
    return 4 in ``L + 1`` steps (the authors' test of a solved maze)."""
    return all(e.total_return == GOAL_REWARD and e.transitions == length + 1 for e in episodes)


class DRQNModule(pl.LightningModule):
    """The DRQN's learning loop. One Lightning step is one Adam step; the episodes, target
    updates, evaluations and VAA measurements happen on the step that starts an episode.

    Logged (step = episode): ``eval/return`` (mean undiscounted return of ``eval_rollouts``
    greedy roll-outs), ``eval/optimal`` (1 when the greedy policy solves both goal sides),
    ``train/loss`` (mean TD loss since the last evaluation); and ``vaa``, ``attractors``,
    ``settled``, ``fixed_points`` every ``vaa_every`` episodes at step ``1 + episode``
    (steps 0 and 1 are the network at initialisation and after warm-up).
    """

    def __init__(self, net, target, task, lr: float = 1e-3, batch_size: int = 32,
                 meter=None, seed: int = 0):
        super().__init__()
        self.net, self.target, self.task = net, target, task
        self.lr, self.batch_size, self.meter = lr, batch_size, meter
        self.target.requires_grad_(False)
        self.gen = torch.Generator().manual_seed(seed)
        self.env = task.make_env(seed)
        self.eval_envs = [task.make_env(seed * 1000 + 1 + i) for i in range(task.eval_rollouts)]
        self.check_envs = [task.make_env(seed * 1000 + 999_001 + i) for i in range(2)]
        self.losses: list[float] = []
        self.history: list[dict] = []  # one entry per evaluation
        self.vaa_history: list[dict] = []
        self.solved_at: int | None = None
        self.stopped_at: int | None = None
        self._next: dict[int, tuple[Episode, Tensor]] = {}  # id -> (history, next values)

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), lr=self.lr)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(range(self.task.episodes * self.task.steps_per_episode), batch_size=None)

    # ---------------------------------------------------------------- evaluation
    def evaluate(self, episode: int, bar: bool = True) -> dict:
        was_training = self.net.training
        self.net.eval()
        rollouts = play(self.net, self.eval_envs, 0.0, self.gen)
        optimal = is_optimal(play(self.net, self.check_envs, 0.0, self.gen, ["up", "down"]),
                             self.task.length)
        self.net.train(was_training)
        if optimal and self.solved_at is None:
            self.solved_at = episode
        metrics = {"eval/return": float(np.mean([e.total_return for e in rollouts])),
                   "eval/optimal": float(optimal)}
        if self.losses:
            metrics["train/loss"] = float(np.mean(self.losses))
            self.losses = []
        self.history.append({"episode": episode, **metrics})
        if self.logger is not None:
            self.logger.log_metrics(metrics, step=episode)
        if bar:
            self.log("return", metrics["eval/return"], prog_bar=True, logger=False)
        return metrics

    def measure(self, episode: int) -> None:
        from src.vaa import vaa_metrics

        m = self.meter(self.net)
        self.vaa_history.append({"episode": episode, "vaa": m.vaa, "settled": m.settled})
        if self.logger is not None:
            self.logger.log_metrics(vaa_metrics(m), step=1 + episode)

    def between_episodes(self, episode: int) -> bool:
        """What happens before episode ``episode`` (0-based) is played and learned from.
        False when learning stops here (``stop_when_solved`` and the maze is solved)."""
        task = self.task
        if episode % task.eval_every == 0:
            self.evaluate(episode)
            if task.stop_when_solved and self.solved_at is not None:
                self.stopped_at = episode
                self.trainer.should_stop = True
                return False
        if self.meter is not None and episode > 0 and episode % task.vaa_every == 0:
            self.measure(episode)
        if episode % task.target_every == 0:
            self.update_target()
        (history,) = play(self.net, [self.env], task.epsilon, self.gen)
        task.buffer.add(history)
        return True

    def finish(self) -> None:
        """After the last Adam step: the final evaluation (unless learning stopped right
        after one) and VAA measurement."""
        episodes = self.task.episodes if self.stopped_at is None else self.stopped_at
        if self.stopped_at is None:
            self.evaluate(episodes, bar=False)
        if self.meter is not None and (not self.vaa_history
                                       or self.vaa_history[-1]["episode"] != episodes):
            self.measure(episodes)

    # ---------------------------------------------------------------- learning
    @torch.no_grad()
    def next_values(self, episodes: list[Episode]) -> Tensor:
        """``max_a Q_target(h_{t+1}, a)`` for every transition, padded ``(T, B)``. The target
        network changes only every ``target_every`` episodes, so each history's values are
        computed once per target network (in one batch with the other new ones) and cached."""
        new = list({id(e): e for e in episodes if id(e) not in self._next}.values())
        if new:
            values, _ = self.target(pad_sequence([e.inputs for e in new]).to(self.device))
            best = values[1:].max(-1).values
            for i, e in enumerate(new):  # the history is kept too: its id stays its own
                self._next[id(e)] = (e, best[: e.transitions, i])
        return pad_sequence([self._next[id(e)][1] for e in episodes])

    def update_target(self) -> None:
        self.target.load_state_dict(self.net.state_dict())
        self._next.clear()

    def td_loss(self, episodes: list[Episode]) -> Tensor:
        inputs, actions, rewards, valid, bootstrap = (
            t.to(self.device) for t in batch_of(episodes))
        q, _ = self.net(inputs[:-1])
        q = q.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        target = rewards + GAMMA * bootstrap * self.next_values(episodes)
        return F.mse_loss(q[valid], target[valid])

    def training_step(self, batch, batch_idx):
        if batch_idx % self.task.steps_per_episode == 0:
            if not self.between_episodes(batch_idx // self.task.steps_per_episode):
                return None  # no step: learning ends here
        loss = self.td_loss(self.task.buffer.sample(self.batch_size, self.gen))
        if not math.isfinite(loss.item()):
            raise FloatingPointError(
                f"T-Maze TD loss became {loss.item()} at step {batch_idx}: lower trainer.lr "
                f"(now {self.lr})")
        self.losses.append(loss.item())
        return loss
