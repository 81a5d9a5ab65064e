"""The critic: the judge model FakeVLM-R1's logical-consistency reward asks (an OpenAI-compatible chat endpoint).

This section is the ONE place that says where the critic is. The pipeline hands its URL and client settings to the
reward as reward kwargs (`critic_base_url`, `critic_model`, ...; see `engines/critic.py`), so a recipe never writes
an address into `grpo.reward.kwargs`.

  mode: off        no critic: the reward drops the consistency component and renormalises the others
  mode: external   a server someone else runs, at `url`; `validate` calls it once (models list + a judged request)
  mode: server     the pipeline starts the server (`server:`: vLLM's OpenAI server, as SophiaVL-R1 serves its critic, or
                   `swift deploy`) before GRPO, waits until it answers, and stops it (its whole process tree) when
                   the stage ends, fails or is interrupted

The GPU share (`server.gpus()`, `server.gpu_memory_utilization`) is data here so that planning tools can count it.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from .base import EnvMap, EnvName, FreeForm, Strict


class CriticServerSection(Strict):
    engine: Literal["swift", "vllm"] = Field("swift",
                                             description="swift: `swift deploy` (ms-swift's OpenAI-compatible server); "
                                                         "vllm: vLLM's own OpenAI server (what `vllm serve` runs; on a CPU "
                                                         "machine vLLM's CPU build)")
    backend: Literal["vllm", "transformers"] = Field("vllm",
                                                     description="swift only: vllm (swift deploy --infer_backend "
                                                                 "vllm); transformers: the same API on CPU or GPU "
                                                                 "(smoke, tests). vLLM's own server is always vllm")
    model: str = Field(description="weights: a local folder (or a hub id); served under critic.served_model_name")
    host: str = Field("127.0.0.1",
                      description="bind address (0.0.0.0 when reward workers on other nodes must reach it)")
    port: int = Field(8000, ge=1, le=65535)
    max_model_len: Optional[int] = Field(None, ge=1,
                                         description="vllm: --vllm_max_model_len; transformers: --max_length")
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0, description="vllm: share of each of its GPUs")
    tensor_parallel_size: int = Field(1, ge=1, description="vllm")
    data_parallel_size: int = Field(1, ge=1, description="vllm: replicas (throughput)")
    cuda_visible_devices: Optional[str] = Field(None,
                                                description="Which GPUs of the node it runs on (CUDA_VISIBLE_DEVICES "
                                                            "of the server); null: inherit the environment.")
    node: Literal["shared", "own"] = Field("shared",
                                           description="shared: on the node that runs the pipeline (the GRPO head "
                                                       "node), on `cuda_visible_devices`, which training must not "
                                                       "use; own: a node of the allocation to itself (a scheduler "
                                                       "places it; a local run cannot)")
    ready_timeout_s: float = Field(900.0, gt=0.0, description="start -> answering; the stage fails after it")
    env: EnvMap = Field(default_factory=dict)
    args: FreeForm = Field(default_factory=dict,
                           description="any other flag of the engine's server (`swift deploy --flag value`, "
                                       "vLLM's server `--flag value`), as the flag is spelt; vllm: true/false give "
                                       "--flag / --no-flag")

    @model_validator(mode="after")
    def _engine_backend(self) -> "CriticServerSection":
        if self.engine == "vllm" and self.backend != "vllm":
            raise ValueError("critic.server.backend transformers is ms-swift's (engine: swift); vLLM's server "
                             "(engine: vllm) is vLLM itself: leave backend at vllm")
        return self

    def gpus(self) -> int:
        """Whole GPUs the server reserves (0 for the transformers backend on CPU is the caller's call)."""
        if self.backend == "vllm":
            return self.tensor_parallel_size * self.data_parallel_size
        listed = [d for d in (self.cuda_visible_devices or "").split(",") if d.strip()]
        return len(listed)


class CriticSection(Strict):
    mode: Literal["off", "external", "server"] = "off"
    url: Optional[str] = Field(None,
                               description="external: required; server: null = http://127.0.0.1:<port>/v1 on this "
                                           "node")
    served_model_name: str = Field("critic", description="what requests ask for and /v1/models must list")
    api_key_env: Optional[EnvName] = Field(None,
                                       description="env var holding the key (sent by the reward; required by a "
                                                   "started server)")
    timeout_s: float = Field(30.0, gt=0.0, description="per request")
    concurrency: int = Field(16, ge=1, description="requests in flight per reward process")
    retries: int = Field(2, ge=0)
    fallback_score: float = Field(0.5, ge=0.0, le=1.0,
                                  description="consistency when the critic fails or answers garbage")
    max_tokens: Optional[int] = Field(64, ge=1,
                                      description="reply token limit sent with each request; null: none sent, as "
                                                  "SophiaVL-R1 asks its judge (swift deploy then allows max_model_len "
                                                  "minus the prompt: ms-swift 4.6 InferEngine.set_default_max_tokens)")
    template: Literal["json_score", "sophiavl_r1"] = Field(
        "json_score",
        description="how the judge is asked and its reply read (fakehr_orchestra/critic/templates.py): json_score "
                    "(ours: reply {\"score\": x}) or sophiavl_r1 (SophiaVL-R1's thinking reward model's own prompt "
                    "and <answer>x</answer> extraction; its judge was trained on it)")
    server: Optional[CriticServerSection] = None

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `off` as false: take it as the word it was meant to be
        return "off" if value is False else value

    @model_validator(mode="after")
    def _mode_needs(self) -> "CriticSection":
        if self.mode == "external" and not self.url:
            raise ValueError("critic.mode is external but critic.url is not set (e.g. http://host:8000/v1)")
        if self.mode == "server" and self.server is None:
            raise ValueError("critic.mode is server but there is no critic.server section (at least its model)")
        if self.url is not None and not self.url.startswith(("http://", "https://", "${env:")):
            raise ValueError(f"critic.url must start with http:// or https://, got {self.url!r}")
        return self
