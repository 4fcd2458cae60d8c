"""`magnetkit.evaluate` on synthetic tone folders with the weight-free mel embedder."""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from clips import write_set  # noqa: E402

import magnetkit  # noqa: E402
from magnetkit import evaluation  # noqa: E402
from magnetkit.errors import UsageError  # noqa: E402
from magnetkit.metrics import kernel_audio_distance  # noqa: E402


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    write_set(root / "ref", 12, seed=0)
    write_set(root / "same", 12, seed=1)
    write_set(root / "noisy", 12, seed=1, noise=0.05)
    write_set(root / "distorted", 12, seed=1, distort=True)
    return root


def run(ref, gen, tmp_path, **kw):
    kw.setdefault("cache_dir", tmp_path / "cache")
    return magnetkit.evaluate(ref, gen, progress=False, **kw)


def test_a_set_against_itself_scores_zero(sets, tmp_path):
    report = run(sets / "ref", sets / "ref", tmp_path)
    assert isinstance(report, magnetkit.EvalReport)
    assert report.metrics["fad"] == pytest.approx(0, abs=1e-6)
    # the unbiased MMD of a set with itself is slightly negative (Gretton et al. 2012)
    assert report.metrics["kad"] <= 0 < run(sets / "ref", sets / "noisy", tmp_path).metrics["kad"]
    assert report.n_reference == report.n_generated == 12 and report.skipped == 0


def test_same_distribution_scores_lower_than_degraded(sets, tmp_path):
    same = run(sets / "ref", sets / "same", tmp_path).metrics
    for degraded in ("noisy", "distorted"):
        worse = run(sets / "ref", sets / degraded, tmp_path).metrics
        assert same["fad"] < worse["fad"] and same["kad"] < worse["kad"], degraded


def test_saved_embeddings_give_the_reported_fad(sets, tmp_path):
    report = run(sets / "ref", sets / "noisy", tmp_path, save_embeddings=tmp_path / "emb",
                 per_clip=tmp_path / "clips.csv")
    ref, gen = np.load(tmp_path / "emb" / "reference.npy"), np.load(tmp_path / "emb" / "generated.npy")
    assert ref.shape == (report.n_reference_vectors, 128) and gen.shape[1] == 128
    # an independent FAD: scipy-free eigenvalues of the non-symmetric covariance product
    s_r, s_g = np.cov(ref.astype(np.float64), rowvar=False), np.cov(gen.astype(np.float64), rowvar=False)
    eig = np.linalg.eigvals(s_r @ s_g).real.clip(0)
    fad = ((ref.mean(0, dtype=np.float64) - gen.mean(0, dtype=np.float64)) ** 2).sum() \
        + np.trace(s_r) + np.trace(s_g) - 2 * np.sqrt(eig).sum()
    assert report.metrics["fad"] == pytest.approx(fad, rel=1e-6)
    assert report.metrics["kad"] == pytest.approx(kernel_audio_distance(ref, gen), rel=1e-9)
    rows = list(csv.DictReader(open(tmp_path / "clips.csv")))
    assert [r["file"] for r in rows] == [f"clip{i:03d}.wav" for i in range(12)]
    assert all(float(r["fd_to_reference"]) > 0 for r in rows)
    json.dumps(report.to_dict())  # the report is plain JSON


def test_a_corrupt_file_is_skipped_and_counted(sets, tmp_path):
    gen = tmp_path / "gen"
    write_set(gen, 5, seed=3)
    (gen / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    (gen / "empty.flac").write_bytes(b"")
    (gen / "notes.txt").write_text("not audio, not counted")
    report = run(sets / "ref", gen, tmp_path)
    assert report.n_generated == 5 and report.skipped == 2
    assert {Path(s["file"]).name for s in report.skipped_files} == {"broken.wav", "empty.flac"}
    assert all(s["set"] == "generated" for s in report.skipped_files)
    assert np.isfinite(report.metrics["fad"])


@pytest.mark.slow  # six evaluations
def test_reference_cache_is_reused_and_invalidated_when_a_file_changes(sets, tmp_path, monkeypatch):
    ref = tmp_path / "ref"
    write_set(ref, 6, seed=0)
    embedded = []
    real = evaluation._embed_batch

    def spy(embedder, wavs, device):
        embedded.append(len(wavs))
        return real(embedder, wavs, device)

    monkeypatch.setattr(evaluation, "_embed_batch", spy)
    first = run(ref, sets / "same", tmp_path, batch_size=4)
    assert sum(embedded) == 6 + 12
    embedded.clear()
    again = run(ref, sets / "same", tmp_path, batch_size=4)
    assert sum(embedded) == 12 and again.metrics == first.metrics  # only the generated set
    write_set(tmp_path / "other", 1, seed=9)
    (ref / "clip002.wav").write_bytes((tmp_path / "other" / "clip000.wav").read_bytes())
    embedded.clear()
    changed = run(ref, sets / "same", tmp_path, batch_size=4)
    assert sum(embedded) == 1 + 12 and changed.metrics["fad"] != first.metrics["fad"]
    embedded.clear()
    run(ref, sets / "same", tmp_path, embedder_params={"n_mels": 32})  # other settings: another key
    assert sum(embedded) == 6 + 12


def test_bad_inputs_are_one_clear_error(sets, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="holds no audio"):
        run(sets / "ref", empty, tmp_path)
    with pytest.raises(UsageError, match="does not exist"):
        run(tmp_path / "missing", sets / "ref", tmp_path)
    with pytest.raises(UsageError, match="unknown metric"):
        run(sets / "ref", sets / "same", tmp_path, metrics=("fad", "fid"))
    one = tmp_path / "one"
    write_set(one, 1, seed=0, seconds=0.5)
    with pytest.raises(UsageError, match="at least 2"):
        run(sets / "ref", one, tmp_path, embedder_params={"per_clip": True})
    with pytest.raises(UsageError, match="n_mels"):
        run(sets / "ref", sets / "same", tmp_path, embedder_params={"n_mels": 1})
    with pytest.raises(UsageError, match="a file, not a folder"):
        (tmp_path / "file").write_text("x")
        run(sets / "ref", sets / "same", tmp_path, save_embeddings=tmp_path / "file")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="cannot use device 'cuda'"):
            run(sets / "ref", sets / "same", tmp_path, device="cuda")
    with pytest.raises(UsageError, match="needs prompts"):
        run(sets / "ref", sets / "same", tmp_path, metrics=("clap",))


