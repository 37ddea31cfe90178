"""Oxford 102 Flowers from the official files, and the paper's 10-class subset (item F7).

The official files (Nilsback & Zisserman 2008, https://www.robots.ox.ac.uk/~vgg/data/flowers/102/)
go into one folder, ``data/flowers`` by default::

    data/flowers/102flowers.tgz    the images, jpg/image_00001.jpg ... jpg/image_08189.jpg
    data/flowers/imagelabels.mat   ``labels``: 1 x 8189, class of each image, 1..102
    data/flowers/setid.mat         ``trnid``, ``valid``, ``tstid``: 1-based image numbers

:func:`load_flowers` verifies them (md5) and builds the subset of the authors' old loader: the
``classes`` classes with most images, ``per_class`` images each, centre crops of 400 x 500
(height x width) resized to ``size``, split ``per_class - test_per_class`` / ``test_per_class``
per class (1000 train / 200 test by default). The split is deterministic and follows the
official one where it can (see :func:`select_subset`). The result is cached as a compressed npz
in ``<data_dir>/cache/``, keyed by the parameters and the source files' md5 digests.

:func:`fetch_flowers` downloads the official files where the network allows and otherwise says
exactly which file to put where. :func:`write_fixture` writes a tiny synthetic data set in the
same file format (for tests and the notebook's QUICK mode); it is not Oxford Flowers.

Modules: :mod:`~lifsg.data.flowers.files` (the official files and their readers),
:mod:`~lifsg.data.flowers.load` (the subset, the crop and the cache),
:mod:`~lifsg.data.flowers.fetch` (download), :mod:`~lifsg.data.flowers.fixture` (the synthetic
fixture).
"""

from .fetch import DOWNLOAD_TIMEOUT_S, fetch_flowers
from .files import (
    BASE_URL,
    FILES,
    flowers_files_missing,
    flowers_instructions,
    md5_of,
    member_name,
    read_labels,
    read_members,
    read_setid,
)
from .fixture import write_fixture
from .load import DEFAULT_CROP, DEFAULT_SIZE, crop_box, decode_image, load_flowers, select_subset

__all__ = [
    "BASE_URL",
    "DEFAULT_CROP",
    "DEFAULT_SIZE",
    "DOWNLOAD_TIMEOUT_S",
    "FILES",
    "crop_box",
    "decode_image",
    "fetch_flowers",
    "flowers_files_missing",
    "flowers_instructions",
    "load_flowers",
    "md5_of",
    "member_name",
    "read_labels",
    "read_members",
    "read_setid",
    "select_subset",
    "write_fixture",
]
