"""scaling.models.registry: families by name, the recipe part of run ids, and loading a family file."""

import pytest

from scaling import config as config_lib
from scaling.models import accounting, gpt_family, registry, sizes


def test_builtins_are_registered_in_order_and_baselines_are_not_neural():
  assert registry.names()[:3] == ("gpt", "transformer", "dnn")
  assert not any(registry.is_neural(b) for b in registry.BASELINES)
  with pytest.raises(ValueError, match=r"^family: unknown 'gtp'; allowed: gpt, transformer, dnn"):
    registry.get("gtp")


def test_family_entries_are_the_accounting_and_size_rule():
  fam = registry.get("gpt")
  m = fam.from_params(3e5)
  assert accounting.params("gpt", m) == fam.params(m)
  assert abs(fam.params(m)["nonembed"] / 3e5 - 1) < 0.3  # the grid of widths: within 30 % of the target
  assert registry.get("dnn").width(sizes.named("dnn", "tiny")) == 128
  assert registry.get("transformer").tag(sizes.named("transformer", "tiny")) == "d128-E2-D2"


def test_recipe_fields_enter_the_tag_but_old_fields_never_do():
  m = sizes.named("gpt", "nano")
  assert gpt_family.tag(m) == "d64-L2"
  m.pos, m.tie_embeddings, m.attention = "rope", False, "xla"  # fields run ids never carried: old ids stay
  assert gpt_family.tag(m) == "d64-L2"
  m.mlp = "swiglu"  # a recipe field: in the id by name, so a recipe comparison gets distinct, readable ids
  assert gpt_family.tag(m) == "d64-L2-swiglu"
  m.update(sizes.RECIPES["modern"])
  assert gpt_family.tag(m) == "d64-L2-modern"
  m.window = 32  # a field added later, outside the named ones: a hash of its value
  a = gpt_family.tag(m)
  m.window = 64
  b = gpt_family.tag(m)
  assert a.startswith("d64-L2-modern-r") and b.startswith("d64-L2-modern-r") and a != b


def test_a_family_file_registers_its_family(tmp_path):
  f = tmp_path / "fam.py"
  f.write_text(
      "from scaling.models import registry, sizes, gpt_family\n"
      "from scaling.models.gpt import GPT\n"
      "g = registry.get('gpt')\n"
      "registry.register(registry.Family(name='gpt_copy', module=GPT, sizes=g.sizes, from_params=g.from_params,\n"
      "    params=g.params, tag=g.tag, validate=g.validate, finalize=g.finalize))\n")
  c = config_lib.base("gpt_copy", "nano", family_file=str(f))
  assert c.family_file == str(f) and registry.is_neural("gpt_copy")
  assert accounting.flops_source("gpt_copy") == "xla_cost_analysis"
  assert accounting.flops_source("gpt") == "analytic"


def test_bad_family_file_names_the_field(tmp_path):
  with pytest.raises(ValueError, match=r"^family_file: '.*nope.py' is not a Python file"):
    registry.load_file(str(tmp_path / "nope.py"))
  assert "family_file" not in config_lib.base("gpt", "nano")  # absent unless used: old configs stay equal
