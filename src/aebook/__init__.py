"""aebook: the shared package of the hands-on autoencoders book.

Modules, one job each: `data` (datasets as tensors), `models` (the Autoencoder),
`training` (`fit` and its hooks), `cache` (`train_or_load`), `metrics`
(MSE, PSNR, baselines), `plotting` (figures) and `notebook` (show_source, glue).
Importing the package trains, downloads and restyles nothing.
"""

__version__ = "0.1.0"
