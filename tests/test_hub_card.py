"""Reading the published score back from a model card (what the publish gate compares)."""

from __future__ import annotations

import pytest

from tmdb_genres.hub.card import card_micro_f1, model_card

INFO = {
    "repo_id": "o/n",
    "metrics": {"test": {"micro_f1": 0.6409, "macro_f1": 0.5626, "rows": 1211},
                "validation": {"micro_f1": 0.6522, "macro_f1": 0.5739, "rows": 1174}},
    "per_genre": {"Horror": {"f1": 0.699, "precision": 0.716, "recall": 0.682, "support": 148,
                             "threshold": 0.27}},
    "snapshot": {"label": "x", "movies": 10, "release_date_min": "1990-01-01",
                 "release_date_max": "2020-01-01"},
    "params": {"evaluate": {"mode": "fixed", "threshold": 0.27}},
    "training_command": "dvc repro",
}


def test_a_card_gives_back_its_test_micro_f1() -> None:
    card = model_card(INFO, {"at_least_one": True, "thresholds": {"Horror": 0.27}})
    assert card_micro_f1(card) == 0.6409
    assert 'from tmdb_genres.hub import from_pretrained\nmodel = from_pretrained("o/n")' in card
    assert "| Horror | 0.699 | 0.716 | 0.682 | 148 | 0.270 |" in card


@pytest.mark.parametrize("card", [
    "# a card without metadata\n",
    "---\nlicense: mit\n---\n# no model-index\n",
    "---\n: [unbalanced\n---\n",
    "---\nmodel-index:\n- name: x\n  results:\n  - dataset: {split: validation}\n"
    "    metrics:\n    - {type: f1, config: micro, value: 0.9}\n---\n",
    "---\nmodel-index:\n- name: x\n  results:\n  - metrics:\n"
    "    - {type: f1, config: macro, value: 0.9}\n---\n",
])
def test_cards_without_a_test_micro_f1_give_none(card: str) -> None:
    assert card_micro_f1(card) is None


def test_the_card_lists_the_metadata_inputs_the_model_reads() -> None:
    thresholds = {"at_least_one": True, "thresholds": {"Horror": 0.27}}
    assert "## Inputs" not in model_card(INFO, thresholds)  # a text-only model
    params = {**INFO["params"], "featurize": {"metadata": {"features": ["decade", "language"]}}}
    card = model_card({**INFO, "params": params}, thresholds)
    assert "## Inputs" in card and "(this model encodes `decade`, `language`)" in card
    assert "`original_language`, `release_date`, `vote_count`" in card
