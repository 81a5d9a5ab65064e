"""A reward plugin whose function has another name: verl would fail to find compute_score."""


def score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    return 0.0
