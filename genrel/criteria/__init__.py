"""Criteria: the label scale, the reasoning steps and the rules that every other stage reads."""

from genrel.criteria.load import load_criteria, preset_names, preset_path
from genrel.criteria.model import Criteria, Label, Step, criteria_problems, indistinguishable_labels

__all__ = [
    "Criteria",
    "Label",
    "Step",
    "criteria_problems",
    "indistinguishable_labels",
    "load_criteria",
    "preset_names",
    "preset_path",
]
