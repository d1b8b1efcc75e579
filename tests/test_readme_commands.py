"""Every command line the README and `jaxticket --help` show still parses:
options, config files, overrides, grid/factor axes and the command's config
checks (nothing is run). Keeps old command lines working across refactors."""

import pathlib
import re
import shlex

import pytest

from jaxticket import cli, config
from jaxticket.experiments import registry

ROOT = pathlib.Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
  text = (ROOT / "README.md").read_text()
  lines = []
  for block in re.findall(r"```(?:bash)?\n(.*?)```", text, re.S):
    block = block.replace("\\\n", " ")
    for line in block.splitlines():
      line = line.split("#")[0].strip() if " #" in line or line.startswith(
          "#") else line.strip()
      line = re.sub(r"^.*?(\.venv/bin/)?(?=jaxticket )", "", line) \
          if "jaxticket " in line else ""
      if line.startswith("jaxticket ") and "COMMAND" not in line:
        lines.append(line)
  return lines


def help_examples() -> list[str]:
  return [l.strip().split("  (")[0] for l in cli.EPILOG.splitlines()
          if l.strip().startswith("jaxticket ")]


COMMANDS = readme_commands() + help_examples()


def test_the_readme_shows_every_command():
  shown = {shlex.split(c)[1] for c in COMMANDS}
  assert set(registry.names()) <= shown, set(registry.names()) - shown


@pytest.mark.parametrize("line", COMMANDS)
def test_command_line_parses_and_validates(line, monkeypatch):
  monkeypatch.chdir(ROOT)
  argv = shlex.split(line.replace(" P ", " 2 ").replace(" I", " 0"))[1:]
  args, overrides = cli.parse(argv)
  cfg = config.apply_overrides(config.load(args.config), overrides)
  if args.command == "train":
    cfg.imp.levels = 0
  config.validate(cfg)
  if args.command in config.SECTIONS:
    config.SECTIONS[args.command].validate(cfg)
  for spec in getattr(args, "grid", []):
    config.parse_axis(cfg, spec, option="--grid")
  if getattr(args, "factor", None):
    config.parse_axis(cfg, args.factor)
