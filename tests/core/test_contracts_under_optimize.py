"""The contract suites of `magnetkit.testing` must check under ``python -O`` too, where ``assert`` vanishes."""

import ast
import subprocess
import sys
from pathlib import Path

import magnetkit.testing

SUITES = sorted(Path(magnetkit.testing.__file__).parent.glob("*.py"))


def test_no_contract_check_is_a_bare_assert():
    bare = [f"{path.name}:{node.lineno}" for path in SUITES for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Assert)]
    assert len(SUITES) >= 8 and bare == []


def test_a_broken_component_fails_its_contract_under_python_O():
    script = """
import sys
from magnetkit.testing.codec_contract import check_attributes
from magnetkit.testing.conditioner_contract import check_conditioner
from magnetkit.testing.embedder_contract import check_embedder
failed = []
no_width = type("NoWidth", (), {"output_dim": 0})()
for check, broken in ((check_attributes, object()), (check_conditioner, no_width), (check_embedder, object())):
    try:
        check(broken)
    except AssertionError as error:
        failed.append(str(error))
print(sys.flags.optimize, len(failed))
print(*failed, sep="\\n")
"""
    run = subprocess.run([sys.executable, "-O", "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "1 3"
    assert "lacks part of the Codec protocol" in lines[1]
    assert "output_dim must be a positive int" in lines[2]
    assert "magnetkit.Embedder" in lines[3]
