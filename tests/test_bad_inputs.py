"""A table of bad inputs: each ends in one clear ``error:`` line and a non-zero exit, never a traceback.

CLI cases run ``magnetkit.cli.main([...])`` in-process; API cases call the public functions. The
`generate` command line's own parsing (long prompts, overrides after options, output paths) is
tested with that command.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from magnetkit.cli import main
from magnetkit.errors import NonFiniteError, PluginError, RecipeError, UsageError
from magnetkit.model.config import ModelConfig
from magnetkit.model.transformer import MagnetTransformer
from magnetkit.pipeline import Pipeline
from magnetkit.plugins import register_plugin, unregister_plugin
from magnetkit.recipe import RECIPES_DIR, load_recipe
from magnetkit.testing import FakeCodec, FakeCodecConfig, FakeConditioner, FakePlugin

OFFICIAL = "magnet-small-10secs"  # validated only: nothing is downloaded


def run_main(capsys, *argv: str) -> tuple[int, str]:
    """Exit code and stderr of the CLI run in-process (argparse's own exits included)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse: usage errors exit 2 by themselves
        code = exc.code
    return code, capsys.readouterr().err


def assert_one_error(code: int, err: str, *expected: str) -> None:
    assert code not in (0, None), err
    assert "Traceback" not in err, err
    error_lines = [line for line in err.splitlines() if line.startswith(("error:", "magnetkit")) and "error:" in line]
    assert len(error_lines) == 1, err
    for text in expected:
        assert text in err, f"{text!r} not in {err!r}"


# --------------------------------------------------------------------------- files used below
@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "self.yaml").write_text("# includes itself\ncheckpoint: self.yaml\ncodec: {name: speccodec}\n"
                                        "conditioner: {name: t5}\n")
    components = "codec: {name: speccodec}\nconditioner: {name: t5}\n"
    (tmp_path / "a.yaml").write_text("# a -> b -> a\ncheckpoint: b.yaml\n" + components)
    (tmp_path / "b.yaml").write_text("# b -> a\ncheckpoint: a.yaml\n" + components)
    (tmp_path / "latin1.yaml").write_bytes("# r\xe9sum\xe9\ncodec: {name: speccodec}\n".encode("latin-1"))
    (tmp_path / "list.yaml").write_text("# not a mapping\n- 1\n- 2\n")
    (tmp_path / "syntax.yaml").write_text("# broken\ncodec: {name: [\n")
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)))
    (tmp_path / "no_state").mkdir()
    (tmp_path / "no_state" / "recipe.yaml").write_text("codec: {name: speccodec}\n")
    (tmp_path / "a_file").write_text("x")
    return {name: str(tmp_path / name) for name in
            ("self.yaml", "a.yaml", "latin1.yaml", "list.yaml", "syntax.yaml", "binary.yaml", "no_state", "a_file")} | {
        "tmp": str(tmp_path)}


