"""Distillation (docs/distillation.md): a reasoning teacher labels an unlabelled pool with soft labels
(:mod:`~genrel.distill.label`), and a student that is cheap to serve learns them: a label-first causal
LM (:mod:`~genrel.distill.lm_student`) or a BERT-class cross-encoder (trained by the score layer's
cross-encoder trainer). ONNX export and serving live elsewhere (score, serve); this package does not
score or serve, it only writes labels files and model folders that those stages read.

Importing this package loads no torch; the heavy imports happen inside the functions that need them.
"""

from genrel.distill.config import DistillConfig, LMStudentSettings, LoraSettings
from genrel.distill.dataset import DistillSet, build_distill_set
from genrel.distill.label import LabelConfig, LabelRun, run_label, teacher_fields
from genrel.distill.labels_file import TeacherLabel, read_labels
from genrel.distill.students import DistillRun, load_distill_set, run_distill

__all__ = [
    "DistillConfig",
    "DistillRun",
    "DistillSet",
    "LMStudentSettings",
    "LabelConfig",
    "LabelRun",
    "LoraSettings",
    "TeacherLabel",
    "build_distill_set",
    "load_distill_set",
    "read_labels",
    "run_distill",
    "run_label",
    "teacher_fields",
]
