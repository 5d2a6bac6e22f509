"""The T-Maze (src/rl/): the environment case by case, the optimal return, the DRQN's loss
against a transition-by-transition reference, learning L = 2 over seeds, and the pipeline."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from conftest import compose_config, run_cli, tiny, train_in_process
from src.schema import check as check_config
from src.rl.drqn import (
    INPUT_SIZE,
    Episode,
    ReplayBuffer,
    batch_of,
    is_optimal,
    play,
    step_input,
)
from src.rl.tmaze import (
    CORRIDOR,
    CUE_DOWN,
    CUE_UP,
    DOWN,
    GAMMA,
    JUNCTION,
    LEFT,
    PENALTY,
    RIGHT,
    UP,
    TMazeEnv,
    horizon,
    optimal_return,
)
from src.pipeline import build
from src.rules import Refusal


def observed(obs) -> int:
    assert obs.dtype == np.float32 and obs.sum() == 1
    return int(obs.argmax())


def maze(length=4, goal="up", stochasticity=0.0, seed=0):
    env = TMazeEnv(length, stochasticity)
    obs, _ = env.reset(seed=seed, options={"goal": goal})
    return env, obs


# ------------------------------------------------------------------ the environment
def test_the_env_passes_gymnasiums_checker():
    check_env(TMazeEnv(5), skip_render_check=True)
    check_env(TMazeEnv(5, stochasticity=0.3), skip_render_check=True)


@pytest.mark.parametrize("goal,cue", [("up", CUE_UP), ("down", CUE_DOWN)])
def test_the_cue_shows_the_goal_only_at_the_start(goal, cue):
    env, obs = maze(4, goal)
    assert observed(obs) == cue
    for x in range(1, 4):
        obs, r, term, trunc, info = env.step(RIGHT)
        assert observed(obs) == CORRIDOR and r == 0 and not (term or trunc) and info["x"] == x
    obs, r, *_ = env.step(RIGHT)
    assert observed(obs) == JUNCTION and r == 0
    obs, *_ = env.step(LEFT)  # back into the corridor
    assert observed(obs) == CORRIDOR


@pytest.mark.parametrize("where,action,reward,moves_to", [
    (0, LEFT, PENALTY, 0),       # wall behind the cue
    (0, UP, PENALTY, 0),         # walls along the corridor, the cue cell included
    (0, DOWN, PENALTY, 0),
    (2, UP, PENALTY, 2),
    (2, DOWN, PENALTY, 2),
    (2, LEFT, 0.0, 1),
    (2, RIGHT, 0.0, 3),
    (4, RIGHT, PENALTY, 4),      # wall beyond the junction
    (4, LEFT, 0.0, 3),
])
def test_moves_and_walls(where, action, reward, moves_to):
    env, _ = maze(4)
    for _ in range(where):
        env.step(RIGHT)
    _, r, term, trunc, info = env.step(action)
    assert r == pytest.approx(reward) and info["x"] == moves_to and not term and not trunc


@pytest.mark.parametrize("goal,action,reward", [
    ("up", UP, 4.0), ("up", DOWN, PENALTY), ("down", DOWN, 4.0), ("down", UP, PENALTY)])
def test_either_exit_ends_the_episode_with_its_reward(goal, action, reward):
    env, _ = maze(3, goal)
    for _ in range(3):
        env.step(RIGHT)
    _, r, term, trunc, _ = env.step(action)
    assert r == pytest.approx(reward) and term and not trunc


@pytest.mark.parametrize("length", [2, 5])
def test_an_episode_is_cut_at_the_horizon(length):
    env, _ = maze(length)
    for t in range(1, horizon(length) + 1):
        _, _, term, trunc, _ = env.step(LEFT)
        assert not term and trunc == (t == 3 * length - 1)


def test_the_goal_is_drawn_half_and_half_from_the_seed():
    env = TMazeEnv(3)
    env.reset(seed=7)
    ups = [observed(env.reset()[0]) == CUE_UP for _ in range(2000)]
    assert abs(np.mean(ups) - 0.5) < 0.05  # 4.5 standard deviations
    again = TMazeEnv(3)
    again.reset(seed=7)
    assert [observed(again.reset()[0]) == CUE_UP for _ in range(2000)] == ups


def test_stochasticity_replaces_the_action_at_its_rate_before_the_junction():
    """With lambda, a step right moves right with probability 1 - lambda + lambda / 4; the
    reward is that of the chosen action; the junction stays deterministic."""
    lam, n = 0.4, 4000
    env, _ = maze(3, stochasticity=lam, seed=1)
    moved = 0
    for _ in range(n):
        env.reset(options={"goal": "up"})
        _, r, *_ , info = env.step(RIGHT)
        moved += info["x"] == 1
        assert r == 0  # a slip into a wall costs nothing: the agent chose right
    p = 1 - lam + lam / 4
    assert abs(moved / n - p) < 5 * math.sqrt(p * (1 - p) / n)
    for _ in range(50):  # at the junction the chosen exit is always taken
        env.reset(options={"goal": "down"})
        while env.x < 3:
            env.step(RIGHT)
        _, r, term, *_ = env.step(DOWN)
        assert term and r == 4.0


@pytest.mark.parametrize("length", [2, 3, 7, 12])
def test_the_optimal_return_is_what_value_iteration_finds(length):
    """Value iteration on the maze with the goal known (positions 0..L, exits terminal) gives
    4 gamma^L from the start; the greedy policy of those values earns 4 in L + 1 steps."""
    env, _ = maze(length, "down")
    n = length + 1
    values = np.zeros(n)
    for _ in range(10 * n):
        new = np.empty(n)
        for x in range(n):
            best = -np.inf
            for a in range(4):
                env.x, env.goal, env.t = x, DOWN, 0
                _, r, term, _, info = env.step(a)
                best = max(best, r + (0.0 if term else GAMMA * values[info["x"]]))
            new[x] = best
        values = new
    assert values[0] == pytest.approx(optimal_return(length, GAMMA))
    env.reset(options={"goal": "down"})
    total, steps, term = 0.0, 0, False
    while not term:
        _, r, term, *_ = env.step(RIGHT if env.x < length else DOWN)
        total, steps = total + r, steps + 1
    assert total == optimal_return(length) == 4.0 and steps == length + 1


# ------------------------------------------------------------------ the agent's pieces
def test_the_exploration_policy_is_biased_to_the_right():
    envs = [TMazeEnv(30) for _ in range(50)]
    for i, env in enumerate(envs):
        env.reset(seed=i)
    actions = torch.cat([e.actions for e in play(None, envs, 1.0, torch.Generator().manual_seed(0))])
    freq = torch.bincount(actions, minlength=4).double() / len(actions)
    expected = torch.tensor([1 / 2, 1 / 6, 1 / 6, 1 / 6], dtype=torch.double)
    assert len(actions) > 3000 and (freq - expected).abs().max() < 0.03


def test_histories_hold_observation_previous_action_and_reward():
    env, _ = maze(2)
    (ep,) = play(None, [env], 1.0, torch.Generator().manual_seed(3), goals=["up"])
    assert ep.inputs.shape == (ep.transitions + 1, INPUT_SIZE)
    assert ep.inputs[0, :4].tolist() == [1, 0, 0, 0] and ep.inputs[0, 4:].abs().sum() == 0
    for t in range(ep.transitions):
        assert ep.inputs[t + 1, 4 + ep.actions[t]] == 1 and ep.inputs[t + 1, 4:8].sum() == 1
        assert ep.inputs[t + 1, 8] == ep.rewards[t]
    assert ep.terminated == (ep.transitions < horizon(2))


def test_the_buffer_keeps_whole_histories_up_to_its_capacity():
    buf = ReplayBuffer(10)
    def ep(n):
        return Episode(torch.zeros(n + 1, INPUT_SIZE), torch.zeros(n, dtype=torch.long),
                       torch.zeros(n), True)
    for n in (4, 4, 4):
        buf.add(ep(n))
    assert buf.full and len(buf) == 3 and buf.transitions == 12
    buf.add(ep(3))  # the oldest goes: 4 + 4 + 3 = 11 >= 10, dropping one more would be < 10
    assert len(buf) == 3 and buf.transitions == 11


def test_the_batched_td_loss_equals_the_transition_by_transition_one():
    """The whole-history loss (one pass per batch) equals the authors' construction: each
    transition's own history prefix run through the network, its target from the next
    prefix through the target network, no bootstrap after an exit."""
    from src.rl.drqn import DRQNModule
    from src.rl.task import TMazeTask

    torch.manual_seed(0)
    cfg = compose_config(["benchmark=tmaze", "benchmark.length=3", "net.hidden_size=8",
                          "warmup=partial", "benchmark.capacity=300"])
    task, net, _ = build(cfg)
    assert isinstance(task, TMazeTask)
    target = copy.deepcopy(net)
    with torch.no_grad():
        for p in target.parameters():
            p.add_(0.1 * torch.randn_like(p))
    agent = DRQNModule(net, target, task)
    episodes = task.buffer.sample(6, torch.Generator().manual_seed(1))
    envs = [task.make_env(i) for i in range(2)]
    episodes += play(None, envs, 1.0, torch.Generator().manual_seed(2))  # exits and cuts
    assert {e.terminated for e in episodes} == {True, False}
    loss = agent.td_loss(episodes)
    errors = []
    with torch.no_grad():
        for e in episodes:
            for t in range(e.transitions):
                q, _ = net(e.inputs[: t + 1].unsqueeze(1))
                y = e.rewards[t].item()
                if not (e.terminated and t == e.transitions - 1):
                    qn, _ = target(e.inputs[: t + 2].unsqueeze(1))
                    y += GAMMA * qn[-1, 0].max().item()
                errors.append((q[-1, 0, e.actions[t]].item() - y) ** 2)
    assert loss.item() == pytest.approx(float(np.mean(errors)), rel=1e-5)
    _, _, _, valid, bootstrap = batch_of(episodes)
    assert int(valid.sum()) == len(errors)
    assert int((valid & ~bootstrap).sum()) == sum(e.terminated for e in episodes)


def test_is_optimal_needs_the_shortest_path_both_ways():
    def ep(actions, rewards):
        return Episode(torch.zeros(len(actions) + 1, INPUT_SIZE), torch.tensor(actions),
                       torch.tensor(rewards), True)
    up = ep([RIGHT, RIGHT, UP], [0.0, 0.0, 4.0])
    down = ep([RIGHT, RIGHT, DOWN], [0.0, 0.0, 4.0])
    detour = ep([RIGHT, LEFT, RIGHT, RIGHT, DOWN], [0.0, 0.0, 0.0, 0.0, 4.0])
    assert is_optimal([up, down], 2)
    assert not is_optimal([up, detour], 2) and not is_optimal([up, up], 3)


def test_step_input_is_zero_before_the_first_action():
    x = step_input(np.eye(4, dtype=np.float32)[2], None, 0.0)
    assert x.tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert step_input(np.eye(4, dtype=np.float32)[3], DOWN, -0.1)[7] == 1


# ------------------------------------------------------------------ the pipeline
def test_the_task_builds_and_fails_on_bad_values_in_one_line():
    cfg = compose_config(["benchmark=tmaze", *tiny("tmaze")])
    check_config(cfg)
    task, net, vaa_inputs = build(cfg)
    assert task.task == "rl" and net.readout.out_features == 4
    assert vaa_inputs.shape == (3, cfg.vaa.groups * cfg.vaa.group_size, INPUT_SIZE)
    assert task.buffer.full and task.n_train >= 256
    for override, key in (("benchmark.length=1", "benchmark.length"),
                          ("benchmark.stochasticity=1.5", "benchmark.stochasticity"),
                          ("benchmark.epsilon=-0.1", "benchmark.epsilon"),
                          ("benchmark.episodes=0", "benchmark.episodes")):
        with pytest.raises(Refusal) as err:  # the task's own check, said in one line
            build(compose_config(["benchmark=tmaze", *tiny("tmaze"), override]))
        message = str(err.value)
        assert key in message and "\n" not in message


def test_a_tmaze_run_logs_returns_solving_and_multistability(tmp_path):
    """tiny("tmaze"): 6 episodes, evaluations every 2, VAA every 3 episodes."""
    result, metrics = train_in_process(tmp_path, ["benchmark=tmaze", "warmup=partial",
                                                  *tiny("tmaze")])

    def steps(key):
        return [s for s, _ in metrics[key]]

    assert steps("eval/return") == [0, 2, 4, 6] == steps("eval/optimal")
    assert steps("train/loss") == [2, 4, 6]
    assert steps("warmup/loss") == [0, 1, 2, 3]
    assert steps("vaa") == [0, 1, 4, 7] == steps("settled")  # init, warm-up, episodes 3, 6
    assert all(-0.1 * horizon(2) - 1e-6 <= v <= 4 for _, v in metrics["eval/return"])
    assert result["test/return"] == metrics["eval/return"][-1][1]
    first = next((s for s, v in metrics["eval/optimal"] if v == 1), None)
    assert result["solved"] == float(first is not None)
    assert result["episodes_to_solve"] == (first if first is not None else 6 + 2)
    assert (tmp_path / "checkpoints" / "final.ckpt").exists()


def test_the_default_warm_up_runs_on_the_tmaze(tmp_path):
    """excite selects on the replay buffer's exploration histories like on a dataset."""
    result, metrics = train_in_process(tmp_path, ["benchmark=tmaze", "warmup=partial",
                                                  *tiny("tmaze", method="excite")])
    assert "warmup/loss" not in metrics and len(metrics["warmup/select_vaa"]) >= 2
    assert {f"warmup/gain_l{i}" for i in range(2)} <= set(metrics)
    assert "solved" in result