# (argv, expected substrings); "{name}" is replaced by the file fixture's path
CLI_CASES = [
    (["validate", OFFICIAL, "generation.duration=inf"], ["generation.duration: Input should be a finite number"]),
    (["validate", OFFICIAL, "generation.cfg_max=inf"], ["generation.cfg_max: Input should be a finite number"]),
    (["validate", OFFICIAL, "generation.cfg_min=.nan"], ["generation.cfg_min"]),
    (["validate", OFFICIAL, "sampler.top_p=nan"], ["sampler.top_p"]),
    (["validate", OFFICIAL, "model.dim=inf"], ["model.dim"]),
    (["validate", OFFICIAL, "generaton.duration=1"], ["unknown section 'generaton'; did you mean 'generation'?"]),
    (["validate", OFFICIAL, "generation.duraton=1"], ["generation.duraton: unknown key; did you mean 'duration'?"]),
    (["validate", OFFICIAL, "sampler.top_pp=0.5"], ["sampler.top_pp: unknown key; did you mean 'top_p'?"]),
    (["validate", OFFICIAL, "generation.duration=-1", "sampler.top_p=2", "bogus.x=1", "scheduler.name=nope"],
     ["4 problems", "generation.duration", "sampler.top_p", "unknown section 'bogus'", "unknown scheduler 'nope'"]),
    (["validate", OFFICIAL, "nokey", "=1", "a..b=2"], ["3 problems", "'nokey'", "'=1'", "'a..b=2'"]),
    (["validate", OFFICIAL, "codec.name.x=1"], ["codec.name: is not a section"]),
    (["validate", OFFICIAL, "generation.decoding_steps=[100000,1,1,1]"], ["at most 1000 decoding steps"]),
    (["validate", OFFICIAL, "generation.decoding_steps=[]"], ["generation.decoding_steps"]),
    (["validate", OFFICIAL, "generation.decoding_steps=[0,1,1,1]"], ["at least 1 decoding step"]),
    (["validate", OFFICIAL, "generation.seed=99999999999999999999999"], ["generation.seed"]),
    (["validate", OFFICIAL, "generation.seed=-1"], ["generation.seed"]),
    (["validate", OFFICIAL, "generation.duration=abc"], ["generation.duration"]),
    (["validate", OFFICIAL, "generation.duration="], ["generation.duration"]),
    (["validate", OFFICIAL, "train.lr=inf"], ["train.lr: Input should be a finite number"]),
    (["validate", OFFICIAL, "train.steps=-5"], ["train.steps"]),
    (["validate", "{self.yaml}"], ["the recipe includes itself (self.yaml -> self.yaml)"]),
    (["validate", "{a.yaml}"], ["includes itself (a.yaml -> b.yaml -> a.yaml)"]),
    (["validate", "{latin1.yaml}"], ["not UTF-8"]),
    (["validate", "{binary.yaml}"], ["not UTF-8"]),
    (["validate", "{list.yaml}"], ["a recipe must be a mapping"]),
    (["validate", "{syntax.yaml}"], ["not valid YAML"]),
    (["validate", "no-such-recipe"], ["no recipe file or shipped recipe named 'no-such-recipe'"]),
    (["validate", ""], ["no recipe file"]),
    (["validate", "{tmp}"], ["no recipe file"]),
    (["components", "--kind", "nope"], ["invalid choice"]),
    (["nope"], ["invalid choice"]),
    (["train", "{self.yaml}"], ["includes itself"]),
    (["train", "{no_state}"], ["is a folder but not a checkpoint"]),
    (["prepare-data", "{latin1.yaml}"], ["not UTF-8"]),
    (["evaluate-adherence", "--threads", "0"], ["--threads must be at least 1"]),
    (["codec-fidelity", "--threads", "0"], ["--threads must be at least 1"]),
    (["eval", "{tmp}", "{tmp}", "--metrics", "nope"], ["unknown metric"]),
    (["web", "--port", "0"], ["--port must be between 1 and 65535"]),
]


@pytest.mark.parametrize("argv,expected", CLI_CASES, ids=[" ".join(a)[:60] for a, _ in CLI_CASES])
def test_cli_bad_input_is_one_error_line(argv, expected, files, capsys):
    code, err = run_main(capsys, *[files[a[1:-1]] if a.startswith("{") else a for a in argv])
    assert_one_error(code, err, *expected)


# The embedded default model loads in about a second: cases that need a loaded pipeline.
GENERATE_CASES = [
    (["generation.duration=1e9"], ["too long", "at most"]),
    (["generation.duration=0.001"], ["shorter than the shortest clip", "0.06 s"]),
    (["--device", "cuda"] if not torch.cuda.is_available() else ["--device", "cuda:99"], ["--device cuda"]),
    (["--device", "banana"], ["device 'banana'"]),
    (["sampler.temperature=3.0"], ["sampler.temperature: this override has no effect", "stage_temperatures"]),
    (["generation.seed=18446744073709551616"], ["generation.seed"]),
    (["decode.precision=float16"] if not torch.cuda.is_available() else ["decode.precision=float64"], ["float16"]),
]


