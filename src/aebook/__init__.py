"""aebook: the shared package of the hands-on autoencoders book.

Modules, one job each: `data` (datasets as tensors, corruptions), `models` (the
autoencoders, convolutional and variational ones included), `superposition` (the toy
model of superposition), `sae` (sparse autoencoders on a network's activations),
`diffusion` (noise schedule, denoiser, samplers), `penalties` (the regularizers),
`devices` (the chapter's device), `draws` (random numbers alike on every device),
`training` (`fit` and its hooks), `cache` (`train_or_load`), `pretraining` (greedy
layer-wise, cached), `recipes` (models several chapters train, named once), `paths`
(where the cache is, atomic writes), `claims` (findings checked in cells),
`comparisons` (the rule for orders and ties), `metrics` (errors, baselines, probes, a
sparse dictionary's scores), `retrieval` (search and hashing), `plotting` (figures),
`widgets` (sliders) and `notebook` (show_source, glue).
Importing the package trains, downloads and restyles nothing.
"""

__version__ = "0.1.0"
