"""The forms as data (forms/definitions.py): labels in both languages, one vocabulary with
the protocol and the rules, and looking a form version up."""

from __future__ import annotations

import re

import pytest

from forms.definitions import (
    CHOICE,
    FORMS,
    LATEST,
    LEAVE_V1,
    TRAINING_V1,
    VISIT_V1,
    UnknownForm,
    form_for,
)
from forms.schemas import schema_for
from rules.model import DUTY_KINDS, LEAVE_STATUSES
from sync.protocol import LEAVE, TRAININGS, VISITS

HAN = re.compile(r"[\u4e00-\u9fff]")
ALL_FIELDS = [(form, f) for form in FORMS.values() for f in form.fields]


def field_id(param: object) -> str:
    form, f = param
    return f"{form.collection}-v{form.version}-{f.name}"


@pytest.mark.parametrize("form_and_field", ALL_FIELDS, ids=field_id)
def test_every_field_has_a_chinese_and_an_english_label(form_and_field):
    _, f = form_and_field
    assert HAN.search(f.label_zh), f"{f.name}: zh-CN label {f.label_zh!r} has no Chinese"
    assert f.label_en.strip() and f.label_en.isascii(), f"{f.name}: English {f.label_en!r}"


@pytest.mark.parametrize("form", FORMS.values(), ids=lambda form: form.collection)
def test_every_form_has_titles_in_both_languages_and_unique_field_names(form):
    assert HAN.search(form.title_zh) and form.title_en.isascii() and form.title_en
    names = [f.name for f in form.fields]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("form", FORMS.values(), ids=lambda form: form.collection)
def test_every_form_builds_a_schema_with_one_field_a_definition_field(form):
    assert set(schema_for(form).fields) == {f.name for f in form.fields}


def test_choices_and_ranges_are_well_formed():
    for form, f in ALL_FIELDS:
        if f.type == CHOICE:
            assert f.choices, f"{form.collection}.{f.name} is a choice with no choices"
        if f.minimum is not None and f.maximum is not None:
            assert f.minimum <= f.maximum, f"{form.collection}.{f.name}"


def test_the_forms_use_the_protocol_collections_and_the_rules_vocabulary():
    assert (VISIT_V1.collection, LEAVE_V1.collection, TRAINING_V1.collection) == (
        VISITS,
        LEAVE,
        TRAININGS,
    )
    assert VISIT_V1.field("kind").choices == DUTY_KINDS
    assert LEAVE_V1.field("status").choices == LEAVE_STATUSES


def test_labels_come_in_the_language_asked_for():
    assert VISIT_V1.labels("zh-CN")["patients"] == "诊疗人次"
    assert VISIT_V1.labels("en")["patients"] == "Patients seen"
    assert set(VISIT_V1.labels("en")) == {f.name for f in VISIT_V1.fields}


def test_an_unknown_field_name_is_a_key_error():
    with pytest.raises(KeyError):
        VISIT_V1.field("temperature")


def test_form_for_gives_the_latest_version_or_the_one_asked_for():
    assert form_for(VISITS) is LATEST[VISITS] is VISIT_V1
    assert form_for(LEAVE, 1) is LEAVE_V1


@pytest.mark.parametrize(
    ("collection", "version", "message"),
    [
        ("places", None, "no form for collection 'places'"),
        (VISITS, 99, "no version 99 of the 'visits' form"),
    ],
)
def test_an_unknown_form_or_version_is_refused_by_name(collection, version, message):
    with pytest.raises(UnknownForm, match=re.escape(message)):
        form_for(collection, version)
