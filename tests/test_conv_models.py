"""The convolutional autoencoder: its spec, its shapes, and that it plugs into fit and
the cache."""

import json

import pytest
import torch
from torch import nn

from aebook.cache import train_or_load
from aebook.models import ConvAutoencoder, ConvConfig, count_parameters
from aebook.training import fit, set_seed


@pytest.mark.parametrize(
    "channels, code, upsample, k",
    [
        ((32, 64), 30, "transpose", 30),
        ((16, 32), 30, "resize", 30),
        ((8, 16, 32), 12, "transpose", 12),
        ((8, 16), None, "resize", 16 * 7 * 7),
        ((4, 8, 16), None, "transpose", 16 * 4 * 4),
    ],
)
def test_flat_images_in_and_out(channels, code, upsample, k):
    model = ConvAutoencoder(channels, code, upsample)
    x = torch.rand(5, 784)
    h = model.encode(x)
    r = model.decode(h)
    assert (
        h.shape == (5, k) == (5, model.code_size)
        and r.shape == (5, 784)
        and model.input_size == 784
    )
    assert 0 <= r.min() and r.max() <= 1  # sigmoid output


def test_sides_halve_with_each_convolution_and_come_back():
    assert ConvConfig((8, 16, 32)).sides == [28, 14, 7, 4]
    model = ConvAutoencoder((8, 16, 32), code=None)
    maps = [m for m in model.encoder if isinstance(m, nn.Conv2d)]
    x = torch.rand(2, 1, 28, 28)
    for conv, side in zip(maps, [14, 7, 4]):
        x = conv(x)
        assert x.shape[-2:] == (side, side)
    assert model(torch.rand(2, 784)).shape == (2, 784)


def test_a_smaller_spatial_code_through_1x1_convolutions():
    model = ConvAutoencoder((8, 16), code=None, map_channels=1)
    x = torch.rand(3, 784)
    h = model.encode(x)
    assert h.shape == (3, 49) == (3, model.code_size) and model(x).shape == (3, 784)
    # the code is still a map: moving the digit by 4 pixels (one cell of the 7 x 7 map,
    # away from the border) moves the code by one cell, as a stride of 4 in all promises
    digit = torch.zeros(1, 28, 28)
    digit[0, 8:16, 8:14] = 1
    a = model.encode(digit.reshape(1, 784)).reshape(7, 7)
    b = model.encode(torch.roll(digit, (4, 4), dims=(1, 2)).reshape(1, 784)).reshape(
        7, 7
    )
    # the border cells see the zero padding
    assert torch.allclose(b[2:, 2:], a[1:-1, 1:-1], atol=1e-6)
    assert count_parameters(model) == count_parameters(
        ConvAutoencoder((8, 16), code=None)
    ) + (16 + 1) + (16 + 16)
    assert "map of 1" in repr(model)
    with pytest.raises(ValueError, match="map_channels"):
        ConvAutoencoder((8, 16), code=30, map_channels=1)


def test_weight_count_of_the_issue_probe():
    # two stride-2 3x3 convolutions (32, 64 channels), a 30-number code, and the mirror:
    # about 229,000
    convs = (1 * 32 * 9 + 32) + (32 * 64 * 9 + 64)
    dense = (64 * 49 * 30 + 30) + (30 * 64 * 49 + 64 * 49)
    transposed = (64 * 32 * 9 + 32) + (32 * 1 * 9 + 1)
    assert (
        count_parameters(ConvAutoencoder((32, 64), 30))
        == convs + dense + transposed
        == 228_895
    )


def test_upsampling_choice_builds_the_named_layers():
    kinds = lambda m: {type(layer).__name__ for layer in m.decoder}
    assert "ConvTranspose2d" in kinds(ConvAutoencoder(upsample="transpose"))
    assert {"Upsample", "Conv2d"} <= kinds(ConvAutoencoder(upsample="resize"))
    assert "ConvTranspose2d" not in kinds(ConvAutoencoder(upsample="resize"))


def test_config_round_trip_is_plain_json():
    model = ConvAutoencoder(
        [8, 16], code=None, upsample="resize", hidden="elu", out="identity"
    )
    spec = json.loads(json.dumps(model.config.to_dict()))
    again = ConvAutoencoder.from_config(spec)
    assert again.config == model.config and count_parameters(again) == count_parameters(
        model
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"channels": []}, "at least one convolution"),
        ({"channels": [8, 0]}, "at least one convolution"),
        ({"channels": "32"}, "list of channel counts"),
        ({"channels": [8, 2.5]}, "whole number"),
        ({"code": 0}, "code must be a width"),
        ({"code": 3.0}, "whole number"),
        (
            {"upsample": "bilinear"},
            "unknown upsample 'bilinear'.*'transpose', 'resize'",
        ),
        ({"channels": [4, 4, 4], "side": 7}, "at least 8 pixels a side"),
        ({"hidden": "swish"}, "unknown hidden activation 'swish'.*relu"),
    ],
)
def test_bad_specs_say_what_to_do(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConvAutoencoder(**kwargs)


@pytest.mark.parametrize(
    "shape, hint",
    [
        ((5, 28, 28), r"x.reshape\(-1, 784\)"),
        ((1, 1, 28, 28), r"x.reshape"),
        ((784,), r"x.reshape\(1, 784\)"),
        ((5, 100), "takes 784 numbers"),
    ],
)
def test_wrong_input_shape_says_what_to_do(shape, hint):
    with pytest.raises(ValueError, match=hint):
        ConvAutoencoder((4, 8), 6)(torch.rand(*shape))


def test_wrong_code_shape():
    with pytest.raises(ValueError, match=r"code of shape \(batch, 6\)"):
        ConvAutoencoder((4, 8), 6).decode(torch.rand(2, 7))


def test_first_layer_is_translation_equivariant_away_from_the_border():
    # Shifting the image by 2 pixels shifts a stride-2 feature map by 1: the weight
    # sharing the chapter is about.
    conv = ConvAutoencoder((4,), 6).encoder[1]
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 8:14, 9:15] = torch.rand(6, 6)
    moved = torch.roll(x, shifts=(2, 2), dims=(2, 3))
    torch.testing.assert_close(conv(moved)[..., 1:, 1:], conv(x)[..., :-1, :-1])