# ------------------------------------------------------------------------ clap and kl
@pytest.fixture(scope="module")
def clap_folder(tmp_path_factory):
    from magnetkit.testing.tiny import tiny_clap

    return tiny_clap(tmp_path_factory.mktemp("clap"))


@pytest.fixture(scope="module")
def ast_folder(tmp_path_factory):
    sys.path.insert(0, str(Path(__file__).parents[1] / "plugins"))
    from test_embedders import tiny_ast

    return tiny_ast(tmp_path_factory.mktemp("ast"))


def test_clap_score_from_a_manifest_is_the_mean_cosine(tmp_path, clap_folder):
    gen = tmp_path / "gen"
    files = write_set(gen / "sub", 3, seed=2)
    texts = ["a high tone", "a low hum", "noise"]
    (gen / "manifest.jsonl").write_text("".join(json.dumps({"text": t, "file": f"sub/{f.name}"}) + "\n"
                                                for t, f in zip(texts, files)))
    write_set(tmp_path / "ref", 3, seed=0)
    report = run(tmp_path / "ref", gen, tmp_path, metrics=("clap",), clap_params={"model": str(clap_folder)},
                 per_clip=tmp_path / "clips.csv")
    clap = magnetkit.build("embedder", "clap", {"model": str(clap_folder)})
    audio = [clap.embed_audio(magnetkit.read_audio(f, clap.sample_rate, 1)[0][None])[0][0] for f in files]
    expected = np.mean([float(a @ t) for a, t in zip(audio, clap.embed_text(texts))])
    assert report.metrics == {"clap": pytest.approx(expected, abs=1e-5)}
    rows = list(csv.DictReader(open(tmp_path / "clips.csv")))
    assert [r["prompt"] for r in rows] == texts and all(-1 <= float(r["clap"]) <= 1 for r in rows)
    by_list = run(tmp_path / "ref", gen, tmp_path, metrics=("clap",), clap_params={"model": str(clap_folder)},
                  prompts=texts)
    assert by_list.metrics["clap"] == pytest.approx(report.metrics["clap"], abs=1e-6)
    with pytest.raises(UsageError, match="2 prompts for 3"):
        run(tmp_path / "ref", gen, tmp_path, metrics=("clap",), clap_params={"model": str(clap_folder)},
            prompts=texts[:2])


def test_kl_pairs_clips_by_name(sets, tmp_path, ast_folder):
    params = {"model": str(ast_folder), "segment_seconds": 0.5}
    itself = run(sets / "ref", sets / "ref", tmp_path, metrics=("kl",), kl_params=params)
    other = run(sets / "ref", sets / "noisy", tmp_path, metrics=("kl",), kl_params=params)
    assert itself.metrics["kl"] == pytest.approx(0, abs=1e-4) and other.metrics["kl"] > 1e-3
    ast = magnetkit.build("embedder", "ast", params)
    load = lambda f: ast.embed_audio(magnetkit.read_audio(f, 16000, 1)[0][None])[0].numpy()  # noqa: E731
    pairs = [(load(sets / "ref" / f"clip{i:03d}.wav"), load(sets / "noisy" / f"clip{i:03d}.wav")) for i in range(12)]
    from magnetkit.metrics import kl_divergence

    expected = np.concatenate([kl_divergence(p, q) for p, q in pairs]).mean()
    assert other.metrics["kl"] == pytest.approx(expected, rel=1e-4)
    lonely = tmp_path / "lonely"
    write_set(lonely, 2, seed=5)
    (lonely / "clip000.wav").rename(lonely / "renamed.wav")
    (lonely / "clip001.wav").rename(lonely / "other.wav")
    with pytest.raises(UsageError, match="pairs clips"):
        run(sets / "ref", lonely, tmp_path, metrics=("kl",), kl_params=params)


def test_a_recipe_may_name_an_embedder_and_need_not():
    from magnetkit.errors import RecipeError
    from magnetkit.recipe import load_recipe

    base = {"codec": {"name": "encodec"}, "conditioner": {"name": "t5"}}
    assert load_recipe(base).embedder is None
    recipe = load_recipe({**base, "embedder": {"name": "mel", "n_mels": 32}})
    assert recipe.embedder.config.n_mels == 32 and recipe.to_dict()["embedder"]["name"] == "mel"
    with pytest.raises(RecipeError, match="embedder.n_mels"):
        load_recipe({**base, "embedder": {"name": "mel", "n_mels": 1}})
