"""Where datasets live on disk, and the error that says how to get one that is missing."""

from __future__ import annotations

import os
import pathlib

from layers.validate import integer

__all__ = ["data_dir", "missing_dataset", "damaged_dataset", "split_sizes"]

# Overrides the default folder for downloaded datasets.
DATA_DIR_VARIABLE = "CHAINRULE_DATA"


def data_dir():
    """The folder that holds downloaded datasets: $CHAINRULE_DATA, else ~/.cache/chainrule.

    Returns:
        A pathlib.Path (it may not exist yet).
    """
    configured = os.environ.get(DATA_DIR_VARIABLE)
    return pathlib.Path(configured).expanduser() if configured else pathlib.Path.home() / ".cache" / "chainrule"


def missing_dataset(fn, what, looked_in, download_name, extra="", store=None):
    """A FileNotFoundError that lists where we looked and gives the exact download command.

    Args:
        fn: the loader, for the message.
        what: the missing thing, e.g. "CIFAR-10 batch data_batch_3".
        looked_in: the folders searched.
        download_name: the dataset's name for ``python -m data.download``.
        extra: a further way to get it, appended to the message.
        store: the data folder the caller was given (the download command's --dir); None for
            data_dir().

    Returns:
        The exception (to raise).
    """
    places = ", ".join(str(p) for p in looked_in)
    store = data_dir() if store is None else store
    return FileNotFoundError(
        f"{fn}: {what} not found (looked in {places}). Download it with:\n"
        f"    python -m data.download {download_name} --dir {store}\n"
        f"(or `make download DATASET={download_name} DIR={store}`){extra}"
    )


def damaged_dataset(message, folder, dataset_folder, download_name, extra=""):
    """A ValueError for a dataset file that is damaged or missing, with the command that re-fetches it.

    Args:
        message: what is wrong, naming the file (a loader's ValueError text).
        folder: the folder the file was found in.
        dataset_folder: the dataset's folder name in the data folder (e.g. "mnist").
        download_name: the dataset's name for ``python -m data.download``.
        extra: a further remedy, appended to the message.

    Returns:
        The exception (to raise).
    """
    folder = pathlib.Path(folder)
    # In the download layout (<store>/<dataset folder>) the repair goes in place; elsewhere the
    # download goes to <folder>/<dataset folder>, which the loaders search first.
    store = folder.parent if folder.name == dataset_folder else folder
    return ValueError(f"{message}\nFetch the dataset again with:\n"
                      f"    python -m data.download {download_name} --dir {store} --force{extra}")


def split_sizes(fn, num_training, num_validation, num_test, n_train, n_test):
    """Check and resolve split sizes against a set of n_train training and n_test test images.

    Args:
        fn: the caller, for error messages.
        num_training: training images, or None for all not used for validation.
        num_validation: validation images, taken after the training ones.
        num_test: test images, or None for all.
        n_train, n_test: the sizes of the set.

    Returns:
        (num_training, num_validation, num_test) as ints.
    """
    num_training = integer(fn, "num_training", num_training, low=0, allow_none=True)
    num_validation = integer(fn, "num_validation", num_validation, low=0)
    num_test = integer(fn, "num_test", num_test, low=0, allow_none=True)
    if num_training is None:
        num_training = n_train - num_validation
    if num_test is None:
        num_test = n_test
    if num_training < 0 or num_training + num_validation > n_train or num_test > n_test:
        raise ValueError(f"{fn}: asked for {num_training} + {num_validation} training and {num_test} test images, "
                         f"but the set has {n_train} and {n_test}.")
    return num_training, num_validation, num_test
