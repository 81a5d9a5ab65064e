"""engines.torchrun: a plan rewritten for the nodes torchrun runs it on, references tracked."""

from __future__ import annotations

from fakehr_orchestra.engines.plan import Plan
from fakehr_orchestra.engines.torchrun import with_nodes, without_torchrun_env


def test_with_nodes_sets_torchrun_env_and_tracks_refs():
    plan = Plan(stage="sft", argv=["swift", "sft"], env={"NNODES": "${WORLD_SIZE}", "NODE_RANK": "${RANK}",
                                                         "HF_HUB_OFFLINE": "1"}, env_refs=["WORLD_SIZE", "RANK"])
    node = with_nodes(plan, nodes=2, node_rank="${SLURM_NODEID}", master_addr="127.0.0.1", master_port=29511,
                      nproc_per_node=1)
    assert node.env == {"NNODES": "2", "NODE_RANK": "${SLURM_NODEID}", "HF_HUB_OFFLINE": "1",
                        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29511", "NPROC_PER_NODE": "1"}
    assert node.env_refs == ["SLURM_NODEID"]  # WORLD_SIZE / RANK are no longer read
    assert 'NODE_RANK="${SLURM_NODEID}"' in node.to_shell()
    kept = with_nodes(plan, master_addr="10.0.0.1")
    assert kept.env_refs == ["WORLD_SIZE", "RANK"] and kept.env["NNODES"] == "${WORLD_SIZE}"
    bare = without_torchrun_env(plan)
    assert bare.env == {"HF_HUB_OFFLINE": "1"} and bare.env_refs == []
