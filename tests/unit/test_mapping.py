"""Mapping files: typos are caught where they are written, with a did-you-mean."""

from __future__ import annotations

import pandas as pd
import pytest

from scalingfit.errors import DataError
from scalingfit.ingest.mapping import Mapping, RunTemplate, likely_typo, suggest_template


def raw():
    frame = pd.DataFrame({"name": ["a", "a"], "P": [10, 10], "epoch": [0, 1],
                          "val_error": [50.0, 40.0], "norm/spectral": [1.0, 2.0]})
    frame.index = pd.RangeIndex(2, 4)
    return frame


def test_a_misspelt_units_key_is_blamed_not_its_unit():
    with pytest.raises(DataError) as caught:
        Mapping.from_dict({"units": {"test_eror": "percent"}}, origin="m.yaml")
    message = str(caught.value)
    assert "'test_eror' under 'units' is not a column of the table nor a canonical name" \
        in message
    assert "did you mean 'test_error'?" in message and "not understood" not in message
    assert "units: {test_error: percent}" in caught.value.fix


def test_a_unit_given_under_the_source_name_says_to_use_the_canonical_one():
    with pytest.raises(DataError, match="units: {test_error: accuracy}"):
        Mapping.from_dict({"columns": {"test_error": "acc"}, "units": {"acc": "accuracy"}})
    # a source name that ends in _error passes the file check; applying the mapping
    # would silently leave it unconverted
    mapping = Mapping.from_dict({"units": {"val_error": "percent"}}, origin="m.yaml")
    with pytest.raises(DataError, match="reads as 'test_error'") as caught:
        mapping.apply(raw(), source="t.csv")
    assert "units: {test_error: percent}" in caught.value.fix


def test_a_misspelt_norm_in_units_is_not_silently_ignored():
    mapping = Mapping.from_dict({"units": {"norm_spectal": "log"}})
    with pytest.raises(DataError, match="did you mean 'norm_spectral'"):
        mapping.apply(raw(), source="t.csv")
    # a unit for a column this source does not have, and nothing like it: nothing to do
    table, _ = Mapping.from_dict({"units": {"train_error": "percent"}}).apply(raw(), source="x")
    assert "train_error" not in table


@pytest.mark.parametrize(("section", "key", "near"), [
    ("set", "n_tset", "n_test"), ("set", "architecure", "architecture"),
    ("set", "Seed", "seed"), ("columns", "tset_error", "test_error"),
    ("metrics", "train_sizes", "train_size"),
])
def test_keys_a_letter_or_two_from_a_canonical_name_are_refused(section, key, near):
    with pytest.raises(DataError, match=f"did you mean '{near}'") as caught:
        Mapping.from_dict({section: {key: 1 if section == "set" else "x"}}, origin="m.yaml")
    assert caught.value.source == "m.yaml" and "\n" not in str(caught.value)


def test_new_metadata_columns_and_canonical_names_are_accepted():
    mapping = Mapping.from_dict({"set": {"optimizer": "sgd", "lr": 0.1, "n_test": 10000,
                                         "weight_decay": 0.0},
                                 "columns": {"norm_spec": "norm/spectral", "test_acc": "acc"}})
    assert mapping.constants["optimizer"] == "sgd"


def test_a_misspelt_template_field_is_refused():
    with pytest.raises(DataError, match="did you mean 'train_size'"):
        Mapping.from_dict({"runs": {"template": "{architecture}_P{train_sise}"}})


def test_malformed_sections_are_one_line_errors():
    with pytest.raises(DataError, match="'runs' must be a dictionary"):
        Mapping.from_dict({"runs": "{architecture}_P{train_size}"})
    with pytest.raises(DataError, match=r"unknown key\(s\) \['templat'\] under 'runs'"):
        Mapping.from_dict({"runs": {"templat": "{architecture}_P{train_size}"}})


def test_likely_typo_is_close_but_not_too_close():
    assert likely_typo("n_tset") == "n_test"
    assert likely_typo("n_test") is None and likely_typo("optimizer") is None
    assert likely_typo("lr") is None and likely_typo("test_acc") is None


@pytest.mark.parametrize(("name", "expected"), [
    ("cnn-mnist-P12000-s0", "{architecture}-{dataset}-P{train_size}-s{seed}"),
    ("CNN_MNIST_P100_seed0_WD0.0", "{architecture}_{dataset}_P{train_size}_seed{seed}_WD{wd}"),
    ("sweep/resnet18_cifar10_N500_seed3", "{architecture}_{dataset}_N{train_size}_seed{seed}"),
    ("run-17", None),
])
def test_a_template_is_suggested_from_a_run_name_and_reads_it(name, expected):
    template = suggest_template(name)
    assert template == expected
    if template is not None:
        fields = RunTemplate(template).parse(name)
        assert isinstance(fields["train_size"], int) and fields["seed"] in (0, 3)