@pytest.mark.parametrize("extra,expected", GENERATE_CASES, ids=[" ".join(a) for a, _ in GENERATE_CASES])
def test_generate_bad_input_is_one_error_line(extra, expected, tmp_path, capsys, one_thread):
    overrides = [a for a in extra if "=" in a]  # before the options: `generate` parses them there
    options = [a for a in extra if "=" not in a]
    code, err = run_main(capsys, "generate", "a slow low sine", *overrides, "-o", str(tmp_path / "out"), "--quiet",
                         *options)
    assert "unrecognized" not in err
    assert_one_error(code, err, *expected)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_generate_from_a_folder_without_weights_says_so(files, tmp_path, capsys):
    code, err = run_main(capsys, "generate", files["no_state"], "a slow low sine", "-o", str(tmp_path / "o"))
    assert_one_error(code, err, "is a folder but not a checkpoint", "model.safetensors", "found: recipe.yaml")
    assert "no recipe named" not in err


def test_the_winning_setting_can_be_changed_instead(capsys):
    from magnetkit.loading import default_model_path

    path = str(default_model_path())
    assert main(["validate", path, "sampler.temperature=0.5", "sampler.stage_temperatures=null"]) == 0
    assert main(["validate", path, "sampler.stage_temperatures=[0.5,0.1,0.1,0.1]"]) == 0


# --------------------------------------------------------------------------- property-based
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e9, 1e300, -0.0, 5e-324])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["generation.duration", "generation.cfg_max", "generation.cfg_min",
                            "generation.window_overlap", "sampler.top_p", "sampler.temperature", "model.dim",
                            "scheduler.span_len", "train.lr"]), value=FLOATS)
def test_any_number_validates_or_is_a_recipe_error(key, value):
    text = {math.inf: ".inf", -math.inf: "-.inf"}.get(value, ".nan" if value != value else repr(value))
    try:
        recipe = load_recipe(OFFICIAL, [f"{key}={text}"])
    except RecipeError as exc:
        assert key.split(".")[0] in str(exc)
        return
    assert math.isfinite(value)  # a non-finite number never validates
    section, name = key.split(".")
    part = getattr(recipe, section)
    assert part is not None


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=30), max_size=4))
def test_any_override_text_validates_or_is_a_recipe_error(overrides):
    try:
        load_recipe(OFFICIAL, overrides)
    except RecipeError as exc:
        assert str(exc)


# --------------------------------------------------------------------------- Python API
@pytest.fixture(scope="module")
def fakes():
    register_plugin(FakePlugin(), "fakes")
    yield
    unregister_plugin("fakes")


def pipeline(*overrides: str, codec=None, conditioner=None, model=None) -> Pipeline:
    recipe = load_recipe({"codec": {"name": "fake", "cardinality": 64}, "conditioner": {"name": "fake"},
                          "generation": {"duration": 0.5, "decoding_steps": [2, 1, 1, 1], "progress": False}},
                         list(overrides))
    torch.manual_seed(0)
    model = model or MagnetTransformer(ModelConfig(dim=32, num_heads=2, num_layers=2, num_codebooks=4,
                                                   cardinality=64, segment_duration=1.0))
    return Pipeline(recipe, model, conditioner or FakeConditioner(output_dim=32),
                    codec or FakeCodec(FakeCodecConfig(cardinality=64)), device="cpu")