def test_same_seed_same_weights_and_same_training(tiny):
    losses = []
    for _ in range(2):
        set_seed(0)
        model = ConvAutoencoder((4, 8), 6)
        losses.append(
            fit(
                model, tiny, epochs=2, batch_size=50, progress=False, device="cpu"
            ).train_loss
        )
    assert losses[0] == losses[1] and losses[0][1] < losses[0][0]


def test_cache_stores_and_reloads_a_conv_model(tiny):
    set_seed(0)
    model, history = train_or_load(
        ConvAutoencoder((4, 8), 6),
        tiny,
        name="conv",
        epochs=1,
        batch_size=50,
        progress=False,
        device="cpu",
    )
    set_seed(0)
    again, history2 = train_or_load(
        ConvAutoencoder((4, 8), 6),
        tiny,
        name="conv",
        epochs=1,
        batch_size=50,
        progress=False,
        device="cpu",
    )
    assert history2.train_loss == history.train_loss
    torch.testing.assert_close(again(tiny[:3]), model(tiny[:3]))
    set_seed(0)
    other, _ = train_or_load(
        ConvAutoencoder((4, 8), 6, upsample="resize"),
        tiny,
        name="conv",
        epochs=1,
        batch_size=50,
        progress=False,
        device="cpu",
    )
    # another spec is another cache entry
    assert "Upsample" in {type(m).__name__ for m in other.decoder}


def test_shift_images_moves_pixels_and_fills_with_background():
    from aebook.data import shift_images

    x = torch.zeros(2, 784)
    x.view(2, 28, 28)[:, 10, 12] = 1.0
    moved = shift_images(x, 3, -2).view(2, 28, 28)
    assert moved[:, 13, 10].tolist() == [1.0, 1.0] and moved.sum() == 2
    assert torch.equal(shift_images(x, 0, 0), x)
    edge = torch.ones(1, 784)
    # what comes in is background
    assert shift_images(edge, 0, 4).view(28, 28)[:, :4].sum() == 0
    with pytest.raises(ValueError, match="out of its frame"):
        shift_images(x, 28, 0)
    with pytest.raises(ValueError, match=r"flat images of shape \(N, 784\)"):
        shift_images(x.view(2, 28, 28), 1, 1)


def test_random_shift_moves_each_image_within_its_range_and_is_seeded():
    from aebook.data import RandomShift

    g = torch.Generator().manual_seed(0)
    x = torch.zeros(64, 784)
    x.view(64, 28, 28)[:, 14, 14] = 1.0
    out = RandomShift(2)(x, g).view(64, 28, 28)
    where = out.flatten(1).argmax(1)
    dy, dx = where // 28 - 14, where % 28 - 14
    assert (
        out.flatten(1).sum(1).eq(1).all()
        and dy.abs().max() <= 2
        and dx.abs().max() <= 2
    )
    # each image its own offset
    assert len({(a, b) for a, b in zip(dy.tolist(), dx.tolist())}) > 10
    again = RandomShift(2)(x, torch.Generator().manual_seed(0)).view(64, 28, 28)
    assert torch.equal(out, again)
    assert torch.equal(RandomShift(0)(x, g), x)
    with pytest.raises(ValueError, match="whole number from 0 to 27"):
        RandomShift(-1)


@pytest.mark.parametrize("pixels", [1, 3, 6])
def test_random_shift_is_shift_images_with_each_images_own_offset(pixels):
    # the one-gather version moves exactly the pixels that shift_images moves, image by
    # image
    from aebook.data import RandomShift, shift_images

    x = torch.rand(50, 784)
    out = RandomShift(pixels)(x, torch.Generator().manual_seed(1))
    offsets = torch.randint(
        -pixels, pixels + 1, (50, 2), generator=torch.Generator().manual_seed(1)
    )
    expected = torch.cat(
        [shift_images(x[i : i + 1], *offsets[i].tolist()) for i in range(50)]
    )
    assert torch.equal(out, expected)


def test_fit_augment_shifts_input_and_target_alike(tiny):
    # With an augmentation that maps every image to zeros, the model learns to output
    # zeros: the target moved with the input. (A corruption would have kept the clean
    # target.)
    zero = lambda x, g: torch.zeros_like(x)
    set_seed(0)
    model = ConvAutoencoder((4, 8), 6, out="identity")
    fit(
        model,
        tiny,
        epochs=30,
        batch_size=50,
        lr=1e-2,
        augment=zero,
        progress=False,
        device="cpu",
    )
    assert model(tiny).abs().mean() < 0.05 * tiny.mean()


def test_bce_needs_a_sigmoid_output_for_conv_models_too(tiny):
    with pytest.raises(ValueError, match="out='sigmoid'"):
        fit(
            ConvAutoencoder((4,), 6, out="identity"),
            tiny,
            epochs=1,
            loss="bce",
            progress=False,
        )
