"""The evaluation run's identity and plug-in points: RunConfig holding the typed Settings, its fingerprint (by which
committed run folders resume), and the method and dataset registries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentedit.errors import ConfigError
from agentedit.evaluation import DATASETS, RunConfig, load_dataset

RESULTS = Path(__file__).resolve().parents[1] / "evals" / "results"


@pytest.mark.parametrize("run_json", sorted(RESULTS.glob("*/run.json")), ids=lambda p: p.parent.name)
def test_committed_run_folders_keep_their_fingerprint(run_json):
    """A run folder resumes by its fingerprint: the configuration recorded in run.json must give it again."""
    saved = json.loads(run_json.read_text("utf-8"))
    cfg = RunConfig(**saved["config"])
    assert saved["fingerprint"] in (cfg.fingerprint(), cfg.fingerprint(legacy=True))
    assert cfg.options() == saved["config"] and list(cfg.options()) == list(saved["config"])  # run.json's shape


@pytest.mark.parametrize("options,current,legacy", [
    (dict(datasets=["counterfact-edit"], methods=["none"]), "a163823d8dc44263", "a163823d8dc44263"),
    (dict(datasets=["zsre", "counterfact-edit"], methods=["none", "ike"], model="openai/gpt-4o-mini",
          api_base="http://127.0.0.1:8080/v1", max_tokens=12, demo_pool="/x/train.json"), "263a90e3405964db", "263a90e3405964db"),
    (dict(datasets=["counterfact-edit"], methods=["agentedit-trained"], scope_model="/s/scope-model", probe_limit=3,
          probe_kinds=["locality"]), "aa2d64c32bdf4e98", "3e0f17d55f844931"),
    (dict(datasets=["counterfact-edit"], methods=["rome"], model="hf:/tmp/tiny", protocol="single", limit=2, seed=7,
          memory_sizes=[10, 100], suite="quick", concurrency=4, data_dir="/d"), "9d92b5c7064d7bb0", "9d92b5c7064d7bb0"),
])
def test_fingerprints_are_those_of_the_flat_run_config(options, current, legacy):
    """The values RunConfig gave when it was a flat dataclass (computed with that code), so old folders resume."""
    cfg = RunConfig(**options)
    assert (cfg.fingerprint(), cfg.fingerprint(legacy=True)) == (current, legacy)


def test_run_config_holds_the_typed_settings():
    cfg = RunConfig(datasets=["zsre"], methods=["none", "agentedit-trained"], model="openai/gpt-4o-mini",
                    api_base="http://127.0.0.1:8080/v1", demo_pool=Path("/x/train.json"))
    s = cfg.settings
    assert (s.model.spec.kind, s.model.spec.api_base, s.model.max_tokens) == ("api", "http://127.0.0.1:8080/v1", 24)
    assert s.injection.demo_pool == cfg.demo_pool == "/x/train.json"
    cfg.scope_model = Path("/s/scope-model")  # what `agentedit eval` does for a trained checker
    assert s is not cfg.settings and cfg.settings.scope.model_dir == cfg.options()["scope_model"] == "/s/scope-model"
    assert RunConfig(**{**cfg.__dict__, "limit": 4}).settings == cfg.settings  # a copy with one option changed
    assert RunConfig(datasets=["zsre"], methods=["none"]).settings.model.spec.kind == "llamacpp"
    with pytest.raises(ConfigError, match="api_base cannot be combined"):
        RunConfig(datasets=["zsre"], methods=["none"], model="llamacpp:smollm2-135m-instruct", api_base="http://x/v1")


def test_methods_and_datasets_are_registries(tmp_path, monkeypatch):
    from agentedit.evaluation import METHODS, Dataset, register_method
    from agentedit.evaluation.parametric import rome_method
    from agentedit.registry import Registry

    for registry in (METHODS, DATASETS):  # what this test registers goes away with it
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))
        monkeypatch.setattr(registry, "_loaded", dict(registry._loaded))
    assert isinstance(METHODS, Registry) and isinstance(DATASETS, Registry)
    assert {"agentedit-relation", "agentedit-similarity", "agentedit-trained", "rome"} <= set(METHODS.names())
    assert METHODS.get("rome") is rome_method  # imported on first use
    marker = object()
    register_method("probe-echo", lambda ctx, memory: marker)
    register_method("probe-echo", lambda ctx, memory: None)  # a second registration replaces the first
    assert METHODS.get("probe-echo")(None, None) is None
    with pytest.raises(ConfigError, match="unknown method 'nope'; choose one of none, prefix-all"):
        METHODS.get("nope")
    assert DATASETS.get("zsre").path == "knowedit/ZsRE/ZsRE-test-all.json"
    (tmp_path / "mine.json").write_text("[]", "utf-8")
    DATASETS.add("mine", Dataset("mine.json", lambda path: [json.loads(path.read_text("utf-8"))]), replace=True)
    assert load_dataset("mine", tmp_path) == [[]]
