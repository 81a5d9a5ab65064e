"""A real verl GRPO-stage checkpoint on CPU: `python -m tests.integration.verl_checkpoint_child MODEL OUT [STEPS]`.

The actor is trained for a few optimizer steps and saved by verl's own `FSDPCheckpointManager`, in the layout verl's
trainer writes: OUT/global_step_<STEPS>/actor (the rank's model / optim / extra-state shards, fsdp_config.json,
huggingface/ with config, generation config and processor) and OUT/latest_checkpointed_iteration.txt.

What a CPU cannot run is replaced, not patched inside verl:
- verl's FSDP engine (workers/engine/fsdp/transformer_impl.py) wraps the model with `device_id=get_device_id()`, the
  current accelerator (torch.cuda here, which raises without a driver), inside a Ray worker. Here the model is wrapped
  with the same FSDP1 call and verl's own wrap policy (`get_fsdp_wrap_policy`) and device mesh shape, on the CPU
  (`device_id=cpu`), in one process with torch.distributed over gloo (world size 1). verl also passes
  `sync_module_states=True` (rank 0 broadcasts its weights), which FSDP refuses for CPU parameters; with one rank
  there is nothing to broadcast, so it is off.
- The loss is a plain next-token loss on a few chat rows, not GRPO's (which needs rollouts from vLLM/SGLang): the
  checkpoint's format does not depend on the loss.
- The tracker file is written as the trainer writes it (trainer/ppo/v1/trainer_base.py `_save_checkpoint`: the step
  number into default_local_dir/latest_checkpointed_iteration.txt); the trainer itself needs the GPU workers.
verl's checkpoint code itself runs unpatched: it offloads to CPU only when CUDA is available and saves the RNG state of
an accelerator only when one is.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

ROWS = [("Is this image real or fake?", "fake"), ("Look closely. Real or fake?", "real")]


def main(model_dir: str, out_dir: str, steps: int = 2) -> dict[str, str]:
    import torch
    import torch.distributed as dist
    from omegaconf import OmegaConf
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp import ShardingStrategy
    from transformers import AutoProcessor
    from verl.utils.checkpoint.fsdp_checkpoint_manager import FSDPCheckpointManager
    from verl.utils.fsdp_utils import get_fsdp_wrap_policy
    from verl.utils.transformers_compat import get_auto_model_for_vision2seq

    with tempfile.TemporaryDirectory() as rendezvous:
        dist.init_process_group("gloo", init_method=f"file://{rendezvous}/pg", rank=0, world_size=1)
        try:
            torch.manual_seed(0)
            model = get_auto_model_for_vision2seq().from_pretrained(model_dir, dtype=torch.float32)
            processor = AutoProcessor.from_pretrained(model_dir)
            mesh = init_device_mesh("cpu", mesh_shape=(1,), mesh_dim_names=("fsdp",))
            module = FSDP(model, auto_wrap_policy=get_fsdp_wrap_policy(model, config=None),
                          device_id=torch.device("cpu"), sharding_strategy=ShardingStrategy.FULL_SHARD,
                          device_mesh=mesh, sync_module_states=False, use_orig_params=False)
            optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)  # verl's constant schedule
            tok = processor.tokenizer
            texts = [tok.apply_chat_template([{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                                             tokenize=False) for q, a in ROWS]
            losses = []
            for _ in range(steps):
                for text in texts:
                    ids = tok(text, return_tensors="pt")["input_ids"]
                    loss = module(input_ids=ids, labels=ids).loss
                    loss.backward()
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                    losses.append(float(loss))
            manager = FSDPCheckpointManager(model=module, optimizer=optimizer, lr_scheduler=scheduler,
                                            processing_class=processor,
                                            checkpoint_config=OmegaConf.create(
                                                {"save_contents": ["model", "optimizer", "extra"],
                                                 "load_contents": ["model", "optimizer", "extra"]}))
            actor = Path(out_dir) / f"global_step_{steps}" / "actor"
            manager.save_checkpoint(str(actor), global_step=steps, max_ckpt_to_keep=None)
            (Path(out_dir) / "latest_checkpointed_iteration.txt").write_text(str(steps))
        finally:
            dist.destroy_process_group()
    return {"actor": str(actor), "losses": json.dumps(losses)}


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 2)))
