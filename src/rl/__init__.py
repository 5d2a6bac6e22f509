"""Reinforcement learning: the T-Maze (:mod:`src.rl.tmaze`), a DRQN (:mod:`src.rl.drqn`) and
the benchmark the pipeline runs (``benchmark=tmaze``, :mod:`src.rl.task`)."""
