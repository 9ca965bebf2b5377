"""Versioned form definitions (visit log, leave, training) with zh-CN and English labels.

A form is data (`forms.definitions`); the marshmallow schemas that validate it are built
from that data (`forms.schemas`), so the server and the offline client validate a record
with the very same definition.
"""

from forms.definitions import FORMS, LEAVE_V1, TRAINING_V1, VISIT_V1, FieldDef, FormDef, form_for
from forms.schemas import ValidationResult, validate

__all__ = [
    "FORMS",
    "LEAVE_V1",
    "TRAINING_V1",
    "VISIT_V1",
    "FieldDef",
    "FormDef",
    "ValidationResult",
    "form_for",
    "validate",
]
