"""Install files agree with each other; the CLI fails clearly on bad arguments."""
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from beafx import bench, cli

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_parses_and_mirrors_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] == "beafx"
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    project = _pyproject()["project"]
    wanted = set(project["dependencies"]) | {r for extra in project["optional-dependencies"].values() for r in extra}
    assert set(pip) - {"-e ."} == wanted
    assert "-e ." in pip


def test_pyproject_keeps_ranges_and_extras():
    project = _pyproject()["project"]
    assert "torch>=2.4" in project["dependencies"]  # a range, so Colab's torch is kept
    assert any(d.startswith("ipywidgets>=7.7") for d in project["dependencies"])
    assert {"book", "dev"} <= set(project["optional-dependencies"])
    assert project["scripts"]["beafx"] == "beafx.cli:main"


def test_constraints_pin_the_tested_torch():
    pins = dict(ln.split("==") for ln in (ROOT / "constraints.txt").read_text().splitlines() if "==" in ln)
    assert pins["torch"] == "2.14.1" and pins["torchaudio"] == "2.11.0"
    for name in ("numpy", "scipy", "numba", "nnAudio", "auraloss", "musdb", "lightning", "jupyter-book"):
        assert any(k.lower() == name.lower() for k in pins), name


def test_readme_first_screen_gives_the_two_commands():
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:40])
    assert "make book" in first_screen and "make test" in first_screen


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_cli_rejects_bad_arguments():
    with pytest.raises(SystemExit) as err:
        cli.main(["no-such-command"])
    assert err.value.code == 2
    assert cli.main(["bench", "--only", "nope"]) == 2
    with pytest.raises(ValueError, match="unknown bench group"):
        bench.run(["nope"])


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "beafx.cli", "--help"], capture_output=True, text=True, check=True)
    assert "bench" in out.stdout


def test_bench_writes_readme_section(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{bench.README_START}\nold\n{bench.README_END}\noutro\n")
    bench.write_readme(str(readme), [bench.Line("eq", "demo", 0.5, baseline="base", ratio=2.0)])
    text = readme.read_text()
    assert "old" not in text and "| eq | demo | 0.5000 | 2.00x vs base |" in text
    assert text.startswith("intro\n") and text.endswith("outro\n")
    (tmp_path / "plain.md").write_text("no markers")
    with pytest.raises(ValueError, match="no <!-- bench:start -->"):
        bench.write_readme(str(tmp_path / "plain.md"), [])
