"""A reward plugin that cannot be imported (a dependency missing where the job runs)."""
import fakehr_no_such_dependency  # noqa: F401


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    return 0.0
