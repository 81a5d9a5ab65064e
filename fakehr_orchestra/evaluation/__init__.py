"""Evaluation: batch inference (infer/), metrics (metrics.py) and reports (report.py, plots.py).

Inference asks exactly what training taught (the recipe's prompt, the model's chat template, the SFT max_pixels,
the response prefix) and parses answers with the one parser, `fakehr_orchestra.answers.parse_answer`.
"""