def test_a_tmaze_run_is_reproducible(tmp_path):
    a = train_in_process(tmp_path / "a", ["benchmark=tmaze", "seed=2", *tiny("tmaze")])
    b = train_in_process(tmp_path / "b", ["benchmark=tmaze", "seed=2", *tiny("tmaze")])
    assert a[1] == b[1]


def test_the_command_line_runs_the_tmaze_into_mlflow(tmp_path, store):
    uri, client = store
    proc = run_cli(["benchmark=tmaze", "cell=lstm", "warmup=full", *tiny("tmaze"),
                    f"mlflow.tracking_uri={uri}", "mlflow.experiment=rl",
                    f"hydra.run.dir={tmp_path / 'run'}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test/return" in proc.stdout
    (run,) = client.search_runs([client.get_experiment_by_name("rl").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "lstm-full-tmaze2-s0"
    assert run.data.tags["benchmark"] == "tmaze" and run.data.params["benchmark.length"] == "2"
    for key in ("eval/return", "eval/optimal", "episodes_to_solve", "solved", "test/return",
                "vaa", "attractors", "settled", "warmup/vaa_star"):
        assert key in run.data.metrics, key
    history = client.get_metric_history(run.info.run_id, "eval/return")
    assert sorted(m.step for m in history) == [0, 2, 4, 6]


def test_the_agent_learns_a_short_maze_on_most_seeds(tmp_path):
    """L = 2, 2 x 16 GRU, no warm-up: measured 8 of 8 seeds solved at episode 30 (the first
    evaluation after 0, 10, 20). The bound, 5 of 6 within 150 episodes, fails with probability
    below about 0.3 % if each seed solved with probability 0.95 or more."""
    solved = []
    for seed in range(6):
        result, _ = train_in_process(tmp_path / str(seed), [
            "benchmark=tmaze", "warmup=none", f"seed={seed}", "net.hidden_size=16",
            "benchmark.length=2", "benchmark.episodes=150", "benchmark.capacity=500",
            "benchmark.eval_every=10", "benchmark.eval_rollouts=10",
            "benchmark.stop_when_solved=true", "trainer.progress=false", "vaa.steps=30",
            "vaa.groups=1", "vaa.group_size=16", "vaa.pictures=false"])
        solved.append(result["solved"] == 1.0)
        if solved[-1]:
            assert result["test/return"] == 4.0 and result["episodes_to_solve"] <= 150
    assert sum(solved) >= 5, solved
