"""The Colab notebooks execute headless on a tiny setting, so they never rot."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


EXPECTED = {  # notebook: (text its outputs print, files it leaves)
    "quickstart.ipynb": (("No jackpot", "Jackpot"),
                         ("runs/quickstart/summary.json",)),
    "lmc.ipynb": (("stable (test barrier < 2%) from rewind step",),
                  ("runs/lmc_dense/summary.json",
                   "runs/lmc_ticket/summary.json",
                   "runs/lmc_ticket/lmc_paths.png")),
}


@pytest.mark.slow  # ~25 s each: every notebook cell, headless
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs(tmp_path, monkeypatch, name):
  nb = nbformat.read(os.path.join(ROOT, "colab", name), as_version=4)
  monkeypatch.setenv("JAXTICKET_NOTEBOOK_SIZE", "tiny")
  client = NotebookClient(nb, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}})
  client.execute()
  outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
  assert not [o for o in outputs if o.output_type == "error"]
  text = "".join(o.get("text", "") for o in outputs)
  phrases, files = EXPECTED[name]
  assert any(p in text for p in phrases), text[-2000:]
  for f in files:
    assert (tmp_path / f).exists(), f
