"""The prompt a method trains with: one source for SFT flags, data export and evaluation."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from .base import Strict


class PromptSection(Strict):
    system: Optional[str] = Field(None,
                                  description="Written as ms-swift receives them on its command line: a literal "
                                              "backslash-n is turned into a newline by ms-swift itself "
                                              "(TemplateArguments.__post_init__); "
                                              "`fakehr_orchestra.prompts.effective` does the same for us.")
    user: str = "<image>Is this image real or fake?"
    response_prefix: Optional[str] = None
    answer_format: Literal["fake_hr1", "fakevlm_r1"] = "fake_hr1"
