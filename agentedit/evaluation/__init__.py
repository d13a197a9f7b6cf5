"""Evaluation harness: benchmark loaders, scoring, protocols and reports (``agentedit eval``)."""

from .cases import Case, Probe
from .loaders import DATASETS, EvalDataError, load_dataset
from .parametric import register_parametric_methods
from .runner import METHODS, RunConfig, Runner, read_rows, register_method
from .scoring import agree, gen_match, normalise

register_parametric_methods()  # rome, memit, ft, alphaedit: for hf: models

__all__ = ["Case", "DATASETS", "EvalDataError", "METHODS", "Probe", "RunConfig", "Runner", "agree", "gen_match",
           "load_dataset", "normalise", "read_rows", "register_method"]