API_CASES = [
    (dict(texts=b"lofi beat"), "texts must be str or a list of str, got bytes"),
    (dict(texts=[b"lofi"]), "texts[0] must be str or None, got bytes"),
    (dict(texts=["ok", 3]), "texts[1] must be str or None, got int"),
    (dict(texts=42), "texts must be str, a list of str or None, got int"),
    (dict(texts=[]), "give at least one text"),
    (dict(texts=["ok", "x" * 5000]), "texts[1] is 5000 characters long; at most 4096"),
    (dict(texts="x", negative="y" * 5000), "negative[0] is 5000 characters long"),
    (dict(texts=["  "]), "a text prompt is empty"),
    (dict(texts=["ok\udcff"]), "texts[0] is not valid Unicode text"),
    (dict(texts=None, num_samples=0), "num_samples must be >= 1, got 0"),
    (dict(texts=None, num_samples=-2), "num_samples must be >= 1"),
    (dict(texts=None, num_samples=True), "num_samples must be an integer, got bool"),
    (dict(texts=None, num_samples=2.0), "num_samples must be an integer, got float"),
    (dict(texts="x", num_samples=3), "num_samples counts unconditional clips"),
    (dict(texts="x", duration=float("nan")), "duration must be a finite number, got nan"),
    (dict(texts="x", duration=float("inf")), "duration must be a finite number, got inf"),
    (dict(texts="x", duration="3"), "duration must be a number, got str"),
    (dict(texts="x", duration=-1), "duration must be > 0"),
    (dict(texts="x", duration=0), "duration must be > 0"),
    (dict(texts="x", duration=1e12), "too long"),
    (dict(texts="x", duration=0.001), "shorter than the shortest clip"),
    (dict(texts="x", seed=2**64), "seed must be <= 9223372036854775807"),
    (dict(texts="x", seed=-1), "seed must be >= 0"),
    (dict(texts="x", seed=1.5), "seed must be an integer, got float"),
    (dict(texts="x", seed="1"), "seed must be an integer, got str"),
    (dict(texts="x", negative=b"drums"), "negative must be str or a list of str, got bytes"),
    (dict(texts="x", negative=["a", "b"]), "give one negative prompt or one per text (1), got 2"),
    (dict(texts="x", progress="yes"), "progress must be True, False or None"),
    (dict(texts="x", callback=3), "callback must be a callable"),
]


@pytest.mark.parametrize("kwargs,message", API_CASES, ids=[m[:40] for _, m in API_CASES])
def test_generate_checks_its_arguments(fakes, kwargs, message, one_thread):
    with pytest.raises(UsageError) as info:
        pipeline().generate(**kwargs)
    assert message in str(info.value)


def test_api_audio_and_infill_arguments(fakes, one_thread):
    pipe = pipeline()
    wav = torch.zeros(1, 8000)
    cases = [
        (lambda: pipe.continue_audio([0.0] * 100, 8000, "x", duration=1.0), "audio must be a torch.Tensor"),
        (lambda: pipe.continue_audio(wav, 0, "x", duration=1.0), "sample_rate must be >= 1"),
        (lambda: pipe.continue_audio(wav, 8000.5, "x", duration=1.0), "sample_rate must be an integer"),
        (lambda: pipe.continue_audio(torch.zeros(1, 0), 8000, "x"), "with samples"),
        (lambda: pipe.continue_audio(torch.zeros(1, 1), 8000, "x", duration=1.0), "less than one codec frame"),
        (lambda: pipe.continue_audio(torch.zeros(1, 100), 10**9, "x", duration=1.0), "the audio is too short"),
        (lambda: pipe.continue_audio(torch.zeros(1, 10, dtype=torch.long), 8000, "x"), "float samples"),
        (lambda: pipe.continue_audio(torch.full((1, 100), float("nan")), 8000, "x"), "NaN"),
        (lambda: pipe.continue_audio(torch.zeros(2, 1, 800), 8000, ["a", "b", "c"], duration=1.0), "one text per"),
        (lambda: pipe.infill(wav, 8000, "x", start=float("nan"), end=0.5), "start must be a finite number"),
        (lambda: pipe.infill(wav, 8000, "x", start=0.1, end="0.5"), "end must be a number"),
    ]
    for call, message in cases:
        with pytest.raises(UsageError, match=None) as info:
            call()
        assert message in str(info.value), (message, str(info.value))


