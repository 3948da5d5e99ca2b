"""Reference networks: a card says how a published network was trained, and retraining its first epoch checks it."""

import pytest

from indi4d import pretrained, reference, runs
from indi4d.training import train_indi
from synthetic import make_pairs


def test_a_card_holds_the_recipe_pairs_hash_and_loss_curve(tmp_path):
    pairs_dir = make_pairs(tmp_path / "pairs", n=8, size=32)
    model_dir = tmp_path / "model"
    train_indi(pairs_dir, model_dir, preset="tiny", seed=3, progress=False)
    card = reference.training_card(model_dir)
    assert card["objective"] == "indi" and card["preset"] == "tiny" and card["seed"] == 3
    assert card["global_step"] == 8 and len(card["loss"]) == len(card["val_loss"]) == 2
    assert card["pairs_sha256"] == reference.check_pairs_match(card, pairs_dir)
    # retraining from the card alone gives the very same first epoch
    again = reference.retrain_first_steps(model_dir, pairs_dir)
    assert again["steps"] == 4 and again["max_abs_diff"] <= 1e-5
    other = make_pairs(tmp_path / "other", n=8, size=32, seed=1)
    with pytest.raises(ValueError, match=r"pairs\.npz: SHA-256 .* is not the card's pairs"):
        reference.retrain_first_steps(model_dir, other)


@pytest.mark.slow
def test_the_published_indi_network_retrains_to_its_card(tmp_path):
    """The default data rebuilt from the simulator, its first epoch trained from the card: the stored losses to 1e-5."""
    folder = pretrained.fetch_model(pretrained.names_for("workshop")["indi"])
    card = reference.training_card(folder)
    pairs_dir = reference.simulated_pairs(tmp_path / "run", card["preset"], card["seed"])
    assert pairs_dir == runs.stage_dir(tmp_path / "run", "pairs")
    result = reference.retrain_first_steps(folder, pairs_dir)
    assert result["steps"] >= 50
    assert result["max_abs_diff"] <= 1e-5, result
