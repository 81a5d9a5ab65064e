"""Will a recipe fit on its GPUs, how long will it take, and what to change when it won't.

Pure arithmetic over the recipe and the model's config.json (no torch, no framework import): models.py (sizes),
images.py (pixels -> visual tokens), activations.py, zero.py (DeepSpeed's formulas), memory_sft.py (ms-swift),
memory_grpo.py (verl + vLLM), time.py, advice.py, recipe_estimate.py (a recipe's stages), report.py, hook.py
(`validate`'s warnings). The formulas, their sources and the calibration are in docs/estimate.md.
"""
