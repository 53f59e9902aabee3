import pytest
import torch
from torch import nn

from aebook.models import AEConfig, Autoencoder, count_parameters, mlp


def test_shapes_through_encoder_and_decoder():
    model = Autoencoder([784, 256, 64, 16])
    x = torch.rand(5, 784)
    h = model.encode(x)
    assert h.shape == (5, 16)
    assert model.decode(h).shape == (5, 784)
    assert model(x).shape == (5, 784)
    assert model.code_size == 16 and model.input_size == 784


def test_decoder_mirrors_encoder():
    model = Autoencoder([784, 128, 8])
    enc = [m.out_features for m in model.encoder if isinstance(m, nn.Linear)]
    dec = [m.out_features for m in model.decoder if isinstance(m, nn.Linear)]
    assert enc == [128, 8] and dec == [128, 784]


def test_sigmoid_output_stays_in_unit_interval():
    r = Autoencoder([784, 32], out="sigmoid")(torch.randn(10, 784) * 10)
    assert 0 <= r.min() and r.max() <= 1


def test_linear_autoencoder_is_linear():
    model = Autoencoder([784, 10], hidden="identity", out="identity")
    assert all(isinstance(m, nn.Linear) for m in [*model.encoder, *model.decoder])
    x, y = torch.rand(3, 784), torch.rand(3, 784)
    # A linear map plus bias: f(x) + f(y) - f(0) == f(x + y)
    zero = torch.zeros(3, 784)
    torch.testing.assert_close(
        model(x) + model(y) - model(zero), model(x + y), atol=1e-5, rtol=1e-5
    )


def test_code_activation():
    model = Autoencoder([784, 64, 20], code="sigmoid")
    h = model.encode(torch.randn(4, 784))
    assert 0 < h.min() and h.max() < 1


def test_from_config_round_trip():
    model = Autoencoder([784, 100, 10], hidden="tanh", code="relu", out="identity")
    again = Autoencoder.from_config(model.config.to_dict())
    assert again.config == model.config
    assert (
        count_parameters(again)
        == count_parameters(model)
        == 2 * (784 * 100 + 100 * 10) + 100 + 10 + 100 + 784
    )


@pytest.mark.parametrize("sizes", [[784], [], [784, 0]])
def test_bad_sizes(sizes):
    with pytest.raises(ValueError, match="sizes"):
        Autoencoder(sizes)


def test_unknown_activation_lists_choices():
    with pytest.raises(ValueError, match="unknown hidden activation 'gelu2'.*relu"):
        AEConfig((784, 10), hidden="gelu2")


@pytest.mark.parametrize(
    "shape, hint",
    [
        ((5, 28, 28), r"x.reshape\(-1, 784\)"),
        ((784,), r"x.reshape\(1, 784\)"),
        ((28, 28), r"x.reshape\(1, 784\)"),
        ((5, 100), "takes 784 numbers"),
    ],
)
def test_wrong_input_shape_says_what_to_do(shape, hint):
    # each hint, followed, fixes the call (the old hint, x.reshape(len(x), -1), did not
    # for one image)
    with pytest.raises(ValueError, match=hint):
        Autoencoder([784, 10])(torch.rand(*shape))


def test_wrong_code_shape():
    with pytest.raises(ValueError, match="code of shape"):
        Autoencoder([784, 10]).decode(torch.rand(2, 11))


def test_mlp_last_activation_only_at_the_end():
    net = mlp((4, 3, 2), "relu", "sigmoid")
    assert [type(m).__name__ for m in net] == ["Linear", "ReLU", "Linear", "Sigmoid"]


def test_tied_decoder_uses_the_encoders_weights_transposed():
    torch.manual_seed(0)
    m = Autoencoder([784, 256, 32], code="sigmoid", tied=True)
    untied = Autoencoder([784, 256, 32], code="sigmoid")
    enc = [l for l in m.encoder if isinstance(l, nn.Linear)]
    # the decoder adds only its biases: 784 + 256 numbers instead of two weight matrices
    assert count_parameters(m) == count_parameters(untied) - (784 * 256 + 256 * 32)
    assert (
        m.decoder[0].weight.shape == (256, 32)
        and m.decoder[0].weight.data_ptr() == enc[1].weight.data_ptr()
    )
    assert m.decoder[2].weight.data_ptr() == enc[0].weight.data_ptr()
    x = torch.rand(5, 784)
    h = m.encode(x)
    expected = torch.sigmoid(
        torch.relu(h @ enc[1].weight + m.decoder[0].bias) @ enc[0].weight
        + m.decoder[2].bias
    )
    torch.testing.assert_close(m(x), expected)
    assert "tied" in repr(m)


def test_tied_weights_train_as_one_and_survive_copy_and_reload():
    import copy

    torch.manual_seed(0)
    m = Autoencoder([20, 6], tied=True)
    loss = (m(torch.rand(4, 20)) - torch.rand(4, 20)).pow(2).mean()
    loss.backward()
    w = m.encoder[0].weight
    # the decoder's use of W reaches its gradient
    assert w.grad is not None and w.grad.abs().sum() > 0
    assert sorted(m.state_dict()) == [
        "decoder.0.bias",
        "encoder.0.bias",
        "encoder.0.weight",
    ]
    c = copy.deepcopy(m)
    assert (
        c.decoder[0].weight.data_ptr() == c.encoder[0].weight.data_ptr() != w.data_ptr()
    )
    r = Autoencoder.from_config(m.config.to_dict())
    r.load_state_dict(m.state_dict())
    x = torch.rand(3, 20)
    torch.testing.assert_close(r(x), m(x))


def test_tied_must_be_a_bool():
    with pytest.raises(ValueError, match="tied must be True or False"):
        Autoencoder([10, 3], tied="yes")
