"""Evaluation harness: dataset declarations, scoring, named protocols, intervals and reports (``agentedit eval``)."""

from .cases import Case, Probe
from .config import RunConfig
from .loaders import DATASETS, Dataset, EvalDataError, load_dataset
from .methods import METHODS, RunContext, register_method
from .protocols import PROTOCOLS, EvalProtocol
from .schema import Declaration, load_declaration
from .rundir import read_rows
from .runner import Runner
from .scoring import agree, gen_match, normalise

__all__ = ["Case", "DATASETS", "Dataset", "Declaration", "EvalDataError", "EvalProtocol", "METHODS", "PROTOCOLS", "Probe",
           "RunConfig", "RunContext", "Runner", "agree", "gen_match", "load_declaration", "load_dataset", "normalise",
           "read_rows", "register_method"]