def test_load_checks_source_overrides_and_device_before_loading():
    from magnetkit import load

    with pytest.raises(UsageError, match="overrides must be a list"):
        load(OFFICIAL, "sampler.top_p=0.5")
    with pytest.raises(UsageError, match="source must be a str or path"):
        load(123)
    bad_device = "cuda:99" if torch.cuda.is_available() else "cuda"
    with pytest.raises(UsageError, match="device 'cuda"):
        load(OFFICIAL, device=bad_device)  # fails before any download is tried


def test_pipeline_refuses_a_device_this_build_lacks(fakes):
    if torch.cuda.is_available():
        pytest.skip("a CUDA build with a GPU: the CPU-only message does not apply")
    with pytest.raises(UsageError, match="no CUDA support|no CUDA GPU"):
        Pipeline(load_recipe({"codec": {"name": "fake"}, "conditioner": {"name": "fake"}}),
                 MagnetTransformer(ModelConfig(dim=32, num_heads=2, num_layers=1, cardinality=64)),
                 FakeConditioner(output_dim=32), FakeCodec(), device="cuda")


# --------------------------------------------------------------------------- non-finite model outputs
def test_nan_weights_with_greedy_decoding_fail_instead_of_giving_zero_codes(fakes, one_thread):
    pipe = pipeline("sampler.name=greedy")
    with torch.no_grad():
        for p in pipe.model.parameters():
            p.fill_(float("nan"))
    with pytest.raises(NonFiniteError, match="NaN or infinite"):
        pipe.generate("x", seed=0)


# --------------------------------------------------------------------------- plugin components that break the contract
class _FlatCodec(FakeCodec):
    def decode(self, codes):  # [B, S] instead of [B, C, S]
        return super().decode(codes)[:, 0]


class _ShortEncodeCodec(FakeCodec):
    def encode(self, wav):  # one codebook missing
        return super().encode(wav)[:, :-1]


class _WideConditioner(FakeConditioner):
    def forward(self, texts):
        cond = super().forward(texts)
        return type(cond)(torch.cat([cond.embeddings, cond.embeddings], -1), cond.mask)


class _BadSampler:
    span_scoring = "max"
    positionwise = False

    def check_stages(self, num_codebooks):
        pass

    def __call__(self, logits, step, num_steps, generator=None, stage=None):
        return logits.argmax(-1)[..., :1], logits.amax(-1)  # tokens of the wrong shape


def test_a_component_breaking_its_contract_is_named(fakes, one_thread):
    flat = r"codec _FlatCodec \(plugin .*\): decode returned shape \[1, \d+\], the contract asks for \[1, 1, \?\]"
    with pytest.raises(PluginError, match=flat):
        pipeline(codec=_FlatCodec(FakeCodecConfig(cardinality=64))).generate("x", seed=0)
    with pytest.raises(PluginError, match=r"codec _ShortEncodeCodec .*encode returned shape \[1, 3, 50\]"):
        pipeline(codec=_ShortEncodeCodec(FakeCodecConfig(cardinality=64))).continue_audio(
            torch.zeros(1, 8000), 8000, "x", duration=2.0)
    with pytest.raises(PluginError, match=r"conditioner _WideConditioner .*\[2, \?, 32\]"):
        pipeline(conditioner=_WideConditioner(output_dim=32)).generate("x", seed=0)
    pipe = pipeline()
    pipe.sampler = _BadSampler()
    with pytest.raises(PluginError, match=r"sampler _BadSampler .*returned shapes"):
        pipe.generate("x", seed=0)


