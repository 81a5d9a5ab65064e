"""A reward plugin that raises on real ground truth (it expects a convention the data does not use)."""

MAP = {0: "fake", 1: "real"}


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    return float(MAP[ground_truth] in solution_str)  # KeyError: the data says "real" / "fake"
