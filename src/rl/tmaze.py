"""The T-Maze: a memory task for reinforcement learning, as a ``gymnasium.Env``.

The layout, observations, actions and rewards follow the authors' public code
(github glambrechts/warmup, ``environments.py``)::

            [up exit]
    S - 1 - 2 - ... - J          S = x 0 (the cue), J = x L (the junction)
            [down exit]

* **State.** The position ``x`` in ``0..L`` along the corridor (``L = length``), and the
  goal side (up or down), drawn with probability 1/2 at reset. An exit ends the episode.
* **Observations** (one-hot, 4 values): ``cue up`` or ``cue down`` at ``x = 0`` (the only
  place the goal is shown), ``corridor`` for ``0 < x < L``, ``junction`` at ``x = L``.
* **Actions** (4): ``right``, ``up``, ``left``, ``down``.
* **Rewards.** +4 for the goal's exit at the junction; -0.1 for the wrong exit, and for a
  bump into a wall: up or down in the corridor (cue cell included), left at the cue, right
  at the junction; 0 for any other move. Either exit ends the episode (``terminated``);
  otherwise it is cut at the horizon ``3L - 1`` steps (``truncated``). Discount 0.98.
* **Stochasticity** ``lambda`` (default 0): before the junction (``x < L``), with
  probability lambda the agent's action is replaced by one drawn uniformly from the four,
  as in the authors' code. The reward is that of the action the agent chose; the move is
  that of the replacement. The junction itself is deterministic, so the optimal return
  stays reachable, only later.

So the agent must carry one bit, seen at step 0, across ``L`` steps of identical corridor
observations: an optimal policy walks right ``L`` times and takes the cued exit, for an
undiscounted return of 4 and a discounted one of ``4 * 0.98 ** L``
(:func:`optimal_return`).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

RIGHT, UP, LEFT, DOWN = range(4)
ACTIONS = ("right", "up", "left", "down")
CUE_UP, CUE_DOWN, CORRIDOR, JUNCTION = range(4)
OBSERVATIONS = ("cue up", "cue down", "corridor", "junction")
GOAL_REWARD, PENALTY = 4.0, -0.1
GAMMA = 0.98
#: The exploration policy of the authors' code: uniform over actions, biased to the right.
EXPLORATION = np.array([1 / 2, 1 / 6, 1 / 6, 1 / 6])


def horizon(length: int) -> int:
    """Steps after which an episode is cut: 3L - 1."""
    return 3 * length - 1


def optimal_return(length: int, gamma: float = 1.0) -> float:
    """The best expected return from the start: ``L`` steps right (reward 0) and the cued exit
    (reward 4) at step ``L``, so ``4 * gamma ** L``."""
    return GOAL_REWARD * gamma**length


class TMazeEnv(gym.Env):
    """The T-Maze of length ``length`` (>= 2) and stochasticity ``stochasticity`` in [0, 1].

    ``reset(options={"goal": "up" | "down"})`` forces the goal side (used to check that a
    greedy policy is optimal both ways); otherwise it is drawn from the env's own
    ``np_random``, seeded by ``reset(seed=...)``.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, length: int = 10, stochasticity: float = 0.0, render_mode=None):
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 2:
            raise ValueError(f"benchmark.length={length!r} is invalid: the T-Maze needs an "
                             "integer length >= 2")
        if isinstance(stochasticity, bool) or not 0.0 <= float(stochasticity) <= 1.0:
            raise ValueError(f"benchmark.stochasticity={stochasticity!r} is invalid: it is a "
                             "probability, in [0, 1]")
        self.length = int(length)
        self.stochasticity = float(stochasticity)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0.0, 1.0, shape=(4,), dtype=np.float32)
        self.action_space = spaces.Discrete(4)
        self.x = 0
        self.goal = UP
        self.t = 0

    def _observation(self) -> np.ndarray:
        obs = np.zeros(4, dtype=np.float32)
        if self.x == 0:
            obs[CUE_UP if self.goal == UP else CUE_DOWN] = 1.0
        elif self.x < self.length:
            obs[CORRIDOR] = 1.0
        else:
            obs[JUNCTION] = 1.0
        return obs

    def _info(self) -> dict:
        return {"x": self.x, "goal": ACTIONS[self.goal]}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        goal = (options or {}).get("goal")
        if goal is None:
            self.goal = UP if self.np_random.random() < 0.5 else DOWN
        elif goal in ("up", "down"):
            self.goal = UP if goal == "up" else DOWN
        else:
            raise ValueError(f"reset(options={{'goal': {goal!r}}}): the goal is 'up' or 'down'")
        self.x, self.t = 0, 0
        return self._observation(), self._info()

    def step(self, action):
        action = int(action)
        if not 0 <= action < 4:
            raise ValueError(f"action {action!r} is not one of 0..3 ({', '.join(ACTIONS)})")
        at_junction = self.x == self.length
        if at_junction:
            if action in (UP, DOWN):
                reward = GOAL_REWARD if action == self.goal else PENALTY
            else:
                reward = PENALTY if action == RIGHT else 0.0
        else:
            bump = action in (UP, DOWN) or (action == LEFT and self.x == 0)
            reward = PENALTY if bump else 0.0
            if self.stochasticity and self.np_random.random() < self.stochasticity:
                action = int(self.np_random.integers(4))  # the slip: only the move changes
        terminated = at_junction and action in (UP, DOWN)
        if not terminated:
            if action == RIGHT and not at_junction:
                self.x += 1
            elif action == LEFT and self.x > 0:
                self.x -= 1
        self.t += 1
        truncated = not terminated and self.t >= horizon(self.length)
        return self._observation(), reward, terminated, truncated, self._info()

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        cells = "".join("x" if i == self.x else "." for i in range(self.length + 1))
        up, down = ("G", " ") if self.goal == UP else (" ", "G")
        pad = " " * self.length
        return f"{pad}{up}\n{cells}\n{pad}{down}\n"
