"""Recipe loading: layering (extends, profile, overrides, refs) and collect-all errors with file, line, key, hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakehr_orchestra.recipe import RecipeError, load_recipe
from tests.conftest import RECIPES

ROOT = Path(__file__).resolve().parents[2]
FAKE_HR1 = ROOT / "recipes" / "fake_hr1.yaml"
BASE = """\
name: base
method: fake_hr1
vars: {out: /tmp/out}
sft:
  model: m
  dataset: [d.jsonl]
  output_dir: ${vars.out}/sft
  args:
    learning_rate: 1e-6
    freeze_vit: false
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def problems(exc: pytest.ExceptionInfo[RecipeError]) -> list[str]:
    return [p.render() for p in exc.value.problems]


def test_extends_merges_mappings_and_child_wins(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nname: child\nsft:\n  args:\n    learning_rate: 2e-5\n")
    r = load_recipe(child)
    assert r.model.name == "child"
    assert r.model.sft.args == {"learning_rate": "2e-5", "freeze_vit": False}
    assert r.model.sft.output_dir == "/tmp/out/sft"  # ${vars.out} resolved after merging
    assert r.where("sft.args.learning_rate") == (str(child.resolve()), 5)
    assert r.where("sft.args.freeze_vit")[1] == 10


def test_overrides_set_add_remove_and_dotted_keys():
    r = load_recipe(FAKE_HR1, ["sft.args.learning_rate=3e-6", "+sft.args.seed=7", "~sft.args.deepspeed",
                               "grpo.overrides.trainer.nnodes=2", "cluster.gpus_per_node=8"])
    assert r.model.sft.args["learning_rate"] == "3e-6"
    assert r.model.sft.args["seed"] == 7
    assert "deepspeed" not in r.model.sft.args
    assert r.model.grpo.overrides["trainer.nnodes"] == 2  # flat dotted key found by longest match
    assert r.model.cluster.gpus_per_node == 8


def test_profile_overlays_and_refs_follow_it():
    r = load_recipe(FAKE_HR1, ["vars.fixtures=/fx"], profile="smoke")
    assert r.model.sft.model == "/fx/model"
    assert r.model.sft.args["deepspeed"] is None  # null removes the flag when rendering
    assert r.model.cluster.nodes is None and r.model.cluster.device == "cpu"
    assert r.model.sft.args["train_type"] == "full"  # untouched keys stay


def test_digest_changes_with_the_recipe():
    assert load_recipe(FAKE_HR1).digest() == load_recipe(FAKE_HR1).digest()
    assert load_recipe(FAKE_HR1).digest() != load_recipe(FAKE_HR1, ["sft.args.learning_rate=1"]).digest()


def test_all_problems_are_reported_at_once_with_locations(tmp_path):
    path = write(tmp_path, "bad.yaml", BASE.replace("  model: m\n", "  model: m\n  modle: x\n")
                 + "cluster:\n  nodes: many\n  gpu_per_node: 2\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(path, ["sft.args.lerning_rate=1", "+sft.output_dir=x"])
    text = problems(exc)
    assert len(text) == 5, text
    joined = "\n".join(text)
    assert "sft.modle: unknown key (did you mean 'sft.model'?)" in joined
    assert f"{path}:14: cluster.gpu_per_node: unknown key (did you mean 'cluster.gpus_per_node'?)" in joined
    assert f"{path}:13: cluster.nodes:" in joined and "'many'" in joined
    assert "sft.args.lerning_rate: no such key in the recipe (did you mean 'sft.args.learning_rate'?)" in joined
    assert "already exists; drop the '+'" in joined


def test_missing_required_and_wrong_types(tmp_path):
    path = write(tmp_path, "r.yaml", "name: x\nmethod: nope\nsft: {model: m, output_dir: o, args: []}\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    joined = "\n".join(problems(exc))
    assert "method:" in joined and "'nope'" in joined
    assert "sft.dataset: required key is missing" in joined
    assert "sft.args:" in joined


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "m.yaml", "name: x\nsft:\n  model: a\n   x: 1\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    assert problems(exc) == [f"{path}:4: <root>: malformed YAML: mapping values are not allowed here"]


def test_duplicate_keys_are_errors(tmp_path):
    path = write(tmp_path, "d.yaml", "name: x\nname: y\nmethod: fake_hr1\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    assert problems(exc) == [f"{path}:2: name: duplicate key"]


def test_missing_extends_target_and_cycles(tmp_path):
    path = write(tmp_path, "a.yaml", "extends: nothere.yaml\nname: a\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    assert "extended recipe not found" in problems(exc)[0] and ":1:" in problems(exc)[0]
    write(tmp_path, "x.yaml", "extends: y.yaml\n")
    write(tmp_path, "y.yaml", "extends: x.yaml\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(tmp_path / "x.yaml")
    assert "cycle in extends chain" in problems(exc)[0]


def test_bad_references(tmp_path):
    path = write(tmp_path, "r.yaml", BASE.replace("${vars.out}", "${vars.outt}") + "description: ${description}\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    joined = "\n".join(problems(exc))
    assert "${vars.outt} refers to a key that does not exist (did you mean 'out'?)" in joined
    assert "reference cycle" in joined


def test_unknown_profile_lists_the_available_ones():
    with pytest.raises(RecipeError) as exc:
        load_recipe(FAKE_HR1, profile="smok")
    assert "did you mean 'smoke'?" in problems(exc)[0]


def test_env_refs_stay_for_launch_time():
    r = load_recipe(FAKE_HR1)
    assert r.model.cluster.nodes == "${env:WORLD_SIZE}"


def test_a_schema_field_left_to_its_default_is_set_without_a_plus():
    """data.max_loss is not written in the YAML, but the schema declares it: `key=value` sets it (sections created
    on the way); a free-form key (a new ms-swift flag) still needs `+`, so a typo cannot slip in."""
    recipe = load_recipe(RECIPES / "fake_hr1.yaml", ["data.max_loss=0.5", "cluster.slurm.partition=gpu"])
    assert recipe.model.data.max_loss == 0.5 and recipe.model.cluster.slurm.partition == "gpu"
    with pytest.raises(RecipeError, match="did you mean 'sft.args.learning_rate'"):
        load_recipe(RECIPES / "fake_hr1.yaml", ["sft.args.lerning_rate=1"])
    with pytest.raises(RecipeError, match="no such key"):
        load_recipe(RECIPES / "fake_hr1.yaml", ["data.max_los=0.5"])


def test_a_profile_has_a_variant_per_method(tmp_path):
    """`--profile demo` takes profiles/demo.fakevlm_r1.yaml for a FakeVLM-R1 recipe (it extends demo.yaml), and
    profiles/demo.yaml for any other method; the variant is no profile of its own in the listing."""
    vlm = load_recipe(RECIPES / "fakevlm_r1.yaml", profile="demo")
    hr1 = load_recipe(RECIPES / "fake_hr1.yaml", profile="demo")
    assert vlm.model.sft.args["max_steps"] == 320 and hr1.model.sft.args["max_steps"] == 300
    assert [s.name for s in vlm.model.data.sources] == ["fakeclue", "fakeclue_test"]
    assert [s.name for s in hr1.model.data.sources] == ["genimage", "fakeclue"]
    assert vlm.model.prompt.system == hr1.model.prompt.system == "Is it real or fake?"  # demo.yaml's, inherited
    assert vlm.positions[("sft", "args", "max_steps")][0].endswith("demo.fakevlm_r1.yaml")
    own = tmp_path / "profiles"
    own.mkdir()
    (own / "quick.yaml").write_text("sft:\n  args:\n    max_steps: 3\n")
    (own / "quick.fake_hr1.yaml").write_text("extends: quick.yaml\nsft:\n  args:\n    max_steps: 4\n")
    (tmp_path / "r.yaml").write_text((RECIPES / "fake_hr1.yaml").read_text().replace(
        "${shipped:recipes/_common.yaml}", str(RECIPES / "_common.yaml")))
    assert load_recipe(tmp_path / "r.yaml", profile="quick").model.sft.args["max_steps"] == 4
    with pytest.raises(RecipeError) as err:
        load_recipe(tmp_path / "r.yaml", profile="quik")
    assert "quick" in str(err.value) and "quick.fake_hr1" not in str(err.value)
