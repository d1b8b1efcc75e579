"""Where prepared datasets live on disk (one concept, no data imports, so
that every data module can ask without importing the package's loaders)."""

from __future__ import annotations

import os


def default_data_dir() -> str:
  """tfds's data dir: ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``."""
  return os.environ.get("TFDS_DATA_DIR",
                        os.path.expanduser("~/tensorflow_datasets"))


__all__ = ["default_data_dir"]
