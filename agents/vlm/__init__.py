"""The VLM agent: a vision-language model that calls restoration tools.

Modules, bottom-up:

* :mod:`agents.vlm.errors`: named errors (missing or corrupt model folders, templates).
* :mod:`agents.vlm.model`: load a real VLM from a local folder, or build a tiny one from a
  config; LoRA adapters.
* :mod:`agents.vlm.prompt`: the system prompt (tool schema from the registry) and the turns.
* :mod:`agents.vlm.parse`: the strict parser of the model's answers.
* :mod:`agents.vlm.policy`: token-level dialogues, sampling and scoring.
* :mod:`agents.vlm.trajectories`, :mod:`agents.vlm.perturb`: expert trajectories and their
  random perturbation.
* :mod:`agents.vlm.sft`, :mod:`agents.vlm.grpo`: the training recipes.
* :mod:`agents.vlm.agent`: the ``vlm`` agent of the leaderboard and ``tir restore``.

The experiment scripts (perturbation diversity, learning-curve report, GPU check) live in
``benchmarks/`` (``vlm_diversity``, ``vlm_report``, ``vlm_gpu_check``).

Nothing heavy is imported here: ``transformers`` and ``peft`` load inside the modules that use
them.
"""
