"""How a rehearsal child words a failure: the exception's type and message, and the causes a framework wrapped."""

from __future__ import annotations

from fakehr_orchestra.rehearsal.protocol import describe


class RecipeError(Exception):
    pass


def test_a_message_that_announces_a_list_keeps_the_list() -> None:
    exc = RecipeError("1 problem in recipe:\n  data.sources[1].image_root: /nowhere does not exist\n")
    assert describe(exc) == "RecipeError: 1 problem in recipe: data.sources[1].image_root: /nowhere does not exist"


def test_other_messages_keep_their_first_line_and_the_causes() -> None:
    try:
        try:
            raise ImportError("No module named 'fakehr_no_such_dependency'\n(a long traceback note)")
        except ImportError as inner:
            raise RuntimeError("Error loading module rewards/broken.py") from inner
    except RuntimeError as exc:
        text = describe(exc)
    assert text == ("RuntimeError: Error loading module rewards/broken.py <- caused by ImportError: No module named "
                    "'fakehr_no_such_dependency'")


def test_an_empty_message_gives_the_type() -> None:
    assert describe(KeyError()) == "KeyError: "
