"""Stable-Baselines3 PPO for ``TIR-v0``: catalogue, features extractor, VecEnv adapter, recipe.

* :mod:`agents.ppo.catalogue`: the tool x preset actions of the shipped policy.
* :mod:`agents.ppo.actions`: the action spaces (catalogue presets, or tools with chosen
  parameter bins).
* :mod:`agents.ppo.features`: ``TIRFeatures``, CNN over current + input image, MLP over history.
* :mod:`agents.ppo.vec_env`: ``TIRSB3VecEnv``, SB3 ``VecEnv`` over the batched ``TIRVectorEnv``.
* :mod:`agents.ppo.train`: the training recipe (``tir train ppo``).
* :mod:`agents.ppo.policy`: export/load the deployable policy (safetensors + JSON).
* :mod:`agents.ppo.agent`: the registered ``ppo`` agent.

The learning curve of a run (CSV + PNG) is an experiment script: :mod:`benchmarks.ppo_curve`.
Importing this package imports nothing heavy; SB3 loads with the modules that need it.
"""