# --------------------------------------------------------------------------- third-party plugins that fail
BROKEN = "import no_such_module_anywhere\n"
DUPLICATE = textwrap.dedent('''
    import magnetkit

    @magnetkit.hookimpl
    def register_masking_schedulers(register):
        register("cosine", lambda config: None)
    ''')
RAISES = textwrap.dedent('''
    import magnetkit

    @magnetkit.hookimpl
    def register_samplers(register):
        raise RuntimeError("boom in register")
    ''')


@pytest.fixture(scope="module")
def bad_site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("badsite")
    for name, code in {"mk_broken": BROKEN, "mk_dup": DUPLICATE, "mk_raises": RAISES}.items():
        (root / f"{name}.py").write_text(code)
        dist = root / f"{name}-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (dist / "entry_points.txt").write_text(f"[magnetkit]\n{name} = {name}\n")
    return root


def cli(site: Path, *args: str, allow: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(site), HF_HUB_OFFLINE="1")
    env.pop("MAGNETKIT_PLUGINS", None)
    if allow is not None:
        env["MAGNETKIT_PLUGINS"] = allow
    return subprocess.run([sys.executable, "-m", "magnetkit.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.slow
def test_broken_and_duplicate_plugins_are_skipped_with_a_warning(bad_site):
    helped = cli(bad_site, "--help")
    assert helped.returncode == 0 and "generate" in helped.stdout and "Traceback" not in helped.stderr
    assert "warning: plugin 'mk_broken' is skipped" in helped.stderr and "no_such_module_anywhere" in helped.stderr

    listed = cli(bad_site, "plugins")
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()}
    assert "BROKEN" in lines["mk_broken"] and "ModuleNotFoundError" in lines["mk_broken"]
    assert "BROKEN" in lines["mk_dup"] and "registered twice" in lines["mk_dup"] and "'schedulers'" in lines["mk_dup"]
    assert "BROKEN" in lines["mk_raises"] and "boom in register" in lines["mk_raises"]
    assert "BROKEN" not in lines["samplers"]

    validated = cli(bad_site, "validate", OFFICIAL)  # the built-in cosine scheduler still wins
    assert validated.returncode == 0, validated.stderr


@pytest.mark.slow
def test_unknown_names_in_the_allow_list_are_reported(bad_site):
    result = cli(bad_site, "plugins", allow="schedulers,no_such_plugin")
    assert result.returncode == 0
    assert "MAGNETKIT_PLUGINS names plugin(s) that are not installed: no_such_plugin" in result.stderr
    assert result.stdout.split()[0] == "schedulers"


def test_recipes_listing_survives_an_unreadable_recipe(tmp_path, capsys):
    from magnetkit.recipe import first_comment

    path = tmp_path / "x.yaml"
    path.write_bytes(b"\xff\xfe# bad\n")
    assert "unreadable" in first_comment(path)
    assert (RECIPES_DIR / f"{OFFICIAL}.yaml").is_file()


class _FailingFactory:
    from magnetkit import hookimpl

    @hookimpl
    def register_codecs(self, register):
        def explode(config):
            raise FileNotFoundError(2, "No such file or directory", "weights.bin")

        register("exploding", explode)


def test_a_factory_that_fails_is_one_error_naming_its_plugin():
    register_plugin(_FailingFactory(), "exploder")
    try:
        from magnetkit.registry import build

        with pytest.raises(PluginError, match=r"codec 'exploding' \(plugin 'exploder'\) failed to build: "
                                              r"FileNotFoundError"):
            build("codec", "exploding")
    finally:
        unregister_plugin("exploder")


def test_overrides_may_follow_options(capsys):
    assert main(["validate", OFFICIAL, "--show", "generation.decoding_steps=[4,2,2,2]"]) == 0
    assert "- 4\n" in capsys.readouterr().out
    code, err = run_main(capsys, "validate", OFFICIAL, "--show", "--bogus")
    assert_one_error(code, err, "unrecognized arguments: --bogus")
