"""The one plugin loader (fakehr_orchestra/plugins.py): one sys.modules policy for every plugin file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from fakehr_orchestra.plugins import PluginLoadError, load_plugin_file, load_plugin_function, module_name
from fakehr_orchestra.resources import ShippedFileError, shipped_dir, shipped_file


def _write(path: Path, text: str, mtime_ns: int | None = None) -> Path:
    path.write_text(text)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def test_loaded_once_registered_while_running_and_reloaded_when_changed(tmp_path: Path) -> None:
    plugin = _write(tmp_path / "p.py", "import sys\nRUNS = 1\nSEEN = __name__ in sys.modules\n", 10**18)
    first = load_plugin_file(plugin)
    assert first.SEEN  # registered before its code ran (dataclasses and pickling look the module up)
    assert load_plugin_file(str(plugin)) is first  # the same file: the same module, its code ran once
    assert sys.modules[module_name(plugin.resolve())] is first
    _write(plugin, "RUNS = 2\nSEEN = True\n", 2 * 10**18)
    assert load_plugin_file(plugin).RUNS == 2  # changed on disk: loaded again


def test_relative_paths_are_taken_from_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "q.py", "def compute_score(**kw):\n    return 1.0\n")
    monkeypatch.chdir(tmp_path)
    assert load_plugin_function("q.py", "compute_score")() == 1.0


def test_failures_are_typed_and_leave_sys_modules_clean(tmp_path: Path) -> None:
    broken = _write(tmp_path / "broken.py", "raise SystemExit('no')\n")
    before = set(sys.modules)
    with pytest.raises(PluginLoadError, match="fails to import: SystemExit: no") as info:
        load_plugin_file(broken)
    assert isinstance(info.value.__cause__, SystemExit)
    assert set(sys.modules) == before
    with pytest.raises(PluginLoadError, match="no such file"):
        load_plugin_file(tmp_path / "nope.py")
    ok = _write(tmp_path / "ok.py", "def helper():\n    pass\n")
    with pytest.raises(PluginLoadError, match=r"has no function 'compute_score' \(it has: helper\)"):
        load_plugin_function(ok, "compute_score")


def test_shipped_rewards_share_one_helper_module() -> None:
    hr1 = load_plugin_file(shipped_file("rewards/fake_hr1.py"))
    vlm = load_plugin_file(shipped_file("rewards/fakevlm_r1.py"))
    assert hr1._shared is vlm._shared  # rewards/_shared.py loaded once, by either plugin


def test_shipped_files_are_real_and_a_typo_names_what_exists() -> None:
    assert (shipped_dir("launch") / "sbatch_torchrun.sh.tmpl").is_file()
    with pytest.raises(ShippedFileError, match="rewards/ has: .*fake_hr1.py"):
        shipped_file("rewards/fake_hr2.py")
    with pytest.raises(ShippedFileError, match="must start with one of"):
        shipped_file("elsewhere/x.py")
