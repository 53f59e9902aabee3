"""The recipe table: one recipe per cache name, and a recipe trains what it says."""

import pytest
import torch

from aebook import recipes
from aebook.data import Data

# every test here runs once per device (conftest.DEVICES)
pytestmark = pytest.mark.usefixtures("device")


def test_each_cache_name_belongs_to_one_recipe():
    names = [r.cache_name(seed) for r in recipes.RECIPES.values() for seed in (0, 1, 2)]
    assert len(names) == len(set(names)), "two recipes share a cache name"
    stacks = [r.pretrain["cache_name"] for r in recipes.RECIPES.values() if r.pretrain]
    assert not set(stacks) & set(names)


def test_every_recipe_builds_its_model():
    for name, r in recipes.RECIPES.items():
        model = r.kind(**r.spec)
        code = model.encode(torch.rand(2, 784))
        assert code.shape == (2, r.spec["sizes"][-1]), name
        assert model.decode(code).shape == (2, 784), name


def test_an_unknown_name_lists_the_recipes():
    with pytest.raises(ValueError, match="one hidden layer"):
        recipes.recipe("two hidden layers")
    with pytest.raises(ValueError, match="no pretraining"):
        recipes.pretrained_stack("shallow", None)


def small_data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 784, generator=g)
    y = torch.arange(64) % 10
    return Data("tiny", x[:48], y[:48], x[48:], y[48:])


def test_train_follows_the_recipe_and_the_cache_serves_it_again():
    data = small_data()
    model, history = recipes.train("shallow", data, seed=1)
    assert len(history.train_loss) == recipes.RECIPES["shallow"].settings["epochs"]
    assert len(history.val_loss) == len(history.train_loss)  # validated on test_x
    again, history_again = recipes.train("shallow", data, seed=1)
    # loaded, not trained again: the recorded training time is the first run's
    assert history_again.seconds == history.seconds
    assert history_again.train_loss == history.train_loss
    for a, b in zip(model.parameters(), again.parameters()):
        assert torch.equal(a, b)
    other, _ = recipes.train("shallow", data, seed=2)
    assert not torch.equal(next(other.parameters()), next(model.parameters()))


def test_a_pretrained_recipe_starts_from_its_stack():
    data = small_data()
    stack, histories = recipes.pretrained_stack("deep, pretrained", data)
    assert [layer.encoder[0].out_features for layer in stack] == [1024, 512, 30]
    assert all(len(h.train_loss) == 10 for h in histories)


def test_a_variant_changes_only_what_it_names():
    base = recipes.recipe("sigmoid 784-256")
    relu = base.variant("sparse-plain-relu", spec=dict(code="relu"), lr=1e-3)
    assert relu.cache_name(1) == "sparse-plain-relu-seed1"
    assert relu.spec == {**base.spec, "code": "relu"}
    assert relu.settings == {**base.settings, "lr": 1e-3}
    assert base.spec["code"] == "sigmoid" and base.settings["lr"] == 3e-3
    assert recipes.recipe(relu) is relu
